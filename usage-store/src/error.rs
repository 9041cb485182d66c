//! The error of every store operation.

use std::path::PathBuf;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use usage_model::{AccountId, CollectionWindow, RecordId, UsageRecord, ZoneId};

/// Why a store operation (or a collection through the store) failed.
///
/// Whatever the error, a failed write (a commit, a restatement, late-event
/// anomalies) changed nothing: its transaction was rolled back. No message
/// ever shows a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The zone has no checkpoint and no start was given.
    #[error(
        "no checkpoint stored for zone {zone} and no --from given; pass --from T for the first run"
    )]
    NoStart {
        /// The zone.
        zone: ZoneId,
    },
    /// The stored checkpoint is not on the grid the zone is collected on.
    #[error(
        "checkpoint {} of zone {zone} is not on the grid of {grid} s; collect with the granularity it was collected with",
        show(.checkpoint)
    )]
    CheckpointOffGrid {
        /// The zone.
        zone: ZoneId,
        /// Its stored checkpoint.
        checkpoint: OffsetDateTime,
        /// The grid, in seconds.
        grid: u32,
    },
    /// A setting differs from the one the zone was billed with (DESIGN §12).
    #[error(
        "zone {zone} was billed with {setting} = {}, not {}; a change applies only with --accept-changed-settings (from the next window on)",
        setting_value(.stored),
        setting_value(.new)
    )]
    SettingsChanged {
        /// The zone.
        zone: ZoneId,
        /// The setting's name.
        setting: String,
        /// The value stored with the zone's windows.
        stored: String,
        /// The value asked for now.
        new: String,
    },
    /// A restatement range that cannot be restated.
    #[error("cannot restate zone {zone}: {reason}")]
    RestateRange {
        /// The zone.
        zone: ZoneId,
        /// Why.
        reason: String,
    },
    /// The billing core refused a schedule, a plan or an answer.
    #[error(transparent)]
    Plan(usage_correlator::Error),
    /// Traffic Sentinel could not be asked, or its answer was refused.
    #[error("{0}")]
    Traffic(Box<dyn std::error::Error + Send + Sync>),
    /// One collection window failed: nothing of it was stored.
    #[error(
        "window {} of zone {zone} failed and stored nothing ({committed} earlier window(s) of this run stay committed; run again to resume): {source}",
        show_window(.window)
    )]
    Window {
        /// The zone.
        zone: ZoneId,
        /// The window.
        window: CollectionWindow,
        /// Windows committed by this run before it.
        committed: u64,
        /// What went wrong.
        source: Box<StoreError>,
    },
    /// A store target that is neither a path nor a valid `postgres://` or
    /// `mysql://` URL, a password given twice or to a SQLite target, or a
    /// SQLite path in a directory that does not exist.
    #[error("invalid store target {target}: {reason}")]
    InvalidTarget {
        /// The target as given, with any password replaced by `***`.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The SQLite file does not exist, and the store was opened read-only.
    #[error("database {} does not exist", .path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The store could not be reached or opened.
    #[error("cannot open store {target}: {reason}")]
    Open {
        /// The target, without its password.
        target: String,
        /// The reason given by the engine, without the password.
        reason: String,
    },
    /// The database holds tables of another program, or a SQLite file is not
    /// a database; nothing was added to it.
    #[error("store {target} is not a usage store: {reason}")]
    Foreign {
        /// The target, without its password.
        target: String,
        /// What was found.
        reason: String,
    },
    /// The store was written by a newer program.
    #[error("store {target}: schema version {found} is newer than this program's {supported}")]
    SchemaTooNew {
        /// The target, without its password.
        target: String,
        /// The stored version.
        found: i64,
        /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
        supported: i64,
    },
    /// A read-only open found an older schema, which only a read-write open
    /// upgrades.
    #[error(
        "store {target} has schema version {found}, older than this program's {supported}; open it read-write once (e.g. by collecting) to upgrade it"
    )]
    SchemaOutdated {
        /// The target, without its password.
        target: String,
        /// The stored version.
        found: i64,
        /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
        supported: i64,
    },
    /// A write was asked of a store opened with
    /// [`OpenMode::ReadOnly`](crate::OpenMode::ReadOnly).
    #[error("store {target} is open read-only")]
    ReadOnly {
        /// The target, without its password.
        target: String,
    },
    /// A statement failed.
    #[error("database error while {action}: {message}")]
    Database {
        /// What was being done, e.g. `storing usage records`.
        action: &'static str,
        /// The engine's message.
        message: String,
        /// The engine's error code (SQLSTATE, MySQL error number or SQLite
        /// result code), when it gave one.
        code: Option<String>,
    },
    /// The zone's checkpoint is not the one the window was planned from:
    /// another collector committed in between. Nothing was written.
    #[error(
        "checkpoint of zone {zone} moved: expected {}, found {}; another collector committed first, nothing was written",
        show_opt(.expected),
        show_opt(.found)
    )]
    CheckpointMoved {
        /// The zone.
        zone: ZoneId,
        /// The checkpoint the window was planned from.
        expected: Option<OffsetDateTime>,
        /// The checkpoint stored now.
        found: Option<OffsetDateTime>,
    },
    /// A window that does not start at the checkpoint it was planned from.
    #[error(
        "window {} of zone {zone} does not start at its checkpoint {}",
        show_window(.window),
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
    /// A window that crosses a UTC midnight: the day report needs every
    /// record inside one day.
    #[error("window {} of zone {zone} crosses a UTC midnight", show_window(.window))]
    WindowCrossesMidnight {
        /// The zone.
        zone: ZoneId,
        /// The window.
        window: CollectionWindow,
    },
    /// A restatement or late-event anomaly names a window that was never
    /// committed (with exactly this start and end).
    #[error("window {} of zone {zone} is not billed", show_window(.window))]
    WindowNotBilled {
        /// The zone.
        zone: ZoneId,
        /// The window.
        window: CollectionWindow,
    },
    /// A restatement of a window that does not end at or before the zone's
    /// checkpoint.
    #[error(
        "window {} of zone {zone} does not lie before its checkpoint {}",
        show_window(.window),
        show_opt(.checkpoint)
    )]
    WindowNotBeforeCheckpoint {
        /// The zone.
        zone: ZoneId,
        /// The window.
        window: CollectionWindow,
        /// The zone's checkpoint.
        checkpoint: Option<OffsetDateTime>,
    },
    /// A record that cannot belong to the window being stored.
    #[error("record {id} cannot be stored: {reason}")]
    InvalidRecord {
        /// The record's id.
        id: RecordId,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored record of another id already holds the record's natural key
    /// `(zone, account, ip, start, end)`; nothing was overwritten.
    #[error(
        "record {} cannot be stored: record {stored_id} already holds zone {}, account {}, ip {}, {}..{}",
        .record.id,
        .record.zone,
        .record.account,
        .record.ip,
        show(&.record.start),
        show(&.record.end)
    )]
    RecordKeyTaken {
        /// The record refused.
        record: Box<UsageRecord>,
        /// The id stored with its natural key.
        stored_id: String,
    },
    /// A text value the schema cannot hold: a zone, account, setting name or
    /// anomaly kind longer than its column, or an empty or repeated setting
    /// name.
    #[error("{what} {value:?} cannot be stored: {reason}")]
    InvalidValue {
        /// Which value, e.g. `zone` or `setting name`.
        what: &'static str,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An instant the schema cannot hold.
    #[error("{what} {} cannot be stored: {reason}", show(.at))]
    UnstorableTime {
        /// Which instant, e.g. `record start`.
        what: &'static str,
        /// The instant.
        at: OffsetDateTime,
        /// Why not.
        reason: &'static str,
    },
    /// A count that does not fit a signed 64-bit integer.
    #[error("{what} {value} is too large to store")]
    TooLarge {
        /// Which number.
        what: String,
        /// Its value.
        value: String,
    },
    /// A byte total that does not fit in `u64`: reported, never capped.
    #[error("total {column} of zone {zone}, account {account}{} overflows 64 bits", show_day(.day))]
    TotalOverflow {
        /// `bytes_sent` or `bytes_received`.
        column: &'static str,
        /// The zone.
        zone: ZoneId,
        /// The account.
        account: AccountId,
        /// The UTC day, in the day report.
        day: Option<time::Date>,
    },
    /// A stored value that is not what the schema promises.
    #[error("corrupt {table} row {key}: column {column}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// The column.
        column: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Posting to CloudStack was asked of a store that is not `mysql://`.
    #[error(
        "posting usage to CloudStack needs a mysql:// store on CloudStack's server; {target} is not one"
    )]
    CloudStackNeedsMySql {
        /// The target, without its password.
        target: String,
    },
    /// CloudStack has no live traffic monitor registered for the zone
    /// (`--monitor cloudstack`): no `host` row of `type` `TrafficMonitor`
    /// with `data_center_id` = the zone and `removed` `NULL`.
    #[error(
        "zone {zone} has no traffic monitor registered in CloudStack: no live host of type TrafficMonitor with data_center_id {zone} ({hint})"
    )]
    NoTrafficMonitor {
        /// The zone asked for.
        zone: ZoneId,
        /// What to do: `add one with addTrafficMonitor`, or, for a zone
        /// that is not a decimal number, that CloudStack's zones are.
        hint: &'static str,
    },
    /// A CloudStack database name that cannot name a MySQL database.
    #[error(
        "invalid CloudStack database name {name:?}: a MySQL database name is 1 to 64 characters, without NUL or a trailing space"
    )]
    CloudStackDatabase {
        /// The name given.
        name: String,
    },
    /// An account or zone that is not a CloudStack id (decimal digits), so
    /// its usage cannot be posted to `user_statistics`.
    #[error(
        "{what} {value:?} is not a CloudStack id (a decimal number), so its usage cannot be posted"
    )]
    NotCloudStackId {
        /// `account` or `zone`.
        what: &'static str,
        /// The value.
        value: String,
    },
}

