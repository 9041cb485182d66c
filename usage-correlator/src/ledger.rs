//! Ownership of addresses over time, built from assign/release events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

use time::{OffsetDateTime, UtcOffset};
use usage_model::{
    AccountId, FastHashBuilder, IpEvent, IpEventKind, Ownership, TimeInterval, ZoneId,
};

use crate::display::Instant;
use crate::history::{HeldEvent, Holdings, Names, Pending, Removal, Stamp, ZoneHistories};

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

/// A slot number for the `len`-th entry of a table whose slots are stored
/// doubled (with a flag in the low bit). No ledger holds 2^31 zones or
/// accounts: each takes far more than a byte.
fn slot_number(len: usize) -> u32 {
    u32::try_from(len)
        .ok()
        .filter(|&slot| slot < 1 << 31)
        .unwrap_or_else(|| unreachable!("more than 2^31 zones or accounts"))
}

/// A set of event ids as sorted, disjoint, non-adjacent inclusive runs
/// `(first, last)`: the ids of a log are usually consecutive, and then the
/// set is a handful of runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct IdRuns(Vec<(u64, u64)>);

impl IdRuns {
    /// The runs of `ids`, sorted without repeats.
    fn from_sorted(ids: impl IntoIterator<Item = u64>) -> IdRuns {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for id in ids {
            match runs.last_mut() {
                Some(run) if run.1.checked_add(1) == Some(id) => run.1 = id,
                _ => runs.push((id, id)),
            }
        }
        IdRuns(runs)
    }

    /// The runs of the bits set in `words`, bit `i` standing for id
    /// `base + i`.
    fn from_bitmap(base: u64, words: &[u64]) -> IdRuns {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        // The first id of the run being read, as a u128 so that positions
        // past the last id do not overflow.
        let mut open: Option<u128> = None;
        let id = |position: u128| u64::try_from(position).unwrap_or(u64::MAX);
        for (index, &word) in words.iter().enumerate() {
            let start = u128::from(base) + 64 * index as u128;
            if word == u64::MAX && open.is_some() || word == 0 && open.is_none() {
                continue;
            }
            let mut bit = 0;
            while bit < 64 {
                let rest = word >> bit;
                match open {
                    Some(first) => {
                        bit += rest.trailing_ones();
                        if bit < 64 {
                            runs.push((id(first), id(start + u128::from(bit) - 1)));
                            open = None;
                        }
                    }
                    None if rest == 0 => break,
                    None => {
                        bit += rest.trailing_zeros();
                        open = Some(start + u128::from(bit));
                    }
                }
            }
        }
        if let Some(first) = open {
            let end = u128::from(base) + 64 * words.len() as u128 - 1;
            runs.push((id(first), id(end)));
        }
        IdRuns(runs)
    }

    /// The ids in both sets, in order.
    fn common(&self, other: &IdRuns) -> Vec<u64> {
        let mut ids = Vec::new();
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        while let (Some(&&x), Some(&&y)) = (a.peek(), b.peek()) {
            let (first, last) = (x.0.max(y.0), x.1.min(y.1));
            if first <= last {
                ids.extend(first..=last);
            }
            if x.1 < y.1 {
                a.next();
            } else {
                b.next();
            }
        }
        ids
    }

    /// The ids in either set.
    fn union(&self, other: &IdRuns) -> IdRuns {
        let mut runs: Vec<(u64, u64)> = Vec::with_capacity(self.0.len() + other.0.len());
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            let Some(&(first, last)) = next else {
                break;
            };
            match runs.last_mut() {
                Some(run) if run.1 == u64::MAX || run.1 + 1 >= first => run.1 = run.1.max(last),
                _ => runs.push((first, last)),
            }
        }
        IdRuns(runs)
    }
}

/// The ids of a batch of events.
#[derive(Debug, Default)]
struct BatchIds {
    /// Every id, once.
    runs: IdRuns,
    /// The number of distinct ids.
    distinct: usize,
    /// The ids that come more than once, sorted without repeats.
    repeated: Vec<u64>,
}

