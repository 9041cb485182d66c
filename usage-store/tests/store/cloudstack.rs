//! Posting usage to CloudStack's `user_statistics` (MySQL stores only).

use sqlx::{Connection as _, Executor as _};
use time::macros::datetime;
use usage_model::ZoneId;
use usage_store::{CloudStackPosting, Engine, ReportFilter, StoreError, WindowCommit};

use crate::engines::{TestDb, engines};
use crate::fixtures::{commit, record_in, snapshot};

/// `cloud.user_statistics` as CloudStack creates it (the columns the
/// direct-network listener uses).
const USER_STATISTICS: &str = "CREATE TABLE user_statistics (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    data_center_id bigint unsigned NOT NULL,
    account_id bigint unsigned NOT NULL,
    public_ip_address char(40) NULL,
    device_id bigint unsigned NOT NULL,
    device_type varchar(32) NOT NULL,
    network_id bigint unsigned,
    net_bytes_received bigint unsigned NOT NULL DEFAULT 0,
    net_bytes_sent bigint unsigned NOT NULL DEFAULT 0,
    current_bytes_received bigint unsigned NOT NULL DEFAULT 0,
    current_bytes_sent bigint unsigned NOT NULL DEFAULT 0,
    agg_bytes_received bigint unsigned NOT NULL DEFAULT 0,
    agg_bytes_sent bigint unsigned NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    UNIQUE KEY (account_id, data_center_id, public_ip_address, device_id, device_type, network_id)
) ENGINE=InnoDB";

fn zone_7() -> ZoneId {
    ZoneId::new("7").unwrap()
}

fn window_of_zone_7(
    start: time::OffsetDateTime,
    end: time::OffsetDateTime,
    planned_from: Option<time::OffsetDateTime>,
    bytes: &[(&str, &str, u64, u64)],
    posting: &CloudStackPosting,
) -> WindowCommit {
    let records = bytes
        .iter()
        .map(|(account, ip, sent, received)| {
            record_in(&zone_7(), account, ip, start, end, *sent, *received)
        })
        .collect();
    let mut window = commit(start, end, planned_from, records);
    window.zone = zone_7();
    window.cloudstack = Some(posting.clone());
    window
}

