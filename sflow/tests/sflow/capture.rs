//! Datagrams out of pcap and pcapng captures: link types, IPv4 and IPv6,
//! skipped packets, timestamps, unreadable captures.

use std::net::IpAddr;

use etherparse::{IpNumber, Ipv4Header, PacketBuilder};
use sflow::{CaptureReader, DatagramBuilder, Error, FlowSampleSpec};
use time::macros::datetime;

use crate::shared::{pcap, pcapng, read};

fn datagram(sequence: u32) -> Vec<u8> {
    let mut builder =
        DatagramBuilder::new("192.0.2.1".parse().expect("ip")).sequence_number(sequence);
    builder.flow_sample(FlowSampleSpec::new(
        "10.0.0.1".parse().expect("ip"),
        "10.0.0.2".parse().expect("ip"),
        100,
    ));
    builder.encode()
}

fn udp_over_ethernet_v4(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(40000, port)
        .write(&mut out, payload)
        .expect("written");
    out
}

fn udp_over_ipv6(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let source = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .expect("ip")
        .octets();
    let destination = "2001:db8::2"
        .parse::<std::net::Ipv6Addr>()
        .expect("ip")
        .octets();
    PacketBuilder::ipv6(source, destination, 64)
        .udp(40000, port)
        .write(&mut out, payload)
        .expect("written");
    out
}

fn tcp_over_ethernet() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .tcp(40000, 6343, 1, 1000)
        .write(&mut out, b"not udp")
        .expect("written");
    out
}

/// The first fragment of a UDP datagram to 6343 (more fragments follow).
fn first_fragment(payload: &[u8]) -> Vec<u8> {
    let mut udp = Vec::new();
    PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(40000, 6343)
        .write(&mut udp, payload)
        .expect("written");
    let (header, rest) = Ipv4Header::from_slice(&udp).expect("an ipv4 header");
    let mut header = header;
    header.more_fragments = true;
    header.protocol = IpNumber::UDP;
    header.header_checksum = header.calc_header_checksum();
    let mut out = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(rest);
    out
}

/// A Linux cooked v2 header (20 bytes) for an IPv6 packet.
fn sll2(packet: &[u8]) -> Vec<u8> {
    let mut out = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    out.extend_from_slice(packet);
    out
}

/// A Linux cooked v1 header (16 bytes) for an IPv4 packet.
fn sll(packet: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    out.extend_from_slice(packet);
    out
}

#[test]
fn pcapng_with_interfaces_of_several_link_types() {
    let ipv4_packet = &udp_over_ethernet_v4(6343, &datagram(3))[14..];
    let capture = pcapng(
        &[(1, 6), (276, 9), (229, 6), (113, 6), (147, 6)],
        &[
            (
                0,
                1_714_557_600_000_000,
                udp_over_ethernet_v4(6343, &datagram(1)),
            ),
            (
                1,
                1_714_557_601_500_000_000,
                sll2(&udp_over_ipv6(6343, &datagram(2))),
            ),
            (2, 1_714_557_602_000_001, udp_over_ipv6(6343, &datagram(3))),
            (3, 1_714_557_603_000_000, sll(ipv4_packet)),
            (0, 1_714_557_604_000_000, tcp_over_ethernet()),
            (
                0,
                1_714_557_605_000_000,
                udp_over_ethernet_v4(53, &datagram(4)),
            ),
            (0, 1_714_557_606_000_000, first_fragment(&datagram(5))),
            (4, 1_714_557_607_000_000, datagram(6)),
            (9, 1_714_557_608_000_000, datagram(7)),
        ],
    );
    let mut reader = CaptureReader::new(capture.as_slice()).expect("a pcapng capture");
    let found: Vec<_> = reader.by_ref().map(|d| d.expect("readable")).collect();
    let stamps: Vec<_> = found.iter().map(|d| d.timestamp).collect();
    assert_eq!(
        stamps,
        [
            datetime!(2024-05-01 10:00:00 UTC),
            datetime!(2024-05-01 10:00:01.5 UTC),
            datetime!(2024-05-01 10:00:02.000001 UTC),
            datetime!(2024-05-01 10:00:03 UTC),
        ]
    );
    let exporters: Vec<IpAddr> = found.iter().map(|d| d.exporter).collect();
    let v4: IpAddr = "192.0.2.1".parse().expect("ip");
    let v6: IpAddr = "2001:db8::1".parse().expect("ip");
    assert_eq!(exporters, [v4, v6, v6, v4]);
    assert_eq!(found[0].bytes, datagram(1));
    assert_eq!(found[1].bytes, datagram(2));
    assert_eq!(found[2].bytes, datagram(3));
    assert_eq!(found[3].bytes, datagram(3));
    let counts = reader.counts();
    assert_eq!(counts.packets, 9);
    assert_eq!(counts.datagrams, 4);
    assert_eq!(counts.not_udp_to_port, 2);
    assert_eq!(counts.ip_fragments, 1);
    assert_eq!(counts.unsupported_link_type, 2);
    assert_eq!(counts.truncated, 0);
}

