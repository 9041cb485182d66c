//! The flow history: flows consolidated into time buckets, stored as prefix sums.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use time::OffsetDateTime;
use usage_model::{Grid, Side};

use crate::error::Error;
use crate::flows::Flow;

/// Which zones a query counts, as in a TS filter
/// `destinationzone = A,B & destinationzone != C`.
///
/// A zone matches when it is in the include list (or the include list is
/// empty, meaning any zone) and it is not in the exclude list. By default,
/// both lists are empty: every zone matches, including the empty zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl ZoneFilter {
    /// A filter matching every zone.
    pub fn any() -> ZoneFilter {
        ZoneFilter::default()
    }

    /// Adds `zone` to the include list.
    pub fn include(mut self, zone: impl Into<String>) -> ZoneFilter {
        self.include.push(zone.into());
        self
    }

    /// Adds `zone` to the exclude list.
    pub fn exclude(mut self, zone: impl Into<String>) -> ZoneFilter {
        self.exclude.push(zone.into());
        self
    }

    /// The include list (empty means any zone).
    pub fn included(&self) -> &[String] {
        &self.include
    }

    /// The exclude list.
    pub fn excluded(&self) -> &[String] {
        &self.exclude
    }

    /// Whether flows of `zone` count under this filter.
    pub fn matches(&self, zone: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|z| z == zone))
            && !self.exclude.iter().any(|z| z == zone)
    }
}

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

    /// Consolidates `flows` into buckets of `granularity`.
    ///
    /// # Errors
    ///
    /// [`Error::ByteOverflow`] when the bytes of all flows together do not
    /// fit in a `u64`.
    pub fn new(
        granularity: Grid,
        flows: impl IntoIterator<Item = Flow>,
    ) -> Result<FlowHistory, Error> {
        let g = i64::from(granularity.seconds());

        let mut zone_names: Vec<String> = Vec::new();
        let mut zone_ids: HashMap<String, u32> = HashMap::new();
        let mut intern = |zone: &str| -> u32 {
            if let Some(&id) = zone_ids.get(zone) {
                return id;
            }
            // More than u32::MAX distinct zones cannot fit in memory anyway.
            let id = u32::try_from(zone_names.len()).unwrap_or(u32::MAX);
            zone_names.push(zone.to_owned());
            zone_ids.insert(zone.to_owned(), id);
            id
        };

        let mut buckets: HashMap<(IpAddr, Side, u32), Vec<(i64, u64)>> = HashMap::new();
        let mut total_bytes: u64 = 0;
        let mut flow_count = 0;
        for (index, flow) in flows.into_iter().enumerate() {
            total_bytes = total_bytes
                .checked_add(flow.bytes)
                .ok_or(Error::ByteOverflow {
                    index,
                    bytes: flow.bytes,
                })?;
            flow_count += 1;
            let bucket = flow.time.unix_timestamp().div_euclid(g) * g;
            let to_zone = intern(&flow.destinationzone);
            let from_zone = intern(&flow.sourcezone);
            buckets
                .entry((flow.ipsource, Side::Sent, to_zone))
                .or_default()
                .push((bucket, flow.bytes));
            buckets
                .entry((flow.ipdestination, Side::Received, from_zone))
                .or_default()
                .push((bucket, flow.bytes));
        }

        let mut keys: Vec<(IpAddr, Side, u32)> = buckets.keys().copied().collect();
        keys.sort_unstable();
        let mut series = Vec::with_capacity(keys.len());
        let mut points = Vec::new();
        let mut ips: Vec<IpAddr> = Vec::new();
        let mut sides = Vec::new();
        for key in keys {
            let (ip, side, zone) = key;
            let Some(mut entries) = buckets.remove(&key) else {
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
        Ok(FlowHistory {
            granularity: g,
            grid: granularity,
            zone_names,
            zone_ids,
            ips,
            sides,
            series,
            points,
            total_bytes,
            flow_count,
        })
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
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn flow(time: OffsetDateTime, src: &str, dst: &str, sz: &str, dz: &str, bytes: u64) -> Flow {
        Flow {
            time,
            ipsource: ip(src),
            ipdestination: ip(dst),
            sourcezone: sz.into(),
            destinationzone: dz.into(),
            bytes,
        }
    }

    const A: &str = "203.0.113.7";
    const B: &str = "198.51.100.1";

    #[test]
    fn granularity_is_the_grid_given() {
        assert_eq!(
            FlowHistory::new(Grid::HOURLY, []).unwrap().granularity(),
            Grid::HOURLY
        );
    }

    #[test]
    fn buckets_are_aligned_to_the_epoch_in_utc() {
        // 10:07 at +05:30 is 04:37 UTC; with 1-hour buckets it belongs to 04:00 UTC,
        // not to a bucket aligned on the local hour.
        let h = FlowHistory::new(
            Grid::HOURLY,
            [flow(datetime!(2026-11-01 10:07 +05:30), A, B, "", "", 5)],
        )
        .unwrap();
        let any = ZoneFilter::any();
        assert_eq!(
            h.bytes(
                ip(A),
                Side::Sent,
                &any,
                datetime!(2026-11-01 04:00 UTC),
                datetime!(2026-11-01 05:00 UTC)
            ),
            5
        );
        assert_eq!(
            h.bytes(
                ip(A),
                Side::Sent,
                &any,
                datetime!(2026-11-01 04:30 UTC),
                datetime!(2026-11-01 05:30 UTC)
            ),
            0
        );
        assert_eq!(
            h.bucket_start(datetime!(2026-11-01 10:07 +05:30)),
            datetime!(2026-11-01 04:00 UTC)
        );
        // Before the epoch, flooring goes down.
        assert_eq!(
            h.bucket_start(datetime!(1969-12-31 23:59:59 UTC)),
            datetime!(1969-12-31 23:00 UTC)
        );
    }

    #[test]
    fn interval_covers_bucket_starts_in_start_inclusive_end_exclusive() {
        let h = FlowHistory::new(
            Grid::MINUTELY,
            [
                flow(datetime!(2026-11-01 10:00:00 UTC), A, B, "", "", 1),
                flow(datetime!(2026-11-01 10:00:59 UTC), A, B, "", "", 2), // mid-bucket: 10:00
                flow(datetime!(2026-11-01 10:30:30 UTC), A, B, "", "", 4),
                flow(datetime!(2026-11-01 11:00:00 UTC), A, B, "", "", 8), // END bucket
                flow(datetime!(2026-11-01 09:59:59 UTC), A, B, "", "", 16), // before START
            ],
        )
        .unwrap();
        let q = |s, e| h.bytes(ip(A), Side::Sent, &ZoneFilter::any(), s, e);
        assert_eq!(
            q(
                datetime!(2026-11-01 10:00 UTC),
                datetime!(2026-11-01 11:00 UTC)
            ),
            7
        );
        assert_eq!(
            q(
                datetime!(2026-11-01 10:00 UTC),
                datetime!(2026-11-01 11:00:01 UTC)
            ),
            15
        );
        // A START inside a bucket excludes that bucket (its start is before START).
        assert_eq!(
            q(
                datetime!(2026-11-01 10:00:01 UTC),
                datetime!(2026-11-01 11:00 UTC)
            ),
            4
        );
        // An END just after a bucket start includes that bucket.
        assert_eq!(
            q(
                datetime!(2026-11-01 09:00 UTC),
                datetime!(2026-11-01 10:00:00.5 UTC)
            ),
            19
        );
        assert_eq!(
            q(
                datetime!(2026-11-01 10:00 UTC),
                datetime!(2026-11-01 10:00 UTC)
            ),
            0
        );
        assert_eq!(
            q(
                datetime!(2026-11-01 12:00 UTC),
                datetime!(2026-11-01 10:00 UTC)
            ),
            0
        );
        assert_eq!(
            q(
                datetime!(2000-01-01 0:00 UTC),
                datetime!(2100-01-01 0:00 UTC)
            ),
            31
        );
        assert_eq!(h.total_bytes(), 31);
        assert_eq!(h.flow_count(), 5);
    }

    #[test]
    fn sides_and_zone_filters() {
        let t = datetime!(2026-11-01 10:00 UTC);
        let h = FlowHistory::new(
            Grid::MINUTELY,
            [
                flow(t, A, B, "INTERNAL", "EXTERNAL", 1),
                flow(t, A, B, "INTERNAL", "PEERING", 10),
                flow(t, A, B, "INTERNAL", "", 100),
                flow(t, B, A, "EXTERNAL", "INTERNAL", 1000),
                flow(t, B, A, "PEERING", "INTERNAL", 10000),
            ],
        )
        .unwrap();
        let (s, e) = (t, t + Duration::minutes(1));
        let sent = |f: &ZoneFilter| h.bytes(ip(A), Side::Sent, f, s, e);
        let rcvd = |f: &ZoneFilter| h.bytes(ip(A), Side::Received, f, s, e);
        assert_eq!(sent(&ZoneFilter::any()), 111);
        assert_eq!(sent(&ZoneFilter::any().include("EXTERNAL")), 1);
        assert_eq!(
            sent(&ZoneFilter::any().include("EXTERNAL").include("PEERING")),
            11
        );
        assert_eq!(sent(&ZoneFilter::any().exclude("PEERING")), 101);
        assert_eq!(
            sent(
                &ZoneFilter::any()
                    .include("EXTERNAL")
                    .include("PEERING")
                    .exclude("PEERING")
            ),
            1
        );
        assert_eq!(sent(&ZoneFilter::any().include("NOWHERE")), 0);
        assert_eq!(rcvd(&ZoneFilter::any()), 11000);
        assert_eq!(rcvd(&ZoneFilter::any().include("EXTERNAL")), 1000);
        assert_eq!(h.bytes(ip(B), Side::Sent, &ZoneFilter::any(), s, e), 11000);
        assert_eq!(
            h.bytes(ip(B), Side::Received, &ZoneFilter::any(), s, e),
            111
        );
        assert_eq!(h.ips(), &[ip(B), ip(A)]);
        assert!(ZoneFilter::any().include("A").exclude("A").included() == ["A"]);
        assert!(!ZoneFilter::any().include("A").exclude("A").matches("A"));
    }

    #[test]
    fn top_n_sorts_dedupes_cuts_and_omits_zero_rows() {
        let t = datetime!(2026-11-01 10:00 UTC);
        let ips = [
            "10.0.0.1",
            "10.0.0.2",
            "10.0.0.3",
            "2001:db8::1",
            "10.0.0.9",
        ];
        let h = FlowHistory::new(
            Grid::MINUTELY,
            [
                flow(t, ips[0], B, "", "X", 5),
                flow(t, ips[1], B, "", "X", 7),
                flow(t, ips[2], B, "", "X", 5),
                flow(t, ips[3], B, "", "X", 9),
            ],
        )
        .unwrap();
        let list: Vec<IpAddr> = ips.iter().chain(ips.iter()).map(|s| ip(s)).collect();
        let rows = h.top_n(
            &list,
            Side::Sent,
            &ZoneFilter::any(),
            t,
            t + Duration::hours(1),
            10,
        );
        assert_eq!(
            rows,
            vec![
                (ip(ips[3]), 9),
                (ip(ips[1]), 7),
                (ip(ips[0]), 5),
                (ip(ips[2]), 5)
            ]
        );
        let rows = h.top_n(
            &list,
            Side::Sent,
            &ZoneFilter::any(),
            t,
            t + Duration::hours(1),
            2,
        );
        assert_eq!(rows, vec![(ip(ips[3]), 9), (ip(ips[1]), 7)]);
    }

    #[test]
    fn byte_overflow_is_an_error() {
        let t = datetime!(2026-11-01 10:00 UTC);
        let err = FlowHistory::new(
            Grid::MINUTELY,
            [flow(t, A, B, "", "", u64::MAX), flow(t, A, B, "", "", 1)],
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::ByteOverflow { index: 1, bytes: 1 }),
            "{err}"
        );
    }

    #[test]
    fn many_buckets_per_address_sum_by_prefix() {
        let start = datetime!(2026-11-01 00:00 UTC);
        let flows = (0..1440).map(|m| flow(start + Duration::minutes(m), A, B, "", "E", m as u64));
        let h = FlowHistory::new(Grid::MINUTELY, flows).unwrap();
        let f = ZoneFilter::any();
        let q = |a: i64, b: i64| {
            h.bytes(
                ip(A),
                Side::Sent,
                &f,
                start + Duration::minutes(a),
                start + Duration::minutes(b),
            )
        };
        assert_eq!(q(0, 1440), (0..1440).sum::<u64>());
        assert_eq!(q(100, 200), (100..200).sum::<u64>());
        assert_eq!(q(1439, 2000), 1439);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const ZONES: [&str; 3] = ["", "EXTERNAL", "PEERING"];

        /// A few addresses of both families, so flows share them.
        fn address(k: u8) -> IpAddr {
            if k % 4 == 3 {
                IpAddr::V6(std::net::Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    u16::from(k),
                ))
            } else {
                IpAddr::V4(std::net::Ipv4Addr::new(10, 0, k / 8, k % 8))
            }
        }

        fn flows() -> impl Strategy<Value = Vec<Flow>> {
            proptest::collection::vec(
                (
                    0u8..12,
                    0u8..12,
                    0usize..3,
                    0usize..3,
                    -30i64..200,
                    0u64..1000,
                ),
                0..60,
            )
            .prop_map(|raw| {
                let base = datetime!(2026-11-01 10:00 UTC);
                raw.into_iter()
                    .map(|(src, dst, sz, dz, minute, bytes)| Flow {
                        time: base + Duration::seconds(minute * 37),
                        ipsource: address(src),
                        ipdestination: address(dst),
                        sourcezone: ZONES[sz].to_owned(),
                        destinationzone: ZONES[dz].to_owned(),
                        bytes,
                    })
                    .collect()
            })
        }

        fn zone_filter() -> impl Strategy<Value = ZoneFilter> {
            (
                proptest::collection::vec(0usize..4, 0..3),
                proptest::collection::vec(0usize..4, 0..2),
            )
                .prop_map(|(include, exclude)| {
                    let name = |z: usize| ZONES.get(z).copied().unwrap_or("NOWHERE");
                    let filter = include
                        .into_iter()
                        .fold(ZoneFilter::any(), |f, z| f.include(name(z)));
                    exclude.into_iter().fold(filter, |f, z| f.exclude(name(z)))
                })
        }

        /// The bytes of `ip` straight from the flows, as DESIGN defines them.
        fn naive_bytes(
            flows: &[Flow],
            g: i64,
            ip: IpAddr,
            side: Side,
            zones: &ZoneFilter,
            start: OffsetDateTime,
            end: OffsetDateTime,
        ) -> u64 {
            flows
                .iter()
                .filter(|f| {
                    let (who, zone) = match side {
                        Side::Sent => (f.ipsource, &f.destinationzone),
                        Side::Received => (f.ipdestination, &f.sourcezone),
                    };
                    let bucket = f.time.unix_timestamp().div_euclid(g) * g;
                    let bucket = OffsetDateTime::from_unix_timestamp(bucket).unwrap();
                    who == ip && zones.matches(zone) && start <= bucket && bucket < end
                })
                .map(|f| f.bytes)
                .sum()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            #[test]
            fn bytes_and_top_n_agree_with_the_flows(
                flows in flows(),
                granularity in prop::sample::select(vec![1i64, 60, 300, 3600]),
                wanted in proptest::collection::vec(0u8..14, 0..20),
                side in prop::sample::select(vec![Side::Sent, Side::Received]),
                zones in zone_filter(),
                from in -40i64..8000,
                length in -100i64..9000,
                nanos in prop::sample::select(vec![0i64, 1, 500_000_000]),
                n in 0usize..25,
            ) {
                let history = FlowHistory::new(Grid::from_seconds(granularity as u64).unwrap(), flows.clone()).unwrap();
                let base = datetime!(2026-11-01 10:00 UTC);
                let start = base + Duration::seconds(from) + Duration::nanoseconds(nanos);
                let end = start + Duration::seconds(length);
                let wanted: Vec<IpAddr> = wanted.into_iter().map(address).collect();
                let mut expected: Vec<(IpAddr, u64)> = Vec::new();
                for &ip in &wanted {
                    let bytes = naive_bytes(&flows, granularity, ip, side, &zones, start, end);
                    prop_assert_eq!(history.bytes(ip, side, &zones, start, end), bytes);
                    if bytes > 0 && !expected.iter().any(|&(seen, _)| seen == ip) {
                        expected.push((ip, bytes));
                    }
                }
                expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                expected.truncate(n);
                prop_assert_eq!(history.top_n(&wanted, side, &zones, start, end, n), expected);
            }

            #[test]
            fn count_before_is_partition_point(
                starts in proptest::collection::btree_set(-1000i64..100_000, 0..80),
                t in -2000i64..101_000,
            ) {
                let points: Vec<Point> = starts
                    .into_iter()
                    .map(|bucket_start| Point { bucket_start, cumulative: 0 })
                    .collect();
                let count = |t: i64| match (points.first(), points.last()) {
                    (Some(first), Some(last)) => {
                        count_before(&points, first.bucket_start, last.bucket_start, t)
                    }
                    _ => count_before(&points, 0, 0, t),
                };
                prop_assert_eq!(count(t), points.partition_point(|p| p.bucket_start < t));
                for p in &points {
                    for t in [p.bucket_start - 1, p.bucket_start, p.bucket_start + 1] {
                        prop_assert_eq!(count(t), points.partition_point(|p| p.bucket_start < t));
                    }
                }
            }

            #[test]
            fn gallop_is_partition_point(
                sorted in proptest::collection::btree_set(0u8..=255, 0..100),
                target in 0u8..=255,
            ) {
                let sorted: Vec<IpAddr> = sorted
                    .into_iter()
                    .map(|k| IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, k)))
                    .collect();
                let target = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, target));
                prop_assert_eq!(
                    gallop(&sorted, &target),
                    sorted.partition_point(|ip| *ip < target)
                );
            }
        }

        #[test]
        fn count_before_handles_extreme_spans() {
            let points = [
                Point {
                    bucket_start: i64::MIN,
                    cumulative: 1,
                },
                Point {
                    bucket_start: 0,
                    cumulative: 2,
                },
                Point {
                    bucket_start: i64::MAX,
                    cumulative: 3,
                },
            ];
            for t in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
                assert_eq!(
                    count_before(&points, i64::MIN, i64::MAX, t),
                    points.partition_point(|p| p.bucket_start < t)
                );
            }
        }
    }
}
