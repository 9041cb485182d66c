//! The flow history: flows consolidated into time buckets, stored as prefix sums.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use time::OffsetDateTime;
use usage_model::{Grid, Side};

use crate::error::Error;
use crate::flows::Flow;
use crate::zone_filter::ZoneFilter;

/// One bucket of one series: its start (Unix seconds) and the bytes of all
/// buckets of the series up to and including it.
#[derive(Clone, Copy, Debug)]
struct Point {
    bucket_start: i64,
    cumulative: u64,
}

/// The buckets of one `(ip, side, zone)`, as a range of `FlowHistory::points`,
/// with their span and total, so a query covering all of them reads no point.
#[derive(Clone, Copy, Debug)]
struct Series {
    zone: u32,
    start: usize,
    end: usize,
    /// The start of the first bucket.
    first: i64,
    /// The start of the last bucket.
    last: i64,
    /// The bytes of all buckets.
    total: u64,
}

/// What a query reads of the history, resolved once per query: which zones
/// count and the Unix-second range `[lo, hi)` of bucket starts.
#[derive(Clone, Debug)]
struct Selection {
    allowed: Vec<bool>,
    lo: i64,
    hi: i64,
}

/// Flows consolidated into buckets of a fixed granularity, per address, side
/// and zone, answering "how many bytes did this address send/receive to/from
/// these zones in buckets starting in `[start, end)`" in logarithmic time.
///
/// Buckets are aligned to the Unix epoch in UTC: a flow at Unix second `t`
/// belongs to the bucket starting at `floor(t / g) * g`. Each
/// `(ip, side, zone)` keeps a sorted list of non-empty buckets with cumulative
/// byte counts (prefix sums), so a range query is two searches of that list
/// (none when the range covers all of it). Memory is proportional to the
/// number of distinct `(ip, side, zone, bucket)` combinations, not to the
/// time span.
///
/// Addresses are kept in one ascending list, and each address's series are
/// stored in that order too, so [`FlowHistory::top_n`] walks a query's
/// addresses (sorted) and the history together, front to back, instead of
/// looking each one up at a random place.
///
/// # Example
///
/// ```
/// use usage_model::Grid;
/// use time::{Duration, macros::datetime};
/// use traffic_sentinel_emulator::{Flow, FlowHistory, Side, ZoneFilter};
///
/// let flow = Flow {
///     time: datetime!(2026-11-01 10:00:42 UTC),
///     ipsource: "203.0.113.7".parse().unwrap(),
///     ipdestination: "198.51.100.1".parse().unwrap(),
///     sourcezone: "INTERNAL".into(),
///     destinationzone: "EXTERNAL".into(),
///     bytes: 700,
/// };
/// let history = FlowHistory::new(Grid::MINUTELY, [flow.clone()]).unwrap();
/// // The flow lies in the bucket starting at 10:00:00.
/// let bytes = history.bytes(
///     flow.ipsource,
///     Side::Sent,
///     &ZoneFilter::any().include("EXTERNAL"),
///     datetime!(2026-11-01 10:00 UTC),
///     datetime!(2026-11-01 10:01 UTC),
/// );
/// assert_eq!(bytes, 700);
/// ```
#[derive(Clone, Debug)]
pub struct FlowHistory {
    granularity: i64,
    grid: Grid,
    zone_names: Vec<String>,
    zone_ids: HashMap<String, u32>,
    /// Every address, ascending.
    ips: Vec<IpAddr>,
    /// The series of `ips[k]`: sent `series[sides[2k]..sides[2k + 1]]`,
    /// received `series[sides[2k + 1]..sides[2k + 2]]`; `2 * ips.len() + 1`
    /// boundaries.
    sides: Vec<usize>,
    series: Vec<Series>,
    points: Vec<Point>,
    total_bytes: u64,
    flow_count: usize,
}

impl FlowHistory {
    /// The default bucket granularity, [`Grid::MINUTELY`] (TS minute data).
    pub const DEFAULT_GRANULARITY: Grid = Grid::MINUTELY;

