//! The store engine matrix (DESIGN §10: one schema, three engines, the same
//! answers): a fresh store on every engine reachable here, each removed
//! when dropped, also when the test fails.
//!
//! - SQLite: a file in a fresh temporary directory, always.
//! - PostgreSQL at 127.0.0.1:5432, user `postgres`, trust authentication:
//!   a fresh database `tu_<unique>`, dropped afterwards.
//! - MySQL/MariaDB at 127.0.0.1:3306, user `root`, no password: the same.
//!
//! A server that cannot be reached fails the tests when the environment
//! variable `CI` is set; otherwise one line `traffic-usage tests: skipping
//! <engine>: <reason>` goes to standard error and the tests go on with the
//! other engines.

use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::{Connection as _, Executor as _, MySqlConnection, PgConnection};

/// How long a server may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A store engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
    MySql,
}

impl Engine {
    /// `sqlite`, `postgres` or `mysql`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
            Engine::MySql => "mysql",
        }
    }

    /// PostgreSQL or MySQL: a server many processes share.
    pub(crate) fn is_server(self) -> bool {
        self != Engine::Sqlite
    }

    /// The server's URL without a database.
    fn server(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => "postgres://postgres@127.0.0.1:5432",
            Engine::MySql => "mysql://root@127.0.0.1:3306",
        }
    }

    /// A fresh, empty store on this engine.
    pub(crate) fn fresh(self) -> TestStore {
        match self {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let path = dir.path().join("usage.sqlite");
                TestStore {
                    engine: self,
                    target: path.to_str().expect("a UTF-8 path").to_owned(),
                    database: None,
                    _dir: Some(dir),
                }
            }
            Engine::Postgres | Engine::MySql => {
                let name = unique_name();
                admin(self, &format!("CREATE DATABASE {name}"))
                    .unwrap_or_else(|e| panic!("{}: create database {name}: {e}", self.name()));
                TestStore {
                    engine: self,
                    target: format!("{}/{name}", self.server()),
                    database: Some(name),
                    _dir: None,
                }
            }
        }
    }
}

/// Every engine reachable here: SQLite, then the servers that answer.
pub(crate) fn engines() -> Vec<Engine> {
    let mut engines = vec![Engine::Sqlite];
    engines.extend(
        [Engine::Postgres, Engine::MySql]
            .into_iter()
            .filter(|&engine| reachable(engine)),
    );
    engines
}

/// One fresh store, removed when dropped.
pub(crate) struct TestStore {
    pub(crate) engine: Engine,
    /// What `--db` takes: a file path or a server URL.
    pub(crate) target: String,
    /// The server's database, dropped at the end.
    database: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// The store as `--db` takes it.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// The SQLite file (SQLite only).
    pub(crate) fn path(&self) -> Option<&Path> {
        (self.engine == Engine::Sqlite).then(|| Path::new(&self.target))
    }

