//! The ledger, the plan and the join agree with a naive reference model of
//! DESIGN §4 written straight from the rules: event by event, with full
//! events and no compact storage, sorting or id sets.
//!
//! Random logs exercise ids that are consecutive or scattered over the whole
//! `u64` range (up to `u64::MAX`), duplicates and conflicting copies (the
//! first given wins), same-instant releases and assigns, times given with
//! UTC offsets, a time with no UTC form, IPv4, IPv6 and IPv4-mapped IPv6,
//! two zones and an excluded account that takes part in ownership but is
//! not billed. Every ledger is checked built from the log and from the log
//! reversed (against the model of the reversed log).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ip_interval::GridPoint;
use proptest::prelude::*;
use proptest::sample::Index;
use time::macros::{datetime, offset};
use time::{Duration, OffsetDateTime, UtcOffset};
use usage_correlator::{Anomaly, AnomalyKind, LedgerOptions, OwnershipLedger, QueryPlan};
use usage_model::{
    AccountId, ByteCounts, CollectionWindow, Grid, IpEvent, IpEventKind, Ownership, TimeInterval,
    TrafficAnswer, UsageRecord, ZoneId,
};

const BASE: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);
const IPS: [&str; 6] = [
    "10.0.0.1",
    "10.0.0.2",
    "192.168.7.1",
    "2001:db8::1",
    "2001:db8::2",
    "::ffff:10.0.0.1",
];
/// "1" is the excluded system account.
const ACCOUNTS: [&str; 4] = ["b", "a", "c", "1"];
const ZONES: [&str; 2] = ["zone-2", "zone-1"];
const OFFSETS: [UtcOffset; 3] = [UtcOffset::UTC, offset!(+2), offset!(-5:30)];
/// A time that has no UTC form: it would be in the year 10000.
const ODD_TIME: OffsetDateTime = datetime!(9999-12-31 23:00 -05:00);

fn options() -> LedgerOptions {
    LedgerOptions::new().exclude_account(AccountId::new("1").unwrap())
}

/// The content of one event, its id chosen among a pool.
#[derive(Clone, Debug)]
struct Raw {
    id: Index,
    zone: usize,
    ip: usize,
    account: usize,
    assign: bool,
    quarter: i64,
    offset: usize,
    odd: bool,
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        any::<Index>(),
        prop_oneof![4 => Just(0usize), 1 => Just(1usize)],
        0..IPS.len(),
        prop_oneof![3 => Just(0usize), 3 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize)],
        any::<bool>(),
        -8_i64..40,
        0..OFFSETS.len(),
        prop::bool::weighted(0.02),
    )
        .prop_map(
            |(id, zone, ip, account, assign, quarter, offset, odd)| Raw {
                id,
                zone,
                ip,
                account,
                assign,
                quarter,
                offset,
                odd,
            },
        )
}

/// The ids events draw from: consecutive, or scattered over all of `u64`.
fn id_pool() -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        (1_u64..1_000_000, 1_usize..40).prop_map(|(first, n)| (first..first + n as u64).collect()),
        prop::collection::btree_set(any::<u64>(), 1..40).prop_map(|ids| ids.into_iter().collect()),
        (1_usize..40).prop_map(|n| (0..n as u64).map(|k| u64::MAX - k).collect()),
        // Runs of consecutive ids with gaps, some wider than 64.
        (
            0_u64..1_000,
            prop::collection::vec(prop_oneof![3 => Just(1_u64), 1 => 2_u64..300], 1..40)
        )
            .prop_map(|(first, gaps)| gaps
                .iter()
                .scan(first, |id, gap| {
                    *id += gap;
                    Some(*id)
                })
                .collect()),
    ]
}

fn event(id: u64, raw: &Raw) -> IpEvent {
    let at = if raw.odd {
        ODD_TIME
    } else {
        (BASE + Duration::minutes(15 * raw.quarter)).to_offset(OFFSETS[raw.offset])
    };
    IpEvent {
        id,
        at,
        zone: ZoneId::new(ZONES[raw.zone]).unwrap(),
        account: AccountId::new(ACCOUNTS[raw.account]).unwrap(),
        ip: IPS[raw.ip].parse().unwrap(),
        kind: if raw.assign {
            IpEventKind::Assign
        } else {
            IpEventKind::Release
        },
    }
}

/// A shuffled log, ids drawn from a pool (so some repeat with other
/// content), with exact copies of some events.
fn log() -> impl Strategy<Value = Vec<IpEvent>> {
    (
        id_pool(),
        prop::collection::vec(raw(), 0..40),
        prop::collection::vec(any::<Index>(), 0..5),
    )
        .prop_map(|(ids, raws, copies)| {
            let mut events: Vec<IpEvent> = raws
                .iter()
                .map(|raw| event(ids[raw.id.index(ids.len())], raw))
                .collect();
            if !events.is_empty() {
                for copy in copies {
                    events.push(events[copy.index(events.len())].clone());
                }
            }
            events
        })
        .prop_shuffle()
}

