//! An sFlow v5 encoder, for tests and demonstrations: datagrams of flow
//! samples that [`crate::decode`] reads back.

use std::net::{IpAddr, Ipv6Addr};

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6Header, UdpHeader};

use crate::datagram::{
    ADDRESS_IPV4, ADDRESS_IPV6, COUNTER_SAMPLE, DISCARDED_PACKET_SAMPLE, EXPANDED_FLOW_SAMPLE,
    FLOW_SAMPLE, RAW_PACKET_HEADER, SAMPLED_IPV4, SAMPLED_IPV6,
};
use crate::packet_header::HEADER_PROTOCOL_ETHERNET;

/// The flow record that carries a sampled packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowRecordKind {
    /// A raw packet header record (format 1): an Ethernet frame header, an
    /// IPv4 or IPv6 header and a UDP header; the frame length is the
    /// record's frame length.
    #[default]
    RawPacketHeader,
    /// A sampled IPv4 (format 3) or sampled IPv6 (format 4) record; the frame
    /// length is the record's length field.
    SampledIp,
}

/// One flow sample to encode: a packet from `source` to `destination` of
/// `frame_length` bytes, sampled one in `sampling_rate`.
///
/// When both addresses are IPv4 the packet is IPv4; otherwise it is IPv6,
/// an IPv4 address written IPv4-mapped (`::ffff:a.b.c.d`), which the
/// decoder turns back into IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowSampleSpec {
    source: IpAddr,
    destination: IpAddr,
    frame_length: u32,
    sampling_rate: u32,
    record: FlowRecordKind,
    expanded: bool,
}

impl FlowSampleSpec {
    /// A sample of a packet from `source` to `destination`, `frame_length`
    /// bytes long.
    pub fn new(source: IpAddr, destination: IpAddr, frame_length: u32) -> FlowSampleSpec {
        FlowSampleSpec {
            source,
            destination,
            frame_length,
            sampling_rate: 1,
            record: FlowRecordKind::RawPacketHeader,
            expanded: false,
        }
    }

    /// One packet in `rate` is sampled. By default, 1. A rate of 0 encodes as
    /// given (the decoder skips such samples).
    pub fn sampling_rate(self, rate: u32) -> FlowSampleSpec {
        FlowSampleSpec {
            sampling_rate: rate,
            ..self
        }
    }

    /// The record carrying the packet. By default,
    /// [`FlowRecordKind::RawPacketHeader`].
    pub fn record(self, record: FlowRecordKind) -> FlowSampleSpec {
        FlowSampleSpec { record, ..self }
    }

    /// Whether to write an expanded flow sample (format 3) rather than a flow
    /// sample (format 1). By default, `false`.
    pub fn expanded(self, expanded: bool) -> FlowSampleSpec {
        FlowSampleSpec { expanded, ..self }
    }
}

/// Builds one sFlow v5 datagram.
///
/// # Example
///
/// ```
/// use sflow::{DatagramBuilder, FlowRecordKind, FlowSampleSpec};
///
/// let mut builder = DatagramBuilder::new("2001:db8::1".parse()?).sequence_number(42);
/// builder.flow_sample(
///     FlowSampleSpec::new("192.0.2.1".parse()?, "2001:db8::2".parse()?, 90)
///         .sampling_rate(4096)
///         .record(FlowRecordKind::SampledIp)
///         .expanded(true),
/// );
/// let bytes: Vec<u8> = builder.encode();
/// assert_eq!(&bytes[..4], &[0, 0, 0, 5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatagramBuilder {
    agent: IpAddr,
    sub_agent_id: u32,
    sequence_number: u32,
    uptime_ms: u32,
    sample_count: u32,
    samples: Vec<u8>,
}

impl DatagramBuilder {
    /// An empty datagram from `agent`.
    pub fn new(agent: IpAddr) -> DatagramBuilder {
        DatagramBuilder {
            agent,
            sub_agent_id: 0,
            sequence_number: 0,
            uptime_ms: 0,
            sample_count: 0,
            samples: Vec::new(),
        }
    }

