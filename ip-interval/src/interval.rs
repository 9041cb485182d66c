use std::fmt;

use crate::Error;

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

    /// The points both intervals hold, or `None` when they share none.
    pub(crate) fn intersection(&self, other: &Interval<T>) -> Option<Interval<T>> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Interval { start, end })
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
    fn intersection_is_the_shared_points() {
        assert_eq!(iv(1, 5).intersection(&iv(3, 9)), Some(iv(3, 5)));
        // Touching intervals share no point; an empty one shares none.
        assert_eq!(iv(1, 3).intersection(&iv(3, 9)), None);
        assert_eq!(iv(1, 5).intersection(&iv(3, 3)), None);
        assert_eq!(iv(0, 100).intersection(&iv(10, 20)), Some(iv(10, 20)));
    }

    #[test]
    fn debug_and_display_show_half_open_brackets() {
        assert_eq!(format!("{:?}", iv(1, 2)), "[1, 2)");
        assert_eq!(iv(1, 2).to_string(), "[1, 2)");
    }
}
