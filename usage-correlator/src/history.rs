//! The ledger's storage: per zone, every address's kept events in replay
//! order, in flat vectors, and the replay that turns them into holdings and
//! anomalies (DESIGN §4).
//!
//! Events are kept compact: the zone and address are the keys they are
//! filed under, the account is a slot in the ledger's table of accounts and
//! the time a [`Stamp`]. A batch of events is sorted once by zone, address,
//! time and id, and each address's events are then filed and replayed in one
//! sequential sweep.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use time::OffsetDateTime;
use usage_model::{AccountId, IpEvent, IpEventKind, ZoneId};

use crate::ledger::{Anomaly, AnomalyKind};

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// An instant as whole seconds and nanoseconds since the Unix epoch: the
/// compact, offset-free form of an event's time, ordered as the instants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Stamp {
    secs: i64,
    nanos: u32,
}

impl Stamp {
    /// The stamp of `at`, whatever its offset.
    pub(crate) fn of(at: OffsetDateTime) -> Stamp {
        Stamp {
            secs: at.unix_timestamp(),
            nanos: at.nanosecond(),
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub(crate) fn unix_nanos(self) -> i128 {
        i128::from(self.secs) * NANOS_PER_SECOND + i128::from(self.nanos)
    }

    /// The instant in UTC, or `None` when it has no UTC form (a time near
    /// the ends of the calendar, given with an offset).
    fn to_utc(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(self.secs)
            .ok()?
            .replace_nanosecond(self.nanos)
            .ok()
    }
}

/// An address as a family flag and two words, ordered as [`IpAddr`] orders
/// addresses (IPv4 before IPv6).
pub(crate) fn ip_words(ip: IpAddr) -> (bool, u64, u64) {
    match ip {
        IpAddr::V4(v4) => (false, 0, u64::from(u32::from(v4))),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            (true, (bits >> 64) as u64, bits as u64)
        }
    }
}

/// The address of [`ip_words`].
fn ip_from_words(v6: bool, hi: u64, lo: u64) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))
    } else {
        IpAddr::V4(Ipv4Addr::from(lo as u32))
    }
}

/// The kind bit of a packed account slot: set for a release.
fn kind_bit(kind: IpEventKind) -> u32 {
    match kind {
        IpEventKind::Assign => 0,
        IpEventKind::Release => 1,
    }
}

/// An event of a batch being added, in compact form. Ordered as the ledger
/// files events: by zone, address, time and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pending {
    /// The zone's slot times two, plus one for an IPv6 address.
    zone_family: u32,
    ip_hi: u64,
    ip_lo: u64,
    secs: i64,
    nanos: u32,
    pub(crate) id: u64,
    /// The account's slot times two, plus one for a release.
    account_kind: u32,
}

impl Pending {
    /// The compact form of an event of zone slot `zone` and account slot
    /// `account`.
    pub(crate) fn new(
        zone: u32,
        account: u32,
        id: u64,
        stamp: Stamp,
        ip: IpAddr,
        kind: IpEventKind,
    ) -> Pending {
        let (v6, ip_hi, ip_lo) = ip_words(ip);
        Pending {
            zone_family: zone * 2 + u32::from(v6),
            ip_hi,
            ip_lo,
            secs: stamp.secs,
            nanos: stamp.nanos,
            id,
            account_kind: account * 2 + kind_bit(kind),
        }
    }

    /// The zone's slot.
    pub(crate) fn zone(&self) -> u32 {
        self.zone_family / 2
    }

    pub(crate) fn ip(&self) -> IpAddr {
        ip_from_words(self.zone_family % 2 == 1, self.ip_hi, self.ip_lo)
    }

    /// Whether `other` concerns the same zone and address.
    fn same_address(&self, other: &Pending) -> bool {
        (self.zone_family, self.ip_hi, self.ip_lo) == (other.zone_family, other.ip_hi, other.ip_lo)
    }

    /// The event as filed, without its zone and address.
    pub(crate) fn held(&self) -> HeldEvent {
        HeldEvent {
            id: self.id,
            secs: self.secs,
            nanos: self.nanos,
            account_kind: self.account_kind,
        }
    }
}

/// A kept event, without the zone and address it is filed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeldEvent {
    pub(crate) id: u64,
    secs: i64,
    nanos: u32,
    /// The account's slot times two, plus one for a release.
    account_kind: u32,
}

impl HeldEvent {
    pub(crate) fn stamp(&self) -> Stamp {
        Stamp {
            secs: self.secs,
            nanos: self.nanos,
        }
    }

    /// The replay order: time, then id.
    fn replay_key(&self) -> (i64, u32, u64) {
        (self.secs, self.nanos, self.id)
    }

    /// The account's slot.
    pub(crate) fn account(&self) -> u32 {
        self.account_kind / 2
    }

    pub(crate) fn kind(&self) -> IpEventKind {
        if self.account_kind % 2 == 1 {
            IpEventKind::Release
        } else {
            IpEventKind::Assign
        }
    }
}

