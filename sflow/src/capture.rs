//! sFlow datagrams read out of pcap and pcapng captures.
//!
//! The containers are read by `pcap-parser` (rusticata): both formats, either
//! byte order, pcapng with several sections and interfaces each of its own
//! link type and timestamp resolution, streaming from any `Read`, no unsafe
//! code, maintained. The packets are sliced by `etherparse`.

use std::io::Read;
use std::net::IpAddr;

use etherparse::{
    EtherType, IpNumber, LaxNetSlice, LaxSlicedPacket, SlicedPacket, TransportSlice, UdpSlice,
};
use pcap_parser::pcapng::{Block, PcapNGOption};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Linktype, OptionCode, PcapBlockOwned, PcapError, create_reader};
use time::OffsetDateTime;

use crate::Error;
use crate::fragments::Reassembly;

/// The UDP port sFlow is sent to by convention (IANA `sflow`).
pub const SFLOW_PORT: u16 = 6343;

/// First read buffer; grown (doubling) for larger blocks up to
/// [`MAX_BUFFER`].
const INITIAL_BUFFER: usize = 1 << 16;
/// No capture block may be larger than this (a corrupt length beyond it makes
/// the capture unreadable rather than exhausting memory).
const MAX_BUFFER: usize = 1 << 26;

/// One sFlow datagram found in a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedDatagram {
    /// The packet's 1-based number in the capture, counting every packet
    /// record or block as Wireshark numbers frames.
    pub packet: u64,
    /// When the packet was captured, UTC.
    pub timestamp: OffsetDateTime,
    /// The exporter: the source address of the UDP packet.
    pub exporter: IpAddr,
    /// The UDP payload, to give to [`crate::decode`].
    pub bytes: Vec<u8>,
}

/// What a capture held besides the datagrams it yielded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaptureCounts {
    /// Packets read (every packet block or record).
    pub packets: u64,
    /// Datagrams yielded: whole UDP payloads to the port.
    pub datagrams: u64,
    /// Packets skipped: not UDP over IPv4/IPv6 to the port (other protocols,
    /// other ports, non-IP frames, headers that do not parse).
    pub not_udp_to_port: u64,
    /// IP fragments read. A datagram larger than the path MTU arrives in
    /// fragments, which are reassembled as a collector's kernel would (see
    /// `reassembled`, `incomplete_fragmented` and `refused_fragments`).
    pub ip_fragments: u64,
    /// Datagrams reassembled from IP fragments (then yielded, or counted
    /// as any other packet).
    pub reassembled: u64,
    /// Fragmented datagrams skipped because a fragment was missing: by the
    /// end of the capture, or 1000 packets after their latest fragment.
    /// (Only a first fragment names a UDP port, so these count whatever
    /// port they were for.)
    pub incomplete_fragmented: u64,
    /// IP fragments skipped because reassembly refused them (a length not
    /// a multiple of 8 before the last fragment, ends that disagree, past
    /// 65,535 bytes, or headers that do not parse).
    pub refused_fragments: u64,
    /// Packets skipped: UDP to the port, but captured shorter than the
    /// datagram (snap length) or with lengths that disagree.
    pub truncated: u64,
    /// Packets skipped: a link type other than Ethernet (1), raw IP (101,
    /// 228, 229) and Linux cooked capture v1 (113) and v2 (276), or a pcapng
    /// packet naming an interface that was not described.
    pub unsupported_link_type: u64,
    /// Packets skipped: pcapng simple packet blocks, which have no timestamp.
    pub no_timestamp: u64,
    /// Packets skipped: UDP to the port, but with a timestamp that is out
    /// of the supported range (years −9999 to 9999) or in a pcapng
    /// interface's resolution finer than 10^-19 s or 2^-63 s.
    pub bad_timestamp: u64,
}

impl CaptureCounts {
    /// The packets to the port that were not yielded: fragmented datagrams
    /// incomplete, fragments refused, truncated packets and bad timestamps.
    /// (Fragments are counted whichever port they are for: only the first
    /// one names it.)
    pub fn port_packets_skipped(&self) -> u64 {
        self.incomplete_fragmented
            .saturating_add(self.refused_fragments)
            .saturating_add(self.truncated)
            .saturating_add(self.bad_timestamp)
    }
}

