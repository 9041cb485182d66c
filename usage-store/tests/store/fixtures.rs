//! Windows, records and a snapshot of everything a store answers.

use std::ops::ControlFlow;

use time::OffsetDateTime;
use time::macros::datetime;
use usage_model::{AccountId, ByteCounts, CollectionWindow, UsageRecord, ZoneId};
use usage_store::{
    AccountUsage, Adjustment, AnomalyRow, DayUsage, ReportFilter, Store, StoredAnomaly,
    WindowCommit, WindowStats, ZoneStatus,
};

pub(crate) fn zone() -> ZoneId {
    ZoneId::new("zone-1").unwrap()
}

pub(crate) fn window(start: OffsetDateTime, end: OffsetDateTime) -> CollectionWindow {
    CollectionWindow::new(start, end).unwrap()
}

pub(crate) fn record_in(
    zone: &ZoneId,
    account: &str,
    ip: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
    sent: u64,
    received: u64,
) -> UsageRecord {
    UsageRecord::new(
        zone.clone(),
        AccountId::new(account).unwrap(),
        ip.parse().unwrap(),
        start,
        end,
        ByteCounts { sent, received },
    )
}

pub(crate) fn record(
    account: &str,
    ip: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
    sent: u64,
    received: u64,
) -> UsageRecord {
    record_in(&zone(), account, ip, start, end, sent, received)
}

pub(crate) fn digest(byte: u8) -> [u8; 32] {
    [byte; 32]
}

pub(crate) fn settings() -> Vec<(String, String)> {
    vec![
        ("granularity".to_owned(), "3600".to_owned()),
        ("include_zones".to_owned(), "EXTERNAL".to_owned()),
    ]
}

/// A commit of `records` over `[start, end)` of `zone()`.
pub(crate) fn commit(
    start: OffsetDateTime,
    end: OffsetDateTime,
    planned_from: Option<OffsetDateTime>,
    records: Vec<UsageRecord>,
) -> WindowCommit {
    WindowCommit {
        zone: zone(),
        window: window(start, end),
        planned_from,
        records,
        anomalies: Vec::new(),
        ownership_digest: digest(1),
        grid: usage_model::Grid::HOURLY,
        event_log_digest: digest(2),
        stats: WindowStats {
            ips: 2,
            requests: 1,
        },
        settings: settings(),
        collected_at: datetime!(2026-11-02 02:00 UTC),
        cloudstack: None,
    }
}

pub(crate) fn first_day() -> WindowCommit {
    let (a, b) = (
        datetime!(2026-11-01 00:00 UTC),
        datetime!(2026-11-02 00:00 UTC),
    );
    let mut first = commit(
        a,
        b,
        None,
        vec![
            record(
                "acct-42",
                "203.0.113.7",
                a,
                datetime!(2026-11-01 10:00 UTC),
                1_000,
                250,
            ),
            record(
                "acct-7",
                "203.0.113.7",
                datetime!(2026-11-01 10:00 UTC),
                b,
                0,
                5,
            ),
            record("acct-7", "2001:db8::7", a, b, 1 << 40, 0),
        ],
    );
    first.anomalies = vec![AnomalyRow {
        kind: "assign-while-held".to_owned(),
        event_id: 17,
        other_event_id: Some(12),
        detail: "203.0.113.7 assigned to acct-7 while held by acct-42".to_owned(),
    }];
    first
}

pub(crate) fn second_day() -> WindowCommit {
    let (a, b) = (
        datetime!(2026-11-02 00:00 UTC),
        datetime!(2026-11-03 00:00 UTC),
    );
    commit(
        a,
        b,
        Some(a),
        vec![record("acct-7", "203.0.113.7", a, b, 10, 20)],
    )
}

/// Everything the store answers about its contents, through its own API, so
/// that engines compare by what they answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) by_account: Vec<AccountUsage>,
    pub(crate) by_ip: Vec<UsageRecord>,
    pub(crate) by_day: Vec<DayUsage>,
    pub(crate) anomalies: Vec<StoredAnomaly>,
    pub(crate) adjustments: Vec<Adjustment>,
    pub(crate) status: Vec<ZoneStatus>,
    pub(crate) settings: Vec<(String, String)>,
    pub(crate) checkpoint: Option<OffsetDateTime>,
    pub(crate) event_log_digest: Option<[u8; 32]>,
}

pub(crate) async fn snapshot(store: &Store) -> Snapshot {
    snapshot_of(store, &ReportFilter::new()).await
}

pub(crate) async fn snapshot_of(store: &Store, filter: &ReportFilter) -> Snapshot {
    Snapshot {
        by_account: by_account(store, filter).await,
        by_ip: by_ip(store, filter).await,
        by_day: collect_rows(|each| store.report_by_day(filter, each)).await,
        anomalies: collect_rows(|each| store.report_anomalies(filter, each)).await,
        adjustments: collect_rows(|each| store.report_adjustments(filter, each)).await,
        status: store.status().await.unwrap(),
        settings: store.zone_settings(&zone()).await.unwrap(),
        checkpoint: store.checkpoint(&zone()).await.unwrap(),
        event_log_digest: store.event_log_digest(&zone()).await.unwrap(),
    }
}

pub(crate) async fn by_account(store: &Store, filter: &ReportFilter) -> Vec<AccountUsage> {
    collect_rows(|each| store.report_by_account(filter, each)).await
}

pub(crate) async fn by_ip(store: &Store, filter: &ReportFilter) -> Vec<UsageRecord> {
    collect_rows(|each| store.report_by_ip(filter, each)).await
}

/// The rows a callback report hands out, collected.
pub(crate) async fn collect_rows<'a, T, F, Fut>(report: F) -> Vec<T>
where
    T: 'a,
    F: FnOnce(Box<dyn FnMut(T) -> ControlFlow<()> + 'a>) -> Fut,
    Fut: std::future::Future<Output = Result<(), usage_store::StoreError>>,
{
    let rows = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = rows.clone();
    report(Box::new(move |row| {
        sink.borrow_mut().push(row);
        ControlFlow::Continue(())
    }))
    .await
    .unwrap();
    rows.take()
}
