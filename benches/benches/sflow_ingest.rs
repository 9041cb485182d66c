//! Live sFlow ingest over loopback UDP: datagrams sent at 50,000 per second
//! for 10 seconds to the emulator's sFlow socket, then counted: every
//! datagram sent must have been received and decoded, every flow sample
//! billed, and the served history must hold, for every address, the bytes
//! sent by it (Σ frame length × sampling rate) — zero loss, checked before
//! any figure is printed.
//!
//! Also measured: the CPU time of the ingest threads, the cost of merging
//! a closed bucket into a large settled history (`FlowHistory::extended`),
//! and, when `sfacctd` (pmacct) is installed, the same datagrams at the same
//! rate fed to it, with its per-address bytes compared.
//!
//! `cargo bench -p usage-benches --bench sflow_ingest`; under `cargo test`
//! it sends 2,000 datagrams at 10,000/s and skips `sfacctd`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sflow::{DatagramBuilder, FlowRecordKind, FlowSampleSpec};
use time::OffsetDateTime;
use traffic_sentinel_emulator::{
    Emulator, EmulatorOptions, Flow, FlowHistory, SflowIngest, Side, ZoneFilter,
};
use usage_benches::{SplitMix64, full_run};
use usage_model::Grid;

/// Flow samples per datagram (about 1 KB datagrams, as agents send).
const FLOWS_PER_DATAGRAM: usize = 8;
/// Distinct datagrams, sent round-robin.
const DISTINCT: usize = 4096;
/// Addresses the samples are drawn from.
const ADDRESSES: u64 = 20_000;
/// The target rate.
const RATE: u64 = 50_000;

fn address(index: u64) -> IpAddr {
    if index % 5 == 4 {
        IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(index)))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | index as u32))
    }
}

/// The datagrams, and per datagram its flow samples' (source, bytes).
struct Fixture {
    datagrams: Vec<Vec<u8>>,
    sources: Vec<Vec<(IpAddr, u64)>>,
}

fn fixture() -> Fixture {
    let mut random = SplitMix64::new(6343);
    let mut fixture = Fixture {
        datagrams: Vec::with_capacity(DISTINCT),
        sources: Vec::with_capacity(DISTINCT),
    };
    for sequence in 0..DISTINCT {
        let agent = IpAddr::V4(Ipv4Addr::new(192, 0, 2, (sequence % 8) as u8 + 1));
        let mut builder = DatagramBuilder::new(agent).sequence_number(sequence as u32);
        let mut sources = Vec::with_capacity(FLOWS_PER_DATAGRAM);
        for i in 0..FLOWS_PER_DATAGRAM {
            let source = address(random.below(ADDRESSES));
            let destination = address(random.below(ADDRESSES));
            let frame_length = 64 + random.below(1455) as u32;
            let rate = [512, 1024, 2048, 4096][random.below(4) as usize];
            let record = if i % 4 == 3 {
                FlowRecordKind::SampledIp
            } else {
                FlowRecordKind::RawPacketHeader
            };
            builder.flow_sample(
                FlowSampleSpec::new(source, destination, frame_length)
                    .sampling_rate(rate)
                    .record(record)
                    .expanded(i % 2 == 1),
            );
            sources.push((source, u64::from(frame_length) * u64::from(rate)));
        }
        builder.counter_sample();
        fixture.datagrams.push(builder.encode());
        fixture.sources.push(sources);
    }
    fixture
}

/// Bytes sent per source address by the first `sent` datagrams of the
/// round-robin.
fn expected(fixture: &Fixture, sent: u64) -> BTreeMap<IpAddr, u64> {
    let rounds = sent / DISTINCT as u64;
    let rest = (sent % DISTINCT as u64) as usize;
    let mut bytes = BTreeMap::new();
    for (k, sources) in fixture.sources.iter().enumerate() {
        let times = rounds + u64::from(k < rest);
        for &(source, b) in sources {
            *bytes.entry(source).or_insert(0) += b * times;
        }
    }
    bytes.retain(|_, b| *b > 0);
    bytes
}

