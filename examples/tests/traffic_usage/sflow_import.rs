//! `sflow-import` over the real captures of the shared sFlow test data: the
//! flows CSV it writes sums, per capture, to the standard sFlow estimate
//! (Σ frame length × sampling rate) that tshark's decode gives.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use crate::support::binary;

/// `<repository root>/../shared/sflow`: the shared test data beside the
/// repository, never copied into it.
fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("sflow")
        .join(name)
}

fn import(args: &[&str]) -> Output {
    binary().arg("sflow-import").args(args).output().unwrap()
}

/// Bytes per source address in the CSV, and the total.
fn totals(csv: &str) -> (BTreeMap<String, u64>, u64) {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time,ipsource,ipdestination,sourcezone,destinationzone,bytes")
    );
    let mut by_source = BTreeMap::new();
    let mut total = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 6, "{line}");
        let bytes: u64 = fields[5].parse().unwrap();
        *by_source.entry(fields[1].to_owned()).or_default() += bytes;
        total += bytes;
    }
    (by_source, total)
}

/// Per capture: the total bytes and the number of distinct sources, from
/// tshark's decode of the capture (the `*.tshark-fields.txt` beside it,
/// checked field by field in the `sflow` crate's tests).
const CAPTURES: [(&str, u64, usize); 12] = [
    (
        "akvorado__outlet__flow__decoder__sflow__testdata__data-1140.pcap",
        5_178_368,
        3,
    ),
    (
        "akvorado__outlet__flow__decoder__sflow__testdata__data-encap-vxlan.pcap",
        172,
        1,
    ),
    (
        "akvorado__outlet__flow__decoder__sflow__testdata__data-icmpv6.pcap",
        90,
        1,
    ),
    (
        "akvorado__outlet__flow__decoder__sflow__testdata__data-qinq.pcap",
        434_176,
        1,
    ),
    (
        "akvorado__outlet__flow__decoder__sflow__testdata__data-sflow-expanded-sample.pcap",
        126_000,
        1,
    ),
    (
        "akvorado__outlet__flow__decoder__sflow__testdata__data-sflow-raw-ipv4.pcap",
        100,
        1,
    ),
    (
        "logstash-codec-sflow__spec__codecs__sflow_counters_sample.dat.wrapped.pcap",
        0,
        0,
    ),
    (
        "logstash-codec-sflow__spec__codecs__sflow_flow_sample.dat.wrapped.pcap",
        1_003_520,
        1,
    ),
    (
        "logstash-codec-sflow__spec__codecs__sflow_with_lag_counters.dat.wrapped.pcap",
        51_176_448,
        5,
    ),
    ("tcpdump__tests__sflow-print-v6.pcap", 1_454, 1),
    ("tcpdump__tests__sflow_multiple_counter_30_pdus.pcap", 0, 0),
    ("tcpdump__tests__sflow_print-segv.pcap", 0, 0),
];

