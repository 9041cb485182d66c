//! Usage events read from CloudStack's `usage_event` table (MariaDB/MySQL
//! only).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::ops::ControlFlow;

use time::OffsetDateTime;
use time::macros::datetime;
use usage_correlator::{LedgerOptions, OwnershipLedger};
use usage_model::{AccountId, IpEvent, IpEventKind, ZoneId};
use usage_store::{
    AnomalyRow, CloudStackDatabase, NOT_AN_IP_ADDRESS, StoreError, StoreTarget, UsageEventOptions,
    UsageEventsRead,
};

use crate::cloud_database::CloudDb;

/// A pruned `usage_event` (ids from 1001) with the noise a real one holds:
/// other event types, `VirtualNetwork` and differently spelled rows, names
/// that are not addresses, two zones, IPv6 and an IPv4-mapped address.
const FIXTURE: &str = "INSERT INTO usage_event
    (id, type, account_id, created, zone_id, resource_id, resource_name, offering_id, size, resource_type)
VALUES
    (1001, 'VM.CREATE', 2, '2026-11-01 09:00:00', 1, 501, 'vm-1', 7, NULL, NULL),
    (1002, 'NET.IPASSIGN', 42, '2026-11-01 10:00:00', 1, 601, '10.1.1.5', 0, 0, 'DirectAttached'),
    (1003, 'NET.IPASSIGN', 43, '2026-11-01 10:05:00', 1, 602, '203.0.113.9', 1, 0, 'VirtualNetwork'),
    (1004, 'NET.IPASSIGN', 44, '2026-11-01 10:10:00', 2, 603, '2001:db8::7', 0, 0, 'DirectAttached'),
    (1005, 'NETWORK.OFFERING.ASSIGN', 42, '2026-11-01 10:15:00', 1, 501, 'i-2-501-VM', 9, NULL, NULL),
    (1006, 'NET.IPASSIGN', 45, '2026-11-01 10:20:00', 1, 604, 'vm-12', 0, 0, 'DirectAttached'),
    (1007, 'NET.IPASSIGN', 46, '2026-11-01 10:30:00', 1, 605, '::ffff:10.1.1.6', 0, 0, 'DirectAttached'),
    (1008, 'PORTABLE.IPRELEASE', 42, '2026-11-01 10:45:00', 1, 606, '10.1.1.5', 0, 0, 'DirectAttached'),
    (1009, 'NET.IPRELEASE', 42, '2026-11-01 11:00:00', 1, 601, '10.1.1.5', 0, 0, 'DirectAttached'),
    (1010, 'NET.IPRELEASE', 43, '2026-11-01 11:00:00', 1, 602, '203.0.113.9', 1, 0, 'VirtualNetwork'),
    (1011, 'NET.IPASSIGN', 47, '2026-11-01 11:00:00', 1, 607, '10.1.1.5', 0, 0, 'DirectAttached'),
    (1012, 'net.ipassign', 48, '2026-11-01 11:10:00', 1, 608, '10.1.1.7', 0, 0, 'DirectAttached'),
    (1013, 'NET.IPASSIGN', 49, '2026-11-01 11:20:00', 1, 609, '10.1.1.8', 0, 0, 'directattached'),
    (1014, 'NET.IPRELEASE', 44, '2026-11-01 23:59:59', 2, 603, '2001:db8::7', 0, 0, 'DirectAttached'),
    (1015, 'NET.IPRELEASE', 45, '2026-11-02 00:00:00', 1, 604, '', 0, 0, 'DirectAttached'),
    (1016, 'VM.DESTROY', 2, '2026-11-02 01:00:00', 1, 501, 'vm-1', 7, NULL, NULL)";

fn event(
    id: u64,
    at: OffsetDateTime,
    zone: &str,
    account: &str,
    ip: &str,
    kind: IpEventKind,
) -> IpEvent {
    IpEvent {
        id,
        at,
        zone: ZoneId::new(zone).unwrap(),
        account: AccountId::new(account).unwrap(),
        ip: ip.parse().unwrap(),
        kind,
    }
}

