//! Ownership of addresses over time, built from assign/release events.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;

use time::{OffsetDateTime, UtcOffset};
use usage_model::{AccountId, IpEvent, IpEventKind, Ownership, TimeInterval, ZoneId};

use crate::display::Instant;

/// Which rule of the event log an [`Anomaly`] broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AnomalyKind {
    /// An assign for an address another account holds. The other account's
    /// interval is closed at the assign instant and the new one opens there.
    /// [`Anomaly::other`] is the assign that opened the closed interval.
    AssignWhileHeldByOther,
    /// An assign for an address the same account already holds. It is
    /// ignored; the interval keeps its original start. [`Anomaly::other`] is
    /// the assign that opened the interval.
    AssignWhileHeldBySame,
    /// A release of an address nobody holds. It is ignored.
    /// [`Anomaly::other`] is `None`.
    ReleaseOfFreeIp,
    /// A release naming a different account than the holder. The holder's
    /// interval is closed anyway. [`Anomaly::other`] is the assign that
    /// opened it.
    ReleaseByOtherAccount,
    /// Two events with the same id but different content. The first in
    /// `(at, id, zone, account, ip, kind)` order is kept; the other is dropped.
    /// [`Anomaly::event`] is the dropped copy, [`Anomaly::other`] the kept one.
    ConflictingDuplicateId,
}

impl AnomalyKind {
    /// Every kind, in declaration order.
    pub const ALL: [AnomalyKind; 5] = [
        AnomalyKind::AssignWhileHeldByOther,
        AnomalyKind::AssignWhileHeldBySame,
        AnomalyKind::ReleaseOfFreeIp,
        AnomalyKind::ReleaseByOtherAccount,
        AnomalyKind::ConflictingDuplicateId,
    ];

    /// A short kebab-case name, stable for reports and test data:
    /// `assign-while-held-by-other`, `assign-while-held-by-same`,
    /// `release-of-free-ip`, `release-by-other-account`,
    /// `conflicting-duplicate-id`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::AssignWhileHeldByOther => "assign-while-held-by-other",
            AnomalyKind::AssignWhileHeldBySame => "assign-while-held-by-same",
            AnomalyKind::ReleaseOfFreeIp => "release-of-free-ip",
            AnomalyKind::ReleaseByOtherAccount => "release-by-other-account",
            AnomalyKind::ConflictingDuplicateId => "conflicting-duplicate-id",
        }
    }

    /// The kind named `name` (see [`AnomalyKind::as_str`]), or `None`.
    pub fn from_name(name: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event that broke a rule of the log, with what the ledger did about it.
///
/// Anomalies are never silently absorbed: every one is listed by
/// [`OwnershipLedger::anomalies`], and a [`QueryPlan`](crate::QueryPlan) lists
/// those whose event lies in its window.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Anomaly {
    /// The rule broken.
    pub kind: AnomalyKind,
    /// The event that broke it.
    pub event: IpEvent,
    /// The event it conflicts with, when there is one (see [`AnomalyKind`]).
    pub other: Option<IpEvent>,
}

impl Anomaly {
    /// When the triggering event happened.
    pub fn at(&self) -> OffsetDateTime {
        self.event.at
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.event;
        write!(
            f,
            "{}: event {} at {} ({} {} {} in zone {})",
            self.kind,
            e.id,
            Instant(e.at),
            e.kind.cloudstack_type(),
            e.ip,
            e.account,
            e.zone
        )?;
        if let Some(o) = &self.other {
            let relation = match self.kind {
                AnomalyKind::ConflictingDuplicateId => "kept",
                _ => "held since",
            };
            write!(
                f,
                "; {relation} event {} at {} ({} {} {})",
                o.id,
                Instant(o.at),
                o.kind.cloudstack_type(),
                o.ip,
                o.account
            )?;
        }
        Ok(())
    }
}

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

    /// Drops every event of `account` before anything else: its events
    /// neither open nor close intervals, are not checked for duplicates and
    /// raise no anomaly. Call once per account to exclude.
    ///
    /// By default, no account is excluded. (CloudStack excludes its system
    /// account, id `1`.)
    pub fn exclude_account(mut self, account: AccountId) -> LedgerOptions {
        self.excluded.insert(account);
        self
    }

    /// Whether events of `account` are dropped.
    pub fn is_excluded(&self, account: &AccountId) -> bool {
        self.excluded.contains(account)
    }

    /// The excluded accounts, in order.
    pub fn excluded_accounts(&self) -> impl Iterator<Item = &AccountId> + '_ {
        self.excluded.iter()
    }
}

