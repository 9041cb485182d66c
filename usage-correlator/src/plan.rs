//! The query plan of one collection window, and the join of its answer.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ip_interval::GridPoint;
use time::OffsetDateTime;
use usage_model::{
    AccountId, ByteCounts, Checkpoint, CollectionWindow, Grid, Ownership, QueryTag, RecordId,
    TimeInterval, TrafficAnswer, TrafficQuery, UsageRecord, UsageType, ZoneId,
};

use crate::digest::{Digest, ownership_digest};
use crate::{Anomaly, Error, OwnershipLedger};

/// What Traffic Sentinel must be asked for one zone and one collection
/// window, and how its answer maps back to owners (DESIGN §1, §3).
///
/// Building a plan:
///
/// 1. takes every holding of the zone that overlaps the window, clipped to it
///    ([`OwnershipLedger::ownerships`]);
/// 2. floors the start and end of each to the grid and drops the pieces that
///    become empty. Each grid bucket `[t, t + g)` of an address thus belongs
///    to exactly the account holding it at the bucket's last instant (whose
///    holding satisfies `start < t + g <= end`), and to nobody if it is free
///    then; an allocation shorter than a bucket within one bucket bills
///    nothing, its bucket goes to whoever holds the address when the bucket
///    closes;
/// 3. groups the pieces by identical `[start, end)`: one [`TrafficQuery`] per
///    group, tagged `QueryTag(0)`, `QueryTag(1)`, … in `(start, end)` order,
///    with its addresses sorted. The full-window group is one query however
///    many addresses it has (splitting large queries is the client's job).
///
/// An address appears at most once per query but may appear in several (an
/// address handed A → B → A within one window).
///
/// # Example
///
/// ```
/// use time::macros::datetime;
/// use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan};
/// use usage_model::{AccountId, CollectionWindow, Grid, IpEvent, IpEventKind, ZoneId};
///
/// let zone = ZoneId::new("zone-1").unwrap();
/// let event = |id, at, ip: &str| IpEvent {
///     id,
///     at,
///     zone: zone.clone(),
///     account: AccountId::new("acct-a").unwrap(),
///     ip: ip.parse().unwrap(),
///     kind: IpEventKind::Assign,
/// };
/// let ledger = OwnershipLedger::from_events(
///     LedgerOptions::new(),
///     [
///         event(1, datetime!(2026-10-01 00:00 UTC), "203.0.113.7"),
///         event(2, datetime!(2026-10-01 00:00 UTC), "203.0.113.8"),
///         // Assigned mid-bucket: billed from the bucket it falls in.
///         event(3, datetime!(2026-11-01 02:30 UTC), "2001:db8::9"),
///     ],
/// );
/// let window = CollectionWindow::new(
///     datetime!(2026-11-01 00:00 UTC),
///     datetime!(2026-11-01 06:00 UTC),
/// )
/// .unwrap();
/// let plan = QueryPlan::new(&ledger, &zone, window, Grid::HOURLY).unwrap();
/// assert_eq!((plan.piece_count(), plan.query_count(), plan.ip_count()), (3, 2, 3));
/// // The two continuing addresses share the full-window query.
/// assert_eq!(plan.queries()[0].ips.len(), 2);
/// assert_eq!(plan.queries()[1].interval.start(), datetime!(2026-11-01 02:00 UTC));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryPlan {
    zone: ZoneId,
    window: CollectionWindow,
    grid: Grid,
    /// Floored, clipped, non-empty pieces, sorted by `(start, end, ip)`.
    pieces: Vec<Ownership>,
    /// The tag of each piece, parallel to `pieces`. Tags follow
    /// `(start, end)` order, so `(tag, ip)` pairs are sorted too.
    piece_tags: Vec<QueryTag>,
    /// The address and holder of each piece, parallel to `pieces`.
    slots: Vec<PieceSlot>,
    /// The holders of the pieces, in order: [`PieceSlot::account`] is an
    /// index here, so slots order as the accounts do.
    accounts: Vec<AccountId>,
    queries: Vec<TrafficQuery>,
    ip_count: usize,
    anomalies: Vec<Anomaly>,
    /// The digest of `pieces`, computed once with them.
    ownership_digest: Digest,
}