#[test]
fn every_shared_capture_sums_to_the_tshark_estimate() {
    for (name, bytes, sources) in CAPTURES {
        let path = shared(name);
        let output = import(&["--pcap", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        let (by_source, total) = totals(&String::from_utf8(output.stdout).unwrap());
        assert_eq!(total, bytes, "{name}");
        assert_eq!(by_source.len(), sources, "{name}: {by_source:?}");
        assert!(
            stderr
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("sflow-import: 1 file(s)")),
            "{name}: {stderr}"
        );
    }
    // Counted, not billed: counter samples, other versions, a malformed datagram.
    let summary = |name: &str| {
        let output = import(&["--pcap", shared(name).to_str().unwrap()]);
        String::from_utf8(output.stderr).unwrap()
    };
    assert!(summary(CAPTURES[10].0).contains("144 counter"));
    assert!(summary(CAPTURES[10].0).contains("5 of another version"));
    assert!(summary(CAPTURES[11].0).contains("1 malformed datagram(s)"));
    // The malformed datagram is named by its packet and byte offset.
    let warning = summary(CAPTURES[11].0);
    let warning = warning.lines().next().unwrap_or("");
    assert!(
        warning.starts_with("warning: capture ")
            && warning
                .contains(": packet 1: sflow datagram skipped: malformed sflow datagram at byte "),
        "{warning}"
    );
}

#[test]
fn several_captures_zones_and_granularity() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones.txt");
    std::fs::write(
        &zones,
        "# the router's addresses\n192.168.0.0/16,CLOUD\n\n2a0c:8880::/32,CLOUD6\n",
    )
    .unwrap();
    let (a, b) = (shared(CAPTURES[0].0), shared(CAPTURES[8].0));
    let output = import(&[
        "--pcap",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--zones",
        zones.to_str().unwrap(),
        "--granularity",
        "3600",
    ]);
    assert!(output.status.success());
    let csv = String::from_utf8(output.stdout).unwrap();
    let (_, total) = totals(&csv);
    assert_eq!(total, 5_178_368 + 51_176_448);
    assert!(csv.contains(",CLOUD6,CLOUD6,"), "{csv}");
    assert!(
        csv.contains(",192.168.6.12,192.168.6.9,CLOUD,CLOUD,"),
        "{csv}"
    );
    assert!(csv.lines().skip(1).all(|l| l[13..19] == *":00:00"), "{csv}");

    // A bad zones line is named; nothing is written.
    std::fs::write(&zones, "10.0.0.0/8,OK\n10.0.0.0/33,BAD\n").unwrap();
    let output = import(&[
        "--pcap",
        a.to_str().unwrap(),
        "--zones",
        zones.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2"));
    assert!(output.stdout.is_empty());
}

#[test]
fn a_file_that_is_not_a_capture_exits_1_and_the_others_still_count() {
    let good = shared(CAPTURES[1].0);
    let raw = shared("logstash-codec-sflow__spec__codecs__sflow_flow_sample.dat");
    let output = import(&[
        "--pcap",
        raw.to_str().unwrap(),
        good.to_str().unwrap(),
        "/nonexistent/capture.pcap",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("2 capture(s) could not be read"),
        "{stderr}"
    );
    let (_, total) = totals(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(total, 172);
}

/// A raw-IP (link type 101) pcap of UDP packets to port 6343 from
/// 192.0.2.1, each `(seconds, payload, more fragments follow)`.
fn raw_ip_pcap(packets: &[(u32, Vec<u8>, bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65535, 101] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (seconds, payload, more_fragments) in packets {
        let udp_len = 8 + payload.len() as u16;
        let total = 20 + udp_len;
        let mut packet = vec![0x45, 0];
        packet.extend_from_slice(&total.to_be_bytes());
        packet.extend_from_slice(&[0, 1, if *more_fragments { 0x20 } else { 0 }, 0]);
        packet.extend_from_slice(&[64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        packet.extend_from_slice(&40000u16.to_be_bytes());
        packet.extend_from_slice(&6343u16.to_be_bytes());
        packet.extend_from_slice(&udp_len.to_be_bytes());
        packet.extend_from_slice(&[0, 0]);
        packet.extend_from_slice(payload);
        let len = packet.len() as u32;
        for word in [*seconds, 0, len, len] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&packet);
    }
    out
}

/// An sFlow datagram of `samples` flow samples from 10.7.0.1 to
/// 10.7.0.2, each of `frame_length` bytes at `rate`.
fn datagram(samples: usize, frame_length: u32, rate: u32) -> Vec<u8> {
    let mut builder = sflow::DatagramBuilder::new("192.0.2.1".parse().unwrap());
    for _ in 0..samples {
        builder.flow_sample(
            sflow::FlowSampleSpec::new(
                "10.7.0.1".parse().unwrap(),
                "10.7.0.2".parse().unwrap(),
                frame_length,
            )
            .sampling_rate(rate),
        );
    }
    builder.encode()
}

/// A per-bucket byte sum past 2^64 − 1 is an error naming the capture, the
/// packet, the bucket and the addresses, and nothing is written (DESIGN §6:
/// never capped); the same bytes in two buckets are written.
#[test]
fn a_byte_sum_past_64_bits_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("big.pcap");
    let max = datagram(1, u32::MAX, u32::MAX);
    let write = |packets: &[(u32, Vec<u8>, bool)]| {
        std::fs::write(&capture, raw_ip_pcap(packets)).unwrap();
        import(&["--pcap", capture.to_str().unwrap()])
    };
    let output = write(&[
        (1_767_225_600, max.clone(), false),
        (1_767_225_900, max.clone(), false),
    ]);
    assert!(output.status.success());
    let csv = String::from_utf8(output.stdout).unwrap();
    let bytes: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next())
        .collect();
    let one = (u64::from(u32::MAX) * u64::from(u32::MAX)).to_string();
    assert_eq!(bytes, [one.as_str(), one.as_str()], "{csv}");

    let output = write(&[
        (1_767_225_600, datagram(1, 100, 1), false),
        (1_767_225_600, max.clone(), false),
        (1_767_225_601, max.clone(), false),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("big.pcap: packet 3: ")
            && stderr.contains("10.7.0.1")
            && stderr.contains("10.7.0.2")
            && stderr.contains("2026-01-01T00:00:00Z"),
        "{stderr}"
    );
}

/// A packet to the port that cannot be read as a datagram (here an IP
/// fragment that reassembly refuses: more fragments follow, but its length
/// is not a multiple of 8) is warned of and counted in the summary; the
/// rest of the capture is read. (Reassembly itself: `sflow`'s capture
/// tests.)
#[test]
fn fragments_are_warned_of_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("fragments.pcap");
    std::fs::write(
        &capture,
        raw_ip_pcap(&[
            (1_767_225_600, datagram(2, 1000, 10), true),
            (1_767_225_601, datagram(1, 500, 2), false),
        ]),
    )
    .unwrap();
    let output = import(&["--pcap", capture.to_str().unwrap()]);
    assert!(output.status.success());
    let (_, total) = totals(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(total, 1000);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "fragments.pcap: 1 packet(s) not read as sflow datagrams: 0 fragmented \
             datagram(s) incomplete, 1 fragment(s) refused, 0 truncated, 0 with a bad timestamp"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 packet(s), 1 datagram(s)")
            && stderr.contains("0 datagram(s) reassembled from 1 IP fragment(s)")
            && stderr.contains(
                "1 packet(s) not read as a datagram (0 fragmented datagram(s) incomplete, 1 fragment(s) refused"
            ),
        "{stderr}"
    );
}