/// The total order in which events are replayed and duplicates resolved.
fn order_key(
    e: &IpEvent,
) -> (
    OffsetDateTime,
    u64,
    &ZoneId,
    &AccountId,
    IpAddr,
    IpEventKind,
) {
    (e.at, e.id, &e.zone, &e.account, e.ip, e.kind)
}

/// A kept event, without the zone and address its history is filed under.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HeldEvent {
    id: u64,
    at: OffsetDateTime,
    account: AccountId,
    kind: IpEventKind,
}

impl HeldEvent {
    /// The full event, filed under `zone` and `ip`.
    fn to_event(&self, zone: &ZoneId, ip: IpAddr) -> IpEvent {
        IpEvent {
            id: self.id,
            at: self.at,
            zone: zone.clone(),
            account: self.account.clone(),
            ip,
            kind: self.kind,
        }
    }

    /// Whether `event` is an exact copy of this one filed under `zone` and `ip`.
    fn is_copy(&self, zone: &ZoneId, ip: IpAddr, event: &IpEvent) -> bool {
        self.id == event.id
            && self.at == event.at
            && self.kind == event.kind
            && ip == event.ip
            && self.account == event.account
            && *zone == event.zone
    }
}

/// Everything known about one `(zone, ip)`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IpHistory {
    ip: IpAddr,
    /// The kept events of this address, in replay order `(at, id)`.
    events: Vec<HeldEvent>,
    /// Closed, non-empty holdings in time order, each with the index in
    /// `events` of the assign that opened it.
    closed: Box<[(TimeInterval, usize)]>,
    /// The index in `events` of the assign whose holding is still open
    /// after the last event.
    open: Option<usize>,
    /// Anomalies found by the replay, in replay order.
    anomalies: Vec<Anomaly>,
    /// Whether events changed since the last replay.
    dirty: bool,
}

impl IpHistory {
    fn new(ip: IpAddr) -> IpHistory {
        IpHistory {
            ip,
            events: Vec::new(),
            closed: Box::default(),
            open: None,
            anomalies: Vec::new(),
            dirty: false,
        }
    }

    /// Recomputes `closed`, `open` and `anomalies` from `events`.
    fn replay(&mut self, zone: &ZoneId) {
        let events = &self.events;
        let full = |index: usize| events[index].to_event(zone, self.ip);
        let mut closed: Vec<(TimeInterval, usize)> = Vec::new();
        let mut anomalies = Vec::new();
        // The index of the assign that opened the current holding.
        let mut holding: Option<usize> = None;
        let close = |closed: &mut Vec<(TimeInterval, usize)>, opened: usize, end| {
            // Events are replayed in time order, so the assign is not after
            // `end`; an instantaneous holding holds nothing.
            if let Ok(held) = TimeInterval::new(events[opened].at, end)
                && !held.is_empty()
            {
                closed.push((held, opened));
            }
        };
        for (index, event) in events.iter().enumerate() {
            match (event.kind, holding) {
                (IpEventKind::Assign, None) => holding = Some(index),
                (IpEventKind::Assign, Some(held)) if events[held].account == event.account => {
                    anomalies.push(Anomaly {
                        kind: AnomalyKind::AssignWhileHeldBySame,
                        event: full(index),
                        other: Some(full(held)),
                    });
                }
                (IpEventKind::Assign, Some(held)) => {
                    close(&mut closed, held, event.at);
                    anomalies.push(Anomaly {
                        kind: AnomalyKind::AssignWhileHeldByOther,
                        event: full(index),
                        other: Some(full(held)),
                    });
                    holding = Some(index);
                }
                (IpEventKind::Release, None) => anomalies.push(Anomaly {
                    kind: AnomalyKind::ReleaseOfFreeIp,
                    event: full(index),
                    other: None,
                }),
                (IpEventKind::Release, Some(held)) => {
                    close(&mut closed, held, event.at);
                    if events[held].account != event.account {
                        anomalies.push(Anomaly {
                            kind: AnomalyKind::ReleaseByOtherAccount,
                            event: full(index),
                            other: Some(full(held)),
                        });
                    }
                    holding = None;
                }
            }
        }
        self.closed = closed.into_boxed_slice();
        self.open = holding;
        self.anomalies = anomalies;
    }

