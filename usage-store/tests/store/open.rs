//! Opening stores: read-only opens change nothing, missing and foreign
//! stores, newer schemas, and the migration of the first release's files.

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::{AnyConnection, Connection as _, Executor as _};
use time::macros::{date, datetime};
use usage_model::{AccountId, ZoneId};
use usage_store::{Engine, OpenMode, ReportFilter, SCHEMA_VERSION, Store, StoreError, StoreTarget};

use crate::engines::engines;
use crate::fixtures::{first_day, second_day, snapshot, zone};

/// Every file of a directory with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

async fn table_count(db: &crate::engines::TestDb) -> i64 {
    let sql = match db.engine {
        Engine::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
        Engine::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        }
        _ => "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()",
    };
    let mut raw = db.raw().await;
    let count: i64 = sqlx::query_scalar(sql).fetch_one(&mut raw).await.unwrap();
    raw.close().await.unwrap();
    count
}

#[tokio::test]
async fn read_only_opens_create_and_change_nothing() {
    for db in engines().await {
        let engine = db.engine;
        if let Some(dir) = db.dir() {
            let path = db.sqlite_path();
            let err = Store::open(&db.target, OpenMode::ReadOnly)
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert!(files(dir).is_empty(), "a read-only open created a file");
        } else {
            // An empty database: no schema, and none created.
            let err = Store::open(&db.target, OpenMode::ReadOnly)
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::Foreign { .. }),
                "{engine}: {err:?}"
            );
            assert_eq!(table_count(&db).await, 0, "{engine}");
        }

        let store = db.open().await;
        store.commit_window(&first_day()).await.unwrap();
        let written = snapshot(&store).await;
        store.close().await;
        let before = db.dir().map(files);
        let tables = table_count(&db).await;

        for _ in 0..2 {
            let reader = Store::open(&db.target, OpenMode::ReadOnly).await.unwrap();
            assert_eq!(snapshot(&reader).await, written, "{engine}");
            reader.close().await;
        }
        if let (Some(dir), Some(before)) = (db.dir(), before) {
            assert_eq!(files(dir), before, "the file or its directory changed");
            assert_eq!(before.len(), 1, "{:?}", before.keys());
        }
        assert_eq!(table_count(&db).await, tables, "{engine}");
    }
}

#[tokio::test]
async fn foreign_files_and_databases_are_refused() {
    for db in engines().await {
        let engine = db.engine;
        if let Some(dir) = db.dir() {
            let text = dir.join("notes.txt");
            std::fs::write(&text, "not a database\n".repeat(20)).unwrap();
            for mode in [OpenMode::ReadWrite, OpenMode::ReadOnly] {
                let err = Store::open(&StoreTarget::sqlite(&text), mode)
                    .await
                    .unwrap_err();
                assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
                assert!(err.to_string().contains("notes.txt"), "{err}");
            }
            assert_eq!(
                std::fs::read(&text).unwrap(),
                "not a database\n".repeat(20).as_bytes()
            );
            // A directory is not a store either, and is left as it is.
            for mode in [OpenMode::ReadWrite, OpenMode::ReadOnly] {
                let err = Store::open(&StoreTarget::sqlite(dir), mode)
                    .await
                    .unwrap_err();
                assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
                assert!(err.to_string().contains("directory"), "{err}");
            }
            assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
            // A file in a directory that does not exist is a bad target
            // (read-write; read-only, the file is missing), created nowhere.
            let nowhere = dir.join("no-such-directory").join("usage.sqlite");
            let err = Store::open(&StoreTarget::sqlite(&nowhere), OpenMode::ReadWrite)
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::InvalidTarget { .. }), "{err:?}");
            assert!(err.to_string().contains("no-such-directory"), "{err}");
            assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
        }
        let mut raw = db.raw().await;
        raw.execute("CREATE TABLE notes (body TEXT)").await.unwrap();
        raw.close().await.unwrap();
        let err = Store::open(&db.target, OpenMode::ReadWrite)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Foreign { .. }),
            "{engine}: {err:?}"
        );
        assert_eq!(table_count(&db).await, 1, "{engine}: nothing added");
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    for db in engines().await {
        let engine = db.engine;
        let store = db.open().await;
        store.close().await;
        let mut raw = db.raw().await;
        raw.execute("UPDATE schema_version SET version = 99")
            .await
            .unwrap();
        raw.close().await.unwrap();
        for mode in [OpenMode::ReadWrite, OpenMode::ReadOnly] {
            let err = Store::open(&db.target, mode).await.unwrap_err();
            assert!(
                matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
                "{engine}: {err:?}"
            );
            let expected =
                format!("schema version 99 is newer than this program's {SCHEMA_VERSION}");
            assert!(err.to_string().contains(&expected), "{err}");
        }
    }
}

