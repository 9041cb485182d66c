//! The open store: its connections, the zone lock every write takes, and
//! the small reads a collector makes before planning a window.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row as _};
use time::OffsetDateTime;
use usage_model::{CollectionWindow, Grid, ZoneId};

use crate::codec::{digest_from_hex, from_seconds};
use crate::dialect::Dialect;
use crate::error::Doing as _;
use crate::open;
use crate::rows::next_row;
use crate::{Engine, StoreError, StoreTarget};

/// How a store is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenMode {
    /// Creates the SQLite file and the schema when missing, and migrates a
    /// store of an older schema version.
    ReadWrite,
    /// Never creates or changes anything (reports, status): a SQLite file is
    /// opened read-only, with no journal-mode change and no file left beside
    /// it; server sessions are read-only.
    ReadOnly,
}

/// One committed window as [`Store::billed_windows`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BilledWindow {
    /// The window.
    pub window: CollectionWindow,
    /// The digest of the holdings it billed, as given to its commit or last
    /// restatement; `None` for a window migrated from schema version 1,
    /// which kept none.
    pub ownership_digest: Option<[u8; 32]>,
    /// The grid it was billed on; `None` for a window stored before schema
    /// version 3, which kept none (taken to be on the zone's current grid).
    pub grid: Option<Grid>,
}

/// An open usage store: SQLite, PostgreSQL or MySQL/MariaDB behind one API.
///
/// Every write is one transaction that first locks the zone's row (`SELECT
/// … FOR UPDATE` on PostgreSQL and MySQL, the file's write lock taken by
/// `BEGIN IMMEDIATE` on SQLite) and compares the zone's checkpoint with the
/// one the caller planned from; whatever fails, nothing is written.
/// Transactions that lose a deadlock or wait out SQLite's busy timeout
/// (30 s) are retried a few times.
#[derive(Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
    pub(crate) target: StoreTarget,
    pub(crate) mode: OpenMode,
}

impl Store {
    /// Opens the store named by `target`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Missing`] for a read-only open of a SQLite file that
    /// does not exist; [`StoreError::Open`] when the server cannot be reached
    /// or the file opened; [`StoreError::Foreign`] for a database holding
    /// other tables or a file that is not a SQLite database;
    /// [`StoreError::SchemaTooNew`] for a store of a newer program;
    /// [`StoreError::SchemaOutdated`] for a read-only open of an older schema;
    /// [`StoreError::Database`] when creating or migrating the schema fails.
    pub async fn open(target: &StoreTarget, mode: OpenMode) -> Result<Store, StoreError> {
        let dialect = Dialect {
            engine: target.engine(),
        };
        let pool = open::connect(target, mode).await?;
        let prepared = open::prepare(&pool, dialect, target, mode).await;
        if let Err(error) = prepared {
            pool.close().await;
            return Err(error);
        }
        Ok(Store {
            pool,
            dialect,
            target: target.clone(),
            mode,
        })
    }

    /// The target the store was opened from.
    pub fn target(&self) -> &StoreTarget {
        &self.target
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.dialect.engine
    }

    /// Closes every connection, waiting until they are closed (a dropped
    /// store closes them in the background).
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// The zone's checkpoint: the end of its last committed window, or `None`
    /// before its first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails; [`StoreError::Corrupt`]
    /// for a stored time out of range.
    pub async fn checkpoint(&self, zone: &ZoneId) -> Result<Option<OffsetDateTime>, StoreError> {
        let sql = self
            .dialect
            .sql("SELECT checkpoint_at FROM zones WHERE zone = ?");
        let at: Option<Option<i64>> = sqlx::query_scalar(&sql)
            .bind(zone.as_str())
            .fetch_optional(&self.pool)
            .await
            .doing("reading the checkpoint")?;
        at.flatten()
            .map(|seconds| corrupt_time("zones", zone.as_str(), "checkpoint_at", seconds))
            .transpose()
    }

