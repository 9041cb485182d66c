//! The SQLite store: usage records, per-zone checkpoints, anomalies and a log
//! of committed windows, in one file.
//!
//! # Schema (version 1, in `PRAGMA user_version`)
//!
//! ```sql
//! CREATE TABLE usage_records (
//!     id TEXT PRIMARY KEY,          -- RecordId: 32 lowercase hex digits
//!     zone TEXT NOT NULL,
//!     account TEXT NOT NULL,
//!     ip TEXT NOT NULL,             -- 203.0.113.7 or 2001:db8::7
//!     start TEXT NOT NULL,          -- RFC 3339 UTC, e.g. 2026-11-01T10:00:00Z
//!     end TEXT NOT NULL,            -- exclusive
//!     bytes_sent INTEGER NOT NULL CHECK (bytes_sent >= 0),
//!     bytes_received INTEGER NOT NULL CHECK (bytes_received >= 0)
//! );
//! CREATE TABLE checkpoints (zone TEXT PRIMARY KEY, at TEXT NOT NULL);
//! CREATE TABLE anomalies (
//!     id INTEGER PRIMARY KEY,
//!     zone TEXT NOT NULL, window_start TEXT NOT NULL, window_end TEXT NOT NULL,
//!     kind TEXT NOT NULL, event_id INTEGER NOT NULL, other_event_id INTEGER,
//!     detail TEXT NOT NULL,
//!     UNIQUE (zone, window_start, kind, event_id)
//! );
//! CREATE TABLE windows (
//!     zone TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL,
//!     ips INTEGER NOT NULL, requests INTEGER NOT NULL,
//!     bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL,
//!     records INTEGER NOT NULL, anomalies INTEGER NOT NULL,
//!     collected_at TEXT NOT NULL,
//!     PRIMARY KEY (zone, start)
//! );
//! ```
//!
//! A window is committed in one `BEGIN IMMEDIATE` transaction that first
//! checks the zone's checkpoint is still the one the window was planned from.
//! Two runs on one database and zone therefore never bill a window twice: the
//! second waits for the first's transaction (busy timeout), then fails with
//! [`StoreError::CheckpointMoved`] and writes nothing.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use usage_model::{AccountId, CollectionWindow, RecordId, UsageRecord, ZoneId};

/// The schema version this program reads and writes (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for another process's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether SQLite refused for a lock another connection holds.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS usage_records (
    id TEXT PRIMARY KEY,
    zone TEXT NOT NULL,
    account TEXT NOT NULL,
    ip TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT NOT NULL,
    bytes_sent INTEGER NOT NULL CHECK (bytes_sent >= 0),
    bytes_received INTEGER NOT NULL CHECK (bytes_received >= 0)
);
CREATE INDEX IF NOT EXISTS usage_records_by_zone_account
    ON usage_records (zone, account, ip, start);
CREATE TABLE IF NOT EXISTS checkpoints (
    zone TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS anomalies (
    id INTEGER PRIMARY KEY,
    zone TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    other_event_id INTEGER,
    detail TEXT NOT NULL,
    UNIQUE (zone, window_start, kind, event_id)
);
CREATE TABLE IF NOT EXISTS windows (
    zone TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT NOT NULL,
    ips INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    bytes_sent INTEGER NOT NULL,
    bytes_received INTEGER NOT NULL,
    records INTEGER NOT NULL,
    anomalies INTEGER NOT NULL,
    collected_at TEXT NOT NULL,
    PRIMARY KEY (zone, start)
);
";

/// Why the store failed. Whatever the error, a failed commit wrote nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum StoreError {
    /// The database file does not exist (and the command does not create one).
    #[error("database {path} does not exist")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be opened or set up as a database.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database was written by a program with another schema, or by
    /// something else entirely.
    #[error("database {path} has schema version {found}; this program reads version {expected}")]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// [`SCHEMA_VERSION`].
        expected: i64,
    },
    /// A statement failed.
    #[error("database error while {action}: {source}")]
    Sqlite {
        /// What was being done.
        action: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The zone's checkpoint is not the one the window was planned from:
    /// another run committed in between. Nothing was written.
    #[error(
        "checkpoint of zone {zone} moved: expected {}, found {}; another run committed first, nothing was written",
        show_at(.expected),
        show_at(.found)
    )]
    CheckpointMoved {
        /// The zone.
        zone: ZoneId,
        /// The checkpoint the window was planned from.
        expected: Option<OffsetDateTime>,
        /// The checkpoint stored now.
        found: Option<OffsetDateTime>,
    },
    /// A window that does not continue from the checkpoint it was planned from.
    #[error(
        "window {}..{} of zone {zone} does not start at its checkpoint {}",
        crate::units::format_time(.window.start()),
        crate::units::format_time(.window.end()),
        show(.checkpoint)
    )]
    WindowNotAtCheckpoint {
        /// The zone.
        zone: ZoneId,
        /// The window.
        window: CollectionWindow,
        /// The checkpoint it was planned from.
        checkpoint: OffsetDateTime,
    },
    /// A record that cannot belong to the window being committed.
    #[error("record {id} cannot be stored: {reason}")]
    InvalidRecord {
        /// The record.
        id: RecordId,
        /// What is wrong with it.
        reason: String,
    },
    /// A number larger than SQLite's signed 64-bit integers.
    #[error("{what} {value} does not fit in a signed 64-bit integer")]
    TooLarge {
        /// Which number, e.g. `record 0123… bytes_sent`.
        what: String,
        /// Its value.
        value: u64,
    },
    /// A window's byte total does not fit in 64 bits.
    #[error(
        "total {column} of window {}..{} of zone {zone} overflows 64 bits",
        crate::units::format_time(.window.start()),
        crate::units::format_time(.window.end())
    )]
    TotalOverflow {
        /// `bytes_sent` or `bytes_received`.
        column: &'static str,
        /// The zone.
        zone: ZoneId,
        /// The window.
        window: CollectionWindow,
    },
    /// A time outside the years RFC 3339 can write (0000–9999).
    #[error("{what} {at} cannot be written as RFC 3339")]
    Unrepresentable {
        /// Which time.
        what: &'static str,
        /// Its value.
        at: OffsetDateTime,
    },
    /// A stored value that is not what the schema promises.
    #[error("corrupt {table} row {key}: column {column}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row: its id or zone, or its rowid when that is unreadable.
        key: String,
        /// The column.
        column: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn show(at: &OffsetDateTime) -> String {
    crate::units::format_time(*at)
}