    /// The sub-agent id. By default, 0.
    pub fn sub_agent_id(self, id: u32) -> DatagramBuilder {
        DatagramBuilder {
            sub_agent_id: id,
            ..self
        }
    }

    /// The datagram sequence number. By default, 0.
    pub fn sequence_number(self, sequence_number: u32) -> DatagramBuilder {
        DatagramBuilder {
            sequence_number,
            ..self
        }
    }

    /// The agent's uptime, in milliseconds. By default, 0.
    pub fn uptime_ms(self, uptime_ms: u32) -> DatagramBuilder {
        DatagramBuilder { uptime_ms, ..self }
    }

    /// Appends a flow sample (or expanded flow sample) with one record
    /// carrying the packet. Its sample sequence number is its position in
    /// the datagram.
    pub fn flow_sample(&mut self, spec: FlowSampleSpec) -> &mut DatagramBuilder {
        let mut record = Vec::with_capacity(96);
        match spec.record {
            FlowRecordKind::RawPacketHeader => {
                push_u32(&mut record, RAW_PACKET_HEADER);
                let header = packet_header(spec.source, spec.destination, spec.frame_length);
                let mut body = Vec::with_capacity(16 + header.len());
                push_u32(&mut body, HEADER_PROTOCOL_ETHERNET);
                push_u32(&mut body, spec.frame_length);
                push_u32(&mut body, 4); // the FCS, stripped
                push_opaque(&mut body, &header);
                push_opaque(&mut record, &body);
            }
            FlowRecordKind::SampledIp => {
                let mut body = Vec::with_capacity(56);
                push_u32(&mut body, spec.frame_length);
                push_u32(&mut body, u32::from(IpNumber::UDP.0));
                let format = match (spec.source, spec.destination) {
                    (IpAddr::V4(source), IpAddr::V4(destination)) => {
                        body.extend_from_slice(&source.octets());
                        body.extend_from_slice(&destination.octets());
                        SAMPLED_IPV4
                    }
                    (source, destination) => {
                        body.extend_from_slice(&ipv6_of(source).octets());
                        body.extend_from_slice(&ipv6_of(destination).octets());
                        SAMPLED_IPV6
                    }
                };
                for word in [49152, 6343, 0, 0] {
                    push_u32(&mut body, word); // ports, TCP flags, TOS
                }
                push_u32(&mut record, format);
                push_opaque(&mut record, &body);
            }
        }

        let sequence = self.sample_count;
        let mut sample = Vec::with_capacity(48 + record.len());
        push_u32(&mut sample, sequence);
        if spec.expanded {
            push_u32(&mut sample, 0); // source id type
            push_u32(&mut sample, 1); // source id index
        } else {
            push_u32(&mut sample, 1);
        }
        push_u32(&mut sample, spec.sampling_rate);
        push_u32(&mut sample, sequence.wrapping_mul(spec.sampling_rate)); // sample pool
        push_u32(&mut sample, 0); // drops
        let interfaces: &[u32] = if spec.expanded {
            &[0, 1, 0, 2]
        } else {
            &[1, 2]
        };
        for &word in interfaces {
            push_u32(&mut sample, word);
        }
        push_u32(&mut sample, 1); // one flow record
        sample.extend_from_slice(&record);

        let format = if spec.expanded {
            EXPANDED_FLOW_SAMPLE
        } else {
            FLOW_SAMPLE
        };
        self.push_sample(format, &sample)
    }

    /// Appends a counter sample holding one generic interface counters record
    /// (all zero). The decoder skips it and counts it.
    pub fn counter_sample(&mut self) -> &mut DatagramBuilder {
        let mut sample = Vec::with_capacity(8 + 8 + 88);
        push_u32(&mut sample, self.sample_count);
        push_u32(&mut sample, 1); // source id
        push_u32(&mut sample, 1); // one counter record
        push_u32(&mut sample, 1); // generic interface counters
        push_opaque(&mut sample, &[0; 88]);
        self.push_sample(COUNTER_SAMPLE, &sample)
    }

