//! Human-readable rendering of instants and durations in messages.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// Shows an instant as RFC 3339 in UTC (`2026-11-01T10:00:00Z`).
#[derive(Clone, Copy)]
pub(crate) struct Instant(pub(crate) OffsetDateTime);

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self
            .0
            .checked_to_offset(UtcOffset::UTC)
            .and_then(|utc| utc.format(&Rfc3339).ok());
        match text {
            Some(text) => f.write_str(&text),
            // Years outside 0000–9999 have no RFC 3339 form.
            None => write!(f, "{}", self.0),
        }
    }
}

/// Shows a duration in the largest whole unit: `1d`, `2h`, `15m`, `90s`,
/// or nanoseconds when it is not a whole number of seconds.
#[derive(Clone, Copy)]
pub(crate) struct Span(pub(crate) Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.whole_nanoseconds();
        const SECOND: i128 = 1_000_000_000;
        for (unit, name) in [
            (86_400 * SECOND, "d"),
            (3_600 * SECOND, "h"),
            (60 * SECOND, "m"),
        ] {
            if ns != 0 && ns % unit == 0 {
                return write!(f, "{}{name}", ns / unit);
            }
        }
        if ns % SECOND == 0 {
            write!(f, "{}s", ns / SECOND)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::{Instant, Span};

    #[test]
    fn spans_use_the_largest_whole_unit() {
        assert_eq!(Span(Duration::days(2)).to_string(), "2d");
        assert_eq!(Span(Duration::hours(25)).to_string(), "25h");
        assert_eq!(Span(Duration::minutes(15)).to_string(), "15m");
        assert_eq!(Span(Duration::seconds(90)).to_string(), "90s");
        assert_eq!(Span(Duration::ZERO).to_string(), "0s");
        assert_eq!(Span(Duration::hours(-2)).to_string(), "-2h");
        assert_eq!(
            Span(Duration::milliseconds(1500)).to_string(),
            "1500000000ns"
        );
    }

    #[test]
    fn instants_are_rfc3339_in_utc() {
        assert_eq!(
            Instant(datetime!(2026-11-01 12:00 +02:00)).to_string(),
            "2026-11-01T10:00:00Z"
        );
    }
}
