/// A point type that can be floored to a regular grid.
///
/// The grid is anchored at the type's natural origin (zero for integers, the
/// Unix epoch for `time::OffsetDateTime`), so two callers flooring the same
/// point with the same step always agree.
pub trait GridPoint: Ord + Copy {
    /// The grid spacing type (an integer for integers, a duration for times).
    type Step: Copy;

    /// The largest grid point `<= self`, or `None` when `step` is not positive
    /// or the result is not representable.
    fn floor_to(self, step: Self::Step) -> Option<Self>;
}

macro_rules! impl_grid_point_for_int {
    ($($t:ty),*) => {$(
        impl GridPoint for $t {
            type Step = $t;

            fn floor_to(self, step: $t) -> Option<$t> {
                #[allow(unused_comparisons)]
                if step <= 0 {
                    return None;
                }
                let rem = self.checked_rem_euclid(step)?;
                self.checked_sub(rem)
            }
        }
    )*};
}

impl_grid_point_for_int!(i32, i64, i128, u32, u64, u128, usize, isize);

#[cfg(feature = "time")]
impl GridPoint for time::OffsetDateTime {
    type Step = time::Duration;

    fn floor_to(self, step: time::Duration) -> Option<Self> {
        let step_ns = step.whole_nanoseconds();
        if step_ns <= 0 {
            return None;
        }
        let utc = self.to_offset(time::UtcOffset::UTC);
        let ns = utc.unix_timestamp_nanos();
        let floored = ns.floor_to(step_ns)?;
        time::OffsetDateTime::from_unix_timestamp_nanos(floored).ok()
    }
}
