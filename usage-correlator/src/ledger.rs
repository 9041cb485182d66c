//! Ownership of addresses over time, built from assign/release events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ip_interval::{Interval, KeyedTimelines};
use time::OffsetDateTime;
use usage_model::{AccountId, IpEvent, IpEventKind, Ownership, TimeInterval, ZoneId};

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::digest::{Digest, EventLogDigest};
use crate::replay::{Replay, Replayed};

type FastState = foldhash::fast::RandomState;

/// Options of an [`OwnershipLedger`].
///
/// # Example
///
/// ```
/// use usage_correlator::LedgerOptions;
/// use usage_model::AccountId;
///
/// // CloudStack's system account is "1".
/// let options = LedgerOptions::new().exclude_account(AccountId::new("1").unwrap());
/// assert!(options.is_excluded(&AccountId::new("1").unwrap()));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerOptions {
    excluded: BTreeSet<AccountId>,
}

impl LedgerOptions {
    /// Options with no account excluded.
    pub fn new() -> LedgerOptions {
        LedgerOptions::default()
    }

    /// Excludes `account` from billing. Call once per account to exclude.
    ///
    /// An excluded account still takes part in the ledger (DESIGN §4): its
    /// assigns and releases open and close holdings like anyone's, so a user
    /// taking its address over or releasing it is judged against it, and
    /// every anomaly involving it is reported. Only its own holdings are not
    /// billed: a [`QueryPlan`](crate::QueryPlan) leaves them out.
    ///
    /// By default, no account is excluded. (CloudStack excludes its system
    /// account, id `1`.)
    pub fn exclude_account(mut self, account: AccountId) -> LedgerOptions {
        self.excluded.insert(account);
        self
    }

    /// Whether the holdings of `account` are left out of billing.
    pub fn is_excluded(&self, account: &AccountId) -> bool {
        self.excluded.contains(account)
    }

    /// The excluded accounts, in order.
    pub fn excluded_accounts(&self) -> impl Iterator<Item = &AccountId> + '_ {
        self.excluded.iter()
    }
}

/// An instant as Unix nanoseconds: every `OffsetDateTime` has one, also
/// those whose UTC form lies outside the representable range.
pub(crate) type Nanos = i128;

/// The end of a holding that no release has closed yet.
pub(crate) const OPEN_END: Nanos = i128::MAX;

/// One account's holding of one address, as the billing plan reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Holding {
    pub(crate) ip: IpAddr,
    pub(crate) start: Nanos,
    /// [`OPEN_END`] while no release has closed it.
    pub(crate) end: Nanos,
    /// The holder's slot in the ledger's account table.
    pub(crate) account: u32,
}

/// A kept event of a zone's log, compact (32 bytes): what digests and
/// late-event reports need. Ordered by instant, then id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LoggedEvent {
    /// Whole Unix seconds of the instant (floored).
    secs: i64,
    /// Nanoseconds past `secs`.
    nanos: u32,
    pub(crate) id: u64,
    /// The address's index in its zone's `ips`.
    ip: u32,
    pub(crate) account: u32,
    pub(crate) kind: IpEventKind,
}

impl LoggedEvent {
    fn new(at: Nanos, id: u64, ip: u32, account: u32, kind: IpEventKind) -> LoggedEvent {
        const BILLION: i128 = 1_000_000_000;
        LoggedEvent {
            // Every instant `time` can hold is within ±10^4 years.
            secs: i64::try_from(at.div_euclid(BILLION)).unwrap_or(i64::MAX),
            nanos: u32::try_from(at.rem_euclid(BILLION)).unwrap_or(0),
            id,
            ip,
            account,
            kind,
        }
    }

    /// The instant, in Unix nanoseconds.
    pub(crate) fn at(&self) -> Nanos {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }
}

/// A kept event in replay order: (zone slot, ip as [`address_key`], Unix
/// seconds, nanoseconds, replay rank, id, index in the input, account
/// slot). Plain integers compare faster than `IpAddr` in the sort of every
/// event; the instant split in two keeps the entry at 8-byte alignment.
type ReplayOrder = (u32, AddressKey, i64, u32, u8, u64, u32, u32);

/// A holding found by the replay: the address, when, and the holder's slot.
type Held = (IpAddr, Interval<Nanos>, u32);

/// An address as integers that order as `IpAddr` does: the family (4 before
/// 6) and the address's bits in two halves.
type AddressKey = (u8, u64, u64);

/// The [`AddressKey`] of `ip`.
fn address_key(ip: IpAddr) -> AddressKey {
    match ip {
        IpAddr::V4(v4) => (4, 0, u64::from(v4.to_bits())),
        IpAddr::V6(v6) => {
            let bits = v6.to_bits();
            (6, (bits >> 64) as u64, bits as u64)
        }
    }
}

