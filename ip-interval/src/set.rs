use std::fmt;
use std::iter::{FromIterator, Sum};

use crate::Interval;

/// A set of points stored as half-open intervals in one canonical form.
///
/// Two sets hold the same points exactly when they are equal (`==`), because
/// every set keeps this invariant, established by every constructor and kept
/// by every operation:
///
/// > the intervals are **non-empty**, **sorted** by start, **disjoint** and
/// > **non-adjacent**: for consecutive intervals `a` and `b`, `a.end < b.start`.
///
/// Adjacent or overlapping input intervals are merged (`[1, 3)` and `[3, 5)`
/// become `[1, 5)`), empty ones are dropped. The binary operations
/// ([`union`](Self::union), [`intersection`](Self::intersection),
/// [`difference`](Self::difference)) merge the two sorted lists in time linear
/// in their lengths.
///
/// With the `serde` feature a set is the list of its intervals. Deserializing
/// accepts any list of valid intervals and brings it to canonical form.
///
/// # Example
///
/// ```
/// use ip_interval::{Interval, IntervalSet};
///
/// let iv = |s, e| Interval::new(s, e).unwrap();
/// let held: IntervalSet<i64> = [iv(0, 10), iv(10, 20), iv(30, 40)].into_iter().collect();
/// assert_eq!(held.intervals(), &[iv(0, 20), iv(30, 40)]);
///
/// let billed = IntervalSet::from(iv(5, 35));
/// assert_eq!(held.difference(&billed).intervals(), &[iv(0, 5), iv(35, 40)]);
/// assert_eq!(held.intersection(&billed).total(|i| i.end() - i.start()), 20);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(transparent))]
pub struct IntervalSet<T> {
    /// Non-empty, sorted, disjoint, non-adjacent: `w[0].end() < w[1].start()`
    /// for every window `w` of two consecutive intervals.
    intervals: Vec<Interval<T>>,
}

impl<T> IntervalSet<T> {
    /// The empty set.
    pub fn new() -> Self {
        IntervalSet {
            intervals: Vec::new(),
        }
    }

    /// The intervals of the set, in canonical form: non-empty, sorted,
    /// disjoint and non-adjacent.
    pub fn intervals(&self) -> &[Interval<T>] {
        &self.intervals
    }

    /// Whether the set holds no point.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// The number of (maximal) intervals in the set.
    pub fn len(&self) -> usize {
        self.intervals.len()
    }

    /// The intervals of the set in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Interval<T>> {
        self.intervals.iter()
    }
}

impl<T: Ord + Copy> IntervalSet<T> {
    /// Builds the set from a list of intervals in any order, overlapping or
    /// not, by sorting and merging them in place.
    fn canonicalize(mut intervals: Vec<Interval<T>>) -> Self {
        intervals.retain(|interval| !interval.is_empty());
        intervals.sort_unstable();
        let mut merged: Vec<Interval<T>> = Vec::with_capacity(intervals.len());
        for interval in intervals {
            push_merging(&mut merged, interval);
        }
        IntervalSet { intervals: merged }
    }

    /// Adds the points of `interval` to the set, merging it with the
    /// intervals it overlaps or touches. Inserting an empty interval changes
    /// nothing.
    ///
    /// Finds the affected intervals by binary search; the cost is the shift
    /// of the intervals after the insertion point.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::{Interval, IntervalSet};
    ///
    /// let iv = |s, e| Interval::new(s, e).unwrap();
    /// let mut set = IntervalSet::new();
    /// set.insert(iv(0, 2));
    /// set.insert(iv(4, 6));
    /// set.insert(iv(2, 4));
    /// assert_eq!(set.intervals(), &[iv(0, 6)]);
    /// ```
    pub fn insert(&mut self, interval: Interval<T>) {
        if interval.is_empty() {
            return;
        }
        // Intervals in `first..last` overlap or touch `interval`: their ends
        // reach its start and their starts do not pass its end. Both bounds
        // are monotone because the intervals are sorted and disjoint.
        let first = self
            .intervals
            .partition_point(|held| held.end() < interval.start());
        let last = self
            .intervals
            .partition_point(|held| held.start() <= interval.end());
        if first == last {
            self.intervals.insert(first, interval);
            return;
        }
        let start = interval.start().min(self.intervals[first].start());
        let end = interval.end().max(self.intervals[last - 1].end());
        self.intervals[first] = Interval::new_unchecked(start, end);
        self.intervals.drain(first + 1..last);
    }

