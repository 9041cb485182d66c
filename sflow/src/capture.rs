//! sFlow datagrams read out of pcap and pcapng captures.
//!
//! The containers are read by `pcap-parser` (rusticata): both formats, either
//! byte order, pcapng with several sections and interfaces each of its own
//! link type and timestamp resolution, streaming from any `Read`, no unsafe
//! code, maintained. The packets are sliced by `etherparse`.

use std::io::Read;
use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError, create_reader};
use time::OffsetDateTime;

use crate::Error;

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
    /// Packets skipped: IP fragments. A datagram larger than the path MTU
    /// arrives in fragments; they are not reassembled (sFlow agents keep
    /// datagrams under the MTU, typically 1400 bytes, so fragments are rare).
    pub ip_fragments: u64,
    /// Packets skipped: UDP to the port, but captured shorter than the
    /// datagram (snap length) or with lengths that disagree.
    pub truncated: u64,
    /// Packets skipped: a link type other than Ethernet (1), raw IP (101,
    /// 228, 229) and Linux cooked capture v1 (113) and v2 (276), or a pcapng
    /// packet naming an interface that was not described.
    pub unsupported_link_type: u64,
    /// Packets skipped: pcapng simple packet blocks, which have no timestamp.
    pub no_timestamp: u64,
}

/// Link type and timestamp rule of one capture interface.
#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: Linktype,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    offset_seconds: i64,
}

/// Reads the sFlow datagrams (UDP payloads to a port) out of a pcap or
/// pcapng capture, as an iterator of [`CapturedDatagram`].
///
/// Link types: Ethernet (1, with 802.1Q/QinQ tags), raw IP (101, 228 IPv4,
/// 229 IPv6), Linux cooked capture v1 (113) and v2 (276); a pcapng capture
/// may mix interfaces of these. UDP over IPv4 or IPv6. Packets that are not
/// whole UDP datagrams to the port are skipped and counted in
/// [`CaptureReader::counts`]; IP fragments are skipped, not reassembled.
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
    /// Interfaces of the current pcapng section, or the one of a pcap file.
    interfaces: Vec<Interface>,
    counts: CaptureCounts,
    done: bool,
}

impl std::fmt::Debug for CaptureReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("port", &self.port)
            .field("interfaces", &self.interfaces)
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
            interfaces: Vec::new(),
            counts: CaptureCounts::default(),
            done: false,
        })
    }

    /// The UDP destination port of the datagrams. By default, 6343
    /// ([`SFLOW_PORT`]).
    pub fn port(self, port: u16) -> CaptureReader<'r> {
        CaptureReader { port, ..self }
    }

    /// What was read so far.
    pub fn counts(&self) -> CaptureCounts {
        self.counts
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
                    let found = on_block(block, self.port, &mut self.interfaces, &mut self.counts);
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
                Err(PcapError::Eof) => self.done = true,
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
    interfaces: &mut Vec<Interface>,
    counts: &mut CaptureCounts,
) -> Result<Option<CapturedDatagram>, Error> {
    let (interface, ticks, data, truncated) = match block {
        PcapBlockOwned::LegacyHeader(header) => {
            interfaces.clear();
            interfaces.push(Interface {
                linktype: header.network,
                resolution: if header.is_nanosecond_precision() {
                    1_000_000_000
                } else {
                    1_000_000
                },
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
            let ticks = u128::from(packet.ts_sec) * u128::from(interface.resolution)
                + u128::from(packet.ts_usec);
            let truncated = packet.caplen < packet.origlen;
            (interface, ticks, packet.data, truncated)
        }
        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
            interfaces.clear();
            return Ok(None);
        }
        PcapBlockOwned::NG(Block::InterfaceDescription(description)) => {
            interfaces.push(Interface {
                linktype: description.linktype,
                // An invalid resolution leaves the default, microseconds.
                resolution: description.ts_resolution().unwrap_or(1_000_000),
                offset_seconds: description.ts_offset(),
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

    let Some(sliced) = slice_packet(interface.linktype, data) else {
        counts.unsupported_link_type += 1;
        return Ok(None);
    };
    let exporter = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) if ip.is_payload_fragmented() => {
            counts.ip_fragments += 1;
            return Ok(None);
        }
        Some(LaxNetSlice::Ipv6(ip)) if ip.is_payload_fragmented() => {
            counts.ip_fragments += 1;
            return Ok(None);
        }
        Some(LaxNetSlice::Ipv4(ip)) => IpAddr::V4(ip.header().source_addr()),
        Some(LaxNetSlice::Ipv6(ip)) => IpAddr::V6(ip.header().source_addr()).to_canonical(),
        _ => {
            counts.not_udp_to_port += 1;
            return Ok(None);
        }
    };
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        counts.not_udp_to_port += 1;
        return Ok(None);
    };
    if udp.destination_port() != port {
        counts.not_udp_to_port += 1;
        return Ok(None);
    }
    // The UDP length field must be honoured by the bytes captured.
    if truncated || usize::from(udp.length()) != udp.slice().len() {
        counts.truncated += 1;
        return Ok(None);
    }
    let timestamp = timestamp_of(ticks, interface).ok_or(Error::TimestampOutOfRange {
        packet: counts.packets,
    })?;
    counts.datagrams += 1;
    Ok(Some(CapturedDatagram {
        timestamp,
        exporter,
        bytes: udp.payload().to_vec(),
    }))
}

/// The packet sliced from its link layer down, or `None` for an unsupported
/// link type or a link header that does not parse.
///
/// Linux cooked captures (<https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html>,
/// `LINKTYPE_LINUX_SLL2.html`): v1 has a 16-byte header whose last two
/// bytes are the protocol (an EtherType for IP); v2 a 20-byte header whose
/// first two bytes are.
fn slice_packet(linktype: Linktype, data: &[u8]) -> Option<LaxSlicedPacket<'_>> {
    let cooked = |protocol_at: usize, header_len: usize| {
        let protocol = data.get(protocol_at..protocol_at + 2)?;
        let payload = data.get(header_len..)?;
        let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
        Some(LaxSlicedPacket::from_ether_type(ether_type, payload))
    };
    match linktype {
        Linktype::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok(),
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => LaxSlicedPacket::from_ip(data).ok(),
        Linktype::LINUX_SLL => cooked(14, 16),
        Linktype::LINUX_SLL2 => cooked(0, 20),
        _ => None,
    }
}

/// `ticks` timestamp units since the epoch (plus the interface's offset), as
/// a UTC date-time; `None` out of range.
fn timestamp_of(ticks: u128, interface: Interface) -> Option<OffsetDateTime> {
    let resolution = u128::from(interface.resolution.max(1));
    let seconds = i128::try_from(ticks / resolution).ok()? + i128::from(interface.offset_seconds);
    let nanos = i128::try_from(ticks % resolution * 1_000_000_000 / resolution).ok()?;
    let total = seconds.checked_mul(1_000_000_000)?.checked_add(nanos)?;
    OffsetDateTime::from_unix_timestamp_nanos(total).ok()
}
