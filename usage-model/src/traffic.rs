use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::{Error, TimeInterval};

/// Bytes sent and received by one address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ByteCounts {
    /// Bytes with the address as source (usage type 4).
    pub sent: u64,
    /// Bytes with the address as destination (usage type 5).
    pub received: u64,
}

impl ByteCounts {
    /// No bytes either way.
    pub const ZERO: ByteCounts = ByteCounts {
        sent: 0,
        received: 0,
    };

    /// Whether no byte moved either way.
    pub fn is_zero(&self) -> bool {
        self.sent == 0 && self.received == 0
    }

    /// The sum of two counts, field by field.
    ///
    /// # Errors
    ///
    /// Returns [`Error::Overflow`] when either field overflows `u64`; counts
    /// never wrap.
    pub fn checked_add(self, other: ByteCounts) -> Result<ByteCounts, Error> {
        let add = |left: u64, right: u64| {
            left.checked_add(right)
                .ok_or(Error::Overflow { left, right })
        };
        Ok(ByteCounts {
            sent: add(self.sent, other.sent)?,
            received: add(self.received, other.received)?,
        })
    }
}

/// The label that ties an answer row to the query that asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QueryTag(pub u32);

impl fmt::Display for QueryTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One traffic question: the bytes each of `ips` moved during `interval`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrafficQuery {
    /// Tag that answer rows carry back.
    pub tag: QueryTag,
    /// The time range asked about, half-open and on the server's grid.
    pub interval: TimeInterval,
    /// The addresses asked about.
    pub ips: Vec<IpAddr>,
}

/// Byte counts per `(query tag, address)`: the answer to a set of [`TrafficQuery`]s.
///
/// Each pair appears at most once. A pair that is absent moved no byte.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrafficAnswer {
    counts: BTreeMap<(QueryTag, IpAddr), ByteCounts>,
}

impl TrafficAnswer {
    /// An answer with no rows.
    pub fn new() -> TrafficAnswer {
        TrafficAnswer::default()
    }

    /// Records the counts of `ip` for query `tag`.
    ///
    /// # Errors
    ///
    /// Returns [`Error::DuplicateAnswer`] when the pair already has counts;
    /// the stored counts are left as they were.
    pub fn insert(&mut self, tag: QueryTag, ip: IpAddr, counts: ByteCounts) -> Result<(), Error> {
        use std::collections::btree_map::Entry;
        match self.counts.entry((tag, ip)) {
            Entry::Occupied(_) => Err(Error::DuplicateAnswer { tag, ip }),
            Entry::Vacant(slot) => {
                slot.insert(counts);
                Ok(())
            }
        }
    }

    /// Adds `counts` to what `ip` already has for `tag` (zero if nothing).
    ///
    /// # Errors
    ///
    /// Returns [`Error::Overflow`] when a sum overflows; nothing is changed then.
    pub fn add(&mut self, tag: QueryTag, ip: IpAddr, counts: ByteCounts) -> Result<(), Error> {
        let slot = self.counts.entry((tag, ip)).or_default();
        *slot = slot.checked_add(counts)?;
        Ok(())
    }

    /// The counts of `ip` for query `tag`, if the answer holds them.
    pub fn get(&self, tag: QueryTag, ip: IpAddr) -> Option<ByteCounts> {
        self.counts.get(&(tag, ip)).copied()
    }

    /// Removes and returns the counts of `ip` for query `tag`.
    pub fn remove(&mut self, tag: QueryTag, ip: IpAddr) -> Option<ByteCounts> {
        self.counts.remove(&(tag, ip))
    }

    /// Number of `(tag, ip)` pairs held.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether the answer holds no pair.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// All pairs, ordered by tag then address.
    pub fn iter(&self) -> impl Iterator<Item = (QueryTag, IpAddr, ByteCounts)> + '_ {
        self.counts.iter().map(|(&(tag, ip), &c)| (tag, ip, c))
    }

    /// Moves every pair of `other` into `self`.
    ///
    /// # Errors
    ///
    /// Returns [`Error::DuplicateAnswer`] on the first pair both hold; pairs
    /// moved before it stay moved.
    pub fn merge(&mut self, other: TrafficAnswer) -> Result<(), Error> {
        for ((tag, ip), counts) in other.counts {
            self.insert(tag, ip, counts)?;
        }
        Ok(())
    }
}