/// A store of schema version 2 (windows without their grid) is reported
/// outdated to a read-only open and migrated by a read-write one: the
/// column comes back, the reports are unchanged, old windows have no grid
/// and new ones keep theirs. A migration killed after MySQL committed the
/// `ALTER TABLE` (the column there, the version still 2) completes too.
#[tokio::test]
async fn a_version_2_store_gains_window_grids() {
    for db in engines().await {
        let engine = db.engine;
        for column_left in [false, true] {
            let store = db.open().await;
            if !column_left {
                store.commit_window(&first_day()).await.unwrap();
            }
            let before = snapshot(&store).await;
            store.close().await;
            let mut raw = db.raw().await;
            if !column_left {
                raw.execute("ALTER TABLE windows DROP COLUMN grid_seconds")
                    .await
                    .unwrap();
            }
            raw.execute("UPDATE schema_version SET version = 2")
                .await
                .unwrap();
            raw.close().await.unwrap();

            let err = Store::open(&db.target, OpenMode::ReadOnly)
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::SchemaOutdated { found: 2, .. }),
                "{engine}: {err:?}"
            );
            let store = db.open().await;
            assert_eq!(snapshot(&store).await, before, "{engine}");
            if !column_left {
                store.commit_window(&second_day()).await.unwrap();
            }
            let mut grids = Vec::new();
            store
                .billed_windows(&zone(), |w| {
                    grids.push(w.grid);
                    std::ops::ControlFlow::Continue(())
                })
                .await
                .unwrap();
            assert_eq!(
                grids,
                [None, Some(usage_model::Grid::HOURLY)],
                "{engine}, column left: {column_left}"
            );
            store.close().await;
            let store = Store::open(&db.target, OpenMode::ReadOnly).await.unwrap();
            store.close().await;
        }
    }
}

#[tokio::test]
async fn concurrent_first_opens_create_the_schema_once() {
    for db in engines().await {
        let engine = db.engine;
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let target = db.target.clone();
                tokio::spawn(async move { Store::open(&target, OpenMode::ReadWrite).await })
            })
            .collect();
        for open in opens {
            let store = open
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{engine}: {e}"));
            assert_eq!(store.checkpoint(&zone()).await.unwrap(), None);
            store.close().await;
        }
    }
}

/// The schema of the first release's SQLite store, exactly.
const V1_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS usage_records (
    id TEXT PRIMARY KEY,
    zone TEXT NOT NULL,
    account TEXT NOT NULL,
    ip TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT NOT NULL,
    bytes_sent INTEGER NOT NULL CHECK (bytes_sent >= 0),
    bytes_received INTEGER NOT NULL CHECK (bytes_received >= 0)
);
CREATE INDEX IF NOT EXISTS usage_records_by_zone_account
    ON usage_records (zone, account, ip, start);
