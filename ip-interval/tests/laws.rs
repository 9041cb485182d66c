//! The laws of the interval algebra, checked on random inputs.
//!
//! Sets live in the small universe of points `0..64`, so each set has an exact
//! model: the bitset (`u64`) of its points. Canonical form is unique, so a set
//! that is canonical and holds the model's points is the right set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ip_interval::{Error, GridPoint, Interval, IntervalSet, KeyedTimelines, Timeline};
use proptest::collection::vec;
use proptest::prelude::*;

/// Points are drawn from `0..UNIVERSE`; intervals end at most at `UNIVERSE`.
const UNIVERSE: i64 = 64;

fn interval() -> impl Strategy<Value = Interval<i64>> {
    // Ends up to UNIVERSE inclusive, so intervals can reach the last point.
    (0..=UNIVERSE, 0..=UNIVERSE).prop_map(|(a, b)| Interval::new(a.min(b), a.max(b)).unwrap())
}

/// Short intervals, so timelines accept a fair share of inserts.
fn short_interval() -> impl Strategy<Value = Interval<i64>> {
    (0..UNIVERSE, 0..8_i64)
        .prop_map(|(start, len)| Interval::new(start, (start + len).min(UNIVERSE)).unwrap())
}

fn set() -> impl Strategy<Value = IntervalSet<i64>> {
    vec(interval(), 0..8).prop_map(|intervals| intervals.into_iter().collect())
}

fn point() -> impl Strategy<Value = i64> {
    -2..UNIVERSE + 2
}

/// The bitset of the points of `interval`.
fn interval_bits(interval: &Interval<i64>) -> u64 {
    (interval.start()..interval.end()).fold(0, |bits, p| bits | (1 << p))
}

/// The bitset of the points of `set`.
fn bits(set: &IntervalSet<i64>) -> u64 {
    set.iter()
        .fold(0, |acc, interval| acc | interval_bits(interval))
}

/// Whether the set keeps its invariant: non-empty, sorted, disjoint and
/// non-adjacent intervals.
fn is_canonical<T: Ord + Copy>(set: &IntervalSet<T>) -> bool {
    set.iter().all(|interval| !interval.is_empty())
        && set
            .intervals()
            .windows(2)
            .all(|w| w[0].end() < w[1].start())
}

/// Whether the timeline keeps its invariant: non-empty, sorted,
/// non-overlapping pieces.
fn is_valid_timeline<V>(timeline: &Timeline<i64, V>) -> bool {
    let pieces: Vec<_> = timeline.iter().map(|(interval, _)| interval).collect();
    pieces.iter().all(|interval| !interval.is_empty())
        && pieces.windows(2).all(|w| w[0].end() <= w[1].start())
}

/// An operation on an interval set.
#[derive(Clone, Debug)]
enum SetOp {
    Insert(Interval<i64>),
    Remove(Interval<i64>),
    Union(IntervalSet<i64>),
    Intersection(IntervalSet<i64>),
    Difference(IntervalSet<i64>),
    Complement(Interval<i64>),
    Extend(Vec<Interval<i64>>),
}

fn set_op() -> impl Strategy<Value = SetOp> {
    prop_oneof![
        interval().prop_map(SetOp::Insert),
        interval().prop_map(SetOp::Remove),
        set().prop_map(SetOp::Union),
        set().prop_map(SetOp::Intersection),
        set().prop_map(SetOp::Difference),
        interval().prop_map(SetOp::Complement),
        vec(interval(), 0..4).prop_map(SetOp::Extend),
    ]
}

/// An operation on a timeline.
#[derive(Clone, Debug)]
enum TimelineOp {
    Insert(Interval<i64>, u8),
    SetEndOfLast(i64),
}

fn timeline_op() -> impl Strategy<Value = TimelineOp> {
    prop_oneof![
        6 => (short_interval(), any::<u8>()).prop_map(|(i, v)| TimelineOp::Insert(i, v)),
        1 => (0..=UNIVERSE).prop_map(TimelineOp::SetEndOfLast),
    ]
}

