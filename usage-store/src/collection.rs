//! The collection loop: windows from the zone's checkpoint until caught up,
//! each planned, asked of Traffic Sentinel, joined and committed in one
//! transaction (DESIGN §1, §6); late events (§4); restatement (§10).

mod changed_addresses;
mod late_skipped;

use std::future::Future;
use std::ops::ControlFlow;

use time::OffsetDateTime;
use usage_correlator::{Anomaly, OwnershipLedger, QueryPlan, Schedule};
use usage_model::{CollectionWindow, Grid, TrafficAnswer, TrafficQuery, ZoneId};

use crate::{
    AnomalyRow, CloudStackPosting, LateEventAnomaly, LateEvents, RestateCommit, RestateOutcome,
    SkippedUsageEvent, Store, StoreError, WindowCommit, WindowStats,
};

/// Whatever answers Traffic Sentinel queries: the HTTP client, or a test
/// double.
///
/// The client crate does not depend on this one, so a caller wraps it:
///
/// ```
/// use traffic_sentinel_client::TrafficSentinelClient;
/// use usage_model::{TrafficAnswer, TrafficQuery};
/// use usage_store::TrafficSource;
///
/// struct Sentinel(TrafficSentinelClient);
///
/// impl TrafficSource for Sentinel {
///     type Error = traffic_sentinel_client::Error;
///
///     async fn fetch(&self, queries: &[TrafficQuery]) -> Result<(TrafficAnswer, u64), Self::Error> {
///         let fetched = self.0.fetch(queries).await?;
///         Ok((fetched.answer, fetched.requests as u64))
///     }
/// }
/// ```
pub trait TrafficSource {
    /// Why a fetch failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The bytes of `queries`, and the number of HTTP requests it took.
    fn fetch(
        &self,
        queries: &[TrafficQuery],
    ) -> impl Future<Output = Result<(TrafficAnswer, u64), Self::Error>> + Send;
}

/// One zone's collection: who held what, whom to ask, where to store, on
/// which schedule, with which settings.
///
/// # Example
///
/// ```no_run
/// # use usage_store::{Collection, Store, TrafficSource};
/// # async fn run<S: TrafficSource + Sync>(store: &Store, ledger: &usage_correlator::OwnershipLedger, source: &S) -> Result<(), Box<dyn std::error::Error>> {
/// let zone = usage_model::ZoneId::new("zone-1")?;
/// let collection = Collection::new(store, ledger, source, &zone);
/// let now = time::OffsetDateTime::now_utc();
/// collection.check_settings(false).await?;
/// for late in collection.check_late_events().await? {
///     eprintln!("warning: {}", late.detail);
/// }
/// let summary = collection.collect(None, None, now, |window| {
///     eprintln!("window {:?}: {} record(s)", window.window, window.records);
/// }).await?;
/// eprintln!("{} window(s) up to {:?}", summary.windows, summary.checkpoint);
/// # Ok(())
/// # }
/// ```
pub struct Collection<'a, S> {
    store: &'a Store,
    ledger: &'a OwnershipLedger,
    source: &'a S,
    zone: &'a ZoneId,
    schedule: Schedule,
    settings: Vec<(String, String)>,
    cloudstack: Option<CloudStackPosting>,
    skipped: &'a [SkippedUsageEvent],
}

/// What one committed (or restated) window did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowReport {
    /// The window.
    pub window: CollectionWindow,
    /// Distinct addresses asked about.
    pub ips: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// Records stored.
    pub records: u64,
    /// Bytes sent over the window's records (128-bit: a sum over many
    /// records may pass 2^64 − 1, and is never capped).
    pub bytes_sent: u128,
    /// Bytes received over the window's records (128-bit, as `bytes_sent`).
    pub bytes_received: u128,
    /// The ledger's anomalies whose event lies in the window; the zone's
    /// first window also takes those whose event lies before it, which no
    /// window of the zone holds (DESIGN §4: reported, never absorbed).
    pub anomalies: Vec<Anomaly>,
    /// Rows of the events source skipped in the window (DESIGN §11: a
    /// CloudStack `usage_event` whose `resource_name` is not an IP
    /// address), stored with it as `not-an-ip-address` anomalies; the
    /// zone's first window also takes those before it.
    pub skipped_events: Vec<SkippedUsageEvent>,
    /// For a restatement: whether anything changed (and adjustments were
    /// stored). Always `true` for a first collection.
    pub changed: bool,
}