    /// The holdings overlapping `window`, clipped to it, in time order.
    fn pieces(&self, window: TimeInterval) -> impl Iterator<Item = (TimeInterval, &AccountId)> {
        let first = self
            .closed
            .partition_point(|(held, _)| held.end() <= window.start());
        let closed = self.closed[first..]
            .iter()
            .take_while(move |(held, _)| held.start() < window.end())
            .filter_map(move |&(held, opened)| {
                Some((held.intersection(&window)?, &self.events[opened].account))
            });
        let open = self.open.and_then(|opened| {
            let assign = &self.events[opened];
            let start = assign.at.max(window.start());
            TimeInterval::new(start, window.end())
                .ok()
                .filter(|held| !held.is_empty())
                .map(|held| (held, &assign.account))
        });
        closed.chain(open)
    }

    fn holder_at(&self, at: OffsetDateTime) -> Option<&AccountId> {
        if let Some(opened) = self.open
            && self.events[opened].at <= at
        {
            return Some(&self.events[opened].account);
        }
        let index = self.closed.partition_point(|(held, _)| held.end() <= at);
        let &(held, opened) = self.closed.get(index)?;
        held.contains(at).then(|| &self.events[opened].account)
    }
}

/// The histories of one zone's addresses.
#[derive(Clone, Debug)]
struct ZoneHistories {
    zone: ZoneId,
    /// The slot in `histories` of each address ever filed.
    slots: HashMap<IpAddr, u32, FastHash>,
    histories: Vec<IpHistory>,
    /// The slots of the histories holding at least one event, by address.
    by_ip: Vec<u32>,
    /// Whether `by_ip` must be rebuilt (a history gained its first event
    /// or lost its last).
    stale: bool,
    /// The number of kept events of the zone.
    event_count: usize,
}

impl ZoneHistories {
    fn new(zone: ZoneId) -> ZoneHistories {
        ZoneHistories {
            zone,
            slots: HashMap::default(),
            histories: Vec::new(),
            by_ip: Vec::new(),
            stale: false,
            event_count: 0,
        }
    }

    fn history(&self, ip: IpAddr) -> Option<&IpHistory> {
        let &slot = self.slots.get(&ip)?;
        self.histories.get(slot as usize)
    }

    /// The histories holding at least one event, by address.
    fn by_ip(&self) -> impl Iterator<Item = &IpHistory> + '_ {
        self.by_ip
            .iter()
            .filter_map(|&slot| self.histories.get(slot as usize))
    }

    fn rebuild_by_ip(&mut self) {
        let mut pairs: Vec<(IpAddr, u32)> = self
            .slots
            .iter()
            .filter(|&(_, &slot)| {
                self.histories
                    .get(slot as usize)
                    .is_some_and(|h| !h.events.is_empty())
            })
            .map(|(&ip, &slot)| (ip, slot))
            .collect();
        pairs.sort_unstable();
        self.by_ip = pairs.into_iter().map(|(_, slot)| slot).collect();
        self.stale = false;
    }
}

/// A slot number: an index into a vector of histories. A zone cannot hold
/// `u32::MAX` histories (each takes well over a hundred bytes).
fn slot_number(len: usize) -> u32 {
    u32::try_from(len).unwrap_or_else(|_| unreachable!("more than u32::MAX slots"))
}

/// Where the kept event of an id is filed: its zone's and address's slots.
type EventSlot = (u32, u32);

/// The hash of the ledger's maps, keyed by event ids and addresses: a
/// multiply-rotate hash (as rustc's `FxHash`) from a per-map random seed. The
/// keys come from the operator's own event log; the seed keeps their
/// bucket pattern from being planned anyway.
#[derive(Clone, Debug)]
struct FastHash(u64);

impl Default for FastHash {
    fn default() -> FastHash {
        FastHash(RandomState::new().build_hasher().finish())
    }
}

