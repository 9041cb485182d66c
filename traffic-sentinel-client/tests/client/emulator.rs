//! The real client against the real emulator over loopback HTTP: addresses of
//! both families, received-only addresses, several windows in one request,
//! chunking, zones, a non-UTC server, every injected fault and credentials.
//!
//! Expected byte counts come from the flows put in (by hand, cross-checked
//! with `FlowHistory::bytes`), never from the client's own output.

use std::net::IpAddr;
use std::time::Duration;

use time::macros::{datetime, offset};
use time::{OffsetDateTime, UtcOffset};
use traffic_sentinel_client::{
    ByteCounts, Error, MonitorConfig, MonitorConfigBuilder, QueryTag, TimeInterval,
    TrafficSentinelClient, plan_requests,
};
use traffic_sentinel_emulator::{
    Emulator, EmulatorOptions, Fault, Flow, FlowHistory, Side, Times, ZoneFilter,
};
use usage_model::TrafficQuery;

pub(crate) fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub(crate) const GUEST4: &str = "203.0.113.7";
const GUEST4B: &str = "203.0.113.8";
/// Only ever receives.
pub(crate) const GUEST6: &str = "2001:db8::7";
const PEER4: &str = "198.51.100.1";
const PEER6: &str = "2001:db8:ffff::1";

fn flow(time: OffsetDateTime, src: &str, dst: &str, sz: &str, dz: &str, bytes: u64) -> Flow {
    Flow {
        time,
        ipsource: ip(src),
        ipdestination: ip(dst),
        sourcezone: sz.to_owned(),
        destinationzone: dz.to_owned(),
        bytes,
    }
}

/// The flows of most tests (minute buckets).
fn flows() -> Vec<Flow> {
    vec![
        // GUEST4 sends 1000 + 24 to EXTERNAL in 10:00–11:00 (the 24 in the
        // last minute bucket), 5000 at 11:00 sharp (the next hour).
        flow(
            datetime!(2026-11-01 10:05 UTC),
            GUEST4,
            PEER4,
            "INTERNAL",
            "EXTERNAL",
            1_000,
        ),
        flow(
            datetime!(2026-11-01 10:59:59 UTC),
            GUEST4,
            PEER4,
            "INTERNAL",
            "EXTERNAL",
            24,
        ),
        flow(
            datetime!(2026-11-01 11:00 UTC),
            GUEST4,
            PEER4,
            "INTERNAL",
            "EXTERNAL",
            5_000,
        ),
        // ... and receives 300 from EXTERNAL.
        flow(
            datetime!(2026-11-01 10:30 UTC),
            PEER4,
            GUEST4,
            "EXTERNAL",
            "INTERNAL",
            300,
        ),
        // GUEST6 only receives: 80 at 10:10, 7 at 12:15.
        flow(
            datetime!(2026-11-01 10:10 UTC),
            PEER6,
            GUEST6,
            "EXTERNAL",
            "INTERNAL",
            80,
        ),
        flow(
            datetime!(2026-11-01 12:15 UTC),
            PEER6,
            GUEST6,
            "EXTERNAL",
            "INTERNAL",
            7,
        ),
        // GUEST4B: 999 to INTERNAL, 400 to PEERING, 60 from the empty zone,
        // 11 to EXTERNAL at 13:00.
        flow(
            datetime!(2026-11-01 10:20 UTC),
            GUEST4B,
            PEER4,
            "INTERNAL",
            "INTERNAL",
            999,
        ),
        flow(
            datetime!(2026-11-01 10:40 UTC),
            GUEST4B,
            PEER4,
            "INTERNAL",
            "PEERING",
            400,
        ),
        flow(
            datetime!(2026-11-01 10:45 UTC),
            PEER4,
            GUEST4B,
            "",
            "INTERNAL",
            60,
        ),
        flow(
            datetime!(2026-11-01 13:00 UTC),
            GUEST4B,
            PEER6,
            "INTERNAL",
            "EXTERNAL",
            11,
        ),
        // Crossing midnight at +05:30: 18:00–19:00 UTC is 23:30–00:30 there.
        flow(
            datetime!(2026-11-01 18:10 UTC),
            GUEST4,
            PEER4,
            "INTERNAL",
            "EXTERNAL",
            777,
        ),
        flow(
            datetime!(2026-11-01 18:45 UTC),
            PEER4,
            GUEST4,
            "EXTERNAL",
            "INTERNAL",
            3,
        ),
    ]
}

