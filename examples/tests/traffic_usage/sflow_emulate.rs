//! `emulate --sflow-listen` through the built binary: the datagrams of the
//! real captures of the shared sFlow test data, and encoded ones, sent over
//! loopback UDP, are answered to the real client and to CloudStack's script
//! as Σ frame length × sampling rate per address (computed here from the
//! decoder's flow estimates); `collect` and `report` bill them to the
//! accounts holding the addresses; `--record` serves closed buckets again
//! after a crash and the open one after a clean stop; malformed and
//! counter-only datagrams are counted and never stop the emulator.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::{Duration as StdDuration, Instant};

use sflow::{CaptureReader, DatagramBuilder, DecodeSummary, Decoded, FlowSampleSpec};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use traffic_sentinel_client::{
    MonitorConfig, QueryTag, TimeInterval, TrafficQuery, TrafficSentinelClient,
};
use usage_model::Grid;

/// The address pair of the marker datagram sent after the others: once the
/// emulator answers for it, every datagram sent before it was taken in (one
/// socket to one socket over loopback, received in order by one thread).
const MARKER_SOURCE: &str = "198.18.0.77";
const MARKER_DESTINATION: &str = "198.18.0.78";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `<repository root>/../shared/sflow`: the shared test data beside the
/// repository, never copied into it.
fn shared_sflow() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("sflow")
}

/// The UDP payloads of every capture of the shared sFlow test data, in
/// file-name order.
fn captured_datagrams() -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(shared_sflow())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "pcap"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "the shared captures: {paths:?}");
    let mut datagrams = Vec::new();
    for path in paths {
        let file = std::fs::File::open(&path).unwrap();
        for captured in CaptureReader::new(BufReader::new(file)).unwrap() {
            datagrams.push(captured.unwrap().bytes);
        }
    }
    datagrams
}

/// Encoded datagrams: IPv4 and IPv6, compact and expanded samples, raw
/// headers and sampled IP records, a counter sample.
fn encoded_datagrams() -> Vec<Vec<u8>> {
    let pairs = [
        ("203.0.113.10", "192.0.2.1", 1500, 512),
        ("2001:db8:10::7", "2001:db8:ffff::1", 1280, 1024),
        ("192.0.2.1", "203.0.113.10", 64, 512),
        ("203.0.113.11", "2001:db8:ffff::1", 900, 2048),
    ];
    (0..20u32)
        .map(|sequence| {
            let mut builder = DatagramBuilder::new(ip("192.0.2.254")).sequence_number(sequence);
            for (k, (source, destination, length, rate)) in pairs.iter().enumerate() {
                builder.flow_sample(
                    FlowSampleSpec::new(ip(source), ip(destination), length + sequence)
                        .sampling_rate(*rate)
                        .expanded(k % 2 == 1)
                        .record(if k == 3 {
                            sflow::FlowRecordKind::SampledIp
                        } else {
                            sflow::FlowRecordKind::RawPacketHeader
                        }),
                );
            }
            builder.counter_sample();
            builder.encode()
        })
        .collect()
}

fn marker() -> Vec<u8> {
    let mut builder = DatagramBuilder::new(ip("192.0.2.254"));
    builder.flow_sample(FlowSampleSpec::new(
        ip(MARKER_SOURCE),
        ip(MARKER_DESTINATION),
        1,
    ));
    builder.encode()
}

/// Bytes sent and received per address: Σ frame length × sampling rate of
/// the decoder's flow estimates.
type Totals = BTreeMap<IpAddr, (u64, u64)>;

fn estimate(datagrams: &[Vec<u8>]) -> Totals {
    let mut totals = Totals::new();
    for datagram in datagrams {
        if let Ok(Decoded::Datagram(decoded)) = sflow::decode(datagram) {
            for flow in decoded.flows() {
                totals.entry(flow.source).or_default().0 += flow.bytes();
                totals.entry(flow.destination).or_default().1 += flow.bytes();
            }
        }
    }
    totals
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_traffic-usage"));
    command.env_remove("RUST_LOG");
    command
}

fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

/// A running `emulate --sflow-listen`; killed when dropped.
struct Emulate {
    child: Child,
    url: String,
    sflow: SocketAddr,
    grid: Grid,
}

impl Emulate {
    fn start(granularity: u32, extra: &[&str]) -> Emulate {
        Emulate::start_with(binary(), granularity, extra)
    }

