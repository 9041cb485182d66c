//! Every shared capture against tshark's decode of it: per-address totals
//! (bytes by source, bytes by destination), billed samples, counter samples,
//! other versions and malformed datagrams.
//!
//! tshark's `-T fields` output lists each field once per datagram, its
//! occurrences comma-separated in sample order; `ip.*` and `ipv6.*` hold the
//! capture's own IP header first, then every IP header tshark found inside
//! sampled packet headers (tunnelled inner headers too), each family in its
//! own column. Which sampled header an IP header belongs to is rebuilt by
//! [`assign`]; the estimate is then Σ frame length × sampling rate per
//! flow sample with an IP packet, on its outer header, independently of the
//! decoder under test.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use sflow::{CaptureReader, DecodeSummary, Decoded, decode};

use crate::shared::{capture_names, read};

/// Per-address byte totals: by source, by destination.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Totals {
    by_source: BTreeMap<IpAddr, u64>,
    by_destination: BTreeMap<IpAddr, u64>,
}

impl Totals {
    fn add(&mut self, source: IpAddr, destination: IpAddr, bytes: u64) {
        *self.by_source.entry(source.to_canonical()).or_default() += bytes;
        *self
            .by_destination
            .entry(destination.to_canonical())
            .or_default() += bytes;
    }

    fn total(&self) -> u128 {
        self.by_source.values().map(|&b| u128::from(b)).sum()
    }
}

/// What the decoder must find in a capture, from tshark.
#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    totals: Totals,
    datagrams: u64,
    other_versions: u64,
    malformed: u64,
    flow_samples_billed: u64,
    counter_samples: u64,
}

/// One IP header tshark shows: source, destination, total length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpHeader {
    source: IpAddr,
    destination: IpAddr,
    total_length: u64,
}

/// A raw packet header record: header protocol and frame length.
#[derive(Debug, Clone, Copy)]
struct HeaderRecord {
    protocol: u32,
    frame_length: u64,
}

/// One tshark row: field name → its comma-separated occurrences.
struct Row<'a>(HashMap<&'a str, Vec<&'a str>>);

impl<'a> Row<'a> {
    fn all(&self, field: &str) -> &[&'a str] {
        self.0.get(field).map(Vec::as_slice).unwrap_or(&[])
    }

    fn numbers(&self, field: &str) -> Vec<u64> {
        self.all(field)
            .iter()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{field}: {v:?} is not a number"))
            })
            .collect()
    }

    fn addresses(&self, field: &str) -> Vec<IpAddr> {
        self.all(field)
            .iter()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{field}: {v:?} is not an address"))
            })
            .collect()
    }

    fn ip_headers(&self, prefix: &str, length_field: &str, fixed: u64) -> Vec<IpHeader> {
        let sources = self.addresses(&format!("{prefix}.src"));
        let destinations = self.addresses(&format!("{prefix}.dst"));
        let lengths = self.numbers(length_field);
        assert_eq!(sources.len(), destinations.len());
        assert_eq!(sources.len(), lengths.len());
        (0..sources.len())
            .map(|i| IpHeader {
                source: sources[i],
                destination: destinations[i],
                total_length: lengths[i] + fixed,
            })
            .collect()
    }
}

/// The rows of a tshark fields file: a comment line, the column names
/// (tab-separated), then one row per frame.
fn rows(text: &str) -> Vec<Row<'_>> {
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let columns: Vec<&str> = lines.next().expect("a header line").split('\t').collect();
    assert!(
        columns.contains(&"sflow_245.header.frame_length"),
        "unexpected columns"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let values = line.split('\t');
            Row(columns
                .iter()
                .zip(values)
                .map(|(&c, v)| (c, v.split(',').filter(|s| !s.is_empty()).collect()))
                .collect())
        })
        .collect()
}