fn order_key(e: &IpEvent) -> (OffsetDateTime, u64, ZoneId, AccountId, IpAddr, IpEventKind) {
    (e.at, e.id, e.zone.clone(), e.account.clone(), e.ip, e.kind)
}

/// DESIGN §4's replay order: by instant, releases before assigns, by id.
fn replay_key(e: &IpEvent) -> (OffsetDateTime, bool, u64) {
    (e.at, e.kind == IpEventKind::Assign, e.id)
}

/// The naive ledger: what DESIGN §4 says, event by event.
struct Naive {
    /// One event per id (the first given), in replay order.
    kept: Vec<IpEvent>,
    anomalies: Vec<Anomaly>,
    excluded: usize,
    duplicates: usize,
}

impl Naive {
    fn new(events: &[IpEvent]) -> Naive {
        let mut by_id: BTreeMap<u64, Vec<IpEvent>> = BTreeMap::new();
        for e in events {
            let mut e = e.clone();
            if let Some(utc) = e.at.checked_to_offset(UtcOffset::UTC) {
                e.at = utc;
            }
            e.ip = e.ip.to_canonical();
            by_id.entry(e.id).or_default().push(e);
        }
        let mut duplicates = 0;
        let mut kept = Vec::new();
        let mut anomalies = Vec::new();
        for copies in by_id.values() {
            for copy in &copies[1..] {
                if *copy == copies[0] {
                    duplicates += 1;
                } else {
                    anomalies.push(Anomaly {
                        kind: AnomalyKind::ConflictingDuplicate,
                        event: copy.clone(),
                        other: Some(copies[0].clone()),
                    });
                }
            }
            kept.push(copies[0].clone());
        }
        let excluded = kept.iter().filter(|e| e.account.as_str() == "1").count();
        kept.sort_by_key(replay_key);
        for (zone, ip) in Naive::addresses(&kept) {
            let mut holder: Option<&IpEvent> = None;
            for e in kept.iter().filter(|e| e.zone == zone && e.ip == ip) {
                let anomaly = |kind, other: Option<&IpEvent>| Anomaly {
                    kind,
                    event: e.clone(),
                    other: other.cloned(),
                };
                match (e.kind, holder) {
                    (IpEventKind::Assign, None) => holder = Some(e),
                    (IpEventKind::Assign, Some(h)) if h.account == e.account => {
                        anomalies.push(anomaly(AnomalyKind::AssignWhileHeldBySame, Some(h)));
                    }
                    (IpEventKind::Assign, Some(h)) => {
                        anomalies.push(anomaly(AnomalyKind::AssignWhileHeldByOther, Some(h)));
                        holder = Some(e);
                    }
                    (IpEventKind::Release, None) => {
                        anomalies.push(anomaly(AnomalyKind::ReleaseOfFreeIp, None));
                    }
                    (IpEventKind::Release, Some(h)) => {
                        if h.account != e.account {
                            anomalies.push(anomaly(AnomalyKind::ReleaseByOtherAccount, Some(h)));
                        }
                        holder = None;
                    }
                }
            }
        }
        anomalies.sort_by(|a, b| {
            (a.event.at, a.event.id, a.kind)
                .cmp(&(b.event.at, b.event.id, b.kind))
                .then_with(|| order_key(&a.event).cmp(&order_key(&b.event)))
        });
        Naive {
            kept,
            anomalies,
            excluded,
            duplicates,
        }
    }

    fn addresses(kept: &[IpEvent]) -> Vec<(ZoneId, IpAddr)> {
        let mut addresses: Vec<(ZoneId, IpAddr)> =
            kept.iter().map(|e| (e.zone.clone(), e.ip)).collect();
        addresses.sort();
        addresses.dedup();
        addresses
    }

    /// Every holding of `zone` as `(ip, start, end, account)`, by address
    /// then start; `end` is `None` while held.
    fn holdings(
        &self,
        zone: &ZoneId,
    ) -> Vec<(IpAddr, OffsetDateTime, Option<OffsetDateTime>, AccountId)> {
        let mut holdings = Vec::new();
        for (_, ip) in Naive::addresses(&self.kept)
            .into_iter()
            .filter(|(z, _)| z == zone)
        {
            let mut holder: Option<&IpEvent> = None;
            for e in self.kept.iter().filter(|e| e.zone == *zone && e.ip == ip) {
                let closes = match (e.kind, holder) {
                    (IpEventKind::Assign, Some(h)) if h.account == e.account => false,
                    (_, Some(_)) => true,
                    (_, None) => false,
                };
                if closes && let Some(h) = holder {
                    if h.at < e.at {
                        holdings.push((ip, h.at, Some(e.at), h.account.clone()));
                    }
                    holder = None;
                }
                if e.kind == IpEventKind::Assign && holder.is_none() {
                    holder = Some(e);
                }
            }
            if let Some(h) = holder {
                holdings.push((ip, h.at, None, h.account.clone()));
            }
        }
        holdings
    }

