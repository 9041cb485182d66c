//! Committing windows: read back, checkpoint compare-and-set, races,
//! exact u64 values, overflow and the natural key.

use time::macros::datetime;
use usage_model::{AccountId, UsageRecord, ZoneId};
use usage_store::{AnomalyRow, BilledWindow, OpenMode, ReportFilter, Store, StoreError};

use crate::engines::engines;
use crate::fixtures::{
    by_account, by_ip, collect_rows, commit, digest, first_day, record, second_day, settings,
    snapshot, zone,
};

#[tokio::test]
async fn commit_then_read_back() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        assert_eq!(store.checkpoint(&zone()).await.unwrap(), None, "{engine}");
        assert!(store.zone_settings(&zone()).await.unwrap().is_empty());

        let first = first_day();
        store.commit_window(&first).await.unwrap();

        let mut expected = first.records.clone();
        expected.sort_by(|a, b| (&a.account, a.ip, a.start).cmp(&(&b.account, b.ip, b.start)));
        let got = snapshot(&store).await;
        assert_eq!(got.by_ip, expected, "{engine}");
        assert_eq!(
            got.checkpoint,
            Some(datetime!(2026-11-02 00:00 UTC)),
            "{engine}"
        );
        assert_eq!(got.settings, settings(), "{engine}");
        assert_eq!(got.event_log_digest, Some(digest(2)), "{engine}");
        assert_eq!(got.anomalies.len(), 1, "{engine}");
        assert_eq!(got.anomalies[0].other_event_id, Some(12));
        assert_eq!(got.status.len(), 1);
        let status = &got.status[0];
        assert_eq!(
            (status.windows, status.records, status.anomalies),
            (1, 3, 1),
            "{engine}"
        );
        assert_eq!(
            status.last_collected_at,
            Some(datetime!(2026-11-02 02:00 UTC))
        );

        store.commit_window(&second_day()).await.unwrap();
        let mut windows = Vec::new();
        store
            .billed_windows(&zone(), |w: BilledWindow| {
                windows.push(w);
                std::ops::ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(windows.len(), 2, "{engine}");
        assert_eq!(windows[0].window, first.window);
        assert_eq!(windows[0].ownership_digest, Some(digest(1)));
        assert_eq!(
            store.checkpoint(&zone()).await.unwrap(),
            Some(datetime!(2026-11-03 00:00 UTC))
        );
        let other = ZoneId::new("zone-2").unwrap();
        assert_eq!(store.checkpoint(&other).await.unwrap(), None);

        // A window without records still moves the checkpoint.
        let mut empty = commit(
            datetime!(2026-11-03 00:00 UTC),
            datetime!(2026-11-03 06:00 UTC),
            Some(datetime!(2026-11-03 00:00 UTC)),
            Vec::new(),
        );
        empty
            .settings
            .push(("server_time_zone".to_owned(), "UTC".to_owned()));
        store.commit_window(&empty).await.unwrap();
        assert_eq!(
            store.checkpoint(&zone()).await.unwrap(),
            Some(datetime!(2026-11-03 06:00 UTC)),
            "{engine}"
        );
        assert_eq!(store.zone_settings(&zone()).await.unwrap().len(), 3);
        store.close().await;
    }
}