/// Sends the datagrams round-robin to `to` at `rate` per second for
/// `duration`; the number sent and the time it took.
fn send_paced(fixture: &Fixture, to: SocketAddr, rate: u64, duration: Duration) -> (u64, Duration) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a sender socket");
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let datagram = &fixture.datagrams[(sent % DISTINCT as u64) as usize];
            socket.send_to(datagram, to).expect("loopback send");
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (sent, start.elapsed())
}

/// User + system CPU seconds of the threads of this process whose names
/// start with `prefix` (Linux, 100 ticks per second).
fn cpu_seconds_of_threads(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.starts_with(prefix))
        })
        .map(|task| stat_cpu(&task.path().join("stat")))
        .sum()
}

fn stat_cpu(path: &Path) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after `) `.
    (ticks(11) + ticks(12)) / 100.0
}

/// The system's UDP receive-buffer overflows so far (`RcvbufErrors` of
/// `/proc/net/snmp`): datagrams the kernel dropped because a socket was full.
fn udp_receive_buffer_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split(' ')
        .zip(values.split(' '))
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of process `root` and its children.
fn process_tree_cpu(root: u32) -> f64 {
    let mut total = stat_cpu(&Path::new("/proc").join(root.to_string()).join("stat"));
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
            if after.split(' ').nth(1) == Some(&root.to_string()) {
                total += stat_cpu(&entry.path().join("stat"));
            }
        }
    }
    total
}

struct IngestRun {
    sent: u64,
    send_time: Duration,
    drain_time: Duration,
    receive_cpu: f64,
    bucket_rows: Vec<Flow>,
}