/// The naive answer to `pieces(window)`: filter every piece, clip it.
fn naive_pieces<V: Copy>(
    pieces: &[(Interval<i64>, V)],
    window: Interval<i64>,
) -> Vec<(Interval<i64>, V)> {
    let mut clipped: Vec<_> = pieces
        .iter()
        .filter_map(|&(interval, value)| Some((interval.intersection(&window)?, value)))
        .collect();
    clipped.sort_by_key(|&(interval, _)| interval);
    clipped
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn union_is_commutative(a in set(), b in set()) {
        prop_assert_eq!(a.union(&b), b.union(&a));
    }

    #[test]
    fn union_is_associative(a in set(), b in set(), c in set()) {
        prop_assert_eq!(a.union(&b).union(&c), a.union(&b.union(&c)));
    }

    #[test]
    fn intersection_is_commutative(a in set(), b in set()) {
        prop_assert_eq!(a.intersection(&b), b.intersection(&a));
    }

    #[test]
    fn intersection_is_associative(a in set(), b in set(), c in set()) {
        prop_assert_eq!(a.intersection(&b).intersection(&c), a.intersection(&b.intersection(&c)));
    }

    #[test]
    fn difference_is_disjoint_from_what_was_removed(a in set(), b in set()) {
        let rest = a.difference(&b);
        prop_assert!(rest.intersection(&b).is_empty());
        prop_assert!(rest.iter().all(|interval| b.iter().all(|r| !interval.overlaps(r))));
    }

    #[test]
    fn difference_and_intersection_rebuild_the_set(a in set(), b in set()) {
        prop_assert_eq!(a.difference(&b).union(&a.intersection(&b)), a);
    }

    #[test]
    fn complement_twice_is_identity_within_bounds(a in set(), bounds in interval()) {
        let inside = a.intersection(&IntervalSet::from(bounds));
        prop_assert_eq!(inside.complement(bounds).complement(bounds), inside.clone());
        prop_assert_eq!(a.complement(bounds).complement(bounds), inside);
    }

    #[test]
    fn every_operation_keeps_canonical_form_and_agrees_with_the_model(
        start in vec(interval(), 0..8),
        ops in vec(set_op(), 1..12),
    ) {
        let mut model = start.iter().fold(0, |acc, i| acc | interval_bits(i));
        let mut set: IntervalSet<i64> = start.into_iter().collect();
        prop_assert!(is_canonical(&set));
        prop_assert_eq!(bits(&set), model);
        for op in ops {
            match &op {
                SetOp::Insert(i) => {
                    set.insert(*i);
                    model |= interval_bits(i);
                }
                SetOp::Remove(i) => {
                    set.remove(*i);
                    model &= !interval_bits(i);
                }
                SetOp::Union(other) => {
                    set = set.union(other);
                    model |= bits(other);
                }
                SetOp::Intersection(other) => {
                    set = set.intersection(other);
                    model &= bits(other);
                }
                SetOp::Difference(other) => {
                    set = set.difference(other);
                    model &= !bits(other);
                }
                SetOp::Complement(bounds) => {
                    set = set.complement(*bounds);
                    model = interval_bits(bounds) & !model;
                }
                SetOp::Extend(intervals) => {
                    set.extend(intervals.iter().copied());
                    model |= intervals.iter().fold(0, |acc, i| acc | interval_bits(i));
                }
            }
            prop_assert!(is_canonical(&set), "not canonical after {:?}: {:?}", op, set);
            prop_assert_eq!(bits(&set), model, "wrong points after {:?}", op);
            prop_assert_eq!(set.is_empty(), model == 0);
        }
    }

    #[test]
    fn queries_agree_with_the_model(a in set(), i in interval(), p in point()) {
        let model = bits(&a);
        let in_model = |p: i64| (0..UNIVERSE).contains(&p) && model & (1 << p) != 0;
        prop_assert_eq!(a.contains(p), in_model(p));
        prop_assert_eq!(a.covers(&i), (i.start()..i.end()).all(in_model));
        prop_assert_eq!(a.total(|i| i.end() - i.start()), i64::from(model.count_ones()));
        prop_assert_eq!(a.total(|_| 1_usize), a.len());
        let span_model = (model != 0).then(|| {
            let first = i64::from(model.trailing_zeros());
            let last = 63 - i64::from(model.leading_zeros());
            Interval::new(first, last + 1).unwrap()
        });
        prop_assert_eq!(a.span(), span_model);
    }

    #[test]
    fn timelines_never_hold_overlapping_intervals(ops in vec(timeline_op(), 1..40)) {
        let mut timeline = Timeline::new();
        let mut model: Vec<(Interval<i64>, u8)> = Vec::new();
        for op in ops {
            let before = timeline.clone();
            match op {
                TimelineOp::Insert(interval, value) => {
                    let clash = model.iter().find(|(held, _)| held.overlaps(&interval)).copied();
                    match timeline.insert(interval, value) {
                        Ok(()) => {
                            prop_assert!(clash.is_none(), "accepted {:?} over {:?}", interval, clash);
                            if !interval.is_empty() {
                                model.push((interval, value));
                            }
                        }
                        Err(Error::Overlap { key, new, existing }) => {
                            prop_assert!(clash.is_some());
                            prop_assert_eq!(key, None);
                            prop_assert_eq!(new, format!("{interval:?}"));
                            let names_a_clash = model.iter().any(|(held, _)| {
                                held.overlaps(&interval) && format!("{held:?}") == existing
                            });
                            prop_assert!(names_a_clash);
                            prop_assert_eq!(&timeline, &before);
                        }
                        Err(other) => prop_assert!(false, "unexpected error {}", other),
                    }
                }
                TimelineOp::SetEndOfLast(end) => {
                    model.sort_by_key(|&(interval, _)| interval);
                    let result = timeline.set_end_of_last(end);
                    match model.last().copied() {
                        None => prop_assert_eq!(result, Err(Error::EmptyTimeline)),
                        Some((last, _)) if end < last.start() => {
                            let refused = matches!(result, Err(Error::StartAfterEnd { .. }));
                            prop_assert!(refused);
                            prop_assert_eq!(&timeline, &before);
                        }
                        Some((last, value)) if end == last.start() => {
                            prop_assert_eq!(result, Ok(Some(value)));
                            model.pop();
                        }
                        Some((last, value)) => {
                            prop_assert_eq!(result, Ok(None));
                            let len = model.len();
                            model[len - 1] = (Interval::new(last.start(), end).unwrap(), value);
                        }
                    }
                }
            }
            prop_assert!(is_valid_timeline(&timeline), "invalid timeline {:?}", timeline);
            model.sort_by_key(|&(interval, _)| interval);
            let held: Vec<_> = timeline.iter().map(|(interval, &value)| (interval, value)).collect();
            prop_assert_eq!(&held, &model);
        }
    }

    #[test]
    fn pieces_equal_a_naive_filter_and_clip(
        inserts in vec((short_interval(), any::<u8>()), 0..30),
        window in interval(),
        p in point(),
    ) {
        let mut timeline = Timeline::new();
        for (interval, value) in inserts {
            let _ = timeline.insert(interval, value);
        }
        let all: Vec<_> = timeline.iter().map(|(interval, &value)| (interval, value)).collect();
        let pieces: Vec<_> = timeline.pieces(window).map(|(interval, &value)| (interval, value)).collect();
        prop_assert_eq!(pieces, naive_pieces(&all, window));
        let holder = all.iter().find(|(interval, _)| interval.contains(p)).map(|&(_, value)| value);
        prop_assert_eq!(timeline.at(p).copied(), holder);
        prop_assert!(is_canonical(&timeline.coverage()));
        let covered = all.iter().fold(0, |acc, (interval, _)| acc | interval_bits(interval));
        prop_assert_eq!(bits(&timeline.coverage()), covered);
    }

    #[test]
    fn keyed_timelines_keep_each_key_apart(
        inserts in vec((0..4_u8, short_interval(), any::<u8>()), 0..40),
        window in interval(),
    ) {
        let mut keyed = KeyedTimelines::new();
        let mut model: Vec<(u8, Interval<i64>, u8)> = Vec::new();
        for (key, interval, value) in inserts {
            let before = keyed.clone();
            let clash = model.iter().any(|&(k, held, _)| k == key && held.overlaps(&interval));
            match keyed.insert(key, interval, value) {
                Ok(()) => {
                    prop_assert!(!clash);
                    if !interval.is_empty() {
                        model.push((key, interval, value));
                    }
                }
                Err(Error::Overlap { key: named, .. }) => {
                    prop_assert!(clash);
                    prop_assert_eq!(named, Some(format!("{key:?}")));
                    prop_assert_eq!(&keyed, &before);
                }
                Err(other) => prop_assert!(false, "unexpected error {}", other),
            }
        }
        for (_, timeline) in &keyed {
            prop_assert!(is_valid_timeline(timeline));
        }
        let mut expected: Vec<_> = model
            .iter()
            .filter_map(|&(key, interval, value)| Some((key, interval.intersection(&window)?, value)))
            .collect();
        expected.sort_by_key(|&(key, interval, _)| (key, interval));
        let pieces: Vec<_> = keyed.pieces(window).map(|(&k, interval, &v)| (k, interval, v)).collect();
        prop_assert_eq!(pieces, expected);
    }

    #[test]
    fn floor_and_ceil_laws_for_i64(x in any::<i64>(), step in 1..=1_000_000_i64) {
        let (wide_x, wide_step) = (i128::from(x), i128::from(step));
        let floor = wide_x - wide_x.rem_euclid(wide_step);
        let ceil = if floor == wide_x { floor } else { floor + wide_step };
        // None exactly when the grid point is not representable.
        prop_assert_eq!(x.floor_to(step), i64::try_from(floor).ok());
        prop_assert_eq!(x.ceil_to(step), i64::try_from(ceil).ok());
        if let Some(f) = x.floor_to(step) {
            prop_assert!(f <= x);
            prop_assert!(i128::from(x) - i128::from(f) < wide_step);
            prop_assert_eq!(f.rem_euclid(step), 0);
            prop_assert_eq!(f.floor_to(step), Some(f));
            prop_assert!(f.is_on_grid(step));
        }
        if let Some(c) = x.ceil_to(step) {
            prop_assert!(c >= x);
            prop_assert!(i128::from(c) - i128::from(x) < wide_step);
            prop_assert_eq!(c.ceil_to(step), Some(c));
        }
        prop_assert_eq!(x.is_on_grid(step), x.rem_euclid(step) == 0);
    }

    #[test]
    fn floor_laws_for_small_i64_and_u32(x in -1000..1000_i64, step in 1..50_i64, y in any::<u32>(), ustep in 1..=100_000_u32) {
        let f = x.floor_to(step).unwrap();
        prop_assert!(f <= x && x - f < step && f % step == 0);
        prop_assert_eq!(f.floor_to(step), Some(f));

        let f = y.floor_to(ustep).unwrap();
        prop_assert!(f <= y && y - f < ustep && f % ustep == 0);
        prop_assert_eq!(f.floor_to(ustep), Some(f));
        match y.ceil_to(ustep) {
            Some(c) => prop_assert!(c >= y && c - y < ustep && c % ustep == 0),
            None => prop_assert!(u64::from(f) + u64::from(ustep) > u64::from(u32::MAX)),
        }
    }

    #[test]
    fn floor_to_grid_keeps_abutting_intervals_abutting(
        a in -1000..1000_i64, len1 in 0..300_i64, len2 in 0..300_i64, step in 1..100_i64,
    ) {
        let first = Interval::new(a, a + len1).unwrap().floor_to_grid(step).unwrap();
        let second = Interval::new(a + len1, a + len1 + len2).unwrap().floor_to_grid(step).unwrap();
        prop_assert_eq!(first.end(), second.start());
        prop_assert!(!first.overlaps(&second));
        prop_assert!(first.start().is_on_grid(step) && first.end().is_on_grid(step));
    }
}

