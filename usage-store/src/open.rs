//! Connecting to a store and making sure it holds our schema: created on a
//! first read-write open, migrated from version 1, checked on every open.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection as _, Executor as _, Row as _};

use crate::dialect::Dialect;
use crate::error::Doing as _;
use crate::schema::{SCHEMA_VERSION, create_statements};
use crate::{Engine, OpenMode, StoreError, StoreTarget};

/// How long SQLite waits for another connection's write lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection pool of an open store.
pub(crate) async fn connect(target: &StoreTarget, mode: OpenMode) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let engine = target.engine();
    let url = match target.path() {
        Some(path) => {
            let absolute = sqlite_path(target, path, mode)?;
            let sqlite_mode = match mode {
                OpenMode::ReadOnly => "ro",
                OpenMode::ReadWrite => "rwc",
            };
            let url = target.connect_url(Some(&absolute), sqlite_mode)?;
            if absolute.exists() && check_sqlite_file(target, &absolute, mode)? {
                leave_wal_mode(target, &url).await?;
            }
            if mode == OpenMode::ReadOnly && has_hot_journal(&absolute) {
                let writable = target.connect_url(Some(&absolute), "rw")?;
                roll_back_hot_journal(target, &absolute, &writable).await?;
            }
            url
        }
        None => target.connect_url(None, "")?,
    };
    let open_error = |error: sqlx::Error| {
        let mut reason = error.to_string();
        if let Some(password) = target.password().filter(|p| !p.is_empty()) {
            reason = reason.replace(password, "***");
        }
        StoreError::Open {
            target: target.to_string(),
            reason,
        }
    };
    if target.path().is_none() {
        // One connection first: the pool retries a refused connection until
        // its timeout and then reports only the timeout, where this says at
        // once why (refused, unknown host, access denied).
        let probe = tokio::time::timeout(BUSY_TIMEOUT * 2, AnyConnection::connect(&url))
            .await
            .map_err(|_| open_error(sqlx::Error::PoolTimedOut))?
            .map_err(open_error)?;
        let _ = probe.close().await;
    }
    let read_only = mode == OpenMode::ReadOnly;
    AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(BUSY_TIMEOUT * 2)
        .after_connect(move |conn, _| Box::pin(set_up_connection(conn, engine, read_only)))
        .connect(&url)
        .await
        .map_err(open_error)
}

/// Per-connection settings: SQLite's busy timeout; MySQL's strict mode and
/// `READ COMMITTED` (fewer gap locks; every check reads under a row lock);
/// read-only sessions on the servers for a read-only store.
async fn set_up_connection(
    conn: &mut AnyConnection,
    engine: Engine,
    read_only: bool,
) -> Result<(), sqlx::Error> {
    let statements: &[&str] = match (engine, read_only) {
        (Engine::Sqlite, _) => &["PRAGMA busy_timeout = 30000"],
        (Engine::Postgres, false) => &[],
        (Engine::Postgres, true) => &["SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"],
        (Engine::MySql, false) => &[
            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        ],
        (Engine::MySql, true) => &[
            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SET SESSION TRANSACTION READ ONLY",
        ],
    };
    for statement in statements {
        conn.execute(*statement).await?;
    }
    Ok(())
}

/// The absolute path of the SQLite file, without `.` or `..`: the file
/// itself when it exists, else its directory joined with its name.
fn sqlite_path(target: &StoreTarget, path: &Path, mode: OpenMode) -> Result<PathBuf, StoreError> {
    let open_error = |reason: String| StoreError::Open {
        target: target.to_string(),
        reason,
    };
    match fs::canonicalize(path) {
        Ok(absolute) => Ok(absolute),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if mode == OpenMode::ReadOnly {
                return Err(StoreError::Missing {
                    path: path.to_owned(),
                });
            }
            let name = path
                .file_name()
                .ok_or_else(|| open_error("the path names no file".to_owned()))?;
            let directory = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let directory = fs::canonicalize(directory).map_err(|e| {
                let reason = format!("directory {}: {e}", directory.display());
                if e.kind() == std::io::ErrorKind::NotFound {
                    // A path no store can be created at: bad input.
                    StoreError::InvalidTarget {
                        target: target.to_string(),
                        reason,
                    }
                } else {
                    open_error(reason)
                }
            })?;
            Ok(directory.join(name))
        }
        Err(e) => Err(open_error(e.to_string())),
    }
}