/// The address of an [`AddressKey`].
fn address_of((family, high, low): AddressKey) -> IpAddr {
    if family == 4 {
        IpAddr::V4(Ipv4Addr::from_bits(low as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from_bits(
            u128::from(high) << 64 | u128::from(low),
        ))
    }
}

/// The ledger of one zone.
#[derive(Clone, Debug, Default)]
struct ZoneLedger {
    /// Every holding, per address: non-overlapping by construction.
    holdings: KeyedTimelines<IpAddr, Nanos, u32>,
    /// Every address named by an event, sorted.
    ips: Vec<IpAddr>,
    /// Every kept event, sorted by `(at, id)`.
    log: Vec<LoggedEvent>,
}

/// Who held which address when, per zone, learnt from assign/release events
/// (DESIGN §4).
///
/// The ledger is built on `ip-interval`'s [`KeyedTimelines`]: per zone, one
/// timeline of holdings per address, which refuses overlaps, so no instant of
/// an address is ever held twice. Events may come in any order and more than
/// once; each address's events are replayed by `(at, release before assign,
/// id)` ([`IpEvent::sort_key`]):
///
/// - an assign of a free address opens a holding; a release closes it, so a
///   holding is the half-open interval `[assign, release)`. A release and an
///   assign at one instant are a handover, whatever their ids;
/// - an assign while another account holds the address closes that holding at
///   the assign instant and opens the new one
///   ([`AnomalyKind::AssignWhileHeldByOther`]);
/// - an assign while the same account holds it is ignored
///   ([`AnomalyKind::AssignWhileHeldBySame`]);
/// - a release of a free address is ignored ([`AnomalyKind::ReleaseOfFreeIp`]);
/// - a release naming another account than the holder closes the holding
///   anyway ([`AnomalyKind::ReleaseByOtherAccount`]);
/// - a holding with no release yet is open-ended: held until a release
///   arrives, and clipped at the end of whatever window is asked about.
///
/// Events are keyed by `(zone, ip)`, IPv4 and IPv6 both; an IPv4-mapped IPv6
/// address is the IPv4 address. An event whose id was already seen is
/// dropped: silently when it is an exact copy, with an
/// [`AnomalyKind::ConflictingDuplicate`] when its content differs (the first
/// event given wins). Excluded accounts ([`LedgerOptions::exclude_account`])
/// take part in all of this; only their holdings are not billed.
///
/// # Example
///
/// ```
/// use time::macros::datetime;
/// use usage_correlator::{AnomalyKind, LedgerOptions, OwnershipLedger};
/// use usage_model::{AccountId, IpEvent, IpEventKind, TimeInterval, ZoneId};
///
/// let zone = ZoneId::new("zone-1").unwrap();
/// let event = |id, at, account: &str, kind| IpEvent {
///     id,
///     at,
///     zone: zone.clone(),
///     account: AccountId::new(account).unwrap(),
///     ip: "203.0.113.7".parse().unwrap(),
///     kind,
/// };
/// let ledger = OwnershipLedger::from_events(
///     LedgerOptions::new(),
///     [
///         event(1, datetime!(2026-11-01 01:00 UTC), "acct-a", IpEventKind::Assign),
///         // acct-b is given the address without a release for acct-a.
///         event(2, datetime!(2026-11-01 03:00 UTC), "acct-b", IpEventKind::Assign),
///     ],
/// );
/// assert_eq!(ledger.anomalies()[0].kind, AnomalyKind::AssignWhileHeldByOther);
///
/// let window = TimeInterval::new(
///     datetime!(2026-11-01 00:00 UTC),
///     datetime!(2026-11-01 06:00 UTC),
/// )
/// .unwrap();
/// let held = ledger.ownerships(&zone, window);
/// assert_eq!(held.len(), 2);
/// assert_eq!(held[0].account.as_str(), "acct-a");
/// assert_eq!(held[0].interval.end(), datetime!(2026-11-01 03:00 UTC));
/// // acct-b still holds it: open-ended, clipped at the window end.
/// assert_eq!(held[1].interval.end(), datetime!(2026-11-01 06:00 UTC));
/// ```
#[derive(Clone, Debug, Default)]
pub struct OwnershipLedger {
    options: LedgerOptions,
    /// Every account named by a kept event, by slot.
    accounts: Vec<AccountId>,
    /// Whether the account of each slot is excluded from billing.
    excluded: Vec<bool>,
    zones: BTreeMap<ZoneId, ZoneLedger>,
    /// All anomalies, sorted by event time, id and kind.
    anomalies: Vec<Anomaly>,
    event_count: usize,
    duplicate_count: usize,
    excluded_count: usize,
}

impl OwnershipLedger {
    /// An empty ledger.
    pub fn new(options: LedgerOptions) -> OwnershipLedger {
        OwnershipLedger {
            options,
            ..OwnershipLedger::default()
        }
    }

    /// The ledger of `events`, given in any order.
    ///
    /// Of events sharing an id, the first given is kept. The result does not
    /// otherwise depend on the order of `events`.
    pub fn from_events(
        options: LedgerOptions,
        events: impl IntoIterator<Item = IpEvent>,
    ) -> OwnershipLedger {
        let mut ledger = OwnershipLedger::new(options);
        let mut events: Vec<IpEvent> = events.into_iter().collect();
        for event in &mut events {
            event.ip = event.ip.to_canonical();
        }
        let kept = ledger.drop_duplicates(&events);
        ledger.file(&events, kept);
        ledger
    }

    /// Marks which of `events` are kept: the first of each id. Counts exact
    /// copies and reports copies of other content.
    fn drop_duplicates(&mut self, events: &[IpEvent]) -> Vec<bool> {
        let mut kept = vec![true; events.len()];
        let mut by_id: Vec<(u64, usize)> =
            events.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        by_id.sort_unstable();
        for group in by_id.chunk_by(|a, b| a.0 == b.0) {
            let Some((&(_, first), copies)) = group.split_first() else {
                continue;
            };
            for &(_, copy) in copies {
                kept[copy] = false;
                let (original, copy) = (&events[first], &events[copy]);
                if same_content(original, copy) {
                    self.duplicate_count += 1;
                } else {
                    self.anomalies.push(Anomaly {
                        kind: AnomalyKind::ConflictingDuplicate,
                        event: copy.clone(),
                        other: Some(original.clone()),
                    });
                }
            }
        }
        kept
    }

    /// Files the kept events: one replay per address, in replay order.
    fn file(&mut self, events: &[IpEvent], kept: Vec<bool>) {
        // foldhash: a slot is looked up per event (SipHash was 6% of the
        // ledger's build at 1M events).
        let mut account_slots: HashMap<&AccountId, u32, FastState> = HashMap::default();
        let mut zone_slots: HashMap<&ZoneId, u32, FastState> = HashMap::default();
        let mut order: Vec<ReplayOrder> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            if !kept[index] {
                continue;
            }
            let next = u32::try_from(account_slots.len()).unwrap_or(u32::MAX);
            let account = *account_slots.entry(&event.account).or_insert_with(|| {
                self.accounts.push(event.account.clone());
                self.excluded.push(self.options.is_excluded(&event.account));
                next
            });
            let next = u32::try_from(zone_slots.len()).unwrap_or(u32::MAX);
            let zone = *zone_slots.entry(&event.zone).or_insert(next);
            if self.excluded.get(account as usize) == Some(&true) {
                self.excluded_count += 1;
            }
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            order.push((
                zone,
                address_key(event.ip),
                event.at.unix_timestamp(),
                event.at.nanosecond(),
                event.kind.replay_rank(),
                event.id,
                index,
                account,
            ));
        }
        self.event_count = order.len();
        order.sort_unstable();

        let mut zone_names: Vec<(u32, &ZoneId)> = zone_slots
            .iter()
            .map(|(&zone, &slot)| (slot, zone))
            .collect();
        zone_names.sort_unstable();
        // Each zone's ledger and holdings, by address then time, as the
        // sweep finds them; the holdings are filed once the sweep's order is
        // freed, which keeps the peak of memory down.
        let mut swept: Vec<(ZoneId, ZoneLedger, Vec<Held>)> = Vec::new();
        for zone_run in order.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(_, zone)) = zone_names.get(zone_run[0].0 as usize) else {
                continue;
            };
            let mut ledger = ZoneLedger::default();
            let mut held = Vec::new();
            for ip_run in zone_run.chunk_by(|a, b| a.1 == b.1) {
                let ip = address_of(ip_run[0].1);
                ledger.ips.push(ip);
                let mut replay = Replay::new();
                for &(_, _, secs, nanos, _, _, index, account) in ip_run {
                    let at = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
                    let event = &events[index as usize];
                    let ip_index = u32::try_from(ledger.ips.len() - 1).unwrap_or(u32::MAX);
                    ledger.log.push(LoggedEvent::new(
                        at, event.id, ip_index, account, event.kind,
                    ));
                    let step = replay.apply(at, account, event.kind, index);
                    self.note(events, step, &mut held, ip);
                }
                if let Some((start, account)) = replay.open() {
                    hold(&mut held, ip, start, OPEN_END, account);
                }
            }
            ledger.log.sort_unstable();
            swept.push((zone.clone(), ledger, held));
        }
        drop(order);
        for (zone, mut ledger, held) in swept {
            // The replay closes each holding before opening the next, so
            // none overlaps another.
            let holdings = KeyedTimelines::from_pieces(held);
            debug_assert!(holdings.is_ok(), "replayed holdings never overlap");
            ledger.holdings = holdings.unwrap_or_default();
            self.zones.insert(zone, ledger);
        }
        self.anomalies
            .sort_by(|a, b| anomaly_order(a).cmp(&anomaly_order(b)));
    }

    /// Files what one replayed event did: a closed holding, an anomaly.
    fn note(&mut self, events: &[IpEvent], step: Replayed, held: &mut Vec<Held>, ip: IpAddr) {
        if let Some((start, end, account)) = step.closed {
            hold(held, ip, start, end, account);
        }
        if let Some((kind, event, other)) = step.anomaly {
            self.anomalies.push(Anomaly {
                kind,
                event: events[event as usize].clone(),
                other: other.map(|other| events[other as usize].clone()),
            });
        }
    }

    /// The options the ledger was built with.
    pub fn options(&self) -> &LedgerOptions {
        &self.options
    }

    /// Every anomaly of the log, sorted by the triggering event's instant,
    /// id and kind.
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// The anomalies of `zone` whose triggering event lies in `window`.
    pub fn anomalies_in<'a>(
        &'a self,
        zone: &'a ZoneId,
        window: TimeInterval,
    ) -> impl Iterator<Item = &'a Anomaly> + 'a {
        self.anomalies
            .iter()
            .filter(move |a| a.event.zone == *zone && window.contains(a.event.at))
    }

    /// Every holding of `zone` that overlaps `window`, clipped to it, sorted
    /// by address then start; excluded accounts' holdings included.
    pub fn ownerships(&self, zone: &ZoneId, window: TimeInterval) -> Vec<Ownership> {
        let Some(ledger) = self.zones.get(zone) else {
            return Vec::new();
        };
        let (first, last) = (
            window.start().unix_timestamp_nanos(),
            window.end().unix_timestamp_nanos(),
        );
        let Ok(span) = Interval::new(first, last) else {
            return Vec::new();
        };
        let time = |at: Nanos| match at {
            at if at == first => Some(window.start()),
            at if at == last => Some(window.end()),
            at => OffsetDateTime::from_unix_timestamp_nanos(at).ok(),
        };
        ledger
            .holdings
            .pieces(span)
            .filter_map(|(&ip, piece, &account)| {
                let interval = TimeInterval::new(time(piece.start())?, time(piece.end())?).ok()?;
                Some(Ownership {
                    zone: zone.clone(),
                    account: self.accounts.get(account as usize)?.clone(),
                    ip,
                    interval,
                })
            })
            .collect()
    }

    /// The holdings of `zone` that are billed (not of an excluded account),
    /// by address then start.
    pub(crate) fn billable_holdings<'a>(
        &'a self,
        zone: &ZoneId,
    ) -> impl Iterator<Item = Holding> + 'a {
        self.zones
            .get(zone)
            .into_iter()
            .flat_map(|ledger| ledger.holdings.iter())
            .flat_map(|(&ip, timeline)| {
                timeline.iter().map(move |(held, &account)| Holding {
                    ip,
                    start: held.start(),
                    end: held.end(),
                    account,
                })
            })
            .filter(|holding| self.excluded.get(holding.account as usize) == Some(&false))
    }

    /// The account of ledger slot `slot`.
    pub(crate) fn account(&self, slot: u32) -> Option<&AccountId> {
        self.accounts.get(slot as usize)
    }

    /// The number of account slots.
    pub(crate) fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// The account holding `ip` in `zone` at `at`, if any (excluded
    /// accounts included).
    pub fn holder_at(&self, zone: &ZoneId, ip: IpAddr, at: OffsetDateTime) -> Option<&AccountId> {
        let ledger = self.zones.get(zone)?;
        let slot = ledger
            .holdings
            .at(&ip.to_canonical(), at.unix_timestamp_nanos())?;
        self.accounts.get(*slot as usize)
    }

    /// The zones named by at least one kept event, in order.
    pub fn zones(&self) -> impl Iterator<Item = &ZoneId> + '_ {
        self.zones.keys()
    }

    /// Whether at least one kept event names `zone`.
    pub fn has_zone(&self, zone: &ZoneId) -> bool {
        self.zones.contains_key(zone)
    }

    /// Every address of `zone` named by a kept event, in order.
    pub fn ips<'a>(&'a self, zone: &ZoneId) -> impl Iterator<Item = IpAddr> + 'a {
        self.zones
            .get(zone)
            .into_iter()
            .flat_map(|ledger| ledger.ips.iter().copied())
    }

    /// The number of events kept (duplicates dropped).
    pub fn event_count(&self) -> usize {
        self.event_count
    }

    /// The number of exact copies of an earlier event dropped.
    pub fn duplicate_count(&self) -> usize {
        self.duplicate_count
    }

    /// The number of kept events of excluded accounts.
    pub fn excluded_count(&self) -> usize {
        self.excluded_count
    }

    /// The digest of the events of `zone` before `before` (DESIGN §4): equal
    /// for two logs exactly when, as far as a collision-resistant hash can
    /// tell, they hold the same events before that instant, in any order.
    ///
    /// A zone that no event names has the digest of the empty log.
    pub fn event_log_digest(&self, zone: &ZoneId, before: OffsetDateTime) -> Digest {
        self.event_log_digester(zone).digest_before(before)
    }

    /// A running [`OwnershipLedger::event_log_digest`] of `zone`, for
    /// instants asked in increasing order: each event is hashed once
    /// however many windows a collection commits.
    pub fn event_log_digester<'a>(&'a self, zone: &ZoneId) -> EventLogDigester<'a> {
        EventLogDigester {
            ledger: self,
            log: self.zones.get(zone).map_or(&[][..], |ledger| &ledger.log),
            ips: self.zones.get(zone).map_or(&[][..], |ledger| &ledger.ips),
            digest: EventLogDigest::new(zone),
            next: 0,
        }
    }

    /// An event of `zone` that may have changed who held an address in
    /// `window`, for a `late-event` report. Who held an address in the
    /// window follows from the events inside it and, for each address, its
    /// last event before it; of those, the one with the highest id (ids grow
    /// as the cloud logs events, so an event logged after the window was
    /// billed outranks every event known then). `None` when there is none.
    ///
    /// For many windows, [`OwnershipLedger::late_event_finder`] reads the
    /// log once.
    pub fn late_event_candidate(&self, zone: &ZoneId, window: TimeInterval) -> Option<IpEvent> {
        self.late_event_finder(zone).candidate(window)
    }

    /// The [`OwnershipLedger::late_event_candidate`]s of `zone` for windows
    /// asked in increasing order of their start: the zone's log is swept
    /// once, however many windows are asked about (a window that starts
    /// before the one asked last starts the sweep over).
    pub fn late_event_finder(&self, zone: &ZoneId) -> LateEventFinder<'_> {
        let ledger = self.zones.get(zone);
        LateEventFinder {
            ledger: self,
            zone: zone.clone(),
            log: ledger.map_or(&[][..], |ledger| &ledger.log),
            ips: ledger.map_or(&[][..], |ledger| &ledger.ips),
            last: vec![None; ledger.map_or(0, |ledger| ledger.ips.len())],
            deciding: BTreeSet::new(),
            next: 0,
            swept_to: Nanos::MIN,
        }
    }
}

