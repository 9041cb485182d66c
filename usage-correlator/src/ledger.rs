//! Ownership of addresses over time, built from assign/release events.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ip_interval::Timeline;
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

/// The holding that is still open at the end of an address's events.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OpenHold {
    account: AccountId,
    since: OffsetDateTime,
}

/// Everything known about one `(zone, ip)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct IpHistory {
    /// The kept events of this address, in replay order.
    events: BTreeMap<(OffsetDateTime, u64), IpEvent>,
    /// Closed, non-empty holdings.
    closed: Timeline<OffsetDateTime, AccountId>,
    /// The holding still open after the last event.
    open: Option<OpenHold>,
    /// Anomalies found by the replay, in replay order.
    anomalies: Vec<Anomaly>,
}

impl IpHistory {
    /// Recomputes `closed`, `open` and `anomalies` from `events`.
    fn replay(&mut self) {
        let mut closed = Timeline::new();
        let mut anomalies = Vec::new();
        // The assign that opened the current holding.
        let mut holding: Option<&IpEvent> = None;
        let close = |closed: &mut Timeline<OffsetDateTime, AccountId>,
                     opened: &IpEvent,
                     end: OffsetDateTime| {
            // Events are replayed in time order, so `opened.at <= end` and the
            // new piece starts at or after the end of the last one.
            match TimeInterval::new(opened.at, end) {
                Ok(held) => {
                    if let Err(err) = closed.insert(held, opened.account.clone()) {
                        unreachable!("holdings replayed in time order cannot overlap: {err}");
                    }
                }
                Err(err) => unreachable!("events replayed in time order: {err}"),
            }
        };
        for event in self.events.values() {
            match (event.kind, holding) {
                (IpEventKind::Assign, None) => holding = Some(event),
                (IpEventKind::Assign, Some(held)) if held.account == event.account => {
                    anomalies.push(Anomaly {
                        kind: AnomalyKind::AssignWhileHeldBySame,
                        event: event.clone(),
                        other: Some(held.clone()),
                    });
                }
                (IpEventKind::Assign, Some(held)) => {
                    close(&mut closed, held, event.at);
                    anomalies.push(Anomaly {
                        kind: AnomalyKind::AssignWhileHeldByOther,
                        event: event.clone(),
                        other: Some(held.clone()),
                    });
                    holding = Some(event);
                }
                (IpEventKind::Release, None) => anomalies.push(Anomaly {
                    kind: AnomalyKind::ReleaseOfFreeIp,
                    event: event.clone(),
                    other: None,
                }),
                (IpEventKind::Release, Some(held)) => {
                    close(&mut closed, held, event.at);
                    if held.account != event.account {
                        anomalies.push(Anomaly {
                            kind: AnomalyKind::ReleaseByOtherAccount,
                            event: event.clone(),
                            other: Some(held.clone()),
                        });
                    }
                    holding = None;
                }
            }
        }
        self.open = holding.map(|held| OpenHold {
            account: held.account.clone(),
            since: held.at,
        });
        self.closed = closed;
        self.anomalies = anomalies;
    }

    /// The holdings overlapping `window`, clipped to it, in time order.
    fn pieces(&self, window: TimeInterval) -> impl Iterator<Item = (TimeInterval, &AccountId)> {
        let open = self.open.as_ref().and_then(|open| {
            let start = open.since.max(window.start());
            TimeInterval::new(start, window.end())
                .ok()
                .filter(|held| !held.is_empty())
                .map(|held| (held, &open.account))
        });
        self.closed.pieces(window).chain(open)
    }