impl WindowReport {
    /// The anomalies stored with the window: the ledger's and the skipped
    /// rows of the events source.
    pub fn anomaly_count(&self) -> u64 {
        (self.anomalies.len() + self.skipped_events.len()) as u64
    }
}

/// The sums of a run of windows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectSummary {
    /// Windows committed (or restated).
    pub windows: u64,
    /// Records stored.
    pub records: u64,
    /// Bytes sent over the records (128-bit, never capped).
    pub bytes_sent: u128,
    /// Bytes received over the records (128-bit, never capped).
    pub bytes_received: u128,
    /// HTTP requests sent.
    pub requests: u64,
    /// Anomalies reported ([`WindowReport::anomaly_count`]).
    pub anomalies: u64,
    /// The checkpoint after the last window, when one was committed.
    pub checkpoint: Option<OffsetDateTime>,
}

impl CollectSummary {
    fn add(&mut self, report: &WindowReport) {
        self.windows += 1;
        self.records += report.records;
        self.bytes_sent += report.bytes_sent;
        self.bytes_received += report.bytes_received;
        self.requests += report.requests;
        self.anomalies += report.anomaly_count();
        self.checkpoint = Some(report.window.end());
    }
}

impl<'a, S: TrafficSource + Sync> Collection<'a, S> {
    /// The collection of `zone` from `ledger` and `source` into `store`.
    ///
    /// By default: [`Schedule::new`] (hourly grid, 2 h lag, 1 day windows),
    /// no settings stored, no CloudStack posting.
    pub fn new(
        store: &'a Store,
        ledger: &'a OwnershipLedger,
        source: &'a S,
        zone: &'a ZoneId,
    ) -> Collection<'a, S> {
        Collection {
            store,
            ledger,
            source,
            zone,
            schedule: Schedule::new(),
            settings: Vec::new(),
            cloudstack: None,
            skipped: &[],
        }
    }

    /// The `usage_event` rows the events source skipped (DESIGN §11: a
    /// `resource_name` that is not an IP address): each is stored as a
    /// `not-an-ip-address` anomaly with the window of its zone that holds
    /// its time, when that window is committed or restated.
    ///
    /// By default, none.
    pub fn skipped_events(mut self, skipped: &'a [SkippedUsageEvent]) -> Collection<'a, S> {
        self.skipped = skipped;
        self
    }

    /// What a window reports: the ledger's anomalies of the plan, and the
    /// skipped rows of the zone whose time lies in the window. The zone's
    /// `first` window also reports those before it: an anomaly of an event
    /// before the zone's first window (a conflicting duplicate, an assign
    /// while held) can decide who is billed, and no window holds its time.
    fn reported(
        &self,
        window: CollectionWindow,
        planned: &[Anomaly],
        first: bool,
    ) -> (Vec<Anomaly>, Vec<&'a SkippedUsageEvent>) {
        let zone = self.zone;
        let before = |at: OffsetDateTime| first && at < window.start();
        // The whole log's anomalies are looked through for the first
        // window only.
        let earlier: &[Anomaly] = if first { self.ledger.anomalies() } else { &[] };
        let anomalies = earlier
            .iter()
            .filter(|a| a.event.zone == *zone && before(a.event.at))
            .chain(planned)
            .cloned()
            .collect();
        let skipped = self
            .skipped
            .iter()
            .filter(|skipped| {
                skipped.zone == *zone && (window.contains(skipped.at) || before(skipped.at))
            })
            .collect();
        (anomalies, skipped)
    }

    /// The grid, settle lag and maximum window.
    ///
    /// By default, [`Schedule::new`].
    pub fn schedule(mut self, schedule: Schedule) -> Collection<'a, S> {
        self.schedule = schedule;
        self
    }

    /// The settings the zone is billed with, as `(name, value)`, stored with
    /// every window and compared by [`Collection::check_settings`].
    ///
    /// By default, none.
    pub fn settings(mut self, settings: Vec<(String, String)>) -> Collection<'a, S> {
        self.settings = settings;
        self
    }

    /// Also post each window's bytes to CloudStack's `user_statistics`
    /// (DESIGN §11).
    ///
    /// By default, no posting.
    pub fn cloudstack(mut self, posting: Option<CloudStackPosting>) -> Collection<'a, S> {
        self.cloudstack = posting;
        self
    }

    /// Refuses settings that differ from those the zone was billed with
    /// (DESIGN §12), unless `accept_changed`: the change then applies from
    /// the next window. A zone never billed, or billed without settings,
    /// passes.
    ///
    /// # Errors
    ///
    /// [`StoreError::SettingsChanged`] naming the first setting that
    /// differs, with the stored and the new value; store errors.
    pub async fn check_settings(&self, accept_changed: bool) -> Result<(), StoreError> {
        let stored = self.store.zone_settings(self.zone).await?;
        if stored.is_empty() || accept_changed {
            return Ok(());
        }
        for (name, value) in &self.settings {
            let old = stored.iter().find(|(stored, _)| stored == name);
            if let Some((_, old)) = old
                && old != value
            {
                return Err(StoreError::SettingsChanged {
                    zone: self.zone.clone(),
                    setting: name.clone(),
                    stored: old.clone(),
                    new: value.clone(),
                });
            }
        }
        Ok(())
    }

    /// Reports the billed windows whose holdings the current event log no
    /// longer gives (DESIGN §4): when the digest of the log before the
    /// zone's checkpoint differs from the stored one, each billed window is
    /// planned again and its ownership digest compared with the stored one.
    /// The anomalies found are stored (kind `late-event`) with the log's new
    /// digest, and returned. A run over an unchanged log compares nothing.
    ///
    /// # Errors
    ///
    /// Store errors; [`StoreError::Plan`] when a billed window cannot be
    /// planned (e.g. it is not on the current grid).
    pub async fn check_late_events(&self) -> Result<Vec<LateEventAnomaly>, StoreError> {
        let Some(checkpoint) = self.store.checkpoint(self.zone).await? else {
            return Ok(Vec::new());
        };
        let digest = *self
            .ledger
            .event_log_digest(self.zone, checkpoint)
            .as_bytes();
        let stored = self.store.event_log_digest(self.zone).await?;
        if stored == Some(digest) {
            return Ok(Vec::new());
        }
        let mut billed = Vec::new();
        self.store
            .billed_windows(self.zone, |window| {
                billed.push(window);
                ControlFlow::Continue(())
            })
            .await?;
        let mut anomalies = Vec::new();
        let mut finder = self.ledger.late_event_finder(self.zone);
        for window in billed {
            let Some(stored_digest) = window.ownership_digest else {
                // Windows of the first release carry no digest.
                continue;
            };
            // A window is planned on the grid it was billed on: after an
            // accepted change of granularity, the older windows keep theirs.
            let grid = window.grid.unwrap_or(self.schedule.get_grid());
            let plan = QueryPlan::new(self.ledger, self.zone, window.window, grid)
                .map_err(StoreError::Plan)?;
            if *plan.ownership_digest().as_bytes() == stored_digest {
                continue;
            }
            // An address whose records the log no longer gives names the
            // event (an edited event too); else the window's latest.
            let changed = self.changed_addresses(window.window).await?;
            let interval = window.window.interval();
            let event = finder
                .candidate_among(interval, &changed)
                .or_else(|| finder.candidate(interval));
            let detail = match &event {
                Some(event) => format!(
                    "late-event: the holdings billed in window {}..{} of zone {} changed; \
                     event {} at {} ({} {} {}) changed them; restate the window to rebill it",
                    show(window.window.start()),
                    show(window.window.end()),
                    self.zone,
                    event.id,
                    show(event.at),
                    event.kind.cloudstack_type(),
                    event.ip,
                    event.account
                ),
                None => format!(
                    "late-event: the holdings billed in window {}..{} of zone {} changed; \
                     restate the window to rebill it",
                    show(window.window.start()),
                    show(window.window.end()),
                    self.zone
                ),
            };
            anomalies.push(LateEventAnomaly {
                window: window.window,
                event_id: event.map_or(0, |event| event.id),
                detail,
            });
        }
        self.store
            .record_late_event_anomalies(&LateEvents {
                zone: self.zone.clone(),
                checkpoint,
                event_log_digest: digest,
                anomalies: anomalies.clone(),
            })
            .await?;
        Ok(anomalies)
    }

    /// Collects the zone's windows from its stored checkpoint (or `from`
    /// when it has none) up to `until` (by default `now - settle_lag`),
    /// lazily, each cut at UTC midnight and at most the maximum window long,
    /// each committed with its checkpoint in one transaction. `on_window`
    /// hears of each committed window.
    ///
    /// # Errors
    ///
    /// Before anything is stored: [`StoreError::NoStart`] without a
    /// checkpoint or `from`; [`StoreError::Plan`] for an `until` later than
    /// `now - settle_lag` or a bad schedule; [`StoreError::CheckpointOffGrid`].
    /// Then [`StoreError::Window`] for the first window that fails: it stored
    /// nothing, the windows before it stay committed.
    pub async fn collect(
        &self,
        from: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
        now: OffsetDateTime,
        mut on_window: impl FnMut(&WindowReport),
    ) -> Result<CollectSummary, StoreError> {
        let checkpoint = self.store.checkpoint(self.zone).await?;
        let start = match (checkpoint, from) {
            (Some(checkpoint), _) => checkpoint,
            (None, Some(from)) => from,
            (None, None) => {
                return Err(StoreError::NoStart {
                    zone: self.zone.clone(),
                });
            }
        };
        let grid = self.schedule.get_grid();
        if checkpoint.is_some() && !grid.holds(start) {
            return Err(StoreError::CheckpointOffGrid {
                zone: self.zone.clone(),
                checkpoint: start,
                grid: grid.seconds(),
            });
        }
        let windows = match until {
            Some(until) => self.schedule.windows_until(start, until, now),
            None => self.schedule.due_windows(start, now),
        }
        .map_err(StoreError::Plan)?;
        let mut digester = self.ledger.event_log_digester(self.zone);
        let mut summary = CollectSummary::default();
        let mut planned_from = checkpoint;
        for window in windows {
            let digest = *digester.digest_before(window.end()).as_bytes();
            let report = self
                .window(window, planned_from, digest, now)
                .await
                .map_err(self.window_failed(window, summary.windows))?;
            summary.add(&report);
            on_window(&report);
            planned_from = Some(window.end());
        }
        Ok(summary)
    }

    /// Plans, fetches (no request when nothing is held), joins and commits
    /// one window.
    async fn window(
        &self,
        window: CollectionWindow,
        planned_from: Option<OffsetDateTime>,
        event_log_digest: [u8; 32],
        now: OffsetDateTime,
    ) -> Result<WindowReport, StoreError> {
        let (plan, answer, requests) = self
            .plan_and_fetch(window, self.schedule.get_grid())
            .await?;
        let outcome = plan.join(&answer).map_err(StoreError::Plan)?;
        let (anomalies, skipped) =
            self.reported(window, &outcome.anomalies, planned_from.is_none());
        let rows = anomaly_rows(&anomalies, &skipped);
        let report = window_report(&plan, &outcome, requests, anomalies, &skipped, true);
        self.store
            .commit_window(&WindowCommit {
                zone: self.zone.clone(),
                window,
                planned_from,
                records: outcome.records,
                anomalies: rows,
                ownership_digest: *outcome.ownership_digest.as_bytes(),
                grid: self.schedule.get_grid(),
                event_log_digest,
                stats: WindowStats {
                    ips: report.ips,
                    requests,
                },
                settings: self.settings.clone(),
                collected_at: now,
                cloudstack: self.cloudstack.clone(),
            })
            .await?;
        Ok(report)
    }

    /// The plan of `window` on `grid`, Traffic Sentinel's answer to it and
    /// the number of requests that took.
    async fn plan_and_fetch(
        &self,
        window: CollectionWindow,
        grid: Grid,
    ) -> Result<(QueryPlan, TrafficAnswer, u64), StoreError> {
        let plan =
            QueryPlan::new(self.ledger, self.zone, window, grid).map_err(StoreError::Plan)?;
        if plan.queries().is_empty() {
            return Ok((plan, TrafficAnswer::new(), 0));
        }
        let (answer, requests) = self
            .source
            .fetch(plan.queries())
            .await
            .map_err(|error| StoreError::Traffic(Box::new(error)))?;
        Ok((plan, answer, requests))
    }

    /// Recollects the billed windows inside `[from, until)` from the current
    /// log and a fresh answer (DESIGN §10): per window, one transaction
    /// replaces its records and anomalies, updates its ownership digest and
    /// stores signed per-account adjustments; a window that comes out the
    /// same stores nothing. `on_window` hears of each window.
    ///
    /// # Errors
    ///
    /// Before anything is restated: [`StoreError::RestateRange`] when `from`
    /// or `until` is off the grid, after the zone's checkpoint, or cuts a
    /// billed window. Then [`StoreError::Window`] for the first window that
    /// fails (it stays as it was; earlier ones stay restated).
    pub async fn restate(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
        mut on_window: impl FnMut(&WindowReport),
    ) -> Result<CollectSummary, StoreError> {
        let (windows, first) = self.restated_windows(from, until).await?;
        let grid = self.schedule.get_grid();
        let mut summary = CollectSummary::default();
        for window in windows {
            let report = self
                .restate_window(window, grid, now, Some(window) == first)
                .await
                .map_err(self.window_failed(window, summary.windows))?;
            summary.add(&report);
            on_window(&report);
        }
        Ok(summary)
    }

    /// Checks a restatement's range without restating anything (DESIGN
    /// §10): the checks [`Collection::restate`] makes first, so that a caller
    /// can refuse a bad range before it stores anything else (such as
    /// late-event anomalies).
    ///
    /// # Errors
    ///
    /// As [`Collection::restate`], before anything is restated.
    pub async fn check_restate_range(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.restated_windows(from, until).await.map(drop)
    }

    /// The billed windows inside `[from, until)`, each on the current grid,
    /// and the zone's first billed window; or why the range cannot be
    /// restated.
    async fn restated_windows(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<(Vec<CollectionWindow>, Option<CollectionWindow>), StoreError> {
        let refuse = |reason: String| StoreError::RestateRange {
            zone: self.zone.clone(),
            reason,
        };
        let grid = self.schedule.get_grid();
        if from >= until {
            return Err(refuse(format!(
                "--from {} is not before --until {}",
                show(from),
                show(until)
            )));
        }
        for (name, at) in [("--from", from), ("--until", until)] {
            if !grid.holds(at) {
                return Err(refuse(format!(
                    "{name} {} is not on the {} s grid",
                    show(at),
                    grid.seconds()
                )));
            }
        }
        let checkpoint = self.store.checkpoint(self.zone).await?;
        match checkpoint {
            Some(checkpoint) if until <= checkpoint => {}
            Some(checkpoint) => {
                return Err(refuse(format!(
                    "--until {} is after the zone's checkpoint {}: only billed windows are restated",
                    show(until),
                    show(checkpoint)
                )));
            }
            None => return Err(refuse("the zone has no billed window".to_owned())),
        }
        let mut windows = Vec::new();
        let mut cut = None;
        let mut first = None;
        self.store
            .billed_windows(self.zone, |billed| {
                let w = billed.window;
                first = first.or(Some(w));
                if w.start() >= from && w.end() <= until {
                    windows.push(w);
                } else if w.start() < until && w.end() > from {
                    cut = Some(w);
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })
            .await?;
        if let Some(w) = cut {
            return Err(refuse(format!(
                "billed window {}..{} is cut by the range; give bounds at window boundaries",
                show(w.start()),
                show(w.end())
            )));
        }
        // Restated as a first collection would bill it now: on the current
        // grid, which must hold the window's bounds.
        if let Some(w) = windows
            .iter()
            .find(|w| !grid.holds(w.start()) || !grid.holds(w.end()))
        {
            return Err(refuse(format!(
                "billed window {}..{} is not on the current {} s grid; restate it with the granularity it was billed on",
                show(w.start()),
                show(w.end()),
                grid.seconds()
            )));
        }
        Ok((windows, first))
    }

    /// The error of `window` failing after `committed` windows of the run
    /// were committed.
    fn window_failed(
        &self,
        window: CollectionWindow,
        committed: u64,
    ) -> impl FnOnce(StoreError) -> StoreError {
        let zone = self.zone.clone();
        move |source| StoreError::Window {
            zone,
            window,
            committed,
            source: Box::new(source),
        }
    }

    /// Restates one billed window, planned on `grid` (the current one);
    /// `first` when it is the zone's first billed window.
    async fn restate_window(
        &self,
        window: CollectionWindow,
        grid: Grid,
        now: OffsetDateTime,
        first: bool,
    ) -> Result<WindowReport, StoreError> {
        let (plan, answer, requests) = self.plan_and_fetch(window, grid).await?;
        let outcome = plan.join(&answer).map_err(StoreError::Plan)?;
        let (anomalies, skipped) = self.reported(window, &outcome.anomalies, first);
        let rows = anomaly_rows(&anomalies, &skipped);
        let mut report = window_report(&plan, &outcome, requests, anomalies, &skipped, true);
        let restated = self
            .store
            .restate_window(&RestateCommit {
                zone: self.zone.clone(),
                window,
                records: outcome.records,
                anomalies: rows,
                ownership_digest: *outcome.ownership_digest.as_bytes(),
                grid,
                stats: WindowStats {
                    ips: report.ips,
                    requests,
                },
                restated_at: now,
                settings: self.settings.clone(),
                cloudstack: self.cloudstack.clone(),
            })
            .await?;
        report.changed = matches!(restated, RestateOutcome::Restated { .. });
        Ok(report)
    }
}

/// The report of a joined window.
fn window_report(
    plan: &QueryPlan,
    outcome: &usage_correlator::CycleOutcome,
    requests: u64,
    anomalies: Vec<Anomaly>,
    skipped_events: &[&SkippedUsageEvent],
    changed: bool,
) -> WindowReport {
    let (sent, received) = outcome
        .records
        .iter()
        .fold((0_u128, 0_u128), |(s, r), record| {
            (
                s + u128::from(record.bytes_sent),
                r + u128::from(record.bytes_received),
            )
        });
    WindowReport {
        window: plan.window(),
        ips: plan.ip_count() as u64,
        requests,
        records: outcome.records.len() as u64,
        bytes_sent: sent,
        bytes_received: received,
        anomalies,
        skipped_events: skipped_events.iter().map(|&row| row.clone()).collect(),
        changed,
    }
}

/// The anomalies as the store keeps them: the ledger's, one per `(kind,
/// event id)`, then the skipped rows of the events source.
fn anomaly_rows(anomalies: &[Anomaly], skipped: &[&SkippedUsageEvent]) -> Vec<AnomalyRow> {
    let mut rows: Vec<AnomalyRow> = Vec::with_capacity(anomalies.len() + skipped.len());
    let mut seen = std::collections::HashSet::new();
    for anomaly in anomalies {
        let kind = anomaly.kind.as_str();
        if !seen.insert((kind, anomaly.event.id)) {
            continue;
        }
        rows.push(AnomalyRow {
            kind: kind.to_owned(),
            event_id: anomaly.event.id,
            other_event_id: anomaly.other.as_ref().map(|other| other.id),
            detail: anomaly.to_string(),
        });
    }
    rows.extend(skipped.iter().map(|row| row.anomaly_row()));
    rows
}

/// An instant as RFC 3339 in UTC.
fn show(at: OffsetDateTime) -> String {
    at.checked_to_offset(time::UtcOffset::UTC)
        .and_then(|utc| {
            utc.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use usage_model::CollectionWindow;

    use super::{CollectSummary, WindowReport};

    /// DESIGN §6: sums that pass 64 bits are never capped.
    #[test]
    fn a_summary_of_windows_past_64_bits_is_exact() {
        let window = |hour: u8| {
            let start = datetime!(2026-11-01 00:00 UTC) + time::Duration::hours(hour.into());
            CollectionWindow::new(start, start + time::Duration::HOUR).expect("a window")
        };
        let mut summary = CollectSummary::default();
        for hour in 0..3 {
            summary.add(&WindowReport {
                window: window(hour),
                ips: 1,
                requests: 1,
                records: 1,
                bytes_sent: u128::from(u64::MAX),
                bytes_received: 1,
                anomalies: Vec::new(),
                skipped_events: Vec::new(),
                changed: true,
            });
        }
        assert_eq!(summary.bytes_sent, 3 * u128::from(u64::MAX));
        assert_eq!(summary.bytes_received, 3);
        assert_eq!(summary.windows, 3);
        assert_eq!(summary.checkpoint, Some(datetime!(2026-11-01 03:00 UTC)));
    }
}
