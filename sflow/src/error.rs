//! The crate's one error type.

/// Everything that can go wrong in this crate: a malformed datagram, an
/// unreadable capture, a bad zones file or zone name.
///
/// Messages are lowercase and carry the offending value (byte offset, line
/// number, field).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An sFlow datagram is truncated, or a length inside it overruns the
    /// structure that holds it. The datagram is to be skipped whole.
    ///
    /// `offset` is the byte offset, from the start of the datagram, of the
    /// field that could not be read (at most the datagram's length).
    #[error("malformed sflow datagram at byte {offset}: {reason}")]
    MalformedDatagram {
        /// Byte offset within the datagram, `0..=len`.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },

    /// A row's byte sum would pass `u64::MAX` (DESIGN §13: byte sums are
    /// 64-bit, never wrapped or clamped). The flow that did not fit was not
    /// added; the row keeps its sum.
    #[error(
        "bytes from {source_ip} to {destination_ip} in the bucket at {} pass 2^64 - 1",
        rfc3339(.bucket_start)
    )]
    ByteSumOverflow {
        /// Start of the bucket (UTC).
        bucket_start: time::OffsetDateTime,
        /// The row's source address.
        source_ip: std::net::IpAddr,
        /// The row's destination address.
        destination_ip: std::net::IpAddr,
    },

    /// The input is neither a pcap nor a pcapng capture.
    #[error("not a pcap or pcapng capture")]
    UnrecognizedCapture,

    /// A capture could not be read further: truncated, a block that does not
    /// parse, or an I/O error. Datagrams read before it stand.
    #[error("unreadable capture after {packets} packets (byte {offset}): {reason}")]
    UnreadableCapture {
        /// Packets read before the failure.
        packets: u64,
        /// Byte offset in the capture of the first block that failed.
        offset: u64,
        /// What failed.
        reason: String,
    },

    /// A zones-file line is not `cidr,zone`.
    #[error("zones line {line}: expected `cidr,zone`, found {text:?}")]
    ZoneLineShape {
        /// 1-based line number.
        line: usize,
        /// The line as written.
        text: String,
    },

    /// The `cidr` field of a zones-file line is not an IP prefix.
    #[error("zones line {line}: bad cidr {value:?}: {reason}")]
    BadPrefix {
        /// 1-based line number.
        line: usize,
        /// The field as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The `zone` field of a zones-file line is not a valid zone name.
    #[error("zones line {line}: bad zone {value:?}: zone names match [A-Za-z0-9_.-]+")]
    BadZone {
        /// 1-based line number.
        line: usize,
        /// The field as written.
        value: String,
    },

    /// A prefix appears on two lines of a zones file.
    #[error("zones line {line}: prefix {prefix} already given on line {first_line}")]
    DuplicatePrefix {
        /// 1-based line number of the repeat.
        line: usize,
        /// The prefix.
        prefix: String,
        /// 1-based line number of its first appearance.
        first_line: usize,
    },

    /// A zone name outside a zones file is not valid.
    #[error("bad zone name {value:?}: zone names match [A-Za-z0-9_.-]+")]
    InvalidZoneName {
        /// The name as given.
        value: String,
    },
}

/// An instant as RFC 3339 (UTC), for messages.
fn rfc3339(at: &time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}