/// The ledger's tables that turn compact events back into [`IpEvent`]s.
#[derive(Clone, Copy)]
pub(crate) struct Names<'a> {
    pub(crate) accounts: &'a [AccountId],
    /// The times that have no UTC form, as given, by stamp.
    pub(crate) odd_times: &'a BTreeMap<Stamp, OffsetDateTime>,
}

impl<'a> Names<'a> {
    /// The instant of `stamp`: in UTC, or as given when it has no UTC form.
    pub(crate) fn time(&self, stamp: Stamp) -> OffsetDateTime {
        if let Some(utc) = stamp.to_utc() {
            return utc;
        }
        match self.odd_times.get(&stamp) {
            Some(&at) => at,
            None => unreachable!("a time without a UTC form is kept as given"),
        }
    }

    pub(crate) fn account(&self, slot: u32) -> &'a AccountId {
        match self.accounts.get(slot as usize) {
            Some(account) => account,
            None => unreachable!("every account slot is in the table"),
        }
    }

    /// The full event `held` of `ip` in `zone`.
    pub(crate) fn event(&self, zone: &ZoneId, ip: IpAddr, held: HeldEvent) -> IpEvent {
        IpEvent {
            id: held.id,
            at: self.time(held.stamp()),
            zone: zone.clone(),
            account: self.account(held.account()).clone(),
            ip,
            kind: held.kind(),
        }
    }
}

/// What one event does to its address: the holding it closes (the index of
/// its assign, the holding may be instantaneous) and the rule it breaks
/// (the kind and the index of the assign it conflicts with).
#[derive(Default)]
struct Step {
    closed: Option<usize>,
    anomaly: Option<(AnomalyKind, Option<usize>)>,
}

/// Replays the event at `index` of one address's events; `holding` is the
/// index of the assign holding the address before it, and after it.
fn step(events: &[HeldEvent], index: usize, holding: &mut Option<usize>) -> Step {
    let event = &events[index];
    match (event.kind(), *holding) {
        (IpEventKind::Assign, None) => {
            *holding = Some(index);
            Step::default()
        }
        (IpEventKind::Assign, Some(held)) if events[held].account() == event.account() => Step {
            closed: None,
            anomaly: Some((AnomalyKind::AssignWhileHeldBySame, Some(held))),
        },
        (IpEventKind::Assign, Some(held)) => {
            *holding = Some(index);
            Step {
                closed: Some(held),
                anomaly: Some((AnomalyKind::AssignWhileHeldByOther, Some(held))),
            }
        }
        (IpEventKind::Release, None) => Step {
            closed: None,
            anomaly: Some((AnomalyKind::ReleaseOfFreeIp, None)),
        },
        (IpEventKind::Release, Some(held)) => {
            *holding = None;
            Step {
                closed: Some(held),
                anomaly: (events[held].account() != event.account())
                    .then_some((AnomalyKind::ReleaseByOtherAccount, Some(held))),
            }
        }
    }
}

/// The holdings of one address, in time order: the index of the assign
/// that opened each and of the event that closed it, `None` for the holding
/// still open after the last event. Instantaneous holdings hold nothing and
/// are skipped.
pub(crate) struct Holdings<'a> {
    events: &'a [HeldEvent],
    next: usize,
    holding: Option<usize>,
}

impl<'a> Holdings<'a> {
    /// The holdings of `events`, one address's events in replay order.
    pub(crate) fn new(events: &'a [HeldEvent]) -> Holdings<'a> {
        Holdings {
            events,
            next: 0,
            holding: None,
        }
    }
}

impl Iterator for Holdings<'_> {
    type Item = (usize, Option<usize>);

    fn next(&mut self) -> Option<(usize, Option<usize>)> {
        while self.next < self.events.len() {
            let index = self.next;
            self.next += 1;
            if let Some(opener) = step(self.events, index, &mut self.holding).closed
                && self.events[opener].stamp() < self.events[index].stamp()
            {
                return Some((opener, Some(index)));
            }
        }
        self.holding.take().map(|opener| (opener, None))
    }
}

/// The anomalies of one address's events, in replay order.
fn replay_anomalies(
    zone: &ZoneId,
    ip: IpAddr,
    events: &[HeldEvent],
    names: Names<'_>,
    out: &mut Vec<Anomaly>,
) {
    let mut holding = None;
    for index in 0..events.len() {
        if let Some((kind, other)) = step(events, index, &mut holding).anomaly {
            out.push(Anomaly {
                kind,
                event: names.event(zone, ip, events[index]),
                other: other.map(|other| names.event(zone, ip, events[other])),
            });
        }
    }
}

/// A kept event to drop from a zone: its address and id.
pub(crate) type Removal = (IpAddr, u64);

