//! The zone's traffic monitor as CloudStack registered it (MariaDB/MySQL
//! only).

use usage_model::ZoneId;
use usage_store::{RegisteredTrafficMonitor, StoreError};

use crate::cloud_database::CloudDb;

/// Monitors as `addTrafficMonitor` leaves them, among other hosts:
///
/// * zone 1: host 3 with every detail; host 2, removed; host 1, a routing
///   host;
/// * zone 2: host 6, registered without zone lists (without CloudStack's
///   `configuration` table, the defaults);
/// * zone 3: host 7, without a `url` detail;
/// * zone 4: hosts 8 and 10, both live (a registry CloudStack would refuse);
/// * zone 5: host 11, with empty zone lists;
/// * zone 9: host 12, removed; nothing live.
const REGISTRY: [&str; 2] = [
    "INSERT INTO host (id, name, uuid, type, data_center_id, guid, removed) VALUES
        (1, 'kvm-1', 'u-1', 'Routing', 1, 'g-1', NULL),
        (2, 'ts-old', 'u-2', 'TrafficMonitor', 1, 'g-2', '2026-10-01 00:00:00'),
        (3, 'ts-1', 'u-3', 'TrafficMonitor', 1, 'g-3', NULL),
        (6, 'ts-2', 'u-6', 'TrafficMonitor', 2, 'g-6', NULL),
        (7, 'ts-3', 'u-7', 'TrafficMonitor', 3, 'g-7', NULL),
        (8, 'ts-4a', 'u-8', 'TrafficMonitor', 4, 'g-8', NULL),
        (10, 'ts-4b', 'u-10', 'TrafficMonitor', 4, 'g-10', NULL),
        (11, 'ts-5', 'u-11', 'TrafficMonitor', 5, 'g-11', NULL),
        (12, 'ts-9', 'u-12', 'TrafficMonitor', 9, 'g-12', '2026-10-01 00:00:00')",
    "INSERT INTO host_details (host_id, name, value) VALUES
        (1, 'url', 'http://not-a-monitor'),
        (2, 'url', 'http://ts-old.example:8080'),
        (3, 'url', 'http://ts.example:8080'),
        (3, 'last_collection', '1793491200000'),
        (3, 'inclZones', 'EXTERNAL,PEERING'),
        (3, 'exclZones', 'INTERNAL'),
        (6, 'url', 'https://ts2.example'),
        (6, 'last_collection', '1793491200000'),
        (7, 'last_collection', '1793491200000'),
        (8, 'url', 'http://ts4a.example'),
        (10, 'url', 'http://ts4b.example'),
        (11, 'url', 'http://ts5.example'),
        (11, 'inclZones', ''),
        (11, 'exclZones', ' ,'),
        (12, 'url', 'http://ts9.example')",
];

fn monitor(
    host_id: u64,
    url: &str,
    include: &[&str],
    exclude: &[&str],
) -> RegisteredTrafficMonitor {
    let owned = |zones: &[&str]| zones.iter().map(|z| (*z).to_owned()).collect();
    RegisteredTrafficMonitor {
        host_id,
        url: url.to_owned(),
        include_zones: owned(include),
        exclude_zones: owned(exclude),
    }
}

#[tokio::test]
async fn registered_monitors_are_found_with_their_zones() {
    let Some(db) = CloudDb::create().await else {
        return;
    };
    db.execute(&REGISTRY).await;
    let cloud = db.connect().await;
    let cases = [
        (
            "1",
            monitor(
                3,
                "http://ts.example:8080",
                &["EXTERNAL", "PEERING"],
                &["INTERNAL"],
            ),
        ),
        // No inclZones / exclZones: the defaults.
        ("2", monitor(6, "https://ts2.example", &["EXTERNAL"], &[])),
        // Present but empty: no zone condition, as in CloudStack.
        ("5", monitor(11, "http://ts5.example", &[], &[])),
    ];
    for (zone, want) in cases {
        let found = cloud
            .traffic_monitor(&ZoneId::new(zone).unwrap())
            .await
            .unwrap();
        assert_eq!(found, want, "zone {zone}");
    }
    cloud.close().await;
}