    /// Consolidates `flows` into buckets of `granularity`. Addresses are
    /// kept canonical: an IPv4-mapped IPv6 address is its IPv4 address.
    ///
    /// # Errors
    ///
    /// [`Error::ByteOverflow`] when the bytes of all flows together do not
    /// fit in a `u64`.
    pub fn new(
        granularity: Grid,
        flows: impl IntoIterator<Item = Flow>,
    ) -> Result<FlowHistory, Error> {
        let mut consolidation = Consolidation::default();
        consolidation.add_flows(i64::from(granularity.seconds()), flows)?;
        Ok(consolidation.finish(granularity))
    }

    /// This history with `flows` added: the same as building one history
    /// from this one's flows and `flows` together, without the flows this
    /// one was built from. Addresses are kept canonical.
    ///
    /// Runs in `O(p + f log f + s log s)` for `p` buckets kept here, `f` new
    /// flows and `s` series (address, side, zone): about the cost of a
    /// copy of this history when few flows are added. This is how a live
    /// history takes in a closed bucket (DESIGN §13).
    ///
    /// # Errors
    ///
    /// [`Error::ByteOverflow`] when the bytes of this history and of `flows`
    /// together do not fit in a `u64` (`index` counts within `flows`).
    ///
    /// # Example
    ///
    /// ```
    /// use time::macros::datetime;
    /// use traffic_sentinel_emulator::{Flow, FlowHistory, Side, ZoneFilter};
    /// use usage_model::Grid;
    ///
    /// let flow = |minute: u8, bytes| Flow {
    ///     time: datetime!(2026-11-01 10:00 UTC).replace_minute(minute).unwrap(),
    ///     ipsource: "203.0.113.7".parse().unwrap(),
    ///     ipdestination: "198.51.100.1".parse().unwrap(),
    ///     sourcezone: "INTERNAL".into(),
    ///     destinationzone: "EXTERNAL".into(),
    ///     bytes,
    /// };
    /// let history = FlowHistory::new(Grid::MINUTELY, [flow(0, 700)])?;
    /// let grown = history.extended([flow(0, 50), flow(1, 25)])?;
    /// let (start, end) = (datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-01 10:01 UTC));
    /// let external = ZoneFilter::any().include("EXTERNAL");
    /// let ip = "203.0.113.7".parse()?;
    /// assert_eq!(grown.bytes(ip, Side::Sent, &external, start, end), 750);
    /// assert_eq!((grown.total_bytes(), grown.flow_count()), (775, 3));
    /// assert_eq!(history.total_bytes(), 700);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extended(&self, flows: impl IntoIterator<Item = Flow>) -> Result<FlowHistory, Error> {
        let mut consolidation = Consolidation::default();
        // Zones first, in order, so that their ids stay.
        for name in &self.zone_names {
            consolidation.intern(name);
        }
        for (k, &ip) in self.ips.iter().enumerate() {
            for (offset, side) in [(0, Side::Sent), (1, Side::Received)] {
                let (Some(&from), Some(&to)) = (
                    self.sides.get(2 * k + offset),
                    self.sides.get(2 * k + offset + 1),
                ) else {
                    continue;
                };
                for series in self.series.get(from..to).unwrap_or_default() {
                    let points = self
                        .points
                        .get(series.start..series.end)
                        .unwrap_or_default();
                    let entries = consolidation
                        .buckets
                        .entry((ip, side, series.zone))
                        .or_default();
                    entries.reserve(points.len());
                    let mut before = 0;
                    for point in points {
                        entries.push((point.bucket_start, point.cumulative - before));
                        before = point.cumulative;
                    }
                }
            }
        }
        consolidation.total_bytes = self.total_bytes;
        consolidation.flow_count = self.flow_count;
        consolidation.add_flows(self.granularity, flows)?;
        Ok(consolidation.finish(self.grid))
    }

    /// The bucket length.
    pub fn granularity(&self) -> Grid {
        self.grid
    }

    /// Every address seen as source or destination of a flow, ascending.
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// The bytes of all flows (each flow counted once).
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The number of flows the history was built from.
    pub fn flow_count(&self) -> usize {
        self.flow_count
    }

    /// The start of the bucket containing `at` (in UTC).
    pub fn bucket_start(&self, at: OffsetDateTime) -> OffsetDateTime {
        let g = self.granularity;
        let start = at.unix_timestamp().div_euclid(g) * g;
        // `start <= at`, and `at` is representable, so this cannot fail.
        OffsetDateTime::from_unix_timestamp(start).unwrap_or(at)
    }

    /// The bytes `ip` sent (or received, per `side`) to (from) the zones
    /// `zones` lets through, in the buckets whose start lies in `[start, end)`.
    ///
    /// Runs in `O(log a + z log b)` for `a` addresses, `z` zones and `b`
    /// buckets of that address.
    pub fn bytes(
        &self,
        ip: IpAddr,
        side: Side,
        zones: &ZoneFilter,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> u64 {
        let selection = self.select(zones, start, end);
        match self.ips.binary_search(&ip) {
            Ok(k) => self.bytes_at(k, side, &selection),
            Err(_) => 0,
        }
    }

    /// The largest `n` byte counts among `ips` (duplicates counted once), as
    /// `bytes` computes them, largest first (ties by address ascending);
    /// addresses with 0 bytes are left out. This is TS's `Query.topN`.
    ///
    /// Runs in `O(m log m)` for `m` addresses (no sort when they are
    /// already strictly ascending), reading the history front to back.
    pub fn top_n(
        &self,
        ips: &[IpAddr],
        side: Side,
        zones: &ZoneFilter,
        start: OffsetDateTime,
        end: OffsetDateTime,
        n: usize,
    ) -> Vec<(IpAddr, u64)> {
        let selection = self.select(zones, start, end);
        // Ascending and without duplicates, so rows come out in address order.
        let wanted: Cow<'_, [IpAddr]> = if ips.is_sorted_by(|a, b| a < b) {
            Cow::Borrowed(ips)
        } else {
            let mut sorted = ips.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            Cow::Owned(sorted)
        };
        // Each row as one sort key: bytes descending, then position in
        // `wanted` (address ascending); keys are distinct.
        let mut keys: Vec<u128> = Vec::new();
        if selection.lo < selection.hi {
            keys.reserve(wanted.len());
            let mut from = 0;
            for (position, ip) in wanted.iter().enumerate() {
                let k = from + gallop(&self.ips[from..], ip);
                from = k;
                if self.ips.get(k) == Some(ip) {
                    from = k + 1;
                    let bytes = self.bytes_at(k, side, &selection);
                    if bytes > 0 {
                        keys.push(u128::from(!bytes) << 64 | position as u128);
                    }
                }
            }
        }
        keys.sort_unstable();
        keys.iter()
            .take(n)
            .map(|&key| {
                let bytes = !((key >> 64) as u64);
                (wanted[key as u64 as usize], bytes)
            })
            .collect()
    }

    /// Resolves a filter and an interval for the lookups of one query.
    fn select(&self, zones: &ZoneFilter, start: OffsetDateTime, end: OffsetDateTime) -> Selection {
        let mut allowed = vec![zones.included().is_empty(); self.zone_names.len()];
        for zone in zones.included() {
            if let Some(&id) = self.zone_ids.get(zone) {
                allowed[id as usize] = true;
            }
        }
        for zone in zones.excluded() {
            if let Some(&id) = self.zone_ids.get(zone) {
                allowed[id as usize] = false;
            }
        }
        let (lo, hi) = bucket_bounds(start, end);
        Selection { allowed, lo, hi }
    }

    /// The bytes of the buckets of `series` that start before `t`; reads
    /// no point unless `t` falls inside the series' span.
    fn cumulative_before(&self, series: &Series, t: i64) -> u64 {
        if t <= series.first {
            0
        } else if t > series.last {
            series.total
        } else {
            let points = self
                .points
                .get(series.start..series.end)
                .unwrap_or_default();
            count_before(points, series.first, series.last, t)
                .checked_sub(1)
                .and_then(|i| points.get(i))
                .map_or(0, |p| p.cumulative)
        }
    }

    /// The bytes of `ips[k]` on `side` in the selection.
    fn bytes_at(&self, k: usize, side: Side, selection: &Selection) -> u64 {
        let Selection { allowed, lo, hi } = selection;
        let (lo, hi) = (*lo, *hi);
        if lo >= hi {
            return 0;
        }
        let first = 2 * k + usize::from(side == Side::Received);
        let (Some(&from), Some(&to)) = (self.sides.get(first), self.sides.get(first + 1)) else {
            return 0;
        };
        let mut sum: u64 = 0;
        for series in self.series.get(from..to).unwrap_or_default() {
            if !allowed.get(series.zone as usize).copied().unwrap_or(false) {
                continue;
            }
            // Cumulative sums are non-decreasing, so this cannot underflow.
            let bytes = self
                .cumulative_before(series, hi)
                .saturating_sub(self.cumulative_before(series, lo));
            sum = sum.saturating_add(bytes);
        }
        sum
    }
}