/// `(account_id, data_center_id, device_id, device_type, network_id,
/// current_bytes_sent, current_bytes_received)` of every row, as text.
async fn statistics(db: &TestDb, cloud: &str) -> Vec<Vec<Option<String>>> {
    let mut raw = db.raw().await;
    let rows = sqlx::query(&format!(
        "SELECT CAST(account_id AS CHAR), CAST(data_center_id AS CHAR), CAST(device_id AS CHAR),
                device_type, CAST(network_id AS CHAR), public_ip_address,
                CAST(current_bytes_sent AS CHAR), CAST(current_bytes_received AS CHAR)
         FROM `{cloud}`.user_statistics ORDER BY account_id, id"
    ))
    .fetch_all(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
    rows.iter()
        .map(|row| {
            (0..8)
                .map(|i| sqlx::Row::try_get::<Option<String>, _>(row, i).unwrap())
                .collect()
        })
        .collect()
}

fn row(account: &str, sent: &str, received: &str) -> Vec<Option<String>> {
    [account, "7", "5", "DirectNetwork", "0"]
        .iter()
        .map(|s| Some((*s).to_owned()))
        .chain([None, Some(sent.to_owned()), Some(received.to_owned())])
        .collect()
}

#[tokio::test]
async fn windows_are_posted_to_user_statistics_in_the_same_transaction() {
    for mut db in engines().await {
        let engine = db.engine;
        let (a, b, c) = (
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-01 01:00 UTC),
            datetime!(2026-11-01 02:00 UTC),
        );
        if engine != Engine::MySql {
            let store = db.open().await;
            let posting = CloudStackPosting {
                host_id: 5,
                cloud_database: "cloud".to_owned(),
            };
            let window = window_of_zone_7(a, b, None, &[("42", "192.0.2.1", 1, 1)], &posting);
            let err = store.commit_window(&window).await.unwrap_err();
            assert!(
                matches!(err, StoreError::CloudStackNeedsMySql { .. }),
                "{engine}: {err:?}"
            );
            assert!(err.to_string().contains("mysql://"), "{err}");
            assert_eq!(store.checkpoint(&zone_7()).await.unwrap(), None, "{engine}");
            store.close().await;
            continue;
        }
        let cloud = db.extra_database("cloud").await;
        let mut raw = db.raw().await;
        raw.execute(format!("USE `{cloud}`").as_str())
            .await
            .unwrap();
        raw.execute(USER_STATISTICS).await.unwrap();
        // An existing row of account 43, as CloudStack's listener left it.
        raw.execute(
            "INSERT INTO user_statistics (data_center_id, account_id, public_ip_address, device_id,
                 device_type, network_id, current_bytes_sent, current_bytes_received)
             VALUES (7, 43, NULL, 5, 'DirectNetwork', 0, 1000, 2000)",
        )
        .await
        .unwrap();
        // And a second row with its key (CloudStack's unique key does not
        // hold while public_ip_address is NULL): it must not be credited too.
        raw.execute(
            "INSERT INTO user_statistics (data_center_id, account_id, public_ip_address, device_id,
                 device_type, network_id, current_bytes_sent, current_bytes_received)
             VALUES (7, 43, NULL, 5, 'DirectNetwork', 0, 0, 0)",
        )
        .await
        .unwrap();
        raw.close().await.unwrap();
        let store = db.open().await;
        let posting = CloudStackPosting {
            host_id: 5,
            cloud_database: cloud.clone(),
        };

        let first = window_of_zone_7(
            a,
            b,
            None,
            &[
                ("42", "192.0.2.1", 10, 20),
                ("42", "192.0.2.2", u64::MAX - 100, 1),
                ("43", "192.0.2.3", 1, 2),
                ("44", "192.0.2.4", 0, 0),
            ],
            &posting,
        );
        store.commit_window(&first).await.unwrap();
        let max_less = (u64::MAX - 90).to_string();
        assert_eq!(
            statistics(&db, &cloud).await,
            [
                row("42", &max_less, "21"),
                row("43", "1001", "2002"),
                row("43", "0", "0")
            ],
            "a row per account with bytes, the first of a repeated key only; none for account 44"
        );

        // A window whose post fails (the counter would pass 2^64 - 1)
        // stores nothing at all.
        let before = snapshot(&store).await;
        let overflow = window_of_zone_7(b, c, Some(b), &[("42", "192.0.2.1", 91, 0)], &posting);
        let err = store.commit_window(&overflow).await.unwrap_err();
        assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
        assert_eq!(snapshot(&store).await, before);
        assert_eq!(statistics(&db, &cloud).await[0], row("42", &max_less, "21"));

        // Account ids must be CloudStack's numbers; checked before writing.
        let named = window_of_zone_7(b, c, Some(b), &[("acct-42", "192.0.2.1", 1, 0)], &posting);
        let err = store.commit_window(&named).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NotCloudStackId {
                    what: "account",
                    ..
                }
            ),
            "{err:?}"
        );
        let mut bad_name = posting.clone();
        bad_name.cloud_database = "cloud ".to_owned();
        let err = store
            .commit_window(&window_of_zone_7(
                b,
                c,
                Some(b),
                &[("42", "192.0.2.1", 1, 0)],
                &bad_name,
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::CloudStackDatabase { .. }),
            "{err:?}"
        );

        // A restatement posts increases only.
        let restate = usage_store::RestateCommit {
            zone: zone_7(),
            window: first.window,
            records: vec![
                record_in(&zone_7(), "42", "192.0.2.1", a, b, 10, 25),
                record_in(&zone_7(), "42", "192.0.2.2", a, b, u64::MAX - 200, 1),
                record_in(&zone_7(), "43", "192.0.2.3", a, b, 4, 2),
            ],
            anomalies: Vec::new(),
            ownership_digest: [4; 32],
            grid: usage_model::Grid::HOURLY,
            stats: usage_store::WindowStats::default(),
            restated_at: datetime!(2026-11-05 00:00 UTC),
            cloudstack: Some(posting.clone()),
            settings: Vec::new(),
        };
        store.restate_window(&restate).await.unwrap();
        assert_eq!(
            statistics(&db, &cloud).await,
            [
                row("42", &max_less, "26"),
                row("43", "1004", "2002"),
                row("43", "0", "0")
            ]
        );
        let all = ReportFilter::new();
        let adjustments =
            crate::fixtures::collect_rows(|each| store.report_adjustments(&all, each)).await;
        let deltas: Vec<(i128, i128)> = adjustments
            .iter()
            .map(|a| (a.bytes_sent_delta, a.bytes_received_delta))
            .collect();
        assert_eq!(
            deltas,
            [(-100, 5), (3, 0)],
            "the decrease stays an adjustment"
        );
        store.close().await;
    }
}
