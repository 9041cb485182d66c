//! The laws of the interval algebra, checked on random inputs.
//!
//! Timelines are checked against a plain model: the list of the pieces
//! accepted so far, which a piece may join only if it overlaps none of them.
//! Points are drawn from a small universe so that pieces meet often.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ip_interval::{Error, GridPoint, Interval, KeyedTimelines, Timeline};
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

fn point() -> impl Strategy<Value = i64> {
    -2..UNIVERSE + 2
}

/// Whether the two intervals share a point.
fn overlap(a: Interval<i64>, b: Interval<i64>) -> bool {
    a.start().max(b.start()) < a.end().min(b.end())
}

/// `interval` clipped to `window`, or `None` when they share no point.
fn clip(interval: Interval<i64>, window: Interval<i64>) -> Option<Interval<i64>> {
    overlap(interval, window).then(|| {
        Interval::new(
            interval.start().max(window.start()),
            interval.end().min(window.end()),
        )
        .unwrap()
    })
}

/// Whether the timeline keeps its invariant: non-empty, sorted,
/// non-overlapping pieces.
fn is_valid_timeline<V>(timeline: &Timeline<i64, V>) -> bool {
    let pieces: Vec<_> = timeline.iter().map(|(interval, _)| interval).collect();
    pieces.iter().all(|interval| !interval.is_empty())
        && pieces.windows(2).all(|w| w[0].end() <= w[1].start())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn intervals_are_half_open(i in interval(), p in point()) {
        prop_assert_eq!(i.contains(p), i.start() <= p && p < i.end());
        prop_assert_eq!(i.is_empty(), (0..UNIVERSE + 2).all(|p| !i.contains(p)));
        prop_assert!(!i.contains(i.end()));
        prop_assert_eq!(Interval::new(i.end(), i.start()).is_ok(), i.is_empty());
    }

    #[test]
    fn timelines_never_hold_overlapping_intervals(
        inserts in vec((0..4_u8, short_interval(), any::<u8>()), 0..40),
    ) {
        let mut keyed = KeyedTimelines::new();
        let mut model: Vec<(u8, Interval<i64>, u8)> = Vec::new();
        for (key, interval, value) in inserts {
            let before = keyed.clone();
            let clash = model
                .iter()
                .find(|&&(k, held, _)| k == key && overlap(held, interval))
                .copied();
            match keyed.insert(key, interval, value) {
                Ok(()) => {
                    prop_assert!(clash.is_none(), "accepted {:?} over {:?}", interval, clash);
                    if !interval.is_empty() {
                        model.push((key, interval, value));
                    }
                }
                Err(Error::Overlap { key: named, new, existing }) => {
                    prop_assert!(clash.is_some());
                    prop_assert_eq!(named, Some(format!("{key:?}")));
                    prop_assert_eq!(new, format!("{interval:?}"));
                    let names_a_clash = model.iter().any(|&(k, held, _)| {
                        k == key && overlap(held, interval) && format!("{held:?}") == existing
                    });
                    prop_assert!(names_a_clash);
                    prop_assert_eq!(&keyed, &before);
                }
                Err(other) => prop_assert!(false, "unexpected error {}", other),
            }
        }
        model.sort_by_key(|&(key, interval, _)| (key, interval));
        let mut held = Vec::new();
        for (&key, timeline) in keyed.iter() {
            prop_assert!(is_valid_timeline(timeline), "invalid timeline {:?}", timeline);
            held.extend(timeline.iter().map(|(interval, &value)| (key, interval, value)));
        }
        prop_assert_eq!(held, model);
    }

    /// Building from pieces, in any order, files what inserting them one by
    /// one files, and fails exactly when that fails.
    #[test]
    fn from_pieces_equals_inserting_one_by_one(
        pieces in vec((0..6_u8, short_interval(), any::<u8>()), 0..40),
        sort in any::<bool>(),
    ) {
        let mut pieces = pieces;
        if sort {
            pieces.sort_by_key(|&(key, interval, _)| (key, interval.start()));
        }
        let mut one_by_one = KeyedTimelines::new();
        let inserted = pieces
            .iter()
            .try_for_each(|&(key, interval, value)| one_by_one.insert(key, interval, value));
        match KeyedTimelines::from_pieces(pieces.iter().copied()) {
            Ok(built) => {
                prop_assert!(inserted.is_ok());
                prop_assert_eq!(built, one_by_one);
            }
            Err(err) => {
                prop_assert!(inserted.is_err());
                let is_overlap = matches!(err, Error::Overlap { key: Some(_), .. });
                prop_assert!(is_overlap, "{err:?}");
            }
        }
    }

    #[test]
    fn pieces_and_holders_equal_a_naive_filter_and_clip(
        inserts in vec((0..4_u8, short_interval(), any::<u8>()), 0..40),
        window in interval(),
        p in point(),
    ) {
        let mut keyed = KeyedTimelines::new();
        for &(key, interval, value) in &inserts {
            let _ = keyed.insert(key, interval, value);
        }
        let mut all = Vec::new();
        for (&key, timeline) in keyed.iter() {
            let pieces: Vec<_> = timeline.iter().map(|(interval, &value)| (interval, value)).collect();
            // One timeline: its pieces in the window, and the holder of `p`.
            let clipped: Vec<_> = pieces
                .iter()
                .filter_map(|&(interval, value)| Some((clip(interval, window)?, value)))
                .collect();
            let got: Vec<_> = timeline.pieces(window).map(|(interval, &value)| (interval, value)).collect();
            prop_assert_eq!(got, clipped);
            let holder = pieces.iter().find(|(interval, _)| interval.contains(p)).map(|&(_, value)| value);
            prop_assert_eq!(timeline.at(p).copied(), holder);
            prop_assert_eq!(keyed.at(&key, p).copied(), holder);
            all.extend(pieces.into_iter().map(|(interval, value)| (key, interval, value)));
        }
        // Every key: in key order, then time order.
        let expected: Vec<_> = all
            .iter()
            .filter_map(|&(key, interval, value)| Some((key, clip(interval, window)?, value)))
            .collect();
        let pieces: Vec<_> = keyed.pieces(window).map(|(&k, interval, &v)| (k, interval, v)).collect();
        prop_assert_eq!(pieces, expected);
        prop_assert_eq!(keyed.at(&9, p), None);
    }

    #[test]
    fn floor_and_ceil_laws_for_i128(x in any::<i64>(), step in 1..=1_000_000_i64, big in any::<i128>()) {
        let (x, step) = (i128::from(x), i128::from(step));
        let floor = x - x.rem_euclid(step);
        let ceil = if floor == x { floor } else { floor + step };
        prop_assert_eq!(x.floor_to(step), Some(floor));
        prop_assert_eq!(x.ceil_to(step), Some(ceil));
        prop_assert!(floor <= x && x - floor < step);
        prop_assert!(ceil >= x && ceil - x < step);
        prop_assert_eq!(floor.floor_to(step), Some(floor));
        prop_assert_eq!(ceil.ceil_to(step), Some(ceil));
        prop_assert!(floor.is_on_grid(step) && ceil.is_on_grid(step));
        prop_assert_eq!(x.is_on_grid(step), x.rem_euclid(step) == 0);
        // At the ends of the range, `None` exactly when the grid point is not
        // representable.
        let rem = big.rem_euclid(step);
        prop_assert_eq!(big.floor_to(step), big.checked_sub(rem));
        let up = if rem == 0 { Some(big) } else { big.checked_sub(rem).and_then(|f| f.checked_add(step)) };
        prop_assert_eq!(big.ceil_to(step), up);
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
