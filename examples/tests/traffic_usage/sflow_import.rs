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
            && warning.contains(": sflow datagram 1 skipped: malformed sflow datagram at byte "),
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
