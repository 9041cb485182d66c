//! The schema, the same tables and columns on every engine, and its version.
//!
//! # Schema (version 3, in table `schema_version`)
//!
//! Written here in SQLite's spelling; PostgreSQL uses `BIGINT` and
//! `TEXT COLLATE "C"`, MySQL `BIGINT` and `VARCHAR(n)` in a binary, no-pad
//! `utf8mb4` collation, so that text keys compare and sort byte by byte on
//! all three. Times are Unix seconds (UTC, whole seconds, from 1970). Every
//! `u64` (bytes, event ids) is two columns `*_hi` and `*_lo`, its high and
//! low 32 bits, so that `SUM`s stay exact in 64-bit SQL integers on every
//! engine; window totals and adjustments, which may exceed `u64`, keep the
//! low 32 bits in `*_lo` and the rest in `*_hi`. Digests are 64 lowercase
//! hex digits.
//!
//! ```sql
//! CREATE TABLE schema_version (version INTEGER NOT NULL);  -- one row: 3
//! CREATE TABLE zones (
//!     zone TEXT PRIMARY KEY,                  -- at most 255 characters
//!     checkpoint_at INTEGER,                  -- end of the last window
//!     event_log_digest TEXT                   -- log before the checkpoint
//! );
//! CREATE TABLE zone_settings (                -- what the zone is billed with
//!     zone TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
//!     PRIMARY KEY (zone, name)
//! );
//! CREATE TABLE windows (                      -- one row per committed window
//!     zone TEXT NOT NULL, start_at INTEGER NOT NULL, end_at INTEGER NOT NULL,
//!     ownership_digest TEXT,                  -- NULL when migrated from version 1
//!     ips INTEGER NOT NULL, requests INTEGER NOT NULL,
//!     records INTEGER NOT NULL, anomalies INTEGER NOT NULL,
//!     sent_hi INTEGER NOT NULL, sent_lo INTEGER NOT NULL,
//!     received_hi INTEGER NOT NULL, received_lo INTEGER NOT NULL,
//!     collected_at INTEGER NOT NULL,          -- also set by a restatement
//!     restatements INTEGER NOT NULL,          -- how often it was restated
//!     grid_seconds INTEGER,                   -- its grid; NULL before version 3
//!     PRIMARY KEY (zone, start_at)
//! );
//! CREATE TABLE usage_records (
//!     id TEXT PRIMARY KEY,                    -- RecordId, 32 hex digits
//!     zone TEXT NOT NULL, account TEXT NOT NULL,
//!     ip TEXT NOT NULL,                       -- 203.0.113.7, 2001:db8::7
//!     ip_key TEXT NOT NULL,                   -- sorts by value: 4cb007107, 62001…
//!     start_at INTEGER NOT NULL, end_at INTEGER NOT NULL,
//!     sent_hi INTEGER NOT NULL, sent_lo INTEGER NOT NULL,
//!     received_hi INTEGER NOT NULL, received_lo INTEGER NOT NULL,
//!     UNIQUE (zone, account, ip_key, start_at, end_at)   -- the natural key
//! );
//! CREATE INDEX usage_records_by_time ON usage_records (zone, start_at);
//! CREATE TABLE anomalies (                    -- keyed to their window
//!     zone TEXT NOT NULL, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
//!     kind TEXT NOT NULL,                     -- e.g. assign-while-held, late-event
//!     event_hi INTEGER NOT NULL, event_lo INTEGER NOT NULL,
//!     other_event_hi INTEGER, other_event_lo INTEGER,
//!     detail TEXT NOT NULL,
//!     PRIMARY KEY (zone, window_start, kind, event_hi, event_lo)
//! );
//! CREATE TABLE adjustments (                  -- one per account a restatement changed
//!     zone TEXT NOT NULL, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
//!     revision INTEGER NOT NULL,              -- the window's restatement number
//!     account TEXT NOT NULL,
//!     sent_negative INTEGER NOT NULL, sent_hi INTEGER NOT NULL, sent_lo INTEGER NOT NULL,
//!     received_negative INTEGER NOT NULL, received_hi INTEGER NOT NULL, received_lo INTEGER NOT NULL,
//!     restated_at INTEGER NOT NULL,
//!     PRIMARY KEY (zone, window_start, revision, account)
//! );
//! ```
//!
//! Version 1 was the SQLite file of the first release (RFC 3339 text times,
//! signed byte counts, `PRAGMA user_version = 1`); a read-write open
//! migrates it in place (see `migrate_v1`). Version 2 lacked
//! `windows.grid_seconds`; a read-write open adds the column (`NULL` in the
//! rows already there: such a window is taken to be on the zone's current
//! grid).

