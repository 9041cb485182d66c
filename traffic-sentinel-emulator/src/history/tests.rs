//! Tests of the flow history against the flows it was built from.

use super::*;
use time::Duration;
use time::macros::datetime;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn flow(time: OffsetDateTime, src: &str, dst: &str, sz: &str, dz: &str, bytes: u64) -> Flow {
    Flow {
        time,
        ipsource: ip(src),
        ipdestination: ip(dst),
        sourcezone: sz.into(),
        destinationzone: dz.into(),
        bytes,
    }
}

const A: &str = "203.0.113.7";
const B: &str = "198.51.100.1";

#[test]
fn granularity_is_the_grid_given() {
    assert_eq!(
        FlowHistory::new(Grid::HOURLY, []).unwrap().granularity(),
        Grid::HOURLY
    );
}

#[test]
fn buckets_are_aligned_to_the_epoch_in_utc() {
    // 10:07 at +05:30 is 04:37 UTC; with 1-hour buckets it belongs to 04:00 UTC,
    // not to a bucket aligned on the local hour.
    let h = FlowHistory::new(
        Grid::HOURLY,
        [flow(datetime!(2026-11-01 10:07 +05:30), A, B, "", "", 5)],
    )
    .unwrap();
    let any = ZoneFilter::any();
    assert_eq!(
        h.bytes(
            ip(A),
            Side::Sent,
            &any,
            datetime!(2026-11-01 04:00 UTC),
            datetime!(2026-11-01 05:00 UTC)
        ),
        5
    );
    assert_eq!(
        h.bytes(
            ip(A),
            Side::Sent,
            &any,
            datetime!(2026-11-01 04:30 UTC),
            datetime!(2026-11-01 05:30 UTC)
        ),
        0
    );
    assert_eq!(
        h.bucket_start(datetime!(2026-11-01 10:07 +05:30)),
        datetime!(2026-11-01 04:00 UTC)
    );
    // Before the epoch, flooring goes down.
    assert_eq!(
        h.bucket_start(datetime!(1969-12-31 23:59:59 UTC)),
        datetime!(1969-12-31 23:00 UTC)
    );
}

#[test]
fn interval_covers_bucket_starts_in_start_inclusive_end_exclusive() {
    let h = FlowHistory::new(
        Grid::MINUTELY,
        [
            flow(datetime!(2026-11-01 10:00:00 UTC), A, B, "", "", 1),
            flow(datetime!(2026-11-01 10:00:59 UTC), A, B, "", "", 2), // mid-bucket: 10:00
            flow(datetime!(2026-11-01 10:30:30 UTC), A, B, "", "", 4),
            flow(datetime!(2026-11-01 11:00:00 UTC), A, B, "", "", 8), // END bucket
            flow(datetime!(2026-11-01 09:59:59 UTC), A, B, "", "", 16), // before START
        ],
    )
    .unwrap();
    let q = |s, e| h.bytes(ip(A), Side::Sent, &ZoneFilter::any(), s, e);
    assert_eq!(
        q(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC)
        ),
        7
    );
    assert_eq!(
        q(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00:01 UTC)
        ),
        15
    );
    // A START inside a bucket excludes that bucket (its start is before START).
    assert_eq!(
        q(
            datetime!(2026-11-01 10:00:01 UTC),
            datetime!(2026-11-01 11:00 UTC)
        ),
        4
    );
    // An END just after a bucket start includes that bucket.
    assert_eq!(
        q(
            datetime!(2026-11-01 09:00 UTC),
            datetime!(2026-11-01 10:00:00.5 UTC)
        ),
        19
    );
    assert_eq!(
        q(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 10:00 UTC)
        ),
        0
    );
    assert_eq!(
        q(
            datetime!(2026-11-01 12:00 UTC),
            datetime!(2026-11-01 10:00 UTC)
        ),
        0
    );
    assert_eq!(
        q(
            datetime!(2000-01-01 0:00 UTC),
            datetime!(2100-01-01 0:00 UTC)
        ),
        31
    );
    assert_eq!(h.total_bytes(), 31);
    assert_eq!(h.flow_count(), 5);
}

