use std::fmt;

use crate::{Error, GridPoint};

/// A half-open interval `[start, end)` over any totally ordered point type.
///
/// Invariant: `start <= end`. An interval with `start == end` is empty: it
/// contains no point and overlaps nothing.
///
/// Intervals order by start, then by end.
///
/// With the `serde` feature an interval is the map `{"start": …, "end": …}`;
/// deserializing refuses `start > end`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Interval<T> {
    start: T,
    end: T,
}

impl<T: Ord + Copy + fmt::Debug> Interval<T> {
    /// Builds `[start, end)`.
    ///
    /// # Errors
    ///
    /// Returns [`Error::StartAfterEnd`] when `start > end`.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::Interval;
    ///
    /// assert!(Interval::new(1, 5).is_ok());
    /// assert!(Interval::new(3, 3).unwrap().is_empty());
    /// assert!(Interval::new(5, 1).is_err());
    /// ```
    pub fn new(start: T, end: T) -> Result<Self, Error> {
        if start > end {
            return Err(Error::StartAfterEnd {
                start: format!("{start:?}"),
                end: format!("{end:?}"),
            });
        }
        Ok(Interval { start, end })
    }
}

impl<T: Ord + Copy> Interval<T> {
    /// Builds `[start, end)` from bounds the caller has already checked.
    pub(crate) fn new_unchecked(start: T, end: T) -> Self {
        debug_assert!(start <= end, "interval start after end");
        Interval { start, end }
    }

    /// Whether the two intervals overlap or touch end to start, so that their
    /// union is a single interval. Empty intervals are not considered.
    pub(crate) fn touches(&self, other: &Interval<T>) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// The first point of the interval (inclusive).
    pub fn start(&self) -> T {
        self.start
    }

    /// The end of the interval (exclusive).
    pub fn end(&self) -> T {
        self.end
    }

    /// Whether the interval holds no point (`start == end`).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether `point` lies in `[start, end)`.
    pub fn contains(&self, point: T) -> bool {
        self.start <= point && point < self.end
    }

    /// Whether the two intervals share at least one point.
    ///
    /// Empty intervals overlap nothing; intervals that only touch
    /// (`[a, b)` and `[b, c)`) do not overlap.
    pub fn overlaps(&self, other: &Interval<T>) -> bool {
        self.start.max(other.start) < self.end.min(other.end)
    }

    /// The points both intervals hold, or `None` when they share none.
    pub fn intersection(&self, other: &Interval<T>) -> Option<Interval<T>> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Interval { start, end })
    }

    /// This interval clipped to `bounds`, or `None` when nothing of it lies
    /// inside them. The same as [`Interval::intersection`], named for intent.
    ///
    /// Takes `self` by value so that `interval.clamp(&bounds)` calls this
    /// method rather than [`Ord::clamp`].
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::Interval;
    ///
    /// let held = Interval::new(0, 100).unwrap();
    /// let window = Interval::new(60, 120).unwrap();
    /// assert_eq!(held.clamp(&window), Some(Interval::new(60, 100).unwrap()));
    /// ```
    pub fn clamp(self, bounds: &Interval<T>) -> Option<Interval<T>> {
        self.intersection(bounds)
    }
}

impl<T: GridPoint> Interval<T> {
    /// This interval with both ends floored to the grid of `step` (see
    /// [`GridPoint`]).
    ///
    /// Flooring keeps `start <= end`, and consecutive intervals that abut keep
    /// abutting. The result is empty when no grid point lies in
    /// `[start, end)`; callers that bill per grid bucket drop such intervals.
    ///
    /// Returns `None` when `step` is not positive or a floored end is not
    /// representable.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::Interval;
    ///
    /// let held = Interval::new(7, 23).unwrap();
    /// assert_eq!(held.floor_to_grid(5), Some(Interval::new(5, 20).unwrap()));
    /// // No grid point in [11, 14): the interval shrinks to nothing.
    /// assert!(Interval::new(11, 14).unwrap().floor_to_grid(5).unwrap().is_empty());
    /// assert_eq!(held.floor_to_grid(0), None);
    /// ```
    pub fn floor_to_grid(&self, step: T::Step) -> Option<Interval<T>> {
        let start = self.start.floor_to(step)?;
        let end = self.end.floor_to(step)?;
        Some(Interval::new_unchecked(start, end))
    }
}

#[cfg(feature = "serde")]
impl<'de, T> serde::Deserialize<'de> for Interval<T>
where
    T: serde::Deserialize<'de> + Ord + Copy + fmt::Debug,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename = "Interval")]
        struct Unchecked<T> {
            start: T,
            end: T,
        }
        let Unchecked { start, end } = Unchecked::deserialize(deserializer)?;
        Interval::new(start, end).map_err(serde::de::Error::custom)
    }
}

impl<T: fmt::Debug> fmt::Debug for Interval<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?}, {:?})", self.start, self.end)
    }
}

impl<T: fmt::Display> fmt::Display for Interval<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::Interval;
    use crate::Error;

    fn iv(start: i64, end: i64) -> Interval<i64> {
        Interval::new(start, end).unwrap()
    }

    #[test]
    fn new_refuses_start_after_end_naming_both() {
        assert_eq!(
            Interval::new(5, 1),
            Err(Error::StartAfterEnd {
                start: "5".to_owned(),
                end: "1".to_owned()
            })
        );
    }

    #[test]
    fn half_open_bounds() {
        let a = iv(2, 5);
        assert!(a.contains(2));
        assert!(a.contains(4));
        assert!(!a.contains(5));
        assert!(!a.contains(1));
        assert!(!iv(3, 3).contains(3));
    }

    #[test]
    fn touching_intervals_do_not_overlap_but_touch() {
        assert!(!iv(1, 3).overlaps(&iv(3, 5)));
        assert!(iv(1, 3).touches(&iv(3, 5)));
        assert!(iv(1, 4).overlaps(&iv(3, 5)));
        assert!(!iv(1, 2).touches(&iv(3, 5)));
        // An empty interval overlaps nothing, even inside another.
        assert!(!iv(3, 3).overlaps(&iv(1, 5)));
        assert_eq!(iv(1, 5).intersection(&iv(3, 3)), None);
    }

    #[test]
    fn intersection_and_clamp() {
        assert_eq!(iv(1, 5).intersection(&iv(3, 9)), Some(iv(3, 5)));
        assert_eq!(iv(1, 3).intersection(&iv(3, 9)), None);
        assert_eq!(iv(0, 100).clamp(&iv(10, 20)), Some(iv(10, 20)));
    }

    #[test]
    fn floor_to_grid_floors_both_ends() {
        assert_eq!(iv(-3, 9).floor_to_grid(4), Some(iv(-4, 8)));
        assert_eq!(iv(8, 12).floor_to_grid(4), Some(iv(8, 12)));
        assert_eq!(iv(9, 11).floor_to_grid(4), Some(iv(8, 8)));
        assert_eq!(iv(9, 11).floor_to_grid(-4), None);
    }

    #[test]
    fn debug_and_display_show_half_open_brackets() {
        assert_eq!(format!("{:?}", iv(1, 2)), "[1, 2)");
        assert_eq!(iv(1, 2).to_string(), "[1, 2)");
    }
}
