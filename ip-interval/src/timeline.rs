use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;

use crate::{Error, Interval};

/// A sequence of non-overlapping intervals, each carrying a value: who held
/// something (an IP address) and when.
///
/// Invariant, kept by every operation: the pieces are **non-empty**,
/// **sorted** by start and pairwise **non-overlapping** (for consecutive
/// pieces `a` and `b`, `a.end <= b.start`). Pieces may abut; abutting pieces
/// are kept apart even when their values are equal, since each stands for one
/// holding.
///
/// Timelines are built by [`KeyedTimelines::insert`] (or, for many pieces
/// at once, [`KeyedTimelines::from_pieces`]), one per key, which
/// refuses a piece that overlaps one already held and ignores an empty one
/// (an empty holding owns no point, so it has nothing to conflict with and
/// nothing to bill).
///
/// With the `serde` feature a timeline is the list of its pieces as
/// `{"interval": …, "value": …}` maps; deserializing refuses overlapping
/// pieces as [`KeyedTimelines::insert`] does.
///
/// # Example
///
/// ```
/// use ip_interval::{Interval, KeyedTimelines};
///
/// let iv = |s, e| Interval::new(s, e).unwrap();
/// let mut held = KeyedTimelines::new();
/// held.insert("203.0.113.7", iv(0, 10), "acct-1")?;
/// held.insert("203.0.113.7", iv(10, 25), "acct-2")?; // half-open: abutting is fine
///
/// let (_, ip) = held.iter().next().unwrap();
/// let window = iv(5, 15);
/// let pieces: Vec<_> = ip.pieces(window).collect();
/// assert_eq!(pieces, [(iv(5, 10), &"acct-1"), (iv(10, 15), &"acct-2")]);
/// assert_eq!(ip.at(10), Some(&"acct-2"));
/// assert_eq!(ip.iter().count(), 2);
/// # Ok::<(), ip_interval::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Timeline<T, V> {
    /// Non-empty, sorted by start, non-overlapping: `w[0].0.end() <=
    /// w[1].0.start()` for every window `w` of two consecutive pieces. Hence
    /// the ends are sorted too, which the binary searches rely on.
    pieces: Vec<(Interval<T>, V)>,
}

impl<T, V> Timeline<T, V> {
    /// The timeline with no piece.
    fn empty() -> Self {
        Timeline { pieces: Vec::new() }
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
    pub(crate) fn insert(&mut self, interval: Interval<T>, value: V) -> Result<(), Error>
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
        let index = self.pieces.partition_point(|(held, _)| held.end() <= point);
        let (held, value) = self.pieces.get(index)?;
        held.contains(point).then_some(value)
    }

    /// All pieces in time order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (Interval<T>, &V)> + ExactSizeIterator {
        self.pieces.iter().map(|(held, value)| (*held, value))
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
#[derive(Clone, PartialEq, Eq)]
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

    /// The keys and their timelines, in key order.
    pub fn iter(&self) -> std::collections::btree_map::Iter<'_, K, Timeline<T, V>> {
        self.timelines.iter()
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
                let mut timeline = Timeline::empty();
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

    /// The timelines of `pieces`, `(key, interval, value)`, as
    /// [`KeyedTimelines::insert`] would file them one by one.
    ///
    /// Pieces grouped by key in ascending key order, each key's in time
    /// order (as a sweep over sorted events gives them), are filed in
    /// linear time: no key is searched for. Any other order is accepted
    /// and costs a search per piece that comes out of order. Empty intervals
    /// are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::Overlap`] when two pieces of one key share a point, naming
    /// the key and both intervals; exactly when inserting the pieces one by
    /// one would fail.
    ///
    /// # Example
    ///
    /// ```
    /// use ip_interval::{Interval, KeyedTimelines};
    ///
    /// let iv = |s, e| Interval::new(s, e).unwrap();
    /// let held = KeyedTimelines::from_pieces([
    ///     ("a", iv(0, 10), 1),
    ///     ("a", iv(10, 20), 2),
    ///     ("b", iv(5, 15), 3),
    /// ])?;
    /// assert_eq!(held.at("a", 12), Some(&2));
    /// assert!(KeyedTimelines::from_pieces([("a", iv(0, 10), 1), ("a", iv(9, 12), 2)]).is_err());
    /// # Ok::<(), ip_interval::Error>(())
    /// ```
    pub fn from_pieces(pieces: impl IntoIterator<Item = (K, Interval<T>, V)>) -> Result<Self, Error>
    where
        K: fmt::Debug,
        T: fmt::Debug,
    {
        // Keys in ascending order with their timelines, and the pieces that
        // came out of that order, filed the slow way and merged at the end.
        let mut ascending: Vec<(K, Timeline<T, V>)> = Vec::new();
        let mut out_of_order = KeyedTimelines::new();
        for (key, interval, value) in pieces {
            if interval.is_empty() {
                continue;
            }
            match ascending.last_mut() {
                Some((last, timeline)) if *last == key => timeline
                    .insert(interval, value)
                    .map_err(|err| with_key(err, last))?,
                Some((last, _)) if *last > key => out_of_order.insert(key, interval, value)?,
                _ => {
                    let mut timeline = Timeline::empty();
                    timeline.insert(interval, value)?;
                    ascending.push((key, timeline));
                }
            }
        }
        // Sorted, distinct keys: the map is built in bulk.
        let mut timelines: BTreeMap<K, Timeline<T, V>> = ascending.into_iter().collect();
        for (key, timeline) in out_of_order.timelines {
            match timelines.entry(key) {
                Entry::Vacant(vacant) => {
                    vacant.insert(timeline);
                }
                Entry::Occupied(mut occupied) => {
                    for (interval, value) in timeline.pieces {
                        occupied
                            .get_mut()
                            .insert(interval, value)
                            .map_err(|err| with_key(err, occupied.key()))?;
                    }
                }
            }
        }
        Ok(KeyedTimelines { timelines })
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
            let mut timeline = Timeline::empty();
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
                let mut timeline = Timeline::empty();
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
        let mut timeline = Timeline::empty();
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
        assert_eq!(t.at(29), Some(&'c'));
        assert_eq!(t.at(30), None);
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
        let sizes: Vec<_> = keyed.iter().map(|(&k, t)| (k, t.iter().len())).collect();
        assert_eq!(sizes, [("ip-1", 2), ("ip-2", 1)]);
        assert_eq!(keyed.at("ip-2", 3), Some(&'b'));
        assert_eq!(keyed.at("ip-3", 5), None);

        let pieces: Vec<_> = keyed.pieces(iv(5, 12)).collect();
        assert_eq!(
            pieces,
            [
                (&"ip-1", iv(5, 10), &'a'),
                (&"ip-1", iv(10, 12), &'c'),
                (&"ip-2", iv(5, 10), &'b')
            ]
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip_and_validation() {
        let interval: Interval<i64> = serde_json::from_str(r#"{"start":1,"end":5}"#).unwrap();
        assert_eq!(interval, iv(1, 5));
        let err = serde_json::from_str::<Interval<i64>>(r#"{"start":5,"end":1}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("interval start 5 is after its end 1"),
            "{err}"
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