#[test]
fn pcap_of_raw_ip_and_another_port() {
    let packets = [
        (1_714_557_600, 250_000, udp_over_ipv6(6343, &datagram(1))),
        (1_714_557_601, 0, udp_over_ipv6(9995, &datagram(2))),
    ];
    for (linktype, port, want) in [(101, 6343, 1), (229, 9995, 1), (101, 1, 0)] {
        let capture = pcap(linktype, &packets);
        let mut reader = CaptureReader::new(capture.as_slice())
            .expect("a pcap")
            .port(port);
        let found: Vec<_> = reader.by_ref().map(|d| d.expect("readable")).collect();
        assert_eq!(found.len(), want, "linktype {linktype}, port {port}");
        assert_eq!(reader.counts().not_udp_to_port, 2 - want as u64);
        if linktype == 101 && port == 6343 {
            assert_eq!(found[0].timestamp, datetime!(2024-05-01 10:00:00.25 UTC));
        }
    }
}

#[test]
fn short_datagram_is_truncated_not_yielded() {
    let mut packet = udp_over_ethernet_v4(6343, &datagram(1));
    packet.truncate(packet.len() - 10);
    let capture = pcap(1, &[(0, 0, packet)]);
    let mut reader = CaptureReader::new(capture.as_slice()).expect("a pcap");
    assert!(reader.next().is_none());
    assert_eq!(reader.counts().truncated, 1);
}

#[test]
fn unreadable_captures() {
    for input in [&b""[..], b"hello, this is not a capture at all......"] {
        assert!(matches!(
            CaptureReader::new(input),
            Err(Error::UnrecognizedCapture)
        ));
    }
    // Cut in the middle of the second packet: the first stands, then an error.
    let whole = read("tcpdump__tests__sflow-print-v6.pcap");
    let first_packet_end =
        24 + 16 + u32::from_le_bytes(whole[32..36].try_into().expect("4 bytes")) as usize;
    let cut = &whole[..first_packet_end + 30];
    let mut reader = CaptureReader::new(cut).expect("a pcap header");
    assert!(reader.next().expect("one datagram").is_ok());
    let error = reader.next().expect("an error").expect_err("truncated");
    assert!(
        matches!(error, Error::UnreadableCapture { packets: 1, .. }),
        "{error}"
    );
    assert!(reader.next().is_none());
}

/// pcapng timestamp resolutions in powers of two (`if_tsresol` with its
/// most significant bit set) are read, not taken for microseconds; one that
/// does not fit 64 bits, or a timestamp past the supported years, skips its
/// packet (counted) and the capture goes on. Datagrams carry their packet
/// numbers.
#[test]
fn base_2_resolutions_and_timestamps_out_of_range() {
    // 2026-01-01T00:00:30Z.
    const SECONDS: u64 = 1_767_225_630;
    let capture = pcapng(
        &[
            (1, 0x80 | 20),
            (1, 0x80 | 10),
            (1, 0x80 | 64),
            (1, 20),
            (1, 0),
        ],
        &[
            (
                0,
                SECONDS << 20 | 1 << 19,
                udp_over_ethernet_v4(6343, &datagram(1)),
            ),
            (
                1,
                SECONDS << 10 | 1 << 8,
                udp_over_ethernet_v4(6343, &datagram(2)),
            ),
            (2, SECONDS, udp_over_ethernet_v4(6343, &datagram(3))),
            (3, SECONDS, udp_over_ethernet_v4(6343, &datagram(4))),
            (4, u64::MAX, udp_over_ethernet_v4(6343, &datagram(5))),
            (4, SECONDS + 60, udp_over_ethernet_v4(6343, &datagram(6))),
        ],
    );
    let mut reader = CaptureReader::new(capture.as_slice()).expect("a pcapng capture");
    let found: Vec<_> = reader.by_ref().map(|d| d.expect("readable")).collect();
    let got: Vec<_> = found
        .iter()
        .map(|d| (d.packet, d.timestamp, d.bytes.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (1, datetime!(2026-01-01 00:00:30.5 UTC), datagram(1)),
            (2, datetime!(2026-01-01 00:00:30.25 UTC), datagram(2)),
            (6, datetime!(2026-01-01 00:01:30 UTC), datagram(6)),
        ]
    );
    let counts = reader.counts();
    assert_eq!((counts.packets, counts.datagrams), (6, 3));
    assert_eq!(counts.bad_timestamp, 3);
    assert_eq!(counts.port_packets_skipped(), 3);
}