    /// Removes the points of `interval` from the set, splitting an interval
    /// that it cuts in the middle. Removing an empty interval changes nothing.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::{Interval, IntervalSet};
    ///
    /// let iv = |s, e| Interval::new(s, e).unwrap();
    /// let mut set = IntervalSet::from(iv(0, 10));
    /// set.remove(iv(3, 5));
    /// assert_eq!(set.intervals(), &[iv(0, 3), iv(5, 10)]);
    /// ```
    pub fn remove(&mut self, interval: Interval<T>) {
        if interval.is_empty() {
            return;
        }
        // Intervals in `first..last` share at least one point with `interval`.
        let first = self
            .intervals
            .partition_point(|held| held.end() <= interval.start());
        let last = self
            .intervals
            .partition_point(|held| held.start() < interval.end());
        if first >= last {
            return;
        }
        let left = self.intervals[first].start();
        let right = self.intervals[last - 1].end();
        let mut kept = Vec::with_capacity(2);
        if left < interval.start() {
            kept.push(Interval::new_unchecked(left, interval.start()));
        }
        if interval.end() < right {
            kept.push(Interval::new_unchecked(interval.end(), right));
        }
        self.intervals.splice(first..last, kept);
    }

    /// Whether `point` lies in the set (binary search).
    pub fn contains(&self, point: T) -> bool {
        let index = self.intervals.partition_point(|held| held.end() <= point);
        self.intervals
            .get(index)
            .is_some_and(|held| held.contains(point))
    }

    /// Whether every point of `interval` lies in the set. An empty interval
    /// is covered by any set.
    pub fn covers(&self, interval: &Interval<T>) -> bool {
        if interval.is_empty() {
            return true;
        }
        let index = self
            .intervals
            .partition_point(|held| held.end() <= interval.start());
        self.intervals
            .get(index)
            .is_some_and(|held| held.start() <= interval.start() && interval.end() <= held.end())
    }

    /// The smallest interval holding every point of the set, or `None` for
    /// the empty set.
    pub fn span(&self) -> Option<Interval<T>> {
        let first = self.intervals.first()?;
        let last = self.intervals.last()?;
        Some(Interval::new_unchecked(first.start(), last.end()))
    }

    /// The points in `self` or in `other` (or both), in linear time.
    pub fn union(&self, other: &IntervalSet<T>) -> IntervalSet<T> {
        let mut merged = Vec::with_capacity(self.intervals.len() + other.intervals.len());
        let (mut a, mut b) = (
            self.intervals.iter().peekable(),
            other.intervals.iter().peekable(),
        );
        loop {
            // Take the interval that starts first; each list is sorted, so the
            // output sees starts in order and `push_merging` keeps it canonical.
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.start() <= y.start() => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            if let Some(&interval) = next {
                push_merging(&mut merged, interval);
            }
        }
        IntervalSet { intervals: merged }
    }

    /// The points in both `self` and `other`, in linear time.
    pub fn intersection(&self, other: &IntervalSet<T>) -> IntervalSet<T> {
        let mut common = Vec::new();
        let (a, b) = (&self.intervals, &other.intervals);
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            // Intersections of canonical lists come out sorted and separated
            // by at least the gap of one of the inputs, hence canonical.
            if let Some(both) = a[i].intersection(&b[j]) {
                common.push(both);
            }
            if a[i].end() < b[j].end() {
                i += 1;
            } else {
                j += 1;
            }
        }
        IntervalSet { intervals: common }
    }

    /// The points in `self` that are not in `other`, in linear time.
    pub fn difference(&self, other: &IntervalSet<T>) -> IntervalSet<T> {
        let mut kept = Vec::new();
        let b = &other.intervals;
        let mut j = 0;
        for interval in &self.intervals {
            let mut start = interval.start();
            let end = interval.end();
            // Skip the intervals of `other` that end before this one starts.
            while j < b.len() && b[j].end() <= start {
                j += 1;
            }
            // Cut out every interval of `other` that starts before this one
            // ends. The last one may reach into the next interval of `self`,
            // so it is not skipped here.
            let mut k = j;
            while k < b.len() && b[k].start() < end {
                if start < b[k].start() {
                    kept.push(Interval::new_unchecked(start, b[k].start()));
                }
                start = start.max(b[k].end());
                if start >= end {
                    break;
                }
                k += 1;
            }
            if start < end {
                kept.push(Interval::new_unchecked(start, end));
            }
        }
        IntervalSet { intervals: kept }
    }

    /// The points of `bounds` that are not in the set.
    ///
    /// Complementing twice within the same bounds gives the set clipped to
    /// `bounds`: `s.complement(b).complement(b) == s.intersection(&b.into())`.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::{Interval, IntervalSet};
    ///
    /// let iv = |s, e| Interval::new(s, e).unwrap();
    /// let owned: IntervalSet<i64> = [iv(2, 4), iv(6, 8)].into_iter().collect();
    /// let unowned = owned.complement(iv(0, 10));
    /// assert_eq!(unowned.intervals(), &[iv(0, 2), iv(4, 6), iv(8, 10)]);
    /// ```
    pub fn complement(&self, bounds: Interval<T>) -> IntervalSet<T> {
        let mut gaps = Vec::new();
        if bounds.is_empty() {
            return IntervalSet { intervals: gaps };
        }
        let mut cursor = bounds.start();
        let first = self
            .intervals
            .partition_point(|held| held.end() <= bounds.start());
        for held in &self.intervals[first..] {
            if held.start() >= bounds.end() {
                break;
            }
            if cursor < held.start() {
                gaps.push(Interval::new_unchecked(cursor, held.start()));
            }
            cursor = held.end();
        }
        if cursor < bounds.end() {
            gaps.push(Interval::new_unchecked(cursor, bounds.end()));
        }
        IntervalSet { intervals: gaps }
    }

    /// The sum of `measure` over the intervals of the set, e.g. the number
    /// of seconds it covers.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::{Interval, IntervalSet};
    ///
    /// let iv = |s, e| Interval::new(s, e).unwrap();
    /// let set: IntervalSet<u32> = [iv(0, 3), iv(2, 5), iv(10, 11)].into_iter().collect();
    /// assert_eq!(set.total(|i| u64::from(i.end() - i.start())), 6);
    /// ```
    pub fn total<M, F>(&self, measure: F) -> M
    where
        M: Sum<M>,
        F: FnMut(&Interval<T>) -> M,
    {
        self.intervals.iter().map(measure).sum()
    }
}

