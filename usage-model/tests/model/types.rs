//! Laws of the model types: record ids, byte counts, windows, serde.

use std::net::IpAddr;

use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;
use usage_model::{
    AccountId, ByteCounts, CollectionWindow, Error, IpEventKind, RecordId, UsageRecord, UsageType,
    ZoneId,
};

/// The documented layout of a record id's hashed bytes, built byte by byte:
/// length-prefixed zone and account, family byte and octets, start and end
/// as big-endian i128 Unix nanoseconds.
fn documented_layout(zone: &[u8], account: &[u8], family: u8, octets: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for text in [zone, account] {
        bytes.extend_from_slice(&(text.len() as u64).to_be_bytes());
        bytes.extend_from_slice(text);
    }
    bytes.push(family);
    bytes.extend_from_slice(octets);
    // 2026-11-01T10:00:00Z and 11:00:00Z in nanoseconds since the Unix epoch.
    bytes.extend_from_slice(&1_793_527_200_000_000_000_i128.to_be_bytes());
    bytes.extend_from_slice(&1_793_530_800_000_000_000_i128.to_be_bytes());
    bytes
}

fn zone() -> ZoneId {
    ZoneId::new("zone-1").unwrap()
}

fn account() -> AccountId {
    AccountId::new("acct-42").unwrap()
}

/// Pinned ids, computed independently of the crate (Python's `hashlib`:
/// `hashlib.sha256(layout).hexdigest()[:32]` over the documented layout). A
/// change of the layout changes every stored id, so it must show here.
#[test]
fn record_id_known_values() {
    let cases = [
        (
            "203.0.113.7",
            documented_layout(b"zone-1", b"acct-42", 4, &[203, 0, 113, 7]),
            "f475b0868358e5f3f9dc736daea8870b",
        ),
        (
            "2001:db8::7",
            documented_layout(
                b"zone-1",
                b"acct-42",
                6,
                &[
                    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07,
                ],
            ),
            "4e46e2e3c1b12752f2e7edd7f46c153b",
        ),
    ];
    for (ip, layout, pinned) in cases {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&layout);
        let first: [u8; 16] = digest[..16].try_into().unwrap();
        let id = RecordId::of(
            &zone(),
            &account(),
            ip.parse().unwrap(),
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC),
        );
        assert_eq!(id.as_u128(), u128::from_be_bytes(first), "{ip}");
        assert_eq!(id.to_string(), pinned, "{ip}");
    }
}

/// The length prefixes keep keys apart that a separator-based layout would
/// run together, and IPv4-mapped IPv6 addresses are the IPv4 address.
#[test]
fn record_ids_of_distinct_keys_differ() {
    let (start, end) = (
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 11:00 UTC),
    );
    let id = |zone: &str, account: &str, ip: &str| {
        RecordId::of(
            &ZoneId::new(zone).unwrap(),
            &AccountId::new(account).unwrap(),
            ip.parse().unwrap(),
            start,
            end,
        )
    };
    assert_ne!(id("ab", "c", "192.0.2.1"), id("a", "bc", "192.0.2.1"));
    assert_ne!(id("z", "a", "192.0.2.1"), id("z", "a", "192.0.2.2"));
    assert_eq!(id("z", "a", "::ffff:192.0.2.1"), id("z", "a", "192.0.2.1"));
}

#[test]
fn record_id_parsing() {
    let id: RecordId = "F475B0868358E5F3F9DC736DAEA8870B".parse().unwrap();
    assert_eq!(id.to_string(), "f475b0868358e5f3f9dc736daea8870b");
    for bad in [
        "",
        "d96b",
        "d96b9341fe51b79a2632e26c450a9cadd",
        "+96b9341fe51b79a2632e26c450a9cad",
        "g96b9341fe51b79a2632e26c450a9cad",
    ] {
        let err = bad.parse::<RecordId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid record id {bad:?}: expected 32 hex digits")
        );
    }
}

#[test]
fn usage_record_new_computes_the_id() {
    let record = UsageRecord::new(
        zone(),
        account(),
        "203.0.113.7".parse().unwrap(),
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 11:00 UTC),
        ByteCounts {
            sent: 7,
            received: 9,
        },
    );
    assert_eq!(record.id.to_string(), "f475b0868358e5f3f9dc736daea8870b");
    assert_eq!(
        record.bytes(),
        ByteCounts {
            sent: 7,
            received: 9
        }
    );
    assert_eq!(record.bytes_of(UsageType::BytesSent), 7);
    assert_eq!(record.bytes_of(UsageType::BytesReceived), 9);
}