impl BatchIds {
    fn of(batch: &[Pending]) -> BatchIds {
        let Some((min, max)) =
            batch
                .iter()
                .map(|p| p.id)
                .fold(None, |range: Option<(u64, u64)>, id| match range {
                    Some((min, max)) => Some((min.min(id), max.max(id))),
                    None => Some((id, id)),
                })
        else {
            return BatchIds::default();
        };
        let mut repeated = Vec::new();
        let words = (max - min) / 64 + 1;
        let runs = if words <= 2 * batch.len() as u64 + 1_024 {
            // Ids within a few times the batch size of each other, as a
            // database hands them out: one bit per id.
            let mut bits = vec![0_u64; words as usize];
            for p in batch {
                let offset = p.id - min;
                let (word, mask) = ((offset / 64) as usize, 1 << (offset % 64));
                if bits[word] & mask == 0 {
                    bits[word] |= mask;
                } else {
                    repeated.push(p.id);
                }
            }
            IdRuns::from_bitmap(min, &bits)
        } else {
            let mut ids: Vec<u64> = batch.iter().map(|p| p.id).collect();
            ids.sort_unstable();
            repeated.extend(
                ids.windows(2)
                    .filter(|pair| pair[0] == pair[1])
                    .map(|pair| pair[0]),
            );
            ids.dedup();
            IdRuns::from_sorted(ids)
        };
        let distinct = batch.len() - repeated.len();
        repeated.sort_unstable();
        repeated.dedup();
        BatchIds {
            runs,
            distinct,
            repeated,
        }
    }
}

/// The kept event of an id and the copies with other content dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Conflict {
    kept: IpEvent,
    /// Sorted by [`order_key`], without repeats.
    copies: Vec<IpEvent>,
}

/// Where a copy of a contested id comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    /// Kept in the ledger, in this zone slot.
    Ledger(u32),
    /// At this index of the batch.
    Batch(usize),
}

/// A copy of a contested id.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    origin: Origin,
    zone: u32,
    ip: IpAddr,
    held: HeldEvent,
}

impl Candidate {
    /// Whether both copies have the same content.
    fn same_content(&self, other: &Candidate) -> bool {
        (self.zone, self.ip, self.held) == (other.zone, other.ip, other.held)
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
    /// Every account ever filed, by slot.
    accounts: Vec<AccountId>,
    /// The slot of every account in `accounts`.
    account_slots: HashMap<AccountId, u32, FastHashBuilder>,
    /// The slot in `zones` of every zone ever filed, in zone order.
    zone_slots: BTreeMap<ZoneId, u32>,
    zones: Vec<ZoneHistories>,
    /// The id of every kept event.
    ids: IdRuns,
    /// The ids with copies of different content, by id.
    conflicting: BTreeMap<u64, Conflict>,
    /// The event times that have no UTC form, as given.
    odd_times: BTreeMap<Stamp, OffsetDateTime>,
    /// All anomalies, sorted by event time, id and kind.
    anomalies: Vec<Anomaly>,
    event_count: usize,
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
        let mut batch = self.intake(events);
        if batch.is_empty() {
            return;
        }
        let ids = BatchIds::of(&batch);
        let known = self.ids.common(&ids.runs);
        self.duplicate_count += batch.len() - (ids.distinct - known.len());
        let mut contested = ids.repeated;
        contested.extend_from_slice(&known);
        contested.sort_unstable();
        contested.dedup();
        let removed = if contested.is_empty() {
            Vec::new()
        } else {
            self.settle(&mut batch, &contested, &known)
        };
        self.ids = self.ids.union(&ids.runs);

        // One sort puts every address's events together, in replay order;
        // each zone then files its share in one sweep.
        batch.sort_unstable();
        let names = Names {
            accounts: &self.accounts,
            odd_times: &self.odd_times,
        };
        let (mut added, mut removed) = (&batch[..], &removed[..]);
        for (slot, zone) in self.zones.iter_mut().enumerate() {
            let slot = slot_number(slot);
            let split = added.partition_point(|p| p.zone() <= slot);
            let (zone_added, rest) = added.split_at(split);
            added = rest;
            let split = removed.partition_point(|r| r.0 <= slot);
            let (zone_removed, rest) = removed.split_at(split);
            removed = rest;
            if !zone_added.is_empty() || !zone_removed.is_empty() {
                let zone_removed: Vec<Removal> = zone_removed.iter().map(|r| r.1).collect();
                zone.merge(zone_added, &zone_removed, names);
            }
        }
        drop(batch);
        self.event_count = self.zones.iter().map(ZoneHistories::event_count).sum();
        self.collect_anomalies();
    }