use crate::dialect::Dialect;

/// The schema version this program reads and writes.
pub const SCHEMA_VERSION: i64 = 3;

/// The longest zone or account name, in characters.
pub(crate) const MAX_NAME: usize = 255;
/// The longest anomaly kind or setting name, in characters.
pub(crate) const MAX_KIND: usize = 64;

/// The statements that create the schema, in order.
pub(crate) fn create_statements(dialect: Dialect, collation: &str) -> Vec<String> {
    let name = dialect.key_text(MAX_NAME as u32, collation);
    let kind = dialect.key_text(MAX_KIND as u32, collation);
    let id = dialect.key_text(32, collation);
    let ip = dialect.key_text(64, collation);
    let ip_key = dialect.key_text(33, collation);
    let digest = dialect.key_text(64, collation);
    let text = dialect.long_text(collation);
    let int = dialect.integer();
    let options = dialect.table_options(collation);
    vec![
        format!("CREATE TABLE schema_version (version {int} NOT NULL){options}"),
        format!(
            "CREATE TABLE zones (
                zone {name} NOT NULL PRIMARY KEY,
                checkpoint_at {int},
                event_log_digest {digest}
            ){options}"
        ),
        format!(
            "CREATE TABLE zone_settings (
                zone {name} NOT NULL,
                name {kind} NOT NULL,
                value {text} NOT NULL,
                PRIMARY KEY (zone, name)
            ){options}"
        ),
        format!(
            "CREATE TABLE windows (
                zone {name} NOT NULL,
                start_at {int} NOT NULL,
                end_at {int} NOT NULL,
                ownership_digest {digest},
                ips {int} NOT NULL,
                requests {int} NOT NULL,
                records {int} NOT NULL,
                anomalies {int} NOT NULL,
                sent_hi {int} NOT NULL,
                sent_lo {int} NOT NULL,
                received_hi {int} NOT NULL,
                received_lo {int} NOT NULL,
                collected_at {int} NOT NULL,
                restatements {int} NOT NULL,
                grid_seconds {int},
                PRIMARY KEY (zone, start_at)
            ){options}"
        ),
        format!(
            "CREATE TABLE usage_records (
                id {id} NOT NULL PRIMARY KEY,
                zone {name} NOT NULL,
                account {name} NOT NULL,
                ip {ip} NOT NULL,
                ip_key {ip_key} NOT NULL,
                start_at {int} NOT NULL,
                end_at {int} NOT NULL,
                sent_hi {int} NOT NULL,
                sent_lo {int} NOT NULL,
                received_hi {int} NOT NULL,
                received_lo {int} NOT NULL,
                UNIQUE (zone, account, ip_key, start_at, end_at)
            ){options}"
        ),
        "CREATE INDEX usage_records_by_time ON usage_records (zone, start_at)".to_owned(),
        format!(
            "CREATE TABLE anomalies (
                zone {name} NOT NULL,
                window_start {int} NOT NULL,
                window_end {int} NOT NULL,
                kind {kind} NOT NULL,
                event_hi {int} NOT NULL,
                event_lo {int} NOT NULL,
                other_event_hi {int},
                other_event_lo {int},
                detail {text} NOT NULL,
                PRIMARY KEY (zone, window_start, kind, event_hi, event_lo)
            ){options}"
        ),
        format!(
            "CREATE TABLE adjustments (
                zone {name} NOT NULL,
                window_start {int} NOT NULL,
                window_end {int} NOT NULL,
                revision {int} NOT NULL,
                account {name} NOT NULL,
                sent_negative {int} NOT NULL,
                sent_hi {int} NOT NULL,
                sent_lo {int} NOT NULL,
                received_negative {int} NOT NULL,
                received_hi {int} NOT NULL,
                received_lo {int} NOT NULL,
                restated_at {int} NOT NULL,
                PRIMARY KEY (zone, window_start, revision, account)
            ){options}"
        ),
    ]
}