pub(crate) fn show(at: &OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

fn show_opt(at: &Option<OffsetDateTime>) -> String {
    at.as_ref().map_or_else(|| "none".to_owned(), show)
}

fn show_window(window: &CollectionWindow) -> String {
    format!("{}..{}", show(&window.start()), show(&window.end()))
}

fn show_day(day: &Option<time::Date>) -> String {
    day.map_or_else(String::new, |day| format!(", day {day}"))
}

/// Attaches what was being done to an engine's error.
pub(crate) trait Doing<T> {
    fn doing(self, action: &'static str) -> Result<T, StoreError>;
}

impl<T> Doing<T> for Result<T, sqlx::Error> {
    fn doing(self, action: &'static str) -> Result<T, StoreError> {
        self.map_err(|error| database_error(action, &error))
    }
}

/// The [`StoreError::Database`] of an engine's error.
pub(crate) fn database_error(action: &'static str, error: &sqlx::Error) -> StoreError {
    let code = match error {
        sqlx::Error::Database(database) => database.code().map(|code| code.into_owned()),
        _ => None,
    };
    let message = match error {
        sqlx::Error::Database(database) => database.message().to_owned(),
        other => other.to_string(),
    };
    StoreError::Database {
        action,
        message,
        code,
    }
}

/// A stored setting's value for a message: quoted, or `none` when empty
/// (no excluded account, no zone list).
fn setting_value(value: &str) -> String {
    if value.is_empty() {
        "none".to_owned()
    } else {
        format!("{value:?}")
    }
}
