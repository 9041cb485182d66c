//! Which grid-aligned windows are due for collection.

use time::{Duration, OffsetDateTime};
use usage_model::CollectionWindow;

use crate::Error;
use crate::grid::{Grid, checked_add};

/// When collection windows start and end: the grid, the settle lag and the
/// largest window one cycle may cover.
///
/// A by-value builder: every setter takes and returns the schedule. Values are
/// checked when windows are computed, so a bad combination is reported as an
/// [`Error`] naming the values.
///
/// # Example
///
/// ```
/// use time::Duration;
/// use time::macros::datetime;
/// use usage_correlator::Schedule;
///
/// let schedule = Schedule::new().max_window(Duration::days(1));
/// // Checkpoint at midnight; it is now 01:30 two days later; with the default
/// // 2 h settle lag, data up to 23:00 of the day before is settled.
/// let windows = schedule
///     .due_windows(datetime!(2026-11-01 00:00 UTC), datetime!(2026-11-03 01:30 UTC))
///     .unwrap();
/// assert_eq!(windows.len(), 2);
/// assert_eq!(windows[0].end(), datetime!(2026-11-02 00:00 UTC));
/// assert_eq!(windows[1].end(), datetime!(2026-11-02 23:00 UTC));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Schedule {
    settle_lag: Duration,
    max_window: Duration,
    grid: Duration,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule::new()
    }
}

impl Schedule {
    /// The default schedule: 2 h settle lag, 1 day maximum window, 3600 s grid.
    pub fn new() -> Schedule {
        Schedule {
            settle_lag: Duration::hours(2),
            max_window: Duration::days(1),
            grid: Duration::hours(1),
        }
    }

    /// How long after the fact traffic data is considered complete: windows
    /// end no later than `now - settle_lag`.
    ///
    /// By default, 2 hours (CloudStack's lag). Must not be negative.
    pub fn settle_lag(self, settle_lag: Duration) -> Schedule {
        Schedule { settle_lag, ..self }
    }

    /// The longest window one cycle covers; catching up after downtime takes
    /// several windows.
    ///
    /// By default, 1 day. Must be at least one grid step; when it is not a
    /// multiple of the grid, each window end is floored to the grid.
    pub fn max_window(self, max_window: Duration) -> Schedule {
        Schedule { max_window, ..self }
    }

    /// The Traffic Sentinel grid (bucket granularity) that window boundaries
    /// lie on.
    ///
    /// By default, 3600 seconds. Must be positive.
    pub fn grid(self, grid: Duration) -> Schedule {
        Schedule { grid, ..self }
    }

    /// The settle lag.
    pub fn get_settle_lag(&self) -> Duration {
        self.settle_lag
    }

    /// The maximum window.
    pub fn get_max_window(&self) -> Duration {
        self.max_window
    }

    /// The grid step.
    pub fn get_grid(&self) -> Duration {
        self.grid
    }

    /// Checks the combination of values.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidGrid`] for a grid that is not positive,
    /// [`Error::NegativeSettleLag`], or [`Error::MaxWindowBelowGrid`].
    pub fn validate(&self) -> Result<(), Error> {
        Grid::new(self.grid)?;
        if self.settle_lag.is_negative() {
            return Err(Error::NegativeSettleLag {
                lag: self.settle_lag,
            });
        }
        if self.max_window < self.grid {
            return Err(Error::MaxWindowBelowGrid {
                max_window: self.max_window,
                grid: self.grid,
            });
        }
        Ok(())
    }

