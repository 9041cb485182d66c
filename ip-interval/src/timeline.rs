use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;

use crate::{Error, Interval, IntervalSet};

/// A sequence of non-overlapping intervals, each carrying a value: who held
/// something (an IP address) and when.
///
/// Invariant, kept by every operation: the pieces are **non-empty**,
/// **sorted** by start and pairwise **non-overlapping** (for consecutive
/// pieces `a` and `b`, `a.end <= b.start`). Pieces may abut; abutting pieces
/// are kept apart even when their values are equal, since each stands for one
/// holding.
///
/// Inserting an empty interval is a no-op that returns `Ok(())`: an empty
/// holding owns no point, so it has nothing to conflict with and nothing to
/// bill.
///
/// With the `serde` feature a timeline is the list of its pieces as
/// `{"interval": …, "value": …}` maps; deserializing refuses overlapping
/// pieces as [`Timeline::insert`] does.
///
/// # Example
///
/// ```
/// use ip_interval::{Interval, Timeline};
///
/// let iv = |s, e| Interval::new(s, e).unwrap();
/// let mut ip = Timeline::new();
/// ip.insert(iv(0, 10), "acct-1")?;
/// ip.insert(iv(10, 25), "acct-2")?; // half-open: abutting is fine
/// assert!(ip.insert(iv(20, 30), "acct-3").is_err());
///
/// let window = iv(5, 15);
/// let pieces: Vec<_> = ip.pieces(window).collect();
/// assert_eq!(pieces, [(iv(5, 10), &"acct-1"), (iv(10, 15), &"acct-2")]);
/// assert_eq!(ip.at(10), Some(&"acct-2"));
/// # Ok::<(), ip_interval::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Timeline<T, V> {
    /// Non-empty, sorted by start, non-overlapping: `w[0].0.end() <=
    /// w[1].0.start()` for every window `w` of two consecutive pieces. Hence
    /// the ends are sorted too, which the binary searches rely on.
    pieces: Vec<(Interval<T>, V)>,
}

impl<T, V> Timeline<T, V> {
    /// The empty timeline.
    pub fn new() -> Self {
        Timeline { pieces: Vec::new() }
    }

    /// The number of pieces.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether the timeline holds no piece.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

impl<T: Ord + Copy, V> Timeline<T, V> {
    /// Adds the piece `interval` held by `value`.
    ///
    /// Appending after the last piece, the usual case when events arrive in
    /// time order, is constant time; elsewhere the position is found by binary
    /// search. An empty `interval` is ignored and `Ok(())` is returned.
    ///
    /// # Errors
    ///
    /// [`Error::Overlap`] when `interval` shares a point with a piece already
    /// held; it names both intervals (the earliest overlapping piece) and its
    /// `key` is `None`. The timeline is then unchanged.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::{Error, Interval, Timeline};
    ///
    /// let iv = |s, e| Interval::new(s, e).unwrap();
    /// let mut timeline = Timeline::new();
    /// timeline.insert(iv(0, 10), 'a')?;
    /// let err = timeline.insert(iv(5, 15), 'b').unwrap_err();
    /// assert_eq!(err.to_string(), "interval [5, 15) overlaps the interval [0, 10) already held");
    /// assert_eq!(timeline.len(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn insert(&mut self, interval: Interval<T>, value: V) -> Result<(), Error>
    where
        T: fmt::Debug,
    {
        if interval.is_empty() {
            return Ok(());
        }
        let index = self
            .pieces
            .partition_point(|(held, _)| held.start() < interval.start());
        // Only the neighbours can overlap: the piece before (starting earlier,
        // it overlaps if it ends after the new start) and the piece at
        // `index` (starting no earlier, it overlaps if it starts before the
        // new end). Anything further away is separated by these two.
        let before = index.checked_sub(1).and_then(|i| self.pieces.get(i));
        let after = self.pieces.get(index);
        let clash = before
            .filter(|(held, _)| held.end() > interval.start())
            .or_else(|| after.filter(|(held, _)| held.start() < interval.end()));
        if let Some((existing, _)) = clash {
            return Err(Error::Overlap {
                key: None,
                new: format!("{interval:?}"),
                existing: format!("{existing:?}"),
            });
        }
        self.pieces.insert(index, (interval, value));
        Ok(())
    }