fn show_at(at: &Option<OffsetDateTime>) -> String {
    at.as_ref().map_or_else(|| "none".to_owned(), show)
}

/// Attaches what was being done to a SQLite error.
trait SqliteContext<T> {
    fn doing(self, action: &'static str) -> Result<T, StoreError>;
}

impl<T> SqliteContext<T> for Result<T, rusqlite::Error> {
    fn doing(self, action: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { action, source })
    }
}

/// An anomaly of the ownership ledger, stored with the window it was found in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredAnomaly {
    /// What happened, e.g. `assign-while-held`.
    pub(crate) kind: String,
    /// The event that raised it.
    pub(crate) event_id: u64,
    /// The other event involved (e.g. the earlier assign), if any.
    pub(crate) other_event_id: Option<u64>,
    /// A human-readable account of it.
    pub(crate) detail: String,
}

/// The numbers of one committed window, as logged in the `windows` table and
/// shown by the progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WindowSummary {
    /// The window.
    pub(crate) window: CollectionWindow,
    /// Distinct addresses queried.
    pub(crate) ips: u64,
    /// HTTP requests sent to Traffic Sentinel.
    pub(crate) requests: u64,
    /// Bytes sent over all records.
    pub(crate) bytes_sent: u64,
    /// Bytes received over all records.
    pub(crate) bytes_received: u64,
    /// Records stored.
    pub(crate) records: u64,
    /// Anomalies reported.
    pub(crate) anomalies: u64,
}

/// Everything one collection window stores, committed at once by
/// [`Store::commit_window`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WindowCommit {
    /// The zone collected.
    pub(crate) zone: ZoneId,
    /// The window billed; the checkpoint moves to its end.
    pub(crate) window: CollectionWindow,
    /// The checkpoint the window was planned from (`None` for the zone's first
    /// window); it must still be the stored one when committing.
    pub(crate) previous_checkpoint: Option<OffsetDateTime>,
    /// The usage records, all of `zone` and inside `window`.
    pub(crate) records: Vec<UsageRecord>,
    /// The ledger's anomalies found while planning the window.
    pub(crate) anomalies: Vec<StoredAnomaly>,
    /// Distinct addresses queried.
    pub(crate) ips: u64,
    /// HTTP requests sent to Traffic Sentinel.
    pub(crate) requests: u64,
}

impl WindowCommit {
    /// The window's numbers: its `ips` and `requests`, and totals over its
    /// records and anomalies.
    ///
    /// # Errors
    ///
    /// [`StoreError::TotalOverflow`] when a byte total overflows `u64`.
    pub(crate) fn summary(&self) -> Result<WindowSummary, StoreError> {
        let mut sent: u64 = 0;
        let mut received: u64 = 0;
        for record in &self.records {
            sent = sent
                .checked_add(record.bytes_sent)
                .ok_or_else(|| window_total_overflow(self, "bytes_sent"))?;
            received = received
                .checked_add(record.bytes_received)
                .ok_or_else(|| window_total_overflow(self, "bytes_received"))?;
        }
        Ok(WindowSummary {
            window: self.window,
            ips: self.ips,
            requests: self.requests,
            bytes_sent: sent,
            bytes_received: received,
            records: self.records.len() as u64,
            anomalies: self.anomalies.len() as u64,
        })
    }
}

fn window_total_overflow(commit: &WindowCommit, column: &'static str) -> StoreError {
    StoreError::TotalOverflow {
        column,
        zone: commit.zone.clone(),
        window: commit.window,
    }
}

/// An open SQLite database of usage.
#[derive(Debug)]
pub(crate) struct Store {
    conn: Connection,
}

