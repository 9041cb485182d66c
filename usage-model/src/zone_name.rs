//! The rule for Traffic Sentinel zone names.

/// Whether `name` is a Traffic Sentinel zone name that can be written into a
/// query filter: one or more ASCII letters, digits, `_`, `.` or `-`
/// (`[A-Za-z0-9_.-]+`, DESIGN §5).
///
/// Such a name can never change the meaning of the script it is written
/// into. Zones are TS's (`sourcezone`/`destinationzone`, e.g. `EXTERNAL`),
/// not the cloud's availability zones ([`ZoneId`](crate::ZoneId)).
///
/// # Example
///
/// ```
/// use usage_model::is_ts_zone_name;
///
/// assert!(is_ts_zone_name("EXTERNAL"));
/// assert!(is_ts_zone_name("peer-1.b_2"));
/// assert!(!is_ts_zone_name(""));
/// assert!(!is_ts_zone_name("EXTERNAL\""));
/// ```
pub fn is_ts_zone_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_ts_zone_char)
}

/// Whether `c` may appear in a Traffic Sentinel zone name (see
/// [`is_ts_zone_name`]).
pub fn is_ts_zone_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}