impl BuildHasher for FastHash {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

/// The hasher of [`FastHash`].
struct FastHasher(u64);

impl FastHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn write_isize(&mut self, i: isize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // Spread the low bits into the high ones, which pick the buckets'
        // control bytes.
        self.0 ^ (self.0 >> 29)
    }
}

/// Who held which address when, per zone, learnt from assign/release events
/// (DESIGN §4).
///
/// Events may come in any order and more than once; the ledger keeps them
/// sorted by `(at, id)` and replays each address's events in that order:
///
/// - an assign of a free address opens a holding; a release closes it, so a
///   holding is the half-open interval `[assign, release)`;
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
/// Events are keyed by `(zone, ip)`; IPv4 and IPv6 both. Times are kept in
/// UTC. Events of excluded accounts ([`LedgerOptions::exclude_account`]) are
/// dropped before anything else. An event whose id was already seen is
/// dropped: silently when it is an exact copy, with an
/// [`AnomalyKind::ConflictingDuplicateId`] when its content differs (the copy
/// first in `(at, id, zone, account, ip, kind)` order is the one kept, so the
/// result does not depend on arrival order).
///
/// [`OwnershipLedger::extend`] adds events cycle after cycle; the result is
/// always the same as building the ledger from all the events at once, also
/// when late events carry earlier times.
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
    /// Where the kept event of every id is filed.
    kept: HashMap<u64, EventSlot, FastHash>,
    /// Dropped copies of an id whose content differs from the kept one,
    /// sorted by [`order_key`], without repeats.
    conflicting: BTreeMap<u64, Vec<IpEvent>>,
    /// The slot in `zones` of every zone ever filed, in zone order.
    zone_slots: BTreeMap<ZoneId, u32>,
    zones: Vec<ZoneHistories>,
    /// All anomalies, sorted by event time, id and kind.
    anomalies: Vec<Anomaly>,
    excluded_count: usize,
    duplicate_count: usize,
}

impl OwnershipLedger {
    /// An empty ledger.
    pub fn new(options: LedgerOptions) -> OwnershipLedger {
        OwnershipLedger {
            options,
            ..OwnershipLedger::default()
        }
    }

    /// A ledger holding `events`: the same as [`OwnershipLedger::new`]
    /// followed by [`OwnershipLedger::extend`].
    pub fn from_events(
        options: LedgerOptions,
        events: impl IntoIterator<Item = IpEvent>,
    ) -> OwnershipLedger {
        let mut ledger = OwnershipLedger::new(options);
        ledger.extend(events);
        ledger
    }

    /// The options the ledger was built with.
    pub fn options(&self) -> &LedgerOptions {
        &self.options
    }