impl QueryPlan {
    /// Plans the queries of `zone` for `window` on `grid`.
    ///
    /// The plan also holds the ledger's anomalies of `zone` whose event lies
    /// in the window ([`QueryPlan::anomalies`]).
    ///
    /// # Errors
    ///
    /// [`Error::WindowOffGrid`] when the window's start or end is not on the
    /// grid, [`Error::TimeOutOfRange`] when a time cannot be floored,
    /// [`Error::TooManyQueries`] when the groups outnumber the tags.
    ///
    /// # Example
    ///
    /// ```
    /// use time::macros::datetime;
    /// use usage_correlator::{Error, LedgerOptions, OwnershipLedger, QueryPlan};
    /// use usage_model::{CollectionWindow, Grid, ZoneId};
    ///
    /// let ledger = OwnershipLedger::new(LedgerOptions::new());
    /// let zone = ZoneId::new("zone-1").unwrap();
    /// let off_grid = CollectionWindow::new(
    ///     datetime!(2026-11-01 00:30 UTC),
    ///     datetime!(2026-11-01 06:00 UTC),
    /// )
    /// .unwrap();
    /// let err = QueryPlan::new(&ledger, &zone, off_grid, Grid::HOURLY).unwrap_err();
    /// assert!(matches!(err, Error::WindowOffGrid { .. }));
    /// ```
    pub fn new(
        ledger: &OwnershipLedger,
        zone: &ZoneId,
        window: CollectionWindow,
        grid: Grid,
    ) -> Result<QueryPlan, Error> {
        if !grid.holds(window.start()) || !grid.holds(window.end()) {
            return Err(Error::WindowOffGrid {
                start: window.start(),
                end: window.end(),
                grid: grid.step(),
            });
        }
        let (first, last) = (
            window.start().unix_timestamp_nanos(),
            window.end().unix_timestamp_nanos(),
        );
        let step_nanos = grid.step().whole_nanoseconds();
        let out_of_range = || Error::TimeOutOfRange {
            at: window.start(),
            by: grid.step(),
        };
        // Clipped to the window, a boundary lies in it; the window's own
        // bounds are on the grid already.
        let floor = |at: i128| {
            if at == first || at == last {
                Ok(at)
            } else {
                at.floor_to(step_nanos).ok_or_else(out_of_range)
            }
        };

        // The pieces over the whole window come by address and form one
        // group; the others are sorted into their groups.
        let mut whole: Vec<(IpAddr, u32, u32)> = Vec::new();
        let mut partial: Vec<RawPiece> = Vec::new();
        let mut used = vec![false; ledger.account_count()];
        let mut ip_count = 0;
        let mut last_ip = None;
        for held in ledger.billable_holdings(zone) {
            // Clipping to an on-grid window then flooring equals flooring then
            // clipping: flooring is monotone and fixes the window bounds.
            let start = held.start.max(first);
            let end = held.end.min(last);
            if start >= end {
                continue;
            }
            let (start, end) = (floor(start)?, floor(end)?);
            if start >= end {
                continue;
            }
            if last_ip != Some(held.ip) {
                ip_count += 1;
                last_ip = Some(held.ip);
            }
            if let Some(used) = used.get_mut(held.account as usize) {
                *used = true;
            }
            // The address's rank among the plan's addresses.
            let ip_rank = u32::try_from(ip_count - 1).unwrap_or(u32::MAX);
            if start == first && end == last {
                whole.push((held.ip, ip_rank, held.account));
            } else {
                partial.push(RawPiece {
                    start,
                    end,
                    ip: held.ip,
                    ip_rank,
                    account: held.account,
                });
            }
        }
        partial.sort_unstable_by_key(|piece| (piece.start, piece.end, piece.ip_rank));

        // The holders, in order; pieces refer to them by rank.
        let mut holders: Vec<u32> = (0..used.len())
            .filter(|&slot| used[slot])
            .filter_map(|slot| u32::try_from(slot).ok())
            .collect();
        holders.sort_unstable_by(|&a, &b| ledger.account(a).cmp(&ledger.account(b)));
        let mut rank = vec![0; used.len()];
        for (index, &slot) in holders.iter().enumerate() {
            rank[slot as usize] = u32::try_from(index).unwrap_or(u32::MAX);
        }

        let mut plan = QueryPlan {
            zone: zone.clone(),
            window,
            grid,
            pieces: Vec::with_capacity(whole.len() + partial.len()),
            piece_tags: Vec::with_capacity(whole.len() + partial.len()),
            slots: Vec::with_capacity(whole.len() + partial.len()),
            accounts: holders
                .iter()
                .filter_map(|&slot| ledger.account(slot).cloned())
                .collect(),
            queries: Vec::new(),
            ip_count,
            anomalies: ledger
                .anomalies_in(zone, window.interval())
                .cloned()
                .collect(),
            ownership_digest: Digest::UNSET,
        };
        let time = |at: i128| {
            if at == first {
                Ok(window.start())
            } else if at == last {
                Ok(window.end())
            } else {
                OffsetDateTime::from_unix_timestamp_nanos(at).map_err(|_| out_of_range())
            }
        };
        let mut group =
            |start: i128, end: i128, pieces: &mut dyn Iterator<Item = (IpAddr, u32, u32)>| {
                let interval =
                    TimeInterval::new(time(start)?, time(end)?).map_err(|_| out_of_range())?;
                plan.push_group(
                    interval,
                    pieces.map(|(ip, ip_rank, slot)| PieceSlot {
                        ip,
                        ip_rank,
                        account: rank[slot as usize],
                    }),
                )
            };
        let same_group = |a: &RawPiece, b: &RawPiece| (a.start, a.end) == (b.start, b.end);
        let split = partial.partition_point(|piece| (piece.start, piece.end) < (first, last));
        for run in partial[..split].chunk_by(same_group) {
            group(
                run[0].start,
                run[0].end,
                &mut run.iter().map(RawPiece::slot),
            )?;
        }
        if !whole.is_empty() {
            group(first, last, &mut whole.iter().copied())?;
        }
        for run in partial[split..].chunk_by(same_group) {
            group(
                run[0].start,
                run[0].end,
                &mut run.iter().map(RawPiece::slot),
            )?;
        }
        plan.ownership_digest = ownership_digest(plan.pieces.iter());
        Ok(plan)
    }