/// Appends `interval` to `merged`, a canonical list whose last start is not
/// after `interval`'s start, merging with the last interval when they touch.
fn push_merging<T: Ord + Copy>(merged: &mut Vec<Interval<T>>, interval: Interval<T>) {
    if interval.is_empty() {
        return;
    }
    match merged.last_mut() {
        Some(last) if last.touches(&interval) => {
            *last = Interval::new_unchecked(last.start(), last.end().max(interval.end()));
        }
        _ => merged.push(interval),
    }
}

impl<T> Default for IntervalSet<T> {
    fn default() -> Self {
        IntervalSet::new()
    }
}

impl<T: Ord + Copy> From<Interval<T>> for IntervalSet<T> {
    /// The set of the points of one interval (empty if the interval is).
    fn from(interval: Interval<T>) -> Self {
        let intervals = if interval.is_empty() {
            Vec::new()
        } else {
            vec![interval]
        };
        IntervalSet { intervals }
    }
}

impl<T: Ord + Copy> FromIterator<Interval<T>> for IntervalSet<T> {
    /// The union of the intervals, in any order.
    fn from_iter<I: IntoIterator<Item = Interval<T>>>(iter: I) -> Self {
        IntervalSet::canonicalize(iter.into_iter().collect())
    }
}

impl<T: Ord + Copy> Extend<Interval<T>> for IntervalSet<T> {
    fn extend<I: IntoIterator<Item = Interval<T>>>(&mut self, iter: I) {
        let mut all = std::mem::take(&mut self.intervals);
        all.extend(iter);
        *self = IntervalSet::canonicalize(all);
    }
}

impl<T> IntoIterator for IntervalSet<T> {
    type Item = Interval<T>;
    type IntoIter = std::vec::IntoIter<Interval<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.intervals.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a IntervalSet<T> {
    type Item = &'a Interval<T>;
    type IntoIter = std::slice::Iter<'a, Interval<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.intervals.iter()
    }
}

impl<T: fmt::Debug> fmt::Debug for IntervalSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.intervals).finish()
    }
}

#[cfg(feature = "serde")]
impl<'de, T> serde::Deserialize<'de> for IntervalSet<T>
where
    T: serde::Deserialize<'de> + Ord + Copy + fmt::Debug,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let intervals = Vec::<Interval<T>>::deserialize(deserializer)?;
        Ok(IntervalSet::canonicalize(intervals))
    }
}

#[cfg(test)]
mod tests {
    use super::IntervalSet;
    use crate::Interval;

    fn iv(start: i64, end: i64) -> Interval<i64> {
        Interval::new(start, end).unwrap()
    }

    fn set(intervals: &[(i64, i64)]) -> IntervalSet<i64> {
        intervals.iter().map(|&(s, e)| iv(s, e)).collect()
    }

    fn pairs(set: &IntervalSet<i64>) -> Vec<(i64, i64)> {
        set.iter().map(|i| (i.start(), i.end())).collect()
    }

    #[test]
    fn collecting_sorts_merges_and_drops_empty_intervals() {
        let s = set(&[(8, 9), (1, 3), (3, 4), (2, 2), (6, 7), (6, 8), (20, 20)]);
        assert_eq!(pairs(&s), [(1, 4), (6, 9)]);
        assert_eq!(s.len(), 2);
        assert!(set(&[(5, 5)]).is_empty());
        assert!(IntervalSet::<i64>::default().is_empty());
    }