#[tokio::test]
async fn a_moved_checkpoint_writes_nothing() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        store.commit_window(&first_day()).await.unwrap();
        let before = snapshot(&store).await;

        // Planned as if the zone were new: the first day again.
        let err = store.commit_window(&first_day()).await.unwrap_err();
        match &err {
            StoreError::CheckpointMoved {
                zone: z,
                expected,
                found,
            } => {
                assert_eq!(z, &zone());
                assert_eq!(*expected, None);
                assert_eq!(*found, Some(datetime!(2026-11-02 00:00 UTC)), "{engine}");
            }
            other => panic!("{engine}: unexpected error {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("zone-1") && message.contains("2026-11-02T00:00:00Z"),
            "{message}"
        );

        // Planned from a checkpoint ahead of the stored one.
        let mut ahead = commit(
            datetime!(2026-11-03 00:00 UTC),
            datetime!(2026-11-04 00:00 UTC),
            Some(datetime!(2026-11-03 00:00 UTC)),
            Vec::new(),
        );
        ahead.settings.clear();
        assert!(matches!(
            store.commit_window(&ahead).await,
            Err(StoreError::CheckpointMoved { .. })
        ));
        assert_eq!(snapshot(&store).await, before, "{engine}");

        // Checks made before any write.
        let mut gap = second_day();
        gap.planned_from = Some(datetime!(2026-11-01 23:00 UTC));
        let err = store.commit_window(&gap).await.unwrap_err();
        assert!(
            matches!(err, StoreError::WindowNotAtCheckpoint { .. }),
            "{err:?}"
        );
        let crossing = commit(
            datetime!(2026-11-02 00:00 UTC),
            datetime!(2026-11-03 01:00 UTC),
            Some(datetime!(2026-11-02 00:00 UTC)),
            Vec::new(),
        );
        let err = store.commit_window(&crossing).await.unwrap_err();
        assert!(
            matches!(err, StoreError::WindowCrossesMidnight { .. }),
            "{err:?}"
        );
        let mut twice = second_day();
        twice
            .settings
            .push(("granularity".to_owned(), "60".to_owned()));
        let err = store.commit_window(&twice).await.unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        assert_eq!(snapshot(&store).await, before, "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn records_that_cannot_belong_to_the_window_are_refused() {
    for db in engines().await {
        let store = db.open().await;
        let (a, b) = (
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-02 00:00 UTC),
        );
        let mut outside = first_day();
        outside.records.push(record(
            "acct-1",
            "192.0.2.1",
            a,
            datetime!(2026-11-02 01:00 UTC),
            1,
            1,
        ));
        let err = store.commit_window(&outside).await.unwrap_err();
        assert!(err.to_string().contains("outside the window"), "{err}");

        let mut forged = first_day();
        let mut bad = record("acct-1", "192.0.2.1", a, b, 1, 1);
        bad.account = AccountId::new("acct-2").unwrap();
        forged.records.push(bad);
        let err = store.commit_window(&forged).await.unwrap_err();
        assert!(err.to_string().contains("id does not match"), "{err}");

        let mut fraction = first_day();
        fraction.records.push(record(
            "acct-1",
            "192.0.2.1",
            datetime!(2026-11-01 00:00:00.5 UTC),
            b,
            1,
            1,
        ));
        let err = store.commit_window(&fraction).await.unwrap_err();
        assert!(matches!(err, StoreError::UnstorableTime { .. }), "{err:?}");

        let mut long = first_day();
        long.records
            .push(record(&"a".repeat(256), "192.0.2.1", a, b, 1, 1));
        let err = store.commit_window(&long).await.unwrap_err();
        assert!(err.to_string().contains("longer than 255"), "{err}");

        assert_eq!(store.checkpoint(&zone()).await.unwrap(), None);
        assert!(by_ip(&store, &ReportFilter::new()).await.is_empty());
        store.close().await;
    }
}

#[tokio::test]
async fn exactly_one_of_two_racing_first_windows_wins() {
    for db in engines().await {
        let engine = db.engine;
        for round in 0..3 {
            let zone = ZoneId::new(format!("race-{round}")).unwrap();
            let mut first = first_day();
            first.zone = zone.clone();
            for record in &mut first.records {
                *record = UsageRecord::new(
                    zone.clone(),
                    record.account.clone(),
                    record.ip,
                    record.start,
                    record.end,
                    record.bytes(),
                );
            }
            let (one, two) = (db.open().await, db.open().await);
            let (a, b) = tokio::join!(one.commit_window(&first), two.commit_window(&first));
            let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
            assert_eq!(wins, 1, "{engine} round {round}: {a:?} {b:?}");
            let loser = if a.is_err() { a } else { b };
            assert!(
                matches!(
                    loser,
                    Err(StoreError::CheckpointMoved { found: Some(_), .. })
                ),
                "{engine}: {loser:?}"
            );
            let filter = ReportFilter::new().zone(zone.clone());
            assert_eq!(by_ip(&one, &filter).await.len(), 3, "{engine}");
            one.close().await;
            two.close().await;
        }
    }
}