    fn start_with(mut command: Command, granularity: u32, extra: &[&str]) -> Emulate {
        let seconds = granularity.to_string();
        let mut child = command
            .args([
                "emulate",
                "--listen",
                "127.0.0.1:0",
                "--sflow-listen",
                "127.0.0.1:0",
                "--granularity",
                &seconds,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        let mut second = String::new();
        stdout.read_line(&mut first).unwrap();
        stdout.read_line(&mut second).unwrap();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .trim_end()
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{first:?}");
        let sflow = second
            .strip_prefix("sflow on udp://")
            .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
            .trim_end()
            .parse()
            .unwrap();
        Emulate {
            child,
            url,
            sflow,
            grid: Grid::from_seconds(u64::from(granularity)).unwrap(),
        }
    }

    /// Sends `datagrams`, then the marker, and waits until the marker is
    /// answered (every datagram before it taken in); the instant then.
    fn send(&self, datagrams: &[Vec<u8>]) -> OffsetDateTime {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        for datagram in datagrams {
            socket.send_to(datagram, self.sflow).unwrap();
            // 5,000 a second: a default-sized receive buffer (about 200
            // datagrams) covers a receiver off the CPU for 40 ms.
            std::thread::sleep(StdDuration::from_micros(200));
        }
        let before = self.grid.floor(OffsetDateTime::now_utc()).unwrap();
        let marked = self.query(
            &[ip(MARKER_SOURCE)],
            (before, before + self.grid.step() * 60),
        );
        let already = marked.get(&ip(MARKER_SOURCE)).map_or(0, |c| c.0);
        socket.send_to(&marker(), self.sflow).unwrap();
        let deadline = Instant::now() + StdDuration::from_secs(20);
        loop {
            let now = OffsetDateTime::now_utc();
            let answer = self.query(
                &[ip(MARKER_SOURCE)],
                (before, before + self.grid.step() * 60),
            );
            if answer.get(&ip(MARKER_SOURCE)).map_or(0, |c| c.0) > already {
                return now;
            }
            assert!(Instant::now() < deadline, "the marker was never answered");
            std::thread::sleep(StdDuration::from_millis(20));
        }
    }

    /// Bytes sent and received of `ips` over `[start, end)`, as the real
    /// client gets them (include zone EXTERNAL).
    fn query(&self, ips: &[IpAddr], (start, end): (OffsetDateTime, OffsetDateTime)) -> Totals {
        let config = MonitorConfig::builder(&self.url)
            .granularity(self.grid)
            .build()
            .unwrap();
        let query = TrafficQuery {
            tag: QueryTag(1),
            interval: TimeInterval::new(start, end).unwrap(),
            ips: ips.to_vec(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime
            .block_on(async {
                TrafficSentinelClient::new(config)
                    .unwrap()
                    .fetch(&[query])
                    .await
            })
            .unwrap();
        outcome
            .answer
            .iter()
            .filter(|(_, _, counts)| !counts.is_zero())
            .map(|(_, ip, counts)| (ip, (counts.sent, counts.received)))
            .collect()
    }

    /// CloudStack's script for `ips` over `[start, end)`, posted as
    /// CloudStack 4.10+ posts it; its `addr,SENT,RECEIVED` lines.
    fn cloudstack(&self, ips: &[IpAddr], (start, end): (OffsetDateTime, OffsetDateTime)) -> Totals {
        let script = traffic_sentinel_emulator::cloudstack_script(
            ips,
            &["EXTERNAL"],
            &[],
            start,
            end,
            UtcOffset::UTC,
        );
        let encoded: String = url::form_urlencoded::byte_serialize(script.as_bytes()).collect();
        let body = format!("script={encoded}&authenticate=basic&resultFormat=txt");
        let addr = self.url.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST /inmsf/Query HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, text) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        text.lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                assert_eq!(fields.len(), 3, "{line}");
                (
                    ip(fields[0]),
                    (fields[1].parse().unwrap(), fields[2].parse().unwrap()),
                )
            })
            .collect()
    }

    fn terminate(mut self) -> String {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut stderr = String::new();
        let mut pipe: ChildStderr = self.child.stderr.take().unwrap();
        pipe.read_to_string(&mut stderr).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "emulate exited with {status}: {stderr}");
        stderr
    }

    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Emulate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The span from the bucket of `from` to the end of the bucket of `to`.
fn span(grid: Grid, from: OffsetDateTime, to: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    (
        grid.floor(from).unwrap(),
        grid.floor(to).unwrap() + grid.step(),
    )
}

fn with_marker(mut totals: Totals) -> Totals {
    *totals.entry(ip(MARKER_SOURCE)).or_default() = (1, 0);
    *totals.entry(ip(MARKER_DESTINATION)).or_default() = (0, 1);
    totals
}

#[test]
fn captured_and_encoded_datagrams_are_answered_as_the_sflow_estimate() {
    let emulate = Emulate::start(60, &[]);
    let mut datagrams = captured_datagrams();
    datagrams.extend(encoded_datagrams());
    let expected = with_marker(estimate(&datagrams));
    assert!(expected.len() > 20, "{expected:?}");
    let began = OffsetDateTime::now_utc();
    let done = emulate.send(&datagrams);
    let span = span(emulate.grid, began, done);
    let ips: Vec<IpAddr> = expected.keys().copied().collect();

    assert_eq!(emulate.query(&ips, span), expected);
    // CloudStack's script prints the addresses that sent, with what they
    // received.
    let sent_something: Totals = expected
        .iter()
        .filter(|(_, counts)| counts.0 > 0)
        .map(|(&ip, &counts)| (ip, counts))
        .collect();
    assert_eq!(emulate.cloudstack(&ips, span), sent_something);

    let stderr = emulate.terminate();
    let mut summary = DecodeSummary::default();
    for datagram in datagrams.iter().chain([&marker()]) {
        summary.record(&sflow::decode(datagram));
    }
    let stopped = stopped_line(&stderr);
    for (field, value) in [
        ("datagrams", u128::from(summary.datagrams)),
        ("flow_samples_billed", summary.flow_samples_billed.into()),
        ("bytes_billed", summary.bytes_billed),
        ("counter_samples", summary.counter_samples.into()),
        ("malformed", summary.malformed.into()),
    ] {
        assert!(
            stopped.contains(&format!(" {field}={value} ")),
            "{field}={value}: {stopped}"
        );
    }
}

/// The `sflow ingest stopped` line of the log.
fn stopped_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|line| line.contains("sflow ingest stopped"))
        .unwrap_or_else(|| panic!("no final counts in {stderr}"))
        .to_owned()
        + " "
}

