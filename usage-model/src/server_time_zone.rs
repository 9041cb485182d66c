//! The time zone a Traffic Sentinel server reads its interval text in.

use std::fmt;

use jiff::tz::TimeZone;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::Error;

/// The time zone in which a Traffic Sentinel server reads the
/// `yyyyMMdd HH:mm:ss` interval strings of a query (DESIGN §3): a fixed UTC
/// offset, or an IANA time zone whose daylight-saving changes apply per
/// instant.
///
/// Names are looked up in the IANA time zone database built into the
/// program (`jiff`'s bundled copy), never in this machine's time zone or
/// its zone files, so every machine reads a time alike.
///
/// Converting local text to an instant ([`ServerTimeZone::from_local`])
/// reads a local time that occurs twice (the repeated hour when clocks go
/// back) as the **earlier** of its two instants, and a local time that
/// does not occur (the hour skipped when clocks go forward) with the offset
/// in force before the change (as if the clocks had not yet moved), so
/// that later readings never mean earlier instants.
///
/// # Example
///
/// ```
/// use time::macros::{datetime, offset};
/// use usage_model::ServerTimeZone;
///
/// let berlin = ServerTimeZone::named("Europe/Berlin")?;
/// // 00:30 UTC on 2026-10-25 is 02:30 CEST; 01:30 UTC is 02:30 CET.
/// assert_eq!(berlin.to_local(datetime!(2026-10-25 00:30 UTC))?, datetime!(2026-10-25 02:30));
/// assert_eq!(berlin.to_local(datetime!(2026-10-25 01:30 UTC))?, datetime!(2026-10-25 02:30));
/// // Read back, 02:30 is the earlier instant.
/// assert_eq!(berlin.from_local(datetime!(2026-10-25 02:30))?, datetime!(2026-10-25 00:30 UTC));
///
/// let fixed = ServerTimeZone::fixed(offset!(-08:00));
/// assert_eq!(fixed.to_local(datetime!(2026-11-01 10:00 UTC))?, datetime!(2026-11-01 02:00));
/// assert_eq!(fixed.to_string(), "-08:00");
/// # Ok::<(), usage_model::Error>(())
/// ```
#[derive(Clone)]
pub struct ServerTimeZone {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Fixed(UtcOffset),
    Named { name: String, zone: TimeZone },
}

impl ServerTimeZone {
    /// Coordinated Universal Time (the default of a monitor).
    pub const UTC: ServerTimeZone = ServerTimeZone {
        kind: Kind::Fixed(UtcOffset::UTC),
    };

    /// A zone that is always `offset` from UTC.
    pub fn fixed(offset: UtcOffset) -> ServerTimeZone {
        ServerTimeZone {
            kind: Kind::Fixed(offset),
        }
    }

    /// The IANA time zone `name`, e.g. `Europe/Berlin` (any case).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] (kind `"time zone"`) when the bundled IANA
    /// database has no zone of that name.
    pub fn named(name: &str) -> Result<ServerTimeZone, Error> {
        let zone = jiff::tz::db().get(name).map_err(|_| Error::InvalidId {
            kind: "time zone",
            value: name.to_owned(),
            reason: "not an IANA time zone name",
        })?;
        let name = zone.iana_name().unwrap_or(name).to_owned();
        Ok(ServerTimeZone {
            kind: Kind::Named { name, zone },
        })
    }

