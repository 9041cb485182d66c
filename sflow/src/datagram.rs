//! sFlow v5 datagram decoding into flow estimates.
//!
//! The wire format is sFlow version 5 (<https://sflow.org/sflow_version_5.txt>):
//! XDR, big-endian 32-bit words, every opaque structure prefixed with its
//! length and padded to a multiple of 4 bytes. Discarded-packet samples are
//! enterprise 0, format 5 (<https://sflow.org/sflow_drops.txt>).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nom::IResult;
use nom::bytes::complete::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::be_u32;

use crate::Error;
use crate::packet_header::ip_pair;

/// sFlow v5 data format (`enterprise << 12 | format`) of a flow sample.
pub(crate) const FLOW_SAMPLE: u32 = 1;
/// Counter sample.
pub(crate) const COUNTER_SAMPLE: u32 = 2;
/// Expanded flow sample.
pub(crate) const EXPANDED_FLOW_SAMPLE: u32 = 3;
/// Expanded counter sample.
pub(crate) const EXPANDED_COUNTER_SAMPLE: u32 = 4;
/// Discarded-packet sample (sFlow drop notifications).
pub(crate) const DISCARDED_PACKET_SAMPLE: u32 = 5;
/// Flow record: raw packet header.
pub(crate) const RAW_PACKET_HEADER: u32 = 1;
/// Flow record: sampled IPv4.
pub(crate) const SAMPLED_IPV4: u32 = 3;
/// Flow record: sampled IPv6.
pub(crate) const SAMPLED_IPV6: u32 = 4;
/// Agent address type of IPv4.
pub(crate) const ADDRESS_IPV4: u32 = 1;
/// Agent address type of IPv6.
pub(crate) const ADDRESS_IPV6: u32 = 2;

/// One billed flow sample: a sampled packet from `source` to `destination`
/// standing for `frame_length × sampling_rate` bytes of traffic.
///
/// Addresses are canonical: an IPv4-mapped IPv6 address is given as IPv4.
/// They are those of the outer IP header (a VXLAN packet counts for its
/// tunnel endpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowEstimate {
    /// Source address of the sampled packet.
    pub source: IpAddr,
    /// Destination address of the sampled packet.
    pub destination: IpAddr,
    /// The packet's length in bytes as the sample reports it: the raw packet
    /// header record's frame length (layer 2, including the FCS), or the
    /// sampled IPv4/IPv6 record's IP packet length when the sample has no
    /// header record with an IP packet.
    pub frame_length: u32,
    /// One packet in `sampling_rate` was sampled; never 0 here.
    pub sampling_rate: u32,
}

impl FlowEstimate {
    /// The traffic this sample stands for, in bytes: `frame_length ×
    /// sampling_rate`. The product of two `u32` always fits a `u64`.
    ///
    /// # Example
    ///
    /// ```
    /// use sflow::FlowEstimate;
    ///
    /// let estimate = FlowEstimate {
    ///     source: "192.0.2.1".parse()?,
    ///     destination: "198.51.100.7".parse()?,
    ///     frame_length: 1518,
    ///     sampling_rate: 1024,
    /// };
    /// assert_eq!(estimate.bytes(), 1_554_432);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bytes(&self) -> u64 {
        u64::from(self.frame_length) * u64::from(self.sampling_rate)
    }
}

/// How the samples of one datagram were used: billed, or skipped and why.
///
/// Skipped samples are not errors. Counts are per datagram (`u32`, as the
/// datagram's own sample count is).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SampleCounts {
    /// Flow samples (formats 1 and 3) that gave a [`FlowEstimate`].
    pub flow_samples_billed: u32,
    /// Flow samples whose sampling rate is 0 (nothing to scale by).
    pub zero_sampling_rate: u32,
    /// Flow samples with no IP packet: no raw header record holding an IPv4
    /// or IPv6 packet and no sampled IPv4/IPv6 record (e.g. ARP, an unknown
    /// header protocol, or only extended records).
    pub no_ip_packet: u32,
    /// Counter samples and expanded counter samples (formats 2 and 4).
    pub counter_samples: u32,
    /// Discarded-packet samples (format 5): dropped packets are not traffic
    /// delivered.
    pub discarded_packet_samples: u32,
    /// Samples of another format or of an enterprise other than 0.
    pub unknown_samples: u32,
}

/// A decoded sFlow v5 datagram: its agent, sequence number and the flow
/// estimates of its flow samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    agent: IpAddr,
    sub_agent_id: u32,
    sequence_number: u32,
    uptime_ms: u32,
    flows: Vec<FlowEstimate>,
    samples: SampleCounts,
}