    #[test]
    fn insert_merges_touching_neighbours_only() {
        let mut s = set(&[(0, 2), (4, 6), (8, 10), (12, 14)]);
        s.insert(iv(6, 8));
        assert_eq!(pairs(&s), [(0, 2), (4, 10), (12, 14)]);
        s.insert(iv(-5, -3));
        assert_eq!(pairs(&s), [(-5, -3), (0, 2), (4, 10), (12, 14)]);
        s.insert(iv(1, 13));
        assert_eq!(pairs(&s), [(-5, -3), (0, 14)]);
        s.insert(iv(20, 20));
        assert_eq!(pairs(&s), [(-5, -3), (0, 14)]);
        s.insert(iv(14, 15));
        assert_eq!(pairs(&s), [(-5, -3), (0, 15)]);
    }

    #[test]
    fn remove_splits_and_trims() {
        let mut s = set(&[(0, 10), (20, 30)]);
        s.remove(iv(5, 25));
        assert_eq!(pairs(&s), [(0, 5), (25, 30)]);
        s.remove(iv(2, 3));
        assert_eq!(pairs(&s), [(0, 2), (3, 5), (25, 30)]);
        s.remove(iv(5, 25));
        assert_eq!(pairs(&s), [(0, 2), (3, 5), (25, 30)]);
        s.remove(iv(-100, 100));
        assert!(s.is_empty());
    }

    #[test]
    fn contains_and_covers_respect_half_open_ends() {
        let s = set(&[(0, 2), (4, 6)]);
        assert!(s.contains(0));
        assert!(s.contains(1));
        assert!(!s.contains(2));
        assert!(!s.contains(3));
        assert!(s.contains(5));
        assert!(!s.contains(6));
        assert!(s.covers(&iv(4, 6)));
        assert!(!s.covers(&iv(1, 5)));
        assert!(s.covers(&iv(3, 3)));
        assert_eq!(s.span(), Some(iv(0, 6)));
        assert_eq!(IntervalSet::<i64>::new().span(), None);
    }

    #[test]
    fn binary_operations() {
        let a = set(&[(0, 5), (10, 15), (20, 25)]);
        let b = set(&[(3, 12), (15, 20), (24, 30)]);
        assert_eq!(pairs(&a.union(&b)), [(0, 30)]);
        assert_eq!(pairs(&a.intersection(&b)), [(3, 5), (10, 12), (24, 25)]);
        assert_eq!(pairs(&a.difference(&b)), [(0, 3), (12, 15), (20, 24)]);
        assert_eq!(pairs(&b.difference(&a)), [(5, 10), (15, 20), (25, 30)]);
        // One interval of `other` reaching over several of `self`.
        let wide = set(&[(1, 22)]);
        assert_eq!(pairs(&a.difference(&wide)), [(0, 1), (22, 25)]);
        // Several of `other` inside one of `self`.
        let holes = set(&[(1, 2), (3, 4), (6, 7)]);
        assert_eq!(
            pairs(&set(&[(0, 5)]).difference(&holes)),
            [(0, 1), (2, 3), (4, 5)]
        );
    }

    #[test]
    fn complement_within_bounds() {
        let s = set(&[(-5, 2), (4, 6), (9, 20)]);
        assert_eq!(pairs(&s.complement(iv(0, 10))), [(2, 4), (6, 9)]);
        assert_eq!(pairs(&s.complement(iv(6, 9))), [(6, 9)]);
        assert!(s.complement(iv(10, 10)).is_empty());
        assert_eq!(pairs(&IntervalSet::new().complement(iv(1, 3))), [(1, 3)]);
        assert_eq!(
            s.complement(iv(0, 10)).complement(iv(0, 10)),
            s.intersection(&iv(0, 10).into())
        );
    }

    #[test]
    fn total_sums_the_measure() {
        let s = set(&[(0, 5), (3, 8), (10, 11)]);
        assert_eq!(s.total(|i| i.end() - i.start()), 9);
        assert_eq!(IntervalSet::<i64>::new().total(|i| i.end() - i.start()), 0);
    }

    #[test]
    fn extend_and_iteration() {
        let mut s = set(&[(0, 1)]);
        s.extend([iv(1, 2), iv(5, 6)]);
        assert_eq!(pairs(&s), [(0, 2), (5, 6)]);
        let by_ref: Vec<_> = (&s).into_iter().copied().collect();
        let owned: Vec<_> = s.clone().into_iter().collect();
        assert_eq!(by_ref, owned);
        assert_eq!(format!("{s:?}"), "{[0, 2), [5, 6)}");
    }
}
