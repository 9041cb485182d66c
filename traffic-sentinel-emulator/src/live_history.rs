//! The history an emulator serves, growing while it runs: the settled part
//! (flows given at start, the record file, buckets merged since), the
//! buckets being settled, and the open bucket of sFlow ingest.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sflow::{AggregatedFlow, DecodeSummary, Decoded, FlowAggregator, ZoneMap};
use time::OffsetDateTime;

use crate::error::Error;
use crate::flows::Flow;
use crate::history::FlowHistory;
use crate::history_snapshot::HistorySnapshot;

/// What live sFlow ingest has done so far.
///
/// Every count saturates rather than wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestCounts {
    /// The datagrams received, as decoded: sFlow v5 datagrams, flow samples
    /// billed and their bytes, samples skipped by reason, malformed
    /// datagrams, datagrams of another version.
    pub decoded: DecodeSummary,
    /// Buckets closed that held traffic (each handed to the record file, if
    /// any, and merged into the served history).
    pub buckets_closed: u64,
    /// Rows appended to the record file.
    pub rows_recorded: u64,
    /// Closed buckets the record file could not take (an I/O error, logged);
    /// they are still served, but a restart loses them.
    pub record_failures: u64,
    /// Errors of the UDP socket while receiving (logged).
    pub receive_errors: u64,
    /// Datagrams with a flow sample whose bytes would take its row of the
    /// open bucket past 2^64 - 1 (logged; that sample is not added).
    pub byte_sum_overflows: u64,
}

/// The rows of one or more closed buckets, on their way to the record file
/// and the settled history.
#[derive(Debug)]
pub(crate) struct ClosedBatch {
    pub(crate) id: u64,
    pub(crate) flows: Arc<Vec<Flow>>,
    /// Taken at shutdown: recorded, not merged.
    pub(crate) last: bool,
}

/// The shared state of a live history; one lock, so that a snapshot sees
/// each flow in exactly one part.
#[derive(Debug)]
struct LiveState {
    settled: Arc<FlowHistory>,
    /// Batches handed to the settler and not merged yet, oldest first.
    closing: Vec<(u64, Arc<Vec<Flow>>)>,
    /// The open bucket(s); `None` without ingest.
    open: Option<FlowAggregator>,
    next_batch: u64,
    /// Changes whenever `closing` or `open` change.
    version: u64,
    /// The history of `closing` and `open` at `version`, once asked for.
    unsettled: Option<(u64, Arc<FlowHistory>)>,
    counts: IngestCounts,
}

/// A history that grows while it is served. Queries take a
/// [`HistorySnapshot`]; sFlow ingest adds datagrams to the open bucket,
/// closes buckets, and settles them.
#[derive(Debug)]
pub(crate) struct LiveHistory {
    state: Mutex<LiveState>,
}

impl LiveHistory {
    /// A history served as it is.
    pub(crate) fn fixed(history: Arc<FlowHistory>) -> LiveHistory {
        LiveHistory::with_open(history, None)
    }

    /// A history taking in sFlow flows in buckets of its granularity,
    /// zoned by `zones`.
    pub(crate) fn ingesting(history: Arc<FlowHistory>, zones: ZoneMap) -> LiveHistory {
        let seconds = NonZeroU32::new(history.granularity().seconds()).unwrap_or(NonZeroU32::MIN);
        LiveHistory::with_open(history, Some(FlowAggregator::new(seconds, zones)))
    }

