//! A CloudStack-shaped database on the MariaDB/MySQL server at
//! 127.0.0.1:3306 (`root`, no password), fresh and uniquely named per test
//! and dropped afterwards (also when the test fails). An unreachable server
//! fails the test when `CI` is set; otherwise it is reported once on stderr
//! and the test does nothing.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use sqlx::{AnyConnection, Connection as _, Executor as _};
use usage_store::{CloudStackDatabase, StoreTarget};

const ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

/// `cloud.usage_event` as CloudStack creates it.
pub(crate) const USAGE_EVENT: &str = "CREATE TABLE usage_event (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    type varchar(32) NOT NULL,
    account_id bigint unsigned NOT NULL,
    created datetime NOT NULL,
    zone_id bigint unsigned NOT NULL,
    resource_id bigint unsigned,
    resource_name varchar(255),
    offering_id bigint unsigned NULL,
    template_id bigint unsigned NULL,
    size bigint unsigned NULL,
    resource_type varchar(32) NULL,
    processed tinyint NOT NULL DEFAULT 0,
    virtual_size bigint unsigned NULL,
    PRIMARY KEY (id),
    INDEX i_usage_event__created (created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8";

/// The columns of `cloud.host` the traffic monitor lookup reads, and a few
/// more.
const HOST: &str = "CREATE TABLE host (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    name varchar(255) NOT NULL,
    uuid varchar(40),
    type varchar(32) NOT NULL,
    data_center_id bigint unsigned NOT NULL,
    private_ip_address char(40),
    guid varchar(255),
    removed datetime COMMENT 'date removed if not null',
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8";

/// `cloud.host_details` as CloudStack creates it.
const HOST_DETAILS: &str = "CREATE TABLE host_details (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    host_id bigint unsigned NOT NULL,
    name varchar(255) NOT NULL,
    value varchar(255) NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8";

/// One test's CloudStack database, with `usage_event`, `host` and
/// `host_details` created empty.
pub(crate) struct CloudDb {
    name: String,
    pub(crate) target: StoreTarget,
}

impl CloudDb {
    /// A fresh database, or `None` (after one line on stderr) when no
    /// server is reachable and `CI` is not set.
    pub(crate) async fn create() -> Option<CloudDb> {
        sqlx::any::install_default_drivers();
        let mut conn = match AnyConnection::connect(ADMIN).await {
            Ok(conn) => conn,
            Err(error) => {
                let message = format!(
                    "usage-store: skipping CloudStack database tests: cannot connect to 127.0.0.1:3306 ({error})"
                );
                if std::env::var_os("CI").is_some() {
                    panic!("{message}; CI is set, so MariaDB must be reachable");
                }
                static REPORTED: AtomicBool = AtomicBool::new(false);
                if !REPORTED.swap(true, Ordering::Relaxed) {
                    // Past the test harness's capture: one line per run.
                    let _ = writeln!(std::io::stderr(), "{message}");
                }
                return None;
            }
        };
        let name = unique_name();
        conn.execute(format!("CREATE DATABASE `{name}`").as_str())
            .await
            .unwrap();
        conn.execute(format!("USE `{name}`").as_str())
            .await
            .unwrap();
        for table in [USAGE_EVENT, HOST, HOST_DETAILS] {
            conn.execute(table).await.unwrap();
        }
        conn.close().await.unwrap();
        let target = StoreTarget::parse(&format!("mysql://root@127.0.0.1:3306/{name}")).unwrap();
        Some(CloudDb { name, target })
    }

    /// A raw connection to the database, to fill it.
    pub(crate) async fn raw(&self) -> AnyConnection {
        AnyConnection::connect(&format!("mysql://root@127.0.0.1:3306/{}", self.name))
            .await
            .unwrap()
    }

    /// Runs each statement on a raw connection.
    pub(crate) async fn execute(&self, statements: &[&str]) {
        let mut raw = self.raw().await;
        for statement in statements {
            raw.execute(*statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        raw.close().await.unwrap();
    }

    /// The reader of the database.
    pub(crate) async fn connect(&self) -> CloudStackDatabase {
        CloudStackDatabase::connect(&self.target).await.unwrap()
    }
}

impl Drop for CloudDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop runs inside the test's runtime: drop the database from a
        // thread of its own with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut conn = AnyConnection::connect(ADMIN).await.unwrap();
                // Connections a failed test left behind may hold locks the
                // drop would wait for.
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
                conn.execute(format!("DROP DATABASE IF EXISTS `{name}`").as_str())
                    .await
                    .unwrap();
                let _ = conn.close().await;
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("could not drop the CloudStack test database");
        }
    }
}

/// `uscloud_<pid>_<counter>_<random>`.
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let random = nanos ^ (std::process::id().rotate_left(16)) ^ counter.wrapping_mul(2_654_435_761);
    // With `-`, which a MySQL name may hold when quoted: the posting must
    // quote it.
    format!("uscloud-{}-{counter}-{:08x}", std::process::id(), random)
}