    /// The settings the zone was last billed with, as `(name, value)` pairs
    /// ordered by name; empty before its first window.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn zone_settings(&self, zone: &ZoneId) -> Result<Vec<(String, String)>, StoreError> {
        let sql = self
            .dialect
            .sql("SELECT name, value FROM zone_settings WHERE zone = ? ORDER BY name");
        let rows = sqlx::query(&sql)
            .bind(zone.as_str())
            .fetch_all(&self.pool)
            .await
            .doing("reading the zone's settings")?;
        rows.iter()
            .map(|row| {
                let name = get_text(row, "zone_settings", zone.as_str(), "name", 0)?;
                let value = get_text(row, "zone_settings", &name, "value", 1)?;
                Ok((name, value))
            })
            .collect()
    }

    /// The digest of the zone's event log before its checkpoint, as stored by
    /// the last commit or [`Store::record_late_event_anomalies`]; `None`
    /// before the first window (and for a zone migrated from schema 1).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails; [`StoreError::Corrupt`]
    /// for a stored digest that is not 64 hex digits.
    pub async fn event_log_digest(&self, zone: &ZoneId) -> Result<Option<[u8; 32]>, StoreError> {
        let sql = self
            .dialect
            .sql("SELECT event_log_digest FROM zones WHERE zone = ?");
        let digest: Option<Option<String>> = sqlx::query_scalar(&sql)
            .bind(zone.as_str())
            .fetch_optional(&self.pool)
            .await
            .doing("reading the event log digest")?;
        digest
            .flatten()
            .map(|text| {
                digest_from_hex(&text).map_err(|reason| StoreError::Corrupt {
                    table: "zones",
                    key: zone.to_string(),
                    column: "event_log_digest",
                    reason,
                })
            })
            .transpose()
    }

    /// Calls `each` with every committed window of the zone, in order of
    /// start, until it returns [`ControlFlow::Break`]; rows are streamed, so
    /// memory does not grow with the number of windows.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails; [`StoreError::Corrupt`]
    /// for a row that is not a valid window.
    pub async fn billed_windows(
        &self,
        zone: &ZoneId,
        mut each: impl FnMut(BilledWindow) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let sql = self.dialect.sql(
            "SELECT start_at, end_at, ownership_digest, grid_seconds FROM windows
             WHERE zone = ? ORDER BY start_at",
        );
        let mut rows = sqlx::query(&sql).bind(zone.as_str()).fetch(&self.pool);
        while let Some(row) = next_row(&mut rows, "listing billed windows").await? {
            let key = zone.as_str();
            let window = window_of(&row, "windows", key, 0, 1)?;
            let digest: Option<String> = get(&row, "windows", key, "ownership_digest", 2)?;
            let ownership_digest = digest
                .map(|text| {
                    digest_from_hex(&text).map_err(|reason| StoreError::Corrupt {
                        table: "windows",
                        key: key.to_owned(),
                        column: "ownership_digest",
                        reason,
                    })
                })
                .transpose()?;
            let grid_seconds: Option<i64> = get(&row, "windows", key, "grid_seconds", 3)?;
            let grid = grid_seconds
                .map(|seconds| {
                    u64::try_from(seconds)
                        .ok()
                        .and_then(|seconds| Grid::from_seconds(seconds).ok())
                        .ok_or_else(|| StoreError::Corrupt {
                            table: "windows",
                            key: key.to_owned(),
                            column: "grid_seconds",
                            reason: format!("{seconds} is not a grid step"),
                        })
                })
                .transpose()?;
            if each(BilledWindow {
                window,
                ownership_digest,
                grid,
            })
            .is_break()
            {
                break;
            }
        }
        Ok(())
    }

    /// Refuses writes to a read-only store.
    pub(crate) fn writable(&self) -> Result<(), StoreError> {
        match self.mode {
            OpenMode::ReadWrite => Ok(()),
            OpenMode::ReadOnly => Err(StoreError::ReadOnly {
                target: self.target.to_string(),
            }),
        }
    }

    /// A write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        match self.dialect.engine {
            Engine::Sqlite => open::begin_immediate(&self.pool).await,
            _ => self
                .pool
                .begin()
                .await
                .doing("starting a write transaction"),
        }
    }

    /// Runs `attempt` (one whole transaction) again when it lost a deadlock
    /// or a lock wait: up to four times, with growing pauses.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await {
                Err(error) if tries < 4 && is_transient(&error) => {
                    tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                }
                other => return other,
            }
        }
    }
}