impl Datagram {
    /// The agent address (IPv4 or IPv6) that sent the datagram, canonical.
    pub fn agent(&self) -> IpAddr {
        self.agent
    }

    /// The sub-agent id within the agent.
    pub fn sub_agent_id(&self) -> u32 {
        self.sub_agent_id
    }

    /// The datagram sequence number (per agent and sub-agent).
    pub fn sequence_number(&self) -> u32 {
        self.sequence_number
    }

    /// The agent's uptime when it sent the datagram, in milliseconds.
    pub fn uptime_ms(&self) -> u32 {
        self.uptime_ms
    }

    /// One estimate per billed flow sample, in datagram order.
    pub fn flows(&self) -> &[FlowEstimate] {
        &self.flows
    }

    /// Takes the estimates, leaving none.
    pub fn into_flows(self) -> Vec<FlowEstimate> {
        self.flows
    }

    /// How this datagram's samples were used.
    pub fn samples(&self) -> SampleCounts {
        self.samples
    }
}

/// What a UDP payload holds: an sFlow v5 datagram, or a datagram of another
/// version, which is not decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decoded {
    /// An sFlow v5 datagram.
    Datagram(Datagram),
    /// The first 32-bit word is not 5: another sFlow version (2, 4), or
    /// another protocol sent to the port (NetFlow v5 reads as `0x0005xxxx`).
    OtherVersion {
        /// The first 32-bit word, big-endian.
        version: u32,
    },
}

/// Decodes one sFlow datagram (a UDP payload).
///
/// Flow samples (format 1) and expanded flow samples (format 3) give a
/// [`FlowEstimate`] each, from their first raw packet header record holding
/// an IP packet, else from their first sampled IPv4/IPv6 record; counter,
/// discarded-packet and unknown samples and records are skipped by their
/// length and counted in [`Datagram::samples`]. Bytes after the last sample
/// are ignored.
///
/// # Errors
///
/// [`Error::MalformedDatagram`], with the byte offset of the field at fault,
/// when the datagram is truncated, when a sample, record or header length
/// overruns the structure holding it, or when the agent address type is
/// neither IPv4 (1) nor IPv6 (2). The whole datagram is then to be skipped.
///
/// # Example
///
/// ```
/// use sflow::{DatagramBuilder, Decoded, FlowSampleSpec, decode};
///
/// let mut builder = DatagramBuilder::new("192.0.2.254".parse()?).sequence_number(7);
/// builder.flow_sample(
///     FlowSampleSpec::new("192.0.2.1".parse()?, "198.51.100.7".parse()?, 1500)
///         .sampling_rate(512),
/// );
/// let Decoded::Datagram(datagram) = decode(&builder.encode())? else {
///     unreachable!("an sFlow v5 datagram");
/// };
/// assert_eq!(datagram.sequence_number(), 7);
/// assert_eq!(datagram.flows()[0].bytes(), 1500 * 512);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode(bytes: &[u8]) -> Result<Decoded, Error> {
    match datagram(bytes) {
        Ok((_, decoded)) => Ok(decoded),
        Err(nom::Err::Error(fault) | nom::Err::Failure(fault)) => Err(Error::MalformedDatagram {
            offset: offset_in(bytes, fault.at),
            reason: fault.reason,
        }),
        // Only streaming parsers report `Incomplete`; these are all `complete`.
        Err(nom::Err::Incomplete(_)) => Err(Error::MalformedDatagram {
            offset: bytes.len(),
            reason: "truncated",
        }),
    }
}

/// The offset of `at` (a sub-slice of `base`) within `base`, clamped to
/// `base.len()`.
fn offset_in(base: &[u8], at: &[u8]) -> usize {
    (at.as_ptr() as usize)
        .checked_sub(base.as_ptr() as usize)
        .filter(|&offset| offset <= base.len())
        .unwrap_or(base.len())
}

/// A parse failure: where, and why.
#[derive(Debug)]
struct Fault<'a> {
    at: &'a [u8],
    reason: &'static str,
}

impl<'a> ParseError<&'a [u8]> for Fault<'a> {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        Fault {
            at: input,
            reason: "truncated",
        }
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type Parsed<'a, T> = IResult<&'a [u8], T, Fault<'a>>;

fn failure<'a, T>(at: &'a [u8], reason: &'static str) -> Parsed<'a, T> {
    Err(nom::Err::Failure(Fault { at, reason }))
}