/// The late-event candidates of a zone for windows in increasing order; see
/// [`OwnershipLedger::late_event_finder`].
#[derive(Clone, Debug)]
pub struct LateEventFinder<'a> {
    ledger: &'a OwnershipLedger,
    zone: ZoneId,
    /// The zone's kept events, by `(at, id)`.
    log: &'a [LoggedEvent],
    /// The zone's addresses, which the log's events index.
    ips: &'a [IpAddr],
    /// Per address, the index in `log` of its last event before `swept_to`.
    last: Vec<Option<usize>>,
    /// `(id, index in log)` of every address's last event before
    /// `swept_to`: the greatest is the candidate from before a window.
    deciding: BTreeSet<(u64, usize)>,
    /// The first event of `log` not swept.
    next: usize,
    /// Every event before this instant is swept.
    swept_to: Nanos,
}

impl LateEventFinder<'_> {
    /// The candidate of `window`, as
    /// [`OwnershipLedger::late_event_candidate`] gives it.
    pub fn candidate(&mut self, window: TimeInterval) -> Option<IpEvent> {
        let inside = self.sweep(window);
        let log = self.log;
        let inside = log[inside].iter().max_by_key(|e| e.id);
        let before = self.deciding.last().and_then(|&(_, i)| log.get(i));
        let found = inside.into_iter().chain(before).max_by_key(|e| e.id)?;
        self.event(found)
    }

    /// The candidate of `window` among the events of `ips` only (the
    /// addresses whose holdings are known to have changed): of the events
    /// of those addresses inside the window and each one's last event
    /// before it, the one with the highest id. It names an event that was
    /// edited in place (same id, another account or time), which the
    /// highest id of the whole window may not. `None` when those addresses
    /// have no such event.
    pub fn candidate_among(&mut self, window: TimeInterval, ips: &[IpAddr]) -> Option<IpEvent> {
        let slots: Vec<u32> = ips
            .iter()
            .filter_map(|ip| self.ips.binary_search(ip).ok())
            .filter_map(|slot| u32::try_from(slot).ok())
            .collect();
        let inside = self.sweep(window);
        let log = self.log;
        let inside = log[inside]
            .iter()
            .filter(|e| slots.contains(&e.ip))
            .max_by_key(|e| e.id);
        let before = slots
            .iter()
            .filter_map(|&slot| self.last.get(slot as usize).copied().flatten())
            .filter_map(|index| log.get(index))
            .max_by_key(|e| e.id);
        let found = inside.into_iter().chain(before).max_by_key(|e| e.id)?;
        self.event(found)
    }

    /// Sweeps the log up to `window`'s start; the indices in the log of the
    /// events inside it.
    fn sweep(&mut self, window: TimeInterval) -> std::ops::Range<usize> {
        let (start, end) = (
            window.start().unix_timestamp_nanos(),
            window.end().unix_timestamp_nanos(),
        );
        if start < self.swept_to {
            self.last.fill(None);
            self.deciding.clear();
            self.next = 0;
        }
        while let Some(event) = self.log.get(self.next).filter(|e| e.at() < start) {
            if let Some(slot) = self.last.get_mut(event.ip as usize) {
                if let Some(old) = slot.replace(self.next) {
                    self.deciding.remove(&(self.log[old].id, old));
                }
                self.deciding.insert((event.id, self.next));
            }
            self.next += 1;
        }
        self.swept_to = start;
        let after = &self.log[self.next..];
        self.next..self.next + after.partition_point(|e| e.at() < end)
    }

    /// `event` of the log as an [`IpEvent`].
    fn event(&self, found: &LoggedEvent) -> Option<IpEvent> {
        Some(IpEvent {
            id: found.id,
            at: OffsetDateTime::from_unix_timestamp_nanos(found.at()).ok()?,
            zone: self.zone.clone(),
            account: self.ledger.accounts.get(found.account as usize)?.clone(),
            ip: *self.ips.get(found.ip as usize)?,
            kind: found.kind,
        })
    }
}