    /// The pieces that overlap `window`, clipped to it, in time order.
    ///
    /// Starts at the first overlapping piece found by binary search and stops
    /// after the last, so the cost is `O(log n + k)` for `k` pieces returned.
    /// An empty window yields nothing.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::{Interval, Timeline};
    ///
    /// let iv = |s, e| Interval::new(s, e).unwrap();
    /// let mut timeline = Timeline::new();
    /// timeline.insert(iv(0, 10), 1)?;
    /// timeline.insert(iv(20, 30), 2)?;
    /// timeline.insert(iv(40, 50), 3)?;
    /// let clipped: Vec<_> = timeline.pieces(iv(25, 45)).collect();
    /// assert_eq!(clipped, [(iv(25, 30), &2), (iv(40, 45), &3)]);
    /// # Ok::<(), ip_interval::Error>(())
    /// ```
    pub fn pieces(&self, window: Interval<T>) -> impl Iterator<Item = (Interval<T>, &V)> + '_ {
        let first = self
            .pieces
            .partition_point(|(held, _)| held.end() <= window.start());
        self.pieces[first..]
            .iter()
            .take_while(move |(held, _)| held.start() < window.end())
            .filter_map(move |(held, value)| Some((held.intersection(&window)?, value)))
    }

    /// The value of the piece holding `point`, if any (binary search).
    pub fn at(&self, point: T) -> Option<&V> {
        self.piece_at(point).map(|(_, value)| value)
    }

    /// The piece holding `point`, if any (binary search).
    pub fn piece_at(&self, point: T) -> Option<(Interval<T>, &V)> {
        let index = self.pieces.partition_point(|(held, _)| held.end() <= point);
        let (held, value) = self.pieces.get(index)?;
        held.contains(point).then_some((*held, value))
    }

    /// All pieces in time order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (Interval<T>, &V)> + ExactSizeIterator {
        self.pieces.iter().map(|(held, value)| (*held, value))
    }

    /// The first piece, if any.
    pub fn first(&self) -> Option<(Interval<T>, &V)> {
        self.pieces.first().map(|(held, value)| (*held, value))
    }

    /// The last piece, if any.
    pub fn last(&self) -> Option<(Interval<T>, &V)> {
        self.pieces.last().map(|(held, value)| (*held, value))
    }

    /// The last piece with mutable access to its value, if any. Its interval
    /// is changed only through [`Timeline::set_end_of_last`], which keeps the
    /// invariant.
    pub fn last_mut(&mut self) -> Option<(Interval<T>, &mut V)> {
        self.pieces.last_mut().map(|(held, value)| (*held, value))
    }

    /// Removes and returns the last piece, if any.
    pub fn pop_last(&mut self) -> Option<(Interval<T>, V)> {
        self.pieces.pop()
    }

    /// Moves the end of the last piece to `end`, shortening or extending it
    /// (nothing follows the last piece, so extending cannot overlap). This
    /// closes a holding that was recorded open-ended, e.g. up to a window end.
    ///
    /// When `end` equals the last piece's start the piece becomes empty and is
    /// removed; its value is returned. Otherwise the result is `Ok(None)`.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyTimeline`] when there is no piece, and
    /// [`Error::StartAfterEnd`] when `end` is before the last piece's start.
    /// The timeline is then unchanged.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::{Interval, Timeline};
    ///
    /// let iv = |s, e| Interval::new(s, e).unwrap();
    /// let mut timeline = Timeline::new();
    /// timeline.insert(iv(0, 100), "open")?;
    /// timeline.set_end_of_last(40)?;
    /// assert_eq!(timeline.last(), Some((iv(0, 40), &"open")));
    /// assert_eq!(timeline.set_end_of_last(0)?, Some("open"));
    /// assert!(timeline.is_empty());
    /// # Ok::<(), ip_interval::Error>(())
    /// ```
    pub fn set_end_of_last(&mut self, end: T) -> Result<Option<V>, Error>
    where
        T: fmt::Debug,
    {
        let (held, _) = self.pieces.last_mut().ok_or(Error::EmptyTimeline)?;
        let changed = Interval::new(held.start(), end)?;
        if changed.is_empty() {
            return Ok(self.pieces.pop().map(|(_, value)| value));
        }
        *held = changed;
        Ok(None)
    }

    /// The points held by some piece, as a canonical [`IntervalSet`]
    /// (abutting pieces merge). Its complement within a window is the time
    /// nobody held.
    pub fn coverage(&self) -> IntervalSet<T> {
        self.pieces.iter().map(|(held, _)| *held).collect()
    }
}

impl<T, V> Default for Timeline<T, V> {
    fn default() -> Self {
        Timeline::new()
    }
}