/// A monitor registered without zone lists takes CloudStack's global
/// settings, as its Traffic Sentinel resource does; one with its own lists
/// keeps them; a `NULL` setting is no zone condition.
#[tokio::test]
async fn global_settings_give_the_lists_a_registration_lacks() {
    let Some(db) = CloudDb::create().await else {
        return;
    };
    db.execute(&REGISTRY).await;
    // As CloudStack's create-schema.sql declares the columns read.
    db.execute(&[
        "CREATE TABLE configuration (
            category varchar(255) NOT NULL DEFAULT 'Advanced',
            instance varchar(255) NOT NULL,
            component varchar(255) NOT NULL DEFAULT 'management-server',
            name varchar(255) NOT NULL,
            value varchar(4095),
            description varchar(1024),
            PRIMARY KEY (name)
        )",
        "INSERT INTO configuration (category, instance, name, value) VALUES
            ('Usage', 'DEFAULT', 'traffic.sentinel.include.zones', 'EXTERNAL, PEERING'),
            ('Usage', 'DEFAULT', 'traffic.sentinel.exclude.zones', 'INTERNAL')",
    ])
    .await;
    let cloud = db.connect().await;
    let zone = |z: &str| ZoneId::new(z).unwrap();
    assert_eq!(
        cloud.traffic_monitor(&zone("2")).await.unwrap(),
        monitor(
            6,
            "https://ts2.example",
            &["EXTERNAL", "PEERING"],
            &["INTERNAL"]
        )
    );
    // Its own lists, even empty ones, are kept.
    assert_eq!(
        cloud.traffic_monitor(&zone("5")).await.unwrap(),
        monitor(11, "http://ts5.example", &[], &[])
    );
    db.execute(&[
        "UPDATE configuration SET value = NULL WHERE name = 'traffic.sentinel.include.zones'",
    ])
    .await;
    assert_eq!(
        cloud.traffic_monitor(&zone("2")).await.unwrap(),
        monitor(6, "https://ts2.example", &[], &["INTERNAL"])
    );
    cloud.close().await;
}

#[tokio::test]
async fn missing_and_corrupt_registrations_are_errors() {
    let Some(db) = CloudDb::create().await else {
        return;
    };
    db.execute(&REGISTRY).await;
    let cloud = db.connect().await;
    let cases = [
        // Host 12 is removed: zone 9 has no monitor.
        (
            "9",
            "zone 9 has no traffic monitor registered in CloudStack: no live host of type TrafficMonitor with data_center_id 9 (add one with addTrafficMonitor)",
        ),
        (
            "77",
            "zone 77 has no traffic monitor registered in CloudStack: no live host of type TrafficMonitor with data_center_id 77 (add one with addTrafficMonitor)",
        ),
        (
            "zone-1",
            "zone zone-1 has no traffic monitor registered in CloudStack: no live host of type TrafficMonitor with data_center_id zone-1 (CloudStack zones are numeric ids)",
        ),
        (
            "4",
            "corrupt host row 8, 10: column data_center_id: zone 4 has 2 live traffic monitors (hosts 8, 10); CloudStack registers one per zone",
        ),
        (
            "3",
            "corrupt host_details row host_id 7: column value: traffic monitor host 7 has no url detail (or an empty one)",
        ),
    ];
    for (zone, want) in cases {
        let err = cloud
            .traffic_monitor(&ZoneId::new(zone).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), want, "zone {zone}");
    }
    let err = cloud
        .traffic_monitor(&ZoneId::new("9").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NoTrafficMonitor { zone, .. } if zone.as_str() == "9"),
        "{err:?}"
    );

    // A detail given twice.
    db.execute(&["INSERT INTO host_details (id, host_id, name, value) VALUES (100, 6, 'url', 'http://other.example')"])
        .await;
    let err = cloud
        .traffic_monitor(&ZoneId::new("2").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { table: "host_details", key, .. } if key == "100"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("second url detail of traffic monitor host 6"),
        "{err}"
    );

    // A zone in both lists: nothing could ever be billed (DESIGN §4).
    db.execute(&[
        "UPDATE host_details SET value = 'EXTERNAL, PEERING' WHERE host_id = 11 AND name = 'inclZones'",
        "UPDATE host_details SET value = 'PEERING' WHERE host_id = 11 AND name = 'exclZones'",
    ])
    .await;
    let err = cloud
        .traffic_monitor(&ZoneId::new("5").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Corrupt {
                table: "host_details",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().ends_with(
            "column value: traffic monitor host 11 has zone PEERING in both inclZones and exclZones; no traffic could match"
        ),
        "{err}"
    );
    cloud.close().await;
}
