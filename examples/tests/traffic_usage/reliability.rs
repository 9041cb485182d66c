//! Reliability and security of the whole tool: faults, crashes, concurrent
//! runs and hostile input lose or double no byte.
//!
//! The `traffic-usage` binary is driven as a user would, against an
//! in-process Traffic Sentinel emulator on loopback, on every store engine;
//! what it stored is read through its own `report` and `status` (every
//! record, anomaly and adjustment, and each zone's checkpoint and counts)
//! and compared with what an uninterrupted, fault-free run stores.

mod bounds;
mod concurrency;
#[cfg(unix)]
mod crash;
mod faults;
mod hostile_input;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output};

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use traffic_sentinel_emulator::{Emulator, Flow};
use usage_model::{AccountId, IpEvent, IpEventKind, ZoneId, write_events};

use crate::support::{Contents, Engine, Rng, assert_success, binary, emulator, monitor, status};

/// The zone collected.
pub(crate) const ZONE: &str = "zone-1";
/// The first instant billed.
pub(crate) const FROM: &str = "2026-11-01T00:00:00Z";
pub(crate) const FROM_AT: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);
pub(crate) const DAY_ONE_END: &str = "2026-11-02T00:00:00Z";
pub(crate) const DAY_TWO_END: &str = "2026-11-03T00:00:00Z";
pub(crate) const DAY_THREE_END: &str = "2026-11-04T00:00:00Z";

// ---------------------------------------------------------------------------
// Data: events and flows
// ---------------------------------------------------------------------------

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// An assign/release log for `zone` over 2026-10-31 to 2026-11-04 with
/// handovers at times off the grid, an address held throughout (so every
/// window asks Traffic Sentinel), IPv6, and the anomalies DESIGN §4 names.
pub(crate) fn events_for(zone: &str, accounts: &[&str]) -> Vec<IpEvent> {
    let zone = ZoneId::new(zone).unwrap();
    let account = |i: usize| AccountId::new(accounts[i % accounts.len()]).unwrap();
    let mut events = Vec::new();
    let mut push = |at: OffsetDateTime, who: AccountId, address: &str, kind| {
        let id = events.len() as u64 + 1;
        events.push(IpEvent {
            id,
            at,
            zone: zone.clone(),
            account: who,
            ip: ip(address),
            kind,
        });
    };
    use IpEventKind::{Assign, Release};
    // Held throughout, and re-assigned to its holder (an anomaly).
    push(
        datetime!(2026-10-31 00:00 UTC),
        account(0),
        "203.0.113.10",
        Assign,
    );
    push(
        datetime!(2026-11-01 12:00 UTC),
        account(0),
        "203.0.113.10",
        Assign,
    );
    // Released without being held (an anomaly).
    push(
        datetime!(2026-11-01 09:00 UTC),
        account(1),
        "203.0.113.13",
        Release,
    );
    // IPv6, taken over by another account without a release (an anomaly).
    push(
        datetime!(2026-11-01 03:00 UTC),
        account(2),
        "2001:db8::11",
        Assign,
    );
    push(
        datetime!(2026-11-02 02:30 UTC),
        account(3),
        "2001:db8::11",
        Assign,
    );
    // Only ever receives.
    push(
        datetime!(2026-11-01 05:30 UTC),
        account(3),
        "203.0.113.12",
        Assign,
    );
    push(
        datetime!(2026-11-02 20:00 UTC),
        account(3),
        "203.0.113.12",
        Release,
    );
    // Released by another account than its holder (an anomaly).
    push(
        datetime!(2026-11-01 00:20 UTC),
        account(1),
        "203.0.113.11",
        Assign,
    );
    push(
        datetime!(2026-11-01 07:45 UTC),
        account(2),
        "203.0.113.11",
        Release,
    );
    push(
        datetime!(2026-11-01 07:45 UTC),
        account(2),
        "203.0.113.11",
        Assign,
    );
    // A pool handed from account to account at odd minutes.
    let mut rng = Rng(0x5eed_0001);
    for i in 0..8u8 {
        let address = format!("100.64.0.{i}");
        let mut at = datetime!(2026-10-31 22:00 UTC) + Duration::minutes(rng.below(600) as i64);
        let mut holder = i as usize;
        while at < datetime!(2026-11-04 00:00 UTC) {
            push(at, account(holder), &address, Assign);
            at += Duration::minutes(30 + rng.below(400) as i64);
            push(at, account(holder), &address, Release);
            at += Duration::minutes(rng.below(3) as i64 * 25);
            holder += 1 + rng.below(2) as usize;
        }
    }
    events
}