impl<T, V> IntoIterator for Timeline<T, V> {
    type Item = (Interval<T>, V);
    type IntoIter = std::vec::IntoIter<(Interval<T>, V)>;

    /// The pieces in time order.
    fn into_iter(self) -> Self::IntoIter {
        self.pieces.into_iter()
    }
}

impl<T: fmt::Debug, V: fmt::Debug> fmt::Debug for Timeline<T, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.pieces.iter().map(|(held, value)| (held, value)))
            .finish()
    }
}

/// One [`Timeline`] per key, e.g. the holders of every IP address.
///
/// Each key's timeline keeps the [`Timeline`] invariant; pieces of different
/// keys are independent and may overlap freely.
///
/// With the `serde` feature this is a map from key to the key's timeline.
///
/// # Example
///
/// ```
/// use std::net::IpAddr;
/// use ip_interval::{Interval, KeyedTimelines};
///
/// let iv = |s, e| Interval::new(s, e).unwrap();
/// let a: IpAddr = "203.0.113.7".parse().unwrap();
/// let b: IpAddr = "2001:db8::1".parse().unwrap();
///
/// let mut held = KeyedTimelines::new();
/// held.insert(a, iv(0, 10), "acct-1")?;
/// held.insert(b, iv(5, 15), "acct-2")?;
/// let err = held.insert(a, iv(9, 12), "acct-3").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "interval [9, 12) for key 203.0.113.7 overlaps the interval [0, 10) already held"
/// );
///
/// let pieces: Vec<_> = held.pieces(iv(8, 12)).collect();
/// assert_eq!(pieces, [(&a, iv(8, 10), &"acct-1"), (&b, iv(8, 12), &"acct-2")]);
/// # Ok::<(), ip_interval::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyedTimelines<K, T, V> {
    timelines: BTreeMap<K, Timeline<T, V>>,
}

impl<K, T, V> KeyedTimelines<K, T, V> {
    /// No key, no piece.
    pub fn new() -> Self {
        KeyedTimelines {
            timelines: BTreeMap::new(),
        }
    }

    /// The number of keys with a timeline.
    pub fn len(&self) -> usize {
        self.timelines.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.timelines.is_empty()
    }

    /// The keys and their timelines, in key order.
    pub fn iter(&self) -> std::collections::btree_map::Iter<'_, K, Timeline<T, V>> {
        self.timelines.iter()
    }

    /// The keys, in order.
    pub fn keys(&self) -> std::collections::btree_map::Keys<'_, K, Timeline<T, V>> {
        self.timelines.keys()
    }
}

impl<K: Ord, T: Ord + Copy, V> KeyedTimelines<K, T, V> {
    /// Adds the piece `interval` held by `value` to `key`'s timeline,
    /// creating the timeline on first use. An empty `interval` is ignored
    /// (and creates no timeline) and `Ok(())` is returned.
    ///
    /// # Errors
    ///
    /// [`Error::Overlap`] when `interval` overlaps a piece of `key`'s
    /// timeline; it names both intervals and the key. Nothing is changed.
    pub fn insert(&mut self, key: K, interval: Interval<T>, value: V) -> Result<(), Error>
    where
        K: fmt::Debug,
        T: fmt::Debug,
    {
        if interval.is_empty() {
            return Ok(());
        }
        match self.timelines.entry(key) {
            Entry::Vacant(vacant) => {
                let mut timeline = Timeline::new();
                timeline.insert(interval, value)?;
                vacant.insert(timeline);
                Ok(())
            }
            Entry::Occupied(mut occupied) => occupied
                .get_mut()
                .insert(interval, value)
                .map_err(|err| with_key(err, occupied.key())),
        }
    }

    /// The timeline of `key`, if it has one.
    pub fn get<Q>(&self, key: &Q) -> Option<&Timeline<T, V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.timelines.get(key)
    }

    /// The timeline of `key` for changes, if it has one. A timeline keeps its
    /// invariant whatever is done through it.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut Timeline<T, V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.timelines.get_mut(key)
    }

    /// Removes `key` and returns its timeline, if it had one.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<Timeline<T, V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.timelines.remove(key)
    }

    /// The value holding `key` at `point`, if any.
    pub fn at<Q>(&self, key: &Q, point: T) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.timelines.get(key)?.at(point)
    }

    /// The pieces of every key that overlap `window`, clipped to it, as
    /// `(key, interval, value)`: in key order, and in time order within a key.
    /// See [`Timeline::pieces`].
    pub fn pieces(&self, window: Interval<T>) -> impl Iterator<Item = (&K, Interval<T>, &V)> + '_ {
        self.timelines.iter().flat_map(move |(key, timeline)| {
            timeline
                .pieces(window)
                .map(move |(interval, value)| (key, interval, value))
        })
    }
}

