//! Live sFlow ingest: datagrams over loopback UDP into the served history,
//! asked for by the real client and by CloudStack's script; buckets
//! closing; the record file appended and loaded back; bad record files.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration as StdDuration, Instant};

use sflow::{DatagramBuilder, FlowSampleSpec, ZoneMap};
use time::{Duration, OffsetDateTime, UtcOffset};
use traffic_sentinel_client::{
    MonitorConfig, QueryTag, TimeInterval, TrafficQuery, TrafficSentinelClient,
};
use traffic_sentinel_emulator::{
    Emulator, EmulatorOptions, Error, FlowHistory, IngestCounts, SflowIngest, Side, ZoneFilter,
    cloudstack_script,
};
use usage_model::Grid;

const GUEST4: &str = "10.1.0.5";
const GUEST6: &str = "2001:db8:10::5";
const PEER4: &str = "198.51.100.1";
const PEER6: &str = "2001:db8:ffff::1";
const AGENT: &str = "192.0.2.254";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn zones() -> ZoneMap {
    ZoneMap::parse("10.0.0.0/8,GUEST\n2001:db8:10::/48,GUEST\n").unwrap()
}

/// Guests sending and receiving, IPv4 and IPv6, with a counter sample: each
/// datagram stands for 2 × 1500 × 100 + 64 × 10 + 900 × 1 bytes.
fn traffic(sequence: u32) -> Vec<u8> {
    let mut builder = DatagramBuilder::new(ip(AGENT)).sequence_number(sequence);
    builder
        .flow_sample(FlowSampleSpec::new(ip(GUEST4), ip(PEER4), 1500).sampling_rate(100))
        .flow_sample(
            FlowSampleSpec::new(ip(GUEST6), ip(PEER6), 1500)
                .sampling_rate(100)
                .expanded(true),
        )
        .flow_sample(FlowSampleSpec::new(ip(PEER4), ip(GUEST4), 64).sampling_rate(10))
        .flow_sample(FlowSampleSpec::new(ip(GUEST4), ip(GUEST6), 900))
        .counter_sample();
    builder.encode()
}

fn grid(seconds: u64) -> Grid {
    Grid::from_seconds(seconds).unwrap()
}

async fn start(granularity: Grid, ingest: SflowIngest) -> Result<Emulator, Error> {
    Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        FlowHistory::new(granularity, [])?,
        EmulatorOptions::new().sflow(ingest),
    )
    .await
}

fn loopback_ingest() -> SflowIngest {
    SflowIngest::new("127.0.0.1:0".parse().unwrap()).zones(zones())
}

fn send(to: SocketAddr, datagrams: &[Vec<u8>]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in datagrams {
        socket.send_to(datagram, to).unwrap();
    }
}