    /// Adds the query of one group of pieces over `interval`, by address.
    fn push_group(
        &mut self,
        interval: TimeInterval,
        pieces: impl Iterator<Item = PieceSlot>,
    ) -> Result<(), Error> {
        let tag = u32::try_from(self.queries.len())
            .map(QueryTag)
            .map_err(|_| Error::TooManyQueries {
                count: self.queries.len(),
            })?;
        let mut ips = Vec::with_capacity(pieces.size_hint().0);
        for slot in pieces {
            let Some(holder) = self.accounts.get(slot.account as usize) else {
                unreachable!("every holder of a piece is ranked");
            };
            self.pieces.push(Ownership {
                zone: self.zone.clone(),
                account: holder.clone(),
                ip: slot.ip,
                interval,
            });
            self.piece_tags.push(tag);
            self.slots.push(slot);
            ips.push(slot.ip);
        }
        self.queries.push(TrafficQuery { tag, interval, ips });
        Ok(())
    }

    /// The zone planned.
    pub fn zone(&self) -> &ZoneId {
        &self.zone
    }

    /// The window planned.
    pub fn window(&self) -> CollectionWindow {
        self.window
    }

    /// The grid the pieces are floored to.
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// The digest of the holdings this plan bills ([`QueryPlan::pieces`]):
    /// stored with the window, it tells a later run whether the event log
    /// still gives the same holdings (DESIGN §4, late events). Computed
    /// once, when the plan is made.
    pub fn ownership_digest(&self) -> Digest {
        self.ownership_digest
    }

    /// The ownership pieces, floored to the grid, clipped to the window and
    /// non-empty, sorted by `(start, end, ip)`.
    pub fn pieces(&self) -> &[Ownership] {
        &self.pieces
    }

