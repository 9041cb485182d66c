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
    ///
    /// # Example
    ///
    /// ```
    /// use usage_model::ByteCounts;
    ///
    /// let a = ByteCounts { sent: 1_000, received: 250 };
    /// let b = ByteCounts { sent: 24, received: 6 };
    /// assert_eq!(a.checked_add(b)?, ByteCounts { sent: 1_024, received: 256 });
    ///
    /// let full = ByteCounts { sent: u64::MAX, received: 0 };
    /// assert!(full.checked_add(ByteCounts { sent: 1, received: 0 }).is_err());
    /// # Ok::<(), usage_model::Error>(())
    /// ```
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
    #[cfg_attr(feature = "serde", serde(with = "crate::rfc3339::serde_interval"))]
    pub interval: TimeInterval,
    /// The addresses asked about.
    pub ips: Vec<IpAddr>,
}

/// Byte counts per `(query tag, address)`: the answer to a set of [`TrafficQuery`]s.
///
/// Each pair appears at most once. A pair that is absent moved no byte.
///
/// With the `serde` feature it serializes as an array of rows
/// `{"tag": 0, "ip": "203.0.113.7", "sent": 1000, "received": 250}` ordered by
/// tag then address; deserializing refuses a pair that appears twice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "Vec<AnswerRow>"))]
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

/// One `(tag, ip)` pair of a [`TrafficAnswer`] as serialized.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerRow {
    tag: QueryTag,
    ip: IpAddr,
    sent: u64,
    received: u64,
}

#[cfg(feature = "serde")]
impl serde::Serialize for TrafficAnswer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(|(tag, ip, counts)| AnswerRow {
            tag,
            ip,
            sent: counts.sent,
            received: counts.received,
        }))
    }
}

#[cfg(feature = "serde")]
impl TryFrom<Vec<AnswerRow>> for TrafficAnswer {
    type Error = Error;

    fn try_from(rows: Vec<AnswerRow>) -> Result<Self, Error> {
        let mut answer = TrafficAnswer::new();
        for row in rows {
            let counts = ByteCounts {
                sent: row.sent,
                received: row.received,
            };
            answer.insert(row.tag, row.ip, counts)?;
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn overflow_names_both_operands() {
        let err = ByteCounts {
            sent: 1,
            received: u64::MAX,
        }
        .checked_add(ByteCounts {
            sent: 1,
            received: 2,
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("byte count overflow adding {} and 2", u64::MAX)
        );
    }

    #[test]
    fn insert_refuses_duplicates_and_keeps_first() {
        let mut answer = TrafficAnswer::new();
        let one = ByteCounts {
            sent: 1,
            received: 1,
        };
        answer.insert(QueryTag(0), ip("10.0.0.1"), one).unwrap();
        let err = answer
            .insert(QueryTag(0), ip("10.0.0.1"), ByteCounts::ZERO)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "duplicate answer for query 0 and ip 10.0.0.1"
        );
        assert_eq!(answer.get(QueryTag(0), ip("10.0.0.1")), Some(one));
        answer
            .insert(QueryTag(1), ip("10.0.0.1"), ByteCounts::ZERO)
            .unwrap();
        assert_eq!(answer.len(), 2);
    }

    #[test]
    fn add_accumulates_and_leaves_counts_on_overflow() {
        let mut answer = TrafficAnswer::new();
        let (tag, addr) = (QueryTag(3), ip("2001:db8::1"));
        answer
            .add(
                tag,
                addr,
                ByteCounts {
                    sent: 5,
                    received: 0,
                },
            )
            .unwrap();
        answer
            .add(
                tag,
                addr,
                ByteCounts {
                    sent: 1,
                    received: 7,
                },
            )
            .unwrap();
        assert_eq!(
            answer.get(tag, addr),
            Some(ByteCounts {
                sent: 6,
                received: 7
            })
        );
        assert!(
            answer
                .add(
                    tag,
                    addr,
                    ByteCounts {
                        sent: u64::MAX,
                        received: 0
                    }
                )
                .is_err()
        );
        assert_eq!(
            answer.get(tag, addr),
            Some(ByteCounts {
                sent: 6,
                received: 7
            })
        );
        assert_eq!(
            answer.remove(tag, addr),
            Some(ByteCounts {
                sent: 6,
                received: 7
            })
        );
        assert!(answer.is_empty());
    }

    #[test]
    fn merge_stops_at_the_first_shared_pair() {
        let mut left = TrafficAnswer::new();
        left.insert(QueryTag(0), ip("10.0.0.2"), ByteCounts::ZERO)
            .unwrap();
        let mut right = TrafficAnswer::new();
        right
            .insert(QueryTag(0), ip("10.0.0.1"), ByteCounts::ZERO)
            .unwrap();
        right
            .insert(QueryTag(0), ip("10.0.0.2"), ByteCounts::ZERO)
            .unwrap();
        assert!(matches!(
            left.merge(right),
            Err(Error::DuplicateAnswer {
                tag: QueryTag(0),
                ..
            })
        ));
        let pairs: Vec<_> = left.iter().map(|(tag, ip, _)| (tag, ip)).collect();
        assert_eq!(
            pairs,
            [(QueryTag(0), ip("10.0.0.1")), (QueryTag(0), ip("10.0.0.2"))]
        );
    }
}