impl Store {
    /// Opens the database at `path`, creating the file and the schema if
    /// missing.
    ///
    /// The connection uses WAL journaling, enforces foreign keys and waits up
    /// to 30 s for another process's write transaction instead of failing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Open`] when the file cannot be opened or is not a SQLite
    /// database; [`StoreError::SchemaVersion`] when it holds another schema.
    pub(crate) fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Store::set_up(conn, path, true)
    }

    /// Opens an existing database at `path` without creating anything.
    ///
    /// # Errors
    ///
    /// [`StoreError::Missing`] when there is no such file; otherwise as
    /// [`Store::open`], and [`StoreError::SchemaVersion`] for a database
    /// without the schema.
    pub(crate) fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Store::set_up(conn, path, false)
    }

    fn set_up(mut conn: Connection, path: &Path, create: bool) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        // SQLite answers "database is locked" at once, without waiting for
        // the busy timeout, when two connections race to set up a new file
        // (switching it to WAL needs an exclusive lock both may want): try
        // again until the busy timeout has passed.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match Store::prepare(&mut conn, path, create) {
                Err(StoreError::Open { source, .. })
                    if is_busy(&source) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => return Err(error),
                Ok(()) => return Ok(Store { conn }),
            }
        }
    }

    /// Sets the connection's pragmas, and creates the schema of a new file
    /// when `create`; checks the schema version.
    fn prepare(conn: &mut Connection, path: &Path, create: bool) -> Result<(), StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        // Fails with "file is not a database" for a file of another kind.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_error)?;
        let version = |conn: &Connection| -> Result<i64, StoreError> {
            conn.query_row("PRAGMA user_version", [], |row| row.get(0))
                .map_err(open_error)
        };
        let mut found = version(conn)?;
        if found == 0 && create {
            // Created under the write lock, so two first runs create it once.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(open_error)?;
            found = version(&tx)?;
            let tables: i64 = tx
                .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
                .map_err(open_error)?;
            // A version-0 database with tables belongs to another program.
            if found == 0 && tables == 0 {
                tx.execute_batch(SCHEMA).map_err(open_error)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(open_error)?;
                found = SCHEMA_VERSION;
            }
            tx.commit().map_err(open_error)?;
        }
        if found != SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion {
                path: path.to_owned(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(())
    }

    /// The zone's checkpoint: the end of its last committed window, or `None`
    /// before its first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] when the query fails; [`StoreError::Corrupt`]
    /// when the stored time is not RFC 3339.
    pub(crate) fn checkpoint(&self, zone: &ZoneId) -> Result<Option<OffsetDateTime>, StoreError> {
        read_checkpoint(&self.conn, zone)
    }

    /// Stores one window atomically: upserts its records by id, inserts its
    /// anomalies, logs the window and moves the zone's checkpoint to the
    /// window's end — all in one `BEGIN IMMEDIATE` transaction, or nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::CheckpointMoved`] when the stored checkpoint is not
    /// `commit.previous_checkpoint`; [`StoreError::WindowNotAtCheckpoint`]
    /// when the window does not start at that checkpoint;
    /// [`StoreError::InvalidRecord`] for a record of another zone, outside the
    /// window or with an id that does not match it; [`StoreError::TooLarge`]
    /// for a number above `i64::MAX`; [`StoreError::TotalOverflow`] when a byte total overflows `u64`; [`StoreError::Sqlite`] when SQLite
    /// fails. In every case the database is left as it was.
    pub(crate) fn commit_window(&mut self, commit: &WindowCommit) -> Result<(), StoreError> {
        let zone = &commit.zone;
        let window = commit.window;
        if let Some(checkpoint) = commit.previous_checkpoint
            && checkpoint != window.start()
        {
            return Err(StoreError::WindowNotAtCheckpoint {
                zone: zone.clone(),
                window,
                checkpoint,
            });
        }
        let summary = commit.summary()?;
        let window_start = to_text("window start", window.start())?;
        let window_end = to_text("window end", window.end())?;
        let collected_at = to_text("collection time", OffsetDateTime::now_utc())?;

        // Dropping `tx` on any early return rolls everything back.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .doing("starting the window transaction")?;

        let found = read_checkpoint(&tx, zone)?;
        if found != commit.previous_checkpoint {
            return Err(StoreError::CheckpointMoved {
                zone: zone.clone(),
                expected: commit.previous_checkpoint,
                found,
            });
        }

        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO usage_records
                         (id, zone, account, ip, start, end, bytes_sent, bytes_received)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (id) DO UPDATE SET
                         zone = excluded.zone,
                         account = excluded.account,
                         ip = excluded.ip,
                         start = excluded.start,
                         end = excluded.end,
                         bytes_sent = excluded.bytes_sent,
                         bytes_received = excluded.bytes_received",
                )
                .doing("preparing the record upsert")?;
            for record in &commit.records {
                check_record(record, zone, window)?;
                let id = record.id.to_string();
                upsert
                    .execute(params![
                        id,
                        record.zone.as_str(),
                        record.account.as_str(),
                        record.ip.to_string(),
                        to_text("record start", record.start)?,
                        to_text("record end", record.end)?,
                        to_i64(|| format!("record {id} bytes_sent"), record.bytes_sent)?,
                        to_i64(
                            || format!("record {id} bytes_received"),
                            record.bytes_received
                        )?,
                    ])
                    .doing("storing a usage record")?;
            }
        }

        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO anomalies
                         (zone, window_start, window_end, kind, event_id, other_event_id, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (zone, window_start, kind, event_id) DO NOTHING",
                )
                .doing("preparing the anomaly insert")?;
            for anomaly in &commit.anomalies {
                let event_id = to_i64(|| "anomaly event id".to_owned(), anomaly.event_id)?;
                let other_event_id = anomaly
                    .other_event_id
                    .map(|other| to_i64(|| "anomaly other event id".to_owned(), other))
                    .transpose()?;
                insert
                    .execute(params![
                        zone.as_str(),
                        window_start,
                        window_end,
                        anomaly.kind,
                        event_id,
                        other_event_id,
                        anomaly.detail,
                    ])
                    .doing("storing an anomaly")?;
            }
        }

        tx.execute(
            "INSERT INTO windows
                 (zone, start, end, ips, requests, bytes_sent, bytes_received,
                  records, anomalies, collected_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (zone, start) DO UPDATE SET
                 end = excluded.end,
                 ips = excluded.ips,
                 requests = excluded.requests,
                 bytes_sent = excluded.bytes_sent,
                 bytes_received = excluded.bytes_received,
                 records = excluded.records,
                 anomalies = excluded.anomalies,
                 collected_at = excluded.collected_at",
            params![
                zone.as_str(),
                window_start,
                window_end,
                to_i64(|| "window ips".to_owned(), summary.ips)?,
                to_i64(|| "window requests".to_owned(), summary.requests)?,
                to_i64(|| "window total bytes_sent".to_owned(), summary.bytes_sent)?,
                to_i64(
                    || "window total bytes_received".to_owned(),
                    summary.bytes_received
                )?,
                to_i64(|| "window records".to_owned(), summary.records)?,
                to_i64(|| "window anomalies".to_owned(), summary.anomalies)?,
                collected_at,
            ],
        )
        .doing("logging the window")?;

        tx.execute(
            "INSERT INTO checkpoints (zone, at) VALUES (?1, ?2)
             ON CONFLICT (zone) DO UPDATE SET at = excluded.at",
            params![zone.as_str(), window_end],
        )
        .doing("moving the checkpoint")?;

        tx.commit().doing("committing the window")
    }

    /// The stored records of `zone`, or of every zone, ordered by zone,
    /// account, address and start.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] naming the record id and column of the first
    /// row that does not hold a valid record (including an id that does not
    /// match the row's contents); [`StoreError::Sqlite`] when the query fails.
    pub(crate) fn records(&self, zone: Option<&ZoneId>) -> Result<Vec<UsageRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT rowid, id, zone, account, ip, start, end, bytes_sent, bytes_received
                 FROM usage_records
                 WHERE ?1 IS NULL OR zone = ?1
                 ORDER BY zone, account, ip, start, id",
            )
            .doing("reading usage records")?;
        let mut rows = statement
            .query(params![zone.map(ZoneId::as_str)])
            .doing("reading usage records")?;
        let mut records = Vec::new();
        while let Some(row) = rows.next().doing("reading usage records")? {
            records.push(record_from_row(row)?);
        }
        // Text order of addresses and times is not their order: sort by value.
        records.sort_by(|a, b| {
            (&a.zone, &a.account, a.ip, a.start, a.end)
                .cmp(&(&b.zone, &b.account, b.ip, b.start, b.end))
        });
        Ok(records)
    }
}

