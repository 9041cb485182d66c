//! The Traffic Sentinel time grid, with overflow reported as errors.

use ip_interval::GridPoint;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::Error;

/// A positive grid step, anchored at the Unix epoch, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid(Duration);

impl Grid {
    /// Checks that `step` is positive.
    pub(crate) fn new(step: Duration) -> Result<Grid, Error> {
        if step.is_positive() {
            Ok(Grid(step))
        } else {
            Err(Error::InvalidGrid { grid: step })
        }
    }

    /// The largest grid point `<= at`, in UTC.
    pub(crate) fn floor(self, at: OffsetDateTime) -> Result<OffsetDateTime, Error> {
        at.floor_to(self.0)
            .ok_or(Error::TimeOutOfRange { at, by: self.0 })
    }

    /// Whether `at` lies on the grid.
    pub(crate) fn holds(self, at: OffsetDateTime) -> Result<bool, Error> {
        Ok(self.floor(at)? == at)
    }
}

/// `at + by` in UTC, or [`Error::TimeOutOfRange`].
pub(crate) fn checked_add(at: OffsetDateTime, by: Duration) -> Result<OffsetDateTime, Error> {
    at.checked_add(by)
        .and_then(|t| t.checked_to_offset(UtcOffset::UTC))
        .ok_or(Error::TimeOutOfRange { at, by })
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::Grid;
    use crate::Error;

    #[test]
    fn floors_to_the_epoch_anchored_grid_in_utc() {
        let grid = Grid::new(Duration::hours(1)).unwrap();
        assert_eq!(
            grid.floor(datetime!(2026-11-01 12:30 +02:00)).unwrap(),
            datetime!(2026-11-01 10:00 UTC)
        );
        assert!(grid.holds(datetime!(2026-11-01 10:00 UTC)).unwrap());
        assert!(!grid.holds(datetime!(2026-11-01 10:00:01 UTC)).unwrap());
    }

    #[test]
    fn refuses_a_step_that_is_not_positive() {
        assert_eq!(
            Grid::new(Duration::seconds(-5)),
            Err(Error::InvalidGrid {
                grid: Duration::seconds(-5)
            })
        );
    }
}