#[tokio::test]
async fn u64_values_are_stored_exactly() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        let (a, b) = (
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-01 01:00 UTC),
        );
        let mut window = commit(
            a,
            b,
            None,
            vec![
                record("acct-1", "192.0.2.1", a, b, u64::MAX, u64::MAX - 1),
                record("acct-2", "192.0.2.2", a, b, 1 << 63, (1 << 32) - 1),
                record("acct-3", "192.0.2.3", a, b, 1 << 32, 0),
            ],
        );
        window.anomalies = vec![
            AnomalyRow {
                kind: "release-of-free-ip".to_owned(),
                event_id: u64::MAX,
                other_event_id: Some(1 << 63),
                detail: String::new(),
            },
            AnomalyRow {
                kind: "release-of-free-ip".to_owned(),
                event_id: (1 << 63) + 1,
                other_event_id: None,
                detail: "é ✓".to_owned(),
            },
        ];
        store.commit_window(&window).await.unwrap();
        let mut expected = window.records.clone();
        expected.sort_by(|x, y| x.account.cmp(&y.account));
        assert_eq!(
            by_ip(&store, &ReportFilter::new()).await,
            expected,
            "{engine}"
        );
        let totals: Vec<(u64, u64)> = by_account(&store, &ReportFilter::new())
            .await
            .iter()
            .map(|row| (row.bytes_sent, row.bytes_received))
            .collect();
        assert_eq!(
            totals,
            [
                (u64::MAX, u64::MAX - 1),
                (1 << 63, (1 << 32) - 1),
                (1 << 32, 0)
            ],
            "{engine}"
        );
        let all = ReportFilter::new();
        let anomalies = collect_rows(|each| store.report_anomalies(&all, each)).await;
        let ids: Vec<(u64, Option<u64>, &str)> = anomalies
            .iter()
            .map(|a| (a.event_id, a.other_event_id, a.detail.as_str()))
            .collect();
        assert_eq!(
            ids,
            [((1 << 63) + 1, None, "é ✓"), (u64::MAX, Some(1 << 63), "")],
            "{engine}: ordered by event id as a number"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn sums_past_u64_are_errors_naming_zone_and_account() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        let (a, b, c) = (
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-01 01:00 UTC),
            datetime!(2026-11-01 02:00 UTC),
        );
        store
            .commit_window(&commit(
                a,
                c,
                None,
                vec![
                    record("acct-big", "192.0.2.1", a, b, u64::MAX, 1),
                    record("acct-big", "192.0.2.1", b, c, 1, 1),
                    record("acct-small", "192.0.2.2", a, c, 5, 5),
                ],
            ))
            .await
            .unwrap();
        for by_day in [false, true] {
            let filter = ReportFilter::new();
            let result = if by_day {
                store
                    .report_by_day(&filter, |_| std::ops::ControlFlow::Continue(()))
                    .await
            } else {
                store
                    .report_by_account(&filter, |_| std::ops::ControlFlow::Continue(()))
                    .await
            };
            let err = result.unwrap_err();
            match &err {
                StoreError::TotalOverflow {
                    column,
                    zone: z,
                    account,
                    ..
                } => {
                    assert_eq!(*column, "bytes_sent");
                    assert_eq!(z, &zone());
                    assert_eq!(account.as_str(), "acct-big", "{engine}");
                }
                other => panic!("{engine}: unexpected {other:?}"),
            }
            assert!(err.to_string().contains("acct-big"), "{err}");
        }
        // Filtering the big account out leaves a report that fits.
        let small = by_account(
            &store,
            &ReportFilter::new().account(AccountId::new("acct-small").unwrap()),
        )
        .await;
        assert_eq!(small.len(), 1);
        assert_eq!((small[0].bytes_sent, small[0].bytes_received), (5, 5));
        store.close().await;
    }
}