#[test]
fn sides_and_zone_filters() {
    let t = datetime!(2026-11-01 10:00 UTC);
    let h = FlowHistory::new(
        Grid::MINUTELY,
        [
            flow(t, A, B, "INTERNAL", "EXTERNAL", 1),
            flow(t, A, B, "INTERNAL", "PEERING", 10),
            flow(t, A, B, "INTERNAL", "", 100),
            flow(t, B, A, "EXTERNAL", "INTERNAL", 1000),
            flow(t, B, A, "PEERING", "INTERNAL", 10000),
        ],
    )
    .unwrap();
    let (s, e) = (t, t + Duration::minutes(1));
    let sent = |f: &ZoneFilter| h.bytes(ip(A), Side::Sent, f, s, e);
    let rcvd = |f: &ZoneFilter| h.bytes(ip(A), Side::Received, f, s, e);
    assert_eq!(sent(&ZoneFilter::any()), 111);
    assert_eq!(sent(&ZoneFilter::any().include("EXTERNAL")), 1);
    assert_eq!(
        sent(&ZoneFilter::any().include("EXTERNAL").include("PEERING")),
        11
    );
    assert_eq!(sent(&ZoneFilter::any().exclude("PEERING")), 101);
    assert_eq!(
        sent(
            &ZoneFilter::any()
                .include("EXTERNAL")
                .include("PEERING")
                .exclude("PEERING")
        ),
        1
    );
    assert_eq!(sent(&ZoneFilter::any().include("NOWHERE")), 0);
    assert_eq!(rcvd(&ZoneFilter::any()), 11000);
    assert_eq!(rcvd(&ZoneFilter::any().include("EXTERNAL")), 1000);
    assert_eq!(h.bytes(ip(B), Side::Sent, &ZoneFilter::any(), s, e), 11000);
    assert_eq!(
        h.bytes(ip(B), Side::Received, &ZoneFilter::any(), s, e),
        111
    );
    assert_eq!(h.ips(), &[ip(B), ip(A)]);
    assert!(ZoneFilter::any().include("A").exclude("A").included() == ["A"]);
    assert!(!ZoneFilter::any().include("A").exclude("A").matches("A"));
}

#[test]
fn top_n_sorts_dedupes_cuts_and_omits_zero_rows() {
    let t = datetime!(2026-11-01 10:00 UTC);
    let ips = [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
        "2001:db8::1",
        "10.0.0.9",
    ];
    let h = FlowHistory::new(
        Grid::MINUTELY,
        [
            flow(t, ips[0], B, "", "X", 5),
            flow(t, ips[1], B, "", "X", 7),
            flow(t, ips[2], B, "", "X", 5),
            flow(t, ips[3], B, "", "X", 9),
        ],
    )
    .unwrap();
    let list: Vec<IpAddr> = ips.iter().chain(ips.iter()).map(|s| ip(s)).collect();
    let rows = h.top_n(
        &list,
        Side::Sent,
        &ZoneFilter::any(),
        t,
        t + Duration::hours(1),
        10,
    );
    assert_eq!(
        rows,
        vec![
            (ip(ips[3]), 9),
            (ip(ips[1]), 7),
            (ip(ips[0]), 5),
            (ip(ips[2]), 5)
        ]
    );
    let rows = h.top_n(
        &list,
        Side::Sent,
        &ZoneFilter::any(),
        t,
        t + Duration::hours(1),
        2,
    );
    assert_eq!(rows, vec![(ip(ips[3]), 9), (ip(ips[1]), 7)]);
}

#[test]
fn byte_overflow_is_an_error() {
    let t = datetime!(2026-11-01 10:00 UTC);
    let err = FlowHistory::new(
        Grid::MINUTELY,
        [flow(t, A, B, "", "", u64::MAX), flow(t, A, B, "", "", 1)],
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::ByteOverflow { index: 1, bytes: 1 }),
        "{err}"
    );
}