    /// The events of `events` not excluded, in compact form, their zones
    /// and accounts given slots.
    fn intake(&mut self, events: impl IntoIterator<Item = IpEvent>) -> Vec<Pending> {
        let events = events.into_iter();
        let mut batch = Vec::with_capacity(events.size_hint().0);
        let check_excluded = self.options.excluded_accounts().next().is_some();
        let mut last_zone = None;
        for event in events {
            if check_excluded && self.options.is_excluded(&event.account) {
                self.excluded_count += 1;
                continue;
            }
            let IpEvent {
                id,
                at,
                zone,
                account,
                ip,
                kind,
            } = event;
            let zone = self.zone_slot(zone, &mut last_zone);
            let account = self.account_slot(account);
            let stamp = Stamp::of(at);
            if !at.offset().is_utc() && at.checked_to_offset(UtcOffset::UTC).is_none() {
                self.odd_times.entry(stamp).or_insert(at);
            }
            batch.push(Pending::new(zone, account, id, stamp, ip, kind));
        }
        batch
    }

    /// The slot of `zone`, given one if it has none; `last` is the slot
    /// found last, tried first.
    fn zone_slot(&mut self, zone: ZoneId, last: &mut Option<u32>) -> u32 {
        if let Some(slot) = *last
            && self
                .zones
                .get(slot as usize)
                .is_some_and(|known| known.zone == zone)
        {
            return slot;
        }
        let slot = match self.zone_slots.get(&zone) {
            Some(&slot) => slot,
            None => {
                let slot = slot_number(self.zones.len());
                self.zones.push(ZoneHistories::new(zone.clone()));
                self.zone_slots.insert(zone, slot);
                slot
            }
        };
        *last = Some(slot);
        slot
    }

    /// The slot of `account`, given one if it has none.
    fn account_slot(&mut self, account: AccountId) -> u32 {
        if let Some(&slot) = self.account_slots.get(&account) {
            return slot;
        }
        let slot = slot_number(self.accounts.len());
        self.accounts.push(account.clone());
        self.account_slots.insert(account, slot);
        slot
    }

    /// Settles the `contested` ids of a batch: those it holds more than
    /// once, and the `known` ones the ledger already keeps an event for.
    /// Of each id's copies, the first in [`order_key`] order is kept, the
    /// ledger's copy when the same; copies of other content are recorded
    /// as conflicting. Drops the other copies from `batch` and returns the
    /// ledger's events to drop, by zone slot, address and id.
    fn settle(
        &mut self,
        batch: &mut Vec<Pending>,
        contested: &[u64],
        known: &[u64],
    ) -> Vec<(u32, Removal)> {
        let mut candidates: Vec<Candidate> = batch
            .iter()
            .enumerate()
            .filter(|(_, p)| contested.binary_search(&p.id).is_ok())
            .map(|(index, p)| Candidate {
                origin: Origin::Batch(index),
                zone: p.zone(),
                ip: p.ip(),
                held: p.held(),
            })
            .collect();
        if !known.is_empty() {
            for (slot, zone) in self.zones.iter().enumerate() {
                let slot = slot_number(slot);
                for (ip, events) in zone.histories() {
                    candidates.extend(
                        events
                            .iter()
                            .filter(|e| known.binary_search(&e.id).is_ok())
                            .map(|&held| Candidate {
                                origin: Origin::Ledger(slot),
                                zone: slot,
                                ip,
                                held,
                            }),
                    );
                }
            }
        }
        let names = Names {
            accounts: &self.accounts,
            odd_times: &self.odd_times,
        };
        let zones = &self.zones;
        let zone_id = |slot: u32| match zones.get(slot as usize) {
            Some(zone) => &zone.zone,
            None => unreachable!("every zone slot is in the table"),
        };
        candidates.sort_unstable_by(|a, b| {
            (a.held.stamp(), a.held.id)
                .cmp(&(b.held.stamp(), b.held.id))
                .then_with(|| zone_id(a.zone).cmp(zone_id(b.zone)))
                .then_with(|| {
                    names
                        .account(a.held.account())
                        .cmp(names.account(b.held.account()))
                })
                .then_with(|| a.ip.cmp(&b.ip))
                .then_with(|| a.held.kind().cmp(&b.held.kind()))
                .then_with(|| a.origin.cmp(&b.origin))
        });
        // Group by id, each group still in order.
        candidates.sort_by_key(|c| c.held.id);

        let mut dropped: Vec<usize> = Vec::new();
        let mut removed: Vec<(u32, Removal)> = Vec::new();
        for group in candidates.chunk_by(|a, b| a.held.id == b.held.id) {
            let Some((kept, others)) = group.split_first() else {
                continue;
            };
            for other in others {
                match other.origin {
                    Origin::Batch(index) => dropped.push(index),
                    Origin::Ledger(zone) => removed.push((zone, (other.ip, other.held.id))),
                }
            }
            let id = kept.held.id;
            if others.iter().all(|other| other.same_content(kept))
                && !self.conflicting.contains_key(&id)
            {
                // Exact copies only.
                continue;
            }
            let earlier = self.conflicting.remove(&id);
            let mut distinct = group.to_vec();
            distinct.dedup_by(|b, a| a.same_content(b));
            let full = |c: &Candidate| names.event(zone_id(c.zone), c.ip, c.held);
            let kept = full(kept);
            let mut copies: Vec<IpEvent> = distinct[1..].iter().map(full).collect();
            if let Some(earlier) = earlier {
                copies.extend(earlier.copies);
                copies.push(earlier.kept);
            }
            copies.retain(|copy| *copy != kept);
            copies.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
            copies.dedup();
            if !copies.is_empty() {
                self.conflicting.insert(id, Conflict { kept, copies });
            }
        }
        dropped.sort_unstable();
        let mut index = 0;
        let mut next_dropped = dropped.iter().peekable();
        batch.retain(|_| {
            let drop = next_dropped.next_if_eq(&&index).is_some();
            index += 1;
            !drop
        });
        removed.sort_unstable();
        removed
    }