fn format_time(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// Waits until the clock has passed `at`.
fn wait_until(at: OffsetDateTime) {
    while OffsetDateTime::now_utc() < at {
        std::thread::sleep(StdDuration::from_millis(20));
    }
}

#[test]
fn collect_and_report_bill_the_estimate_to_the_accounts_holding_the_addresses() {
    // Five-second buckets for both sides: the window closes within seconds.
    let emulate = Emulate::start(5, &[]);
    let mut datagrams = captured_datagrams();
    datagrams.extend(encoded_datagrams());
    let expected = estimate(&datagrams);
    let began = OffsetDateTime::now_utc();
    let done = emulate.send(&datagrams);
    let (from, until) = span(emulate.grid, began, done);

    // Every sampled address to one of three accounts, assigned an hour
    // before; the marker's addresses belong to nobody.
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let assigned = format_time(from - time::Duration::hours(1));
    let mut owners: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut log = String::new();
    for (k, (address, (sent, received))) in expected.iter().enumerate() {
        let account = format!("acct-{}", k % 3);
        log.push_str(&format!(
            "{{\"id\":{},\"type\":\"NET.IPASSIGN\",\"at\":\"{assigned}\",\"zone\":\"zone-1\",\"account\":\"{account}\",\"ip\":\"{address}\"}}\n",
            k + 1
        ));
        let owner = owners.entry(account).or_default();
        owner.0 += sent;
        owner.1 += received;
    }
    std::fs::write(&events, log).unwrap();
    let db = dir.path().join("usage.db");

    wait_until(until);
    let output = run(&[
        "collect",
        "--monitor",
        &emulate.url,
        "--events",
        events.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--zone",
        "zone-1",
        "--from",
        &format_time(from),
        "--until",
        &format_time(until),
        "--lag",
        "0",
        "--granularity",
        "5",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(&["report", "--db", db.to_str().unwrap(), "--format", "csv"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        report_totals(&String::from_utf8(output.stdout).unwrap()),
        owners
    );
}

/// `account → (bytes_sent, bytes_received)` of a CSV report, columns found
/// by their header; rows of no account (a total) left out.
fn report_totals(csv: &str) -> BTreeMap<String, (u64, u64)> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let (account, sent, received) = (
        column("account"),
        column("bytes_sent"),
        column("bytes_received"),
    );
    lines
        .map(|line| line.split(',').collect::<Vec<&str>>())
        .filter(|fields| fields[account].starts_with("acct-"))
        .map(|fields| {
            (
                fields[account].to_owned(),
                (
                    fields[sent].parse().unwrap(),
                    fields[received].parse().unwrap(),
                ),
            )
        })
        .collect()
}

fn record_rows(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count().saturating_sub(1))
}

#[test]
fn a_restart_with_record_serves_the_closed_buckets_again() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.csv");
    let record_arg = record.to_str().unwrap();
    let datagrams = captured_datagrams();
    let expected = with_marker(estimate(&datagrams));
    let ips: Vec<IpAddr> = expected.keys().copied().collect();

    // A crash after the buckets closed: they were recorded.
    let emulate = Emulate::start(1, &["--record", record_arg]);
    let began = OffsetDateTime::now_utc();
    let done = emulate.send(&datagrams);
    let span = span(emulate.grid, began, done + time::Duration::minutes(1));
    wait_until(emulate.grid.ceil(done).unwrap() + time::Duration::SECOND);
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while !std::fs::read_to_string(&record)
        .unwrap()
        .contains(MARKER_SOURCE)
    {
        assert!(
            Instant::now() < deadline,
            "the marker's bucket was never recorded"
        );
        std::thread::sleep(StdDuration::from_millis(20));
    }
    let before = emulate.query(&ips, span);
    assert_eq!(before, expected);
    emulate.crash();

    let emulate = Emulate::start(1, &["--record", record_arg]);
    assert_eq!(emulate.query(&ips, span), before);

    // A clean stop records the open bucket too.
    let rows = record_rows(&record);
    emulate.send(&encoded_datagrams());
    let mut all = datagrams.clone();
    all.extend(encoded_datagrams());
    let mut expected = with_marker(estimate(&all));
    expected.get_mut(&ip(MARKER_SOURCE)).unwrap().0 = 2;
    expected.get_mut(&ip(MARKER_DESTINATION)).unwrap().1 = 2;
    let ips: Vec<IpAddr> = expected.keys().copied().collect();
    assert_eq!(emulate.query(&ips, span), expected);
    emulate.terminate();
    assert!(record_rows(&record) > rows);

    let emulate = Emulate::start(1, &["--record", record_arg]);
    assert_eq!(emulate.query(&ips, span), expected);
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(text.matches("time,ipsource").count(), 1, "one header");
}

#[test]
fn malformed_and_counter_only_datagrams_are_counted_and_never_stop_the_emulator() {
    let emulate = Emulate::start(60, &[]);
    let counters = std::fs::read(
        shared_sflow().join("logstash-codec-sflow__spec__codecs__sflow_counters_sample.dat"),
    )
    .unwrap();
    let mut counter_only = DatagramBuilder::new(ip("2001:db8::fe"));
    counter_only
        .counter_sample()
        .counter_sample()
        .discarded_packet_sample();
    let real = encoded_datagrams().swap_remove(0);
    let mut datagrams = vec![
        counters,
        counter_only.encode(),
        Vec::new(),
        vec![0, 0, 0, 2, 1, 2],
    ];
    // Every truncation of a real datagram, and bytes flipped in each word.
    for len in 0..real.len() {
        datagrams.push(real[..len].to_vec());
    }
    for at in (0..real.len()).step_by(4) {
        let mut flipped = real.clone();
        flipped[at] ^= 0xff;
        datagrams.push(flipped);
    }
    let mut summary = DecodeSummary::default();
    for datagram in &datagrams {
        summary.record(&sflow::decode(datagram));
    }
    assert!(
        summary.malformed > 50 && summary.counter_samples >= 3,
        "{summary:?}"
    );

    let began = OffsetDateTime::now_utc();
    let done = emulate.send(&datagrams);
    // Still answering, with what the datagrams that could be read billed.
    let expected = with_marker(estimate(&datagrams));
    let ips: Vec<IpAddr> = expected.keys().copied().collect();
    assert_eq!(
        emulate.query(&ips, span(emulate.grid, began, done)),
        expected
    );

    summary.record(&sflow::decode(&marker()));
    let stopped = stopped_line(&emulate.terminate());
    for (field, value) in [
        ("datagrams", summary.datagrams),
        ("malformed", summary.malformed),
        ("other_versions", summary.other_versions),
        ("counter_samples", summary.counter_samples),
        ("discarded_packet_samples", summary.discarded_packet_samples),
        ("flow_samples_billed", summary.flow_samples_billed),
    ] {
        assert!(
            stopped.contains(&format!(" {field}={value} ")),
            "{field}={value}: {stopped}"
        );
    }
}

#[test]
fn a_source_is_required_and_ingest_flags_need_sflow_listen() {
    for args in [
        &["emulate"][..],
        &["emulate", "--flows", "f.csv", "--record", "r.csv"],
        &["emulate", "--flows", "f.csv", "--zones", "z.txt"],
        &[
            "emulate",
            "--sflow-listen",
            "127.0.0.1:0",
            "--server-utc-offset",
            "+01:00",
            "--server-time-zone",
            "Europe/Berlin",
        ],
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    // A bad record file line: exit 2, naming the file and the line.
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.csv");
    std::fs::write(
        &record,
        "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n2026-11-01T10:00:00Z,10.0.0.1,10.0.0.2,,,-1\n",
    )
    .unwrap();
    let output = run(&[
        "emulate",
        "--listen",
        "127.0.0.1:0",
        "--sflow-listen",
        "127.0.0.1:0",
        "--record",
        record.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "error: record file {}: line 2: field \"bytes\": invalid byte count \"-1\"",
            record.display()
        )),
        "{stderr}"
    );
}

/// One raw `POST /inmsf/Query` of `script`, with `authorization` (a header
/// value) if any; the status code and the body.
fn post_script(url: &str, script: &str, authorization: Option<&str>) -> (u16, String) {
    let encoded: String = url::form_urlencoded::byte_serialize(script.as_bytes()).collect();
    let body = format!("script={encoded}&authenticate=basic&resultFormat=txt");
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    let authorization = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST /inmsf/Query HTTP/1.1\r\nHost: {addr}\r\n{authorization}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, text) = response.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), text.to_owned())
}