#[test]
fn usage_types_are_cloudstack_codes() {
    let codes: Vec<u8> = UsageType::ALL.iter().map(|t| t.code()).collect();
    assert_eq!(codes, [4, 5]);
    for t in UsageType::ALL {
        assert_eq!(UsageType::from_code(t.code()), Some(t));
    }
    assert_eq!(UsageType::from_code(3), None);
}

#[test]
fn event_kinds_display_as_cloudstack_types() {
    assert_eq!(IpEventKind::Assign.to_string(), "NET.IPASSIGN");
    assert_eq!(IpEventKind::Release.to_string(), "NET.IPRELEASE");
    assert_eq!(
        IpEventKind::from_cloudstack_type("NET.IPRELEASE"),
        Some(IpEventKind::Release)
    );
    assert_eq!(IpEventKind::from_cloudstack_type("net.ipassign"), None);
}

#[test]
fn ids_refuse_empty_and_control_characters() {
    assert_eq!(
        AccountId::new("").unwrap_err().to_string(),
        r#"invalid account "": must not be empty"#
    );
    assert_eq!(
        ZoneId::new("z\n1").unwrap_err().to_string(),
        r#"invalid zone "z\n1": must not contain control characters"#
    );
    assert_eq!(AccountId::new("é \"x\"").unwrap().as_str(), "é \"x\"");
}

#[test]
fn collection_window_is_half_open_and_utc() {
    let window = CollectionWindow::new(
        datetime!(2026-11-01 12:00 +02:00),
        datetime!(2026-11-01 11:00 UTC),
    )
    .unwrap();
    assert_eq!(window.start().offset(), time::UtcOffset::UTC);
    assert!(window.contains(datetime!(2026-11-01 10:00 UTC)));
    assert!(window.contains(datetime!(2026-11-01 12:59:59.999 +02:00)));
    assert!(!window.contains(datetime!(2026-11-01 11:00 UTC)));
    assert!(!window.contains(datetime!(2026-11-01 09:59:59 UTC)));
    assert_eq!(window.interval().start(), window.start());
    assert_eq!(window.interval().end(), window.end());

    let at = datetime!(2026-11-01 10:00 UTC);
    assert!(matches!(
        CollectionWindow::new(at, at),
        Err(Error::EmptyWindow { .. })
    ));
}

#[test]
fn collection_window_refuses_instants_without_utc_equivalent() {
    let edge = datetime!(9999-12-31 23:59:59 -01:00);
    let err = CollectionWindow::new(datetime!(2026-11-01 10:00 UTC), edge).unwrap_err();
    assert!(matches!(err, Error::TimeOutOfRange { value } if value == edge));
}

