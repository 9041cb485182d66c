//! The IP addresses of a sampled packet header (the bytes of a raw packet
//! header flow record), found with `etherparse`'s lax slicing.

use std::net::IpAddr;

use etherparse::{LaxNetSlice, LaxSlicedPacket};

/// sFlow v5 `header_protocol` of an Ethernet frame (ETHERNET-ISO88023).
pub(crate) const HEADER_PROTOCOL_ETHERNET: u32 = 1;
/// sFlow v5 `header_protocol` of a bare IPv4 packet.
pub(crate) const HEADER_PROTOCOL_IPV4: u32 = 11;
/// sFlow v5 `header_protocol` of a bare IPv6 packet.
pub(crate) const HEADER_PROTOCOL_IPV6: u32 = 12;

/// The `(source, destination)` of the outermost IPv4 or IPv6 header in a
/// sampled packet header, canonical (an IPv4-mapped IPv6 address becomes
/// IPv4); `None` when the header holds no IP packet.
///
/// `protocol` is the record's `header_protocol` (sFlow v5 §5.3, values from
/// the `header_protocol` enumeration): 1 is an Ethernet frame, possibly with
/// 802.1Q / QinQ tags (0x8100, 0x88a8, 0x9100; etherparse keeps up to three);
/// 11 and 12 a bare IP packet. Any other protocol holds no IP packet here.
///
/// Sampled headers are cut after ~128 bytes, so the packet is sliced laxly: a
/// length field that promises more than the bytes sampled is expected. Only the
/// outer IP header counts: a tunnel (VXLAN, IP in IP) is not descended into.
pub(crate) fn ip_pair(protocol: u32, header: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let sliced = match protocol {
        HEADER_PROTOCOL_ETHERNET => LaxSlicedPacket::from_ethernet(header).ok()?,
        HEADER_PROTOCOL_IPV4 | HEADER_PROTOCOL_IPV6 => LaxSlicedPacket::from_ip(header).ok()?,
        _ => return None,
    };
    match sliced.net? {
        LaxNetSlice::Ipv4(ip) => {
            let header = ip.header();
            Some((
                IpAddr::V4(header.source_addr()),
                IpAddr::V4(header.destination_addr()),
            ))
        }
        LaxNetSlice::Ipv6(ip) => {
            let header = ip.header();
            Some((
                IpAddr::V6(header.source_addr()).to_canonical(),
                IpAddr::V6(header.destination_addr()).to_canonical(),
            ))
        }
        LaxNetSlice::Arp(_) => None,
    }
}