    fn with_open(history: Arc<FlowHistory>, open: Option<FlowAggregator>) -> LiveHistory {
        LiveHistory {
            state: Mutex::new(LiveState {
                settled: history,
                closing: Vec::new(),
                open,
                next_batch: 0,
                version: 0,
                unsettled: None,
                counts: IngestCounts::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LiveState> {
        // The state is consistent between statements; a panic elsewhere
        // cannot leave it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The settled part.
    pub(crate) fn settled(&self) -> Arc<FlowHistory> {
        self.lock().settled.clone()
    }

    /// What a query reads now.
    ///
    /// The unsettled part (buckets being settled and the open bucket) is
    /// laid out as a history when first asked for after a change, outside
    /// the lock; the settled part is the one of the same instant.
    ///
    /// # Errors
    ///
    /// [`Error::ByteOverflow`] when the unsettled bytes do not fit a `u64`.
    pub(crate) fn snapshot(&self) -> Result<HistorySnapshot, Error> {
        let (settled, flows, version, grid) = {
            let state = self.lock();
            let open_rows = state.open.as_ref().map_or(0, FlowAggregator::len);
            if state.closing.is_empty() && open_rows == 0 {
                return Ok(HistorySnapshot::from(state.settled.clone()));
            }
            if let Some((version, unsettled)) = &state.unsettled
                && *version == state.version
            {
                return Ok(HistorySnapshot::of_parts(vec![
                    state.settled.clone(),
                    unsettled.clone(),
                ]));
            }
            let mut flows: Vec<Flow> = Vec::with_capacity(
                state.closing.iter().map(|(_, f)| f.len()).sum::<usize>() + open_rows,
            );
            for (_, batch) in &state.closing {
                flows.extend(batch.iter().cloned());
            }
            if let Some(open) = &state.open {
                flows.extend(open.iter().map(|row| to_flow(&row)));
            }
            (
                state.settled.clone(),
                flows,
                state.version,
                state.settled.granularity(),
            )
        };
        let unsettled = Arc::new(FlowHistory::new(grid, flows)?);
        let mut state = self.lock();
        if state.version == version {
            state.unsettled = Some((version, unsettled.clone()));
        }
        Ok(HistorySnapshot::of_parts(vec![settled, unsettled]))
    }

    /// Counts one received datagram and adds its flow samples to the open
    /// bucket at `at`.
    pub(crate) fn add_datagram(&self, at: OffsetDateTime, outcome: &Result<Decoded, sflow::Error>) {
        if let Err(error) = outcome {
            // Counted and skipped whole; where it broke, for whoever asks
            // (a flood of bad datagrams must not flood the log).
            tracing::debug!(%error, "sflow datagram skipped");
        }
        let mut state = self.lock();
        state.counts.decoded.record(outcome);
        if let Ok(Decoded::Datagram(datagram)) = outcome
            && !datagram.flows().is_empty()
            && let Some(open) = &mut state.open
        {
            if let Err(error) = open.add_all(at, datagram.flows()) {
                // Only a row past 2^64 - 1 bytes in one bucket: its
                // sample is not added, the others are (DESIGN §13).
                state.counts.byte_sum_overflows = state.counts.byte_sum_overflows.saturating_add(1);
                tracing::error!("{error}; the sample is not counted");
            }
            state.version = state.version.wrapping_add(1);
        }
    }

    /// Counts an error of the socket.
    pub(crate) fn add_receive_error(&self) {
        let mut state = self.lock();
        state.counts.receive_errors = state.counts.receive_errors.saturating_add(1);
    }

    /// Closes the buckets that start before `end` (every bucket when `end`
    /// is `None`): their rows move from the open part to the closing part,
    /// in one step, and are returned for the settler; `None` when they held
    /// nothing.
    pub(crate) fn close_before(&self, end: Option<OffsetDateTime>) -> Option<ClosedBatch> {
        let mut state = self.lock();
        let open = state.open.as_mut()?;
        let rows = match end {
            Some(end) => open.take_before(end),
            None => {
                let rows: Vec<AggregatedFlow> = open.iter().collect();
                *open = FlowAggregator::new(open.granularity(), open.zones().clone());
                rows
            }
        };
        if rows.is_empty() {
            return None;
        }
        let flows = Arc::new(rows.iter().map(to_flow).collect::<Vec<Flow>>());
        let id = state.next_batch;
        state.next_batch = id.wrapping_add(1);
        state.closing.push((id, flows.clone()));
        state.version = state.version.wrapping_add(1);
        state.counts.buckets_closed = state.counts.buckets_closed.saturating_add(1);
        Some(ClosedBatch {
            id,
            flows,
            last: end.is_none(),
        })
    }

    /// Replaces the settled part by `merged`, which holds batch `id`, and
    /// drops the batch from the closing part, in one step.
    pub(crate) fn settle(&self, id: u64, merged: FlowHistory) {
        let mut state = self.lock();
        state.settled = Arc::new(merged);
        state.closing.retain(|(batch, _)| *batch != id);
        state.version = state.version.wrapping_add(1);
    }

    /// Drops batch `id`, which could not be merged, from what is served.
    pub(crate) fn discard(&self, id: u64) {
        let mut state = self.lock();
        state.closing.retain(|(batch, _)| *batch != id);
        state.version = state.version.wrapping_add(1);
    }

    /// Counts the outcome of recording one batch.
    pub(crate) fn add_recorded(&self, outcome: Result<usize, ()>) {
        let mut state = self.lock();
        let counts = &mut state.counts;
        match outcome {
            Ok(rows) => {
                counts.rows_recorded = counts.rows_recorded.saturating_add(rows as u64);
            }
            Err(()) => counts.record_failures = counts.record_failures.saturating_add(1),
        }
    }

    /// The counts so far.
    pub(crate) fn counts(&self) -> IngestCounts {
        self.lock().counts
    }
}

/// A row of the aggregation as a flow of the history: at its bucket start.
fn to_flow(row: &AggregatedFlow) -> Flow {
    Flow {
        time: row.bucket_start,
        ipsource: row.source,
        ipdestination: row.destination,
        sourcezone: row.source_zone.as_str().to_owned(),
        destinationzone: row.destination_zone.as_str().to_owned(),
        bytes: row.bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ZoneFilter;
    use sflow::{DatagramBuilder, FlowSampleSpec};
    use time::Duration;
    use time::macros::datetime;
    use usage_model::{Grid, Side};

    const GUEST: &str = "10.0.0.5";
    const PEER: &str = "198.51.100.1";

    fn datagram(bytes: u32) -> Result<Decoded, sflow::Error> {
        let mut builder = DatagramBuilder::new("192.0.2.254".parse().unwrap());
        builder.flow_sample(FlowSampleSpec::new(
            GUEST.parse().unwrap(),
            PEER.parse().unwrap(),
            bytes,
        ));
        sflow::decode(&builder.encode())
    }

    /// The guest's bytes sent over the whole day, and the snapshot's parts.
    fn sent(live: &LiveHistory) -> (u64, usize) {
        let snapshot = live.snapshot().unwrap();
        let bytes = snapshot.bytes(
            GUEST.parse().unwrap(),
            Side::Sent,
            &ZoneFilter::any().include("EXTERNAL"),
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-02 00:00 UTC),
        );
        (bytes, snapshot.part_count())
    }

    #[test]
    fn every_flow_is_served_once_while_its_bucket_opens_closes_and_settles() {
        let zones = ZoneMap::parse("10.0.0.0/8,GUEST").unwrap();
        let given = Flow {
            time: datetime!(2026-11-01 09:00 UTC),
            ipsource: GUEST.parse().unwrap(),
            ipdestination: PEER.parse().unwrap(),
            sourcezone: "GUEST".into(),
            destinationzone: "EXTERNAL".into(),
            bytes: 1,
        };
        let history = FlowHistory::new(Grid::MINUTELY, [given]).unwrap();
        let live = LiveHistory::ingesting(Arc::new(history), zones);
        assert_eq!(sent(&live), (1, 1));

        let t = datetime!(2026-11-01 10:00:30 UTC);
        live.add_datagram(t, &datagram(100));
        live.add_datagram(t + Duration::seconds(29), &datagram(20));
        assert_eq!(sent(&live), (121, 2));
        // Cached until the next change.
        assert_eq!(sent(&live), (121, 2));

        // The next minute's traffic arrives before the first minute closes.
        live.add_datagram(t + Duration::seconds(30), &datagram(3000));
        assert_eq!(sent(&live), (3121, 2));
        let batch = live.close_before(Some(t + Duration::seconds(30))).unwrap();
        assert_eq!(batch.flows.len(), 1);
        assert_eq!(batch.flows[0].bytes, 120);
        assert_eq!(batch.flows[0].time, datetime!(2026-11-01 10:00 UTC));
        assert_eq!(batch.flows[0].sourcezone, "GUEST");
        assert!(!batch.last);
        // Closing: neither lost nor counted twice.
        assert_eq!(sent(&live), (3121, 2));
        assert!(live.close_before(Some(t + Duration::seconds(30))).is_none());

        let merged = live
            .settled()
            .extended(batch.flows.iter().cloned())
            .unwrap();
        live.settle(batch.id, merged);
        assert_eq!(sent(&live), (3121, 2));
        assert_eq!(live.settled().total_bytes(), 121);

        let last = live.close_before(None).unwrap();
        assert!(last.last);
        assert_eq!(last.flows[0].bytes, 3000);
        assert_eq!(sent(&live), (3121, 2));
        live.discard(last.id);
        assert_eq!(sent(&live), (121, 1));

        let counts = live.counts();
        assert_eq!(counts.decoded.datagrams, 3);
        assert_eq!(counts.buckets_closed, 2);
    }

    #[test]
    fn a_fixed_history_is_served_as_given_and_counts_nothing() {
        let live = LiveHistory::fixed(Arc::new(FlowHistory::new(Grid::MINUTELY, []).unwrap()));
        live.add_datagram(datetime!(2026-11-01 10:00 UTC), &datagram(100));
        assert_eq!(sent(&live), (0, 1));
        assert!(live.close_before(None).is_none());
    }
}