/// Assigns tshark's sampled IP headers to the raw packet header records, in
/// order: each record takes one outer header (IPv4 for protocol 11, IPv6 for
/// 12, either for Ethernet, never longer than the frame) or none, then any
/// inner headers, each shorter than its outer one. Every header must be
/// used. Among the assignments giving an outer header to the most records,
/// all must bill the same; it is returned.
fn assign(records: &[HeaderRecord], v4: &[IpHeader], v6: &[IpHeader]) -> Vec<Option<IpHeader>> {
    fn search(
        records: &[HeaderRecord],
        v4: &[IpHeader],
        v6: &[IpHeader],
        chosen: &mut Vec<Option<IpHeader>>,
        found: &mut Vec<Vec<Option<IpHeader>>>,
    ) {
        let Some((record, rest)) = records.split_first() else {
            if v4.is_empty() && v6.is_empty() {
                found.push(chosen.clone());
            }
            return;
        };
        chosen.push(None);
        search(rest, v4, v6, chosen, found);
        chosen.pop();
        let fits = |h: &IpHeader| h.total_length <= record.frame_length;
        if matches!(record.protocol, 1 | 11)
            && let Some((outer, v4_rest)) = v4.split_first()
            && fits(outer)
        {
            inner(*outer, rest, v4_rest, v6, chosen, found);
        }
        if matches!(record.protocol, 1 | 12)
            && let Some((outer, v6_rest)) = v6.split_first()
            && fits(outer)
        {
            inner(*outer, rest, v4, v6_rest, chosen, found);
        }
    }

    /// With `outer` chosen: take 0 or more inner headers, then go on.
    fn inner(
        outer: IpHeader,
        records: &[HeaderRecord],
        v4: &[IpHeader],
        v6: &[IpHeader],
        chosen: &mut Vec<Option<IpHeader>>,
        found: &mut Vec<Vec<Option<IpHeader>>>,
    ) {
        chosen.push(Some(outer));
        search(records, v4, v6, chosen, found);
        chosen.pop();
        let shorter = |h: &IpHeader| h.total_length < outer.total_length;
        if let Some((head, v4_rest)) = v4.split_first()
            && shorter(head)
        {
            inner(outer, records, v4_rest, v6, chosen, found);
        }
        if let Some((head, v6_rest)) = v6.split_first()
            && shorter(head)
        {
            inner(outer, records, v4, v6_rest, chosen, found);
        }
    }

    let mut found = Vec::new();
    search(records, v4, v6, &mut Vec::new(), &mut found);
    let most = found
        .iter()
        .map(|a| a.iter().flatten().count())
        .max()
        .expect("an assignment");
    let best: Vec<_> = found
        .into_iter()
        .filter(|a| a.iter().flatten().count() == most)
        .collect();
    let billed = |a: &Vec<Option<IpHeader>>| -> Vec<_> {
        a.iter()
            .zip(records)
            .map(|(h, r)| h.map(|h| (h.source, h.destination, r.frame_length)))
            .collect()
    };
    assert!(
        best.iter().all(|a| billed(a) == billed(&best[0])),
        "ambiguous assignment of tshark's ip headers: {best:?}"
    );
    best.into_iter().next().expect("an assignment")
}

/// The expected outcome of a capture from its tshark fields file, with
/// `malformed_frames` (1-based) the frames the decoder rejects whole.
fn expected(text: &str, malformed_frames: &[u64]) -> Expected {
    let mut expected = Expected::default();
    for row in rows(text) {
        let frame = row.numbers("frame.number")[0];
        if row.all("sflow_245.version") != ["5"] {
            expected.other_versions += 1;
            continue;
        }
        if malformed_frames.contains(&frame) {
            expected.malformed += 1;
            continue;
        }
        expected.datagrams += 1;
        let sample_types = row.numbers("sflow_245.sampletype");
        expected.counter_samples +=
            sample_types.iter().filter(|&&t| t == 2 || t == 4).count() as u64;

        // The capture's own IP header comes first in its family's column.
        let frame_len = row.numbers("frame.len")[0];
        let mut v4 = row.ip_headers("ip", "ip.len", 0);
        let mut v6 = row.ip_headers("ipv6", "ipv6.plen", 40);
        if v4.first().is_some_and(|h| h.total_length + 14 == frame_len) {
            v4.remove(0);
        } else if v6.first().is_some_and(|h| h.total_length + 14 == frame_len) {
            v6.remove(0);
        } else {
            panic!(
                "frame {frame}: no capture ip header of {} bytes",
                frame_len - 14
            );
        }

        let rates = row.numbers("sflow.flow_sample.sampling_rate");
        let record_counts = row.numbers("sflow.flow_sample.flow_record");
        let formats = row.numbers("sflow_245.flow_record_format");
        let protocols = row.numbers("sflow_245.header_protocol");
        let frame_lengths = row.numbers("sflow_245.header.frame_length");
        let sampled_v4 = row.ip_headers("sflow_245.ipv4", "sflow_245.ip.length", 0);
        assert_eq!(rates.len(), record_counts.len());
        assert_eq!(protocols.len(), frame_lengths.len());
        let records: Vec<HeaderRecord> = protocols
            .iter()
            .zip(&frame_lengths)
            .map(|(&protocol, &frame_length)| HeaderRecord {
                protocol: protocol as u32,
                frame_length,
            })
            .collect();
        let outer = assign(&records, &v4, &v6);

        let (mut format_at, mut header_at, mut sampled_at) = (0, 0, 0);
        for (&rate, &count) in rates.iter().zip(&record_counts) {
            let mut from_header = None;
            let mut from_sampled = None;
            for &format in &formats[format_at..format_at + count as usize] {
                match format {
                    1 => {
                        if let Some(ip) = outer[header_at] {
                            from_header =
                                from_header.or(Some((ip, records[header_at].frame_length)));
                        }
                        header_at += 1;
                    }
                    3 => {
                        let ip = sampled_v4[sampled_at];
                        from_sampled = from_sampled.or(Some((ip, ip.total_length)));
                        sampled_at += 1;
                    }
                    4 => panic!("frame {frame}: sampled ipv6 records are not in the fields"),
                    _ => {}
                }
            }
            format_at += count as usize;
            if rate == 0 {
                continue;
            }
            if let Some((ip, length)) = from_header.or(from_sampled) {
                expected.flow_samples_billed += 1;
                expected
                    .totals
                    .add(ip.source, ip.destination, length * rate);
            }
        }
        assert_eq!(
            format_at,
            formats.len(),
            "frame {frame}: record formats left over"
        );
        assert_eq!(
            header_at,
            records.len(),
            "frame {frame}: header records left over"
        );
    }
    expected
}