/// A length-prefixed XDR opaque: the `u32` length, then that many bytes,
/// then padding to a multiple of 4 (tolerated when missing at the very end).
/// A length beyond the input fails at the length field with `overrun`.
fn opaque<'a>(input: &'a [u8], overrun: &'static str) -> Parsed<'a, &'a [u8]> {
    let (rest, length) = be_u32(input)?;
    let length = length as usize;
    if length > rest.len() {
        return failure(input, overrun);
    }
    let (rest, body) = take(length)(rest)?;
    let padding = (4 - length % 4) % 4;
    let (rest, _) = take(padding.min(rest.len()))(rest)?;
    Ok((rest, body))
}

fn datagram(input: &[u8]) -> Parsed<'_, Decoded> {
    let (rest, version) = be_u32(input)?;
    if version != 5 {
        return Ok((rest, Decoded::OtherVersion { version }));
    }
    let (rest, agent) = address(rest)?;
    let (rest, sub_agent_id) = be_u32(rest)?;
    let (rest, sequence_number) = be_u32(rest)?;
    let (rest, uptime_ms) = be_u32(rest)?;
    let (mut rest, count) = be_u32(rest)?;
    let mut flows = Vec::new();
    let mut samples = SampleCounts::default();
    for _ in 0..count {
        rest = sample(rest, &mut flows, &mut samples)?.0;
    }
    let datagram = Datagram {
        agent,
        sub_agent_id,
        sequence_number,
        uptime_ms,
        flows,
        samples,
    };
    Ok((rest, Decoded::Datagram(datagram)))
}

fn address(input: &[u8]) -> Parsed<'_, IpAddr> {
    let (rest, kind) = be_u32(input)?;
    match kind {
        ADDRESS_IPV4 => {
            let (rest, octets) = take(4usize)(rest)?;
            let octets: [u8; 4] = octets.try_into().unwrap_or_default();
            Ok((rest, IpAddr::V4(Ipv4Addr::from(octets))))
        }
        ADDRESS_IPV6 => {
            let (rest, octets) = take(16usize)(rest)?;
            let octets: [u8; 16] = octets.try_into().unwrap_or_default();
            Ok((rest, IpAddr::V6(Ipv6Addr::from(octets)).to_canonical()))
        }
        _ => failure(input, "agent address type is neither ipv4 (1) nor ipv6 (2)"),
    }
}

fn sample<'a>(
    input: &'a [u8],
    flows: &mut Vec<FlowEstimate>,
    samples: &mut SampleCounts,
) -> Parsed<'a, ()> {
    let (rest, format) = be_u32(input)?;
    let (rest, body) = opaque(rest, "sample length overruns datagram")?;
    match format {
        FLOW_SAMPLE | EXPANDED_FLOW_SAMPLE => {
            let (_, (sampling_rate, packet)) = flow_sample(body, format == EXPANDED_FLOW_SAMPLE)?;
            match packet {
                _ if sampling_rate == 0 => samples.zero_sampling_rate += 1,
                Some((source, destination, frame_length)) => {
                    flows.push(FlowEstimate {
                        source,
                        destination,
                        frame_length,
                        sampling_rate,
                    });
                    samples.flow_samples_billed += 1;
                }
                None => samples.no_ip_packet += 1,
            }
        }
        COUNTER_SAMPLE | EXPANDED_COUNTER_SAMPLE => samples.counter_samples += 1,
        DISCARDED_PACKET_SAMPLE => samples.discarded_packet_samples += 1,
        _ => samples.unknown_samples += 1,
    }
    Ok((rest, ()))
}

/// A sampled packet: `(source, destination, frame length)`.
type Packet = (IpAddr, IpAddr, u32);

/// A flow sample's sampling rate and its packet, `None` when no record holds
/// an IP packet.
fn flow_sample(input: &[u8], expanded: bool) -> Parsed<'_, (u32, Option<Packet>)> {
    // Compact: sequence number, source id, then the rate. Expanded: sequence
    // number, source id type, source id index, then the rate.
    let (rest, _) = take(if expanded { 12usize } else { 8 })(input)?;
    let (rest, sampling_rate) = be_u32(rest)?;
    // Sample pool, drops, then input and output: one word each, or a
    // (format, value) pair each when expanded.
    let (rest, _) = take(if expanded { 24usize } else { 16 })(rest)?;
    let (mut rest, count) = be_u32(rest)?;
    let mut from_header = None;
    let mut from_sampled_ip = None;
    for _ in 0..count {
        let (after, format) = be_u32(rest)?;
        let (after, body) = opaque(after, "flow record length overruns sample")?;
        match format {
            RAW_PACKET_HEADER => {
                let (_, found) = raw_packet_header(body)?;
                from_header = from_header.or(found);
            }
            SAMPLED_IPV4 => {
                let (_, found) = sampled_ip(body, 4)?;
                from_sampled_ip = from_sampled_ip.or(Some(found));
            }
            SAMPLED_IPV6 => {
                let (_, found) = sampled_ip(body, 16)?;
                from_sampled_ip = from_sampled_ip.or(Some(found));
            }
            _ => {}
        }
        rest = after;
    }
    Ok((rest, (sampling_rate, from_header.or(from_sampled_ip))))
}

