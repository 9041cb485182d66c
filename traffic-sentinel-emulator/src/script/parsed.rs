//! A script as read: its `Query.topN` calls and what each prints.

use std::net::IpAddr;

use time::PrimitiveDateTime;
use usage_model::Side;

use crate::zone_filter::ZoneFilter;

/// The largest `N` a `Query.topN` may ask for; larger values are refused.
pub const MAX_TOP_N: u64 = 10_000_000;

/// One `Query.topN("historytrmx", FIELD ",bytes", FILTER, INTERVAL, "bytes", N)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TopN {
    pub(crate) side: Side,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) zones: ZoneFilter,
    /// Interval bounds in the server's local time.
    pub(crate) start: PrimitiveDateTime,
    pub(crate) end: PrimitiveDateTime,
    pub(crate) n: usize,
}

/// A parsed script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Script {
    /// The client's script: each query with the literal row prefix it prints
    /// (e.g. `s,7,`).
    Client(Vec<(TopN, String)>),
    /// CloudStack's script.
    CloudStack { sent: TopN, received: TopN },
}