/// What the decoder finds in `datagrams`.
fn decoded<'a>(datagrams: impl IntoIterator<Item = &'a [u8]>) -> Expected {
    let mut summary = DecodeSummary::default();
    let mut totals = Totals::default();
    for bytes in datagrams {
        let outcome = decode(bytes);
        summary.record(&outcome);
        if let Ok(Decoded::Datagram(datagram)) = outcome {
            for flow in datagram.flows() {
                totals.add(flow.source, flow.destination, flow.bytes());
            }
        }
    }
    assert_eq!(summary.bytes_billed, totals.total());
    Expected {
        totals,
        datagrams: summary.datagrams,
        other_versions: summary.other_versions,
        malformed: summary.malformed,
        flow_samples_billed: summary.flow_samples_billed,
        counter_samples: summary.counter_samples,
    }
}

fn datagrams_of_capture(name: &str) -> Vec<Vec<u8>> {
    let bytes = read(name);
    let mut reader = CaptureReader::new(bytes.as_slice()).expect("a capture");
    let datagrams: Vec<Vec<u8>> = reader
        .by_ref()
        .map(|d| d.unwrap_or_else(|e| panic!("{name}: {e}")).bytes)
        .collect();
    let counts = reader.counts();
    assert_eq!(
        counts.datagrams, counts.packets,
        "{name}: every packet is UDP to 6343"
    );
    datagrams
}

/// Per capture: the frames the decoder rejects whole (tshark marks them
/// malformed too), and the expected total bytes, which pins the oracle.
///
/// tshark also marks frames 12 and 18 of `sflow_multiple_counter_30_pdus`
/// malformed, inside counter records; counter samples are skipped by their
/// length, so those datagrams decode (their counter samples are counted).
const CAPTURES: &[(&str, &[u64], u64)] = &[
    ("data-1140.pcap", &[], 5_178_368),
    ("data-encap-vxlan.pcap", &[], 172),
    ("data-icmpv6.pcap", &[], 90),
    ("data-qinq.pcap", &[], 434_176),
    ("data-sflow-expanded-sample.pcap", &[], 126_000),
    ("data-sflow-raw-ipv4.pcap", &[], 100),
    ("sflow_counters_sample.dat", &[], 0),
    ("sflow_flow_sample.dat", &[], 1_003_520),
    ("sflow_with_lag_counters.dat", &[], 51_176_448),
    ("sflow-print-v6.pcap", &[], 1_454),
    ("sflow_multiple_counter_30_pdus.pcap", &[], 0),
    ("sflow_print-segv.pcap", &[1], 0),
];

#[test]
fn every_capture_matches_tshark() {
    let names = capture_names();
    let mut checked = 0;
    for name in &names {
        let fields_of = name.strip_suffix(".wrapped.pcap").unwrap_or(name);
        let (_, malformed_frames, total) = CAPTURES
            .iter()
            .find(|(suffix, _, _)| fields_of.ends_with(suffix))
            .unwrap_or_else(|| panic!("{name}: not in CAPTURES"));
        let text = String::from_utf8(read(&format!("{fields_of}.tshark-fields.txt")))
            .expect("utf-8 fields");
        let want = expected(&text, malformed_frames);
        let got = if name.ends_with(".dat") {
            decoded([read(name).as_slice()])
        } else {
            decoded(datagrams_of_capture(name).iter().map(Vec::as_slice))
        };
        assert_eq!(got, want, "{name}");
        assert_eq!(got.totals.total(), u128::from(*total), "{name}");
        checked += 1;
    }
    // 9 pcaps, 3 datagram files and their 3 wrapped pcaps.
    assert_eq!(checked, 15, "{names:?}");
}

#[test]
fn readme_example_total_of_data_1140() {
    let text = String::from_utf8(read(
        "akvorado__outlet__flow__decoder__sflow__testdata__data-1140.pcap.tshark-fields.txt",
    ))
    .expect("utf-8");
    let want = expected(&text, &[]);
    let source: IpAddr = "2a0c:8880:2:0:185:21:130:38".parse().expect("an address");
    assert_eq!(want.totals.by_source.get(&source), Some(&4_663_296));
    assert_eq!(want.totals.total(), 5_178_368);
}

#[test]
fn malformed_capture_names_an_offset_inside_the_datagram() {
    let datagrams = datagrams_of_capture("tcpdump__tests__sflow_print-segv.pcap");
    assert_eq!(datagrams.len(), 1);
    match decode(&datagrams[0]) {
        Err(sflow::Error::MalformedDatagram { offset, .. }) => {
            assert!(offset <= datagrams[0].len());
        }
        other => panic!("expected a malformed datagram, got {other:?}"),
    }
}