    /// The windows still to collect from `checkpoint`, given the current
    /// time: the same as [`Schedule::windows_between`]`(checkpoint, now -
    /// settle_lag)`.
    ///
    /// # Errors
    ///
    /// As [`Schedule::windows_between`], and [`Error::TimeOutOfRange`] when
    /// `now - settle_lag` is not representable.
    ///
    /// # Example
    ///
    /// ```
    /// use time::macros::datetime;
    /// use usage_correlator::Schedule;
    ///
    /// // Caught up: nothing settled since the checkpoint.
    /// let due = Schedule::new()
    ///     .due_windows(datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-01 12:59 UTC))
    ///     .unwrap();
    /// assert!(due.is_empty());
    /// ```
    pub fn due_windows(
        &self,
        checkpoint: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Vec<CollectionWindow>, Error> {
        self.validate()?;
        let until = checked_add(now, -self.settle_lag)?;
        self.windows_between(checkpoint, until)
    }

    /// Consecutive windows from `floor(start)` to `floor(until)` (both floored
    /// to the grid), each at most the maximum window long and ending on the
    /// grid. Empty when `floor(until) <= floor(start)` (caught up).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidGrid`], [`Error::NegativeSettleLag`] or
    /// [`Error::MaxWindowBelowGrid`] for a bad schedule;
    /// [`Error::TimeOutOfRange`] when a boundary is not representable.
    ///
    /// # Example
    ///
    /// ```
    /// use time::Duration;
    /// use time::macros::datetime;
    /// use usage_correlator::Schedule;
    ///
    /// let windows = Schedule::new()
    ///     .max_window(Duration::hours(5))
    ///     .windows_between(datetime!(2026-11-01 00:20 UTC), datetime!(2026-11-01 08:59 UTC))
    ///     .unwrap();
    /// let bounds: Vec<_> = windows.iter().map(|w| (w.start().hour(), w.end().hour())).collect();
    /// assert_eq!(bounds, [(0, 5), (5, 8)]);
    /// ```
    pub fn windows_between(
        &self,
        start: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<CollectionWindow>, Error> {
        self.validate()?;
        let grid = Grid::new(self.grid)?;
        let mut start = grid.floor(start)?;
        let limit = grid.floor(until)?;
        let mut windows = Vec::new();
        while start < limit {
            let end = grid.floor(checked_add(start, self.max_window)?)?.min(limit);
            // `max_window >= grid` and `start` is on the grid, so `end > start`.
            windows.push(CollectionWindow::new(start, end).map_err(|_| {
                Error::MaxWindowBelowGrid {
                    max_window: self.max_window,
                    grid: self.grid,
                }
            })?);
            start = end;
        }
        Ok(windows)
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::Schedule;
    use crate::Error;

    fn bounds(windows: &[usage_model::CollectionWindow]) -> Vec<(String, String)> {
        windows
            .iter()
            .map(|w| (w.start().to_string(), w.end().to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_two_hours_one_day_one_hour() {
        let s = Schedule::default();
        assert_eq!(s.get_settle_lag(), Duration::hours(2));
        assert_eq!(s.get_max_window(), Duration::days(1));
        assert_eq!(s.get_grid(), Duration::seconds(3600));
    }

    #[test]
    fn catch_up_splits_into_day_windows_and_a_remainder() {
        let w = Schedule::new()
            .due_windows(
                datetime!(2026-11-01 00:00 UTC),
                datetime!(2026-11-04 01:30 UTC),
            )
            .unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].start(), datetime!(2026-11-01 00:00 UTC));
        assert_eq!(w[0].end(), datetime!(2026-11-02 00:00 UTC));
        assert_eq!(w[1].end(), datetime!(2026-11-03 00:00 UTC));
        assert_eq!(w[2].start(), datetime!(2026-11-03 00:00 UTC));
        assert_eq!(w[2].end(), datetime!(2026-11-03 23:00 UTC));
    }

    #[test]
    fn checkpoint_is_floored_and_until_is_floored() {
        let w = Schedule::new()
            .windows_between(
                datetime!(2026-11-01 00:59 UTC),
                datetime!(2026-11-01 03:01 UTC),
            )
            .unwrap();
        assert_eq!(
            bounds(&w),
            bounds(&[usage_model::CollectionWindow::new(
                datetime!(2026-11-01 00:00 UTC),
                datetime!(2026-11-01 03:00 UTC)
            )
            .unwrap()])
        );
    }

    #[test]
    fn caught_up_or_ahead_yields_nothing() {
        let s = Schedule::new();
        let t = datetime!(2026-11-01 10:00 UTC);
        assert!(s.windows_between(t, t).unwrap().is_empty());
        assert!(
            s.windows_between(t, datetime!(2026-11-01 10:59 UTC))
                .unwrap()
                .is_empty()
        );
        assert!(
            s.windows_between(t, datetime!(2026-11-01 08:00 UTC))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn max_window_not_a_multiple_of_the_grid_floors_each_end() {
        let w = Schedule::new()
            .max_window(Duration::minutes(150))
            .windows_between(
                datetime!(2026-11-01 00:00 UTC),
                datetime!(2026-11-01 06:00 UTC),
            )
            .unwrap();
        let ends: Vec<u8> = w.iter().map(|w| w.end().hour()).collect();
        assert_eq!(ends, [2, 4, 6]);
    }

    #[test]
    fn windows_tile_without_gap_or_overlap() {
        let w = Schedule::new()
            .grid(Duration::minutes(15))
            .max_window(Duration::hours(7))
            .windows_between(
                datetime!(2026-11-01 00:07 UTC),
                datetime!(2026-11-03 05:44 UTC),
            )
            .unwrap();
        assert_eq!(w[0].start(), datetime!(2026-11-01 00:00 UTC));
        assert_eq!(w.last().unwrap().end(), datetime!(2026-11-03 05:30 UTC));
        for pair in w.windows(2) {
            assert_eq!(pair[0].end(), pair[1].start());
            assert!(pair[0].end() - pair[0].start() <= Duration::hours(7));
        }
    }

    #[test]
    fn bad_configurations_are_refused_with_their_values() {
        let t = datetime!(2026-11-01 00:00 UTC);
        let err = Schedule::new()
            .grid(Duration::ZERO)
            .due_windows(t, t)
            .unwrap_err();
        assert_eq!(
            err,
            Error::InvalidGrid {
                grid: Duration::ZERO
            }
        );
        assert_eq!(err.to_string(), "grid step 0s is not positive");
        let err = Schedule::new()
            .max_window(Duration::minutes(30))
            .due_windows(t, t)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "maximum window 30m is shorter than the grid step 1h"
        );
        let err = Schedule::new()
            .settle_lag(Duration::hours(-1))
            .due_windows(t, t)
            .unwrap_err();
        assert_eq!(
            err,
            Error::NegativeSettleLag {
                lag: Duration::hours(-1)
            }
        );
    }
}
