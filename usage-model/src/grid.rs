//! The Traffic Sentinel time grid (DESIGN §3).

use std::fmt;

use ip_interval::GridPoint;
use time::{Duration, OffsetDateTime};

use crate::Error;

/// The bucket size of a Traffic Sentinel history view: a positive whole
/// number of seconds that divides a day, anchored at the Unix epoch in UTC.
///
/// Traffic Sentinel consolidates history into buckets of this size (hourly in
/// its historical view, by minute where the view holds minute data). Every
/// boundary sent to it is floored to the grid, so each bucket of each address
/// belongs to exactly one owner; window boundaries lie on it too, so cycles
/// tile time. The grid must be the server's real bucket size: a finer grid
/// bills boundary buckets twice, a coarser one moves bytes to whoever holds
/// the address when the bucket closes.
///
/// Dividing a day keeps every UTC midnight on the grid, so windows cut at
/// midnight stay on it (DESIGN §3). The one grid of a zone is built once and passed to every step that needs
/// it (schedule, plan, script builder, emulator).
///
/// # Example
///
/// ```
/// use time::macros::datetime;
/// use usage_model::Grid;
///
/// let grid = Grid::from_seconds(3600)?;
/// assert_eq!(grid.floor(datetime!(2026-11-01 12:30 +02:00))?, datetime!(2026-11-01 10:00 UTC));
/// assert!(grid.holds(datetime!(2026-11-01 10:00 UTC)));
/// assert_eq!(Grid::HOURLY, grid);
/// # Ok::<(), usage_model::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grid {
    seconds: u32,
}

impl Grid {
    /// One-hour buckets, Traffic Sentinel's historical view (the default).
    pub const HOURLY: Grid = Grid { seconds: 3600 };

    /// One-minute buckets, for a view that holds minute data.
    pub const MINUTELY: Grid = Grid { seconds: 60 };

    /// A grid of `seconds`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidGrid`] when `seconds` is 0 or does not divide a day
    /// (86,400 seconds).
    pub fn from_seconds(seconds: u64) -> Result<Grid, Error> {
        match u32::try_from(seconds) {
            Ok(s) if s > 0 && DAY_SECONDS.is_multiple_of(u64::from(s)) => Ok(Grid { seconds: s }),
            _ => Err(Error::InvalidGrid {
                value: seconds.to_string(),
            }),
        }
    }

    /// A grid of `step`, which must be a positive whole number of seconds.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidGrid`] when `step` is not positive, has a fraction of
    /// a second, or does not divide a day.
    pub fn new(step: Duration) -> Result<Grid, Error> {
        if step.subsec_nanoseconds() != 0 || !step.is_positive() {
            return Err(Error::InvalidGrid {
                value: step.to_string(),
            });
        }
        u64::try_from(step.whole_seconds())
            .map_err(|_| Error::InvalidGrid {
                value: step.to_string(),
            })
            .and_then(Grid::from_seconds)
    }

    /// The bucket size in seconds.
    pub fn seconds(self) -> u32 {
        self.seconds
    }

    /// The bucket size as a duration.
    pub fn step(self) -> Duration {
        Duration::seconds(i64::from(self.seconds))
    }

    /// The latest grid point at or before `at`, in UTC.
    ///
    /// # Errors
    ///
    /// [`Error::TimeOutOfRange`] at the very ends of `OffsetDateTime`'s range.
    pub fn floor(self, at: OffsetDateTime) -> Result<OffsetDateTime, Error> {
        at.floor_to(self.step())
            .ok_or(Error::TimeOutOfRange { value: at })
    }

    /// The earliest grid point at or after `at`, in UTC.
    ///
    /// # Errors
    ///
    /// [`Error::TimeOutOfRange`] at the very ends of `OffsetDateTime`'s range.
    pub fn ceil(self, at: OffsetDateTime) -> Result<OffsetDateTime, Error> {
        at.ceil_to(self.step())
            .ok_or(Error::TimeOutOfRange { value: at })
    }

    /// Whether `at` lies on the grid.
    pub fn holds(self, at: OffsetDateTime) -> bool {
        at.is_on_grid(self.step())
    }
}

impl Default for Grid {
    /// [`Grid::HOURLY`].
    fn default() -> Grid {
        Grid::HOURLY
    }
}

impl fmt::Display for Grid {
    /// The bucket size in seconds followed by `s`, e.g. `3600s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.seconds)
    }
}

/// The seconds of a UTC day, which every grid divides.
const DAY_SECONDS: u64 = 86_400;

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::Grid;

    #[test]
    fn refuses_steps_that_are_not_whole_positive_seconds() {
        for step in [
            Duration::ZERO,
            Duration::seconds(-60),
            Duration::milliseconds(1500),
            Duration::days(2),
            Duration::seconds(7),
        ] {
            assert!(Grid::new(step).is_err(), "{step}");
        }
        assert!(Grid::from_seconds(0).is_err());
        assert_eq!(Grid::new(Duration::minutes(1)).ok(), Some(Grid::MINUTELY));
        assert!(Grid::from_seconds(86_400).is_ok());
        assert!(Grid::from_seconds(900).is_ok());
    }

    #[test]
    fn floors_and_ceils_in_utc() {
        let grid = Grid::HOURLY;
        let at = datetime!(2026-11-01 12:30 +02:00);
        assert_eq!(grid.floor(at).ok(), Some(datetime!(2026-11-01 10:00 UTC)));
        assert_eq!(grid.ceil(at).ok(), Some(datetime!(2026-11-01 11:00 UTC)));
        assert!(!grid.holds(at));
        assert_eq!(grid.to_string(), "3600s");
    }
}