/// Flows gathered per `(ip, side, zone)` as `(bucket start, bytes)`
/// entries, before they are laid out as a [`FlowHistory`].
#[derive(Default)]
struct Consolidation {
    zone_names: Vec<String>,
    zone_ids: HashMap<String, u32>,
    buckets: HashMap<(IpAddr, Side, u32), Vec<(i64, u64)>>,
    total_bytes: u64,
    flow_count: usize,
}

impl Consolidation {
    /// The id of `zone`, given the next one when it is new.
    fn intern(&mut self, zone: &str) -> u32 {
        if let Some(&id) = self.zone_ids.get(zone) {
            return id;
        }
        // More than u32::MAX distinct zones cannot fit in memory anyway.
        let id = u32::try_from(self.zone_names.len()).unwrap_or(u32::MAX);
        self.zone_names.push(zone.to_owned());
        self.zone_ids.insert(zone.to_owned(), id);
        id
    }

    /// Adds each flow to its sender's sent series and its receiver's
    /// received series, in buckets of `g` seconds.
    fn add_flows(&mut self, g: i64, flows: impl IntoIterator<Item = Flow>) -> Result<(), Error> {
        for (index, flow) in flows.into_iter().enumerate() {
            self.total_bytes =
                self.total_bytes
                    .checked_add(flow.bytes)
                    .ok_or(Error::ByteOverflow {
                        index,
                        bytes: flow.bytes,
                    })?;
            self.flow_count += 1;
            let bucket = flow.time.unix_timestamp().div_euclid(g) * g;
            let to_zone = self.intern(&flow.destinationzone);
            let from_zone = self.intern(&flow.sourcezone);
            // Addresses are canonical (DESIGN §4): `::ffff:192.0.2.1` is `192.0.2.1`.
            self.buckets
                .entry((flow.ipsource.to_canonical(), Side::Sent, to_zone))
                .or_default()
                .push((bucket, flow.bytes));
            self.buckets
                .entry((flow.ipdestination.to_canonical(), Side::Received, from_zone))
                .or_default()
                .push((bucket, flow.bytes));
        }
        Ok(())
    }