/// The histories of one zone's addresses.
#[derive(Clone, Debug)]
pub(crate) struct ZoneHistories {
    pub(crate) zone: ZoneId,
    /// The addresses with at least one kept event, in order.
    ips: Vec<IpAddr>,
    /// The events of `ips[i]` are `events[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    /// The kept events, by address, then in replay order `(at, id)`.
    events: Vec<HeldEvent>,
    /// The anomalies of the replays, by address, then in replay order.
    pub(crate) anomalies: Vec<Anomaly>,
}

impl ZoneHistories {
    pub(crate) fn new(zone: ZoneId) -> ZoneHistories {
        ZoneHistories {
            zone,
            ips: Vec::new(),
            starts: vec![0],
            events: Vec::new(),
            anomalies: Vec::new(),
        }
    }

    /// The number of kept events.
    pub(crate) fn event_count(&self) -> usize {
        self.events.len()
    }

    /// The addresses with at least one kept event, in order.
    pub(crate) fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// Every address with its events, by address.
    pub(crate) fn histories(&self) -> impl Iterator<Item = (IpAddr, &[HeldEvent])> + '_ {
        self.ips
            .iter()
            .zip(self.starts.windows(2))
            .map(|(&ip, range)| (ip, self.events.get(range[0]..range[1]).unwrap_or_default()))
    }

    /// The events of `ip`, if it has any.
    pub(crate) fn history(&self, ip: IpAddr) -> Option<&[HeldEvent]> {
        let index = self.ips.binary_search(&ip).ok()?;
        self.events
            .get(*self.starts.get(index)?..*self.starts.get(index + 1)?)
    }

    /// Files `added` (this zone's events of a batch, in filing order, none
    /// with the id of a kept event) and drops `removed` (sorted), then
    /// replays every address they touch. Other addresses keep their events
    /// and anomalies as they are.
    pub(crate) fn merge(&mut self, added: &[Pending], removed: &[Removal], names: Names<'_>) {
        let old_ips = std::mem::take(&mut self.ips);
        let old_starts = std::mem::take(&mut self.starts);
        let old_events = std::mem::take(&mut self.events);
        let mut old_anomalies = std::mem::take(&mut self.anomalies).into_iter().peekable();
        // At most this many addresses: the old ones and the new ones.
        let new_ips = usize::from(!added.is_empty())
            + added
                .windows(2)
                .filter(|pair| !pair[1].same_address(&pair[0]))
                .count();
        self.ips.reserve_exact(old_ips.len() + new_ips);
        self.starts.reserve_exact(old_ips.len() + new_ips + 1);
        self.starts.push(0);
        self.events.reserve_exact(old_events.len() + added.len());

        let (mut old, mut new, mut gone) = (0, 0, 0);
        loop {
            let old_ip = old_ips.get(old).copied();
            let new_ip = added.get(new).map(Pending::ip);
            let ip = match (old_ip, new_ip) {
                (None, None) => break,
                (Some(ip), None) | (None, Some(ip)) => ip,
                (Some(a), Some(b)) => a.min(b),
            };
            let kept: &[HeldEvent] = if old_ip == Some(ip) {
                old += 1;
                old_events
                    .get(old_starts[old - 1]..old_starts[old])
                    .unwrap_or_default()
            } else {
                &[]
            };
            let first_new = new;
            if new_ip == Some(ip) {
                new += 1;
                while added
                    .get(new)
                    .is_some_and(|next| next.same_address(&added[first_new]))
                {
                    new += 1;
                }
            }
            let fresh = &added[first_new..new];
            while removed.get(gone).is_some_and(|&(at, _)| at < ip) {
                gone += 1;
            }
            let first_gone = gone;
            while removed.get(gone).is_some_and(|&(at, _)| at == ip) {
                gone += 1;
            }
            let dropped = &removed[first_gone..gone];

            let first = self.events.len();
            if fresh.is_empty() && dropped.is_empty() {
                self.events.extend_from_slice(kept);
                while let Some(anomaly) = old_anomalies.next_if(|a| a.event.ip == ip) {
                    self.anomalies.push(anomaly);
                }
            } else {
                while old_anomalies.next_if(|a| a.event.ip == ip).is_some() {}
                let mut kept = kept
                    .iter()
                    .filter(|e| !dropped.iter().any(|&(_, id)| id == e.id))
                    .copied()
                    .peekable();
                let mut fresh = fresh.iter().map(Pending::held).peekable();
                loop {
                    let next = match (kept.peek(), fresh.peek()) {
                        (Some(a), Some(b)) if a.replay_key() <= b.replay_key() => kept.next(),
                        (Some(_), Some(_)) | (None, Some(_)) => fresh.next(),
                        (Some(_), None) => kept.next(),
                        (None, None) => break,
                    };
                    self.events.extend(next);
                }
                replay_anomalies(
                    &self.zone,
                    ip,
                    &self.events[first..],
                    names,
                    &mut self.anomalies,
                );
            }
            if self.events.len() > first {
                self.ips.push(ip);
                self.starts.push(self.events.len());
            }
        }
        self.ips.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.events.shrink_to_fit();
    }
}
