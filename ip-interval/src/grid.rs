/// A point type that can be snapped to a regular grid.
///
/// The grid is anchored at the type's natural origin, so two callers snapping
/// the same point with the same step always agree:
///
/// - for integers (`i128`, e.g. Unix nanoseconds), the grid is the multiples
///   of `step` (anchored at zero, extending to negative numbers);
/// - for `time::OffsetDateTime` (feature `time`), the grid is the instants
///   whose Unix timestamp in nanoseconds is a multiple of `step`, i.e. it is
///   anchored at the Unix epoch, `1970-01-01T00:00:00Z`. The point's UTC
///   offset does not move the grid, and the result is always in UTC.
///
/// # Example
///
/// ```
/// use ip_interval::GridPoint;
///
/// assert_eq!(17_i128.floor_to(5), Some(15));
/// assert_eq!((-17_i128).floor_to(5), Some(-20));
/// assert_eq!(17_i128.ceil_to(5), Some(20));
/// assert!(15_i128.is_on_grid(5));
/// assert_eq!(17_i128.floor_to(0), None);
/// ```
pub trait GridPoint: Ord + Copy {
    /// The grid spacing type (an integer for integers, a duration for times).
    type Step: Copy;

    /// The largest grid point `<= self`, or `None` when `step` is not positive
    /// or the result is not representable.
    fn floor_to(self, step: Self::Step) -> Option<Self>;

    /// The smallest grid point `>= self`, or `None` when `step` is not
    /// positive or the result is not representable.
    fn ceil_to(self, step: Self::Step) -> Option<Self>;

    /// Whether `self` lies exactly on the grid. Always `false` when `step` is
    /// not positive.
    fn is_on_grid(self, step: Self::Step) -> bool {
        self.floor_to(step) == Some(self)
    }
}

/// Integers: the grid is the multiples of `step`, anchored at zero.
impl GridPoint for i128 {
    type Step = i128;

    fn floor_to(self, step: i128) -> Option<i128> {
        if step <= 0 {
            return None;
        }
        let rem = self.checked_rem_euclid(step)?;
        self.checked_sub(rem)
    }

    fn ceil_to(self, step: i128) -> Option<i128> {
        let floor = self.floor_to(step)?;
        if floor == self {
            Some(floor)
        } else {
            floor.checked_add(step)
        }
    }
}

/// Grid snapping for times: anchored at the Unix epoch in UTC; results in UTC.
#[cfg(feature = "time")]
impl GridPoint for time::OffsetDateTime {
    type Step = time::Duration;

    /// The latest instant on the grid at or before `self`, in UTC.
    ///
    /// The grid is the instants whose Unix timestamp in nanoseconds is a
    /// multiple of `step`; `self`'s UTC offset does not move it.
    fn floor_to(self, step: time::Duration) -> Option<Self> {
        let step_ns = step.whole_nanoseconds();
        let floored = self.unix_timestamp_nanos().floor_to(step_ns)?;
        time::OffsetDateTime::from_unix_timestamp_nanos(floored).ok()
    }

    /// The earliest instant on the grid at or after `self`, in UTC.
    fn ceil_to(self, step: time::Duration) -> Option<Self> {
        let step_ns = step.whole_nanoseconds();
        let ceiled = self.unix_timestamp_nanos().ceil_to(step_ns)?;
        time::OffsetDateTime::from_unix_timestamp_nanos(ceiled).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::GridPoint;

    #[test]
    fn integers_floor_and_ceil_toward_the_grid() {
        assert_eq!(10_i128.floor_to(5), Some(10));
        assert_eq!(14_i128.floor_to(5), Some(10));
        assert_eq!((-1_i128).floor_to(5), Some(-5));
        assert_eq!((-5_i128).floor_to(5), Some(-5));
        assert_eq!(11_i128.ceil_to(5), Some(15));
        assert_eq!(10_i128.ceil_to(5), Some(10));
        assert_eq!((-6_i128).ceil_to(5), Some(-5));
    }

    #[test]
    fn non_positive_steps_and_overflow_give_none() {
        assert_eq!(3_i128.floor_to(0), None);
        assert_eq!(3_i128.floor_to(-5), None);
        assert_eq!(3_i128.ceil_to(0), None);
        assert!(!3_i128.is_on_grid(0));
        assert_eq!((i128::MIN + 1).floor_to(3), None);
        assert_eq!((i128::MAX - 1).ceil_to(100), None);
        assert_eq!(i128::MAX.floor_to(2), Some(i128::MAX - 1));
    }

    #[cfg(feature = "time")]
    #[test]
    fn times_floor_to_the_epoch_anchored_grid_in_utc() {
        use time::macros::datetime;
        use time::{Duration, UtcOffset};

        let hour = Duration::hours(1);
        // 10:37 at +05:30 is 05:07 UTC; the hour grid is the UTC hours.
        let t = datetime!(2026-11-01 10:37:12 +05:30);
        let floor = t.floor_to(hour).unwrap();
        assert_eq!(floor, datetime!(2026-11-01 05:00:00 UTC));
        assert_eq!(floor.offset(), UtcOffset::UTC);
        assert_eq!(t.ceil_to(hour), Some(datetime!(2026-11-01 06:00:00 UTC)));

        // Before the epoch, flooring still goes back in time.
        let t = datetime!(1969-12-31 23:59:59.5 UTC);
        assert_eq!(
            t.floor_to(Duration::SECOND),
            Some(datetime!(1969-12-31 23:59:59 UTC))
        );
        assert_eq!(
            t.floor_to(Duration::DAY),
            Some(datetime!(1969-12-31 00:00:00 UTC))
        );

        assert_eq!(t.floor_to(Duration::ZERO), None);
        assert_eq!(t.floor_to(-hour), None);
        assert!(datetime!(2026-11-01 05:00:00 -01:00).is_on_grid(hour));
    }
}