    /// Appends a discarded-packet sample (enterprise 0, format 5) with no
    /// records. The decoder skips it and counts it.
    pub fn discarded_packet_sample(&mut self) -> &mut DatagramBuilder {
        let mut sample = Vec::with_capacity(36);
        for word in [self.sample_count, 1, 0, 0, 0, 0, 0] {
            push_u32(&mut sample, word); // sequence, source, drops, in, out, reason
        }
        push_u32(&mut sample, 0); // no records
        self.push_sample(DISCARDED_PACKET_SAMPLE, &sample)
    }

    fn push_sample(&mut self, format: u32, sample: &[u8]) -> &mut DatagramBuilder {
        push_u32(&mut self.samples, format);
        push_opaque(&mut self.samples, sample);
        self.sample_count = self.sample_count.wrapping_add(1);
        self
    }

    /// The number of samples appended so far.
    pub fn sample_count(&self) -> u32 {
        self.sample_count
    }

    /// The datagram's bytes (a UDP payload).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(44 + self.samples.len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the datagram's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        push_u32(out, 5);
        match self.agent {
            IpAddr::V4(agent) => {
                push_u32(out, ADDRESS_IPV4);
                out.extend_from_slice(&agent.octets());
            }
            IpAddr::V6(agent) => {
                push_u32(out, ADDRESS_IPV6);
                out.extend_from_slice(&agent.octets());
            }
        }
        push_u32(out, self.sub_agent_id);
        push_u32(out, self.sequence_number);
        push_u32(out, self.uptime_ms);
        push_u32(out, self.sample_count);
        out.extend_from_slice(&self.samples);
    }
}

fn push_u32(out: &mut Vec<u8>, word: u32) {
    out.extend_from_slice(&word.to_be_bytes());
}

/// An XDR opaque: length, bytes, zero padding to a multiple of 4.
fn push_opaque(out: &mut Vec<u8>, bytes: &[u8]) {
    push_u32(out, u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(bytes);
    out.resize(out.len() + (4 - bytes.len() % 4) % 4, 0);
}

fn ipv6_of(address: IpAddr) -> Ipv6Addr {
    match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The sampled header of a UDP packet of `frame_length` bytes: Ethernet II,
/// IPv4 (or IPv6) and UDP headers, no payload. The IP and UDP length fields
/// say what the frame would hold after the 14-byte Ethernet header and the
/// 4-byte FCS, within their field's range.
fn packet_header(source: IpAddr, destination: IpAddr, frame_length: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(14 + 40 + 8);
    let ip_length = frame_length.saturating_sub(18);
    let (ether_type, ip_header_length) = match (source, destination) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (EtherType::IPV4, 20),
        _ => (EtherType::IPV6, 40),
    };
    let ethernet = Ethernet2Header {
        source: [0x02, 0, 0, 0, 0, 0x01],
        destination: [0x02, 0, 0, 0, 0, 0x02],
        ether_type,
    };
    header.extend_from_slice(&ethernet.to_bytes());
    let udp_length = ip_length
        .saturating_sub(ip_header_length)
        .clamp(8, 65_535 - 40);
    match (source, destination) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => {
            let mut ip = Ipv4Header {
                total_len: (udp_length + 20) as u16,
                time_to_live: 64,
                protocol: IpNumber::UDP,
                source: source.octets(),
                destination: destination.octets(),
                ..Ipv4Header::default()
            };
            ip.header_checksum = ip.calc_header_checksum();
            header.extend_from_slice(&ip.to_bytes());
        }
        (source, destination) => {
            let ip = Ipv6Header {
                payload_length: udp_length as u16,
                next_header: IpNumber::UDP,
                hop_limit: 64,
                source: ipv6_of(source).octets(),
                destination: ipv6_of(destination).octets(),
                ..Ipv6Header::default()
            };
            header.extend_from_slice(&ip.to_bytes());
        }
    }
    let udp = UdpHeader {
        source_port: 49152,
        destination_port: 6343,
        length: udp_length as u16,
        checksum: 0,
    };
    header.extend_from_slice(&udp.to_bytes());
    header
}
