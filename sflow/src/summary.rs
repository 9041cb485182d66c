//! Counters over many decoded datagrams.

use std::ops::AddAssign;

use crate::{Decoded, Error};

/// What decoding a stream of datagrams gave: datagrams decoded, flow samples
/// and bytes billed, and everything skipped, by reason.
///
/// Accumulate with [`DecodeSummary::record`] (one decode outcome) or `+=`
/// (another summary). The byte sum is 128-bit, so no stream of datagrams
/// can pass it; every count saturates at `u64::MAX` rather than wrapping.
///
/// # Example
///
/// ```
/// use sflow::{DatagramBuilder, DecodeSummary, FlowSampleSpec, decode};
///
/// let mut builder = DatagramBuilder::new("192.0.2.254".parse()?);
/// builder
///     .flow_sample(FlowSampleSpec::new("192.0.2.1".parse()?, "192.0.2.2".parse()?, 100))
///     .counter_sample();
/// let mut summary = DecodeSummary::default();
/// summary.record(&decode(&builder.encode()));
/// summary.record(&decode(&[0, 0, 0, 5, 0]));
/// assert_eq!(summary.datagrams, 1);
/// assert_eq!(summary.malformed, 1);
/// assert_eq!(summary.flow_samples_billed, 1);
/// assert_eq!(summary.counter_samples, 1);
/// assert_eq!(summary.bytes_billed, 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeSummary {
    /// sFlow v5 datagrams decoded.
    pub datagrams: u64,
    /// Datagrams of another version (or protocol), not decoded.
    pub other_versions: u64,
    /// Malformed datagrams, skipped whole.
    pub malformed: u64,
    /// Flow samples that gave a flow estimate.
    pub flow_samples_billed: u64,
    /// Σ frame length × sampling rate over the billed flow samples, in bytes
    /// (128-bit: each flow sample gives at most 2^64 − 1, and a capture may
    /// hold more than one such).
    pub bytes_billed: u128,
    /// Flow samples skipped: sampling rate 0.
    pub zero_sampling_rate: u64,
    /// Flow samples skipped: no IP packet.
    pub no_ip_packet: u64,
    /// Counter samples skipped.
    pub counter_samples: u64,
    /// Discarded-packet samples skipped.
    pub discarded_packet_samples: u64,
    /// Samples of unknown format or enterprise skipped.
    pub unknown_samples: u64,
}

impl DecodeSummary {
    /// Counts one outcome of [`crate::decode`]: a decoded datagram (its
    /// samples and billed bytes), another version, or a malformed datagram
    /// (any error).
    pub fn record(&mut self, outcome: &Result<Decoded, Error>) {
        match outcome {
            Ok(Decoded::Datagram(datagram)) => {
                let samples = datagram.samples();
                let bytes = datagram
                    .flows()
                    .iter()
                    .map(|flow| u128::from(flow.bytes()))
                    .sum();
                *self += DecodeSummary {
                    datagrams: 1,
                    flow_samples_billed: samples.flow_samples_billed.into(),
                    bytes_billed: bytes,
                    zero_sampling_rate: samples.zero_sampling_rate.into(),
                    no_ip_packet: samples.no_ip_packet.into(),
                    counter_samples: samples.counter_samples.into(),
                    discarded_packet_samples: samples.discarded_packet_samples.into(),
                    unknown_samples: samples.unknown_samples.into(),
                    ..DecodeSummary::default()
                };
            }
            Ok(Decoded::OtherVersion { .. }) => {
                self.other_versions = self.other_versions.saturating_add(1);
            }
            Err(_) => self.malformed = self.malformed.saturating_add(1),
        }
    }
}

impl AddAssign for DecodeSummary {
    fn add_assign(&mut self, other: DecodeSummary) {
        let DecodeSummary {
            datagrams,
            other_versions,
            malformed,
            flow_samples_billed,
            bytes_billed,
            zero_sampling_rate,
            no_ip_packet,
            counter_samples,
            discarded_packet_samples,
            unknown_samples,
        } = other;
        self.datagrams = self.datagrams.saturating_add(datagrams);
        self.other_versions = self.other_versions.saturating_add(other_versions);
        self.malformed = self.malformed.saturating_add(malformed);
        self.flow_samples_billed = self.flow_samples_billed.saturating_add(flow_samples_billed);
        self.bytes_billed = self.bytes_billed.saturating_add(bytes_billed);
        self.zero_sampling_rate = self.zero_sampling_rate.saturating_add(zero_sampling_rate);
        self.no_ip_packet = self.no_ip_packet.saturating_add(no_ip_packet);
        self.counter_samples = self.counter_samples.saturating_add(counter_samples);
        self.discarded_packet_samples = self
            .discarded_packet_samples
            .saturating_add(discarded_packet_samples);
        self.unknown_samples = self.unknown_samples.saturating_add(unknown_samples);
    }
}