pub(crate) const ACCOUNTS: [&str; 4] = ["acct-1", "acct-2", "acct-3", "acct-4"];

pub(crate) fn events() -> Vec<IpEvent> {
    events_for(ZONE, &ACCOUNTS)
}

/// Every 15 minutes from 2026-10-31 22:00 to 2026-11-04 02:00, each
/// address sends to and receives from EXTERNAL, and sends to INTERNAL (never
/// billed); `203.0.113.12` only receives.
pub(crate) fn flows() -> Vec<Flow> {
    let mut addresses: Vec<String> = (0..8).map(|i| format!("100.64.0.{i}")).collect();
    for a in [
        "203.0.113.10",
        "203.0.113.11",
        "203.0.113.12",
        "203.0.113.13",
        "2001:db8::11",
    ] {
        addresses.push(a.to_owned());
    }
    let peer = ip("198.51.100.1");
    let mut rng = Rng(0xf10_0002);
    let mut flows = Vec::new();
    let mut at = datetime!(2026-10-31 22:00 UTC);
    while at < datetime!(2026-11-04 02:00 UTC) {
        for address in &addresses {
            let guest = ip(address);
            let jitter = Duration::seconds(rng.below(900) as i64);
            let flow = |src, dst, sz: &str, dz: &str, bytes| Flow {
                time: at + jitter,
                ipsource: src,
                ipdestination: dst,
                sourcezone: sz.to_owned(),
                destinationzone: dz.to_owned(),
                bytes,
            };
            if address != "203.0.113.12" {
                flows.push(flow(
                    guest,
                    peer,
                    "CLOUD",
                    "EXTERNAL",
                    1 + rng.below(50_000),
                ));
                flows.push(flow(guest, peer, "CLOUD", "INTERNAL", 1 + rng.below(9_000)));
            }
            flows.push(flow(
                peer,
                guest,
                "EXTERNAL",
                "CLOUD",
                1 + rng.below(70_000),
            ));
        }
        at += Duration::minutes(15);
    }
    flows
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// A temporary directory with an events file, and an emulator over
/// [`flows`].
pub(crate) struct Setup {
    _dir: tempfile::TempDir,
    events: PathBuf,
    pub(crate) emulator: Emulator,
}

impl Setup {
    pub(crate) fn new() -> Setup {
        Setup::with_events(&events())
    }

    pub(crate) fn with_events(events: &[IpEvent]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        write_events(&mut file, events).unwrap();
        Setup {
            _dir: dir,
            events: path,
            emulator: emulator(flows()),
        }
    }

    /// The `collect` command line of [`ZONE`] into `db` up to `until`.
    pub(crate) fn collect_command(&self, db: &str, until: &str, extra: &[&str]) -> Command {
        self.collect_command_for(ZONE, db, until, extra)
    }

    /// The `collect` command line of `zone` into `db` up to `until`.
    pub(crate) fn collect_command_for(
        &self,
        zone: &str,
        db: &str,
        until: &str,
        extra: &[&str],
    ) -> Command {
        let mut command = binary();
        command
            .arg("collect")
            .arg("--monitor")
            .arg(monitor(&self.emulator))
            .arg("--events")
            .arg(&self.events)
            .args(["--db", db])
            .args(["--zone", zone, "--from", FROM, "--until", until])
            .args(["--granularity", "3600", "--timeout", "1s", "--retries", "1"])
            .args(extra);
        command
    }

    pub(crate) fn collect(&self, db: &str, until: &str, extra: &[&str]) -> Output {
        self.collect_command(db, until, extra).output().unwrap()
    }
}

/// A fault-free run of `collect` into a fresh store on `engine`: its
/// contents, without the wall clock.
pub(crate) fn reference(setup: &Setup, engine: Engine, until: &str, extra: &[&str]) -> Contents {
    let store = engine.fresh();
    assert_success(&setup.collect(store.target(), until, extra));
    let contents = Contents::of(store.target()).without_clock();
    assert!(contents.records.lines().count() > 1, "{contents:?}");
    assert!(contents.anomalies.lines().count() > 1, "{contents:?}");
    assert_eq!(status(store.target()).len(), 1, "{contents:?}");
    contents
}
