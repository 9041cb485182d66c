//! sFlow v5 for traffic billing: datagrams decoded into per-packet byte
//! estimates, datagrams read out of pcap/pcapng captures, zones of addresses,
//! and per-bucket aggregation (DESIGN §13).
//!
//! ```
//! use std::num::NonZeroU32;
//!
//! use sflow::{DatagramBuilder, DecodeSummary, Decoded, FlowAggregator, FlowSampleSpec, ZoneMap};
//! use time::macros::datetime;
//!
//! // An agent's datagram: two flow samples, one counter sample.
//! let mut builder = DatagramBuilder::new("192.0.2.254".parse()?).sequence_number(1);
//! builder
//!     .flow_sample(FlowSampleSpec::new("10.0.0.5".parse()?, "198.51.100.1".parse()?, 1500).sampling_rate(1000))
//!     .flow_sample(FlowSampleSpec::new("198.51.100.1".parse()?, "10.0.0.5".parse()?, 64).sampling_rate(1000))
//!     .counter_sample();
//! let bytes = builder.encode();
//!
//! // Decode, count, aggregate into 5-minute buckets with zones.
//! let outcome = sflow::decode(&bytes);
//! let mut summary = DecodeSummary::default();
//! summary.record(&outcome);
//! let zones = ZoneMap::parse("10.0.0.0/8,GUEST\n")?;
//! let mut aggregator = FlowAggregator::new(NonZeroU32::new(300).unwrap(), zones);
//! if let Ok(Decoded::Datagram(datagram)) = &outcome {
//!     aggregator.add_all(datetime!(2024-05-01 12:01 UTC), datagram.flows());
//! }
//! assert_eq!(summary.flow_samples_billed, 2);
//! assert_eq!(summary.counter_samples, 1);
//! assert_eq!(summary.bytes_billed, 1_564_000);
//! let rows: Vec<_> = aggregator.iter().collect();
//! assert_eq!(rows[0].source.to_string(), "10.0.0.5");
//! assert_eq!(rows[0].source_zone.as_str(), "GUEST");
//! assert_eq!(rows[0].destination_zone.as_str(), "EXTERNAL");
//! assert_eq!(rows[0].bytes, 1_500_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is billed
//!
//! Each flow sample (format 1) or expanded flow sample (format 3) stands for
//! `frame length × sampling rate` bytes from its packet's source address to
//! its destination address ([`FlowEstimate`]): the frame length of its raw
//! packet header record (format 1: Ethernet with 802.1Q/QinQ tags, or bare
//! IPv4/IPv6), else the length of its sampled IPv4/IPv6 record (formats
//! 3/4); a sample with both is billed once, from the header. Only the outer
//! IP header counts (a VXLAN packet is billed to its tunnel endpoints).
//! Counter samples, discarded-packet samples, flow samples without an IP
//! packet or with sampling rate 0, unknown formats and other versions are
//! skipped and counted ([`SampleCounts`], [`DecodeSummary`]); a malformed
//! datagram is an error naming its byte offset and is skipped whole. Nothing
//! panics on any input (fuzzed in the tests).
//!
//! This is the standard sFlow estimate, and the tests check it, per address,
//! against tshark's decode of every capture in the project's sFlow test data.
//!
//! # Why a decoder of our own (on `nom`)
//!
//! Billing needs one number per flow sample, a hard line between "skipped"
//! (counted) and "malformed" (the whole datagram dropped), and no panic or
//! unbounded allocation on hostile input. The sFlow crates on crates.io were
//! evaluated against this project's captures with a mutation fuzzer
//! (200,000 bit-flipped, truncated and length-corrupted datagrams each):
//!
//! - `flowparser-sflow` 0.3 (nom 7, serde): decodes every capture to a full
//!   tree of all samples and records, allocating per record, and returns
//!   the sampled header as bytes, so the IP addresses still need a packet
//!   parser. It reads several datagrams from one buffer, so trailing bytes
//!   are an error rather than ignored.
//! - `sflow-parser` 0.7: a `Read`-based parser building an owned tree;
//!   other versions are an error, indistinguishable from a malformed
//!   datagram without matching on message text.
//! - `sflow` 0.0.1: unmaintained since 2016.
//!
//! Neither of the first two gives the estimate, the skip reasons or byte
//! offsets; both would need the same walk over their tree that this crate
//! does over the bytes. The decoder here is about 300 lines of `nom`
//! combinators over the input slice (zero-copy: nothing is copied but the
//! estimates), and the sampled headers are sliced by `etherparse`.
//!
//! # Crates used
//!
//! - `nom` 8: the XDR structures of the datagram, with an error type that
//!   keeps the position of the fault.
//! - `etherparse`: Ethernet, VLAN, IPv4 and IPv6 headers of sampled packets
//!   and of captured packets, with its lax slicing that accepts headers cut
//!   short (sFlow keeps ~128 bytes of each packet).
//! - `pcap-parser`: pcap and pcapng, streaming (see [`CaptureReader`]).
//! - `ipnet`: the prefixes of a zones file.

mod aggregation;
mod capture;
mod datagram;
mod encoder;
mod error;
mod packet_header;
mod summary;
mod zone_map;

pub use aggregation::{AggregatedFlow, FlowAggregator};
pub use capture::{CaptureCounts, CaptureReader, CapturedDatagram, SFLOW_PORT};
pub use datagram::{Datagram, Decoded, FlowEstimate, SampleCounts, decode};
pub use encoder::{DatagramBuilder, FlowRecordKind, FlowSampleSpec};
pub use error::Error;
pub use summary::DecodeSummary;
pub use zone_map::{ZoneMap, ZoneName};