/// The counts of two captures (or of more, summed in turn); each
/// saturates at `u64::MAX` rather than wrapping.
impl std::ops::AddAssign for CaptureCounts {
    fn add_assign(&mut self, other: CaptureCounts) {
        let CaptureCounts {
            packets,
            datagrams,
            not_udp_to_port,
            ip_fragments,
            reassembled,
            incomplete_fragmented,
            refused_fragments,
            truncated,
            unsupported_link_type,
            no_timestamp,
            bad_timestamp,
        } = other;
        self.packets = self.packets.saturating_add(packets);
        self.datagrams = self.datagrams.saturating_add(datagrams);
        self.not_udp_to_port = self.not_udp_to_port.saturating_add(not_udp_to_port);
        self.ip_fragments = self.ip_fragments.saturating_add(ip_fragments);
        self.reassembled = self.reassembled.saturating_add(reassembled);
        self.incomplete_fragmented = self
            .incomplete_fragmented
            .saturating_add(incomplete_fragmented);
        self.refused_fragments = self.refused_fragments.saturating_add(refused_fragments);
        self.truncated = self.truncated.saturating_add(truncated);
        self.unsupported_link_type = self
            .unsupported_link_type
            .saturating_add(unsupported_link_type);
        self.no_timestamp = self.no_timestamp.saturating_add(no_timestamp);
        self.bad_timestamp = self.bad_timestamp.saturating_add(bad_timestamp);
    }
}

/// Link type and timestamp rule of one capture interface.
#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: Linktype,
    /// Timestamp units per second; `None` for a pcapng `if_tsresol` that
    /// does not fit 64 bits.
    resolution: Option<u64>,
    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    offset_seconds: i64,
}

/// What reading a capture keeps between packets: the interfaces of the
/// current pcapng section (or the one of a pcap file), and the fragmented
/// datagrams being reassembled.
#[derive(Debug, Default)]
struct Section {
    interfaces: Vec<Interface>,
    fragments: Reassembly,
    /// Whether a pcapng section is big-endian (its options are in its
    /// byte order).
    big_endian: bool,
}

/// Reads the sFlow datagrams (UDP payloads to a port) out of a pcap or
/// pcapng capture, as an iterator of [`CapturedDatagram`].
///
/// Link types: Ethernet (1, with 802.1Q/QinQ tags), raw IP (101, 228 IPv4,
/// 229 IPv6), Linux cooked capture v1 (113) and v2 (276); a pcapng capture
/// may mix interfaces of these. UDP over IPv4 or IPv6. Packets that are not
/// whole UDP datagrams to the port are skipped and counted in
/// [`CaptureReader::counts`]. A datagram sent in IP fragments is
/// reassembled, as a collector's kernel would, and yielded with the number
/// and time of the packet that completed it; one whose fragments do not all
/// arrive within 1000 packets is counted incomplete.
///
/// The iterator yields an error and then ends when the capture turns out
/// unreadable (truncated block, corrupt length, I/O error); datagrams yielded
/// before it stand.
///
/// # Example
///
/// ```
/// use sflow::CaptureReader;
///
/// // A pcap file header (little-endian, microseconds, Ethernet) and no packets.
/// let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
/// pcap.extend_from_slice(&[0; 8]);
/// pcap.extend_from_slice(&65535u32.to_le_bytes());
/// pcap.extend_from_slice(&1u32.to_le_bytes());
/// let mut reader = CaptureReader::new(pcap.as_slice())?.port(6343);
/// assert!(reader.next().is_none());
/// assert_eq!(reader.counts().packets, 0);
/// # Ok::<(), sflow::Error>(())
/// ```
pub struct CaptureReader<'r> {
    reader: Box<dyn PcapReaderIterator + Send + 'r>,
    port: u16,
    section: Section,
    counts: CaptureCounts,
    done: bool,
}