/// A big-endian pcapng section: its interface's `if_tsoffset` is read in
/// the section's byte order.
#[test]
fn a_big_endian_section_with_a_timestamp_offset() {
    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let mut out = kind.to_be_bytes().to_vec();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(body);
        out.resize(8 + padded, 0);
        out.extend_from_slice(&total.to_be_bytes());
        out
    }
    let mut section = 0x1a2b_3c4du32.to_be_bytes().to_vec();
    section.extend_from_slice(&1u16.to_be_bytes());
    section.extend_from_slice(&0u16.to_be_bytes());
    section.extend_from_slice(&(-1i64).to_be_bytes());
    let mut capture = block(0x0a0d_0d0a, &section);
    let mut interface = 1u16.to_be_bytes().to_vec();
    interface.extend_from_slice(&0u16.to_be_bytes());
    interface.extend_from_slice(&65535u32.to_be_bytes());
    // if_tsoffset (code 14, length 8): 1,767,225,600 s, 2026-01-01.
    interface.extend_from_slice(&14u16.to_be_bytes());
    interface.extend_from_slice(&8u16.to_be_bytes());
    interface.extend_from_slice(&1_767_225_600i64.to_be_bytes());
    interface.extend_from_slice(&[0; 4]);
    capture.extend(block(1, &interface));
    let packet = udp_over_ethernet_v4(6343, &datagram(1));
    // 90.000001 s after the offset, in microseconds.
    let ticks: u64 = 90_000_001;
    let mut body = Vec::new();
    for word in [
        0,
        (ticks >> 32) as u32,
        ticks as u32,
        packet.len() as u32,
        packet.len() as u32,
    ] {
        body.extend_from_slice(&word.to_be_bytes());
    }
    body.extend_from_slice(&packet);
    capture.extend(block(6, &body));
    let found: Vec<_> = CaptureReader::new(capture.as_slice())
        .expect("a pcapng capture")
        .map(|d| d.expect("readable"))
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].timestamp,
        datetime!(2026-01-01 00:01:30.000001 UTC)
    );
    assert_eq!(found[0].bytes, datagram(1));
}

/// A datagram of `samples` flow samples: over 1,500 bytes from 30 on.
fn large_datagram(samples: usize) -> Vec<u8> {
    let mut builder = DatagramBuilder::new("192.0.2.1".parse().expect("ip"));
    for _ in 0..samples {
        builder.flow_sample(FlowSampleSpec::new(
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
            1500,
        ));
    }
    builder.encode()
}

/// The Ethernet frames of `payload` sent over UDP to 6343 in IPv4
/// fragments of at most `chunk` bytes of IP payload (a multiple of 8), with
/// IP identification `id`.
fn fragments(payload: &[u8], chunk: usize, id: u16) -> Vec<Vec<u8>> {
    let mut whole = Vec::new();
    PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(40000, 6343)
        .write(&mut whole, payload)
        .expect("written");
    let (header, ip_payload) = Ipv4Header::from_slice(&whole).expect("an ipv4 header");
    let pieces: Vec<&[u8]> = ip_payload.chunks(chunk).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(index, piece)| {
            let mut header = header.clone();
            header.identification = id;
            header.more_fragments = index + 1 < pieces.len();
            header.fragment_offset =
                etherparse::IpFragOffset::try_new((index * chunk / 8) as u16).expect("an offset");
            header.total_len = (header.header_len() + piece.len()) as u16;
            header.header_checksum = header.calc_header_checksum();
            let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
            frame.extend_from_slice(&header.to_bytes());
            frame.extend_from_slice(piece);
            frame
        })
        .collect()
}