pub(crate) fn history() -> FlowHistory {
    FlowHistory::new(usage_model::Grid::MINUTELY, flows()).unwrap()
}

pub(crate) async fn start(options: EmulatorOptions) -> Emulator {
    Emulator::start("127.0.0.1:0".parse().unwrap(), history(), options)
        .await
        .unwrap()
}

/// Short timeouts and backoffs, hourly grid.
pub(crate) fn fast(emulator: &Emulator) -> MonitorConfigBuilder {
    MonitorConfig::builder(emulator.url().as_str())
        .connect_timeout(Duration::from_secs(2))
        .total_timeout(Duration::from_secs(5))
        .retries(2)
        .retry_backoff(Duration::from_millis(5))
        .max_retry_backoff(Duration::from_millis(20))
}

pub(crate) fn client(config: MonitorConfig) -> TrafficSentinelClient {
    TrafficSentinelClient::new(config).unwrap()
}

fn query(tag: u32, start: OffsetDateTime, end: OffsetDateTime, ips: &[&str]) -> TrafficQuery {
    TrafficQuery {
        tag: QueryTag(tag),
        interval: TimeInterval::new(start, end).unwrap(),
        ips: ips.iter().map(|text| ip(text)).collect(),
    }
}

/// Tag 7 over GUEST4, GUEST6, GUEST4B in 10:00–11:00 UTC.
pub(crate) fn hour_query() -> TrafficQuery {
    query(
        7,
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 11:00 UTC),
        &[GUEST4, GUEST6, GUEST4B],
    )
}

pub(crate) fn counts(sent: u64, received: u64) -> ByteCounts {
    ByteCounts { sent, received }
}

/// What the history itself holds for `ip` over `[start, end)` under `zones`.
fn from_history(
    history: &FlowHistory,
    ip_text: &str,
    zones: &ZoneFilter,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> ByteCounts {
    counts(
        history.bytes(ip(ip_text), Side::Sent, zones, start, end),
        history.bytes(ip(ip_text), Side::Received, zones, start, end),
    )
}

#[tokio::test]
async fn ipv4_ipv6_and_received_only_addresses() {
    let emulator = start(EmulatorOptions::new()).await;
    let outcome = client(fast(&emulator).build().unwrap())
        .fetch(&[hour_query()])
        .await
        .unwrap();
    let answer = &outcome.answer;
    assert_eq!(
        answer.get(QueryTag(7), ip(GUEST4)),
        Some(counts(1_024, 300))
    );
    // Received only: present, with sent = 0.
    assert_eq!(answer.get(QueryTag(7), ip(GUEST6)), Some(counts(0, 80)));
    // Nothing to or from EXTERNAL: absent.
    assert_eq!(answer.get(QueryTag(7), ip(GUEST4B)), None);
    assert_eq!(answer.len(), 2);
    assert_eq!((outcome.requests, outcome.attempts), (1, 1));
    assert_eq!(emulator.requests_served(), 1);

    // The hand-computed numbers are the history's.
    let external = ZoneFilter::any().include("EXTERNAL");
    let (start, end) = (
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 11:00 UTC),
    );
    for guest in [GUEST4, GUEST6] {
        assert_eq!(
            answer.get(QueryTag(7), ip(guest)),
            Some(from_history(
                emulator.history(),
                guest,
                &external,
                start,
                end
            ))
        );
    }
}

