//! What a query reads: one or more flow histories whose bytes add up.

use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;
use usage_model::Side;

use crate::history::FlowHistory;
use crate::zone_filter::ZoneFilter;

/// The history an emulator answers from at one instant: the flows it was
/// started with and the buckets it has settled since, plus, with sFlow
/// ingest, the buckets not yet settled (the open bucket and those being
/// recorded).
///
/// Each flow lies in exactly one of its parts, so a byte count is the sum of
/// the parts' counts: no bucket is counted twice, none is left out while it
/// moves from one part to another (the parts are taken together, under one
/// lock). A snapshot does not change; take another to see what arrived
/// since.
///
/// # Example
///
/// ```
/// use time::macros::datetime;
/// use traffic_sentinel_emulator::{Flow, FlowHistory, HistorySnapshot, Side, ZoneFilter};
/// use usage_model::Grid;
///
/// let flow = Flow {
///     time: datetime!(2026-11-01 10:00:42 UTC),
///     ipsource: "203.0.113.7".parse()?,
///     ipdestination: "198.51.100.1".parse()?,
///     sourcezone: "INTERNAL".into(),
///     destinationzone: "EXTERNAL".into(),
///     bytes: 700,
/// };
/// let snapshot = HistorySnapshot::from(FlowHistory::new(Grid::MINUTELY, [flow.clone()])?);
/// let bytes = snapshot.bytes(
///     flow.ipsource,
///     Side::Sent,
///     &ZoneFilter::any(),
///     datetime!(2026-11-01 10:00 UTC),
///     datetime!(2026-11-01 10:01 UTC),
/// );
/// assert_eq!((bytes, snapshot.total_bytes()), (700, 700));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct HistorySnapshot {
    parts: Vec<Arc<FlowHistory>>,
}

impl From<FlowHistory> for HistorySnapshot {
    fn from(history: FlowHistory) -> HistorySnapshot {
        HistorySnapshot::from(Arc::new(history))
    }
}

impl From<Arc<FlowHistory>> for HistorySnapshot {
    fn from(history: Arc<FlowHistory>) -> HistorySnapshot {
        HistorySnapshot {
            parts: vec![history],
        }
    }
}

impl HistorySnapshot {
    /// A snapshot of disjoint parts (no flow in two of them).
    pub(crate) fn of_parts(parts: Vec<Arc<FlowHistory>>) -> HistorySnapshot {
        HistorySnapshot { parts }
    }

    /// The number of histories this snapshot adds up: 1 for a history
    /// served as it was given, 2 while sFlow buckets are not yet settled.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// The bytes of all flows, saturating at `u64::MAX`.
    pub fn total_bytes(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |sum, part| sum.saturating_add(part.total_bytes()))
    }

    /// As [`FlowHistory::bytes`], over every part.
    pub fn bytes(
        &self,
        ip: IpAddr,
        side: Side,
        zones: &ZoneFilter,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> u64 {
        self.parts.iter().fold(0u64, |sum, part| {
            sum.saturating_add(part.bytes(ip, side, zones, start, end))
        })
    }

    /// As [`FlowHistory::top_n`], over every part: each address's bytes are
    /// summed over the parts before the largest `n` are taken.
    pub fn top_n(
        &self,
        ips: &[IpAddr],
        side: Side,
        zones: &ZoneFilter,
        start: OffsetDateTime,
        end: OffsetDateTime,
        n: usize,
    ) -> Vec<(IpAddr, u64)> {
        if let [only] = self.parts.as_slice() {
            return only.top_n(ips, side, zones, start, end, n);
        }
        let mut rows: Vec<(IpAddr, u64)> = self
            .parts
            .iter()
            .flat_map(|part| part.top_n(ips, side, zones, start, end, usize::MAX))
            .collect();
        rows.sort_unstable_by_key(|&(ip, _)| ip);
        let mut summed: Vec<(IpAddr, u64)> = Vec::with_capacity(rows.len());
        for (ip, bytes) in rows {
            match summed.last_mut() {
                Some((last, sum)) if *last == ip => *sum = sum.saturating_add(bytes),
                _ => summed.push((ip, bytes)),
            }
        }
        // Largest first, ties by address ascending, as one part answers.
        summed.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        summed.truncate(n);
        summed
    }
}
