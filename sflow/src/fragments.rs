//! IP fragments of the packets in a capture, put back together.
//!
//! A datagram larger than the path MTU leaves the agent in IP fragments; a
//! collector's socket receives it whole, because the kernel reassembles it.
//! A capture holds the fragments, so they are reassembled here, by
//! `etherparse`'s defragmentation pool (keyed by VLAN ids, addresses, IP
//! identification and protocol), for a capture to give what a live
//! collector would.

use etherparse::defrag::IpDefragPool;
use etherparse::{IpNumber, SlicedPacket};

/// A fragmented datagram whose latest fragment is this many packets behind
/// the current one is given up as incomplete. Fragments of one datagram
/// are sent back to back, so they are near in a capture; the bound keeps
/// the memory of fragments that never complete (at most 64 KiB each) from
/// growing with the capture.
const MAX_PACKETS_APART: u64 = 1000;

/// The fragmented datagrams being reassembled, and what became of the
/// others.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    /// Datagrams being reassembled, each with the packet number of its
    /// latest fragment.
    pool: IpDefragPool<u64, ()>,
    /// The packet number at which to give up stale datagrams next.
    next_expiry: u64,
    /// Fragmented datagrams given up as incomplete.
    pub(crate) incomplete: u64,
    /// Fragments that reassembly refused (a length not a multiple of 8
    /// before the last fragment, ends that disagree, too large).
    pub(crate) refused: u64,
}

/// A datagram put back together from its fragments: its IP payload.
pub(crate) struct Reassembled {
    /// The transport protocol of the payload.
    pub(crate) protocol: IpNumber,
    /// The whole payload: transport header and data.
    pub(crate) payload: Vec<u8>,
}

impl Reassembly {
    /// Adds the fragment in `packet` (the `number`th packet of the capture):
    /// the datagram's whole payload once its last missing fragment is in.
    pub(crate) fn add(&mut self, packet: &SlicedPacket<'_>, number: u64) -> Option<Reassembled> {
        if number >= self.next_expiry {
            self.expire(number.saturating_sub(MAX_PACKETS_APART));
            self.next_expiry = number.saturating_add(MAX_PACKETS_APART);
        }
        match self.pool.process_sliced_packet(packet, number, ()) {
            Ok(Some(whole)) => Some(Reassembled {
                protocol: whole.ip_number,
                payload: whole.payload,
            }),
            Ok(None) => None,
            Err(_) => {
                self.refused += 1;
                None
            }
        }
    }

    /// Gives up the datagrams whose latest fragment came before packet
    /// `oldest`.
    fn expire(&mut self, oldest: u64) {
        // `retain` may ask about an entry more than once; each packet adds
        // to one datagram, so the latest packet numbers name the entries.
        let given_up = std::cell::RefCell::new(std::collections::BTreeSet::new());
        self.pool.retain(|&latest| {
            let keep = latest >= oldest;
            if !keep {
                given_up.borrow_mut().insert(latest);
            }
            keep
        });
        self.incomplete += given_up.into_inner().len() as u64;
    }

    /// Ends the capture: every datagram still being reassembled is
    /// incomplete.
    pub(crate) fn finish(&mut self) {
        self.expire(u64::MAX);
    }
}
