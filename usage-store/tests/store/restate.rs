//! Restatements and late-event anomalies.

use time::macros::datetime;
use usage_model::AccountId;
use usage_store::{
    Adjustment, AnomalyRow, LATE_EVENT, LateEventAnomaly, LateEvents, ReportFilter, RestateCommit,
    RestateOutcome, StoreError, WindowStats,
};

use crate::engines::engines;
use crate::fixtures::{
    by_account, collect_rows, digest, first_day, record, second_day, snapshot, window, zone,
};

fn restatement_of_first_day() -> RestateCommit {
    let first = first_day();
    let (a, b) = (first.window.start(), first.window.end());
    RestateCommit {
        zone: zone(),
        window: first.window,
        records: vec![
            // acct-42 grows, acct-7 shrinks and moves, acct-9 is new.
            record(
                "acct-42",
                "203.0.113.7",
                a,
                datetime!(2026-11-01 12:00 UTC),
                1_500,
                250,
            ),
            record(
                "acct-7",
                "203.0.113.7",
                datetime!(2026-11-01 12:00 UTC),
                b,
                0,
                3,
            ),
            record("acct-9", "198.51.100.4", a, b, 9, 0),
        ],
        anomalies: vec![AnomalyRow {
            kind: "release-of-free-ip".to_owned(),
            event_id: 30,
            other_event_id: None,
            detail: "198.51.100.4 released while free".to_owned(),
        }],
        ownership_digest: digest(3),
        grid: usage_model::Grid::HOURLY,
        stats: WindowStats {
            ips: 3,
            requests: 1,
        },
        restated_at: datetime!(2026-11-10 08:00 UTC),
        cloudstack: None,
        // Billed now with another granularity.
        settings: vec![
            ("granularity".to_owned(), "60".to_owned()),
            ("include_zones".to_owned(), "EXTERNAL".to_owned()),
        ],
    }
}