/// Waits (10 s at most) until the emulator has received `datagrams`
/// datagrams, decoded or not.
async fn received(emulator: &Emulator, datagrams: u64) -> IngestCounts {
    let deadline = Instant::now() + StdDuration::from_secs(10);
    loop {
        let counts = emulator.sflow_counts().unwrap();
        let decoded = counts.decoded;
        if decoded.datagrams + decoded.malformed + decoded.other_versions >= datagrams {
            return counts;
        }
        assert!(Instant::now() < deadline, "received only {counts:?}");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

/// Every bucket the traffic can have landed in: from the bucket of `from`
/// to the end of the bucket of now.
fn span(granularity: Grid, from: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let start = granularity.floor(from).unwrap();
    let end = granularity.floor(OffsetDateTime::now_utc()).unwrap() + granularity.step();
    (start, end)
}

/// Sent bytes of the guests towards non-guests, received bytes from them,
/// as the real client gets them.
async fn client_answer(
    emulator: &Emulator,
    granularity: Grid,
    (start, end): (OffsetDateTime, OffsetDateTime),
) -> Vec<(IpAddr, u64, u64)> {
    let config = MonitorConfig::builder(emulator.url().as_str())
        .include_zones(["EXTERNAL"])
        .granularity(granularity)
        .build()
        .unwrap();
    let client = TrafficSentinelClient::new(config).unwrap();
    let query = TrafficQuery {
        tag: QueryTag(1),
        interval: TimeInterval::new(start, end).unwrap(),
        ips: vec![ip(GUEST4), ip(GUEST6)],
    };
    let outcome = client.fetch(&[query]).await.unwrap();
    [GUEST4, GUEST6]
        .iter()
        .map(|guest| {
            let counts = outcome
                .answer
                .get(QueryTag(1), ip(guest))
                .unwrap_or_default();
            (ip(guest), counts.sent, counts.received)
        })
        .collect()
}

async fn cloudstack_answer(
    emulator: &Emulator,
    (start, end): (OffsetDateTime, OffsetDateTime),
) -> String {
    let script = cloudstack_script(
        &[ip(GUEST4), ip(GUEST6)],
        &["EXTERNAL"],
        &[],
        start,
        end,
        UtcOffset::UTC,
    );
    let encoded: String = url::form_urlencoded::byte_serialize(script.as_bytes()).collect();
    let response = reqwest::Client::new()
        .post(emulator.url().join("inmsf/Query").unwrap())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "script={encoded}&authenticate=basic&resultFormat=txt"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_over_udp_are_answered_to_the_client_and_to_cloudstack() {
    let granularity = Grid::MINUTELY;
    let emulator = start(granularity, loopback_ingest()).await.unwrap();
    let to = emulator.sflow_addr().unwrap();
    let began = OffsetDateTime::now_utc();
    let mut datagrams: Vec<Vec<u8>> = (0..50).map(traffic).collect();
    // Skipped whole and counted: malformed, another version, empty.
    datagrams.push(traffic(50)[..40].to_vec());
    datagrams.push(vec![0, 0, 0, 4, 0, 0, 0, 1]);
    datagrams.push(Vec::new());
    send(to, &datagrams);
    let counts = received(&emulator, 53).await;
    let decoded = counts.decoded;
    assert_eq!(
        (decoded.datagrams, decoded.malformed, decoded.other_versions),
        (50, 2, 1)
    );
    assert_eq!(decoded.flow_samples_billed, 200);
    assert_eq!(decoded.counter_samples, 50);
    assert_eq!(decoded.bytes_billed, 50 * (2 * 150_000 + 640 + 900));

    let span = span(granularity, began);
    // The guests' traffic to and from EXTERNAL; 10.1.0.5 → 2001:db8:10::5
    // is GUEST to GUEST, so it is neither.
    assert_eq!(
        client_answer(&emulator, granularity, span).await,
        [
            (ip(GUEST4), 50 * 150_000, 50 * 640),
            (ip(GUEST6), 50 * 150_000, 0)
        ]
    );
    assert_eq!(
        cloudstack_answer(&emulator, span).await,
        format!("{GUEST4},7500000,32000\n{GUEST6},7500000,0\n")
    );
    let served = emulator.served_history().unwrap();
    assert_eq!(u128::from(served.total_bytes()), decoded.bytes_billed);
    let guest = ZoneFilter::any().include("GUEST");
    assert_eq!(
        served.bytes(ip(GUEST6), Side::Received, &guest, span.0, span.1),
        50 * 900
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_bucket_is_settled_and_answers_the_same() {
    // Two-second buckets, sent early in one so it is still open when asked.
    let granularity = grid(2);
    let emulator = start(granularity, loopback_ingest()).await.unwrap();
    while OffsetDateTime::now_utc().unix_timestamp() % 2 != 0 {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let began = OffsetDateTime::now_utc();
    send(emulator.sflow_addr().unwrap(), &[traffic(1), traffic(2)]);
    received(&emulator, 2).await;
    let span = span(granularity, began);
    let open = client_answer(&emulator, granularity, span).await;
    assert_eq!(open[0], (ip(GUEST4), 300_000, 1280));

    until("the bucket to settle", || {
        emulator.sflow_counts().unwrap().buckets_closed >= 1
            && emulator.served_history().unwrap().part_count() == 1
    })
    .await;
    assert_eq!(client_answer(&emulator, granularity, span).await, open);
    assert_eq!(
        emulator.served_history().unwrap().total_bytes(),
        2 * 301_540
    );
    // The next buckets are empty: nothing more closes.
    tokio::time::sleep(StdDuration::from_millis(2100)).await;
    assert_eq!(emulator.sflow_counts().unwrap().buckets_closed, 1);
    emulator.shutdown().await;
}

fn record_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_file_is_appended_and_loaded_back_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.csv");
    let granularity = grid(1);
    let ingest = loopback_ingest().record(&path);

    // First run: a bucket closed while running, then one recorded at shutdown.
    let emulator = start(granularity, ingest.clone()).await.unwrap();
    let began = OffsetDateTime::now_utc();
    send(emulator.sflow_addr().unwrap(), &[traffic(1)]);
    received(&emulator, 1).await;
    until("the bucket to be recorded", || {
        emulator.sflow_counts().unwrap().rows_recorded == 4
    })
    .await;
    send(emulator.sflow_addr().unwrap(), &[traffic(2)]);
    received(&emulator, 2).await;
    let span = span(granularity, began);
    let before = client_answer(&emulator, granularity, span).await;
    assert_eq!(before[0], (ip(GUEST4), 300_000, 1280));
    emulator.shutdown().await;

    let lines = record_lines(&path);
    assert_eq!(
        lines[0],
        "time,ipsource,ipdestination,sourcezone,destinationzone,bytes"
    );
    assert_eq!(lines.len(), 1 + 2 * 4, "{lines:#?}");
    assert!(
        lines[1..]
            .iter()
            .any(|line| line.ends_with(",10.1.0.5,198.51.100.1,GUEST,EXTERNAL,150000")),
        "{lines:#?}"
    );

    // Second run: the same answers before anything arrives; the header is
    // not written again.
    let emulator = start(granularity, ingest.clone()).await.unwrap();
    assert_eq!(emulator.history().total_bytes(), 2 * 301_540);
    assert_eq!(client_answer(&emulator, granularity, span).await, before);
    send(emulator.sflow_addr().unwrap(), &[traffic(3)]);
    received(&emulator, 1).await;
    emulator.shutdown().await;
    let lines = record_lines(&path);
    assert_eq!(lines.len(), 1 + 3 * 4, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("time,")).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_record_files_are_refused_naming_the_line_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let header = "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n";
    let row = "2026-11-01T10:00:00Z,10.1.0.5,198.51.100.1,GUEST,EXTERNAL,1500\n";
    let cases = [
        (
            format!("{header}{row}2026-11-01T10:01:00Z,10.1.0.5,198.51.100.1,GUEST,EXTERNAL,x\n"),
            "line 3: field \"bytes\": invalid byte count \"x\"",
        ),
        (
            format!("{header}{row}2026-11-01T10:01:00Z,10.1.0.5\n{row}"),
            "line 3: expected 6 fields, found 2",
        ),
        (
            "ip,bytes\n10.1.0.5,7\n".to_owned(),
            "line 1: expected header",
        ),
        // Not a flows CSV at all, without a line break: not cut.
        ("hello".to_owned(), "line 1: expected header"),
    ];
    for (k, (text, message)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{k}.csv"));
        std::fs::write(&path, text).unwrap();
        let error = start(Grid::MINUTELY, loopback_ingest().record(&path))
            .await
            .unwrap_err();
        let shown = error.to_string();
        assert!(matches!(error, Error::RecordLine { .. }), "{error:?}");
        assert!(
            shown.starts_with(&format!("record file {}: {message}", path.display())),
            "{shown}"
        );
        assert_eq!(&std::fs::read_to_string(&path).unwrap(), text, "left alone");
    }

    // An append cut short: the incomplete last line is dropped, the rest
    // loaded; a header cut short is written again.
    let cut = [
        (
            format!("{header}{row}2026-11-01T10:01:00Z,10.1.0.5,198.51"),
            format!("{header}{row}"),
            1500,
        ),
        ("time,ipsou".to_owned(), header.to_owned(), 0),
        (String::new(), header.to_owned(), 0),
    ];
    for (k, (text, repaired, bytes)) in cut.iter().enumerate() {
        let path = dir.path().join(format!("cut-{k}.csv"));
        std::fs::write(&path, text).unwrap();
        let emulator = start(Grid::MINUTELY, loopback_ingest().record(&path))
            .await
            .unwrap();
        assert_eq!(emulator.history().total_bytes(), *bytes);
        assert_eq!(&std::fs::read_to_string(&path).unwrap(), repaired);
        emulator.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_given_and_datagrams_received_add_up() {
    let granularity = Grid::MINUTELY;
    let now = OffsetDateTime::now_utc();
    let given = traffic_sentinel_emulator::Flow {
        time: now,
        ipsource: ip(GUEST4),
        ipdestination: ip(PEER4),
        sourcezone: "GUEST".into(),
        destinationzone: "EXTERNAL".into(),
        bytes: 7,
    };
    let emulator = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        FlowHistory::new(granularity, [given]).unwrap(),
        EmulatorOptions::new().sflow(loopback_ingest()),
    )
    .await
    .unwrap();
    send(emulator.sflow_addr().unwrap(), &[traffic(1)]);
    received(&emulator, 1).await;
    let span = span(granularity, now - Duration::seconds(1));
    let answer = client_answer(&emulator, granularity, span).await;
    assert_eq!(answer[0], (ip(GUEST4), 150_007, 640));
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_address_in_use_is_an_error_naming_it() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let error = start(Grid::MINUTELY, SflowIngest::new(addr))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::SflowListen { .. }), "{error:?}");
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
}