/// Every event of `options`, and what the read said.
async fn read_all(
    cloud: &CloudStackDatabase,
    options: &UsageEventOptions,
) -> (Vec<IpEvent>, UsageEventsRead) {
    let mut events = Vec::new();
    let read = cloud
        .read_ip_events(options, |event| {
            events.push(event);
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    (events, read)
}

#[tokio::test]
async fn direct_attached_address_events_are_mapped_exactly() {
    let Some(db) = CloudDb::create().await else {
        return;
    };
    db.execute(&[FIXTURE]).await;
    let cloud = db.connect().await;
    let (events, read) = read_all(&cloud, &UsageEventOptions::new()).await;
    use IpEventKind::{Assign, Release};
    assert_eq!(
        events,
        [
            event(
                1002,
                datetime!(2026-11-01 10:00 UTC),
                "1",
                "42",
                "10.1.1.5",
                Assign
            ),
            event(
                1004,
                datetime!(2026-11-01 10:10 UTC),
                "2",
                "44",
                "2001:db8::7",
                Assign
            ),
            event(
                1007,
                datetime!(2026-11-01 10:30 UTC),
                "1",
                "46",
                "10.1.1.6",
                Assign
            ),
            event(
                1009,
                datetime!(2026-11-01 11:00 UTC),
                "1",
                "42",
                "10.1.1.5",
                Release
            ),
            event(
                1011,
                datetime!(2026-11-01 11:00 UTC),
                "1",
                "47",
                "10.1.1.5",
                Assign
            ),
            event(
                1014,
                datetime!(2026-11-01 23:59:59 UTC),
                "2",
                "44",
                "2001:db8::7",
                Release
            ),
        ]
    );
    // The IPv4-mapped name is the IPv4 address itself.
    assert!(matches!(events[2].ip, IpAddr::V4(_)));
    assert!(events.iter().all(|e| e.at.offset().is_utc()));
    assert_eq!(read.events, 6);

    // The rows that name no address are reported and skipped, in id order.
    let skipped: Vec<(u64, &str)> = read
        .skipped
        .iter()
        .map(|s| (s.id, s.resource_name.as_str()))
        .collect();
    assert_eq!(skipped, [(1006, "vm-12"), (1015, "")]);
    let first = &read.skipped[0];
    assert_eq!(
        first.detail,
        r#"usage_event 1006: resource_name "vm-12" is not an IP address (NET.IPASSIGN, account 45, zone 1); skipped"#
    );
    assert_eq!(
        (
            first.at,
            first.zone.as_str(),
            first.account.as_str(),
            first.event_kind
        ),
        (datetime!(2026-11-01 10:20 UTC), "1", "45", Assign)
    );
    assert!(read.skipped.iter().all(|s| !s.detail.contains('\n')));
    assert_eq!(
        read.skipped[1].anomaly_row(),
        AnomalyRow {
            kind: NOT_AN_IP_ADDRESS.to_owned(),
            event_id: 1015,
            other_event_id: None,
            detail: r#"usage_event 1015: resource_name "" is not an IP address (NET.IPRELEASE, account 45, zone 1); skipped"#.to_owned(),
        }
    );
    assert_eq!(NOT_AN_IP_ADDRESS, "not-an-ip-address");
    cloud.close().await;
}

#[tokio::test]
async fn the_resource_type_is_an_option() {
    let Some(db) = CloudDb::create().await else {
        return;
    };
    db.execute(&[FIXTURE]).await;
    let cloud = db.connect().await;
    let cases: [(&str, &[u64], &[u64]); 4] = [
        ("VirtualNetwork", &[1003, 1010], &[]),
        (
            "DirectAttached",
            &[1002, 1004, 1007, 1009, 1011, 1014],
            &[1006, 1015],
        ),
        // Compared byte by byte, as CloudStack compares it.
        ("directattached", &[1013], &[]),
        ("Unknown", &[], &[]),
    ];
    for (resource_type, want, want_skipped) in cases {
        let options = UsageEventOptions::new().resource_type(resource_type);
        let (events, read) = read_all(&cloud, &options).await;
        let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, want, "{resource_type}");
        let skipped: Vec<u64> = read.skipped.iter().map(|s| s.id).collect();
        assert_eq!(skipped, want_skipped, "{resource_type}");
    }
    let (events, _) = read_all(
        &cloud,
        &UsageEventOptions::new().resource_type("VirtualNetwork"),
    )
    .await;
    assert_eq!(
        events[0],
        event(
            1003,
            datetime!(2026-11-01 10:05 UTC),
            "1",
            "43",
            "203.0.113.9",
            IpEventKind::Assign
        )
    );
    cloud.close().await;
}

#[tokio::test]
async fn events_feed_the_ownership_ledger_one_at_a_time() {
    let Some(db) = CloudDb::create().await else {
        return;
    };
    db.execute(&[FIXTURE]).await;
    let cloud = db.connect().await;

    // The caller stops the stream: nothing more is handed over.
    let mut seen = Vec::new();
    let read = cloud
        .read_ip_events(&UsageEventOptions::new(), |event| {
            seen.push(event.id);
            if seen.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await
        .unwrap();
    assert_eq!(seen, [1002, 1004]);
    assert_eq!(read.events, 2);
    assert!(read.skipped.is_empty(), "the read stopped before row 1006");

    // The events go straight into the ledger's input.
    let mut events = Vec::new();
    cloud
        .read_ip_events(&UsageEventOptions::new(), |event| {
            events.push(event);
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    let ledger = OwnershipLedger::from_events(LedgerOptions::new(), events);
    assert!(ledger.anomalies().is_empty(), "{:?}", ledger.anomalies());
    let zone_1 = ZoneId::new("1").unwrap();
    let zone_2 = ZoneId::new("2").unwrap();
    let holder = |zone: &ZoneId, ip: &str, at| {
        ledger
            .holder_at(zone, ip.parse().unwrap(), at)
            .map(|a| a.to_string())
    };
    let cases = [
        (
            &zone_1,
            "10.1.1.5",
            datetime!(2026-11-01 10:59:59 UTC),
            Some("42"),
        ),
        (
            &zone_1,
            "10.1.1.5",
            datetime!(2026-11-01 11:00 UTC),
            Some("47"),
        ),
        (
            &zone_1,
            "10.1.1.6",
            datetime!(2026-11-01 10:30 UTC),
            Some("46"),
        ),
        (&zone_1, "10.1.1.7", datetime!(2026-11-01 12:00 UTC), None),
        (
            &zone_2,
            "2001:db8::7",
            datetime!(2026-11-01 12:00 UTC),
            Some("44"),
        ),
        (
            &zone_2,
            "2001:db8::7",
            datetime!(2026-11-02 00:00 UTC),
            None,
        ),
    ];
    for (zone, ip, at, want) in cases {
        assert_eq!(holder(zone, ip, at).as_deref(), want, "{zone} {ip} {at}");
    }
    cloud.close().await;
}

#[tokio::test]
async fn unreadable_rows_are_errors_naming_row_and_column() {
    let Some(db) = CloudDb::create().await else {
        return;
    };
    db.execute(&[
        "ALTER TABLE usage_event MODIFY created datetime NULL, MODIFY zone_id bigint unsigned NULL",
        "INSERT INTO usage_event (id, type, account_id, created, zone_id, resource_name, resource_type)
         VALUES (5, 'NET.IPASSIGN', 42, '2026-11-01 10:00:00', 1, '10.1.1.5', 'DirectAttached'),
                (6, 'NET.IPASSIGN', 42, NULL, 1, '10.1.1.6', 'DirectAttached')",
    ])
    .await;
    let cloud = db.connect().await;
    let mut events = Vec::new();
    let err = cloud
        .read_ip_events(&UsageEventOptions::new(), |event| {
            events.push(event.id);
            ControlFlow::Continue(())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Corrupt {
                table: "usage_event",
                column: "created",
                key,
                ..
            } if key == "6"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "corrupt usage_event row 6: column created: NULL or not a valid date"
    );
    assert_eq!(events, [5], "the event before the bad row was handed over");
    // Row 6 is of zone 1: collecting zone 2 only, it is passed over, and
    // collecting zone 1 it is refused as before.
    let zones = |z: &str| UsageEventOptions::new().collected_zones([ZoneId::new(z).unwrap()]);
    let (events, _) = read_all(&cloud, &zones("2")).await;
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [5]);
    let err = cloud
        .read_ip_events(&zones("1"), |_| ControlFlow::Continue(()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row 6"), "{err}");

    db.execute(&[
        "DELETE FROM usage_event WHERE id = 6",
        "INSERT INTO usage_event (id, type, account_id, created, zone_id, resource_name, resource_type)
         VALUES (7, 'NET.IPRELEASE', 42, '2026-11-01 11:00:00', NULL, '10.1.1.5', 'DirectAttached')",
    ])
    .await;
    let err = cloud
        .read_ip_events(&UsageEventOptions::new(), |_| ControlFlow::Continue(()))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt usage_event row 7: column zone_id: NULL"
    );
    cloud.close().await;

    // A database without CloudStack's table.
    db.execute(&["DROP TABLE usage_event"]).await;
    let cloud = db.connect().await;
    let err = cloud
        .read_ip_events(&UsageEventOptions::new(), |_| ControlFlow::Continue(()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Database { .. }) && err.to_string().contains("usage_event"),
        "{err}"
    );
    cloud.close().await;
}

#[tokio::test]
async fn only_mysql_targets_are_cloudstack_databases() {
    let target = StoreTarget::parse("postgres://cloud@127.0.0.1/cloud").unwrap();
    let err = CloudStackDatabase::connect(&target).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidTarget { .. }), "{err:?}");
    assert!(err.to_string().contains("mysql://"), "{err}");

    let Some(db) = CloudDb::create().await else {
        return;
    };
    let wrong = StoreTarget::parse(&format!("{}", db.target))
        .unwrap()
        .with_password("n0t-the-pa55word")
        .unwrap();
    let err = CloudStackDatabase::connect(&wrong).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(!err.to_string().contains("n0t-the-pa55word"), "{err}");
    assert!(!format!("{err:?}").contains("n0t-the-pa55word"), "{err:?}");
}

/// 200k rows, a fifth of them noise, inserted by multi-row `INSERT`s and
/// counted back through the stream without keeping them.
#[tokio::test]
async fn a_large_table_is_streamed() {
    const ROWS: u64 = 200_000;
    const BATCH: u64 = 5_000;
    let Some(db) = CloudDb::create().await else {
        return;
    };
    let start = datetime!(2026-11-01 00:00 UTC).unix_timestamp();
    let mut statements = Vec::new();
    for batch in 0..ROWS / BATCH {
        let mut sql = String::from(
            "INSERT INTO usage_event (id, type, account_id, created, zone_id, resource_name, resource_type) VALUES ",
        );
        for i in batch * BATCH..(batch + 1) * BATCH {
            // Ids from 1000, every tenth row another type, every tenth
            // (offset 5) a VirtualNetwork one.
            let kind = match i % 10 {
                0 => "VM.CREATE",
                n if n % 2 == 1 => "NET.IPASSIGN",
                _ => "NET.IPRELEASE",
            };
            let resource_type = if i % 10 == 5 {
                "VirtualNetwork"
            } else {
                "DirectAttached"
            };
            let at =
                OffsetDateTime::from_unix_timestamp(start + i64::try_from(i).unwrap()).unwrap();
            let ip = std::net::Ipv4Addr::from(0x0a00_0000_u32 + u32::try_from(i / 2).unwrap());
            if i != batch * BATCH {
                sql.push(',');
            }
            write!(
                sql,
                "({}, '{kind}', {}, '{} {:02}:{:02}:{:02}', {}, '{ip}', '{resource_type}')",
                1000 + i,
                i % 997,
                at.date(),
                at.hour(),
                at.minute(),
                at.second(),
                1 + i % 3
            )
            .unwrap();
        }
        statements.push(sql);
    }
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    db.execute(&statements).await;

    let cloud = db.connect().await;
    let mut count = 0_u64;
    let mut last_id = 0_u64;
    let mut in_order = true;
    let mut last_at = None;
    let read = cloud
        .read_ip_events(&UsageEventOptions::new(), |event| {
            count += 1;
            in_order &= event.id > last_id;
            last_id = event.id;
            last_at = Some(event.at);
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!(count, ROWS / 10 * 8);
    assert_eq!(read.events, count);
    assert!(read.skipped.is_empty());
    assert!(in_order, "events come in id order");
    assert_eq!(last_id, 1000 + ROWS - 1);
    assert_eq!(
        last_at,
        OffsetDateTime::from_unix_timestamp(start + i64::try_from(ROWS).unwrap() - 1).ok()
    );
    cloud.close().await;
}

/// Only the skipped rows of the zones asked for are listed (memory does not
/// grow with other zones' rows, DESIGN §11); events of every zone are
/// still handed over.
#[tokio::test]
async fn skipped_rows_of_other_zones_are_not_listed() {
    let Some(db) = CloudDb::create().await else {
        return;
    };
    db.execute(&[FIXTURE]).await;
    let cloud = db.connect().await;
    for (zones, want_skipped) in [(&["2"][..], &[][..]), (&["1", "2"], &[1006, 1015])] {
        let options = UsageEventOptions::new()
            .collected_zones(zones.iter().map(|z| ZoneId::new(*z).unwrap()));
        let (events, read) = read_all(&cloud, &options).await;
        assert_eq!(events.len(), 6, "{zones:?}");
        let skipped: Vec<u64> = read.skipped.iter().map(|s| s.id).collect();
        assert_eq!(skipped, want_skipped, "{zones:?}");
    }
    cloud.close().await;
}