    /// Lays the series out as prefix sums, addresses ascending.
    fn finish(mut self, granularity: Grid) -> FlowHistory {
        let mut keys: Vec<(IpAddr, Side, u32)> = self.buckets.keys().copied().collect();
        keys.sort_unstable();
        let mut series = Vec::with_capacity(keys.len());
        let mut points = Vec::new();
        let mut ips: Vec<IpAddr> = Vec::new();
        let mut sides = Vec::new();
        for key in keys {
            let (ip, side, zone) = key;
            let Some(mut entries) = self.buckets.remove(&key) else {
                continue;
            };
            // Keys are sorted by address, then side, then zone: a new address
            // opens its sent series, its first received series closes them.
            if ips.last() != Some(&ip) {
                if !ips.is_empty() {
                    sides.resize(2 * ips.len(), series.len());
                }
                ips.push(ip);
                sides.push(series.len());
            }
            if side == Side::Received && sides.len() < 2 * ips.len() {
                sides.push(series.len());
            }
            entries.sort_unstable_by_key(|&(bucket, _)| bucket);
            let start = points.len();
            let mut cumulative: u64 = 0;
            for (bucket_start, bytes) in entries {
                // Bounded by `total_bytes`, which did not overflow.
                cumulative = cumulative.saturating_add(bytes);
                let same_bucket = points.len() > start
                    && points
                        .last()
                        .is_some_and(|p: &Point| p.bucket_start == bucket_start);
                match points.last_mut() {
                    Some(last) if same_bucket => last.cumulative = cumulative,
                    _ => points.push(Point {
                        bucket_start,
                        cumulative,
                    }),
                }
            }
            let (Some(first), Some(last)) = (points.get(start), points.last()) else {
                continue;
            };
            series.push(Series {
                zone,
                start,
                end: points.len(),
                first: first.bucket_start,
                last: last.bucket_start,
                total: last.cumulative,
            });
        }
        sides.resize(2 * ips.len() + 1, series.len());
        points.shrink_to_fit();
        FlowHistory {
            granularity: i64::from(granularity.seconds()),
            grid: granularity,
            zone_names: self.zone_names,
            zone_ids: self.zone_ids,
            ips,
            sides,
            series,
            points,
            total_bytes: self.total_bytes,
            flow_count: self.flow_count,
        }
    }
}