/// The emulator's side: sends, waits for every datagram, checks everything.
fn emulator_run(fixture: &Fixture, rate: u64, duration: Duration) -> IngestRun {
    let emulator = Emulator::start_in_background(
        "127.0.0.1:0".parse().expect("an address"),
        FlowHistory::new(Grid::MINUTELY, []).expect("an empty history"),
        EmulatorOptions::new().sflow(SflowIngest::new("127.0.0.1:0".parse().expect("an address"))),
    )
    .expect("the emulator starts");
    let to = emulator.sflow_addr().expect("an sFlow socket");
    let began = OffsetDateTime::now_utc();
    let cpu_before = cpu_seconds_of_threads("sflow-");
    let (sent, send_time) = send_paced(fixture, to, rate, duration);
    let drain = Instant::now();
    let mut last = (0, Instant::now());
    let counts = loop {
        let counts = emulator.sflow_counts().expect("ingest counts");
        if counts.decoded.datagrams >= sent {
            break counts;
        }
        if counts.decoded.datagrams != last.0 {
            last = (counts.decoded.datagrams, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let drain_time = drain.elapsed();
    let receive_cpu = cpu_seconds_of_threads("sflow-") - cpu_before;

    // Zero loss, every sample billed, every address's bytes served.
    let decoded = counts.decoded;
    assert_eq!(decoded.datagrams, sent, "datagrams lost: {counts:?}");
    assert_eq!(decoded.malformed + decoded.other_versions, 0);
    assert_eq!(
        decoded.flow_samples_billed,
        sent * FLOWS_PER_DATAGRAM as u64
    );
    assert_eq!(counts.receive_errors, 0);
    let expected = expected(fixture, sent);
    assert_eq!(
        decoded.bytes_billed,
        u128::from(expected.values().sum::<u64>())
    );
    let served = emulator.served_history().expect("a snapshot");
    assert_eq!(u128::from(served.total_bytes()), decoded.bytes_billed);
    let start = Grid::MINUTELY.floor(began).expect("a time");
    let end = Grid::MINUTELY
        .floor(OffsetDateTime::now_utc())
        .expect("a time")
        + Grid::MINUTELY.step();
    let any = ZoneFilter::any();
    for (&ip, &bytes) in &expected {
        assert_eq!(
            served.bytes(ip, Side::Sent, &any, start, end),
            bytes,
            "{ip}"
        );
    }
    let bucket_rows = expected
        .iter()
        .map(|(&ip, &bytes)| Flow {
            time: start,
            ipsource: ip,
            ipdestination: address(0),
            sourcezone: "EXTERNAL".to_owned(),
            destinationzone: "EXTERNAL".to_owned(),
            bytes,
        })
        .collect();
    IngestRun {
        sent,
        send_time,
        drain_time,
        receive_cpu,
        bucket_rows,
    }
}

/// A settled history of `flows` flows over a day of minute buckets, and
/// the time to merge `bucket` into it (median of `runs`).
fn merge_cost(flows: u64, bucket: &[Flow], runs: usize) -> (usize, Duration) {
    let mut random = SplitMix64::new(13);
    let day = Grid::MINUTELY
        .floor(OffsetDateTime::now_utc())
        .expect("a time")
        - time::Duration::DAY;
    let history = FlowHistory::new(
        Grid::MINUTELY,
        (0..flows).map(|_| Flow {
            time: day + time::Duration::seconds(random.below(86_400) as i64),
            ipsource: address(random.below(ADDRESSES)),
            ipdestination: address(random.below(ADDRESSES)),
            sourcezone: "EXTERNAL".to_owned(),
            destinationzone: "EXTERNAL".to_owned(),
            bytes: 1 + random.below(1 << 20),
        }),
    )
    .expect("a history");
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let merged = history.extended(bucket.iter().cloned()).expect("a merge");
            let took = start.elapsed();
            assert_eq!(merged.flow_count(), history.flow_count() + bucket.len());
            took
        })
        .collect();
    times.sort_unstable();
    (history.flow_count(), times[runs / 2])
}

/// `sfacctd` fed the same datagrams at the same rate: its per-source bytes
/// (Σ bytes × sampling rate) and the CPU seconds of its processes.
fn sfacctd_run(
    fixture: &Fixture,
    rate: u64,
    duration: Duration,
) -> Option<(u64, BTreeMap<IpAddr, u64>, f64, u64)> {
    let dir = tempfile::tempdir().ok()?;
    let port = UdpSocket::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let output = dir.path().join("out.csv");
    let config = dir.path().join("sfacctd.conf");
    std::fs::write(
        &config,
        format!(
            "daemonize: false\nsfacctd_ip: 127.0.0.1\nsfacctd_port: {port}\nsfacctd_pipe_size: 16777216\n\
             plugins: print[p]\naggregate[p]: src_host, sampling_rate\nprint_output[p]: csv\n\
             print_output_file[p]: {}\nprint_output_file_append[p]: true\nprint_refresh_time[p]: 1\n\
             print_cache_entries[p]: 262139\n\
             plugin_buffer_size[p]: 10240000\nplugin_pipe_size[p]: 1024000000\n",
            output.display()
        ),
    )
    .ok()?;
    let mut child: Child = Command::new("sfacctd")
        .arg("-f")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_secs(1));
    let overflows = udp_receive_buffer_errors();
    let (sent, _) = send_paced(
        fixture,
        SocketAddr::from(([127, 0, 0, 1], port)),
        rate,
        duration,
    );
    std::thread::sleep(Duration::from_secs(3));
    let overflows = udp_receive_buffer_errors() - overflows;
    let cpu = process_tree_cpu(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    // sfacctd acts on the signal when its socket next wakes it.
    if let Ok(socket) = UdpSocket::bind("127.0.0.1:0") {
        let _ = socket.send_to(&[], SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let _ = child.wait();
    let text = std::fs::read_to_string(&output).ok()?;
    // Bytes as sampled, per source and sampling rate: scaled here by the
    // rate each sample carried (sfacctd's own renormalization estimates an
    // effective rate from the sample pools instead).
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name);
    let (source, rate, sampled) = (
        column("SRC_IP")?,
        column("SAMPLING_RATE")?,
        column("BYTES")?,
    );
    let mut bytes = BTreeMap::new();
    for line in lines.filter(|l| !l.starts_with("SRC_IP")) {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        if let (Ok(ip), Ok(r), Ok(b)) = (
            field(source).parse::<IpAddr>(),
            field(rate).parse::<u64>(),
            field(sampled).parse::<u64>(),
        ) {
            // sfacctd writes an IPv4 address IPv4-mapped when the other end
            // is IPv6; the decoder gives it as IPv4.
            *bytes.entry(ip.to_canonical()).or_insert(0) += b * r;
        }
    }
    Some((sent, bytes, cpu, overflows))
}

fn main() {
    let full = full_run();
    // Under `cargo test`, 2,000 datagrams at a fifth of the rate: a
    // default-sized socket buffer then covers a receiver off the CPU for
    // 20 ms on a busy test machine.
    let (rate, duration) = if full {
        (RATE, Duration::from_secs(10))
    } else {
        (RATE / 5, Duration::from_millis(200))
    };
    let fixture = fixture();
    let run = emulator_run(&fixture, rate, duration);
    let achieved = run.sent as f64 / run.send_time.as_secs_f64();
    println!(
        "sflow_ingest: {} datagrams ({} flow samples) sent in {:.2} s ({achieved:.0}/s, target {rate}/s); \
         all received and billed, every address's bytes served, {:.0} ms after the last send; \
         ingest threads {:.2} CPU s ({:.1} µs per datagram)",
        run.sent,
        run.sent * FLOWS_PER_DATAGRAM as u64,
        run.send_time.as_secs_f64(),
        run.drain_time.as_secs_f64() * 1e3,
        run.receive_cpu,
        run.receive_cpu / run.sent as f64 * 1e6,
    );

    let (flows, runs) = if full { (2_000_000, 5) } else { (10_000, 1) };
    let (history_flows, took) = merge_cost(flows, &run.bucket_rows, runs);
    println!(
        "sflow_ingest: merging a closed bucket of {} rows into a settled history of {history_flows} flows \
         (FlowHistory::extended): {:.0} ms",
        run.bucket_rows.len(),
        took.as_secs_f64() * 1e3
    );

    let has_sfacctd = Command::new("sfacctd")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !full || !has_sfacctd {
        println!("sflow_ingest: sfacctd not run (full run with pmacct installed only)");
        return;
    }
    // At the target rate, then at a tenth of it.
    for rate in [RATE, RATE / 10] {
        let Some((sent, theirs, cpu, overflows)) = sfacctd_run(&fixture, rate, duration) else {
            println!("sflow_ingest: sfacctd could not be run");
            return;
        };
        let ours = expected(&fixture, sent);
        let equal = ours
            .iter()
            .filter(|(ip, b)| theirs.get(ip) == Some(b))
            .count();
        let ours_total: u64 = ours.values().sum();
        let theirs_total: u64 = theirs.values().sum();
        let worst = ours
            .iter()
            .map(|(ip, &b)| {
                let t = theirs.get(ip).copied().unwrap_or(0);
                (t as f64 - b as f64).abs() / b as f64
            })
            .fold(0.0f64, f64::max);
        println!(
            "sflow_ingest: sfacctd, {sent} datagrams at {rate}/s: {equal} of {} source addresses with equal \
             bytes, total {theirs_total} vs {ours_total} bytes ({:+.4} %), worst address {:.4} % off; \
             sfacctd processes {cpu:.2} CPU s ({:.1} µs per datagram); {overflows} datagrams dropped by \
             the kernel meanwhile (UDP receive buffer full)",
            ours.len(),
            (theirs_total as f64 / ours_total as f64 - 1.0) * 100.0,
            worst * 100.0,
            cpu / sent as f64 * 1e6,
        );
    }
}