    fn ownerships(&self, zone: &ZoneId, window: TimeInterval) -> Vec<Ownership> {
        self.holdings(zone)
            .into_iter()
            .filter_map(|(ip, start, end, account)| {
                let start = start.max(window.start());
                let end = end.map_or(window.end(), |end| end.min(window.end()));
                (start < end).then(|| Ownership {
                    zone: zone.clone(),
                    account,
                    ip,
                    interval: TimeInterval::new(start, end).unwrap(),
                })
            })
            .collect()
    }

    /// The plan's pieces: floored, non-empty, by `(start, end, ip)`.
    fn pieces(&self, zone: &ZoneId, window: CollectionWindow, grid: Duration) -> Vec<Ownership> {
        let mut pieces: Vec<Ownership> = self
            .ownerships(zone, window.interval())
            .into_iter()
            // The excluded account takes part in ownership but is not billed.
            .filter(|piece| piece.account.as_str() != "1")
            .filter_map(|mut piece| {
                let start = piece.interval.start().floor_to(grid).unwrap();
                let end = piece.interval.end().floor_to(grid).unwrap();
                (start < end).then(|| {
                    piece.interval = TimeInterval::new(start, end).unwrap();
                    piece
                })
            })
            .collect();
        pieces.sort_by_key(|p| (p.interval.start(), p.interval.end(), p.ip));
        pieces
    }
}

/// Made-up counts for `(tag, ip)`: zero both ways for some.
fn counts(tag: u32, ip: IpAddr, seed: u64) -> ByteCounts {
    let bits = match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6) as u64,
    };
    let mix = (bits ^ seed ^ u64::from(tag) << 40).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    if mix.is_multiple_of(4) {
        ByteCounts::ZERO
    } else {
        ByteCounts {
            sent: mix % 1_000,
            received: (mix >> 20) % 1_000,
        }
    }
}

fn check_ledger(ledger: &OwnershipLedger, naive: &Naive) -> Result<(), TestCaseError> {
    prop_assert_eq!(ledger.anomalies(), &naive.anomalies[..]);
    prop_assert_eq!(ledger.event_count(), naive.kept.len());
    prop_assert_eq!(ledger.duplicate_count(), naive.duplicates);
    prop_assert_eq!(ledger.excluded_count(), naive.excluded);
    let wide = TimeInterval::new(BASE - Duration::days(1), BASE + Duration::days(1)).unwrap();
    let zones: Vec<&ZoneId> = ledger.zones().collect();
    let mut naive_zones: Vec<&ZoneId> = naive.kept.iter().map(|e| &e.zone).collect();
    naive_zones.sort();
    naive_zones.dedup();
    prop_assert_eq!(zones, naive_zones);
    for zone in ZONES {
        let zone = ZoneId::new(zone).unwrap();
        prop_assert_eq!(
            ledger.ownerships(&zone, wide),
            naive.ownerships(&zone, wide)
        );
        let ips: Vec<IpAddr> = ledger.ips(&zone).collect();
        let naive_ips: Vec<IpAddr> = Naive::addresses(&naive.kept)
            .into_iter()
            .filter(|(z, _)| *z == zone)
            .map(|(_, ip)| ip)
            .collect();
        prop_assert_eq!(ips, naive_ips);
        let holdings = naive.holdings(&zone);
        for ip in IPS {
            let ip: IpAddr = ip.parse().unwrap();
            for quarter in -9..41 {
                let at = BASE + Duration::minutes(15 * quarter);
                let naive_holder = holdings
                    .iter()
                    .find(|h| {
                        h.0 == ip.to_canonical() && h.1 <= at && h.2.is_none_or(|end| at < end)
                    })
                    .map(|h| &h.3);
                prop_assert_eq!(ledger.holder_at(&zone, ip, at), naive_holder);
            }
        }
    }
    Ok(())
}

