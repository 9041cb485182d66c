//! Reports and status: the same answers on every engine, in a fixed order.

use time::macros::{date, datetime};
use usage_model::{AccountId, ZoneId};
use usage_store::{AnomalyRow, ReportFilter, WindowCommit};

use crate::engines::engines;
use crate::fixtures::{Snapshot, commit, record_in, snapshot_of};

/// Windows of two zones over two days, with names that sort differently
/// under a case-insensitive, accent-folding or space-padding collation,
/// and addresses whose text order is not their order.
fn story() -> Vec<WindowCommit> {
    let mut commits = Vec::new();
    for zone in ["zone-1", "Zone-1", "zoné"] {
        let zone = ZoneId::new(zone).unwrap();
        let days = [
            (
                datetime!(2026-11-01 00:00 UTC),
                datetime!(2026-11-01 12:00 UTC),
            ),
            (
                datetime!(2026-11-01 12:00 UTC),
                datetime!(2026-11-02 00:00 UTC),
            ),
            (
                datetime!(2026-11-02 00:00 UTC),
                datetime!(2026-11-02 06:00 UTC),
            ),
        ];
        let mut planned_from = None;
        for (n, (start, end)) in days.into_iter().enumerate() {
            let n = n as u64;
            let records = vec![
                record_in(&zone, "acct", "203.0.113.9", start, end, 100 + n, 1),
                record_in(&zone, "acct ", "203.0.113.10", start, end, 200 + n, 2),
                record_in(&zone, "ACCT", "2001:db8::1", start, end, 300 + n, 3),
                record_in(&zone, "acct-1", "10.0.0.2", start, end, 400 + n, 4),
                record_in(&zone, "acct-1", "9.0.0.1", start, end, u64::MAX / 4, 5),
            ];
            let mut window = commit(start, end, planned_from, records);
            window.zone = zone.clone();
            window.anomalies = vec![
                AnomalyRow {
                    kind: "release-of-free-ip".to_owned(),
                    event_id: 10 + n,
                    other_event_id: None,
                    detail: format!("window {n}"),
                },
                AnomalyRow {
                    kind: "assign-while-held".to_owned(),
                    event_id: 9,
                    other_event_id: Some(1 << 40),
                    detail: "a".to_owned(),
                },
            ];
            planned_from = Some(end);
            commits.push(window);
        }
    }
    commits
}

fn filters() -> Vec<ReportFilter> {
    vec![
        ReportFilter::new(),
        ReportFilter::new().zone(ZoneId::new("zone-1").unwrap()),
        ReportFilter::new().account(AccountId::new("acct").unwrap()),
        ReportFilter::new()
            .from(datetime!(2026-11-01 12:00 UTC))
            .until(datetime!(2026-11-02 00:00 UTC)),
        ReportFilter::new().until(datetime!(2026-11-01 23:59:59.5 UTC)),
        ReportFilter::new().from(datetime!(2026-11-01 11:59:59.5 UTC)),
    ]
}

#[tokio::test]
async fn every_engine_gives_the_same_reports_and_status() {
    let mut answers: Vec<(usage_store::Engine, Vec<Snapshot>)> = Vec::new();
    for db in engines().await {
        let store = db.open().await;
        for window in story() {
            store.commit_window(&window).await.unwrap();
        }
        let mut snapshots = Vec::new();
        for filter in filters() {
            snapshots.push(snapshot_of(&store, &filter).await);
        }
        answers.push((db.engine, snapshots));
        store.close().await;
    }
    let (first_engine, expected) = &answers[0];
    for (engine, snapshots) in &answers[1..] {
        for (n, (got, want)) in snapshots.iter().zip(expected).enumerate() {
            assert_eq!(
                got, want,
                "filter {n}: {engine} differs from {first_engine}"
            );
        }
    }

    // The order is byte order of names, then addresses by value.
    let all = &expected[0];
    let zones: Vec<&str> = all.status.iter().map(|s| s.zone.as_str()).collect();
    assert_eq!(zones, ["Zone-1", "zone-1", "zoné"]);
    let accounts: Vec<&str> = all.by_account[..4]
        .iter()
        .map(|r| r.account.as_str())
        .collect();
    assert_eq!(accounts, ["ACCT", "acct", "acct ", "acct-1"]);
    let acct_1: Vec<String> = all
        .by_ip
        .iter()
        .filter(|r| r.zone.as_str() == "Zone-1" && r.account.as_str() == "acct-1")
        .map(|r| r.ip.to_string())
        .collect();
    assert_eq!(
        acct_1,
        [
            "9.0.0.1", "9.0.0.1", "9.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.2"
        ]
    );
    assert_eq!(all.by_account[0].bytes_sent, 300 + 301 + 302);
    assert_eq!(all.by_account[3].bytes_sent, 3 * (u64::MAX / 4) + 1_203);
    let days: Vec<(&str, time::Date, u64)> = all.by_day[..2]
        .iter()
        .map(|d| (d.account.as_str(), d.day, d.bytes_sent))
        .collect();
    assert_eq!(
        days,
        [
            ("ACCT", date!(2026 - 11 - 01), 601),
            ("ACCT", date!(2026 - 11 - 02), 302)
        ]
    );
    assert_eq!(all.anomalies.len(), 3 * 6);
    let first: Vec<(&str, u64)> = all.anomalies[..3]
        .iter()
        .map(|a| (a.kind.as_str(), a.event_id))
        .collect();
    assert_eq!(
        first,
        [
            ("assign-while-held", 9),
            ("release-of-free-ip", 10),
            ("assign-while-held", 9)
        ]
    );
    assert_eq!(all.status[1].records, 15);
    assert_eq!(all.status[1].windows, 3);
    assert_eq!(all.status[1].anomalies, 6);

    // Filters.
    let zone_1 = &expected[1];
    assert!(zone_1.by_ip.iter().all(|r| r.zone.as_str() == "zone-1"));
    assert_eq!(zone_1.by_ip.len(), 15);
    let acct = &expected[2];
    assert_eq!(acct.by_account.len(), 3);
    assert!(acct.by_account.iter().all(|r| r.account.as_str() == "acct"));
    let afternoon = &expected[3];
    assert!(
        afternoon
            .by_ip
            .iter()
            .all(|r| r.start == datetime!(2026-11-01 12:00 UTC))
    );
    assert_eq!(afternoon.by_ip.len(), 15);
    assert_eq!(afternoon.anomalies.len(), 6);
    let before_midnight = &expected[4];
    assert!(
        before_midnight
            .by_ip
            .iter()
            .all(|r| r.end <= datetime!(2026-11-01 12:00 UTC))
    );
    assert_eq!(before_midnight.by_ip.len(), 15);
    let from_noon = &expected[5];
    assert!(
        from_noon
            .by_ip
            .iter()
            .all(|r| r.start >= datetime!(2026-11-01 12:00 UTC))
    );
    assert_eq!(from_noon.by_ip.len(), 30);
}

#[tokio::test]
async fn a_report_stops_when_the_caller_breaks() {
    for db in engines().await {
        let store = db.open().await;
        for window in story() {
            store.commit_window(&window).await.unwrap();
        }
        let mut seen = 0;
        store
            .report_by_ip(&ReportFilter::new(), |_| {
                seen += 1;
                if seen == 4 {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            })
            .await
            .unwrap();
        assert_eq!(seen, 4, "{}", db.engine);
        store.close().await;
    }
}