#[tokio::test]
async fn a_natural_key_held_by_another_id_is_refused() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        store.commit_window(&first_day()).await.unwrap();
        let second = second_day();
        let real = &second.records[0];
        // A row of the same natural key under another id (as an older id
        // function, or a crafted name, could leave).
        let mut raw = db.raw().await;
        let (start, end) = (real.start.unix_timestamp(), real.end.unix_timestamp());
        let insert = format!(
            "INSERT INTO usage_records (id, zone, account, ip, ip_key, start_at, end_at,
                 sent_hi, sent_lo, received_hi, received_lo)
             VALUES ('{}', 'zone-1', 'acct-7', '203.0.113.7', '4cb007107', {start}, {end}, 0, 99, 0, 0)",
            "f".repeat(32)
        );
        sqlx::Executor::execute(&mut raw, insert.as_str())
            .await
            .unwrap();
        let before = snapshot(&store).await;
        let err = store.commit_window(&second).await.unwrap_err();
        match &err {
            StoreError::RecordKeyTaken { record, stored_id } => {
                assert_eq!(stored_id, &"f".repeat(32));
                assert_eq!(**record, *real);
            }
            other => panic!("{engine}: unexpected {other:?}"),
        }
        assert_eq!(snapshot(&store).await, before, "{engine}: not overwritten");
        sqlx::Connection::close(raw).await.unwrap();
        store.close().await;
    }
}

#[tokio::test]
async fn a_replayed_window_stores_each_record_once() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        let mut first = first_day();
        first.records.push(first.records[0].clone());
        first.anomalies.push(first.anomalies[0].clone());
        store.commit_window(&first).await.unwrap();
        assert_eq!(
            by_ip(&store, &ReportFilter::new()).await.len(),
            3,
            "{engine}"
        );

        // The checkpoint rolled back by hand: the replay upserts by id.
        let mut raw = db.raw().await;
        sqlx::Executor::execute(&mut raw, "UPDATE zones SET checkpoint_at = NULL")
            .await
            .unwrap();
        sqlx::Connection::close(raw).await.unwrap();
        let mut replay = first_day();
        replay.records[0].bytes_sent += 1;
        store.commit_window(&replay).await.unwrap();
        let got = snapshot(&store).await;
        assert_eq!(got.by_ip.len(), 3, "{engine}");
        assert_eq!(got.anomalies.len(), 1, "{engine}");
        assert_eq!(got.status[0].windows, 1);
        let replayed = got.by_ip.iter().find(|r| r.id == replay.records[0].id);
        assert_eq!(replayed.map(|r| r.bytes_sent), Some(1_001), "{engine}");
        store.close().await;
    }
}

#[tokio::test]
async fn a_read_only_store_refuses_writes() {
    for db in engines().await {
        let store = db.open().await;
        store.commit_window(&first_day()).await.unwrap();
        store.close().await;
        let reader = Store::open(&db.target, OpenMode::ReadOnly).await.unwrap();
        let err = reader.commit_window(&second_day()).await.unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
        assert_eq!(
            reader.checkpoint(&zone()).await.unwrap(),
            Some(datetime!(2026-11-02 00:00 UTC))
        );
        reader.close().await;
    }
}

/// The store's futures can move between threads (`tokio::spawn`): checked
/// by the compiler.
#[allow(dead_code)]
fn store_futures_are_send(
    store: &Store,
    window: &usage_store::WindowCommit,
    restate: &usage_store::RestateCommit,
    late: &usage_store::LateEvents,
) {
    fn send<T: Send>(_: T) {}
    send(Store::open(store.target(), OpenMode::ReadWrite));
    send(store.commit_window(window));
    send(store.restate_window(restate));
    send(store.record_late_event_anomalies(late));
    send(store.report_by_account(
        &ReportFilter::new(),
        |_| std::ops::ControlFlow::Continue(()),
    ));
    send(store.report_by_ip(
        &ReportFilter::new(),
        |_| std::ops::ControlFlow::Continue(()),
    ));
    send(store.status());
    send(store.billed_windows(&zone(), |_| std::ops::ControlFlow::Continue(())));
}