    fn holder_at(&self, at: OffsetDateTime) -> Option<&AccountId> {
        match &self.open {
            Some(open) if open.since <= at => Some(&open.account),
            _ => self.closed.at(at),
        }
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
    /// The kept event of every id.
    kept: BTreeMap<u64, IpEvent>,
    /// Dropped copies of an id whose content differs from the kept one,
    /// sorted by [`order_key`], without repeats.
    conflicting: BTreeMap<u64, Vec<IpEvent>>,
    histories: BTreeMap<ZoneId, BTreeMap<IpAddr, IpHistory>>,
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
        let mut dirty: BTreeSet<(ZoneId, IpAddr)> = BTreeSet::new();
        for mut event in events {
            if self.options.is_excluded(&event.account) {
                self.excluded_count += 1;
                continue;
            }
            if let Some(utc) = event.at.checked_to_offset(UtcOffset::UTC) {
                event.at = utc;
            }
            match self.kept.entry(event.id) {
                Entry::Vacant(slot) => {
                    dirty.insert((event.zone.clone(), event.ip));
                    Self::history_mut(&mut self.histories, &event)
                        .events
                        .insert((event.at, event.id), event.clone());
                    slot.insert(event);
                }
                Entry::Occupied(mut slot) => {
                    self.duplicate_count += 1;
                    if *slot.get() == event {
                        continue;
                    }
                    let dropped = if order_key(&event) < order_key(slot.get()) {
                        let old = slot.insert(event.clone());
                        dirty.insert((old.zone.clone(), old.ip));
                        dirty.insert((event.zone.clone(), event.ip));
                        if let Some(h) = self
                            .histories
                            .get_mut(&old.zone)
                            .and_then(|ips| ips.get_mut(&old.ip))
                        {
                            h.events.remove(&(old.at, old.id));
                        }
                        Self::history_mut(&mut self.histories, &event)
                            .events
                            .insert((event.at, event.id), event);
                        old
                    } else {
                        event
                    };
                    let copies = self.conflicting.entry(dropped.id).or_default();
                    if !copies.contains(&dropped) {
                        copies.push(dropped);
                        copies.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
                    }
                }
            }
        }
        for (zone, ip) in dirty {
            if let Some(ips) = self.histories.get_mut(&zone) {
                if let Some(history) = ips.get_mut(&ip) {
                    if history.events.is_empty() {
                        ips.remove(&ip);
                    } else {
                        history.replay();
                    }
                }
                if ips.is_empty() {
                    self.histories.remove(&zone);
                }
            }
        }
        self.collect_anomalies();
    }

    fn history_mut<'a>(
        histories: &'a mut BTreeMap<ZoneId, BTreeMap<IpAddr, IpHistory>>,
        event: &IpEvent,
    ) -> &'a mut IpHistory {
        histories
            .entry(event.zone.clone())
            .or_default()
            .entry(event.ip)
            .or_default()
    }

    fn collect_anomalies(&mut self) {
        let mut all: Vec<Anomaly> = self
            .histories
            .values()
            .flat_map(|ips| ips.values())
            .flat_map(|h| h.anomalies.iter().cloned())
            .collect();
        for (id, copies) in &self.conflicting {
            let Some(kept) = self.kept.get(id) else {
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
        let Some(ips) = self.histories.get(zone) else {
            return Vec::new();
        };
        ips.iter()
            .flat_map(|(&ip, history)| {
                history
                    .pieces(window)
                    .map(move |(interval, account)| Ownership {
                        zone: zone.clone(),
                        account: account.clone(),
                        ip,
                        interval,
                    })
            })
            .collect()
    }

    /// The account holding `ip` of `zone` at the instant `at`, if any.
    /// Holdings are half-open: at the release instant the address is free.
    pub fn holder_at(&self, zone: &ZoneId, ip: IpAddr, at: OffsetDateTime) -> Option<&AccountId> {
        self.histories.get(zone)?.get(&ip)?.holder_at(at)
    }

    /// The zones with at least one kept event, in order.
    pub fn zones(&self) -> impl Iterator<Item = &ZoneId> + '_ {
        self.histories.keys()
    }

    /// The addresses of `zone` with at least one kept event, in order.
    pub fn ips<'a>(&'a self, zone: &ZoneId) -> impl Iterator<Item = IpAddr> + 'a {
        self.histories
            .get(zone)
            .into_iter()
            .flat_map(|ips| ips.keys().copied())
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