/// `(source, destination, frame length)` of a raw packet header record, or
/// `None` when the header holds no IP packet.
fn raw_packet_header(input: &[u8]) -> Parsed<'_, Option<Packet>> {
    let (rest, protocol) = be_u32(input)?;
    let (rest, frame_length) = be_u32(rest)?;
    let (rest, _stripped) = be_u32(rest)?;
    let (rest, header) = opaque(rest, "header length overruns flow record")?;
    let found =
        ip_pair(protocol, header).map(|(source, destination)| (source, destination, frame_length));
    Ok((rest, found))
}

/// `(source, destination, length)` of a sampled IPv4 (`address_len` 4) or
/// IPv6 (16) record: length, protocol, source, destination, then source port,
/// destination port, TCP flags and TOS / priority (all read, to check the
/// record is whole).
fn sampled_ip(input: &[u8], address_len: usize) -> Parsed<'_, Packet> {
    let (rest, length) = be_u32(input)?;
    let (rest, _protocol) = be_u32(rest)?;
    let (rest, source) = take(address_len)(rest)?;
    let (rest, destination) = take(address_len)(rest)?;
    let (rest, _ports_flags_tos) = take(16usize)(rest)?;
    Ok((rest, (ip_from(source), ip_from(destination), length)))
}

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address, canonical.
fn ip_from(octets: &[u8]) -> IpAddr {
    match <[u8; 4]>::try_from(octets) {
        Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
        Err(_) => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(octets).unwrap_or_default(),
        ))
        .to_canonical(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Big-endian words.
    fn words(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// A datagram header from IPv4 agent 192.0.2.1 with `count` samples.
    fn header(count: u32) -> Vec<u8> {
        words(&[5, ADDRESS_IPV4, 0xc000_0201, 0, 77, 1000, count])
    }

    /// A sample of `format` holding `body`.
    fn sample(format: u32, body: &[u8]) -> Vec<u8> {
        let mut out = words(&[format, body.len() as u32]);
        out.extend_from_slice(body);
        out
    }

    /// A compact flow sample at `rate` holding `records`.
    fn flow_sample(rate: u32, records: &[Vec<u8>]) -> Vec<u8> {
        let mut body = words(&[1, 1, rate, 0, 0, 1, 2, records.len() as u32]);
        for record in records {
            body.extend_from_slice(record);
        }
        sample(FLOW_SAMPLE, &body)
    }

    fn sampled_ipv4(length: u32, source: [u8; 4], destination: [u8; 4]) -> Vec<u8> {
        let mut body = words(&[length, 17]);
        body.extend_from_slice(&source);
        body.extend_from_slice(&destination);
        body.extend_from_slice(&words(&[1, 2, 0, 0]));
        sample(SAMPLED_IPV4, &body)
    }

    fn raw_header(protocol: u32, frame_length: u32, header: &[u8]) -> Vec<u8> {
        let mut body = words(&[protocol, frame_length, 4, header.len() as u32]);
        body.extend_from_slice(header);
        body.resize(body.len().div_ceil(4) * 4, 0);
        sample(RAW_PACKET_HEADER, &body)
    }

    /// An Ethernet frame header with two VLAN tags (0x88a8 then 0x8100) and
    /// an IPv4 header from 10.0.0.1 to 10.0.0.2.
    fn qinq_ipv4_header() -> Vec<u8> {
        let mut frame = vec![
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00,
        ];
        frame.extend_from_slice(&[
            0x45, 0, 0x05, 0xdc, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        frame
    }

    fn decoded(bytes: &[u8]) -> Datagram {
        match decode(bytes) {
            Ok(Decoded::Datagram(datagram)) => datagram,
            other => panic!("expected a datagram, got {other:?}"),
        }
    }

    #[test]
    fn header_record_wins_over_sampled_ip_and_is_billed_once() {
        let mut bytes = header(1);
        bytes.extend(flow_sample(
            10,
            &[
                sampled_ipv4(999, [192, 0, 2, 9], [192, 0, 2, 8]),
                raw_header(1, 1518, &qinq_ipv4_header()),
            ],
        ));
        let datagram = decoded(&bytes);
        assert_eq!(datagram.agent(), IpAddr::from([192, 0, 2, 1]));
        assert_eq!(datagram.sequence_number(), 77);
        assert_eq!(
            datagram.flows(),
            [FlowEstimate {
                source: IpAddr::from([10, 0, 0, 1]),
                destination: IpAddr::from([10, 0, 0, 2]),
                frame_length: 1518,
                sampling_rate: 10,
            }]
        );
        assert_eq!(datagram.samples().flow_samples_billed, 1);
    }

    #[test]
    fn samples_skipped_by_reason() {
        let arp = [0xff; 6]
            .into_iter()
            .chain([2, 0, 0, 0, 0, 1, 0x08, 0x06])
            .chain([0; 28])
            .collect::<Vec<_>>();
        let mut bytes = header(7);
        bytes.extend(flow_sample(
            0,
            &[sampled_ipv4(100, [10, 0, 0, 1], [10, 0, 0, 2])],
        ));
        bytes.extend(flow_sample(5, &[raw_header(1, 64, &arp)]));
        bytes.extend(flow_sample(5, &[raw_header(2, 64, &qinq_ipv4_header())]));
        bytes.extend(sample(COUNTER_SAMPLE, &[0; 12]));
        bytes.extend(sample(DISCARDED_PACKET_SAMPLE, &[0; 8]));
        bytes.extend(sample(9 << 12 | FLOW_SAMPLE, &[0; 4]));
        bytes.extend(sample(42, &[]));
        let datagram = decoded(&bytes);
        assert!(datagram.flows().is_empty());
        let counts = datagram.samples();
        assert_eq!(counts.zero_sampling_rate, 1);
        assert_eq!(counts.no_ip_packet, 2);
        assert_eq!(counts.counter_samples, 1);
        assert_eq!(counts.discarded_packet_samples, 1);
        assert_eq!(counts.unknown_samples, 2);
    }

    #[test]
    fn ipv6_agent_other_versions_and_trailing_bytes() {
        let mut bytes = words(&[5, ADDRESS_IPV6]);
        bytes.extend_from_slice(&Ipv6Addr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]).octets());
        bytes.extend(words(&[0, 1, 2, 0, 0xdead]));
        assert_eq!(
            decoded(&bytes).agent(),
            "2001:db8::1".parse::<IpAddr>().expect("ip")
        );
        for version in [2, 4, 0x0005_0001] {
            assert_eq!(
                decode(&words(&[version])).ok(),
                Some(Decoded::OtherVersion { version })
            );
        }
    }

    #[test]
    fn malformed_datagrams_name_the_offset() {
        let overrun_sample = {
            let mut bytes = header(1);
            bytes.extend(words(&[FLOW_SAMPLE, 400, 0, 0]));
            bytes
        };
        let overrun_record = {
            let mut bytes = header(1);
            bytes.extend(sample(
                FLOW_SAMPLE,
                &words(&[1, 1, 1, 0, 0, 1, 2, 1, 3, 64, 0]),
            ));
            bytes
        };
        let overrun_header = {
            let mut bytes = header(1);
            let record = sample(RAW_PACKET_HEADER, &words(&[1, 64, 4, 128, 0]));
            bytes.extend(flow_sample(1, &[record]));
            bytes
        };
        let missing_sample = header(2);
        let cases: &[(&str, Vec<u8>, usize, &str)] = &[
            ("empty", vec![], 0, "truncated"),
            ("short version", vec![0, 0, 0], 0, "truncated"),
            ("agent type", words(&[5, 3, 0]), 4, "agent address type"),
            ("short agent", words(&[5, ADDRESS_IPV6, 0]), 8, "truncated"),
            (
                "sample length",
                overrun_sample,
                32,
                "sample length overruns datagram",
            ),
            (
                "record length",
                overrun_record,
                72,
                "flow record length overruns sample",
            ),
            (
                "header length",
                overrun_header,
                88,
                "header length overruns flow record",
            ),
            ("missing sample", missing_sample, 28, "truncated"),
        ];
        for (name, bytes, want_offset, want_reason) in cases {
            match decode(bytes) {
                Err(Error::MalformedDatagram { offset, reason }) => {
                    assert_eq!(offset, *want_offset, "{name}");
                    assert!(reason.contains(want_reason), "{name}: {reason}");
                }
                other => panic!("{name}: expected malformed, got {other:?}"),
            }
        }
    }
}