#[tokio::test]
async fn a_restatement_replaces_the_window_and_stores_signed_adjustments() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        store.commit_window(&first_day()).await.unwrap();
        store.commit_window(&second_day()).await.unwrap();

        let restate = restatement_of_first_day();
        let outcome = store.restate_window(&restate).await.unwrap();
        let adjustment = |account: &str, sent: i128, received: i128| Adjustment {
            zone: zone(),
            account: AccountId::new(account).unwrap(),
            window: restate.window,
            bytes_sent_delta: sent,
            bytes_received_delta: received,
            restated_at: restate.restated_at,
        };
        let expected = vec![
            adjustment("acct-42", 500, 0),
            adjustment("acct-7", -(1 << 40), -2),
            adjustment("acct-9", 9, 0),
        ];
        assert_eq!(
            outcome,
            RestateOutcome::Restated {
                adjustments: expected.clone()
            },
            "{engine}"
        );
        let got = snapshot(&store).await;
        assert_eq!(got.adjustments, expected, "{engine}");
        let day_one: Vec<_> = got
            .by_ip
            .iter()
            .filter(|r| r.start < restate.window.end())
            .cloned()
            .collect();
        let mut new_records = restate.records.clone();
        new_records.sort_by(|x, y| (&x.account, x.ip).cmp(&(&y.account, y.ip)));
        assert_eq!(day_one, new_records, "{engine}");
        assert!(
            got.by_ip.contains(&second_day().records[0]),
            "other windows untouched"
        );
        let kinds: Vec<&str> = got.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["release-of-free-ip"], "{engine}");
        let mut digests = Vec::new();
        store
            .billed_windows(&zone(), |w| {
                digests.push(w.ownership_digest);
                std::ops::ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(digests, [Some(digest(3)), Some(digest(1))], "{engine}");
        assert_eq!(
            got.status[0].last_collected_at,
            Some(datetime!(2026-11-10 08:00 UTC))
        );
        // The zone is billed with the restatement's settings from now on.
        assert_eq!(
            store.zone_settings(&zone()).await.unwrap(),
            restate.settings,
            "{engine}"
        );

        // The same restatement again changes nothing and stores nothing.
        let mut again = restate.clone();
        again.restated_at = datetime!(2026-11-11 08:00 UTC);
        assert_eq!(
            store.restate_window(&again).await.unwrap(),
            RestateOutcome::Unchanged
        );
        assert_eq!(snapshot(&store).await, got, "{engine}");

        // A restatement moving bytes between addresses of one account:
        // records replaced, no adjustment.
        let mut moved = again.clone();
        moved.records[2] = record(
            "acct-9",
            "198.51.100.5",
            restate.window.start(),
            restate.window.end(),
            9,
            0,
        );
        match store.restate_window(&moved).await.unwrap() {
            RestateOutcome::Restated { adjustments } => assert!(adjustments.is_empty(), "{engine}"),
            other => panic!("{engine}: {other:?}"),
        }
        assert_eq!(snapshot(&store).await.adjustments, expected);

        // Adjustments filter by account.
        let only = ReportFilter::new().account(AccountId::new("acct-7").unwrap());
        let rows = collect_rows(|each| store.report_adjustments(&only, each)).await;
        assert_eq!(rows, [expected[1].clone()], "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn only_billed_windows_before_the_checkpoint_are_restated() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        let mut restate = restatement_of_first_day();
        let err = store.restate_window(&restate).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::WindowNotBeforeCheckpoint {
                    checkpoint: None,
                    ..
                }
            ),
            "{engine}: {err:?}"
        );
        store.commit_window(&first_day()).await.unwrap();
        let before = snapshot(&store).await;

        // Not the committed window's bounds.
        restate.window = window(
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-01 12:00 UTC),
        );
        restate
            .records
            .retain(|r| r.end <= datetime!(2026-11-01 12:00 UTC));
        let err = store.restate_window(&restate).await.unwrap_err();
        assert!(
            matches!(err, StoreError::WindowNotBilled { .. }),
            "{engine}: {err:?}"
        );

        // After the checkpoint.
        let mut later = restatement_of_first_day();
        later.window = second_day().window;
        later.records = second_day().records;
        let err = store.restate_window(&later).await.unwrap_err();
        assert!(
            matches!(err, StoreError::WindowNotBeforeCheckpoint { .. }),
            "{engine}: {err:?}"
        );
        assert_eq!(snapshot(&store).await, before, "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn late_event_anomalies_are_stored_once_and_resolved_by_a_restatement() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        store.commit_window(&first_day()).await.unwrap();
        store.commit_window(&second_day()).await.unwrap();
        let checkpoint = datetime!(2026-11-03 00:00 UTC);
        let late = LateEvents {
            zone: zone(),
            checkpoint,
            event_log_digest: digest(9),
            anomalies: vec![LateEventAnomaly {
                window: first_day().window,
                event_id: u64::MAX - 5,
                detail: "event 18446744073709551610 assigns 203.0.113.7 to acct-9 at 2026-11-01T05:00:00Z".to_owned(),
            }],
        };
        for _ in 0..2 {
            store.record_late_event_anomalies(&late).await.unwrap();
        }
        let got = snapshot(&store).await;
        assert_eq!(got.event_log_digest, Some(digest(9)), "{engine}");
        let late_rows: Vec<_> = got
            .anomalies
            .iter()
            .filter(|a| a.kind == LATE_EVENT)
            .collect();
        assert_eq!(late_rows.len(), 1, "{engine}: stored once");
        assert_eq!(late_rows[0].window, first_day().window);
        assert_eq!(late_rows[0].event_id, u64::MAX - 5);
        assert_eq!(late_rows[0].other_event_id, None);

        // A stale checkpoint or an unknown window stores nothing.
        let mut stale = late.clone();
        stale.checkpoint = datetime!(2026-11-02 00:00 UTC);
        stale.event_log_digest = digest(10);
        let err = store.record_late_event_anomalies(&stale).await.unwrap_err();
        assert!(
            matches!(err, StoreError::CheckpointMoved { .. }),
            "{engine}: {err:?}"
        );
        let mut unknown = late.clone();
        unknown.event_log_digest = digest(10);
        unknown.anomalies[0].window = window(
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-01 06:00 UTC),
        );
        let err = store
            .record_late_event_anomalies(&unknown)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::WindowNotBilled { .. }),
            "{engine}: {err:?}"
        );
        assert_eq!(snapshot(&store).await, got, "{engine}");

        // Restating the window resolves its late-event anomaly.
        store
            .restate_window(&restatement_of_first_day())
            .await
            .unwrap();
        let anomalies = snapshot(&store).await.anomalies;
        assert!(
            anomalies.iter().all(|a| a.kind != LATE_EVENT),
            "{engine}: {anomalies:?}"
        );
        let totals = by_account(&store, &ReportFilter::new()).await;
        assert_eq!(totals.len(), 3, "{engine}");
        store.close().await;
    }
}