    /// The IANA name, for a named zone.
    pub fn name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Fixed(_) => None,
            Kind::Named { name, .. } => Some(name),
        }
    }

    /// The offset of a zone that has one offset at every instant: a fixed
    /// zone, or a named zone without any change of offset (`UTC`,
    /// `Etc/GMT+3`). `None` for a zone whose offset changes.
    pub fn constant_offset(&self) -> Option<UtcOffset> {
        match &self.kind {
            Kind::Fixed(offset) => Some(*offset),
            Kind::Named { zone, .. } => {
                let never_changes = zone.following(jiff::Timestamp::MIN).next().is_none();
                let offset = zone.to_offset(jiff::Timestamp::UNIX_EPOCH).seconds();
                never_changes
                    .then(|| UtcOffset::from_whole_seconds(offset).ok())
                    .flatten()
            }
        }
    }

    /// The offset, for a fixed zone.
    pub fn fixed_offset(&self) -> Option<UtcOffset> {
        match self.kind {
            Kind::Fixed(offset) => Some(offset),
            Kind::Named { .. } => None,
        }
    }

    /// The zone's offset from UTC at the instant `at`.
    ///
    /// # Errors
    ///
    /// [`Error::TimeOutOfRange`] for an instant outside the years -9999 to
    /// 9999.
    pub fn offset_at(&self, at: OffsetDateTime) -> Result<UtcOffset, Error> {
        match &self.kind {
            Kind::Fixed(offset) => Ok(*offset),
            Kind::Named { zone, .. } => {
                let seconds = zone.to_offset(timestamp(at)?).seconds();
                UtcOffset::from_whole_seconds(seconds)
                    .map_err(|_| Error::TimeOutOfRange { value: at })
            }
        }
    }

    /// The server's wall-clock reading of the instant `at`.
    ///
    /// # Errors
    ///
    /// [`Error::TimeOutOfRange`] when the reading falls outside the range
    /// of the `time` crate's dates.
    pub fn to_local(&self, at: OffsetDateTime) -> Result<PrimitiveDateTime, Error> {
        let local = at
            .checked_to_offset(self.offset_at(at)?)
            .ok_or(Error::TimeOutOfRange { value: at })?;
        Ok(PrimitiveDateTime::new(local.date(), local.time()))
    }

    /// The instant the server means by the wall-clock reading `local`: the
    /// earlier of two instants in a repeated hour; in a skipped hour, the
    /// reading with the offset in force before the change.
    ///
    /// # Errors
    ///
    /// [`Error::TimeOutOfRange`] when the instant falls outside the years
    /// -9999 to 9999.
    pub fn from_local(&self, local: PrimitiveDateTime) -> Result<OffsetDateTime, Error> {
        match &self.kind {
            Kind::Fixed(offset) => local
                .assume_offset(*offset)
                .checked_to_offset(UtcOffset::UTC)
                .ok_or(Error::TimeOutOfRange {
                    value: local.assume_utc(),
                }),
            Kind::Named { zone, .. } => {
                let out_of_range = || Error::TimeOutOfRange {
                    value: local.assume_utc(),
                };
                let civil = jiff::civil::DateTime::new(
                    i16::try_from(local.year()).map_err(|_| out_of_range())?,
                    u8::from(local.month()) as i8,
                    local.day() as i8,
                    local.hour() as i8,
                    local.minute() as i8,
                    local.second() as i8,
                    local.nanosecond() as i32,
                )
                .map_err(|_| out_of_range())?;
                let instant = zone
                    .to_ambiguous_timestamp(civil)
                    // The earlier instant in a fold, the offset before
                    // the change in a gap.
                    .compatible()
                    .map_err(|_| out_of_range())?;
                instant_of(instant).ok_or_else(out_of_range)
            }
        }
    }

    /// The instant to write for the interval boundary `at` on the server's
    /// clock (DESIGN §3, the autumn fold): `at` itself outside a repeated
    /// local hour. In the second reading of a repeated hour, the earlier of
    /// its two readings, which is how the server reads the wall time anyway
    /// (an hour earlier in most zones). In the first reading, the start of
    /// the repeated hour.
    ///
    /// Boundaries keep their order (`a <= b` gives
    /// `fold_boundary(a) <= fold_boundary(b)`) and are on the server's clock
    /// as it reads them back, so intervals that met still meet, none runs
    /// backwards and no bucket is asked twice. What that costs: the buckets
    /// of a repeated hour go to the interval that reaches past its second
    /// reading, or that starts in it. On an hourly grid only the repeated
    /// hour's own start lies in its first reading, so every boundary is
    /// written as the earlier reading.
    ///
    /// # Errors
    ///
    /// [`Error::TimeOutOfRange`] at the ends of the supported range.
    pub fn fold_boundary(&self, at: OffsetDateTime) -> Result<OffsetDateTime, Error> {
        let Kind::Named { zone, .. } = &self.kind else {
            return Ok(at);
        };
        let read_back = self.from_local(self.to_local(at)?)?;
        if read_back < at {
            // The second reading: the server reads the earlier instant.
            return Ok(read_back);
        }
        // The first reading when the clocks go back within the length of
        // the change after `at`: the repeated hour starts that long before
        // the change.
        let Some(change) = zone.following(timestamp(at)?).next() else {
            return Ok(at);
        };
        let before = zone.to_offset(timestamp(at)?).seconds();
        let back = i64::from(before - change.offset().seconds());
        let Some(change_at) = instant_of(change.timestamp()) else {
            return Ok(at);
        };
        let start = change_at - Duration::seconds(back);
        Ok(if back > 0 && at >= start { start } else { at })
    }
}