    /// Each piece with the tag of the query that asks for it, in the order of
    /// [`QueryPlan::pieces`].
    pub fn tagged_pieces(&self) -> impl Iterator<Item = (QueryTag, &Ownership)> + '_ {
        self.piece_tags.iter().copied().zip(&self.pieces)
    }

    /// The piece that query `tag` asks about for `ip`, if any.
    pub fn piece(&self, tag: QueryTag, ip: IpAddr) -> Option<&Ownership> {
        self.piece_index(tag, ip).and_then(|i| self.pieces.get(i))
    }

    /// The index in `pieces` of the piece query `tag` asks about for `ip`.
    fn piece_index(&self, tag: QueryTag, ip: IpAddr) -> Option<usize> {
        let index = self.piece_tags.partition_point(|&t| t < tag);
        let end = index + self.piece_tags[index..].partition_point(|&t| t == tag);
        let group = self.pieces.get(index..end)?;
        group
            .binary_search_by(|piece| piece.ip.cmp(&ip))
            .ok()
            .map(|i| index + i)
    }

    /// The queries to send, one per group of pieces with the same
    /// `[start, end)`, tagged `QueryTag(0)`, `QueryTag(1)`, … in
    /// `(start, end)` order, each with its addresses sorted.
    pub fn queries(&self) -> &[TrafficQuery] {
        &self.queries
    }

    /// The number of pieces.
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// The number of groups (queries).
    pub fn query_count(&self) -> usize {
        self.queries.len()
    }

    /// The number of distinct addresses across all queries.
    pub fn ip_count(&self) -> usize {
        self.ip_count
    }

    /// Whether there is nothing to ask (no address held in the window). The
    /// window must still be joined, with an empty answer, to advance the
    /// checkpoint.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The anomalies of the plan's zone whose event lies in its window.
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// Joins Traffic Sentinel's answer to the pieces: one [`UsageRecord`] per
    /// piece that moved a byte, per-account totals, and the next checkpoint.
    ///
    /// A `(tag, ip)` pair the answer lacks moved no byte. Pieces with zero
    /// bytes both ways produce no record; the checkpoint advances to the
    /// window end all the same. Records are ordered by account, address and
    /// start.
    ///
    /// # Errors
    ///
    /// [`Error::UnexpectedAnswer`] when the answer holds a pair the plan did
    /// not ask for (such bytes are never dropped silently), and
    /// [`Error::TotalOverflow`] when an account's total of one usage type
    /// overflows `u64`.
    ///
    /// # Example
    ///
    /// ```
    /// use time::macros::datetime;
    /// use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan};
    /// use usage_model::{ByteCounts, CollectionWindow, Grid, QueryTag, TrafficAnswer, ZoneId};
    ///
    /// let zone = ZoneId::new("zone-1").unwrap();
    /// let ledger = OwnershipLedger::new(LedgerOptions::new());
    /// let window = CollectionWindow::new(
    ///     datetime!(2026-11-01 00:00 UTC),
    ///     datetime!(2026-11-01 06:00 UTC),
    /// )
    /// .unwrap();
    /// let plan = QueryPlan::new(&ledger, &zone, window, Grid::HOURLY).unwrap();
    /// // Nobody held anything: no record, but the checkpoint moves on.
    /// let outcome = plan.join(&TrafficAnswer::new()).unwrap();
    /// assert!(outcome.records.is_empty());
    /// assert_eq!(outcome.checkpoint.at, datetime!(2026-11-01 06:00 UTC));
    ///
    /// // An answer the plan did not ask for is an error.
    /// let mut stray = TrafficAnswer::new();
    /// stray.insert(QueryTag(0), "203.0.113.7".parse().unwrap(), ByteCounts::ZERO).unwrap();
    /// assert!(plan.join(&stray).is_err());
    /// ```
    pub fn join(&self, answer: &TrafficAnswer) -> Result<CycleOutcome, Error> {
        // The answer and the pieces are both in `(tag, ip)` order: one merge
        // pairs them.
        let mut billed: Vec<Billed> = Vec::with_capacity(answer.len().min(self.pieces.len()));
        let mut next = 0;
        for (tag, ip, bytes) in answer.iter() {
            let key = (tag, ip);
            while next < self.slots.len() && self.piece_key(next) < key {
                next += 1;
            }
            let index = if next < self.slots.len() && self.piece_key(next) == key {
                next += 1;
                next - 1
            } else {
                // Not in order after all: look it up.
                self.piece_index(tag, ip)
                    .ok_or(Error::UnexpectedAnswer { tag, ip })?
            };
            if !bytes.is_zero() {
                let slot = &self.slots[index];
                billed.push(Billed {
                    order: u64::from(slot.account) << 32 | u64::from(slot.ip_rank),
                    tag,
                    ip: slot.ip,
                    bytes,
                });
            }
        }
        // Records go by account, address and start. Within one account and
        // address, tags follow the pieces' starts.
        // `(order, tag)` as one number: one comparison per pair.
        billed.sort_unstable_by_key(|b| u128::from(b.order) << 32 | u128::from(b.tag.0));

        let mut records: Vec<UsageRecord> = Vec::with_capacity(billed.len());
        let mut totals: Vec<(AccountId, ByteCounts)> = Vec::new();
        for run in billed.chunk_by(|a, b| a.account() == b.account()) {
            let Some(account) = self.accounts.get(run[0].account()) else {
                unreachable!("every holder of a piece is ranked");
            };
            let mut total = ByteCounts::ZERO;
            for b in run {
                let Some(query) = self.queries.get(b.tag.0 as usize) else {
                    unreachable!("query tags index the queries");
                };
                for usage in [UsageType::BytesSent, UsageType::BytesReceived] {
                    let (sum, add) = match usage {
                        UsageType::BytesSent => (&mut total.sent, b.bytes.sent),
                        UsageType::BytesReceived => (&mut total.received, b.bytes.received),
                    };
                    *sum = sum.checked_add(add).ok_or_else(|| Error::TotalOverflow {
                        zone: self.zone.clone(),
                        account: account.clone(),
                        usage,
                        left: *sum,
                        right: add,
                    })?;
                }
                let (start, end) = (query.interval.start(), query.interval.end());
                records.push(UsageRecord {
                    id: RecordId::of(&self.zone, account, b.ip, start, end),
                    zone: self.zone.clone(),
                    account: account.clone(),
                    ip: b.ip,
                    start,
                    end,
                    bytes_sent: b.bytes.sent,
                    bytes_received: b.bytes.received,
                });
            }
            totals.push((account.clone(), total));
        }
        Ok(CycleOutcome {
            records,
            // Each account has one run: no key repeats.
            totals: totals.into_iter().collect(),
            checkpoint: Checkpoint {
                zone: self.zone.clone(),
                at: self.window.end(),
            },
            anomalies: self.anomalies.clone(),
            ownership_digest: self.ownership_digest,
        })
    }

    /// The `(tag, ip)` of piece `index`.
    fn piece_key(&self, index: usize) -> (QueryTag, IpAddr) {
        (self.piece_tags[index], self.slots[index].ip)
    }
}