/// How many of `points` (ascending bucket starts) start before `t`, as
/// `partition_point` would say.
///
/// Starts where `t` would be if the buckets were evenly spread between the
/// first and the last (interpolation), then gallops to the answer: one or
/// two probes, in one cache line, for evenly spread buckets; `O(log n)` for
/// any others.
///
/// `first` and `last` are the first and last bucket starts of `points`
/// (known to the caller, so they cost no memory read here).
fn count_before(points: &[Point], first: i64, last: i64, t: i64) -> usize {
    if points.is_empty() || t <= first {
        return 0;
    }
    if t > last {
        return points.len();
    }
    // Here first < t <= last, so the span is positive and the guess in range
    // (a guess of 0 when the product overflows only makes the gallop longer).
    let span = last.abs_diff(first);
    let offset = t.abs_diff(first);
    let steps = u64::try_from(points.len() - 1).unwrap_or(u64::MAX);
    let guess = offset
        .checked_mul(steps)
        .and_then(|product| usize::try_from(product / span).ok())
        .unwrap_or(0)
        .min(points.len() - 1);
    if points[guess].bucket_start < t {
        // The answer is after `guess`: gallop forward.
        let ahead = &points[guess + 1..];
        let mut high = 1;
        while high < ahead.len() && ahead[high - 1].bucket_start < t {
            high *= 2;
        }
        let low = high / 2;
        let high = high.min(ahead.len());
        guess + 1 + low + ahead[low..high].partition_point(|p| p.bucket_start < t)
    } else {
        // The answer is at or before `guess`: gallop backward.
        let behind = &points[..guess];
        let mut back = 1;
        while back <= behind.len() && behind[behind.len() - back].bucket_start >= t {
            back *= 2;
        }
        let low = behind.len().saturating_sub(back);
        let high = behind.len() + 1 - (back / 2).max(1);
        low + behind[low..high].partition_point(|p| p.bucket_start < t)
    }
}

/// The position of the first element of `sorted` not less than `target`,
/// found by galloping from the front: `O(log d)` for a target `d` places in,
/// so walking a sorted list of targets costs about one pass.
fn gallop(sorted: &[IpAddr], target: &IpAddr) -> usize {
    let mut high = 1;
    while high < sorted.len() && sorted[high - 1] < *target {
        high *= 2;
    }
    let low = high / 2;
    let high = high.min(sorted.len());
    low + sorted[low..high].partition_point(|ip| ip < target)
}

/// The Unix-second range `[lo, hi)` of bucket starts `s` with `start <= s < end`.
pub(crate) fn bucket_bounds(start: OffsetDateTime, end: OffsetDateTime) -> (i64, i64) {
    (ceil_seconds(start), ceil_seconds(end))
}

/// The smallest whole Unix second not before `t`.
fn ceil_seconds(t: OffsetDateTime) -> i64 {
    let secs = t.unix_timestamp();
    if t.nanosecond() > 0 { secs + 1 } else { secs }
}

#[cfg(test)]
mod tests;