fn read_checkpoint(conn: &Connection, zone: &ZoneId) -> Result<Option<OffsetDateTime>, StoreError> {
    let at: Option<String> = conn
        .query_row(
            "SELECT at FROM checkpoints WHERE zone = ?1",
            [zone.as_str()],
            |row| row.get(0),
        )
        .optional()
        .doing("reading the checkpoint")?;
    at.map(|at| {
        parse_time(&at).map_err(|reason| StoreError::Corrupt {
            table: "checkpoints",
            key: zone.to_string(),
            column: "at",
            reason,
        })
    })
    .transpose()
}

fn check_record(
    record: &UsageRecord,
    zone: &ZoneId,
    window: CollectionWindow,
) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidRecord {
        id: record.id,
        reason,
    };
    if &record.zone != zone {
        return Err(invalid(format!(
            "its zone {} is not the window's zone {zone}",
            record.zone
        )));
    }
    if !(window.start() <= record.start && record.start < record.end && record.end <= window.end())
    {
        return Err(invalid(format!(
            "its interval {}..{} is empty or outside the window {}..{}",
            show(&record.start),
            show(&record.end),
            show(&window.start()),
            show(&window.end())
        )));
    }
    let expected = RecordId::of(
        &record.zone,
        &record.account,
        record.ip,
        record.start,
        record.end,
    );
    if record.id != expected {
        return Err(invalid(format!(
            "its id does not match its zone, account, ip and interval (expected {expected})"
        )));
    }
    Ok(())
}

