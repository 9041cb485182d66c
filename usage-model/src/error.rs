use time::OffsetDateTime;

use crate::RecordId;

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identifier (account or zone) was empty or held a control character.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidId {
        /// What kind of identifier: `"account"` or `"zone"`.
        kind: &'static str,
        /// The value that was refused.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A window whose start is not before its end.
    #[error("empty collection window [{start}, {end})")]
    EmptyWindow {
        /// The start that was given.
        start: OffsetDateTime,
        /// The end that was given.
        end: OffsetDateTime,
    },
    /// Adding byte counts overflowed `u64`.
    #[error("byte count overflow adding {left} and {right}")]
    Overflow {
        /// The left operand.
        left: u64,
        /// The right operand.
        right: u64,
    },
    /// The same `(tag, ip)` pair was answered twice.
    #[error("duplicate answer for query {tag} and ip {ip}")]
    DuplicateAnswer {
        /// The query tag.
        tag: crate::QueryTag,
        /// The address.
        ip: std::net::IpAddr,
    },
    /// An instant has no UTC equivalent within the range of
    /// [`OffsetDateTime`] (only possible at the very ends of that range).
    #[error("timestamp {value} is out of range in UTC")]
    TimeOutOfRange {
        /// The instant that was given.
        value: OffsetDateTime,
    },
    /// A line of an events file could not be read as an event.
    ///
    /// Displayed as `line 12: field "at": invalid RFC 3339 timestamp "…"`, or
    /// without the field part when the line as a whole is wrong.
    #[error("line {line}: {}{reason}", field_prefix(*field))]
    EventLine {
        /// The 1-based line number.
        line: usize,
        /// The field that was wrong (`"id"`, `"type"`, `"at"`, `"zone"`,
        /// `"account"` or `"ip"`), or `None` when the line itself was wrong
        /// (not JSON, not an object, trailing text, …).
        field: Option<&'static str>,
        /// What was wrong, with the offending value quoted.
        reason: String,
    },
    /// Reading or writing a line of an events file failed.
    #[error("line {line}: i/o error: {source}")]
    Io {
        /// The 1-based number of the line being read or written.
        line: usize,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An event's instant cannot be written as RFC 3339, whose years run
    /// from 0000 to 9999.
    #[error("event {id}: timestamp {at} cannot be written as RFC 3339 (year must be 0000 to 9999)")]
    UnwritableTimestamp {
        /// The event's id.
        id: u64,
        /// The instant that was refused.
        at: OffsetDateTime,
    },
    /// A grid step that is not a positive whole number of seconds dividing
    /// a day.
    #[error(
        "invalid grid {value:?}: must be a whole number of seconds that divides a day (86400 s), e.g. 60 or 3600"
    )]
    InvalidGrid {
        /// The step that was refused.
        value: String,
    },
    /// A deserialized [`UsageRecord`](crate::UsageRecord) carries an id that
    /// is not the id of its `(zone, account, ip, start, end)`.
    #[error("record id {found} does not match its fields (expected {expected})")]
    RecordIdMismatch {
        /// The id the record carried.
        found: RecordId,
        /// The id computed from its fields.
        expected: RecordId,
    },
}

fn field_prefix(field: Option<&'static str>) -> String {
    match field {
        Some(name) => format!("field \"{name}\": "),
        None => String::new(),
    }
}
