//! The digests stored with billed windows (DESIGN §4, late events) are
//! pinned: a digest that changed between versions would read as a late
//! event for every window billed before the upgrade.

use std::net::IpAddr;

use time::OffsetDateTime;
use time::macros::datetime;
use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan};
use usage_model::{AccountId, CollectionWindow, Grid, IpEvent, IpEventKind, ZoneId};

fn event(id: u64, at: OffsetDateTime, account: &str, ip: IpAddr, kind: IpEventKind) -> IpEvent {
    IpEvent {
        id,
        at,
        zone: ZoneId::new("zone-1").unwrap(),
        account: AccountId::new(account).unwrap(),
        ip,
        kind,
    }
}

/// A handover, an address released within the window and an IPv6 address
/// held throughout; then `extra` more IPv4 addresses held throughout, so
/// that a plan's pieces run past the digest's 8 KiB runs.
fn ledger(extra: u32) -> OwnershipLedger {
    let start = datetime!(2026-11-01 00:00 UTC);
    let mut events = vec![
        event(
            1,
            start,
            "acct-a",
            "192.0.2.1".parse().unwrap(),
            IpEventKind::Assign,
        ),
        event(
            2,
            start,
            "acct-b",
            "2001:db8::1".parse().unwrap(),
            IpEventKind::Assign,
        ),
        event(
            3,
            datetime!(2026-11-01 01:30 UTC),
            "acct-a",
            "192.0.2.1".parse().unwrap(),
            IpEventKind::Release,
        ),
        event(
            4,
            datetime!(2026-11-01 01:45 UTC),
            "acct-c",
            "192.0.2.1".parse().unwrap(),
            IpEventKind::Assign,
        ),
    ];
    for k in 0..extra {
        let ip = IpAddr::from(std::net::Ipv4Addr::from_bits(0x0a00_0000 + k));
        events.push(event(
            10 + u64::from(k),
            start,
            "acct-d",
            ip,
            IpEventKind::Assign,
        ));
    }
    OwnershipLedger::from_events(LedgerOptions::new(), events)
}

fn digests(extra: u32) -> (String, String) {
    let ledger = ledger(extra);
    let zone = ZoneId::new("zone-1").unwrap();
    let window = CollectionWindow::new(
        datetime!(2026-11-01 00:00 UTC),
        datetime!(2026-11-01 03:00 UTC),
    )
    .unwrap();
    let plan = QueryPlan::new(&ledger, &zone, window, Grid::HOURLY).unwrap();
    (
        plan.ownership_digest().to_string(),
        ledger
            .event_log_digest(&zone, datetime!(2026-11-01 03:00 UTC))
            .to_string(),
    )
}

/// Pinned from the implementation that hashed field by field (before the
/// ownership digest fed the hash in runs); the bytes hashed are the same.
#[test]
fn ownership_and_event_log_digests_are_pinned() {
    assert_eq!(
        digests(0),
        (
            "ce522ada74771474c6eadc1d9b178c9a8a928c3bb9c6476f3403af19caef254c".to_owned(),
            "fa27d041157c66b9197a48b06e09bf3c10ef6924d360d2019dfe4f7bdce58a4b".to_owned()
        )
    );
    assert_eq!(
        digests(500),
        (
            "0e254e55337b3a0acdf51e42f147781cdaac115ebeea9ab6a3c1a8e1fe1c45d9".to_owned(),
            "39c8e0c236c1262eaa9e548bb9cb727c30ea3aec0e7831fe16411a371106f50a".to_owned()
        )
    );
}