impl std::fmt::Debug for CaptureReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("port", &self.port)
            .field("section", &self.section)
            .field("counts", &self.counts)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'r> CaptureReader<'r> {
    /// A reader of the capture `input`, pcap or pcapng (told by its first
    /// block).
    ///
    /// # Errors
    ///
    /// [`Error::UnrecognizedCapture`] when `input` starts with neither a pcap
    /// file header nor a pcapng section header block (or is empty), or cannot
    /// be read.
    pub fn new<R: Read + Send + 'r>(input: R) -> Result<CaptureReader<'r>, Error> {
        let reader =
            create_reader(INITIAL_BUFFER, input).map_err(|_| Error::UnrecognizedCapture)?;
        Ok(CaptureReader {
            reader,
            port: SFLOW_PORT,
            section: Section::default(),
            counts: CaptureCounts::default(),
            done: false,
        })
    }

    /// The UDP destination port of the datagrams. By default, 6343
    /// ([`SFLOW_PORT`]).
    pub fn port(self, port: u16) -> CaptureReader<'r> {
        CaptureReader { port, ..self }
    }

    /// What was read so far. Fragmented datagrams still being reassembled
    /// count as incomplete only once the capture has ended.
    pub fn counts(&self) -> CaptureCounts {
        CaptureCounts {
            incomplete_fragmented: self.section.fragments.incomplete,
            refused_fragments: self.section.fragments.refused,
            ..self.counts
        }
    }

    fn unreadable(&mut self, reason: String) -> Option<Result<CapturedDatagram, Error>> {
        self.done = true;
        Some(Err(Error::UnreadableCapture {
            packets: self.counts.packets,
            offset: self.reader.consumed() as u64,
            reason,
        }))
    }
}

impl Iterator for CaptureReader<'_> {
    type Item = Result<CapturedDatagram, Error>;

    fn next(&mut self) -> Option<Result<CapturedDatagram, Error>> {
        let mut buffer_size = INITIAL_BUFFER;
        while !self.done {
            match self.reader.next() {
                Ok((length, block)) => {
                    let found = on_block(block, self.port, &mut self.section, &mut self.counts);
                    self.reader.consume(length);
                    match found {
                        Ok(Some(datagram)) => return Some(Ok(datagram)),
                        Ok(None) => {}
                        Err(error) => {
                            self.done = true;
                            return Some(Err(error));
                        }
                    }
                }
                Err(PcapError::Eof) => {
                    self.section.fragments.finish();
                    self.done = true;
                }
                Err(PcapError::Incomplete(_)) => {
                    let before = self.reader.data().len();
                    if let Err(error) = self.reader.refill() {
                        let reason = format!("read failed: {error:?}");
                        return self.unreadable(reason);
                    }
                    // A full buffer cannot be refilled: make room.
                    if self.reader.data().len() == before && !self.reader.reader_exhausted() {
                        buffer_size *= 2;
                        if buffer_size > MAX_BUFFER || !self.reader.grow(buffer_size) {
                            return self.unreadable("block larger than 64 MiB".to_owned());
                        }
                    }
                }
                Err(PcapError::BufferTooSmall) => {
                    buffer_size *= 2;
                    if buffer_size > MAX_BUFFER || !self.reader.grow(buffer_size) {
                        return self.unreadable("block larger than 64 MiB".to_owned());
                    }
                    if let Err(error) = self.reader.refill() {
                        let reason = format!("read failed: {error:?}");
                        return self.unreadable(reason);
                    }
                }
                Err(PcapError::UnexpectedEof) => {
                    return self.unreadable("truncated: the last block is incomplete".to_owned());
                }
                Err(error) => {
                    let reason = match error {
                        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                            format!("block does not parse ({kind:?})")
                        }
                        other => format!("{other:?}"),
                    };
                    return self.unreadable(reason);
                }
            }
        }
        None
    }
}