#[test]
fn many_buckets_per_address_sum_by_prefix() {
    let start = datetime!(2026-11-01 00:00 UTC);
    let flows = (0..1440).map(|m| flow(start + Duration::minutes(m), A, B, "", "E", m as u64));
    let h = FlowHistory::new(Grid::MINUTELY, flows).unwrap();
    let f = ZoneFilter::any();
    let q = |a: i64, b: i64| {
        h.bytes(
            ip(A),
            Side::Sent,
            &f,
            start + Duration::minutes(a),
            start + Duration::minutes(b),
        )
    };
    assert_eq!(q(0, 1440), (0..1440).sum::<u64>());
    assert_eq!(q(100, 200), (100..200).sum::<u64>());
    assert_eq!(q(1439, 2000), 1439);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const ZONES: [&str; 3] = ["", "EXTERNAL", "PEERING"];

    /// A few addresses of both families, so flows share them.
    fn address(k: u8) -> IpAddr {
        if k % 4 == 3 {
            IpAddr::V6(std::net::Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                0,
                u16::from(k),
            ))
        } else {
            IpAddr::V4(std::net::Ipv4Addr::new(10, 0, k / 8, k % 8))
        }
    }

    fn flows() -> impl Strategy<Value = Vec<Flow>> {
        proptest::collection::vec(
            (
                0u8..12,
                0u8..12,
                0usize..3,
                0usize..3,
                -30i64..200,
                0u64..1000,
            ),
            0..60,
        )
        .prop_map(|raw| {
            let base = datetime!(2026-11-01 10:00 UTC);
            raw.into_iter()
                .map(|(src, dst, sz, dz, minute, bytes)| Flow {
                    time: base + Duration::seconds(minute * 37),
                    ipsource: address(src),
                    ipdestination: address(dst),
                    sourcezone: ZONES[sz].to_owned(),
                    destinationzone: ZONES[dz].to_owned(),
                    bytes,
                })
                .collect()
        })
    }

    fn zone_filter() -> impl Strategy<Value = ZoneFilter> {
        (
            proptest::collection::vec(0usize..4, 0..3),
            proptest::collection::vec(0usize..4, 0..2),
        )
            .prop_map(|(include, exclude)| {
                let name = |z: usize| ZONES.get(z).copied().unwrap_or("NOWHERE");
                let filter = include
                    .into_iter()
                    .fold(ZoneFilter::any(), |f, z| f.include(name(z)));
                exclude.into_iter().fold(filter, |f, z| f.exclude(name(z)))
            })
    }

    /// The bytes of `ip` straight from the flows, as DESIGN defines them.
    fn naive_bytes(
        flows: &[Flow],
        g: i64,
        ip: IpAddr,
        side: Side,
        zones: &ZoneFilter,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> u64 {
        flows
            .iter()
            .filter(|f| {
                let (who, zone) = match side {
                    Side::Sent => (f.ipsource, &f.destinationzone),
                    Side::Received => (f.ipdestination, &f.sourcezone),
                };
                let bucket = f.time.unix_timestamp().div_euclid(g) * g;
                let bucket = OffsetDateTime::from_unix_timestamp(bucket).unwrap();
                who == ip && zones.matches(zone) && start <= bucket && bucket < end
            })
            .map(|f| f.bytes)
            .sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn bytes_and_top_n_agree_with_the_flows(
            flows in flows(),
            granularity in prop::sample::select(vec![1i64, 60, 300, 3600]),
            wanted in proptest::collection::vec(0u8..14, 0..20),
            side in prop::sample::select(vec![Side::Sent, Side::Received]),
            zones in zone_filter(),
            from in -40i64..8000,
            length in -100i64..9000,
            nanos in prop::sample::select(vec![0i64, 1, 500_000_000]),
            n in 0usize..25,
        ) {
            let history = FlowHistory::new(Grid::from_seconds(granularity as u64).unwrap(), flows.clone()).unwrap();
            let base = datetime!(2026-11-01 10:00 UTC);
            let start = base + Duration::seconds(from) + Duration::nanoseconds(nanos);
            let end = start + Duration::seconds(length);
            let wanted: Vec<IpAddr> = wanted.into_iter().map(address).collect();
            let mut expected: Vec<(IpAddr, u64)> = Vec::new();
            for &ip in &wanted {
                let bytes = naive_bytes(&flows, granularity, ip, side, &zones, start, end);
                prop_assert_eq!(history.bytes(ip, side, &zones, start, end), bytes);
                if bytes > 0 && !expected.iter().any(|&(seen, _)| seen == ip) {
                    expected.push((ip, bytes));
                }
            }
            expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            expected.truncate(n);
            prop_assert_eq!(history.top_n(&wanted, side, &zones, start, end, n), expected);
        }

        /// A history extended by more flows, and a snapshot of two
        /// histories, answer as one history of all the flows.
        #[test]
        fn extended_and_snapshot_answer_as_one_history(
            flows in flows(),
            split in 0usize..60,
            granularity in prop::sample::select(vec![1i64, 60, 3600]),
            wanted in proptest::collection::vec(0u8..14, 0..20),
            side in prop::sample::select(vec![Side::Sent, Side::Received]),
            zones in zone_filter(),
            from in -40i64..8000,
            length in 0i64..9000,
            n in 0usize..25,
        ) {
            let grid = Grid::from_seconds(granularity as u64).unwrap();
            let (first, second) = flows.split_at(split.min(flows.len()));
            let whole = FlowHistory::new(grid, flows.clone()).unwrap();
            let head = FlowHistory::new(grid, first.to_vec()).unwrap();
            let extended = head.extended(second.to_vec()).unwrap();
            let snapshot = crate::HistorySnapshot::of_parts(vec![
                std::sync::Arc::new(head),
                std::sync::Arc::new(FlowHistory::new(grid, second.to_vec()).unwrap()),
            ]);
            prop_assert_eq!(extended.total_bytes(), whole.total_bytes());
            prop_assert_eq!(snapshot.total_bytes(), whole.total_bytes());
            prop_assert_eq!(extended.flow_count(), whole.flow_count());
            prop_assert_eq!(extended.ips(), whole.ips());
            let start = datetime!(2026-11-01 10:00 UTC) + Duration::seconds(from);
            let end = start + Duration::seconds(length);
            let wanted: Vec<IpAddr> = wanted.into_iter().map(address).collect();
            for &ip in &wanted {
                let bytes = whole.bytes(ip, side, &zones, start, end);
                prop_assert_eq!(extended.bytes(ip, side, &zones, start, end), bytes);
                prop_assert_eq!(snapshot.bytes(ip, side, &zones, start, end), bytes);
            }
            let top = whole.top_n(&wanted, side, &zones, start, end, n);
            prop_assert_eq!(&extended.top_n(&wanted, side, &zones, start, end, n), &top);
            prop_assert_eq!(&snapshot.top_n(&wanted, side, &zones, start, end, n), &top);
        }

        #[test]
        fn count_before_is_partition_point(
            starts in proptest::collection::btree_set(-1000i64..100_000, 0..80),
            t in -2000i64..101_000,
        ) {
            let points: Vec<Point> = starts
                .into_iter()
                .map(|bucket_start| Point { bucket_start, cumulative: 0 })
                .collect();
            let count = |t: i64| match (points.first(), points.last()) {
                (Some(first), Some(last)) => {
                    count_before(&points, first.bucket_start, last.bucket_start, t)
                }
                _ => count_before(&points, 0, 0, t),
            };
            prop_assert_eq!(count(t), points.partition_point(|p| p.bucket_start < t));
            for p in &points {
                for t in [p.bucket_start - 1, p.bucket_start, p.bucket_start + 1] {
                    prop_assert_eq!(count(t), points.partition_point(|p| p.bucket_start < t));
                }
            }
        }

        #[test]
        fn gallop_is_partition_point(
            sorted in proptest::collection::btree_set(0u8..=255, 0..100),
            target in 0u8..=255,
        ) {
            let sorted: Vec<IpAddr> = sorted
                .into_iter()
                .map(|k| IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, k)))
                .collect();
            let target = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, target));
            prop_assert_eq!(
                gallop(&sorted, &target),
                sorted.partition_point(|ip| *ip < target)
            );
        }
    }

    #[test]
    fn count_before_handles_extreme_spans() {
        let points = [
            Point {
                bucket_start: i64::MIN,
                cumulative: 1,
            },
            Point {
                bucket_start: 0,
                cumulative: 2,
            },
            Point {
                bucket_start: i64::MAX,
                cumulative: 3,
            },
        ];
        for t in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
            assert_eq!(
                count_before(&points, i64::MIN, i64::MAX, t),
                points.partition_point(|p| p.bucket_start < t)
            );
        }
    }
}