/// Refuses a file that is not a SQLite database, and (read-only) a file in
/// WAL mode, which SQLite cannot read without leaving `-wal` and `-shm`
/// files beside it; the first release wrote its files in WAL mode, so one
/// of schema version 1 is reported as outdated. Returns whether a
/// read-write open finds the file in WAL mode.
fn check_sqlite_file(
    target: &StoreTarget,
    path: &Path,
    mode: OpenMode,
) -> Result<bool, StoreError> {
    let foreign = |reason: &str| StoreError::Foreign {
        target: target.to_string(),
        reason: reason.to_owned(),
    };
    if path.is_dir() {
        return Err(foreign("it is a directory, not a SQLite file"));
    }
    let mut header = Vec::with_capacity(100);
    fs::File::open(path)
        .and_then(|file| file.take(100).read_to_end(&mut header))
        .map_err(|e| StoreError::Open {
            target: target.to_string(),
            reason: e.to_string(),
        })?;
    if header.is_empty() {
        return if mode == OpenMode::ReadOnly {
            Err(foreign("the file is empty"))
        } else {
            Ok(false)
        };
    }
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(foreign("not a SQLite database"));
    }
    let wal = header[18] == 2 || header[19] == 2;
    if mode == OpenMode::ReadOnly && wal {
        let user_version = u32::from_be_bytes([header[60], header[61], header[62], header[63]]);
        if user_version == 1 {
            return Err(StoreError::SchemaOutdated {
                target: target.to_string(),
                found: 1,
                supported: SCHEMA_VERSION,
            });
        }
        return Err(StoreError::Open {
            target: target.to_string(),
            reason: "the file is in WAL journal mode, which a read-only open cannot read without leaving files beside it; open it read-write once to switch it back".to_owned(),
        });
    }
    Ok(wal)
}

/// Checks the schema; with [`OpenMode::ReadWrite`] creates it in an empty
/// database and migrates version 1, under a lock that makes concurrent
/// first opens create it once.
pub(crate) async fn prepare(
    pool: &AnyPool,
    dialect: Dialect,
    target: &StoreTarget,
    mode: OpenMode,
) -> Result<(), StoreError> {
    if mode == OpenMode::ReadOnly {
        let mut conn = pool.acquire().await.doing("opening the store")?;
        let found = stored_version(&mut conn, dialect).await?;
        if found == Some(0) {
            // Tables without their version row: a creation that a killed
            // process left half-done (MySQL commits each CREATE TABLE on its
            // own). Nothing can have been stored in it; the next read-write
            // open makes the schema again.
            return Err(StoreError::Foreign {
                target: target.to_string(),
                reason: "it holds no usage schema yet (a creation of the schema was \
                         interrupted; the next collect makes it again)"
                    .to_owned(),
            });
        }
        return check_version(target, found, mode);
    }
    match dialect.engine {
        Engine::Sqlite => {
            let mut tx = begin_immediate(pool).await?;
            set_up_schema(&mut tx, dialect, target, "").await?;
            tx.commit().await.doing("creating the schema")
        }
        Engine::Postgres => {
            let mut tx = pool.begin().await.doing("creating the schema")?;
            sqlx::query("SELECT 1 FROM pg_advisory_xact_lock(7285142037)")
                .execute(&mut *tx)
                .await
                .doing("locking the schema")?;
            set_up_schema(&mut tx, dialect, target, "").await?;
            tx.commit().await.doing("creating the schema")
        }
        Engine::MySql => {
            let mut conn = pool.acquire().await.doing("creating the schema")?;
            let locked: Option<i64> =
                sqlx::query_scalar("SELECT GET_LOCK('usage_store_schema', 60)")
                    .fetch_one(&mut *conn)
                    .await
                    .doing("locking the schema")?;
            if locked != Some(1) {
                return Err(StoreError::Open {
                    target: target.to_string(),
                    reason: "another program held the schema lock for 60 s".to_owned(),
                });
            }
            let collation = mysql_collation(&mut conn, target).await;
            let result = match collation {
                Ok(collation) => set_up_schema(&mut conn, dialect, target, &collation).await,
                Err(error) => Err(error),
            };
            let released = sqlx::query("SELECT RELEASE_LOCK('usage_store_schema')")
                .execute(&mut *conn)
                .await;
            if released.is_err() {
                // A connection still holding the lock must not go back to the pool.
                let _ = conn.detach();
            }
            result
        }
    }
}

/// A write transaction: `BEGIN IMMEDIATE` on SQLite (the file's write lock,
/// waited for up to the busy timeout), a plain `BEGIN` elsewhere.
pub(crate) async fn begin_immediate(
    pool: &AnyPool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .doing("starting a write transaction")
}

