//! The shared sFlow test data and small capture writers.

use std::path::PathBuf;

/// `<repository root>/../shared/sflow`: the repository's parent directory
/// holds `shared/` (never copied into the repository).
pub(crate) fn sflow_dir() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repository = crate_dir
        .parent()
        .expect("the crate is inside the repository");
    repository.join("..").join("shared").join("sflow")
}

/// The captures to check: every `.pcap` (the `.wrapped.pcap` ones included)
/// and `.dat` file, by name.
pub(crate) fn capture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sflow_dir())
        .expect("shared/sflow is readable")
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".pcap") || name.ends_with(".dat"))
        .collect();
    names.sort();
    names
}

pub(crate) fn read(name: &str) -> Vec<u8> {
    std::fs::read(sflow_dir().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// A little-endian microsecond pcap file of `linktype` holding `packets`
/// (timestamp in seconds and microseconds, bytes).
pub(crate) fn pcap(linktype: u32, packets: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65535, linktype] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (seconds, micros, bytes) in packets {
        let len = bytes.len() as u32;
        for word in [*seconds, *micros, len, len] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(bytes);
    }
    out
}

/// A little-endian pcapng block: type, length, body (padded), length.
fn pcapng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    out.extend_from_slice(&total.to_le_bytes());
    out
}

/// A pcapng capture: one section, one interface per `(linktype, tsresol)`
/// (`tsresol` as the `if_tsresol` option: 6 microseconds, 9 nanoseconds),
/// and enhanced packet blocks `(interface, timestamp in that interface's
/// units, bytes)`.
pub(crate) fn pcapng(interfaces: &[(u16, u8)], packets: &[(u32, u64, Vec<u8>)]) -> Vec<u8> {
    let mut section = Vec::new();
    section.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    section.extend_from_slice(&1u16.to_le_bytes());
    section.extend_from_slice(&0u16.to_le_bytes());
    section.extend_from_slice(&(-1i64).to_le_bytes());
    let mut out = pcapng_block(0x0a0d_0d0a, &section);
    for &(linktype, tsresol) in interfaces {
        let mut body = Vec::new();
        body.extend_from_slice(&linktype.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&65535u32.to_le_bytes());
        // if_tsresol (code 9, length 1, padded), then opt_endofopt.
        body.extend_from_slice(&9u16.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&[tsresol, 0, 0, 0]);
        body.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&pcapng_block(1, &body));
    }
    for (interface, timestamp, bytes) in packets {
        let mut body = Vec::new();
        let len = bytes.len() as u32;
        for word in [
            *interface,
            (timestamp >> 32) as u32,
            *timestamp as u32,
            len,
            len,
        ] {
            body.extend_from_slice(&word.to_le_bytes());
        }
        body.extend_from_slice(bytes);
        body.resize(body.len().div_ceil(4) * 4, 0);
        out.extend_from_slice(&pcapng_block(6, &body));
    }
    out
}
