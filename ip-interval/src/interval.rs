use std::fmt;

use crate::Error;

/// A half-open interval `[start, end)` over any totally ordered point type.
///
/// Invariant: `start <= end`. An interval with `start == end` is empty: it
/// contains no point and overlaps nothing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    pub fn clamp(&self, bounds: &Interval<T>) -> Option<Interval<T>> {
        self.intersection(bounds)
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