/// Handles one capture block: learns interfaces, or turns a packet into a
/// datagram (or a count).
fn on_block(
    block: PcapBlockOwned<'_>,
    port: u16,
    section: &mut Section,
    counts: &mut CaptureCounts,
) -> Result<Option<CapturedDatagram>, Error> {
    let interfaces = &mut section.interfaces;
    let (interface, ticks, data, truncated) = match block {
        PcapBlockOwned::LegacyHeader(header) => {
            interfaces.clear();
            interfaces.push(Interface {
                linktype: header.network,
                resolution: Some(if header.is_nanosecond_precision() {
                    1_000_000_000
                } else {
                    1_000_000
                }),
                offset_seconds: 0,
            });
            return Ok(None);
        }
        PcapBlockOwned::Legacy(packet) => {
            counts.packets += 1;
            let Some(&interface) = interfaces.first() else {
                counts.unsupported_link_type += 1;
                return Ok(None);
            };
            // Seconds and a fraction in the header's resolution.
            let ticks = u128::from(packet.ts_sec) * u128::from(interface.resolution.unwrap_or(1))
                + u128::from(packet.ts_usec);
            let truncated = packet.caplen < packet.origlen;
            (interface, ticks, packet.data, truncated)
        }
        PcapBlockOwned::NG(Block::SectionHeader(header)) => {
            interfaces.clear();
            section.big_endian = header.big_endian();
            return Ok(None);
        }
        PcapBlockOwned::NG(Block::InterfaceDescription(description)) => {
            // Read here rather than by `pcap-parser` 0.17's accessors, which
            // refuse every base-2 resolution and read the offset as
            // little-endian in either byte order.
            interfaces.push(Interface {
                linktype: description.linktype,
                resolution: resolution_of(description.if_tsresol),
                offset_seconds: offset_of(&description.options, section.big_endian),
            });
            return Ok(None);
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(packet)) => {
            counts.packets += 1;
            let Some(&interface) = usize::try_from(packet.if_id)
                .ok()
                .and_then(|id| interfaces.get(id))
            else {
                counts.unsupported_link_type += 1;
                return Ok(None);
            };
            let ticks = u128::from(packet.ts_high) << 32 | u128::from(packet.ts_low);
            let truncated = packet.caplen < packet.origlen;
            // The captured bytes, without the block's padding.
            let data = packet
                .data
                .get(..packet.caplen as usize)
                .unwrap_or(packet.data);
            (interface, ticks, data, truncated)
        }
        PcapBlockOwned::NG(Block::SimplePacket(_)) => {
            counts.packets += 1;
            counts.no_timestamp += 1;
            return Ok(None);
        }
        PcapBlockOwned::NG(_) => return Ok(None),
    };

    let Some(sliced) = link_payload(interface.linktype, data).and_then(LinkPayload::lax) else {
        counts.unsupported_link_type += 1;
        return Ok(None);
    };
    let (exporter, fragment) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            ip.is_payload_fragmented(),
        ),
        Some(LaxNetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()).to_canonical(),
            ip.is_payload_fragmented(),
        ),
        _ => {
            counts.not_udp_to_port += 1;
            return Ok(None);
        }
    };
    let to_port = ToPort {
        port,
        exporter,
        ticks,
        interface,
    };
    if fragment {
        counts.ip_fragments += 1;
        let Some(packet) = link_payload(interface.linktype, data).and_then(LinkPayload::strict)
        else {
            section.fragments.refused += 1;
            return Ok(None);
        };
        let Some(whole) = section.fragments.add(&packet, counts.packets) else {
            return Ok(None);
        };
        counts.reassembled += 1;
        let udp = (whole.protocol == IpNumber::UDP)
            .then(|| UdpSlice::from_slice(&whole.payload).ok())
            .flatten();
        return Ok(to_port.datagram(udp.as_ref(), false, counts));
    }
    let udp = match &sliced.transport {
        Some(TransportSlice::Udp(udp)) => Some(udp),
        _ => None,
    };
    Ok(to_port.datagram(udp, truncated, counts))
}

/// What makes a UDP packet a datagram of the capture: the port it must be
/// sent to, and the sender and time of the packet that carried it.
struct ToPort {
    port: u16,
    exporter: IpAddr,
    ticks: u128,
    interface: Interface,
}

impl ToPort {
    /// The datagram `udp` carries when it is whole and sent to the port,
    /// else `None`, counted.
    fn datagram(
        &self,
        udp: Option<&UdpSlice<'_>>,
        truncated: bool,
        counts: &mut CaptureCounts,
    ) -> Option<CapturedDatagram> {
        let Some(udp) = udp.filter(|udp| udp.destination_port() == self.port) else {
            counts.not_udp_to_port += 1;
            return None;
        };
        // The UDP length field must be honoured by the bytes captured.
        if truncated || usize::from(udp.length()) != udp.slice().len() {
            counts.truncated += 1;
            return None;
        }
        let Some(timestamp) = timestamp_of(self.ticks, self.interface) else {
            counts.bad_timestamp += 1;
            return None;
        };
        counts.datagrams += 1;
        Some(CapturedDatagram {
            packet: counts.packets,
            timestamp,
            exporter: self.exporter,
            bytes: udp.payload().to_vec(),
        })
    }
}