#[tokio::test]
async fn several_windows_travel_in_one_request() {
    let emulator = start(EmulatorOptions::new()).await;
    let queries = [
        hour_query(),
        query(
            8,
            datetime!(2026-11-01 11:00 UTC),
            datetime!(2026-11-01 13:00 UTC),
            &[GUEST4, GUEST6],
        ),
        query(
            9,
            datetime!(2026-11-01 13:00 UTC),
            datetime!(2026-11-01 14:00 UTC),
            &[GUEST4B, PEER6],
        ),
    ];
    let outcome = client(fast(&emulator).build().unwrap())
        .fetch(&queries)
        .await
        .unwrap();
    assert_eq!(outcome.requests, 1);
    assert_eq!(emulator.requests_served(), 1);
    let mut got: Vec<_> = outcome.answer.iter().collect();
    got.sort();
    let mut want = vec![
        (QueryTag(7), ip(GUEST4), counts(1_024, 300)),
        (QueryTag(7), ip(GUEST6), counts(0, 80)),
        (QueryTag(8), ip(GUEST4), counts(5_000, 0)),
        (QueryTag(8), ip(GUEST6), counts(0, 7)),
        (QueryTag(9), ip(GUEST4B), counts(11, 0)),
    ];
    want.sort();
    // PEER6 received GUEST4B's 11 bytes, but from the INTERNAL zone.
    assert_eq!(got, want);
}

/// Ten addresses of the same text length, `10.0.0.10` to `10.0.0.19`:
/// `10.0.0.1X` sends `(X + 1) × 100` bytes and receives `X × 10`.
fn ten_guests() -> (Vec<String>, FlowHistory) {
    let guests: Vec<String> = (10..20).map(|i| format!("10.0.0.{i}")).collect();
    let mut flows = Vec::new();
    for (x, guest) in guests.iter().enumerate() {
        let at = datetime!(2026-11-01 10:00 UTC) + time::Duration::minutes(x as i64);
        let x = x as u64;
        flows.push(flow(at, guest, PEER4, "", "EXTERNAL", (x + 1) * 100));
        if x > 0 {
            flows.push(flow(at, PEER4, guest, "EXTERNAL", "", x * 10));
        }
    }
    (
        guests,
        FlowHistory::new(usage_model::Grid::MINUTELY, flows).unwrap(),
    )
}

fn check_ten(outcome: &traffic_sentinel_client::FetchOutcome, guests: &[String]) {
    for (x, guest) in guests.iter().enumerate() {
        let x = x as u64;
        assert_eq!(
            outcome.answer.get(QueryTag(1), ip(guest)),
            Some(counts((x + 1) * 100, x * 10)),
            "{guest}"
        );
    }
    assert_eq!(outcome.answer.len(), guests.len());
}

#[tokio::test]
async fn chunks_past_the_per_query_limit_stay_in_one_request() {
    let (guests, history) = ten_guests();
    let emulator = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        history,
        EmulatorOptions::new(),
    )
    .await
    .unwrap();
    let names: Vec<&str> = guests.iter().map(String::as_str).collect();
    let big = query(
        1,
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 11:00 UTC),
        &names,
    );
    let config = fast(&emulator).max_ips_per_query(3).build().unwrap();
    let planned = plan_requests(&config, std::slice::from_ref(&big)).unwrap();
    assert_eq!(planned.len(), 1);
    // ceil(10 / 3) chunks of at most 3 addresses.
    let sizes: Vec<usize> = planned[0].chunks().iter().map(|c| c.ips().len()).collect();
    assert_eq!(sizes, [3, 3, 3, 1]);
    let outcome = client(config).fetch(&[big]).await.unwrap();
    assert_eq!(outcome.requests, 1);
    assert_eq!(emulator.requests_served(), 1);
    check_ten(&outcome, &guests);
}