    /// Runs `statement` in the store's database, below the binary (to
    /// damage a store on purpose, or to look at a server's tables).
    pub(crate) fn execute(&self, statement: &str) -> u64 {
        let statement = statement.to_owned();
        let url = match self.engine {
            Engine::Sqlite => format!("sqlite://{}?mode=rw", self.target),
            _ => self.target.clone(),
        };
        block_on(async move {
            let mut conn = sqlx::AnyConnection::connect(&url).await?;
            let done = conn.execute(statement.as_str()).await?;
            conn.close().await?;
            Ok(done.rows_affected())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", self.engine.name()))
    }

    /// The rows `query` returns, every column read as text (`NULL` as
    /// `None`): cast numbers with `CAST(… AS CHAR)` (MySQL) or `::text`.
    pub(crate) fn rows(&self, query: &str) -> Vec<Vec<Option<String>>> {
        let query = query.to_owned();
        let url = match self.engine {
            Engine::Sqlite => format!("sqlite://{}?mode=ro", self.target),
            _ => self.target.clone(),
        };
        block_on(async move {
            let mut conn = sqlx::AnyConnection::connect(&url).await?;
            let rows = sqlx::query(&query).fetch_all(&mut conn).await?;
            conn.close().await?;
            rows.iter()
                .map(|row| {
                    (0..sqlx::Row::len(row))
                        .map(|i| sqlx::Row::try_get::<Option<String>, _>(row, i))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_else(|e| panic!("{}: {e}", self.engine.name()))
    }

    /// The number of tables in a server's database (servers only).
    pub(crate) fn table_count(&self) -> i64 {
        let query = match self.engine {
            Engine::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
            }
            Engine::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
            }
            Engine::Sqlite => panic!("table_count is for servers"),
        };
        let url = self.target.clone();
        block_on(async move {
            let mut conn = sqlx::AnyConnection::connect(&url).await?;
            let count: i64 = sqlx::query_scalar(query).fetch_one(&mut conn).await?;
            conn.close().await?;
            Ok(count)
        })
        .unwrap_or_else(|e| panic!("{}: {e}", self.engine.name()))
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some(name) = self.database.take() else {
            return;
        };
        let statement = match self.engine {
            Engine::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS {name}"),
        };
        if self.engine == Engine::MySql {
            // Connections a killed collector left behind may hold locks
            // the drop would wait for.
            let _ = kill_mysql_sessions(&name);
        }
        if let Err(e) = admin(self.engine, &statement) {
            let _ = writeln!(
                std::io::stderr(),
                "traffic-usage tests: could not drop {} database {name}: {e}",
                self.engine.name()
            );
        }
    }
}

/// Runs `future` on a runtime of its own: the tests are synchronous.
fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    sqlx::any::install_default_drivers();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(sqlx::Error::Io)?
        .block_on(async {
            tokio::time::timeout(CONNECT_TIMEOUT * 6, future)
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
        })
}

/// Runs `statement` on the server of `engine`, outside any database.
fn admin(engine: Engine, statement: &str) -> Result<(), sqlx::Error> {
    let statement = statement.to_owned();
    block_on(async move {
        match engine {
            Engine::Postgres => {
                let url = format!("{}/postgres", engine.server());
                let mut conn = connect_pg(&url).await?;
                conn.execute(statement.as_str()).await?;
                conn.close().await
            }
            Engine::MySql => {
                let mut conn = connect_mysql(engine.server()).await?;
                conn.execute(statement.as_str()).await?;
                conn.close().await
            }
            Engine::Sqlite => Ok(()),
        }
    })
}

/// Ends the MySQL sessions still using database `name`.
fn kill_mysql_sessions(name: &str) -> Result<(), sqlx::Error> {
    let name = name.to_owned();
    block_on(async move {
        let mut conn = connect_mysql(Engine::MySql.server()).await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST
             WHERE DB = ? AND ID <> CONNECTION_ID()",
        )
        .bind(&name)
        .fetch_all(&mut conn)
        .await?;
        for id in ids {
            let _ = conn.execute(format!("KILL {id}").as_str()).await;
        }
        conn.close().await
    })
}

async fn connect_pg(url: &str) -> Result<PgConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}

async fn connect_mysql(url: &str) -> Result<MySqlConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, MySqlConnection::connect(url))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}

/// Whether the server of `engine` answers, asked once per test process;
/// the first time it does not, says so once (or fails under `CI`).
fn reachable(engine: Engine) -> bool {
    static POSTGRES: OnceLock<Result<(), String>> = OnceLock::new();
    static MYSQL: OnceLock<Result<(), String>> = OnceLock::new();
    let cell = match engine {
        Engine::Sqlite => return true,
        Engine::Postgres => &POSTGRES,
        Engine::MySql => &MYSQL,
    };
    let mut first = false;
    let answer = cell.get_or_init(|| {
        first = true;
        admin(engine, "SELECT 1").map_err(|e| {
            let address = engine.server().rsplit_once('@').map_or("", |(_, a)| a);
            format!("cannot connect to {address} ({e})")
        })
    });
    match answer {
        Ok(()) => true,
        Err(reason) => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "traffic-usage tests: {} is unreachable: {reason}; CI is set, so every engine must be reachable",
                    engine.name()
                );
            }
            if first {
                // Past the test harness's capture: one line per run.
                let _ = writeln!(
                    std::io::stderr(),
                    "traffic-usage tests: skipping {}: {reason}",
                    engine.name()
                );
            }
            false
        }
    }
}

/// `tu_<pid>_<counter>_<random>`: unique among the tests of all processes.
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let random = nanos ^ counter.wrapping_mul(2_654_435_761);
    format!("tu_{}_{counter}_{random:08x}", std::process::id())
}