/// A piece of a plan in compact form: its address, the address's rank
/// among the plan's addresses and the holder's rank among its holders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PieceSlot {
    ip: IpAddr,
    ip_rank: u32,
    account: u32,
}

/// A floored piece being planned, with the holder's slot in the ledger.
struct RawPiece {
    start: i128,
    end: i128,
    ip: IpAddr,
    ip_rank: u32,
    account: u32,
}

impl RawPiece {
    /// The address, its rank and the holder's slot.
    fn slot(&self) -> (IpAddr, u32, u32) {
        (self.ip, self.ip_rank, self.account)
    }
}

/// A piece that moved bytes, being joined.
struct Billed {
    /// The holder's rank, then the address's.
    order: u64,
    tag: QueryTag,
    ip: IpAddr,
    bytes: ByteCounts,
}

impl Billed {
    /// The holder's rank among the plan's holders.
    fn account(&self) -> usize {
        (self.order >> 32) as usize
    }
}

/// The result of one collection cycle: what the caller persists, in one
/// transaction, and reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CycleOutcome {
    /// One record per ownership piece that moved a byte, ordered by account,
    /// address and start. Ids are deterministic, so a replayed cycle upserts.
    pub records: Vec<UsageRecord>,
    /// Per account, the sum of its records' bytes: `sent` is CloudStack usage
    /// type 4, `received` type 5. Accounts without a record are absent.
    pub totals: BTreeMap<AccountId, ByteCounts>,
    /// The next checkpoint: the window end, also when no byte moved.
    pub checkpoint: Checkpoint,
    /// The anomalies of the zone whose event lies in the window.
    pub anomalies: Vec<Anomaly>,
    /// The digest of the holdings the window billed
    /// ([`QueryPlan::ownership_digest`]), to store with the window.
    pub ownership_digest: Digest,
}

impl CycleOutcome {
    /// The total of `account` for one usage type (zero without a record).
    pub fn total(&self, account: &AccountId, usage: UsageType) -> u64 {
        self.totals.get(account).map_or(0, |t| match usage {
            UsageType::BytesSent => t.sent,
            UsageType::BytesReceived => t.received,
        })
    }

