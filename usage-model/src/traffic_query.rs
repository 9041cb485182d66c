//! A traffic question: which addresses, over which time range. The answer
//! is a [`TrafficAnswer`](crate::TrafficAnswer).

use std::fmt;
use std::net::IpAddr;

use crate::TimeInterval;

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