/// Creates or migrates the schema when needed, then checks its version.
async fn set_up_schema(
    conn: &mut AnyConnection,
    dialect: Dialect,
    target: &StoreTarget,
    collation: &str,
) -> Result<(), StoreError> {
    let mut found = stored_version(conn, dialect).await?;
    if found == Some(0) && dialect.engine == Engine::MySql {
        // MySQL commits each CREATE TABLE on its own: a creation killed
        // before its last step leaves our tables without the version row.
        // No window can have been stored then (every open refuses such a
        // store), so the half-made schema is dropped and made again.
        for table in SCHEMA_TABLES.iter().rev() {
            let drop = format!("DROP TABLE IF EXISTS {table}");
            conn.execute(drop.as_str())
                .await
                .doing("removing a half-created schema")?;
        }
        found = None;
    }
    if found.is_none() {
        if dialect.engine == Engine::Sqlite && sqlite_user_version(conn).await? == 1 {
            crate::migrate_v1::migrate(conn, dialect).await?;
        } else {
            let tables: i64 = sqlx::query_scalar(dialect.count_tables())
                .fetch_one(&mut *conn)
                .await
                .doing("reading the schema")?;
            if tables != 0 {
                return Err(StoreError::Foreign {
                    target: target.to_string(),
                    reason: format!("it holds {tables} other table(s) and no schema_version"),
                });
            }
            create(conn, dialect, collation).await?;
        }
        found = Some(SCHEMA_VERSION);
    }
    if found == Some(2) {
        add_window_grids(conn, dialect).await?;
        found = Some(SCHEMA_VERSION);
    }
    check_version(target, found, OpenMode::ReadWrite)
}

/// Migrates version 2 to 3: `windows` gains `grid_seconds` (`NULL` in the
/// rows already there). MySQL commits an `ALTER TABLE` on its own, so the
/// column may already be there when a migration was killed before the
/// version moved; it is added only when missing.
async fn add_window_grids(conn: &mut AnyConnection, dialect: Dialect) -> Result<(), StoreError> {
    let exists = match dialect.engine {
        Engine::Sqlite => {
            "SELECT COUNT(*) FROM pragma_table_info('windows') WHERE name = 'grid_seconds'"
        }
        Engine::Postgres => {
            "SELECT COUNT(*) FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'windows'
               AND column_name = 'grid_seconds'"
        }
        Engine::MySql => {
            "SELECT COUNT(*) FROM information_schema.columns
             WHERE table_schema = DATABASE() AND table_name = 'windows'
               AND column_name = 'grid_seconds'"
        }
    };
    let columns: i64 = sqlx::query_scalar(exists)
        .fetch_one(&mut *conn)
        .await
        .doing("migrating schema version 2")?;
    if columns == 0 {
        let alter = format!(
            "ALTER TABLE windows ADD COLUMN grid_seconds {}",
            dialect.integer()
        );
        conn.execute(alter.as_str())
            .await
            .doing("migrating schema version 2")?;
    }
    let update = format!("UPDATE schema_version SET version = {SCHEMA_VERSION}");
    conn.execute(update.as_str())
        .await
        .doing("migrating schema version 2")?;
    if dialect.engine == Engine::Sqlite {
        let pragma = format!("PRAGMA user_version = {SCHEMA_VERSION}");
        conn.execute(pragma.as_str())
            .await
            .doing("migrating schema version 2")?;
    }
    Ok(())
}

/// The tables of the schema, in the order they are created.
const SCHEMA_TABLES: [&str; 7] = [
    "schema_version",
    "zones",
    "zone_settings",
    "windows",
    "usage_records",
    "anomalies",
    "adjustments",
];

/// Creates every table and records the version.
pub(crate) async fn create(
    conn: &mut AnyConnection,
    dialect: Dialect,
    collation: &str,
) -> Result<(), StoreError> {
    for statement in create_statements(dialect, collation) {
        conn.execute(statement.as_str())
            .await
            .doing("creating the schema")?;
    }
    let insert = format!("INSERT INTO schema_version (version) VALUES ({SCHEMA_VERSION})");
    conn.execute(insert.as_str())
        .await
        .doing("creating the schema")?;
    if dialect.engine == Engine::Sqlite {
        let pragma = format!("PRAGMA user_version = {SCHEMA_VERSION}");
        conn.execute(pragma.as_str())
            .await
            .doing("creating the schema")?;
    }
    Ok(())
}

/// The version in `schema_version`, or `None` without that table.
async fn stored_version(
    conn: &mut AnyConnection,
    dialect: Dialect,
) -> Result<Option<i64>, StoreError> {
    let exists = dialect.sql(dialect.table_exists());
    let tables: i64 = sqlx::query_scalar(&exists)
        .bind("schema_version")
        .fetch_one(&mut *conn)
        .await
        .doing("reading the schema version")?;
    if tables == 0 {
        return Ok(None);
    }
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
        .fetch_one(&mut *conn)
        .await
        .doing("reading the schema version")?;
    Ok(Some(version.unwrap_or(0)))
}

async fn sqlite_user_version(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await
        .doing("reading the schema version")
}