CREATE TABLE IF NOT EXISTS checkpoints (
    zone TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS anomalies (
    id INTEGER PRIMARY KEY,
    zone TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    other_event_id INTEGER,
    detail TEXT NOT NULL,
    UNIQUE (zone, window_start, kind, event_id)
);
CREATE TABLE IF NOT EXISTS windows (
    zone TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT NOT NULL,
    ips INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    bytes_sent INTEGER NOT NULL,
    bytes_received INTEGER NOT NULL,
    records INTEGER NOT NULL,
    anomalies INTEGER NOT NULL,
    collected_at TEXT NOT NULL,
    PRIMARY KEY (zone, start)
);
";

/// A file as the first release wrote it: WAL mode, `user_version` 1, ids
/// of its own (any 32 hex digits: the migration recomputes them).
async fn write_v1_file(path: &Path) {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    conn.execute("PRAGMA journal_mode = WAL").await.unwrap();
    conn.execute(V1_SCHEMA).await.unwrap();
    conn.execute("PRAGMA user_version = 1").await.unwrap();
    let records = [
        (
            "zone-1",
            "acct-42",
            "203.0.113.9",
            "2026-11-01T00:00:00Z",
            "2026-11-01T10:00:00Z",
            2_000_000,
            7,
        ),
        (
            "zone-1",
            "acct-42",
            "203.0.113.9",
            "2026-11-01T10:00:00Z",
            "2026-11-01T11:00:00Z",
            1_000,
            250,
        ),
        (
            "zone-1",
            "acct-42",
            "203.0.113.10",
            "2026-11-01T22:00:00Z",
            "2026-11-02T00:00:00Z",
            5,
            6,
        ),
        (
            "zone-1",
            "acct-7",
            "203.0.113.9",
            "2026-11-01T11:00:00Z",
            "2026-11-01T12:00:00Z",
            0,
            40,
        ),
        (
            "zone-1",
            "acct-7",
            "2001:db8::7",
            "2026-11-02T00:00:00Z",
            "2026-11-02T06:00:00Z",
            300,
            0,
        ),
        (
            "zone-1",
            "acct-7",
            "2001:db8::7",
            "2026-11-02T06:00:00Z",
            "2026-11-03T00:00:00Z",
            i64::MAX,
            1,
        ),
        (
            "edge, \"west\"",
            "acct-42",
            "198.51.100.1",
            "2026-11-01T00:00:00Z",
            "2026-11-01T01:00:00Z",
            1,
            2,
        ),
    ];
    for (n, (zone, account, ip, start, end, sent, received)) in records.iter().enumerate() {
        sqlx::query(
            "INSERT INTO usage_records (id, zone, account, ip, start, end, bytes_sent, bytes_received)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(format!("{n:032x}"))
        .bind(*zone)
        .bind(*account)
        .bind(*ip)
        .bind(*start)
        .bind(*end)
        .bind(*sent)
        .bind(*received)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    for statement in [
        "INSERT INTO checkpoints VALUES ('zone-1', '2026-11-03T00:00:00Z')",
        "INSERT INTO checkpoints VALUES ('edge, \"west\"', '2026-11-01T01:00:00Z')",
        "INSERT INTO windows VALUES ('zone-1', '2026-11-01T00:00:00Z', '2026-11-02T00:00:00Z', 3, 1, 2001005, 303, 4, 1, '2026-11-02T02:00:00.25Z')",
        "INSERT INTO windows VALUES ('zone-1', '2026-11-02T00:00:00Z', '2026-11-03T00:00:00Z', 1, 1, 300, 0, 2, 0, '2026-11-03T02:00:00Z')",
        "INSERT INTO windows VALUES ('edge, \"west\"', '2026-11-01T00:00:00Z', '2026-11-01T01:00:00Z', 1, 1, 1, 2, 1, 0, '2026-11-01T03:00:00Z')",
        "INSERT INTO anomalies (zone, window_start, window_end, kind, event_id, other_event_id, detail) VALUES ('zone-1', '2026-11-01T00:00:00Z', '2026-11-02T00:00:00Z', 'assign-while-held', 17, 12, '203.0.113.9 assigned to acct-7 while held by acct-42')",
    ] {
        conn.execute(statement).await.unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_first_release_file_migrates_in_place_with_the_same_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.db");
    write_v1_file(&path).await;
    let target = StoreTarget::sqlite(&path);

    // A report cannot read it before a read-write open upgrades it.
    let err = Store::open(&target, OpenMode::ReadOnly).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaOutdated { found: 1, .. }),
        "{err:?}"
    );

    let store = Store::open(&target, OpenMode::ReadWrite).await.unwrap();
    store.close().await;
    let store = Store::open(&target, OpenMode::ReadOnly).await.unwrap();
    let all = ReportFilter::new();

    // What the first release's `report` printed for this data.
    let accounts: Vec<(String, String, u64, u64)> = crate::fixtures::by_account(&store, &all)
        .await
        .into_iter()
        .map(|r| {
            (
                r.zone.to_string(),
                r.account.to_string(),
                r.bytes_sent,
                r.bytes_received,
            )
        })
        .collect();
    let max = i64::MAX as u64;
    assert_eq!(
        accounts,
        [
            ("edge, \"west\"".to_owned(), "acct-42".to_owned(), 1, 2),
            ("zone-1".to_owned(), "acct-42".to_owned(), 2_001_005, 263),
            ("zone-1".to_owned(), "acct-7".to_owned(), 300 + max, 41),
        ]
    );
    let ips: Vec<(String, String, String, u64)> = crate::fixtures::by_ip(&store, &all)
        .await
        .into_iter()
        .map(|r| {
            (
                r.zone.to_string(),
                r.account.to_string(),
                r.ip.to_string(),
                r.bytes_sent,
            )
        })
        .collect();
    let ip_order: Vec<&str> = ips.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        ip_order,
        [
            "198.51.100.1",
            "203.0.113.9",
            "203.0.113.9",
            "203.0.113.10",
            "203.0.113.9",
            "2001:db8::7",
            "2001:db8::7"
        ]
    );
    let days = crate::fixtures::collect_rows(|each| store.report_by_day(&all, each)).await;
    let days: Vec<(String, time::Date, u64, u64)> = days
        .into_iter()
        .map(|d| (d.account.to_string(), d.day, d.bytes_sent, d.bytes_received))
        .collect();
    assert_eq!(
        days,
        [
            ("acct-42".to_owned(), date!(2026 - 11 - 01), 1, 2),
            ("acct-42".to_owned(), date!(2026 - 11 - 01), 2_001_005, 263),
            ("acct-7".to_owned(), date!(2026 - 11 - 01), 0, 40),
            ("acct-7".to_owned(), date!(2026 - 11 - 02), 300 + max, 1),
        ]
    );
    let anomalies = crate::fixtures::collect_rows(|each| store.report_anomalies(&all, each)).await;
    assert_eq!(anomalies.len(), 1);
    assert_eq!(
        (anomalies[0].event_id, anomalies[0].other_event_id),
        (17, Some(12))
    );
    let status = store.status().await.unwrap();
    assert_eq!(status.len(), 2);
    assert_eq!(status[1].zone, zone());
    assert_eq!(
        (
            status[1].checkpoint,
            status[1].windows,
            status[1].records,
            status[1].anomalies
        ),
        (datetime!(2026-11-03 00:00 UTC), 2, 6, 1)
    );
    assert_eq!(
        status[1].last_collected_at,
        Some(datetime!(2026-11-03 02:00 UTC))
    );

    // Ids are those of the current id function; digests are unknown.
    for record in crate::fixtures::by_ip(&store, &all).await {
        assert_eq!(
            record.id,
            usage_model::RecordId::of(
                &record.zone,
                &record.account,
                record.ip,
                record.start,
                record.end
            )
        );
    }
    assert_eq!(store.event_log_digest(&zone()).await.unwrap(), None);
    let edge = ZoneId::new("edge, \"west\"").unwrap();
    assert_eq!(
        store.checkpoint(&edge).await.unwrap(),
        Some(datetime!(2026-11-01 01:00 UTC))
    );
    let mut digests = Vec::new();
    store
        .billed_windows(&zone(), |w| {
            digests.push(w.ownership_digest);
            std::ops::ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!(digests, [None, None]);
    let filter = ReportFilter::new().account(AccountId::new("acct-7").unwrap());
    assert_eq!(crate::fixtures::by_account(&store, &filter).await.len(), 1);
    store.close().await;

    // The file left WAL mode, so read-only opens leave nothing beside it.
    let names: Vec<String> = files(dir.path()).into_keys().collect();
    assert_eq!(names, ["usage.db"]);
}

/// A server that is not there fails with the reason (the pool alone
/// retried for a minute and said only that it timed out).
#[tokio::test]
async fn a_server_that_refuses_fails_saying_why() {
    // Nothing listens on port 1.
    for target in [
        "postgres://postgres@127.0.0.1:1/usage",
        "mysql://root@127.0.0.1:1/usage",
    ] {
        let err = Store::open(&StoreTarget::parse(target).unwrap(), OpenMode::ReadOnly)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        // The cause, not the pool's "timed out" after retrying it.
        assert!(err.to_string().contains("refused"), "{target}: {err}");
    }
}