    fn zone(&self, zone: &ZoneId) -> Option<&ZoneHistories> {
        let &slot = self.zone_slots.get(zone)?;
        self.zones.get(slot as usize)
    }

    fn names(&self) -> Names<'_> {
        Names {
            accounts: &self.accounts,
            odd_times: &self.odd_times,
        }
    }

    fn collect_anomalies(&mut self) {
        let mut all: Vec<Anomaly> = self
            .zones
            .iter()
            .flat_map(|zone| zone.anomalies.iter().cloned())
            .collect();
        for conflict in self.conflicting.values() {
            all.extend(conflict.copies.iter().map(|copy| Anomaly {
                kind: AnomalyKind::ConflictingDuplicateId,
                event: copy.clone(),
                other: Some(conflict.kept.clone()),
            }));
        }
        all.sort_by(|a, b| {
            (a.event.at, a.event.id, a.kind)
                .cmp(&(b.event.at, b.event.id, b.kind))
                .then_with(|| order_key(&a.event).cmp(&order_key(&b.event)))
        });
        self.anomalies = all;
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
        let names = self.names();
        let (start, end) = (Stamp::of(window.start()), Stamp::of(window.end()));
        let mut pieces = Vec::new();
        for (ip, events) in histories.histories() {
            for (opener, closer) in Holdings::new(events) {
                let (opened, closed) = (events[opener].stamp(), closer.map(|c| events[c].stamp()));
                if opened >= end || closed.is_some_and(|closed| closed <= start) {
                    continue;
                }
                let from = if opened > start {
                    names.time(opened)
                } else {
                    window.start()
                };
                let to = match closed {
                    Some(closed) if closed <= end => names.time(closed),
                    _ => window.end(),
                };
                if let Ok(interval) = TimeInterval::new(from, to)
                    && !interval.is_empty()
                {
                    pieces.push(Ownership {
                        zone: zone.clone(),
                        account: names.account(events[opener].account()).clone(),
                        ip,
                        interval,
                    });
                }
            }
        }
        pieces
    }

    /// The holdings of `zone` by address then start, as nanoseconds since
    /// the Unix epoch (`end` is `None` while held), with the holder's slot
    /// (see [`OwnershipLedger::account`]).
    pub(crate) fn holdings<'a>(&'a self, zone: &ZoneId) -> impl Iterator<Item = Holding> + 'a {
        self.zone(zone)
            .into_iter()
            .flat_map(ZoneHistories::histories)
            .flat_map(|(ip, events)| {
                Holdings::new(events).map(move |(opener, closer)| Holding {
                    ip,
                    start: events[opener].stamp().unix_nanos(),
                    end: closer.map(|closer| events[closer].stamp().unix_nanos()),
                    account: events[opener].account(),
                })
            })
    }

    /// The account of slot `slot`.
    pub(crate) fn account(&self, slot: u32) -> &AccountId {
        self.names().account(slot)
    }

    /// The number of account slots.
    pub(crate) fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// The account holding `ip` of `zone` at the instant `at`, if any.
    /// Holdings are half-open: at the release instant the address is free.
    pub fn holder_at(&self, zone: &ZoneId, ip: IpAddr, at: OffsetDateTime) -> Option<&AccountId> {
        let events = self.zone(zone)?.history(ip)?;
        let at = Stamp::of(at);
        for (opener, closer) in Holdings::new(events) {
            if events[opener].stamp() > at {
                return None;
            }
            if closer.is_none_or(|closer| at < events[closer].stamp()) {
                return Some(self.account(events[opener].account()));
            }
        }
        None
    }

    /// The zones with at least one kept event, in order.
    pub fn zones(&self) -> impl Iterator<Item = &ZoneId> + '_ {
        self.zone_slots
            .iter()
            .filter(|&(_, &slot)| {
                self.zones
                    .get(slot as usize)
                    .is_some_and(|zone| zone.event_count() > 0)
            })
            .map(|(zone, _)| zone)
    }

    /// The addresses of `zone` with at least one kept event, in order.
    pub fn ips<'a>(&'a self, zone: &ZoneId) -> impl Iterator<Item = IpAddr> + 'a {
        self.zone(zone)
            .into_iter()
            .flat_map(|histories| histories.ips().iter().copied())
    }

    /// The number of events kept (one per id).
    pub fn event_count(&self) -> usize {
        self.event_count
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

/// One holding of an address, for planning.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Holding {
    pub(crate) ip: IpAddr,
    /// The first instant held, in nanoseconds since the Unix epoch.
    pub(crate) start: i128,
    /// The first instant no longer held, `None` while held.
    pub(crate) end: Option<i128>,
    /// The holder's slot.
    pub(crate) account: u32,
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

    proptest::proptest! {
        /// The bitmap and the sorting ways of reading a batch's ids agree,
        /// and runs combine as sets do.
        #[test]
        fn id_runs_are_sets(
            base in proptest::prelude::any::<u64>(),
            offsets in proptest::collection::vec(0_u64..600, 0..80),
            others in proptest::collection::vec(0_u64..600, 0..80),
        ) {
            use std::collections::BTreeSet;
            use super::IdRuns;

            let set = |offsets: &[u64]| -> BTreeSet<u64> {
                offsets.iter().filter_map(|&o| base.checked_add(o)).collect()
            };
            let runs_of = |ids: &BTreeSet<u64>| -> Vec<u64> {
                let runs = IdRuns::from_sorted(ids.iter().copied());
                runs.0.iter().flat_map(|&(first, last)| first..=last).collect()
            };
            let (a, b) = (set(&offsets), set(&others));
            let sorted = IdRuns::from_sorted(a.iter().copied());
            if let (Some(&min), Some(&max)) = (a.first(), a.last()) {
                let mut words = vec![0_u64; ((max - min) / 64 + 1) as usize];
                for id in &a {
                    words[((id - min) / 64) as usize] |= 1 << ((id - min) % 64);
                }
                proptest::prop_assert_eq!(&IdRuns::from_bitmap(min, &words), &sorted);
            }
            // Runs are disjoint and not adjacent.
            for pair in sorted.0.windows(2) {
                proptest::prop_assert!(pair[0].1 + 1 < pair[1].0);
            }
            proptest::prop_assert_eq!(runs_of(&a), a.iter().copied().collect::<Vec<_>>());
            let other = IdRuns::from_sorted(b.iter().copied());
            let common: Vec<u64> = a.intersection(&b).copied().collect();
            proptest::prop_assert_eq!(sorted.common(&other), common);
            let union: BTreeSet<u64> = a.union(&b).copied().collect();
            proptest::prop_assert_eq!(sorted.union(&other), IdRuns::from_sorted(union));
        }
    }

    #[test]
    fn id_runs_reach_the_last_id() {
        use super::IdRuns;

        let runs = IdRuns::from_bitmap(u64::MAX - 63, &[u64::MAX]);
        assert_eq!(runs.0, [(u64::MAX - 63, u64::MAX)]);
        let all = runs.union(&IdRuns::from_sorted([0, 1, u64::MAX - 64]));
        assert_eq!(all.0, [(0, 1), (u64::MAX - 64, u64::MAX)]);
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in AnomalyKind::ALL {
            assert_eq!(AnomalyKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(AnomalyKind::from_name("nope"), None);
    }
}