fn check_version(
    target: &StoreTarget,
    found: Option<i64>,
    mode: OpenMode,
) -> Result<(), StoreError> {
    match found {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            target: target.to_string(),
            found,
            supported: SCHEMA_VERSION,
        }),
        Some(found) if mode == OpenMode::ReadOnly => Err(StoreError::SchemaOutdated {
            target: target.to_string(),
            found,
            supported: SCHEMA_VERSION,
        }),
        Some(found) => Err(StoreError::Foreign {
            target: target.to_string(),
            reason: format!("unknown schema version {found}"),
        }),
        None => Err(StoreError::Foreign {
            target: target.to_string(),
            reason: "it holds no usage schema".to_owned(),
        }),
    }
}

/// The first bytes of a SQLite rollback journal that holds a transaction
/// (<https://www.sqlite.org/fileformat2.html#the_rollback_journal>): a
/// journal that starts with them and that no writer holds is "hot", left by
/// a process that stopped in the middle of a commit.
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

/// Whether `<path>-journal` starts with the journal magic: a commit in
/// progress, or one a killed process left unfinished.
fn has_hot_journal(path: &Path) -> bool {
    let mut journal = path.as_os_str().to_owned();
    journal.push("-journal");
    let mut header = [0u8; 8];
    fs::File::open(&journal)
        .and_then(|mut file| file.read_exact(&mut header))
        .is_ok_and(|()| header == JOURNAL_MAGIC)
}

/// Restores the last committed state of a SQLite file whose rollback
/// journal a killed writer left behind. A read-only connection cannot roll a
/// hot journal back (SQLite answers "attempt to write a readonly
/// database"), so one read-write connection reads the schema, which makes
/// SQLite roll the unfinished transaction back; committed data is not
/// changed. While a live writer holds the journal, the read waits for it
/// (busy timeout) and rolls nothing back.
///
/// # Errors
///
/// [`StoreError::Open`] saying what to do when the file cannot be opened
/// for writing (e.g. its permissions forbid it).
async fn roll_back_hot_journal(
    target: &StoreTarget,
    path: &Path,
    url: &str,
) -> Result<(), StoreError> {
    let refuse = |error: sqlx::Error| StoreError::Open {
        target: target.to_string(),
        reason: format!(
            "{}-journal holds a commit that a stopped process left unfinished, and \
             rolling it back needs write access ({error}); run a read-write command \
             (e.g. collect) on the store once",
            path.display()
        ),
    };
    let mut conn = AnyConnection::connect(url).await.map_err(refuse)?;
    let recovered = async {
        conn.execute("PRAGMA busy_timeout = 30000").await?;
        conn.execute("SELECT COUNT(*) FROM sqlite_master").await
    }
    .await;
    let closed = conn.close().await;
    recovered.map_err(refuse)?;
    closed.map_err(refuse)
}

/// Switches a SQLite file out of WAL mode (the first release's files), on
/// a connection of its own before the pool opens, so that read-only opens
/// leave nothing beside the file. This needs the file to itself: while
/// another process holds it open, the switch fails (the open goes on in WAL
/// mode), and read-only opens refuse the file until a later read-write open
/// switches it.
async fn leave_wal_mode(target: &StoreTarget, url: &str) -> Result<(), StoreError> {
    let open_error = |error: sqlx::Error| StoreError::Open {
        target: target.to_string(),
        reason: error.to_string(),
    };
    let mut conn = AnyConnection::connect(url).await.map_err(open_error)?;
    conn.execute("PRAGMA busy_timeout = 30000")
        .await
        .map_err(open_error)?;
    // Busy while another process has the file open: tried again next time.
    let _switched = conn.execute("PRAGMA journal_mode = DELETE").await;
    conn.close().await.map_err(open_error)
}

/// The binary, no-pad `utf8mb4` collation of this MySQL or MariaDB server
/// (`utf8mb4_0900_bin` on MySQL 8, `utf8mb4_nopad_bin` on MariaDB): text
/// compares by code point and `'a'` differs from `'a '`, as on the other
/// engines.
async fn mysql_collation(
    conn: &mut AnyConnection,
    target: &StoreTarget,
) -> Result<String, StoreError> {
    let rows = sqlx::query(
        "SELECT COLLATION_NAME FROM information_schema.COLLATIONS
         WHERE COLLATION_NAME IN ('utf8mb4_0900_bin', 'utf8mb4_nopad_bin')
         ORDER BY COLLATION_NAME",
    )
    .fetch_all(&mut *conn)
    .await
    .doing("choosing a collation")?;
    let names: Vec<String> = rows
        .iter()
        .filter_map(|row| row.try_get::<String, _>(0).ok())
        .collect();
    names.into_iter().next().ok_or_else(|| StoreError::Open {
        target: target.to_string(),
        reason: "the server has neither utf8mb4_0900_bin nor utf8mb4_nopad_bin".to_owned(),
    })
}