fn to_i64(what: impl FnOnce() -> String, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge {
        what: what(),
        value,
    })
}

fn to_text(what: &'static str, at: OffsetDateTime) -> Result<String, StoreError> {
    at.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|_| StoreError::Unrepresentable { what, at })
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|at| at.to_offset(UtcOffset::UTC))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time ({e})"))
}

fn record_from_row(row: &Row<'_>) -> Result<UsageRecord, StoreError> {
    // The row's key in messages: its id when readable, else its rowid.
    let key = match row.get_ref(1) {
        Ok(ValueRef::Text(id)) => String::from_utf8_lossy(id).into_owned(),
        _ => format!("with rowid {}", row.get::<_, i64>(0).unwrap_or(-1)),
    };
    let corrupt = |column: &'static str, reason: String| StoreError::Corrupt {
        table: "usage_records",
        key: key.clone(),
        column,
        reason,
    };
    let text = |index: usize, column: &'static str| -> Result<String, StoreError> {
        match row.get_ref(index).doing("reading usage records")? {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| corrupt(column, "not valid UTF-8".to_owned())),
            other => Err(corrupt(
                column,
                format!("expected text, found {}", other.data_type()),
            )),
        }
    };
    let bytes = |index: usize, column: &'static str| -> Result<u64, StoreError> {
        match row.get_ref(index).doing("reading usage records")? {
            ValueRef::Integer(n) => {
                u64::try_from(n).map_err(|_| corrupt(column, format!("negative byte count {n}")))
            }
            other => Err(corrupt(
                column,
                format!("expected an integer, found {}", other.data_type()),
            )),
        }
    };

    let id: RecordId = text(1, "id")?
        .parse()
        .map_err(|e: usage_model::ParseRecordIdError| corrupt("id", e.to_string()))?;
    let zone = ZoneId::new(text(2, "zone")?).map_err(|e| corrupt("zone", e.to_string()))?;
    let account =
        AccountId::new(text(3, "account")?).map_err(|e| corrupt("account", e.to_string()))?;
    let ip_text = text(4, "ip")?;
    let ip: IpAddr = ip_text
        .parse()
        .map_err(|_| corrupt("ip", format!("{ip_text:?} is not an IP address")))?;
    let start = parse_time(&text(5, "start")?).map_err(|reason| corrupt("start", reason))?;
    let end = parse_time(&text(6, "end")?).map_err(|reason| corrupt("end", reason))?;
    if start >= end {
        return Err(corrupt(
            "end",
            format!("{} is not after start {}", show(&end), show(&start)),
        ));
    }
    let bytes_sent = bytes(7, "bytes_sent")?;
    let bytes_received = bytes(8, "bytes_received")?;
    let expected = RecordId::of(&zone, &account, ip, start, end);
    if id != expected {
        return Err(corrupt(
            "id",
            format!(
                "does not match the row's zone, account, ip, start and end (expected {expected})"
            ),
        ));
    }
    Ok(UsageRecord {
        id,
        zone,
        account,
        ip,
        start,
        end,
        bytes_sent,
        bytes_received,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::Value;
    use time::macros::datetime;
    use usage_model::ByteCounts;

    fn zone() -> ZoneId {
        ZoneId::new("zone-1").unwrap()
    }

    fn window(start: OffsetDateTime, end: OffsetDateTime) -> CollectionWindow {
        CollectionWindow::new(start, end).unwrap()
    }

    fn record(
        account: &str,
        ip: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
        sent: u64,
        received: u64,
    ) -> UsageRecord {
        UsageRecord::new(
            zone(),
            AccountId::new(account).unwrap(),
            ip.parse().unwrap(),
            start,
            end,
            ByteCounts { sent, received },
        )
    }

    fn first_day() -> WindowCommit {
        let (a, b) = (
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-02 00:00 UTC),
        );
        WindowCommit {
            zone: zone(),
            window: window(a, b),
            previous_checkpoint: None,
            records: vec![
                record(
                    "acct-42",
                    "203.0.113.7",
                    a,
                    datetime!(2026-11-01 10:00 UTC),
                    1_000,
                    250,
                ),
                record(
                    "acct-7",
                    "203.0.113.7",
                    datetime!(2026-11-01 10:00 UTC),
                    b,
                    0,
                    5,
                ),
                record("acct-7", "2001:db8::7", a, b, 1 << 40, 0),
            ],
            anomalies: vec![StoredAnomaly {
                kind: "assign-while-held".to_owned(),
                event_id: 17,
                other_event_id: Some(12),
                detail: "203.0.113.7 assigned to acct-7 while held by acct-42".to_owned(),
            }],
            ips: 2,
            requests: 1,
        }
    }

    fn second_day() -> WindowCommit {
        let (a, b) = (
            datetime!(2026-11-02 00:00 UTC),
            datetime!(2026-11-03 00:00 UTC),
        );
        WindowCommit {
            zone: zone(),
            window: window(a, b),
            previous_checkpoint: Some(a),
            records: vec![record("acct-7", "203.0.113.7", a, b, 10, 20)],
            anomalies: Vec::new(),
            ips: 1,
            requests: 1,
        }
    }

    /// Every row of every table, in a stable order.
    fn dump(store: &Store) -> Vec<(String, Vec<Vec<Value>>)> {
        ["usage_records", "checkpoints", "anomalies", "windows"]
            .iter()
            .map(|table| {
                let mut statement = store
                    .conn
                    .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
                    .unwrap();
                let columns = statement.column_count();
                let rows = statement
                    .query_map([], |row| {
                        (0..columns).map(|i| row.get::<_, Value>(i)).collect()
                    })
                    .unwrap()
                    .collect::<Result<Vec<Vec<Value>>, _>>()
                    .unwrap();
                ((*table).to_owned(), rows)
            })
            .collect()
    }

    fn count(store: &Store, table: &str) -> i64 {
        store
            .conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
    }

    #[test]
    fn processes_racing_to_create_one_file_all_open_it() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..40 {
            let path = dir.path().join(format!("race-{round}.db"));
            let start = std::sync::Arc::new(std::sync::Barrier::new(12));
            let openers: Vec<_> = (0..12)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Store::open(&path).map(|store| store.checkpoint(&zone()))
                    })
                })
                .collect();
            for opener in openers {
                let opened = opener.join().unwrap();
                assert!(matches!(opened, Ok(Ok(None))), "round {round}: {opened:?}");
            }
        }
    }

    #[test]
    fn commit_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("usage.db")).unwrap();
        assert_eq!(store.checkpoint(&zone()).unwrap(), None);
        assert!(store.records(None).unwrap().is_empty());

        let commit = first_day();
        store.commit_window(&commit).unwrap();

        let mut expected = commit.records.clone();
        expected.sort_by(|a, b| (&a.account, a.ip, a.start).cmp(&(&b.account, b.ip, b.start)));
        assert_eq!(store.records(None).unwrap(), expected);
        assert_eq!(store.records(Some(&zone())).unwrap(), expected);
        let other = ZoneId::new("zone-2").unwrap();
        assert!(store.records(Some(&other)).unwrap().is_empty());
        assert_eq!(
            store.checkpoint(&zone()).unwrap(),
            Some(datetime!(2026-11-02 00:00 UTC))
        );
        assert_eq!(store.checkpoint(&other).unwrap(), None);

        let (at, start, sent, records, anomalies): (String, String, i64, i64, i64) = store
            .conn
            .query_row(
                "SELECT c.at, w.start, w.bytes_sent, w.records, w.anomalies
                 FROM checkpoints c JOIN windows w ON w.zone = c.zone",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(at, "2026-11-02T00:00:00Z");
        assert_eq!(start, "2026-11-01T00:00:00Z");
        assert_eq!(sent, 1_000 + (1_i64 << 40));
        assert_eq!((records, anomalies), (3, 1));
        let (kind, event, other_event): (String, i64, Option<i64>) = store
            .conn
            .query_row(
                "SELECT kind, event_id, other_event_id FROM anomalies",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (kind.as_str(), event, other_event),
            ("assign-while-held", 17, Some(12))
        );
        let (start_text, ip_text): (String, String) = store
            .conn
            .query_row(
                "SELECT start, ip FROM usage_records WHERE account = 'acct-42'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (start_text.as_str(), ip_text.as_str()),
            ("2026-11-01T00:00:00Z", "203.0.113.7")
        );
    }

    #[test]
    fn checkpoint_advances_window_by_window_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        let mut store = Store::open(&path).unwrap();
        store.commit_window(&first_day()).unwrap();
        store.commit_window(&second_day()).unwrap();
        drop(store);
        let store = Store::open_existing(&path).unwrap();
        assert_eq!(
            store.checkpoint(&zone()).unwrap(),
            Some(datetime!(2026-11-03 00:00 UTC))
        );
        assert_eq!(store.records(None).unwrap().len(), 4);
        assert_eq!(count(&store, "windows"), 2);
    }

    #[test]
    fn a_window_without_records_still_moves_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("usage.db")).unwrap();
        let mut commit = first_day();
        commit.records.clear();
        commit.anomalies.clear();
        store.commit_window(&commit).unwrap();
        assert_eq!(
            store.checkpoint(&zone()).unwrap(),
            Some(datetime!(2026-11-02 00:00 UTC))
        );
    }

    #[test]
    fn wrong_expected_checkpoint_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("usage.db")).unwrap();
        store.commit_window(&first_day()).unwrap();
        let before = dump(&store);

        // Planned as if the zone were fresh: the first day again.
        let err = store.commit_window(&first_day()).unwrap_err();
        match &err {
            StoreError::CheckpointMoved {
                zone: z,
                expected,
                found,
            } => {
                assert_eq!(z, &zone());
                assert_eq!(*expected, None);
                assert_eq!(*found, Some(datetime!(2026-11-02 00:00 UTC)));
            }
            other => panic!("unexpected error {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("zone-1") && message.contains("2026-11-02T00:00:00Z"),
            "{message}"
        );
        assert_eq!(dump(&store), before);

        // A checkpoint from the future of the stored one is refused as well.
        let mut third = second_day();
        third.window = window(
            datetime!(2026-11-03 00:00 UTC),
            datetime!(2026-11-04 00:00 UTC),
        );
        third.previous_checkpoint = Some(datetime!(2026-11-03 00:00 UTC));
        third.records.clear();
        assert!(matches!(
            store.commit_window(&third),
            Err(StoreError::CheckpointMoved { .. })
        ));
        assert_eq!(dump(&store), before);
    }

    #[test]
    fn a_window_must_start_at_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("usage.db")).unwrap();
        store.commit_window(&first_day()).unwrap();
        let before = dump(&store);
        let mut gap = second_day();
        gap.previous_checkpoint = Some(datetime!(2026-11-01 23:00 UTC));
        let err = store.commit_window(&gap).unwrap_err();
        assert!(
            matches!(err, StoreError::WindowNotAtCheckpoint { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("2026-11-01T23:00:00Z"), "{err}");
        assert_eq!(dump(&store), before);
    }

    #[test]
    fn the_same_record_twice_is_one_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("usage.db")).unwrap();
        let mut commit = first_day();
        commit.records.push(commit.records[0].clone());
        store.commit_window(&commit).unwrap();
        assert_eq!(count(&store, "usage_records"), 3);

        // A replay of the window (its checkpoint rolled back by hand) upserts
        // by id: still one row per record, holding the newer bytes.
        store.conn.execute("DELETE FROM checkpoints", []).unwrap();
        let mut replay = first_day();
        replay.records[0].bytes_sent += 1;
        store.commit_window(&replay).unwrap();
        assert_eq!(count(&store, "usage_records"), 3);
        assert_eq!(count(&store, "windows"), 1);
        assert_eq!(count(&store, "anomalies"), 1);
        let stored = store.records(None).unwrap();
        let replayed = stored
            .iter()
            .find(|r| r.id == replay.records[0].id)
            .unwrap();
        assert_eq!(replayed.bytes_sent, 1_001);
    }

    #[test]
    fn failure_mid_transaction_leaves_the_database_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("usage.db")).unwrap();
        store.commit_window(&first_day()).unwrap();
        let before = dump(&store);

        let mut commit = second_day();
        let (a, b) = (commit.window.start(), commit.window.end());
        commit
            .records
            .push(record("acct-9", "198.51.100.1", a, b, 5, 6));
        commit.anomalies.push(StoredAnomaly {
            kind: "release-of-free-ip".to_owned(),
            event_id: 30,
            other_event_id: None,
            detail: String::new(),
        });
        // Valid records first, then one SQLite cannot hold.
        let too_big = record("acct-9", "198.51.100.2", a, b, 1, 1 << 63);
        commit.records.push(too_big.clone());
        let err = store.commit_window(&commit).unwrap_err();
        match &err {
            StoreError::TooLarge { what, value } => {
                assert_eq!(*value, 1 << 63);
                assert!(what.contains(&too_big.id.to_string()), "{what}");
                assert!(what.contains("bytes_received"), "{what}");
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert_eq!(dump(&store), before);

        // An anomaly event id SQLite cannot hold, after records were written.
        let mut commit = second_day();
        commit.anomalies.push(StoredAnomaly {
            kind: "release-of-free-ip".to_owned(),
            event_id: u64::MAX,
            other_event_id: None,
            detail: String::new(),
        });
        assert!(matches!(
            store.commit_window(&commit),
            Err(StoreError::TooLarge { .. })
        ));
        assert_eq!(dump(&store), before);

        // And the window still commits once the data is right.
        store.commit_window(&second_day()).unwrap();
        assert_eq!(
            store.checkpoint(&zone()).unwrap(),
            Some(datetime!(2026-11-03 00:00 UTC))
        );
    }

    #[test]
    fn records_that_cannot_belong_to_the_window_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("usage.db")).unwrap();
        let before = dump(&store);
        let (a, b) = (
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-02 00:00 UTC),
        );

        let mut outside = first_day();
        outside.records.push(record(
            "acct-1",
            "192.0.2.1",
            a,
            datetime!(2026-11-02 01:00 UTC),
            1,
            1,
        ));
        let err = store.commit_window(&outside).unwrap_err();
        assert!(err.to_string().contains("outside the window"), "{err}");

        let mut other_zone = first_day();
        other_zone.records.push(UsageRecord::new(
            ZoneId::new("zone-2").unwrap(),
            AccountId::new("acct-1").unwrap(),
            "192.0.2.1".parse().unwrap(),
            a,
            b,
            ByteCounts {
                sent: 1,
                received: 1,
            },
        ));
        let err = store.commit_window(&other_zone).unwrap_err();
        assert!(err.to_string().contains("zone zone-2"), "{err}");

        let mut forged = first_day();
        let mut bad = record("acct-1", "192.0.2.1", a, b, 1, 1);
        bad.account = AccountId::new("acct-2").unwrap();
        forged.records.push(bad);
        let err = store.commit_window(&forged).unwrap_err();
        assert!(err.to_string().contains("id does not match"), "{err}");

        assert_eq!(dump(&store), before);
    }

    #[test]
    fn two_handles_on_one_file_never_commit_the_same_window_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        let mut first = Store::open(&path).unwrap();
        let mut second = Store::open(&path).unwrap();
        // Both plan from the same (absent) checkpoint.
        assert_eq!(first.checkpoint(&zone()).unwrap(), None);
        assert_eq!(second.checkpoint(&zone()).unwrap(), None);
        first.commit_window(&first_day()).unwrap();
        let before = dump(&first);
        let err = second.commit_window(&first_day()).unwrap_err();
        assert!(matches!(err, StoreError::CheckpointMoved { .. }), "{err:?}");
        assert_eq!(dump(&first), before);
        assert_eq!(count(&second, "usage_records"), 3);
    }

    #[test]
    fn a_second_writer_waits_instead_of_failing_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        let mut waiting = Store::open(&path).unwrap();
        let holder = Store::open(&path).unwrap();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let holder = holder;
            holder.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            holder
                .conn
                .execute(
                    "INSERT INTO checkpoints (zone, at) VALUES ('zone-1', '2026-11-02T00:00:00Z')",
                    [],
                )
                .unwrap();
            holder.conn.execute_batch("COMMIT").unwrap();
        });
        locked_rx.recv().unwrap();
        // The write lock is held: this waits for it, then sees the moved checkpoint.
        let err = waiting.commit_window(&first_day()).unwrap_err();
        thread.join().unwrap();
        assert!(matches!(err, StoreError::CheckpointMoved { .. }), "{err:?}");
    }

    #[test]
    fn corrupt_rows_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("usage.db")).unwrap();
        store.commit_window(&first_day()).unwrap();
        let id = first_day().records[0].id.to_string();

        let cases = [
            ("ip = '203.0.113.999'", "column ip"),
            ("start = '2026-11-01 00:00'", "column start"),
            ("end = start", "column end"),
            ("bytes_sent = 'lots'", "column bytes_sent"),
            ("account = ''", "column account"),
            ("account = 'acct-43'", "column id"),
        ];
        for (change, want) in cases {
            let tx = store.conn.unchecked_transaction().unwrap();
            tx.execute(
                &format!("UPDATE usage_records SET {change} WHERE id = ?1"),
                [&id],
            )
            .unwrap();
            let err = store.records(None).unwrap_err();
            drop(tx);
            let message = err.to_string();
            assert!(
                message.contains(&id) && message.contains(want),
                "{change}: {message}"
            );
        }
        assert_eq!(store.records(None).unwrap().len(), 3, "rolled back");

        store
            .conn
            .execute("UPDATE checkpoints SET at = 'soon'", [])
            .unwrap();
        let err = store.checkpoint(&zone()).unwrap_err().to_string();
        assert!(err.contains("checkpoints") && err.contains("soon"), "{err}");
    }

    #[test]
    fn foreign_and_missing_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.db");
        let err = Store::open_existing(&missing).unwrap_err();
        assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
        assert!(!missing.exists(), "open_existing created the file");

        let text = dir.path().join("notes.txt");
        std::fs::write(
            &text,
            "this is not a database, not even close to one\n".repeat(20),
        )
        .unwrap();
        let err = Store::open(&text).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("notes.txt"), "{err}");

        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, "").unwrap();
        let err = Store::open_existing(&empty).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaVersion { found: 0, .. }),
            "{err:?}"
        );

        let newer = dir.path().join("newer.db");
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        let err = Store::open(&newer).unwrap_err().to_string();
        assert!(err.contains("schema version 7"), "{err}");

        let foreign = dir.path().join("foreign.db");
        let conn = Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE notes (text TEXT)")
            .unwrap();
        drop(conn);
        let err = Store::open(&foreign).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaVersion { found: 0, .. }),
            "{err:?}"
        );
        let conn = Connection::open(&foreign).unwrap();
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 1, "nothing added to another program's database");
    }

    #[test]
    fn connection_settings() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("usage.db")).unwrap();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let keys: i64 = store
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let timeout: i64 = store
            .conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            (mode.as_str(), keys, version, timeout),
            ("wal", 1, SCHEMA_VERSION, 30_000)
        );
    }

    #[test]
    fn summary_totals_records() {
        let commit = first_day();
        let summary = commit.summary().unwrap();
        assert_eq!(summary.window, commit.window);
        assert_eq!((summary.ips, summary.requests), (2, 1));
        assert_eq!(summary.bytes_sent, 1_000 + (1 << 40));
        assert_eq!(summary.bytes_received, 255);
        assert_eq!((summary.records, summary.anomalies), (3, 1));
        let mut overflow = commit;
        overflow.records[0].bytes_sent = u64::MAX;
        let err = overflow.summary().unwrap_err();
        assert!(matches!(err, StoreError::TotalOverflow { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "total bytes_sent of window 2026-11-01T00:00:00Z..2026-11-02T00:00:00Z of zone zone-1 overflows 64 bits"
        );
    }
}