/// `at` as a `jiff` timestamp.
fn timestamp(at: OffsetDateTime) -> Result<jiff::Timestamp, Error> {
    let nanos = at.unix_timestamp_nanos();
    jiff::Timestamp::from_nanosecond(nanos).map_err(|_| Error::TimeOutOfRange { value: at })
}

/// A `jiff` timestamp as an instant in UTC.
fn instant_of(timestamp: jiff::Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(timestamp.as_nanosecond()).ok()
}

impl Default for ServerTimeZone {
    /// [`ServerTimeZone::UTC`].
    fn default() -> ServerTimeZone {
        ServerTimeZone::UTC
    }
}

impl From<UtcOffset> for ServerTimeZone {
    /// [`ServerTimeZone::fixed`].
    fn from(offset: UtcOffset) -> ServerTimeZone {
        ServerTimeZone::fixed(offset)
    }
}

impl PartialEq for ServerTimeZone {
    fn eq(&self, other: &ServerTimeZone) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Fixed(a), Kind::Fixed(b)) => a == b,
            (Kind::Named { name: a, .. }, Kind::Named { name: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Eq for ServerTimeZone {}

impl fmt::Display for ServerTimeZone {
    /// The IANA name, or the fixed offset as `±HH:MM` (with `:SS` when
    /// seconds are not zero).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Named { name, .. } => f.write_str(name),
            Kind::Fixed(offset) => {
                let (hours, minutes, seconds) = offset.as_hms();
                let sign = if offset.is_negative() { '-' } else { '+' };
                write!(
                    f,
                    "{sign}{:02}:{:02}",
                    hours.unsigned_abs(),
                    minutes.unsigned_abs()
                )?;
                if seconds != 0 {
                    write!(f, ":{:02}", seconds.unsigned_abs())?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for ServerTimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerTimeZone({self})")
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{datetime, offset};

    use super::*;

    fn berlin() -> ServerTimeZone {
        ServerTimeZone::named("Europe/Berlin").unwrap()
    }

    #[test]
    fn berlin_autumn_fold_reads_the_earlier_instant() {
        let zone = berlin();
        // Clocks go back at 01:00 UTC (03:00 CEST -> 02:00 CET).
        for (utc, local) in [
            (datetime!(2026-10-24 23:59 UTC), datetime!(2026-10-25 01:59)),
            (datetime!(2026-10-25 00:00 UTC), datetime!(2026-10-25 02:00)),
            (datetime!(2026-10-25 00:59 UTC), datetime!(2026-10-25 02:59)),
            (datetime!(2026-10-25 01:00 UTC), datetime!(2026-10-25 02:00)),
            (datetime!(2026-10-25 01:59 UTC), datetime!(2026-10-25 02:59)),
            (datetime!(2026-10-25 02:00 UTC), datetime!(2026-10-25 03:00)),
        ] {
            assert_eq!(zone.to_local(utc).unwrap(), local, "{utc}");
        }
        assert_eq!(
            zone.from_local(datetime!(2026-10-25 02:15)).unwrap(),
            datetime!(2026-10-25 00:15 UTC)
        );
        assert_eq!(
            zone.from_local(datetime!(2026-10-25 03:00)).unwrap(),
            datetime!(2026-10-25 02:00 UTC)
        );
        assert_eq!(
            zone.offset_at(datetime!(2026-10-25 00:30 UTC)).unwrap(),
            offset!(+02:00)
        );
        assert_eq!(
            zone.offset_at(datetime!(2026-10-25 01:30 UTC)).unwrap(),
            offset!(+01:00)
        );
    }

    #[test]
    fn fold_boundaries_are_the_earlier_reading_and_keep_their_order() {
        let zone = berlin();
        // Clocks go back at 01:00 UTC: local 02:00-03:00 is read at
        // 00:00-01:00 UTC and again at 01:00-02:00 UTC.
        for (at, written) in [
            ("2026-10-24T23:59:00Z", "2026-10-24T23:59:00Z"),
            ("2026-10-25T00:00:00Z", "2026-10-25T00:00:00Z"),
            // The first reading: the start of the repeated hour.
            ("2026-10-25T00:30:00Z", "2026-10-25T00:00:00Z"),
            ("2026-10-25T00:59:00Z", "2026-10-25T00:00:00Z"),
            // The second reading: the earlier reading of its wall time.
            ("2026-10-25T01:00:00Z", "2026-10-25T00:00:00Z"),
            ("2026-10-25T01:37:00Z", "2026-10-25T00:37:00Z"),
            ("2026-10-25T02:00:00Z", "2026-10-25T02:00:00Z"),
            // The spring gap repeats nothing.
            ("2026-03-29T01:30:00Z", "2026-03-29T01:30:00Z"),
        ] {
            let parse = |text: &str| {
                OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
            };
            let got = zone.fold_boundary(parse(at)).unwrap();
            assert_eq!(got, parse(written), "{at}");
            // As the server reads it back.
            assert_eq!(zone.from_local(zone.to_local(got).unwrap()).unwrap(), got);
        }
        // Every minute of the night keeps its order.
        let mut previous = None;
        for minute in 0..6 * 60 {
            let at = datetime!(2026-10-24 22:00 UTC) + Duration::minutes(minute);
            let written = zone.fold_boundary(at).unwrap();
            assert!(previous <= Some(written), "{at}");
            previous = Some(written);
        }
        let fixed = ServerTimeZone::fixed(offset!(+05:30));
        let at = datetime!(2026-10-25 01:00 UTC);
        assert_eq!(fixed.fold_boundary(at).unwrap(), at);
    }

    #[test]
    fn constant_offsets_are_those_of_zones_that_never_change() {
        let utc = ServerTimeZone::named("UTC").unwrap();
        assert_eq!(utc.constant_offset(), Some(offset!(+00:00)));
        let gmt3 = ServerTimeZone::named("Etc/GMT+3").unwrap();
        assert_eq!(gmt3.constant_offset(), Some(offset!(-03:00)));
        assert_eq!(berlin().constant_offset(), None);
        let fixed = ServerTimeZone::fixed(offset!(+05:30));
        assert_eq!(fixed.constant_offset(), Some(offset!(+05:30)));
    }

    #[test]
    fn spring_gap_reads_with_the_offset_before_it() {
        let zone = berlin();
        // 02:30 does not occur on 2026-03-29 in Berlin (02:00 CET -> 03:00
        // CEST): read at +01:00, it is 01:30 UTC, after 01:59 (00:59 UTC).
        assert_eq!(
            zone.from_local(datetime!(2026-03-29 02:30)).unwrap(),
            datetime!(2026-03-29 01:30 UTC)
        );
        assert_eq!(
            zone.from_local(datetime!(2026-03-29 01:59)).unwrap(),
            datetime!(2026-03-29 00:59 UTC)
        );
        assert_eq!(
            zone.to_local(datetime!(2026-03-29 01:00 UTC)).unwrap(),
            datetime!(2026-03-29 03:00)
        );
    }

    #[test]
    fn names_are_checked_and_never_this_machines_zone() {
        assert!(ServerTimeZone::named("Europe/Berln").is_err());
        assert!(ServerTimeZone::named("").is_err());
        assert_eq!(berlin().name(), Some("Europe/Berlin"));
        assert_eq!(
            ServerTimeZone::named("europe/berlin").unwrap().to_string(),
            "Europe/Berlin"
        );
        assert_eq!(ServerTimeZone::default(), ServerTimeZone::UTC);
        assert_eq!(ServerTimeZone::UTC.to_string(), "+00:00");
        assert_eq!(ServerTimeZone::from(offset!(-03:30)).to_string(), "-03:30");
        assert_ne!(berlin(), ServerTimeZone::fixed(offset!(+01:00)));
    }
}
