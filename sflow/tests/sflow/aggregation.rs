//! Per-bucket byte sums of flow estimates.

use std::num::NonZeroU32;

use sflow::{FlowAggregator, FlowEstimate, ZoneMap};
use time::OffsetDateTime;
use time::macros::datetime;

fn flow(source: &str, destination: &str, frame_length: u32, sampling_rate: u32) -> FlowEstimate {
    FlowEstimate {
        source: source.parse().expect("ip"),
        destination: destination.parse().expect("ip"),
        frame_length,
        sampling_rate,
    }
}

fn aggregator(seconds: u32) -> FlowAggregator {
    let zones = ZoneMap::parse("10.0.0.0/8,GUEST\n2001:db8::/32,V6").expect("zones");
    FlowAggregator::new(NonZeroU32::new(seconds).expect("non-zero"), zones)
}

#[test]
fn rows_are_summed_per_bucket_and_pair_in_a_stable_order() {
    let mut aggregator = aggregator(60);
    let at = |s: &str| -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).expect("a time")
    };
    let events = [
        (
            "2024-05-01T10:00:59Z",
            flow("2001:db8::1", "10.0.0.1", 100, 2),
        ),
        (
            "2024-05-01T10:00:00Z",
            flow("10.0.0.2", "192.0.2.1", 1000, 10),
        ),
        (
            "2024-05-01T10:00:30Z",
            flow("10.0.0.2", "192.0.2.1", 500, 10),
        ),
        ("2024-05-01T10:01:00Z", flow("10.0.0.2", "192.0.2.1", 1, 1)),
        ("2024-05-01T09:59:59Z", flow("10.0.0.2", "192.0.2.1", 7, 1)),
        ("2024-05-01T10:00:01Z", flow("10.0.0.1", "192.0.2.1", 3, 3)),
    ];
    for (when, flow) in &events {
        aggregator.add(at(when), flow).unwrap();
    }
    let rows: Vec<_> = aggregator
        .iter()
        .map(|r| {
            (
                r.bucket_start,
                r.source.to_string(),
                r.destination.to_string(),
                r.source_zone.to_string(),
                r.destination_zone.to_string(),
                r.bytes,
            )
        })
        .collect();
    let row = |t, s: &str, d: &str, sz: &str, dz: &str, b| {
        (
            t,
            s.to_owned(),
            d.to_owned(),
            sz.to_owned(),
            dz.to_owned(),
            b,
        )
    };
    assert_eq!(
        rows,
        [
            row(
                datetime!(2024-05-01 09:59 UTC),
                "10.0.0.2",
                "192.0.2.1",
                "GUEST",
                "EXTERNAL",
                7
            ),
            row(
                datetime!(2024-05-01 10:00 UTC),
                "10.0.0.1",
                "192.0.2.1",
                "GUEST",
                "EXTERNAL",
                9
            ),
            row(
                datetime!(2024-05-01 10:00 UTC),
                "10.0.0.2",
                "192.0.2.1",
                "GUEST",
                "EXTERNAL",
                15_000
            ),
            row(
                datetime!(2024-05-01 10:00 UTC),
                "2001:db8::1",
                "10.0.0.1",
                "V6",
                "GUEST",
                200
            ),
            row(
                datetime!(2024-05-01 10:01 UTC),
                "10.0.0.2",
                "192.0.2.1",
                "GUEST",
                "EXTERNAL",
                1
            ),
        ]
    );

    let closed = aggregator.take_before(datetime!(2024-05-01 10:00:45 UTC));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].bucket_start, datetime!(2024-05-01 09:59 UTC));
    assert_eq!(aggregator.len(), 4);
    let closed = aggregator.take_before(datetime!(2024-05-01 10:01:00 UTC));
    assert_eq!(closed.len(), 3);
    assert_eq!(aggregator.iter().count(), 1);
}

#[test]
fn buckets_floor_towards_the_past_and_sums_saturate() {
    let mut aggregator = aggregator(300);
    assert_eq!(
        aggregator.bucket_start(datetime!(1969-12-31 23:59:59 UTC)),
        datetime!(1969-12-31 23:55 UTC)
    );
    assert_eq!(
        aggregator.bucket_start(datetime!(2024-05-01 10:04:59.999 UTC)),
        datetime!(2024-05-01 10:00 UTC)
    );
    // (2^32 - 1)^2 bytes fit in u64 once, not twice: the second is an
    // error naming the row, and the row keeps the first.
    let big = flow("10.0.0.1", "10.0.0.2", u32::MAX, u32::MAX);
    let at = datetime!(2024-05-01 10:00 UTC);
    aggregator.add(at, &big).unwrap();
    let error = aggregator.add(at, &big).unwrap_err();
    assert_eq!(
        error.to_string(),
        "bytes from 10.0.0.1 to 10.0.0.2 in the bucket at 2024-05-01T10:00:00Z pass 2^64 - 1"
    );
    let small = flow("10.0.0.1", "10.0.0.3", 100, 1);
    assert!(aggregator.add_all(at, [&big, &small]).is_err());
    let rows: Vec<_> = aggregator.iter().collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].bytes, u64::from(u32::MAX) * u64::from(u32::MAX));
    assert_eq!(rows[1].bytes, 100);
}
