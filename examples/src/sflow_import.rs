//! `sflow-import`: captures in, the flows CSV out (DESIGN §13).

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::num::NonZeroU32;
use std::path::Path;

use sflow::{CaptureReader, DecodeSummary, Decoded, FlowAggregator, ZoneMap, ZoneName};

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
/// default zone (exit 2, nothing written); [`CliError::Captures`] when a
/// file could not be read as a capture (the flows of the others are still
/// written); [`CliError::Stdout`].
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
    let mut unreadable = Vec::new();
    for path in &args.pcap {
        if let Err(reason) = import(path, args.port, &mut aggregator, &mut summary) {
            eprintln!("error: capture {}: {reason}", path.display());
            unreadable.push(path.display().to_string());
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
        "sflow-import: {} file(s), {} datagram(s), {} flow sample(s) billed ({} bytes), \
         {skipped} sample(s) skipped ({} counter, {} discarded-packet, {} without an IP packet, \
         {} with sampling rate 0, {} of unknown format), {} malformed datagram(s), \
         {} of another version, {} flow row(s) written",
        args.pcap.len(),
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
        aggregator.len()
    );
    if unreadable.is_empty() {
        Ok(())
    } else {
        Err(CliError::Captures(unreadable))
    }
}

/// Adds the datagrams of one capture; the reason it cannot be read as a
/// capture, if so (what was read before stays added).
fn import(
    path: &Path,
    port: u16,
    aggregator: &mut FlowAggregator,
    summary: &mut DecodeSummary,
) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = CaptureReader::new(BufReader::new(file))
        .map_err(|e| e.to_string())?
        .port(port);
    for (packet, captured) in reader.enumerate() {
        let captured = captured.map_err(|e| e.to_string())?;
        let outcome = sflow::decode(&captured.bytes);
        summary.record(&outcome);
        if let Err(error) = &outcome {
            // Counted and skipped whole; named where it is (DESIGN §13).
            eprintln!(
                "warning: capture {}: sflow datagram {} skipped: {error}",
                path.display(),
                packet + 1
            );
        }
        if let Ok(Decoded::Datagram(datagram)) = outcome {
            aggregator
                .add_all(captured.timestamp, datagram.flows())
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
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
