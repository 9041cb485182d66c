//! Which grid-aligned windows are due for collection.

use std::iter::FusedIterator;

use time::{Duration, OffsetDateTime, Time, UtcOffset};
use usage_model::{CollectionWindow, Grid};

use crate::Error;

/// When collection windows start and end: the grid, the settle lag and the
/// largest window one cycle may cover (DESIGN §3, §6).
///
/// Windows lie on the grid, never cross a UTC midnight (so every record lies
/// in one UTC day) and never end after `now - settle_lag`. A by-value
/// builder: every setter takes and returns the schedule; the combination is
/// checked when windows are asked for.
///
/// # Example
///
/// ```
/// use time::macros::datetime;
/// use usage_correlator::Schedule;
///
/// // Checkpoint mid-day; it is now 01:30 two days later; with the default
/// // 2 h settle lag, data up to 23:00 of the day before is settled.
/// let windows: Vec<_> = Schedule::new()
///     .due_windows(datetime!(2026-11-01 14:00 UTC), datetime!(2026-11-03 01:30 UTC))?
///     .collect();
/// let bounds: Vec<_> = windows.iter().map(|w| (w.start().day(), w.start().hour(), w.end().hour())).collect();
/// // Cut at midnight: 14:00 → 00:00, then a whole day up to the settled hour.
/// assert_eq!(bounds, [(1, 14, 0), (2, 0, 23)]);
/// # Ok::<(), usage_correlator::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Schedule {
    settle_lag: Duration,
    max_window: Duration,
    grid: Grid,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule::new()
    }
}

impl Schedule {
    /// The default schedule: 2 h settle lag, 1 day maximum window, hourly grid.
    pub fn new() -> Schedule {
        Schedule {
            settle_lag: Duration::hours(2),
            max_window: Duration::days(1),
            grid: Grid::HOURLY,
        }
    }

    /// How long after the fact traffic data is considered complete: windows
    /// end no later than `now - settle_lag`. Traffic Sentinel consolidates
    /// and receives late datagrams for a while; collecting a bucket before
    /// it is complete would bill it short, and it is never collected again.
    ///
    /// By default, 2 hours (CloudStack's lag). Zero is allowed; negative is
    /// not.
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