#[cfg(feature = "time")]
mod times {
    use ip_interval::GridPoint;
    use proptest::prelude::*;
    use time::{Duration, OffsetDateTime, UtcOffset};

    /// Instants from about 1938 to 2001, on both sides of the epoch, at any
    /// offset a `UtcOffset` can hold.
    fn instant() -> impl Strategy<Value = OffsetDateTime> {
        (
            -1_000_000_000_000_000_000_i128..1_000_000_000_000_000_000,
            -93_599..=93_599_i32,
        )
            .prop_map(|(ns, offset)| {
                let utc = OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap();
                utc.to_offset(UtcOffset::from_whole_seconds(offset).unwrap())
            })
    }

    fn step() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::MINUTE),
            Just(Duration::HOUR),
            Just(Duration::DAY),
            (1..=86_400_i64).prop_map(Duration::seconds),
            (1..=10_000_000_000_i64).prop_map(Duration::nanoseconds),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn floor_laws_for_offset_date_time(t in instant(), step in step()) {
            let step_ns = step.whole_nanoseconds();
            let floor = t.floor_to(step).unwrap();
            prop_assert_eq!(floor.offset(), UtcOffset::UTC);
            prop_assert!(floor <= t);
            prop_assert!(t.unix_timestamp_nanos() - floor.unix_timestamp_nanos() < step_ns);
            prop_assert_eq!(floor.unix_timestamp_nanos().rem_euclid(step_ns), 0);
            prop_assert_eq!(floor.floor_to(step), Some(floor));
            // The grid does not depend on the offset the instant is written in.
            prop_assert_eq!(t.to_offset(UtcOffset::UTC).floor_to(step), Some(floor));

            let ceil = t.ceil_to(step).unwrap();
            prop_assert_eq!(ceil.offset(), UtcOffset::UTC);
            prop_assert!(ceil >= t);
            prop_assert!(ceil.unix_timestamp_nanos() - t.unix_timestamp_nanos() < step_ns);
            prop_assert_eq!(ceil.unix_timestamp_nanos().rem_euclid(step_ns), 0);
            prop_assert_eq!(ceil == floor, t.is_on_grid(step));
        }

        #[test]
        fn non_positive_steps_floor_to_nothing(t in instant(), ns in -10_000_000_000_i64..=0) {
            prop_assert_eq!(t.floor_to(Duration::nanoseconds(ns)), None);
            prop_assert_eq!(t.ceil_to(Duration::nanoseconds(ns)), None);
        }
    }
}
