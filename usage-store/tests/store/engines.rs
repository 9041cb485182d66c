//! The engine matrix: every test runs against each engine reachable here,
//! each time in a fresh, uniquely named database that is dropped afterwards
//! (also when the test fails).
//!
//! PostgreSQL is expected at 127.0.0.1:5432 (trust auth, user `postgres` or
//! `root`, database `test`), MariaDB/MySQL at 127.0.0.1:3306 (`root`, no
//! password, database `test`). An unreachable server fails the tests when
//! `CI` is set; otherwise each missing engine is reported once on stderr
//! and its tests are skipped.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AnyConnection, Connection as _, Executor as _};
use usage_store::{Engine, OpenMode, Store, StoreTarget};

const POSTGRES_ADMIN: [&str; 2] = [
    "postgres://postgres@127.0.0.1:5432/test",
    "postgres://root@127.0.0.1:5432/test",
];
const MYSQL_ADMIN: [&str; 1] = ["mysql://root@127.0.0.1:3306/test"];

/// One engine's fresh database for one test.
pub(crate) struct TestDb {
    pub(crate) engine: Engine,
    pub(crate) target: StoreTarget,
    /// The administrative URL of the server (servers only).
    admin: Option<&'static str>,
    /// The databases to drop at the end (servers), or the directory (SQLite).
    created: Vec<String>,
    dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Opens the store read-write.
    pub(crate) async fn open(&self) -> Store {
        Store::open(&self.target, OpenMode::ReadWrite)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.engine))
    }

    /// A raw connection to the test database, for checks below the API.
    pub(crate) async fn raw(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let url = match (self.engine, &self.dir) {
            (Engine::Sqlite, _) => format!("sqlite://{}?mode=rwc", self.sqlite_path().display()),
            _ => {
                let admin = self.admin.unwrap_or_default();
                let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
                format!("{base}/{}", self.created[0])
            }
        };
        AnyConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{}: raw connection: {e}", self.engine))
    }

    /// The SQLite file (SQLite only).
    pub(crate) fn sqlite_path(&self) -> PathBuf {
        self.target.path().map(PathBuf::from).unwrap_or_default()
    }

    /// The directory of the SQLite file (SQLite only).
    pub(crate) fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Creates one more database on the same server, dropped with this one,
    /// and returns its name (servers only). The name holds a `-`, legal in
    /// a quoted name, so that code naming it must quote it.
    pub(crate) async fn extra_database(&mut self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.created[0]);
        let admin = self.admin.unwrap_or_default();
        let mut conn = AnyConnection::connect(admin).await.unwrap();
        conn.execute(format!("CREATE DATABASE {}", quoted(self.engine, &name)).as_str())
            .await
            .unwrap();
        conn.close().await.unwrap();
        self.created.push(name.clone());
        name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (Some(admin), engine) = (self.admin, self.engine) else {
            return;
        };
        let names = std::mem::take(&mut self.created);
        // Drop runs inside the test's runtime: drop the databases from a
        // thread of its own with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut conn = AnyConnection::connect(admin).await.unwrap();
                for name in names {
                    if engine == Engine::MySql {
                        // Connections a failed test left behind may hold
                        // locks the drop would wait for.
                        let ids: Vec<i64> = sqlx::query_scalar(
                            "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST
                             WHERE DB = ? AND ID <> CONNECTION_ID()",
                        )
                        .bind(&name)
                        .fetch_all(&mut conn)
                        .await
                        .unwrap_or_default();
                        for id in ids {
                            let _ = conn.execute(format!("KILL {id}").as_str()).await;
                        }
                    }
                    let name = quoted(engine, &name);
                    let sql = match engine {
                        Engine::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        _ => format!("DROP DATABASE IF EXISTS {name}"),
                    };
                    conn.execute(sql.as_str()).await.unwrap();
                }
                let _ = conn.close().await;
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("{engine}: could not drop the test databases");
        }
    }
}

/// A fresh database on every engine available here: SQLite always, the
/// servers when reachable.
pub(crate) async fn engines() -> Vec<TestDb> {
    sqlx::any::install_default_drivers();
    let mut dbs = vec![sqlite()];
    for (engine, admins) in [
        (Engine::Postgres, &POSTGRES_ADMIN[..]),
        (Engine::MySql, &MYSQL_ADMIN[..]),
    ] {
        if let Some(db) = server(engine, admins).await {
            dbs.push(db);
        }
    }
    dbs
}

fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let target = StoreTarget::sqlite(dir.path().join("usage.sqlite"));
    TestDb {
        engine: Engine::Sqlite,
        target,
        admin: None,
        created: Vec::new(),
        dir: Some(dir),
    }
}

/// Which administrative URL works for each engine, found once per process.
fn reachable(engine: Engine) -> &'static OnceLock<Option<&'static str>> {
    static POSTGRES: OnceLock<Option<&'static str>> = OnceLock::new();
    static MYSQL: OnceLock<Option<&'static str>> = OnceLock::new();
    match engine {
        Engine::Postgres => &POSTGRES,
        _ => &MYSQL,
    }
}

async fn server(engine: Engine, admins: &[&'static str]) -> Option<TestDb> {
    let admin = match reachable(engine).get() {
        Some(found) => *found,
        None => {
            let mut found = None;
            let mut last_error = String::new();
            for admin in admins {
                match AnyConnection::connect(admin).await {
                    Ok(conn) => {
                        let _ = conn.close().await;
                        found = Some(*admin);
                        break;
                    }
                    Err(e) => last_error = e.to_string(),
                }
            }
            if found.is_none() {
                let address = if engine == Engine::Postgres {
                    "127.0.0.1:5432"
                } else {
                    "127.0.0.1:3306"
                };
                let message = format!(
                    "usage-store: skipping {} tests: cannot connect to {address} ({last_error})",
                    engine.name()
                );
                if std::env::var_os("CI").is_some() {
                    panic!("{message}; CI is set, so every engine must be reachable");
                }
                if reachable(engine).set(None).is_ok() {
                    // Past the test harness's capture: one line per run.
                    let _ = writeln!(std::io::stderr(), "{message}");
                }
                return None;
            }
            let _ = reachable(engine).set(found);
            found
        }
    }?;
    let name = unique_name();
    let mut conn = AnyConnection::connect(admin).await.unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("{engine}: create database {name}: {e}"));
    conn.close().await.unwrap();
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    let target = StoreTarget::parse(&format!("{base}/{name}")).unwrap();
    Some(TestDb {
        engine,
        target,
        admin: Some(admin),
        created: vec![name],
        dir: None,
    })
}

/// `ustest_<pid>_<counter>_<random>`.
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let random = nanos ^ (std::process::id().rotate_left(16)) ^ counter.wrapping_mul(2_654_435_761);
    format!("ustest_{}_{counter}_{:08x}", std::process::id(), random)
}

/// `name` as a quoted identifier of `engine`'s SQL.
fn quoted(engine: Engine, name: &str) -> String {
    match engine {
        Engine::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        _ => format!("`{}`", name.replace('`', "``")),
    }
}