fn check_plan(
    ledger: &OwnershipLedger,
    naive: &Naive,
    window: CollectionWindow,
    grid: Duration,
    seed: u64,
) -> Result<(), TestCaseError> {
    for zone in ZONES {
        let zone = ZoneId::new(zone).unwrap();
        let grid_type = Grid::new(grid).unwrap();
        let plan = QueryPlan::new(ledger, &zone, window, grid_type).unwrap();
        let pieces = naive.pieces(&zone, window, grid);
        prop_assert_eq!(plan.pieces(), &pieces[..]);
        let mut ips: Vec<IpAddr> = pieces.iter().map(|p| p.ip).collect();
        ips.sort();
        ips.dedup();
        prop_assert_eq!(plan.ip_count(), ips.len());

        // Queries: the pieces grouped by interval, tagged in order.
        let mut answer = TrafficAnswer::new();
        let mut expected: Vec<UsageRecord> = Vec::new();
        let mut groups = pieces.chunk_by(|a, b| a.interval == b.interval);
        prop_assert_eq!(plan.query_count(), groups.clone().count());
        for (query, group) in plan.queries().iter().zip(&mut groups) {
            prop_assert_eq!(query.interval, group[0].interval);
            let ips: Vec<IpAddr> = group.iter().map(|p| p.ip).collect();
            prop_assert_eq!(&query.ips, &ips);
            for piece in group {
                prop_assert_eq!(plan.piece(query.tag, piece.ip), Some(piece));
                let bytes = counts(query.tag.0, piece.ip, seed);
                // Traffic Sentinel prints rows with bytes only, mostly.
                if !bytes.is_zero() || seed.is_multiple_of(2) {
                    answer.insert(query.tag, piece.ip, bytes).unwrap();
                }
                if !bytes.is_zero() {
                    expected.push(UsageRecord::new(
                        zone.clone(),
                        piece.account.clone(),
                        piece.ip,
                        piece.interval.start(),
                        piece.interval.end(),
                        bytes,
                    ));
                }
            }
        }
        expected.sort_by(|a, b| (&a.account, a.ip, a.start).cmp(&(&b.account, b.ip, b.start)));
        let outcome = plan.join(&answer).unwrap();
        prop_assert_eq!(&outcome.records, &expected);
        let mut totals: BTreeMap<AccountId, ByteCounts> = BTreeMap::new();
        for r in &expected {
            let total = totals.entry(r.account.clone()).or_default();
            *total = total.checked_add(r.bytes()).unwrap();
        }
        prop_assert_eq!(outcome.totals, totals);
        let anomalies: Vec<&Anomaly> = naive
            .anomalies
            .iter()
            .filter(|a| a.event.zone == zone && window.contains(a.event.at))
            .collect();
        prop_assert_eq!(plan.anomalies().iter().collect::<Vec<_>>(), anomalies);

        // A pair the plan did not ask for is refused, wherever it falls.
        let mut stray = answer.clone();
        let tag = usage_model::QueryTag(seed as u32 % (plan.query_count() as u32 + 1));
        let ip: IpAddr = IPS[(seed % IPS.len() as u64) as usize].parse().unwrap();
        if plan.piece(tag, ip).is_none() {
            stray.insert(tag, ip, ByteCounts::ZERO).unwrap();
            prop_assert!(plan.join(&stray).is_err());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Built from the log or the log reversed, the ledger is the naive
    /// model's; so are its plans and their joins.
    #[test]
    fn ledger_plan_and_join_match_the_naive_model(
        events in log(),
        grid in prop_oneof![Just(30i64), Just(60), Just(120)].prop_map(Duration::minutes),
        window_start in (-1_i64..3).prop_map(|h| 2 * h),
        seed in any::<u64>(),
    ) {
        let naive = Naive::new(&events);
        let whole = OwnershipLedger::from_events(options(), events.clone());
        check_ledger(&whole, &naive)?;
        let backwards: Vec<IpEvent> = events.iter().rev().cloned().collect();
        let naive_backwards = Naive::new(&backwards);
        let reversed = OwnershipLedger::from_events(options(), backwards);
        check_ledger(&reversed, &naive_backwards)?;

        let window = CollectionWindow::new(
            BASE + Duration::hours(window_start),
            BASE + Duration::hours(window_start + 6),
        )
        .unwrap();
        check_plan(&whole, &naive, window, grid, seed)?;
        check_plan(&reversed, &naive_backwards, window, grid, seed)?;
    }
}

#[test]
fn a_time_without_a_utc_form_is_kept_as_given() {
    let zone = ZoneId::new("zone-1").unwrap();
    let event = IpEvent {
        id: 1,
        at: ODD_TIME,
        zone: zone.clone(),
        account: AccountId::new("a").unwrap(),
        ip: IPS[0].parse().unwrap(),
        kind: IpEventKind::Release,
    };
    let ledger = OwnershipLedger::from_events(LedgerOptions::new(), [event.clone()]);
    let anomaly = &ledger.anomalies()[0];
    assert_eq!(anomaly.kind, AnomalyKind::ReleaseOfFreeIp);
    assert_eq!(anomaly.event, event);
    assert_eq!(anomaly.event.at.offset(), ODD_TIME.offset());
}
