//! The client and the emulator both on Berlin's clock, across the autumn
//! fold of 2026-10-25 (local 02:00–03:00 happens twice: 00:00–02:00 UTC):
//! windows that tile the night bill every byte of it exactly once, and the
//! windows that do not touch the repeated hour bill exactly their own.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use traffic_sentinel_client::{MonitorConfig, QueryTag, TimeInterval, TrafficSentinelClient};
use traffic_sentinel_emulator::{Emulator, EmulatorOptions, Flow, FlowHistory, Side, ZoneFilter};
use usage_model::{Grid, ServerTimeZone, TrafficQuery};

use crate::emulator::ip;

const GUEST: &str = "203.0.113.50";
const PEER: &str = "198.51.100.50";

/// One flow a minute from the guest, from 22:00 to 04:00 UTC, each of a
/// different size (so a minute billed twice or lost changes the sum).
fn night() -> (OffsetDateTime, OffsetDateTime, Vec<Flow>) {
    let (start, end) = (
        datetime!(2026-10-24 22:00 UTC),
        datetime!(2026-10-25 04:00 UTC),
    );
    let flows = (0..(end - start).whole_minutes())
        .map(|minute| Flow {
            time: start + Duration::minutes(minute) + Duration::seconds(7),
            ipsource: ip(GUEST),
            ipdestination: ip(PEER),
            sourcezone: "INTERNAL".into(),
            destinationzone: "EXTERNAL".into(),
            bytes: 1_000 + minute as u64,
        })
        .collect();
    (start, end, flows)
}

#[tokio::test]
async fn windows_across_berlins_autumn_fold_bill_each_byte_once() {
    let berlin = ServerTimeZone::named("Europe/Berlin").unwrap();
    let (start, end, flows) = night();
    let total: u64 = flows.iter().map(|flow| flow.bytes).sum();
    let history = FlowHistory::new(Grid::MINUTELY, flows).unwrap();
    let emulator = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        history,
        EmulatorOptions::new().server_time_zone(berlin.clone()),
    )
    .await
    .unwrap();
    let repeated = (
        datetime!(2026-10-25 00:00 UTC),
        datetime!(2026-10-25 02:00 UTC),
    );
    let external = ZoneFilter::any().include("EXTERNAL");
    for (grid, minutes) in [
        (Grid::HOURLY, 60),
        (Grid::MINUTELY, 20),
        (Grid::MINUTELY, 25),
    ] {
        let mut queries = Vec::new();
        let mut at = start;
        while at < end {
            let until = (at + Duration::minutes(minutes)).min(end);
            queries.push(TrafficQuery {
                tag: QueryTag(queries.len() as u32),
                interval: TimeInterval::new(at, until).unwrap(),
                ips: vec![ip(GUEST)],
            });
            at = until;
        }
        let config = MonitorConfig::builder(emulator.url().as_str())
            .include_zones(["EXTERNAL"])
            .granularity(grid)
            .server_time_zone(berlin.clone())
            .build()
            .unwrap();
        let outcome = TrafficSentinelClient::new(config)
            .unwrap()
            .fetch(&queries)
            .await
            .unwrap();
        let billed: u64 = outcome
            .answer
            .iter()
            .map(|(_, _, counts)| counts.sent)
            .sum();
        assert_eq!(billed, total, "{grid}, {minutes}-minute windows");
        for query in &queries {
            let (from, until) = (query.interval.start(), query.interval.end());
            if until <= repeated.0 || from >= repeated.1 {
                let own = emulator
                    .history()
                    .bytes(ip(GUEST), Side::Sent, &external, from, until);
                let got = outcome.answer.get(query.tag, ip(GUEST)).map(|c| c.sent);
                assert_eq!(got, Some(own), "{grid}: [{from}, {until})");
            }
        }
    }
}