    /// Adds events, in any order, and recomputes the ownership of every
    /// address they touch.
    ///
    /// The ledger afterwards is the same as one built from all events given so
    /// far at once, whatever their order and however they were split between
    /// calls.
    ///
    /// # Example
    ///
    /// ```
    /// use time::macros::datetime;
    /// use usage_correlator::{LedgerOptions, OwnershipLedger};
    /// use usage_model::{AccountId, IpEvent, IpEventKind, ZoneId};
    ///
    /// let zone = ZoneId::new("zone-1").unwrap();
    /// let ip = "2001:db8::7".parse().unwrap();
    /// let event = |id, at, kind| IpEvent {
    ///     id,
    ///     at,
    ///     zone: zone.clone(),
    ///     account: AccountId::new("acct-a").unwrap(),
    ///     ip,
    ///     kind,
    /// };
    /// let mut ledger = OwnershipLedger::new(LedgerOptions::new());
    /// ledger.extend([event(2, datetime!(2026-11-01 05:00 UTC), IpEventKind::Release)]);
    /// // On its own the release frees nothing.
    /// assert_eq!(ledger.anomalies().len(), 1);
    /// // The assign arrives late; the log now reads well.
    /// ledger.extend([event(1, datetime!(2026-11-01 02:00 UTC), IpEventKind::Assign)]);
    /// assert!(ledger.anomalies().is_empty());
    /// assert!(ledger.holder_at(&zone, ip, datetime!(2026-11-01 04:59 UTC)).is_some());
    /// assert!(ledger.holder_at(&zone, ip, datetime!(2026-11-01 05:00 UTC)).is_none());
    /// ```
    pub fn extend(&mut self, events: impl IntoIterator<Item = IpEvent>) {
        let events = events.into_iter();
        self.kept.reserve(events.size_hint().0);
        let mut dirty: Vec<EventSlot> = Vec::new();
        for mut event in events {
            if self.options.is_excluded(&event.account) {
                self.excluded_count += 1;
                continue;
            }
            if let Some(utc) = event.at.checked_to_offset(UtcOffset::UTC) {
                event.at = utc;
            }
            let mut slot = match self.kept.entry(event.id) {
                Entry::Vacant(slot) => {
                    slot.insert(Self::file(
                        &mut self.zone_slots,
                        &mut self.zones,
                        event,
                        &mut dirty,
                    ));
                    continue;
                }
                Entry::Occupied(slot) => slot,
            };
            self.duplicate_count += 1;
            let (zone, ip) = *slot.get();
            let Some(history) = self
                .zones
                .get(zone as usize)
                .and_then(|z| z.histories.get(ip as usize).map(|h| (&z.zone, h)))
            else {
                unreachable!("every kept id is filed");
            };
            let (zone_id, history) = history;
            let Some(held) = history.events.iter().find(|e| e.id == event.id) else {
                unreachable!("every kept id is filed");
            };
            if held.is_copy(zone_id, history.ip, &event) {
                continue;
            }
            let kept = held.to_event(zone_id, history.ip);
            let dropped = if order_key(&event) < order_key(&kept) {
                Self::unfile(&mut self.zones, (zone, ip), event.id, &mut dirty);
                slot.insert(Self::file(
                    &mut self.zone_slots,
                    &mut self.zones,
                    event,
                    &mut dirty,
                ));
                kept
            } else {
                event
            };
            let copies = self.conflicting.entry(dropped.id).or_default();
            if !copies.contains(&dropped) {
                copies.push(dropped);
                copies.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
            }
        }
        for (zone, ip) in dirty {
            if let Some(ZoneHistories {
                zone, histories, ..
            }) = self.zones.get_mut(zone as usize)
                && let Some(history) = histories.get_mut(ip as usize)
            {
                history.dirty = false;
                history.replay(zone);
                history.events.shrink_to_fit();
            }
        }
        for zone in &mut self.zones {
            if zone.stale {
                zone.rebuild_by_ip();
            }
        }
        self.collect_anomalies();
    }

    /// Files `event` (in UTC) under its zone and address; returns where.
    fn file(
        zone_slots: &mut BTreeMap<ZoneId, u32>,
        zones: &mut Vec<ZoneHistories>,
        event: IpEvent,
        dirty: &mut Vec<EventSlot>,
    ) -> EventSlot {
        let zone = match zone_slots.get(&event.zone) {
            Some(&zone) => zone,
            None => {
                let zone = slot_number(zones.len());
                zones.push(ZoneHistories::new(event.zone.clone()));
                zone_slots.insert(event.zone.clone(), zone);
                zone
            }
        };
        let Some(histories) = zones.get_mut(zone as usize) else {
            unreachable!("zone slots index zones");
        };
        let ip = match histories.slots.entry(event.ip) {
            Entry::Occupied(slot) => *slot.get(),
            Entry::Vacant(slot) => {
                let ip = slot_number(histories.histories.len());
                histories.histories.push(IpHistory::new(event.ip));
                slot.insert(ip);
                ip
            }
        };
        let Some(history) = histories.histories.get_mut(ip as usize) else {
            unreachable!("address slots index histories");
        };
        if history.events.is_empty() {
            histories.stale = true;
        }
        let IpEvent {
            id,
            at,
            account,
            kind,
            ..
        } = event;
        let index = history.events.partition_point(|e| (e.at, e.id) < (at, id));
        history.events.insert(
            index,
            HeldEvent {
                id,
                at,
                account,
                kind,
            },
        );
        histories.event_count += 1;
        if !history.dirty {
            history.dirty = true;
            dirty.push((zone, ip));
        }
        (zone, ip)
    }