fn ip_strategy() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn instant_strategy() -> impl Strategy<Value = OffsetDateTime> {
    (-62_167_219_200_i64..=253_402_300_799, 0u32..1_000_000_000).prop_map(|(secs, nanos)| {
        OffsetDateTime::from_unix_timestamp(secs)
            .unwrap()
            .replace_nanosecond(nanos)
            .unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn checked_add_never_wraps(a in any::<[u64; 2]>(), b in any::<[u64; 2]>()) {
        let left = ByteCounts { sent: a[0], received: a[1] };
        let right = ByteCounts { sent: b[0], received: b[1] };
        let sent = u128::from(a[0]) + u128::from(b[0]);
        let received = u128::from(a[1]) + u128::from(b[1]);
        let fits = sent <= u128::from(u64::MAX) && received <= u128::from(u64::MAX);
        match left.checked_add(right) {
            Ok(sum) => {
                prop_assert!(fits);
                prop_assert_eq!(u128::from(sum.sent), sent);
                prop_assert_eq!(u128::from(sum.received), received);
            }
            Err(Error::Overflow { left: l, right: r }) => {
                prop_assert!(!fits);
                prop_assert!(u128::from(l) + u128::from(r) > u128::from(u64::MAX));
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn checked_add_near_the_limit(x in any::<u64>(), y in any::<u64>()) {
        // Operands concentrated near u64::MAX so overflow is common.
        let near = |v: u64| u64::MAX - (v >> 1);
        let left = ByteCounts { sent: near(x), received: x >> 63 };
        let right = ByteCounts { sent: y >> 1, received: 0 };
        let sum = u128::from(left.sent) + u128::from(right.sent);
        match left.checked_add(right) {
            Ok(total) => prop_assert_eq!(u128::from(total.sent), sum),
            Err(_) => prop_assert!(sum > u128::from(u64::MAX)),
        }
    }

    #[test]
    fn record_id_is_deterministic_and_round_trips(
        zone in "[^\\p{Cc}]{1,16}",
        account in "[^\\p{Cc}]{1,16}",
        ip in ip_strategy(),
        start in instant_strategy(),
        end in instant_strategy(),
        offset_minutes in -60i32..=60,
    ) {
        let zone = ZoneId::new(zone).unwrap();
        let account = AccountId::new(account).unwrap();
        let id = RecordId::of(&zone, &account, ip, start, end);
        prop_assert_eq!(id, RecordId::of(&zone.clone(), &account.clone(), ip, start, end));
        // The offset an instant carries does not change the id.
        let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
        if let (Some(s), Some(e)) = (start.checked_to_offset(offset), end.checked_to_offset(offset)) {
            prop_assert_eq!(id, RecordId::of(&zone, &account, ip, s, e));
        }
        let text = id.to_string();
        prop_assert_eq!(text.len(), 32);
        prop_assert_eq!(text.parse::<RecordId>().unwrap(), id);
        prop_assert_eq!(text.to_uppercase().parse::<RecordId>().unwrap(), id);
    }

    /// Names of every length, short and past the key's stack buffer (192
    /// bytes), give the SHA-256 of the documented layout.
    #[test]
    fn record_id_is_the_hash_of_the_documented_layout_at_any_name_length(
        zone_len in 1usize..200,
        account_len in 1usize..200,
        v6 in any::<bool>(),
    ) {
        use sha2::Digest;
        let (zone_text, account_text) = ("z".repeat(zone_len), "a".repeat(account_len));
        let (family, octets, ip) = if v6 {
            (6, vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7], "2001:db8::7")
        } else {
            (4, vec![203, 0, 113, 7], "203.0.113.7")
        };
        let layout = documented_layout(zone_text.as_bytes(), account_text.as_bytes(), family, &octets);
        let digest = sha2::Sha256::digest(&layout);
        let first: [u8; 16] = digest[..16].try_into().unwrap();
        let id = RecordId::of(
            &ZoneId::new(zone_text).unwrap(),
            &AccountId::new(account_text).unwrap(),
            ip.parse().unwrap(),
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC),
        );
        prop_assert_eq!(id.as_u128(), u128::from_be_bytes(first));
    }

    #[test]
    fn record_id_display_parse_round_trip_any_value(bits in any::<u128>()) {
        let text = format!("{bits:032x}");
        let id: RecordId = text.parse().unwrap();
        prop_assert_eq!(id.as_u128(), bits);
        prop_assert_eq!(id.to_string(), text);
    }

    #[test]
    fn record_id_changes_with_the_end(
        ip in ip_strategy(),
        start in instant_strategy(),
        nanos in 1i64..1_000_000_000_000,
    ) {
        let end = start + time::Duration::nanoseconds(nanos);
        let a = RecordId::of(&zone(), &account(), ip, start, end);
        let b = RecordId::of(&zone(), &account(), ip, start, end + time::Duration::nanoseconds(1));
        prop_assert_ne!(a, b);
    }
}

#[cfg(feature = "serde")]
mod serde_round_trip {
    use usage_model::{
        Checkpoint, IpEvent, Ownership, QueryTag, TimeInterval, TrafficAnswer, TrafficQuery,
    };

    use super::*;

    fn round_trip<T>(value: &T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_string(value).unwrap();
        let back: T = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, value, "through {json}");
        back
    }

    fn interval() -> TimeInterval {
        TimeInterval::new(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC),
        )
        .unwrap()
    }

    #[test]
    fn every_data_type_round_trips() {
        let ip: IpAddr = "2001:db8::7".parse().unwrap();
        round_trip(&zone());
        round_trip(&account());
        round_trip(&IpEventKind::Release);
        round_trip(&UsageType::BytesReceived);
        round_trip(&ByteCounts {
            sent: u64::MAX,
            received: 1,
        });
        round_trip(&QueryTag(7));
        round_trip(&Checkpoint {
            zone: zone(),
            at: datetime!(2026-11-01 11:00 UTC),
        });
        round_trip(&Ownership {
            zone: zone(),
            account: account(),
            ip,
            interval: interval(),
        });
        round_trip(&TrafficQuery {
            tag: QueryTag(1),
            interval: interval(),
            ips: vec![ip],
        });
        let window = CollectionWindow::new(interval().start(), interval().end()).unwrap();
        round_trip(&window);
        let record = UsageRecord::new(
            zone(),
            account(),
            ip,
            interval().start(),
            interval().end(),
            ByteCounts {
                sent: 5,
                received: 6,
            },
        );
        round_trip(&record.id);
        round_trip(&record);
        let mut answer = TrafficAnswer::new();
        answer
            .insert(
                QueryTag(0),
                ip,
                ByteCounts {
                    sent: 1,
                    received: 2,
                },
            )
            .unwrap();
        answer.insert(QueryTag(1), ip, ByteCounts::ZERO).unwrap();
        round_trip(&answer);
        round_trip(&IpEvent {
            id: 17,
            at: datetime!(2026-11-01 10:00:00.5 UTC),
            zone: zone(),
            account: account(),
            ip,
            kind: IpEventKind::Assign,
        });
    }

    #[test]
    fn shapes_are_readable() {
        let event = IpEvent {
            id: 17,
            at: datetime!(2026-11-01 12:00 +02:00),
            zone: zone(),
            account: account(),
            ip: "203.0.113.7".parse().unwrap(),
            kind: IpEventKind::Assign,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"id":17,"at":"2026-11-01T10:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7","type":"NET.IPASSIGN"}"#
        );
        // An events-file line deserializes too, offset converted to UTC.
        let line = r#"{"id":17,"type":"NET.IPASSIGN","at":"2026-11-01T12:00:00+02:00","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}"#;
        let parsed: IpEvent = serde_json::from_str(line).unwrap();
        assert_eq!(parsed, event);
        assert_eq!(parsed.at.offset(), time::UtcOffset::UTC);

        let window = CollectionWindow::new(interval().start(), interval().end()).unwrap();
        assert_eq!(
            serde_json::to_string(&window).unwrap(),
            r#"{"start":"2026-11-01T10:00:00Z","end":"2026-11-01T11:00:00Z"}"#
        );
        let mut answer = TrafficAnswer::new();
        answer
            .insert(
                QueryTag(0),
                "203.0.113.7".parse().unwrap(),
                ByteCounts {
                    sent: 1,
                    received: 2,
                },
            )
            .unwrap();
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"[{"tag":0,"ip":"203.0.113.7","sent":1,"received":2}]"#
        );
    }

    #[test]
    fn deserializing_checks_invariants() {
        let refuse = |what: &str, result: Result<(), serde_json::Error>, needle: &str| {
            let err = result.expect_err(what).to_string();
            assert!(err.contains(needle), "{what}: {err:?} lacks {needle:?}");
        };
        refuse(
            "empty window",
            serde_json::from_str::<CollectionWindow>(
                r#"{"start":"2026-11-01T10:00:00Z","end":"2026-11-01T10:00:00Z"}"#,
            )
            .map(drop),
            "empty collection window",
        );
        refuse(
            "reversed interval",
            serde_json::from_str::<Ownership>(
                r#"{"zone":"z","account":"a","ip":"10.0.0.1","interval":{"start":"2026-11-01T11:00:00Z","end":"2026-11-01T10:00:00Z"}}"#,
            )
            .map(drop),
            "is after its end",
        );
        refuse(
            "empty account",
            serde_json::from_str::<AccountId>(r#""""#).map(drop),
            "must not be empty",
        );
        refuse(
            "bad timestamp",
            serde_json::from_str::<usage_model::Checkpoint>(
                r#"{"zone":"z","at":"2026-13-01T00:00:00Z"}"#,
            )
            .map(drop),
            r#"invalid RFC 3339 timestamp "2026-13-01T00:00:00Z""#,
        );
        refuse(
            "duplicate answer pair",
            serde_json::from_str::<TrafficAnswer>(
                r#"[{"tag":0,"ip":"10.0.0.1","sent":1,"received":2},{"tag":0,"ip":"10.0.0.1","sent":0,"received":0}]"#,
            )
            .map(drop),
            "duplicate answer for query 0 and ip 10.0.0.1",
        );
        let record = UsageRecord::new(
            zone(),
            account(),
            "203.0.113.7".parse().unwrap(),
            interval().start(),
            interval().end(),
            ByteCounts::ZERO,
        );
        let json = serde_json::to_string(&record)
            .unwrap()
            .replace("acct-42", "acct-43");
        refuse(
            "record id mismatch",
            serde_json::from_str::<UsageRecord>(&json).map(drop),
            "does not match its fields",
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn records_round_trip(
            zone in "[^\\p{Cc}]{1,12}",
            account in "[^\\p{Cc}]{1,12}",
            ip in ip_strategy(),
            start in instant_strategy(),
            end in instant_strategy(),
            sent in any::<u64>(),
            received in any::<u64>(),
        ) {
            let record = UsageRecord::new(
                ZoneId::new(zone).unwrap(),
                AccountId::new(account).unwrap(),
                ip,
                start,
                end,
                ByteCounts { sent, received },
            );
            let json = serde_json::to_string(&record).unwrap();
            let back: UsageRecord = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, record);
        }
    }
}
