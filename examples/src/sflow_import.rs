//! `sflow-import`: captures in, the flows CSV out (DESIGN §13).

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::num::NonZeroU32;
use std::path::Path;

use sflow::{
    CaptureCounts, CaptureReader, DecodeSummary, Decoded, FlowAggregator, ZoneMap, ZoneName,
};

use crate::cli::SflowImportArgs;
use crate::commands::write_stdout;
use crate::error::CliError;
use crate::units::format_time;

/// Reads every capture, aggregates its flow samples, writes the flows CSV
/// to standard output and a summary to standard error.
///
/// # Errors
///
/// [`CliError::BadValue`] or [`CliError::OpenInput`] for a bad zones file or
/// default zone, and [`CliError::BadValue`] for a per-bucket byte sum past
/// 2^64 − 1 (DESIGN §6: never capped), naming the capture, the packet, the
/// bucket and the addresses (exit 2, nothing written);
/// [`CliError::Captures`] when a file could not be read as a capture (the
/// flows of the others are still written); [`CliError::Stdout`].
pub(crate) fn run(args: &SflowImportArgs) -> Result<(), CliError> {
    let zones = zone_map(args.zones.as_deref(), &args.default_zone)?;
    // The emulator's rule: buckets that divide a day, so that they tile
    // every UTC day from midnight.
    usage_model::Grid::from_seconds(u64::from(args.granularity))
        .map_err(|e| CliError::BadValue(format!("--granularity: {e}")))?;
    let granularity = NonZeroU32::new(args.granularity)
        .ok_or_else(|| CliError::BadValue("--granularity must be positive".to_owned()))?;
    let mut aggregator = FlowAggregator::new(granularity, zones);
    let mut summary = DecodeSummary::default();
    let mut packets = CaptureCounts::default();
    let mut unreadable = Vec::new();
    for path in &args.pcap {
        let mut capture = Capture {
            path,
            aggregator: &mut aggregator,
            summary: &mut summary,
            packets: &mut packets,
        };
        match capture.import(args.port) {
            Ok(()) => {}
            Err(Failure::Unreadable(reason)) => {
                eprintln!("error: capture {}: {reason}", path.display());
                unreadable.push(path.display().to_string());
            }
            Err(Failure::Overflow(message)) => return Err(CliError::BadValue(message)),
        }
    }
    let mut csv = String::from("time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n");
    for row in aggregator.iter() {
        // Writing to a String cannot fail.
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{}",
            format_time(row.bucket_start),
            row.source,
            row.destination,
            row.source_zone.as_str(),
            row.destination_zone.as_str(),
            row.bytes
        );
    }
    write_stdout(csv.as_bytes())?;
    let skipped = summary.zero_sampling_rate
        + summary.no_ip_packet
        + summary.counter_samples
        + summary.discarded_packet_samples
        + summary.unknown_samples;
    eprintln!(
        "sflow-import: {} file(s), {} packet(s), {} datagram(s), {} flow sample(s) billed \
         ({} bytes), {skipped} sample(s) skipped ({} counter, {} discarded-packet, \
         {} without an IP packet, {} with sampling rate 0, {} of unknown format), \
         {} malformed datagram(s), {} of another version, {} datagram(s) reassembled from \
         {} IP fragment(s), {} packet(s) not read as a datagram ({} fragmented datagram(s) \
         incomplete, {} fragment(s) refused, {} truncated, {} with a bad timestamp, \
         {} of an unsupported link type, {} without a timestamp), {} flow row(s) written",
        args.pcap.len(),
        packets.packets,
        summary.datagrams,
        summary.flow_samples_billed,
        summary.bytes_billed,
        summary.counter_samples,
        summary.discarded_packet_samples,
        summary.no_ip_packet,
        summary.zero_sampling_rate,
        summary.unknown_samples,
        summary.malformed,
        summary.other_versions,
        packets.reassembled,
        packets.ip_fragments,
        packets.port_packets_skipped() + packets.unsupported_link_type + packets.no_timestamp,
        packets.incomplete_fragmented,
        packets.refused_fragments,
        packets.truncated,
        packets.bad_timestamp,
        packets.unsupported_link_type,
        packets.no_timestamp,
        aggregator.len()
    );
    if unreadable.is_empty() {
        Ok(())
    } else {
        Err(CliError::Captures(unreadable))
    }
}

/// Why a capture's import stopped.
enum Failure {
    /// The file cannot be read as a capture: the import goes on with the
    /// next file (what was read before stays added).
    Unreadable(String),
    /// A byte sum passed 2^64 − 1: the whole import fails.
    Overflow(String),
}

/// One capture being added to the flows of all.
struct Capture<'a> {
    path: &'a Path,
    aggregator: &'a mut FlowAggregator,
    summary: &'a mut DecodeSummary,
    packets: &'a mut CaptureCounts,
}

impl Capture<'_> {
    /// Adds the capture's datagrams to `--port`, warning on stderr of each
    /// malformed one by its packet number in the capture (as Wireshark
    /// numbers frames) and of packets to the port that could not be read.
    fn import(&mut self, port: u16) -> Result<(), Failure> {
        let path = self.path.display();
        let file = File::open(self.path).map_err(|e| Failure::Unreadable(e.to_string()))?;
        let mut reader = CaptureReader::new(BufReader::new(file))
            .map_err(|e| Failure::Unreadable(e.to_string()))?
            .port(port);
        let mut outcome = Ok(());
        for captured in reader.by_ref() {
            let captured = match captured {
                Ok(captured) => captured,
                Err(error) => {
                    outcome = Err(Failure::Unreadable(error.to_string()));
                    break;
                }
            };
            let decoded = sflow::decode(&captured.bytes);
            self.summary.record(&decoded);
            match decoded {
                Ok(Decoded::Datagram(datagram)) => self
                    .aggregator
                    .add_all(captured.timestamp, datagram.flows())
                    .map_err(|e| {
                        Failure::Overflow(format!(
                            "capture {path}: packet {}: {e}",
                            captured.packet
                        ))
                    })?,
                Ok(_) => {}
                // Counted and skipped whole; named where it is (DESIGN §13).
                Err(error) => eprintln!(
                    "warning: capture {path}: packet {}: sflow datagram skipped: {error}",
                    captured.packet
                ),
            }
        }
        let counts = reader.counts();
        if counts.port_packets_skipped() > 0 {
            eprintln!(
                "warning: capture {path}: {} packet(s) not read as sflow datagrams: \
                 {} fragmented datagram(s) incomplete, {} fragment(s) refused, {} truncated, \
                 {} with a bad timestamp",
                counts.port_packets_skipped(),
                counts.incomplete_fragmented,
                counts.refused_fragments,
                counts.truncated,
                counts.bad_timestamp
            );
        }
        *self.packets += counts;
        outcome
    }
}

/// The zone map of `--zones` (empty without it) with `--default-zone`.
pub(crate) fn zone_map(path: Option<&Path>, default_zone: &str) -> Result<ZoneMap, CliError> {
    let default_zone: ZoneName = default_zone
        .parse()
        .map_err(|e: sflow::Error| CliError::BadValue(format!("--default-zone: {e}")))?;
    let map = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| CliError::OpenInput {
                what: "zones",
                path: path.to_owned(),
                source,
            })?;
            ZoneMap::parse(&text)
                .map_err(|e| CliError::BadValue(format!("zones file {}: {e}", path.display())))?
        }
        None => ZoneMap::parse("").map_err(|e| CliError::BadValue(format!("zones: {e}")))?,
    };
    Ok(map.default_zone(default_zone))
}