    /// Removes the event `id` filed at `(zone, ip)`.
    fn unfile(
        zones: &mut [ZoneHistories],
        (zone, ip): EventSlot,
        id: u64,
        dirty: &mut Vec<EventSlot>,
    ) {
        let Some(histories) = zones.get_mut(zone as usize) else {
            return;
        };
        let Some(history) = histories.histories.get_mut(ip as usize) else {
            return;
        };
        let Some(index) = history.events.iter().position(|e| e.id == id) else {
            return;
        };
        history.events.remove(index);
        histories.event_count -= 1;
        if history.events.is_empty() {
            histories.stale = true;
        }
        if !history.dirty {
            history.dirty = true;
            dirty.push((zone, ip));
        }
    }

    fn zone(&self, zone: &ZoneId) -> Option<&ZoneHistories> {
        let &slot = self.zone_slots.get(zone)?;
        self.zones.get(slot as usize)
    }

    fn collect_anomalies(&mut self) {
        let mut all: Vec<Anomaly> = self
            .zones
            .iter()
            .flat_map(|zone| zone.histories.iter())
            .flat_map(|h| h.anomalies.iter().cloned())
            .collect();
        for (id, copies) in &self.conflicting {
            let Some(kept) = self.kept_event(*id) else {
                continue;
            };
            all.extend(copies.iter().map(|copy| Anomaly {
                kind: AnomalyKind::ConflictingDuplicateId,
                event: copy.clone(),
                other: Some(kept.clone()),
            }));
        }
        all.sort_by(|a, b| {
            (a.event.at, a.event.id, a.kind)
                .cmp(&(b.event.at, b.event.id, b.kind))
                .then_with(|| order_key(&a.event).cmp(&order_key(&b.event)))
        });
        self.anomalies = all;
    }

    /// The kept event of `id`, in full.
    fn kept_event(&self, id: u64) -> Option<IpEvent> {
        let &(zone, ip) = self.kept.get(&id)?;
        let zone = self.zones.get(zone as usize)?;
        let history = zone.histories.get(ip as usize)?;
        let held = history.events.iter().find(|e| e.id == id)?;
        Some(held.to_event(&zone.zone, history.ip))
    }

