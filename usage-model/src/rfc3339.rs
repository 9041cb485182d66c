//! RFC 3339 timestamps as this crate reads and writes them: any offset on
//! input, converted to UTC; UTC with `Z` on output.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Why a timestamp was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimestampError {
    /// Not RFC 3339 text.
    Invalid,
    /// RFC 3339 text whose instant, in UTC, falls outside the years 0000–9999.
    OutOfRange,
}

/// Parses RFC 3339 text (`T` or `t` between date and time; `Z`, `z` or any
/// `±HH:MM` offset) and converts it to UTC.
pub(crate) fn parse_utc(text: &str) -> Result<OffsetDateTime, TimestampError> {
    // `time` accepts any byte between date and time; RFC 3339 says `T`.
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(TimestampError::Invalid);
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError::Invalid)?;
    let utc = parsed
        .checked_to_offset(UtcOffset::UTC)
        .ok_or(TimestampError::OutOfRange)?;
    if !(0..=9999).contains(&utc.year()) {
        return Err(TimestampError::OutOfRange);
    }
    Ok(utc)
}

/// Formats `at` in UTC as RFC 3339 with `Z`, or `None` when its UTC year lies
/// outside 0000–9999.
pub(crate) fn format_utc(at: OffsetDateTime) -> Option<String> {
    at.checked_to_offset(UtcOffset::UTC)?.format(&Rfc3339).ok()
}

/// `serde(with = …)` for an [`OffsetDateTime`]: an RFC 3339 string in UTC.
#[cfg(feature = "serde")]
pub(crate) mod serde_utc {
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    use super::{TimestampError, format_utc, parse_utc};

    pub(crate) fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        match format_utc(*at) {
            Some(text) => s.serialize_str(&text),
            None => Err(S::Error::custom(format_args!(
                "timestamp {at} cannot be written as RFC 3339 (year must be 0000 to 9999)"
            ))),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        parse_utc(&text).map_err(|e| match e {
            TimestampError::Invalid => {
                D::Error::custom(format_args!("invalid RFC 3339 timestamp {text:?}"))
            }
            TimestampError::OutOfRange => {
                D::Error::custom(format_args!("timestamp {text:?} is out of range in UTC"))
            }
        })
    }
}

/// `serde(with = …)` for a [`TimeInterval`](crate::TimeInterval): an object
/// `{"start": …, "end": …}` of RFC 3339 strings in UTC, `start <= end`.
#[cfg(feature = "serde")]
pub(crate) mod serde_interval {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::OffsetDateTime;

    use crate::TimeInterval;

    #[derive(Serialize)]
    struct Ref {
        #[serde(with = "super::serde_utc")]
        start: OffsetDateTime,
        #[serde(with = "super::serde_utc")]
        end: OffsetDateTime,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Owned {
        #[serde(with = "super::serde_utc")]
        start: OffsetDateTime,
        #[serde(with = "super::serde_utc")]
        end: OffsetDateTime,
    }

    pub(crate) fn serialize<S: Serializer>(
        interval: &TimeInterval,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        Ref {
            start: interval.start(),
            end: interval.end(),
        }
        .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeInterval, D::Error> {
        let Owned { start, end } = Owned::deserialize(d)?;
        TimeInterval::new(start, end).map_err(|_| {
            D::Error::custom(format_args!(
                "interval start {start} is after its end {end}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn offsets_convert_to_utc() {
        assert_eq!(
            parse_utc("2026-11-01T12:00:00+02:00"),
            Ok(datetime!(2026-11-01 10:00 UTC))
        );
        assert_eq!(
            parse_utc("2026-11-01t09:30:00.25-00:30"),
            Ok(datetime!(2026-11-01 10:00:00.25 UTC))
        );
        assert_eq!(
            parse_utc("2026-11-01T10:00:00z"),
            Ok(datetime!(2026-11-01 10:00 UTC))
        );
        let utc = parse_utc("2026-11-01T12:00:00+02:00").map(OffsetDateTime::offset);
        assert_eq!(utc, Ok(UtcOffset::UTC));
    }

    #[test]
    fn refuses_non_rfc3339() {
        for text in [
            "",
            "2026-11-01",
            "2026-11-01 10:00:00Z",
            "2026-11-01X10:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-01T10:00:00",
            "2026-11-01T10:00:00+2:00",
            "2026-11-01T10:00:00Z ",
            "2026-11-01T24:00:00Z",
            "1667296800",
        ] {
            assert_eq!(parse_utc(text), Err(TimestampError::Invalid), "{text:?}");
        }
    }

    #[test]
    fn refuses_instants_outside_utc_years_0000_to_9999() {
        assert_eq!(
            parse_utc("9999-12-31T23:59:59-01:00"),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            parse_utc("0000-01-01T00:30:00+01:00"),
            Err(TimestampError::OutOfRange)
        );
        assert!(parse_utc("0000-01-01T00:30:00Z").is_ok());
        assert!(parse_utc("9999-12-31T23:59:59.999999999Z").is_ok());
    }

    #[test]
    fn formats_utc_with_z() {
        let at = datetime!(2026-11-01 12:00:00.5 +02:00);
        assert_eq!(format_utc(at).as_deref(), Some("2026-11-01T10:00:00.5Z"));
        assert_eq!(format_utc(datetime!(-0001-06-01 0:00 UTC)), None);
    }
}
