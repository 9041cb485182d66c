//! Collection cycles: each window is planned, asked of Traffic Sentinel,
//! joined into records and committed with its checkpoint in one transaction.

use time::OffsetDateTime;
use traffic_sentinel_client::TrafficSentinelClient;
use usage_correlator::{Anomaly, OwnershipLedger, QueryPlan};
use usage_model::{CollectionWindow, Grid, TrafficAnswer, ZoneId};

use crate::error::CliError;
use crate::progress::Progress;
use crate::store::{Store, StoredAnomaly, WindowCommit, WindowSummary};
use crate::units::format_time;

/// What a run of collection windows needs besides the store: who held what,
/// whom to ask, which zone, on which grid.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Collection<'a> {
    /// Ownership of the zone's addresses.
    pub(crate) ledger: &'a OwnershipLedger,
    /// The Traffic Sentinel client; its granularity is `grid`.
    pub(crate) client: &'a TrafficSentinelClient,
    /// The zone collected.
    pub(crate) zone: &'a ZoneId,
    /// The grid every boundary is floored to.
    pub(crate) grid: Grid,
}

/// The sums over the windows of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunTotals {
    /// Windows committed.
    pub(crate) windows: usize,
    /// Records stored.
    pub(crate) records: u64,
    /// Bytes sent over all records.
    pub(crate) bytes_sent: u64,
    /// Bytes received over all records.
    pub(crate) bytes_received: u64,
    /// HTTP requests that succeeded.
    pub(crate) requests: u64,
    /// Anomalies reported.
    pub(crate) anomalies: u64,
    /// The checkpoint after the last committed window.
    pub(crate) checkpoint: Option<OffsetDateTime>,
}

impl RunTotals {
    fn add(&mut self, summary: &WindowSummary) {
        self.windows += 1;
        self.records = self.records.saturating_add(summary.records);
        self.bytes_sent = self.bytes_sent.saturating_add(summary.bytes_sent);
        self.bytes_received = self.bytes_received.saturating_add(summary.bytes_received);
        self.requests = self.requests.saturating_add(summary.requests);
        self.anomalies = self.anomalies.saturating_add(summary.anomalies);
        self.checkpoint = Some(summary.window.end());
    }

    /// `collected N window(s) of zone Z up to T: R record(s), bytes sent S
    /// received R, Q request(s), A anomaly(ies)`.
    pub(crate) fn summary_line(&self, zone: &ZoneId) -> String {
        let until = self
            .checkpoint
            .map_or_else(|| "nothing".to_owned(), format_time);
        format!(
            "collected {} window(s) of zone {zone} up to {until}: {} record(s), bytes sent {} received {}, {} request(s), {} anomaly(ies)",
            self.windows,
            self.records,
            self.bytes_sent,
            self.bytes_received,
            self.requests,
            self.anomalies
        )
    }
}

impl Collection<'_> {
    /// Collects `windows` in order, which must tile time from `checkpoint`
    /// (the zone's stored checkpoint, `None` before its first window), and
    /// shows progress on standard error.
    ///
    /// # Errors
    ///
    /// [`CliError::Window`] for the first window that fails: it stored
    /// nothing, the windows before it stay committed and no later window is
    /// tried.
    pub(crate) async fn run(
        &self,
        store: &mut Store,
        windows: &[CollectionWindow],
        checkpoint: Option<OffsetDateTime>,
    ) -> Result<RunTotals, CliError> {
        let mut progress = Progress::new(windows.len());
        let mut totals = RunTotals::default();
        let mut previous = checkpoint;
        for &window in windows {
            match self.window(store, window, previous).await {
                Ok(summary) => {
                    progress.window_done(&summary);
                    totals.add(&summary);
                    previous = Some(window.end());
                }
                Err(source) => {
                    progress.finish();
                    return Err(CliError::Window {
                        start: window.start(),
                        end: window.end(),
                        committed: totals.windows,
                        source: Box::new(source),
                    });
                }
            }
        }
        progress.finish();
        Ok(totals)
    }

    /// One cycle: plan, fetch (no request when nothing is held), join,
    /// commit.
    async fn window(
        &self,
        store: &mut Store,
        window: CollectionWindow,
        previous: Option<OffsetDateTime>,
    ) -> Result<WindowSummary, CliError> {
        let plan = QueryPlan::new(self.ledger, self.zone, window, self.grid)?;
        let (answer, requests) = if plan.queries().is_empty() {
            (TrafficAnswer::new(), 0)
        } else {
            let fetched = self
                .client
                .fetch(plan.queries())
                .await
                .map_err(CliError::Client)?;
            (fetched.answer, fetched.requests)
        };
        let outcome = plan.join(&answer)?;
        let commit = WindowCommit {
            zone: self.zone.clone(),
            window,
            previous_checkpoint: previous,
            records: outcome.records,
            anomalies: outcome.anomalies.iter().map(stored_anomaly).collect(),
            ips: plan.ip_count() as u64,
            requests: requests as u64,
        };
        let summary = commit.summary()?;
        store.commit_window(&commit)?;
        for anomaly in &outcome.anomalies {
            tracing::warn!(
                "anomaly in window {}..{}: {anomaly}",
                format_time(window.start()),
                format_time(window.end())
            );
        }
        Ok(summary)
    }
}

/// An anomaly as the store keeps it.
pub(crate) fn stored_anomaly(anomaly: &Anomaly) -> StoredAnomaly {
    StoredAnomaly {
        kind: anomaly.kind.as_str().to_owned(),
        event_id: anomaly.event.id,
        other_event_id: anomaly.other.as_ref().map(|other| other.id),
        detail: anomaly.to_string(),
    }
}