    /// The Traffic Sentinel grid (bucket size) that window boundaries lie on.
    ///
    /// By default, [`Grid::HOURLY`].
    pub fn grid(self, grid: Grid) -> Schedule {
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

    /// The grid.
    pub fn get_grid(&self) -> Grid {
        self.grid
    }

    /// Checks the combination of values.
    ///
    /// # Errors
    ///
    /// [`Error::NegativeSettleLag`] or [`Error::MaxWindowBelowGrid`].
    pub fn validate(&self) -> Result<(), Error> {
        if self.settle_lag.is_negative() {
            return Err(Error::NegativeSettleLag {
                lag: self.settle_lag,
            });
        }
        if self.max_window < self.grid.step() {
            return Err(Error::MaxWindowBelowGrid {
                max_window: self.max_window,
                grid: self.grid.step(),
            });
        }
        Ok(())
    }

    /// The latest instant collection may reach at `now`: `now - settle_lag`.
    ///
    /// # Errors
    ///
    /// [`Error::TimeOutOfRange`] when it is not representable.
    pub fn settled(&self, now: OffsetDateTime) -> Result<OffsetDateTime, Error> {
        now.checked_sub(self.settle_lag)
            .and_then(|at| at.checked_to_offset(UtcOffset::UTC))
            .ok_or(Error::TimeOutOfRange {
                at: now,
                by: -self.settle_lag,
            })
    }

    /// The windows still to collect from `checkpoint`, given the current
    /// time: [`Schedule::windows_between`]`(checkpoint, now - settle_lag)`.
    ///
    /// # Errors
    ///
    /// As [`Schedule::windows_between`] and [`Schedule::settled`].
    ///
    /// # Example
    ///
    /// ```
    /// use time::macros::datetime;
    /// use usage_correlator::Schedule;
    ///
    /// // Caught up: nothing settled since the checkpoint.
    /// let mut due = Schedule::new()
    ///     .due_windows(datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-01 12:59 UTC))?;
    /// assert!(due.next().is_none());
    /// # Ok::<(), usage_correlator::Error>(())
    /// ```
    pub fn due_windows(
        &self,
        checkpoint: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Windows, Error> {
        self.windows_between(checkpoint, self.settled(now)?)
    }

    /// The windows from `checkpoint` up to an explicit `until`, refusing an
    /// `until` later than `now - settle_lag`: traffic that is not settled is
    /// never collected, and the checkpoint never moves into the future
    /// (DESIGN §3).
    ///
    /// # Errors
    ///
    /// [`Error::UntilNotSettled`] for an `until` after `now - settle_lag`;
    /// otherwise as [`Schedule::windows_between`].
    pub fn windows_until(
        &self,
        checkpoint: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Windows, Error> {
        let settled = self.settled(now)?;
        if until > settled {
            return Err(Error::UntilNotSettled {
                until,
                settled,
                lag: self.settle_lag,
            });
        }
        self.windows_between(checkpoint, until)
    }

    /// Consecutive windows from `floor(start)` to `floor(until)` (both
    /// floored to the grid), each at most the maximum window long, ending on
    /// the grid and cut at every UTC midnight. Empty when `floor(until) <=
    /// floor(start)` (caught up).
    ///
    /// The windows are produced lazily: memory does not grow with the span.
    ///
    /// # Errors
    ///
    /// [`Error::NegativeSettleLag`] or [`Error::MaxWindowBelowGrid`] for a
    /// bad schedule; [`Error::TimeOutOfRange`] when a bound cannot be
    /// floored.
    ///
    /// # Example
    ///
    /// ```
    /// use time::Duration;
    /// use time::macros::datetime;
    /// use usage_correlator::Schedule;
    ///
    /// let windows: Vec<_> = Schedule::new()
    ///     .max_window(Duration::hours(5))
    ///     .windows_between(datetime!(2026-11-01 00:20 UTC), datetime!(2026-11-01 08:59 UTC))?
    ///     .collect();
    /// let bounds: Vec<_> = windows.iter().map(|w| (w.start().hour(), w.end().hour())).collect();
    /// assert_eq!(bounds, [(0, 5), (5, 8)]);
    /// # Ok::<(), usage_correlator::Error>(())
    /// ```
    pub fn windows_between(
        &self,
        start: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Windows, Error> {
        self.validate()?;
        let floor = |at: OffsetDateTime| {
            self.grid.floor(at).map_err(|_| Error::TimeOutOfRange {
                at,
                by: self.grid.step(),
            })
        };
        Ok(Windows {
            next: floor(start)?,
            limit: floor(until)?,
            max_window: self.max_window,
            grid: self.grid,
        })
    }
}

/// The windows of a [`Schedule`], produced one at a time.
#[derive(Clone, Debug)]
pub struct Windows {
    next: OffsetDateTime,
    limit: OffsetDateTime,
    max_window: Duration,
    grid: Grid,
}

impl Iterator for Windows {
    type Item = CollectionWindow;

    fn next(&mut self) -> Option<CollectionWindow> {
        let start = self.next;
        if start >= self.limit {
            return None;
        }
        // The next UTC midnight lies on the grid: every grid divides a day.
        let midnight = start
            .date()
            .next_day()
            .map(|day| day.with_time(Time::MIDNIGHT).assume_utc());
        let longest = start
            .checked_add(self.max_window)
            .and_then(|end| self.grid.floor(end).ok());
        let end = [midnight, longest]
            .into_iter()
            .flatten()
            .fold(self.limit, OffsetDateTime::min);
        // `max_window` is at least one step and `start` is on the grid, so
        // `end > start`; the check only guards the invariant.
        let window = CollectionWindow::new(start, end).ok()?;
        self.next = end;
        Some(window)
    }
}

impl FusedIterator for Windows {}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;
    use usage_model::{CollectionWindow, Grid};

    use super::Schedule;
    use crate::Error;

    fn bounds(windows: impl Iterator<Item = CollectionWindow>) -> Vec<(String, String)> {
        windows
            .map(|w| (w.start().to_string(), w.end().to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_two_hours_one_day_one_hour() {
        let s = Schedule::default();
        assert_eq!(s.get_settle_lag(), Duration::hours(2));
        assert_eq!(s.get_max_window(), Duration::days(1));
        assert_eq!(s.get_grid(), Grid::HOURLY);
    }

    #[test]
    fn catch_up_splits_into_day_windows_and_a_remainder() {
        let w: Vec<_> = Schedule::new()
            .due_windows(
                datetime!(2026-11-01 00:00 UTC),
                datetime!(2026-11-04 01:30 UTC),
            )
            .unwrap()
            .collect();
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].start(), datetime!(2026-11-01 00:00 UTC));
        assert_eq!(w[0].end(), datetime!(2026-11-02 00:00 UTC));
        assert_eq!(w[1].end(), datetime!(2026-11-03 00:00 UTC));
        assert_eq!(w[2].start(), datetime!(2026-11-03 00:00 UTC));
        assert_eq!(w[2].end(), datetime!(2026-11-03 23:00 UTC));
    }

    #[test]
    fn windows_are_cut_at_utc_midnight() {
        let w: Vec<_> = Schedule::new()
            .windows_between(
                datetime!(2026-11-01 14:00 UTC),
                datetime!(2026-11-03 14:00 UTC),
            )
            .unwrap()
            .collect();
        let ends: Vec<_> = w.iter().map(|w| (w.end().day(), w.end().hour())).collect();
        assert_eq!(ends, [(2, 0), (3, 0), (3, 14)]);
        for window in &w {
            let last = window.end() - Duration::nanoseconds(1);
            assert_eq!(window.start().date(), last.date());
        }
    }

    #[test]
    fn checkpoint_is_floored_and_until_is_floored() {
        let w = Schedule::new()
            .windows_between(
                datetime!(2026-11-01 00:59 UTC),
                datetime!(2026-11-01 03:01 UTC),
            )
            .unwrap();
        let expected = CollectionWindow::new(
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-01 03:00 UTC),
        )
        .unwrap();
        assert_eq!(bounds(w), bounds([expected].into_iter()));
    }

    #[test]
    fn caught_up_or_ahead_yields_nothing() {
        let s = Schedule::new();
        let t = datetime!(2026-11-01 10:00 UTC);
        for until in [
            t,
            datetime!(2026-11-01 10:59 UTC),
            datetime!(2026-11-01 08:00 UTC),
        ] {
            assert_eq!(s.windows_between(t, until).unwrap().count(), 0);
        }
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
        let ends: Vec<u8> = w.map(|w| w.end().hour()).collect();
        assert_eq!(ends, [2, 4, 6]);
    }

    #[test]
    fn windows_tile_without_gap_or_overlap() {
        let w: Vec<_> = Schedule::new()
            .grid(Grid::from_seconds(900).unwrap())
            .max_window(Duration::hours(7))
            .windows_between(
                datetime!(2026-11-01 00:07 UTC),
                datetime!(2026-11-03 05:44 UTC),
            )
            .unwrap()
            .collect();
        assert_eq!(w[0].start(), datetime!(2026-11-01 00:00 UTC));
        assert_eq!(w.last().unwrap().end(), datetime!(2026-11-03 05:30 UTC));
        for pair in w.windows(2) {
            assert_eq!(pair[0].end(), pair[1].start());
            assert!(pair[0].end() - pair[0].start() <= Duration::hours(7));
        }
    }

    #[test]
    fn the_longest_span_is_produced_lazily() {
        let mut w = Schedule::new()
            .windows_between(
                datetime!(0000-01-01 00:00 UTC),
                datetime!(9999-12-31 23:00 UTC),
            )
            .unwrap();
        assert_eq!(w.next().unwrap().end(), datetime!(0000-01-02 00:00 UTC));
        let mut tail = Schedule::new()
            .windows_between(
                datetime!(9999-12-30 05:00 UTC),
                datetime!(9999-12-31 23:00 UTC),
            )
            .unwrap();
        let ends: Vec<_> = tail.by_ref().map(|w| w.end()).collect();
        assert_eq!(
            ends,
            [
                datetime!(9999-12-31 00:00 UTC),
                datetime!(9999-12-31 23:00 UTC)
            ]
        );
        assert!(tail.next().is_none());
    }

    #[test]
    fn until_after_the_settled_time_is_refused() {
        let now = datetime!(2026-11-03 12:00 UTC);
        let err = Schedule::new()
            .windows_until(
                datetime!(2026-11-01 00:00 UTC),
                datetime!(2026-11-05 00:00 UTC),
                now,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "end 2026-11-05T00:00:00Z is after now minus the settle lag of 2h \
             (2026-11-03T10:00:00Z): traffic that is not settled is never collected"
        );
        let ok = Schedule::new()
            .settle_lag(Duration::ZERO)
            .windows_until(
                datetime!(2026-11-01 00:00 UTC),
                datetime!(2026-11-03 12:00 UTC),
                now,
            )
            .unwrap();
        assert_eq!(ok.count(), 3);
    }

    #[test]
    fn bad_configurations_are_refused_with_their_values() {
        let t = datetime!(2026-11-01 00:00 UTC);
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