/// Whether an error is a lost lock race worth another try: SQLite's
/// `SQLITE_BUSY`/`SQLITE_LOCKED` (and their extended codes), or SQLSTATE
/// `40001` (serialization failure; MySQL's deadlock) or `40P01`
/// (PostgreSQL's deadlock).
fn is_transient(error: &StoreError) -> bool {
    let StoreError::Database {
        code: Some(code), ..
    } = error
    else {
        return false;
    };
    match code.parse::<i64>() {
        Ok(sqlite) => matches!(sqlite & 0xff, 5 | 6),
        Err(_) => matches!(code.as_str(), "40001" | "40P01"),
    }
}

/// Locks the zone's row for the rest of the transaction and returns its
/// checkpoint; `None` when the zone has no row. With `create`, a missing
/// row is first inserted without a checkpoint, so that two collectors
/// starting the same zone serialize on that row: the second waits for the
/// first to commit, then finds its checkpoint.
pub(crate) async fn lock_zone(
    conn: &mut AnyConnection,
    dialect: Dialect,
    zone: &ZoneId,
    create: bool,
) -> Result<Option<Option<OffsetDateTime>>, StoreError> {
    if create {
        let insert = format!(
            "INSERT INTO zones (zone, checkpoint_at, event_log_digest) VALUES (?, NULL, NULL){}",
            dialect.on_conflict_do_nothing("zone", "zone")
        );
        sqlx::query(&dialect.sql(&insert))
            .bind(zone.as_str())
            .execute(&mut *conn)
            .await
            .doing("locking the zone")?;
    }
    let select = format!(
        "SELECT checkpoint_at FROM zones WHERE zone = ?{}",
        dialect.for_update()
    );
    let found: Option<Option<i64>> = sqlx::query_scalar(&dialect.sql(&select))
        .bind(zone.as_str())
        .fetch_optional(&mut *conn)
        .await
        .doing("locking the zone")?;
    found
        .map(|at| {
            at.map(|seconds| corrupt_time("zones", zone.as_str(), "checkpoint_at", seconds))
                .transpose()
        })
        .transpose()
}

/// The instant of stored seconds, or [`StoreError::Corrupt`].
pub(crate) fn corrupt_time(
    table: &'static str,
    key: &str,
    column: &'static str,
    seconds: i64,
) -> Result<OffsetDateTime, StoreError> {
    from_seconds(seconds).map_err(|reason| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        column,
        reason,
    })
}

/// Column `index` of `row` as `T`, or [`StoreError::Corrupt`] naming it.
pub(crate) fn get<T>(
    row: &AnyRow,
    table: &'static str,
    key: &str,
    column: &'static str,
    index: usize,
) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(index).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        column,
        reason: e.to_string(),
    })
}

/// Text column `index` of `row`. MySQL sends `TEXT` columns of a binary
/// collation as blobs, read here as UTF-8.
pub(crate) fn get_text(
    row: &AnyRow,
    table: &'static str,
    key: &str,
    column: &'static str,
    index: usize,
) -> Result<String, StoreError> {
    if let Ok(text) = row.try_get::<String, _>(index) {
        return Ok(text);
    }
    let bytes: Vec<u8> = get(row, table, key, column, index)?;
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        column,
        reason: "not valid UTF-8".to_owned(),
    })
}

/// The window of the start and end seconds in columns `start` and `end`.
pub(crate) fn window_of(
    row: &AnyRow,
    table: &'static str,
    key: &str,
    start: usize,
    end: usize,
) -> Result<CollectionWindow, StoreError> {
    let start_at = corrupt_time(table, key, "start", get(row, table, key, "start", start)?)?;
    let end_at = corrupt_time(table, key, "end", get(row, table, key, "end", end)?)?;
    CollectionWindow::new(start_at, end_at).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        column: "end",
        reason: e.to_string(),
    })
}
