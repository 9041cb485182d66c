//! Digests that tell a store whether billed ownership may have changed
//! (DESIGN §4, late events).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};
use usage_model::{Ownership, ZoneId};

use crate::ledger::LoggedEvent;

/// A SHA-256 digest: of the holdings a window billed
/// ([`QueryPlan::ownership_digest`](crate::QueryPlan::ownership_digest)) or
/// of a zone's event log before its checkpoint
/// ([`OwnershipLedger::event_log_digest`](crate::OwnershipLedger::event_log_digest)).
///
/// Shown and parsed as 64 lowercase hex digits.
///
/// # Example
///
/// ```
/// use usage_correlator::Digest;
///
/// let digest = Digest::from_bytes([7; 32]);
/// assert_eq!(digest.to_string().parse::<Digest>().unwrap(), digest);
/// assert!("7".parse::<Digest>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// A placeholder for a digest being computed (never a result).
    pub(crate) const UNSET: Digest = Digest([0; 32]);

    /// The digest made of `bytes`, as stored.
    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// The error of parsing a [`Digest`] from text that is not 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {0:?}: expected 64 hex digits")]
pub struct ParseDigestError(String);

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Digest, ParseDigestError> {
        let refuse = || ParseDigestError(s.to_owned());
        if s.len() != 64 || !s.is_ascii() {
            return Err(refuse());
        }
        let mut bytes = [0_u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(s.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| refuse())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| refuse())?;
        }
        Ok(Digest(bytes))
    }
}

/// Writes an address as a family byte and its octets.
fn address(out: &mut Vec<u8>, ip: IpAddr) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
}

/// Writes a text as its length (8 bytes, big-endian) and its UTF-8 bytes.
fn text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The digest of a multiset of events, independent of their order: the
/// lane-wise sum (modulo 2^64 per lane) of each event's SHA-256, hashed with
/// the zone and the number of events.
#[derive(Clone, Debug)]
pub(crate) struct EventLogDigest {
    zone: String,
    sum: [u64; 4],
    count: u64,
    /// The bytes of the event being added, kept to reuse their room.
    key: Vec<u8>,
}

impl EventLogDigest {
    pub(crate) fn new(zone: &ZoneId) -> EventLogDigest {
        EventLogDigest {
            zone: zone.as_str().to_owned(),
            sum: [0; 4],
            count: 0,
            key: Vec::new(),
        }
    }

    /// Adds one kept event, whose account is `account`.
    pub(crate) fn add(&mut self, event: &LoggedEvent, ip: IpAddr, account: &str) {
        let key = &mut self.key;
        key.clear();
        key.extend_from_slice(&event.id.to_be_bytes());
        key.extend_from_slice(&event.at().to_be_bytes());
        key.push(event.kind.replay_rank());
        address(key, ip);
        text(key, account);
        let bytes = Sha256::digest(&key[..]);
        for (lane, chunk) in self.sum.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0_u8; 8];
            word.copy_from_slice(chunk);
            *lane = lane.wrapping_add(u64::from_be_bytes(word));
        }
        self.count += 1;
    }

    pub(crate) fn finish(self) -> Digest {
        let mut bytes = b"event-log".to_vec();
        text(&mut bytes, &self.zone);
        bytes.extend_from_slice(&self.count.to_be_bytes());
        for lane in self.sum {
            bytes.extend_from_slice(&lane.to_be_bytes());
        }
        Digest(Sha256::digest(&bytes).into())
    }
}

/// The digest of the pieces a plan bills, in the plan's order.
pub(crate) fn ownership_digest<'a>(pieces: impl Iterator<Item = &'a Ownership>) -> Digest {
    /// The bytes handed to the hash at once. One `update` per field cost
    /// about as much as the compression itself (a plan of 1M events); the
    /// hash of the concatenation is the same however it is cut.
    const RUN: usize = 8 * 1024;
    let mut hash = Sha256::new();
    let mut run = Vec::with_capacity(RUN + 512);
    run.extend_from_slice(b"ownership");
    for piece in pieces {
        text(&mut run, piece.zone.as_str());
        text(&mut run, piece.account.as_str());
        address(&mut run, piece.ip);
        run.extend_from_slice(&piece.interval.start().unix_timestamp_nanos().to_be_bytes());
        run.extend_from_slice(&piece.interval.end().unix_timestamp_nanos().to_be_bytes());
        if run.len() >= RUN {
            hash.update(&run);
            run.clear();
        }
    }
    hash.update(&run);
    Digest(hash.finalize().into())
}