#[test]
fn zones_time_zone_and_credentials_apply_to_the_sflow_history() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones.txt");
    std::fs::write(
        &zones,
        "# guests\n203.0.113.0/24,GUEST\n2001:db8:10::/48,GUEST\n",
    )
    .unwrap();
    let emulate = {
        let zones = zones.to_str().unwrap();
        let mut command = binary();
        command.env("TS_PASSWORD", "s3cret");
        let args = [
            "--zones",
            zones,
            "--default-zone",
            "INTERNET",
            "--server-time-zone",
            "Asia/Kolkata",
            "--user",
            "billing",
            "--password-env",
            "TS_PASSWORD",
        ];
        Emulate::start_with(command, 60, &args)
    };
    let began = OffsetDateTime::now_utc();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in encoded_datagrams() {
        socket.send_to(&datagram, emulate.sflow).unwrap();
    }
    let expected = estimate(&encoded_datagrams());
    let (start, end) = span(emulate.grid, began, OffsetDateTime::now_utc());
    // CloudStack's script in the server's local time (+05:30), guests' bytes
    // to and from INTERNET; 203.0.113.10 ↔ 192.0.2.1 both ways.
    let guest = ip("203.0.113.10");
    let ist = UtcOffset::from_hms(5, 30, 0).unwrap();
    let script =
        traffic_sentinel_emulator::cloudstack_script(&[guest], &["INTERNET"], &[], start, end, ist);
    assert_eq!(post_script(&emulate.url, &script, None).0, 401);
    let credentials = format!("Basic {}", base64_encode(b"billing:s3cret"));
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let want = format!("{guest},{},{}\n", expected[&guest].0, expected[&guest].1);
    loop {
        let (status, body) = post_script(&emulate.url, &script, Some(&credentials));
        assert_eq!(status, 200, "{body}");
        if body == want {
            break;
        }
        assert!(Instant::now() < deadline, "{body:?} is not {want:?}");
        std::thread::sleep(StdDuration::from_millis(20));
    }
    // Read in UTC, the same interval is five and a half hours off: nothing.
    let utc = traffic_sentinel_emulator::cloudstack_script(
        &[guest],
        &["INTERNET"],
        &[],
        start,
        end,
        UtcOffset::UTC,
    );
    assert_eq!(
        post_script(&emulate.url, &utc, Some(&credentials)),
        (200, String::new())
    );
    // Between guests is not INTERNET traffic.
    let guests_only = traffic_sentinel_emulator::cloudstack_script(
        &[ip("203.0.113.11")],
        &["GUEST"],
        &[],
        start,
        end,
        ist,
    );
    let (_, body) = post_script(&emulate.url, &guests_only, Some(&credentials));
    assert_eq!(body, "");
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