#[tokio::test]
async fn requests_past_the_script_limit_are_several_and_joined() {
    let (guests, history) = ten_guests();
    let emulator = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        history,
        EmulatorOptions::new(),
    )
    .await
    .unwrap();
    let names: Vec<&str> = guests.iter().map(String::as_str).collect();
    let window = (
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 11:00 UTC),
    );
    // The script of a request asking about three of the (equally long)
    // addresses is the limit: the ten addresses need ceil(10 / 3) = 4 requests.
    let base = fast(&emulator);
    let three = query(1, window.0, window.1, &names[..3]);
    let limit = plan_requests(&base.clone().build().unwrap(), &[three]).unwrap()[0]
        .script()
        .len();
    let config = base.max_script_bytes(limit).build().unwrap();
    let big = query(1, window.0, window.1, &names);
    let planned = plan_requests(&config, std::slice::from_ref(&big)).unwrap();
    assert_eq!(planned.len(), 4);
    assert!(planned.iter().all(|r| r.script().len() <= limit));

    let outcome = client(config).fetch(&[big]).await.unwrap();
    assert_eq!(outcome.requests, 4);
    assert_eq!(outcome.attempts, 4);
    assert_eq!(emulator.requests_served(), 4);
    check_ten(&outcome, &guests);
}

#[tokio::test]
async fn include_and_exclude_zones_select_the_flows() {
    let emulator = start(EmulatorOptions::new()).await;
    let cases: [(&[&str], &[&str], Option<ByteCounts>); 5] = [
        // Default EXTERNAL: nothing for GUEST4B in 10:00–11:00.
        (&["EXTERNAL"], &[], None),
        (&["EXTERNAL", "PEERING"], &[], Some(counts(400, 0))),
        // Any zone but INTERNAL: PEERING's 400, and the 60 from the empty zone.
        (&[], &["INTERNAL"], Some(counts(400, 60))),
        // Any zone at all.
        (&[], &[], Some(counts(1_399, 60))),
        (&["EXTERNAL", "PEERING"], &["PEERING"], None),
    ];
    for (include, exclude, want) in cases {
        let config = fast(&emulator)
            .include_zones(include.iter().copied())
            .exclude_zones(exclude.iter().copied())
            .build()
            .unwrap();
        let outcome = client(config).fetch(&[hour_query()]).await.unwrap();
        assert_eq!(
            outcome.answer.get(QueryTag(7), ip(GUEST4B)),
            want,
            "include {include:?} exclude {exclude:?}"
        );
        let mut zones = ZoneFilter::any();
        for zone in include {
            zones = zones.include(*zone);
        }
        for zone in exclude {
            zones = zones.exclude(*zone);
        }
        let held = from_history(
            emulator.history(),
            GUEST4B,
            &zones,
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC),
        );
        assert_eq!(want.unwrap_or_default(), held);
    }
}

#[tokio::test]
async fn a_server_at_plus_five_thirty_answers_the_utc_window() {
    let server_offset = offset!(+05:30);
    let emulator = start(EmulatorOptions::new().server_utc_offset(server_offset)).await;
    let external = ZoneFilter::any().include("EXTERNAL");
    let windows = [
        // 15:30–16:30 there.
        (
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC),
            counts(1_024, 300),
        ),
        // 23:30 on the 1st to 00:30 on the 2nd there.
        (
            datetime!(2026-11-01 18:00 UTC),
            datetime!(2026-11-01 19:00 UTC),
            counts(777, 3),
        ),
    ];
    let queries: Vec<TrafficQuery> = windows
        .iter()
        .enumerate()
        .map(|(i, (start, end, _))| query(i as u32, *start, *end, &[GUEST4]))
        .collect();

    let config = fast(&emulator)
        .server_utc_offset(server_offset)
        .build()
        .unwrap();
    let script = plan_requests(&config, &queries).unwrap()[0]
        .script()
        .to_owned();
    assert!(script.contains("\"20261101 15:30:00, 20261101 16:30:00\""));
    assert!(script.contains("\"20261101 23:30:00, 20261102 00:30:00\""));
    let outcome = client(config).fetch(&queries).await.unwrap();
    for (i, (start, end, want)) in windows.iter().enumerate() {
        let got = outcome.answer.get(QueryTag(i as u32), ip(GUEST4));
        assert_eq!(got, Some(*want));
        assert_eq!(
            got,
            Some(from_history(
                emulator.history(),
                GUEST4,
                &external,
                *start,
                *end
            ))
        );
    }

    // A client that wrongly assumes UTC asks about other hours entirely:
    // 10:00 there is 04:30 UTC, when nothing flowed.
    let wrong = client(
        fast(&emulator)
            .server_utc_offset(UtcOffset::UTC)
            .build()
            .unwrap(),
    )
    .fetch(&queries)
    .await
    .unwrap();
    assert!(wrong.answer.is_empty(), "{:?}", wrong.answer);
}