/// The digests of a zone's event log before increasing instants; see
/// [`OwnershipLedger::event_log_digester`].
#[derive(Clone)]
pub struct EventLogDigester<'a> {
    ledger: &'a OwnershipLedger,
    /// The zone's kept events, by `(at, id)`.
    log: &'a [LoggedEvent],
    /// The zone's addresses, which the log's events index.
    ips: &'a [IpAddr],
    digest: EventLogDigest,
    /// The first event not yet in `digest`.
    next: usize,
}

impl EventLogDigester<'_> {
    /// The digest of the events before `before`, as
    /// [`OwnershipLedger::event_log_digest`] gives it. An instant earlier
    /// than one asked before gives the digest of the later one's prefix: ask
    /// in increasing order.
    pub fn digest_before(&mut self, before: OffsetDateTime) -> Digest {
        let before = before.unix_timestamp_nanos();
        while let Some(event) = self.log.get(self.next).filter(|e| e.at() < before) {
            let account = self.ledger.accounts.get(event.account as usize);
            let ip = self.ips.get(event.ip as usize).copied();
            self.digest.add(
                event,
                ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                account.map_or("", AccountId::as_str),
            );
            self.next += 1;
        }
        self.digest.clone().finish()
    }
}

/// The order of [`OwnershipLedger::anomalies`]: by the event's instant, id
/// and the rule broken, then by the event's content.
fn anomaly_order(
    anomaly: &Anomaly,
) -> (
    OffsetDateTime,
    u64,
    AnomalyKind,
    &ZoneId,
    &AccountId,
    IpAddr,
    IpEventKind,
) {
    let e = &anomaly.event;
    (e.at, e.id, anomaly.kind, &e.zone, &e.account, e.ip, e.kind)
}