/// Names `key` in an overlap error of its timeline.
fn with_key<K: fmt::Debug>(err: Error, key: &K) -> Error {
    match err {
        Error::Overlap {
            key: _,
            new,
            existing,
        } => Error::Overlap {
            key: Some(format!("{key:?}")),
            new,
            existing,
        },
        other => other,
    }
}

impl<K, T, V> Default for KeyedTimelines<K, T, V> {
    fn default() -> Self {
        KeyedTimelines::new()
    }
}

impl<'a, K, T, V> IntoIterator for &'a KeyedTimelines<K, T, V> {
    type Item = (&'a K, &'a Timeline<T, V>);
    type IntoIter = std::collections::btree_map::Iter<'a, K, Timeline<T, V>>;

    fn into_iter(self) -> Self::IntoIter {
        self.timelines.iter()
    }
}

impl<K, T, V> IntoIterator for KeyedTimelines<K, T, V> {
    type Item = (K, Timeline<T, V>);
    type IntoIter = std::collections::btree_map::IntoIter<K, Timeline<T, V>>;

    fn into_iter(self) -> Self::IntoIter {
        self.timelines.into_iter()
    }
}

impl<K: fmt::Debug, T: fmt::Debug, V: fmt::Debug> fmt::Debug for KeyedTimelines<K, T, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(&self.timelines).finish()
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{KeyedTimelines, Timeline, with_key};
    use crate::Interval;

    #[derive(Serialize)]
    #[serde(rename = "Piece")]
    struct PieceRef<'a, T, V> {
        interval: Interval<T>,
        value: &'a V,
    }

    #[derive(Deserialize)]
    #[serde(rename = "Piece")]
    #[serde(bound(deserialize = "T: Deserialize<'de> + Ord + Copy + fmt::Debug, \
                                 V: Deserialize<'de>"))]
    struct Piece<T, V> {
        interval: Interval<T>,
        value: V,
    }

    impl<T: Serialize + Copy, V: Serialize> Serialize for Timeline<T, V> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.pieces.iter().map(|(interval, value)| PieceRef {
                interval: *interval,
                value,
            }))
        }
    }

    impl<'de, T, V> Deserialize<'de> for Timeline<T, V>
    where
        T: Deserialize<'de> + Ord + Copy + fmt::Debug,
        V: Deserialize<'de>,
    {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let pieces = Vec::<Piece<T, V>>::deserialize(deserializer)?;
            let mut timeline = Timeline::new();
            for Piece { interval, value } in pieces {
                timeline.insert(interval, value).map_err(D::Error::custom)?;
            }
            Ok(timeline)
        }
    }

    impl<K: Serialize, T: Serialize + Copy, V: Serialize> Serialize for KeyedTimelines<K, T, V> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.timelines.serialize(serializer)
        }
    }

    impl<'de, K, T, V> Deserialize<'de> for KeyedTimelines<K, T, V>
    where
        K: Deserialize<'de> + Ord + fmt::Debug,
        T: Deserialize<'de> + Ord + Copy + fmt::Debug,
        V: Deserialize<'de>,
    {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let keyed = BTreeMap::<K, Vec<Piece<T, V>>>::deserialize(deserializer)?;
            let mut timelines = BTreeMap::new();
            for (key, pieces) in keyed {
                let mut timeline = Timeline::new();
                for Piece { interval, value } in pieces {
                    timeline
                        .insert(interval, value)
                        .map_err(|err| D::Error::custom(with_key(err, &key)))?;
                }
                timelines.insert(key, timeline);
            }
            Ok(KeyedTimelines { timelines })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KeyedTimelines, Timeline};
    use crate::{Error, Interval};

    fn iv(start: i64, end: i64) -> Interval<i64> {
        Interval::new(start, end).unwrap()
    }

    fn timeline(pieces: &[(i64, i64, char)]) -> Timeline<i64, char> {
        let mut timeline = Timeline::new();
        for &(start, end, value) in pieces {
            timeline.insert(iv(start, end), value).unwrap();
        }
        timeline
    }

    #[test]
    fn insert_keeps_pieces_sorted_whatever_the_order() {
        let t = timeline(&[(20, 30, 'c'), (0, 10, 'a'), (10, 20, 'b'), (40, 50, 'd')]);
        let pieces: Vec<_> = t.iter().map(|(i, v)| (i.start(), i.end(), *v)).collect();
        assert_eq!(
            pieces,
            [(0, 10, 'a'), (10, 20, 'b'), (20, 30, 'c'), (40, 50, 'd')]
        );
        assert_eq!(t.len(), 4);
        assert_eq!(t.first(), Some((iv(0, 10), &'a')));
        assert_eq!(t.last(), Some((iv(40, 50), &'d')));
    }

    #[test]
    fn insert_refuses_every_kind_of_overlap_and_changes_nothing() {
        let t = timeline(&[(10, 20, 'a'), (30, 40, 'b')]);
        for (start, end, existing) in [
            (5, 11, "[10, 20)"),
            (19, 25, "[10, 20)"),
            (12, 15, "[10, 20)"),
            (0, 100, "[10, 20)"),
            (10, 20, "[10, 20)"),
            (25, 31, "[30, 40)"),
            (15, 35, "[10, 20)"),
            (39, 45, "[30, 40)"),
        ] {
            let mut changed = t.clone();
            let err = changed.insert(iv(start, end), 'x').unwrap_err();
            assert_eq!(
                err,
                Error::Overlap {
                    key: None,
                    new: format!("[{start}, {end})"),
                    existing: existing.to_owned(),
                }
            );
            assert_eq!(changed, t);
        }
    }

    #[test]
    fn empty_intervals_are_ignored() {
        let mut t = timeline(&[(10, 20, 'a')]);
        t.insert(iv(15, 15), 'x').unwrap();
        t.insert(iv(50, 50), 'x').unwrap();
        assert_eq!(t, timeline(&[(10, 20, 'a')]));
    }

    #[test]
    fn pieces_are_clipped_to_the_window() {
        let t = timeline(&[(0, 10, 'a'), (10, 20, 'b'), (25, 30, 'c'), (40, 50, 'd')]);
        let clipped: Vec<_> = t.pieces(iv(5, 27)).collect();
        assert_eq!(
            clipped,
            [(iv(5, 10), &'a'), (iv(10, 20), &'b'), (iv(25, 27), &'c')]
        );
        assert_eq!(t.pieces(iv(20, 25)).count(), 0);
        assert_eq!(t.pieces(iv(5, 5)).count(), 0);
        assert_eq!(t.pieces(iv(30, 40)).count(), 0);
        let all: Vec<_> = t.pieces(iv(-100, 100)).collect();
        assert_eq!(all, t.iter().collect::<Vec<_>>());
    }

    #[test]
    fn at_finds_the_holder_of_a_point() {
        let t = timeline(&[(0, 10, 'a'), (10, 20, 'b'), (25, 30, 'c')]);
        assert_eq!(t.at(-1), None);
        assert_eq!(t.at(0), Some(&'a'));
        assert_eq!(t.at(9), Some(&'a'));
        assert_eq!(t.at(10), Some(&'b'));
        assert_eq!(t.at(20), None);
        assert_eq!(t.at(24), None);
        assert_eq!(t.piece_at(29), Some((iv(25, 30), &'c')));
        assert_eq!(t.at(30), None);
    }

    #[test]
    fn set_end_of_last_shortens_extends_or_removes() {
        let mut t = timeline(&[(0, 10, 'a'), (20, 100, 'b')]);
        assert_eq!(t.set_end_of_last(50), Ok(None));
        assert_eq!(t.last(), Some((iv(20, 50), &'b')));
        assert_eq!(t.set_end_of_last(60), Ok(None));
        assert_eq!(t.last(), Some((iv(20, 60), &'b')));
        assert_eq!(
            t.set_end_of_last(19),
            Err(Error::StartAfterEnd {
                start: "20".to_owned(),
                end: "19".to_owned()
            })
        );
        assert_eq!(t.last(), Some((iv(20, 60), &'b')));
        assert_eq!(t.set_end_of_last(20), Ok(Some('b')));
        assert_eq!(t, timeline(&[(0, 10, 'a')]));
        assert_eq!(t.pop_last(), Some((iv(0, 10), 'a')));
        assert_eq!(t.set_end_of_last(5), Err(Error::EmptyTimeline));
    }

    #[test]
    fn last_mut_changes_only_the_value() {
        let mut t = timeline(&[(0, 10, 'a')]);
        if let Some((_, value)) = t.last_mut() {
            *value = 'z';
        }
        assert_eq!(t.at(5), Some(&'z'));
    }

    #[test]
    fn coverage_merges_abutting_pieces() {
        let t = timeline(&[(0, 10, 'a'), (10, 20, 'b'), (25, 30, 'c')]);
        assert_eq!(t.coverage().intervals(), &[iv(0, 20), iv(25, 30)]);
        assert_eq!(
            t.coverage().complement(iv(0, 40)).intervals(),
            &[iv(20, 25), iv(30, 40)]
        );
    }

    #[test]
    fn debug_lists_pieces() {
        let t = timeline(&[(0, 10, 'a')]);
        assert_eq!(format!("{t:?}"), "{[0, 10): 'a'}");
    }

    #[test]
    fn keyed_timelines_name_the_key_in_overlaps() {
        let mut keyed = KeyedTimelines::new();
        keyed.insert("ip-1", iv(0, 10), 'a').unwrap();
        keyed.insert("ip-2", iv(0, 10), 'b').unwrap();
        keyed.insert("ip-1", iv(10, 20), 'c').unwrap();
        let err = keyed.insert("ip-1", iv(15, 25), 'd').unwrap_err();
        assert_eq!(
            err,
            Error::Overlap {
                key: Some("\"ip-1\"".to_owned()),
                new: "[15, 25)".to_owned(),
                existing: "[10, 20)".to_owned(),
            }
        );
        // An empty interval creates no timeline.
        keyed.insert("ip-3", iv(5, 5), 'e').unwrap();
        assert_eq!(keyed.len(), 2);
        assert!(keyed.get("ip-3").is_none());
        assert_eq!(keyed.get("ip-1").map(Timeline::len), Some(2));
        assert_eq!(keyed.at("ip-2", 3), Some(&'b'));

        let pieces: Vec<_> = keyed.pieces(iv(5, 12)).collect();
        assert_eq!(
            pieces,
            [
                (&"ip-1", iv(5, 10), &'a'),
                (&"ip-1", iv(10, 12), &'c'),
                (&"ip-2", iv(5, 10), &'b')
            ]
        );
        let keys: Vec<_> = keyed.keys().copied().collect();
        assert_eq!(keys, ["ip-1", "ip-2"]);
        assert_eq!(keyed.remove("ip-2").map(|t| t.len()), Some(1));
        assert_eq!(keyed.iter().count(), 1);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip_and_validation() {
        use crate::IntervalSet;

        let interval: Interval<i64> = serde_json::from_str(r#"{"start":1,"end":5}"#).unwrap();
        assert_eq!(interval, iv(1, 5));
        let err = serde_json::from_str::<Interval<i64>>(r#"{"start":5,"end":1}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("interval start 5 is after its end 1"),
            "{err}"
        );

        let set: IntervalSet<i64> = serde_json::from_str(
            r#"[{"start":5,"end":9},{"start":0,"end":5},{"start":7,"end":7}]"#,
        )
        .unwrap();
        assert_eq!(set.intervals(), &[iv(0, 9)]);
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"[{"start":0,"end":9}]"#
        );

        let t = timeline(&[(0, 10, 'a'), (10, 20, 'b')]);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"[{"interval":{"start":0,"end":10},"value":"a"},{"interval":{"start":10,"end":20},"value":"b"}]"#
        );
        assert_eq!(
            serde_json::from_str::<Timeline<i64, char>>(&json).unwrap(),
            t
        );
        let overlapping = r#"[{"interval":{"start":0,"end":10},"value":"a"},{"interval":{"start":5,"end":20},"value":"b"}]"#;
        let err = serde_json::from_str::<Timeline<i64, char>>(overlapping).unwrap_err();
        assert!(
            err.to_string()
                .contains("interval [5, 20) overlaps the interval [0, 10)"),
            "{err}"
        );

        let mut keyed = KeyedTimelines::new();
        keyed.insert("ip-1".to_owned(), iv(0, 10), 'a').unwrap();
        let json = serde_json::to_string(&keyed).unwrap();
        assert_eq!(
            json,
            r#"{"ip-1":[{"interval":{"start":0,"end":10},"value":"a"}]}"#
        );
        assert_eq!(
            serde_json::from_str::<KeyedTimelines<String, i64, char>>(&json).unwrap(),
            keyed
        );
        let overlapping = format!(r#"{{"ip-9":{overlapping}}}"#);
        let err =
            serde_json::from_str::<KeyedTimelines<String, i64, char>>(&overlapping).unwrap_err();
        assert!(err.to_string().contains("for key \"ip-9\""), "{err}");
    }
}