/// A datagram larger than the MTU, captured as IP fragments in any order,
/// is reassembled as a collector's kernel would and yielded once, with the
/// number and time of the packet that completed it; a datagram with a
/// fragment missing is counted incomplete at the end.
#[test]
fn fragmented_datagrams_are_reassembled() {
    let big = large_datagram(25);
    assert!((1_480..2_950).contains(&big.len()), "{}", big.len());
    let mut frames = fragments(&big, 1_480, 7);
    assert_eq!(frames.len(), 2);
    frames.reverse();
    let mut lost = fragments(&large_datagram(25), 1_480, 8);
    lost.truncate(1);
    let packets: Vec<(u32, u32, Vec<u8>)> = [
        (1_714_557_600, frames[0].clone()),
        (1_714_557_601, lost[0].clone()),
        (1_714_557_602, udp_over_ethernet_v4(6343, &datagram(2))),
        (1_714_557_603, frames[1].clone()),
    ]
    .into_iter()
    .map(|(seconds, frame)| (seconds, 0, frame))
    .collect();
    let capture = pcap(1, &packets);
    let mut reader = CaptureReader::new(capture.as_slice()).expect("a pcap");
    let found: Vec<_> = reader.by_ref().map(|d| d.expect("readable")).collect();
    let got: Vec<_> = found.iter().map(|d| (d.packet, d.bytes.clone())).collect();
    assert_eq!(got, [(3, datagram(2)), (4, big)]);
    assert_eq!(found[1].timestamp, datetime!(2024-05-01 10:00:03 UTC));
    let counts = reader.counts();
    assert_eq!(counts.ip_fragments, 3);
    assert_eq!(counts.reassembled, 1);
    assert_eq!(counts.incomplete_fragmented, 1);
    assert_eq!(counts.refused_fragments, 0);
    assert_eq!(counts.datagrams, 2);
    assert_eq!(counts.port_packets_skipped(), 1);
}

/// A fragmented datagram whose latest fragment is 1000 packets behind is
/// given up as incomplete while the capture is read (its fragments are not
/// held to the end).
#[test]
fn stale_fragments_are_given_up() {
    let mut packets = vec![(0, 0, fragments(&large_datagram(25), 1_480, 9).remove(0))];
    packets.extend((0..1000).map(|_| (1, 0, tcp_over_ethernet())));
    packets.push((2, 0, fragments(&large_datagram(25), 1_480, 10).remove(0)));
    packets.push((3, 0, udp_over_ethernet_v4(6343, &datagram(1))));
    let capture = pcap(1, &packets);
    let mut reader = CaptureReader::new(capture.as_slice()).expect("a pcap");
    let first = reader.next().expect("a datagram").expect("readable");
    assert_eq!(first.packet, 1003);
    assert_eq!(reader.counts().incomplete_fragmented, 1);
    assert!(reader.next().is_none());
    assert_eq!(reader.counts().incomplete_fragmented, 2);
}

/// The IPv6 packets (raw IP) of `payload` sent over UDP to 6343 in
/// fragments of at most `chunk` bytes (a multiple of 8) after a fragment
/// header (RFC 8200 §4.5).
fn fragments_v6(payload: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let whole = udp_over_ipv6(6343, payload);
    let (fixed, udp) = whole.split_at(40);
    let pieces: Vec<&[u8]> = udp.chunks(chunk).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(index, piece)| {
            let mut packet = fixed.to_vec();
            packet[4..6].copy_from_slice(&((8 + piece.len()) as u16).to_be_bytes());
            packet[6] = 44; // next header: fragment
            let more = u16::from(index + 1 < pieces.len());
            let offset_and_flag = ((index * chunk / 8) as u16) << 3 | more;
            packet.extend_from_slice(&[17, 0]);
            packet.extend_from_slice(&offset_and_flag.to_be_bytes());
            packet.extend_from_slice(&0x0102_0304u32.to_be_bytes());
            packet.extend_from_slice(piece);
            packet
        })
        .collect()
}

#[test]
fn ipv6_fragments_are_reassembled() {
    let big = large_datagram(25);
    let frames = fragments_v6(&big, 1_448);
    assert_eq!(frames.len(), 2);
    let packets: Vec<(u32, u32, Vec<u8>)> = frames.into_iter().map(|f| (5, 0, f)).collect();
    let capture = pcap(229, &packets);
    let mut reader = CaptureReader::new(capture.as_slice()).expect("a pcap");
    let found: Vec<_> = reader.by_ref().map(|d| d.expect("readable")).collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].bytes, big);
    assert_eq!(
        found[0].exporter,
        "2001:db8::1".parse::<IpAddr>().expect("ip")
    );
    assert_eq!(
        (reader.counts().ip_fragments, reader.counts().reassembled),
        (2, 1)
    );
}