/// Whether two events with one id say the same thing: the same instant
/// (whatever its offset), zone, account, address and kind.
fn same_content(a: &IpEvent, b: &IpEvent) -> bool {
    a.at == b.at && a.zone == b.zone && a.account == b.account && a.ip == b.ip && a.kind == b.kind
}

/// Adds the holding `[start, end)` of `ip` by `account` to `held`. The
/// replay closes holdings in time order, so they never overlap; an empty one
/// (an assign and a takeover at one instant) holds nothing and is dropped.
fn hold(held: &mut Vec<Held>, ip: IpAddr, start: Nanos, end: Nanos, account: u32) {
    if let Ok(interval) = Interval::new(start, end) {
        held.push((ip, interval, account));
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use time::OffsetDateTime;
    use time::macros::datetime;
    use usage_model::{AccountId, IpEvent, IpEventKind, TimeInterval, ZoneId};

    use super::{LateEventFinder, LedgerOptions, OwnershipLedger};
    use crate::AnomalyKind;

    fn zone() -> ZoneId {
        ZoneId::new("zone-1").unwrap()
    }

    fn ev(id: u64, at: OffsetDateTime, account: &str, ip: &str, kind: IpEventKind) -> IpEvent {
        IpEvent {
            id,
            at,
            zone: zone(),
            account: AccountId::new(account).unwrap(),
            ip: ip.parse().unwrap(),
            kind,
        }
    }

    fn log() -> Vec<IpEvent> {
        vec![
            ev(
                1,
                datetime!(2026-11-01 01:00 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Assign,
            ),
            ev(
                2,
                datetime!(2026-11-01 05:00 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Release,
            ),
            ev(
                3,
                datetime!(2026-11-01 02:00 UTC),
                "b",
                "10.0.0.2",
                IpEventKind::Assign,
            ),
        ]
    }

    #[test]
    fn the_event_log_digest_ignores_order_and_sees_every_change() {
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), log());
        let reversed = OwnershipLedger::from_events(LedgerOptions::new(), log().into_iter().rev());
        let at = datetime!(2026-11-02 00:00 UTC);
        let digest = ledger.event_log_digest(&zone(), at);
        assert_eq!(digest, reversed.event_log_digest(&zone(), at));
        // Events at or after `before` do not count.
        assert_eq!(
            ledger.event_log_digest(&zone(), datetime!(2026-11-01 03:00 UTC)),
            ledger.event_log_digest(&zone(), datetime!(2026-11-01 04:00 UTC)),
        );
        assert_ne!(
            ledger.event_log_digest(&zone(), datetime!(2026-11-01 03:00 UTC)),
            digest
        );
        // A late event, or a changed one, changes it.
        let mut late = log();
        late.push(ev(
            4,
            datetime!(2026-11-01 03:00 UTC),
            "b",
            "10.0.0.2",
            IpEventKind::Release,
        ));
        let late = OwnershipLedger::from_events(LedgerOptions::new(), late);
        assert_ne!(late.event_log_digest(&zone(), at), digest);
        let mut changed = log();
        changed[1].account = AccountId::new("c").unwrap();
        let changed = OwnershipLedger::from_events(LedgerOptions::new(), changed);
        assert_ne!(changed.event_log_digest(&zone(), at), digest);
        // The running digester agrees at every instant.
        let mut digester = ledger.event_log_digester(&zone());
        for hour in 0..30 {
            let at = datetime!(2026-11-01 00:00 UTC) + time::Duration::hours(hour);
            assert_eq!(
                digester.digest_before(at),
                ledger.event_log_digest(&zone(), at)
            );
        }
        // Another zone's log is another digest.
        let other = ZoneId::new("zone-2").unwrap();
        assert_ne!(ledger.event_log_digest(&other, at), digest);
    }

    /// Among given addresses: their events inside the window and their
    /// last ones before it, whatever the other addresses' ids.
    #[test]
    fn a_late_event_among_addresses_names_their_deciding_event() {
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), log());
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let window = |start, end| TimeInterval::new(start, end).unwrap();
        let mut finder = ledger.late_event_finder(&zone());
        // 02:30..04:00: nothing inside; 10.0.0.1's last event before is 1
        // (the window's own candidate is 3, of 10.0.0.2).
        let w = window(
            datetime!(2026-11-01 02:30 UTC),
            datetime!(2026-11-01 04:00 UTC),
        );
        assert_eq!(finder.candidate(w).map(|e| e.id), Some(3));
        let among = |finder: &mut LateEventFinder<'_>, ips: &[IpAddr]| {
            finder.candidate_among(w, ips).map(|e| e.id)
        };
        assert_eq!(among(&mut finder, &[ip("10.0.0.1")]), Some(1));
        assert_eq!(among(&mut finder, &[ip("10.0.0.2")]), Some(3));
        assert_eq!(among(&mut finder, &[ip("10.0.0.9")]), None);
        assert_eq!(among(&mut finder, &[]), None);
        // 04:00..06:00: 10.0.0.1's release (2) is inside.
        let w = window(
            datetime!(2026-11-01 04:00 UTC),
            datetime!(2026-11-01 06:00 UTC),
        );
        assert_eq!(
            finder.candidate_among(w, &[ip("10.0.0.1")]).map(|e| e.id),
            Some(2)
        );
    }

    #[test]
    fn a_late_event_is_named_by_the_highest_id_that_decides_the_window() {
        let named = |ledger: &OwnershipLedger, start: OffsetDateTime, end: OffsetDateTime| {
            let window = TimeInterval::new(start, end).unwrap();
            ledger.late_event_candidate(&zone(), window).unwrap().id
        };
        let mut events = log();
        events.push(ev(
            9,
            datetime!(2026-11-01 03:30 UTC),
            "b",
            "10.0.0.2",
            IpEventKind::Release,
        ));
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), events);
        let (start, end) = (
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-01 06:00 UTC),
        );
        assert_eq!(named(&ledger, start, end), 9);
        // No event inside: the highest id of the addresses' last events
        // before it.
        let (start, end) = (
            datetime!(2026-11-01 02:30 UTC),
            datetime!(2026-11-01 03:00 UTC),
        );
        assert_eq!(named(&ledger, start, end), 3);
        // A late event before the window outranks an older one inside it:
        // the release at 03:30 (id 9) decides who holds 10.0.0.2 from 04:00,
        // the release at 05:00 (id 2) was known when the window was billed.
        let (start, end) = (
            datetime!(2026-11-01 04:00 UTC),
            datetime!(2026-11-01 06:00 UTC),
        );
        assert_eq!(named(&ledger, start, end), 9);
        // An address's earlier events do not count: only its last one
        // before the window decides.
        let mut events = log();
        events.push(ev(
            9,
            datetime!(2026-11-01 00:30 UTC),
            "c",
            "10.0.0.1",
            IpEventKind::Release,
        ));
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), events);
        let (start, end) = (
            datetime!(2026-11-01 02:30 UTC),
            datetime!(2026-11-01 03:00 UTC),
        );
        assert_eq!(named(&ledger, start, end), 3);
    }

    /// The finder, asked about windows in increasing order and then out of
    /// order, names what a direct reading of the rule names: of the events
    /// inside the window and each address's last event before it, the
    /// highest id.
    #[test]
    fn the_late_event_finder_follows_the_rule_in_any_order() {
        let mut events = Vec::new();
        let mut state = 0x9e37_79b9_u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % n
        };
        for id in 1..=300 {
            let at =
                datetime!(2026-11-01 00:00 UTC) + time::Duration::minutes(next(24 * 60) as i64);
            let ip = format!("10.0.0.{}", next(12));
            let account = format!("acct-{}", next(3));
            let kind = if next(2) == 0 {
                IpEventKind::Assign
            } else {
                IpEventKind::Release
            };
            events.push(ev(id, at, &account, &ip, kind));
        }
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), events.clone());
        let rule = |window: TimeInterval| -> Option<u64> {
            let mut last: std::collections::HashMap<std::net::IpAddr, &IpEvent> =
                std::collections::HashMap::new();
            let mut best = None;
            for event in &events {
                if event.at >= window.start() && event.at < window.end() {
                    best = best.max(Some(event.id));
                } else if event.at < window.start() {
                    let seen = last.entry(event.ip).or_insert(event);
                    if (event.at, event.id) > (seen.at, seen.id) {
                        *seen = event;
                    }
                }
            }
            last.values().map(|e| e.id).chain(best).max()
        };
        let hour = |h: i64| datetime!(2026-11-01 00:00 UTC) + time::Duration::hours(h);
        let window = |h: i64, len: i64| TimeInterval::new(hour(h), hour(h + len)).unwrap();
        let mut finder = ledger.late_event_finder(&zone());
        let windows: Vec<TimeInterval> = (0..24)
            .map(|h| window(h, 1))
            .chain([window(3, 6), window(0, 24), window(20, 2), window(1, 1)])
            .collect();
        for w in windows {
            assert_eq!(finder.candidate(w).map(|e| e.id), rule(w), "{w:?}");
            assert_eq!(
                ledger.late_event_candidate(&zone(), w).map(|e| e.id),
                rule(w),
                "{w:?}"
            );
        }
    }

    #[test]
    fn excluded_accounts_take_part_in_ownership() {
        let events = vec![
            ev(
                1,
                datetime!(2026-11-01 00:00 UTC),
                "1",
                "10.0.0.9",
                IpEventKind::Assign,
            ),
            ev(
                2,
                datetime!(2026-11-01 02:00 UTC),
                "u",
                "10.0.0.9",
                IpEventKind::Assign,
            ),
            ev(
                3,
                datetime!(2026-11-01 04:00 UTC),
                "1",
                "10.0.0.9",
                IpEventKind::Release,
            ),
        ];
        let options = LedgerOptions::new().exclude_account(AccountId::new("1").unwrap());
        let ledger = OwnershipLedger::from_events(options, events);
        let kinds: Vec<_> = ledger.anomalies().iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [
                AnomalyKind::AssignWhileHeldByOther,
                AnomalyKind::ReleaseByOtherAccount
            ]
        );
        assert_eq!(ledger.excluded_count(), 2);
        let ip = "10.0.0.9".parse().unwrap();
        let holder = ledger.holder_at(&zone(), ip, datetime!(2026-11-01 01:00 UTC));
        assert_eq!(holder.map(AccountId::as_str), Some("1"));
        let billed: Vec<_> = ledger
            .billable_holdings(&zone())
            .filter_map(|h| ledger.account(h.account).map(AccountId::as_str))
            .collect();
        assert_eq!(billed, ["u"]);
    }

    #[test]
    fn the_first_line_of_an_id_wins() {
        let mut copy = log()[1].clone();
        copy.at = datetime!(2026-11-01 03:00 UTC);
        let mut events = log();
        events.push(copy.clone());
        events.push(log()[0].clone());
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), events);
        assert_eq!(ledger.duplicate_count(), 1);
        let conflict = &ledger.anomalies()[0];
        assert_eq!(conflict.kind, AnomalyKind::ConflictingDuplicate);
        assert_eq!(conflict.event, copy);
        assert_eq!(conflict.other.as_ref(), Some(&log()[1]));
        let ip = "10.0.0.1".parse().unwrap();
        assert!(
            ledger
                .holder_at(&zone(), ip, datetime!(2026-11-01 04:00 UTC))
                .is_some()
        );
    }
}