/// A packet's bytes by what its link layer starts with.
#[derive(Clone, Copy)]
enum LinkPayload<'a> {
    /// An Ethernet frame.
    Ethernet(&'a [u8]),
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// The payload of a Linux cooked header, of the EtherType it names.
    EtherType(EtherType, &'a [u8]),
}

impl<'a> LinkPayload<'a> {
    /// Sliced leniently (lengths that overrun the capture are cut, not
    /// refused), as packets are read.
    fn lax(self) -> Option<LaxSlicedPacket<'a>> {
        match self {
            LinkPayload::Ethernet(data) => LaxSlicedPacket::from_ethernet(data).ok(),
            LinkPayload::Ip(data) => LaxSlicedPacket::from_ip(data).ok(),
            LinkPayload::EtherType(ether_type, data) => {
                Some(LaxSlicedPacket::from_ether_type(ether_type, data))
            }
        }
    }

    /// Sliced strictly, as the reassembly of fragments takes them.
    fn strict(self) -> Option<SlicedPacket<'a>> {
        match self {
            LinkPayload::Ethernet(data) => SlicedPacket::from_ethernet(data).ok(),
            LinkPayload::Ip(data) => SlicedPacket::from_ip(data).ok(),
            LinkPayload::EtherType(ether_type, data) => {
                SlicedPacket::from_ether_type(ether_type, data).ok()
            }
        }
    }
}

/// The packet's bytes under its link type, or `None` for an unsupported
/// link type or a cooked header cut short.
///
/// Linux cooked captures (<https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html>,
/// `LINKTYPE_LINUX_SLL2.html`): v1 has a 16-byte header whose last two
/// bytes are the protocol (an EtherType for IP); v2 a 20-byte header whose
/// first two bytes are.
fn link_payload(linktype: Linktype, data: &[u8]) -> Option<LinkPayload<'_>> {
    let cooked = |protocol_at: usize, header_len: usize| {
        let protocol = data.get(protocol_at..protocol_at + 2)?;
        let payload = data.get(header_len..)?;
        let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
        Some(LinkPayload::EtherType(ether_type, payload))
    };
    match linktype {
        Linktype::ETHERNET => Some(LinkPayload::Ethernet(data)),
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => Some(LinkPayload::Ip(data)),
        Linktype::LINUX_SLL => cooked(14, 16),
        Linktype::LINUX_SLL2 => cooked(0, 20),
        _ => None,
    }
}

/// Units per second of a pcapng interface's `if_tsresol` (6, microseconds,
/// when the option is absent): with the most significant bit clear, units
/// of 10^-v s, set, 2^-(v & 0x7f) s (pcapng, draft-ietf-opsawg-pcapng
/// §4.2). `None` when that does not fit 64 bits.
fn resolution_of(if_tsresol: u8) -> Option<u64> {
    let exponent = u32::from(if_tsresol & 0x7f);
    if if_tsresol & 0x80 == 0 {
        10u64.checked_pow(exponent)
    } else {
        2u64.checked_pow(exponent)
    }
}

/// Seconds added to an interface's timestamps: its `if_tsoffset` option (a
/// signed 64-bit integer in the section's byte order), 0 when absent.
fn offset_of(options: &[PcapNGOption<'_>], big_endian: bool) -> i64 {
    options
        .iter()
        .find(|option| option.code == OptionCode::IfTsoffset)
        .and_then(|option| <[u8; 8]>::try_from(option.value.get(..8)?).ok())
        .map_or(0, |bytes| {
            if big_endian {
                i64::from_be_bytes(bytes)
            } else {
                i64::from_le_bytes(bytes)
            }
        })
}

/// `ticks` timestamp units since the epoch (plus the interface's offset), as
/// a UTC date-time; `None` out of range or for an interface whose resolution
/// does not fit.
fn timestamp_of(ticks: u128, interface: Interface) -> Option<OffsetDateTime> {
    let resolution = u128::from(interface.resolution?.max(1));
    let seconds = i128::try_from(ticks / resolution).ok()? + i128::from(interface.offset_seconds);
    let nanos = i128::try_from(ticks % resolution * 1_000_000_000 / resolution).ok()?;
    let total = seconds.checked_mul(1_000_000_000)?.checked_add(nanos)?;
    OffsetDateTime::from_unix_timestamp_nanos(total).ok()
}