#[tokio::test]
async fn a_failing_request_stops_the_fetch_and_returns_nothing() {
    let (guests, history) = ten_guests();
    let emulator = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        history,
        EmulatorOptions::new(),
    )
    .await
    .unwrap();
    let names: Vec<&str> = guests.iter().map(String::as_str).collect();
    let big = query(
        1,
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 11:00 UTC),
        &names,
    );
    let three = query(1, big.interval.start(), big.interval.end(), &names[..3]);
    let limit = plan_requests(&fast(&emulator).build().unwrap(), &[three]).unwrap()[0]
        .script()
        .len();
    let config = fast(&emulator).max_script_bytes(limit).build().unwrap();
    let requests = plan_requests(&config, std::slice::from_ref(&big))
        .unwrap()
        .len();
    assert_eq!(requests, 4);
    let client = client(config);
    emulator
        .faults()
        .set(Fault::TruncateBeforeSentinel, Times::Always)
        .unwrap();
    let err = client.fetch(std::slice::from_ref(&big)).await.unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
    // The first failing request ends the fetch: no further request is sent.
    assert_eq!(emulator.requests_served(), 1);

    emulator.faults().clear();
    let outcome = client.fetch(&[big]).await.unwrap();
    assert_eq!(outcome.requests, requests);
    assert_eq!(emulator.requests_served(), 1 + requests as u64);
    check_ten(&outcome, &guests);
}

#[tokio::test]
async fn zone_names_with_quotes_or_script_fragments_are_refused_at_config_time() {
    let emulator = start(EmulatorOptions::new()).await;
    for bad in [
        "EXTERNAL\"",
        "EXTERNAL\"); println(\"x",
        "EXTERNAL & ipsource = 1.2.3.4",
        "a,b",
        "EXTERNAL\n",
        "EXT\\ERNAL",
        "ZÖNE",
        "",
    ] {
        for (builder, what) in [
            (fast(&emulator).include_zones([bad]), "include zone"),
            (fast(&emulator).exclude_zones([bad]), "exclude zone"),
        ] {
            match builder.build() {
                Err(Error::Config {
                    what: got, value, ..
                }) => {
                    assert_eq!(got, what);
                    assert_eq!(value, bad);
                }
                other => panic!("{bad:?} as {what}: {other:?}"),
            }
        }
    }
    assert_eq!(emulator.requests_served(), 0);
}

#[tokio::test]
async fn a_wrong_password_never_shows_in_the_error() {
    const PASSWORD: &str = "Tr0ub4dor&3-wrong";
    let emulator = start(EmulatorOptions::new().basic_auth("billing", "correct-horse")).await;
    let config = fast(&emulator)
        .credentials("billing", PASSWORD)
        .build()
        .unwrap();
    assert!(!format!("{config:?}").contains(PASSWORD));
    let wrong = client(config);
    let err = wrong.fetch(&[hour_query()]).await.unwrap_err();
    // 401 is not retried.
    assert!(
        matches!(
            err,
            Error::HttpStatus {
                status: 401,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    for text in [err.to_string(), format!("{err:?}"), format!("{wrong:?}")] {
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(!text.contains("Tr0ub4dor"), "{text}");
    }

    let right = client(
        fast(&emulator)
            .credentials("billing", "correct-horse")
            .build()
            .unwrap(),
    );
    let outcome = right.fetch(&[hour_query()]).await.unwrap();
    assert_eq!(
        outcome.answer.get(QueryTag(7), ip(GUEST4)),
        Some(counts(1_024, 300))
    );
    assert!(!format!("{right:?}").contains("correct-horse"));
}