    /// Every anomaly found so far, sorted by the triggering event's time, then
    /// its id, then the kind.
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// The anomalies of `zone` whose triggering event lies in `window`, in the
    /// order of [`OwnershipLedger::anomalies`].
    pub fn anomalies_in<'a>(
        &'a self,
        zone: &'a ZoneId,
        window: TimeInterval,
    ) -> impl Iterator<Item = &'a Anomaly> + 'a {
        self.anomalies
            .iter()
            .filter(move |a| a.event.zone == *zone && window.contains(a.event.at))
    }

    /// The holdings of `zone` that overlap `window`, clipped to it, ordered by
    /// address then start. A holding still open is clipped at the window end.
    ///
    /// Pieces of one address never overlap; consecutive holders abut when the
    /// address was handed straight over.
    pub fn ownerships(&self, zone: &ZoneId, window: TimeInterval) -> Vec<Ownership> {
        let Some(histories) = self.zone(zone) else {
            return Vec::new();
        };
        histories
            .by_ip()
            .flat_map(|history| {
                history
                    .pieces(window)
                    .map(move |(interval, account)| Ownership {
                        zone: zone.clone(),
                        account: account.clone(),
                        ip: history.ip,
                        interval,
                    })
            })
            .collect()
    }

    /// The account holding `ip` of `zone` at the instant `at`, if any.
    /// Holdings are half-open: at the release instant the address is free.
    pub fn holder_at(&self, zone: &ZoneId, ip: IpAddr, at: OffsetDateTime) -> Option<&AccountId> {
        self.zone(zone)?.history(ip)?.holder_at(at)
    }

    /// The zones with at least one kept event, in order.
    pub fn zones(&self) -> impl Iterator<Item = &ZoneId> + '_ {
        self.zone_slots
            .iter()
            .filter(|&(_, &slot)| {
                self.zones
                    .get(slot as usize)
                    .is_some_and(|zone| zone.event_count > 0)
            })
            .map(|(zone, _)| zone)
    }

    /// The addresses of `zone` with at least one kept event, in order.
    pub fn ips<'a>(&'a self, zone: &ZoneId) -> impl Iterator<Item = IpAddr> + 'a {
        self.zone(zone)
            .into_iter()
            .flat_map(|histories| histories.by_ip().map(|history| history.ip))
    }

    /// The number of events kept (one per id).
    pub fn event_count(&self) -> usize {
        self.kept.len()
    }

    /// The number of events dropped because their id was already seen
    /// (exact copies and conflicting ones).
    pub fn duplicate_count(&self) -> usize {
        self.duplicate_count
    }

    /// The number of events dropped because their account is excluded.
    pub fn excluded_count(&self) -> usize {
        self.excluded_count
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use time::OffsetDateTime;
    use time::macros::datetime;
    use usage_model::{AccountId, IpEvent, IpEventKind, TimeInterval, ZoneId};

    use super::{AnomalyKind, LedgerOptions, OwnershipLedger};

    const IP: &str = "203.0.113.7";

    fn zone() -> ZoneId {
        ZoneId::new("zone-1").unwrap()
    }

    fn ev(id: u64, at: OffsetDateTime, account: &str, kind: IpEventKind) -> IpEvent {
        IpEvent {
            id,
            at,
            zone: zone(),
            account: AccountId::new(account).unwrap(),
            ip: IP.parse().unwrap(),
            kind,
        }
    }

    fn assign(id: u64, at: OffsetDateTime, account: &str) -> IpEvent {
        ev(id, at, account, IpEventKind::Assign)
    }

    fn release(id: u64, at: OffsetDateTime, account: &str) -> IpEvent {
        ev(id, at, account, IpEventKind::Release)
    }

    fn day() -> TimeInterval {
        TimeInterval::new(
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-02 00:00 UTC),
        )
        .unwrap()
    }

    fn held(ledger: &OwnershipLedger) -> Vec<(String, u8, u8)> {
        ledger
            .ownerships(&zone(), day())
            .into_iter()
            .map(|o| {
                let end = if o.interval.end() == day().end() {
                    24
                } else {
                    o.interval.end().hour()
                };
                (o.account.to_string(), o.interval.start().hour(), end)
            })
            .collect()
    }

    fn kinds(ledger: &OwnershipLedger) -> Vec<(AnomalyKind, u64)> {
        ledger
            .anomalies()
            .iter()
            .map(|a| (a.kind, a.event.id))
            .collect()
    }

    fn at(h: u8) -> OffsetDateTime {
        datetime!(2026-11-01 00:00 UTC).replace_hour(h).unwrap()
    }

    #[test]
    fn assign_then_release_is_a_half_open_holding() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new(),
            [release(2, at(5), "a"), assign(1, at(2), "a")],
        );
        assert_eq!(held(&l), [("a".into(), 2, 5)]);
        assert!(l.anomalies().is_empty());
        let ip: IpAddr = IP.parse().unwrap();
        assert_eq!(
            l.holder_at(&zone(), ip, at(2)).map(|a| a.as_str()),
            Some("a")
        );
        assert_eq!(l.holder_at(&zone(), ip, at(5)), None);
    }

    #[test]
    fn assign_while_held_by_other_closes_the_old_holding() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new(),
            [
                assign(1, at(1), "a"),
                assign(2, at(3), "b"),
                release(3, at(6), "b"),
            ],
        );
        assert_eq!(held(&l), [("a".into(), 1, 3), ("b".into(), 3, 6)]);
        assert_eq!(kinds(&l), [(AnomalyKind::AssignWhileHeldByOther, 2)]);
        assert_eq!(l.anomalies()[0].other.as_ref().map(|e| e.id), Some(1));
    }

    #[test]
    fn assign_while_held_by_same_is_ignored() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new(),
            [
                assign(1, at(1), "a"),
                assign(2, at(3), "a"),
                release(3, at(6), "a"),
            ],
        );
        assert_eq!(held(&l), [("a".into(), 1, 6)]);
        assert_eq!(kinds(&l), [(AnomalyKind::AssignWhileHeldBySame, 2)]);
    }

    #[test]
    fn release_of_a_free_ip_is_ignored() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new(),
            [release(1, at(1), "a"), assign(2, at(3), "a")],
        );
        assert_eq!(held(&l), [("a".into(), 3, 24)]);
        assert_eq!(kinds(&l), [(AnomalyKind::ReleaseOfFreeIp, 1)]);
        assert_eq!(l.anomalies()[0].other, None);
    }

    #[test]
    fn release_by_another_account_closes_anyway() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new(),
            [assign(1, at(1), "a"), release(2, at(3), "b")],
        );
        assert_eq!(held(&l), [("a".into(), 1, 3)]);
        assert_eq!(kinds(&l), [(AnomalyKind::ReleaseByOtherAccount, 2)]);
    }

    #[test]
    fn same_instant_release_and_assign_abut() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new(),
            [
                assign(1, at(1), "a"),
                assign(3, at(4), "b"),
                release(2, at(4), "a"),
            ],
        );
        assert_eq!(held(&l), [("a".into(), 1, 4), ("b".into(), 4, 24)]);
        assert!(l.anomalies().is_empty());
    }

    #[test]
    fn exact_duplicates_are_dropped_silently_and_conflicts_reported() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new(),
            [
                assign(1, at(1), "a"),
                assign(1, at(1), "a"),
                release(2, at(5), "a"),
                // Same id, different content: the earlier copy wins.
                release(2, at(3), "a"),
            ],
        );
        assert_eq!(held(&l), [("a".into(), 1, 3)]);
        assert_eq!(l.duplicate_count(), 2);
        assert_eq!(l.event_count(), 2);
        assert_eq!(kinds(&l), [(AnomalyKind::ConflictingDuplicateId, 2)]);
        let anomaly = &l.anomalies()[0];
        assert_eq!(anomaly.event.at, at(5));
        assert_eq!(anomaly.other.as_ref().map(|e| e.at), Some(at(3)));
    }

    #[test]
    fn conflicting_duplicates_resolve_independently_of_arrival_order() {
        let events = [
            assign(7, at(2), "a"),
            assign(7, at(2), "b"),
            assign(7, at(1), "c"),
        ];
        let forward = OwnershipLedger::from_events(LedgerOptions::new(), events.clone());
        let mut backward = OwnershipLedger::new(LedgerOptions::new());
        for e in events.into_iter().rev() {
            backward.extend([e]);
        }
        assert_eq!(held(&forward), [("c".into(), 1, 24)]);
        assert_eq!(held(&forward), held(&backward));
        assert_eq!(forward.anomalies(), backward.anomalies());
        assert_eq!(forward.anomalies().len(), 2);
    }

    #[test]
    fn a_conflicting_copy_may_move_an_event_to_another_address() {
        let mut other_ip = assign(1, at(1), "a");
        other_ip.ip = "2001:db8::1".parse().unwrap();
        other_ip.at = at(0);
        let l =
            OwnershipLedger::from_events(LedgerOptions::new(), [assign(1, at(1), "a"), other_ip]);
        // The earlier copy wins: the event now concerns the IPv6 address.
        assert_eq!(held(&l), [("a".into(), 0, 24)]);
        let ips: Vec<IpAddr> = l.ips(&zone()).collect();
        assert_eq!(ips, ["2001:db8::1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn excluded_accounts_neither_open_nor_close() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new().exclude_account(AccountId::new("1").unwrap()),
            [
                assign(1, at(1), "a"),
                release(2, at(2), "1"),
                assign(3, at(3), "1"),
            ],
        );
        assert_eq!(held(&l), [("a".into(), 1, 24)]);
        assert!(l.anomalies().is_empty());
        assert_eq!(l.excluded_count(), 2);
    }

    #[test]
    fn instantaneous_holdings_hold_nothing() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new(),
            [assign(1, at(3), "a"), release(2, at(3), "a")],
        );
        assert_eq!(held(&l), []);
    }

    #[test]
    fn anomaly_display_names_both_events() {
        let l = OwnershipLedger::from_events(
            LedgerOptions::new(),
            [assign(1, at(1), "a"), assign(2, at(3), "b")],
        );
        assert_eq!(
            l.anomalies()[0].to_string(),
            "assign-while-held-by-other: event 2 at 2026-11-01T03:00:00Z \
             (NET.IPASSIGN 203.0.113.7 b in zone zone-1); held since event 1 at \
             2026-11-01T01:00:00Z (NET.IPASSIGN 203.0.113.7 a)"
        );
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in AnomalyKind::ALL {
            assert_eq!(AnomalyKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(AnomalyKind::from_name("nope"), None);
    }
}