    /// The totals as CloudStack usage rows: `(account, usage type, bytes)`,
    /// ordered by account then type, zero rows included for accounts with a
    /// record.
    pub fn usage_rows(&self) -> impl Iterator<Item = (&AccountId, UsageType, u64)> + '_ {
        self.totals.iter().flat_map(|(account, t)| {
            [
                (account, UsageType::BytesSent, t.sent),
                (account, UsageType::BytesReceived, t.received),
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use time::OffsetDateTime;
    use time::macros::datetime;
    use usage_model::{
        AccountId, ByteCounts, CollectionWindow, Grid, IpEvent, IpEventKind, QueryTag,
        TrafficAnswer, UsageType, ZoneId,
    };

    use super::QueryPlan;
    use crate::{AnomalyKind, Error, LedgerOptions, OwnershipLedger};

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

    fn window() -> CollectionWindow {
        CollectionWindow::new(
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-01 06:00 UTC),
        )
        .unwrap()
    }

    fn plan(events: Vec<IpEvent>) -> QueryPlan {
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), events);
        QueryPlan::new(&ledger, &zone(), window(), Grid::HOURLY).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pieces_are_floored_and_clipped() {
        let p = plan(vec![
            ev(
                1,
                datetime!(2026-10-31 22:10 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Assign,
            ),
            ev(
                2,
                datetime!(2026-11-01 02:40 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Release,
            ),
            ev(
                3,
                datetime!(2026-11-01 02:40 UTC),
                "b",
                "10.0.0.1",
                IpEventKind::Assign,
            ),
            ev(
                4,
                datetime!(2026-11-01 07:00 UTC),
                "b",
                "10.0.0.1",
                IpEventKind::Release,
            ),
        ]);
        let spans: Vec<_> = p
            .pieces()
            .iter()
            .map(|o| {
                (
                    o.account.to_string(),
                    o.interval.start().hour(),
                    o.interval.end().hour(),
                )
            })
            .collect();
        assert_eq!(spans, [("a".into(), 0, 2), ("b".into(), 2, 6)]);
        assert_eq!(p.query_count(), 2);
        assert_eq!(p.ip_count(), 1);
    }

    #[test]
    fn sub_bucket_holdings_are_dropped() {
        let p = plan(vec![
            ev(
                1,
                datetime!(2026-11-01 03:10 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Assign,
            ),
            ev(
                2,
                datetime!(2026-11-01 03:50 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Release,
            ),
        ]);
        assert!(p.is_empty());
        assert!(p.queries().is_empty());
    }

    #[test]
    fn groups_share_one_query_with_sorted_ips_and_tags_in_time_order() {
        let p = plan(vec![
            ev(
                1,
                datetime!(2026-11-01 04:00 UTC),
                "a",
                "10.0.0.9",
                IpEventKind::Assign,
            ),
            ev(
                2,
                datetime!(2026-10-01 00:00 UTC),
                "b",
                "2001:db8::1",
                IpEventKind::Assign,
            ),
            ev(
                3,
                datetime!(2026-10-01 00:00 UTC),
                "c",
                "10.0.0.2",
                IpEventKind::Assign,
            ),
        ]);
        assert_eq!(p.queries().len(), 2);
        assert_eq!(p.queries()[0].tag, QueryTag(0));
        assert_eq!(p.queries()[0].ips, [ip("10.0.0.2"), ip("2001:db8::1")]);
        assert_eq!(p.queries()[0].interval, window().interval());
        assert_eq!(p.queries()[1].tag, QueryTag(1));
        assert_eq!(p.queries()[1].ips, [ip("10.0.0.9")]);
        assert_eq!(
            p.piece(QueryTag(1), ip("10.0.0.9"))
                .map(|o| o.account.as_str()),
            Some("a")
        );
    }

    #[test]
    fn one_ip_can_be_in_two_queries() {
        let p = plan(vec![
            ev(
                1,
                datetime!(2026-11-01 01:00 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Assign,
            ),
            ev(
                2,
                datetime!(2026-11-01 02:00 UTC),
                "b",
                "10.0.0.1",
                IpEventKind::Assign,
            ),
            ev(
                3,
                datetime!(2026-11-01 04:00 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Assign,
            ),
        ]);
        assert_eq!(p.query_count(), 3);
        assert_eq!(p.ip_count(), 1);
        let kinds: Vec<_> = p.anomalies().iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [AnomalyKind::AssignWhileHeldByOther; 2]);
    }

    #[test]
    fn join_builds_records_totals_and_checkpoint() {
        let p = plan(vec![
            ev(
                1,
                datetime!(2026-10-01 00:00 UTC),
                "b",
                "10.0.0.2",
                IpEventKind::Assign,
            ),
            ev(
                2,
                datetime!(2026-10-01 00:00 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Assign,
            ),
            ev(
                3,
                datetime!(2026-10-01 00:00 UTC),
                "a",
                "10.0.0.3",
                IpEventKind::Assign,
            ),
        ]);
        let mut answer = TrafficAnswer::new();
        answer
            .insert(
                QueryTag(0),
                ip("10.0.0.1"),
                ByteCounts {
                    sent: 10,
                    received: 1,
                },
            )
            .unwrap();
        answer
            .insert(
                QueryTag(0),
                ip("10.0.0.2"),
                ByteCounts {
                    sent: 0,
                    received: 7,
                },
            )
            .unwrap();
        answer
            .insert(QueryTag(0), ip("10.0.0.3"), ByteCounts::ZERO)
            .unwrap();
        let out = p.join(&answer).unwrap();
        let got: Vec<_> = out
            .records
            .iter()
            .map(|r| (r.account.to_string(), r.ip))
            .collect();
        assert_eq!(
            got,
            [("a".into(), ip("10.0.0.1")), ("b".into(), ip("10.0.0.2"))]
        );
        let a = AccountId::new("a").unwrap();
        assert_eq!(out.total(&a, UsageType::BytesSent), 10);
        assert_eq!(out.total(&a, UsageType::BytesReceived), 1);
        assert_eq!(out.usage_rows().count(), 4);
        assert_eq!(out.checkpoint.at, window().end());
        assert_eq!(out.checkpoint.zone, zone());
    }

    #[test]
    fn unexpected_answer_pairs_are_errors_naming_tag_and_ip() {
        let p = plan(vec![ev(
            1,
            datetime!(2026-10-01 00:00 UTC),
            "a",
            "10.0.0.1",
            IpEventKind::Assign,
        )]);
        let mut answer = TrafficAnswer::new();
        answer
            .insert(
                QueryTag(0),
                ip("10.0.0.5"),
                ByteCounts {
                    sent: 1,
                    received: 0,
                },
            )
            .unwrap();
        let err = p.join(&answer).unwrap_err();
        assert_eq!(
            err,
            Error::UnexpectedAnswer {
                tag: QueryTag(0),
                ip: ip("10.0.0.5")
            }
        );
        assert_eq!(
            err.to_string(),
            "answer for query 0 and ip 10.0.0.5 that the plan did not ask for"
        );
    }

    #[test]
    fn total_overflow_is_an_error() {
        let p = plan(vec![
            ev(
                1,
                datetime!(2026-10-01 00:00 UTC),
                "a",
                "10.0.0.1",
                IpEventKind::Assign,
            ),
            ev(
                2,
                datetime!(2026-10-01 00:00 UTC),
                "a",
                "10.0.0.2",
                IpEventKind::Assign,
            ),
        ]);
        let mut answer = TrafficAnswer::new();
        let big = ByteCounts {
            sent: u64::MAX,
            received: 0,
        };
        answer.insert(QueryTag(0), ip("10.0.0.1"), big).unwrap();
        answer.insert(QueryTag(0), ip("10.0.0.2"), big).unwrap();
        assert!(matches!(
            p.join(&answer),
            Err(Error::TotalOverflow {
                usage: UsageType::BytesSent,
                ..
            })
        ));
    }

    #[test]
    fn windows_off_the_grid_are_refused() {
        let ledger = OwnershipLedger::new(LedgerOptions::new());
        let w = CollectionWindow::new(
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-01 05:30 UTC),
        )
        .unwrap();
        let err = QueryPlan::new(&ledger, &zone(), w, Grid::HOURLY).unwrap_err();
        assert_eq!(
            err.to_string(),
            "window [2026-11-01T00:00:00Z, 2026-11-01T05:30:00Z) is not on the grid of 1h"
        );
        let half_hour = Grid::from_seconds(1800).unwrap();
        assert!(QueryPlan::new(&ledger, &zone(), w, half_hour).is_ok());
    }
}
