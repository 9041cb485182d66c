//! Synthetic, deterministic data for the benchmarks of the traffic-usage
//! workspace: event logs, flow histories, Traffic Sentinel answer bodies and
//! Apache CloudStack's own query script.
//!
//! Every generator is seeded, so two runs measure the same work, and each
//! says what it built (addresses, expected ownership pieces), so the
//! benchmarks can assert their results before they time anything.
//!
//! ```
//! use usage_benches::{handover_log, BENCH_GRID};
//! use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan};
//!
//! // 100 addresses, 30 of which change hands within the window.
//! let log = handover_log(100, 30, 7);
//! assert_eq!(log.events.len(), 400);
//! let ledger = OwnershipLedger::from_events(LedgerOptions::new(), log.events.clone());
//! assert!(ledger.anomalies().is_empty());
//! let plan = QueryPlan::new(&ledger, &log.zone, log.window, BENCH_GRID)?;
//! assert_eq!(plan.piece_count(), log.pieces);
//! assert_eq!(plan.piece_count(), 130);
//! # Ok::<(), usage_correlator::Error>(())
//! ```
//!
//! The benchmarks themselves live in `benches/`; they run in full with
//! `cargo bench -p usage-benches` and once each, on smaller inputs, under
//! `cargo test` (see [`full_run`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use time::{Duration, OffsetDateTime};
use traffic_sentinel_client::{MonitorConfig, ScriptRequest, Side, plan_requests};
use traffic_sentinel_emulator::Flow;
use usage_model::{
    AccountId, ByteCounts, CollectionWindow, IpEvent, IpEventKind, QueryTag, TimeInterval,
    TrafficAnswer, TrafficQuery, ZoneId,
};

/// The grid of the benchmarks' plans: 60 s, Traffic Sentinel's minute data.
pub const BENCH_GRID: usage_model::Grid = usage_model::Grid::MINUTELY;

/// The number of distinct accounts addresses are handed to.
pub const ACCOUNTS: u64 = 1_000;

/// The zone of the guests' own end of a flow.
pub const GUEST_ZONE: &str = "INTERNAL";

/// The zone of the far end of every flow; the client's default include zone.
pub const PEER_ZONE: &str = "EXTERNAL";

/// Whether the benchmark binary runs as a benchmark (`cargo bench`), rather
/// than once in criterion's test mode (`cargo test`, or `cargo bench --
/// --test`). Benchmarks use their full sizes only then.
pub fn full_run() -> bool {
    let mut bench = false;
    for arg in std::env::args() {
        match arg.as_str() {
            "--bench" => bench = true,
            "--test" => return false,
            _ => {}
        }
    }
    bench
}

/// A small deterministic pseudo-random generator (SplitMix64).
///
/// ```
/// use usage_benches::SplitMix64;
///
/// let mut a = SplitMix64::new(1);
/// let mut b = SplitMix64::new(1);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, n)`; `0` when `n` is `0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            // Multiply-shift: unbiased enough for synthetic data.
            ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
        }
    }

    /// A number in `[low, high)`; `low` when the range is empty.
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            low
        } else {
            low + self.below(high.abs_diff(low)) as i64
        }
    }

    /// Puts `items` in a random order (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The window every benchmark collects: the day `[2026-11-01, 2026-11-02)`
/// in UTC, on the grid.
pub fn bench_window() -> CollectionWindow {
    CollectionWindow::new(
        time::macros::datetime!(2026-11-01 00:00 UTC),
        time::macros::datetime!(2026-11-02 00:00 UTC),
    )
    .expect("a day is a non-empty window")
}

/// The zone every benchmark's events belong to, `zone-1`.
pub fn bench_zone() -> ZoneId {
    ZoneId::new("zone-1").expect("a valid zone id")
}

/// The `index`-th guest address: one in eight is an IPv6 address in
/// `2001:db8::/32`, the others IPv4 addresses counted up from `10.0.0.0`.
pub fn guest_ip(index: u32) -> IpAddr {
    if index % 8 == 7 {
        IpAddr::V6(Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000_u128 | u128::from(index),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0A00_0000_u32.wrapping_add(index)))
    }
}

/// The `index`-th account, `acct-{index % ACCOUNTS}`.
pub fn account(index: u64) -> AccountId {
    AccountId::new(format!("acct-{}", index % ACCOUNTS)).expect("a valid account id")
}

/// Whether the `index`-th of a run of addresses is among the `percent`
/// percent picked; exactly `count * percent / 100` of the first `count`
/// addresses are.
fn picked(index: usize, percent: u64) -> bool {
    let (i, p) = (index as u64, percent.min(100));
    (i + 1) * p / 100 > i * p / 100
}

/// A synthetic event log: its events, in random order, and what they make.
#[derive(Clone, Debug)]
pub struct EventLog {
    /// The events, shuffled; ids are unique and follow each address's story.
    pub events: Vec<IpEvent>,
    /// The zone of every event.
    pub zone: ZoneId,
    /// The window the log is about ([`bench_window`]).
    pub window: CollectionWindow,
    /// The addresses, in generation order.
    pub ips: Vec<IpAddr>,
    /// The number of addresses not held over the whole window.
    pub partial_ips: usize,
    /// The ownership pieces a plan of the window holds on [`BENCH_GRID`]
    /// (and on any grid of at most an hour).
    pub pieces: usize,
}

/// Builds [`IpEvent`]s with consecutive ids.
struct EventWriter {
    events: Vec<IpEvent>,
    zone: ZoneId,
}

impl EventWriter {
    fn push(&mut self, at: OffsetDateTime, account: u64, ip: IpAddr, kind: IpEventKind) {
        let id = self.events.len() as u64 + 1;
        self.events.push(IpEvent {
            id,
            at,
            zone: self.zone.clone(),
            account: crate::account(account),
            ip,
            kind,
        });
    }
}

/// A log of four events per address in which `changing_percent` percent of
/// the `ips` addresses change hands within the window:
///
/// - an address that does not change hands is assigned, released and
///   assigned again before the window, and released a day after it: one
///   piece, the whole window;
/// - one that does is assigned before the window, then released and handed
///   to another account at the same instant between 01:00 and 11:00, and
///   released between 13:00 and 23:00: two pieces.
///
/// The log is clean (no anomaly). Events are shuffled with `seed`.
pub fn handover_log(ips: usize, changing_percent: u64, seed: u64) -> EventLog {
    let mut rng = SplitMix64::new(seed);
    let zone = bench_zone();
    let window = bench_window();
    let (start, end) = (window.start(), window.end());
    let mut out = EventWriter {
        events: Vec::with_capacity(ips * 4),
        zone: zone.clone(),
    };
    let mut addresses = Vec::with_capacity(ips);
    let mut partial_ips = 0;
    let day = 86_400;
    for index in 0..ips {
        let ip = guest_ip(index as u32);
        addresses.push(ip);
        let first = rng.below(ACCOUNTS);
        let second = (first + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
        let at = |base: OffsetDateTime, seconds: i64| base + Duration::seconds(seconds);
        if picked(index, changing_percent) {
            partial_ips += 1;
            let handover = rng.between(3_600, 11 * 3_600);
            let release = rng.between(13 * 3_600, 23 * 3_600);
            let assigned = rng.between(-3 * day, -2 * day);
            out.push(at(start, assigned), first, ip, IpEventKind::Assign);
            out.push(at(start, handover), first, ip, IpEventKind::Release);
            out.push(at(start, handover), second, ip, IpEventKind::Assign);
            out.push(at(start, release), second, ip, IpEventKind::Release);
        } else {
            out.push(
                at(start, rng.between(-10 * day, -9 * day)),
                first,
                ip,
                IpEventKind::Assign,
            );
            out.push(
                at(start, rng.between(-5 * day, -4 * day)),
                first,
                ip,
                IpEventKind::Release,
            );
            out.push(
                at(start, rng.between(-2 * day, -day)),
                second,
                ip,
                IpEventKind::Assign,
            );
            out.push(
                at(end, rng.between(day, 2 * day)),
                second,
                ip,
                IpEventKind::Release,
            );
        }
    }
    let mut events = out.events;
    rng.shuffle(&mut events);
    EventLog {
        events,
        zone,
        window,
        ips: addresses,
        partial_ips,
        pieces: ips + partial_ips,
    }
}

/// A log in which `partial_percent` percent of the `ips` addresses are held
/// for part of the window only, each by a single account, and the others
/// over the whole window:
///
/// - a whole-window address is assigned once, before the window;
/// - a partial one is, in turn, assigned within the window (between 01:00
///   and 23:00) and kept, assigned before and released within the window,
///   or assigned between 01:00 and 11:00 and released between 13:00 and
///   23:00.
///
/// Every address makes exactly one ownership piece. Events are shuffled
/// with `seed`.
pub fn partial_log(ips: usize, partial_percent: u64, seed: u64) -> EventLog {
    let mut rng = SplitMix64::new(seed);
    let zone = bench_zone();
    let window = bench_window();
    let start = window.start();
    let mut out = EventWriter {
        events: Vec::with_capacity(ips + ips / 4),
        zone: zone.clone(),
    };
    let mut addresses = Vec::with_capacity(ips);
    let mut partial_ips = 0;
    let hour = 3_600;
    for index in 0..ips {
        let ip = guest_ip(index as u32);
        addresses.push(ip);
        let holder = rng.below(ACCOUNTS);
        let at = |seconds: i64| start + Duration::seconds(seconds);
        let before = at(rng.between(-30 * 24 * hour, -hour));
        if picked(index, partial_percent) {
            let (assign, release) = match partial_ips % 3 {
                0 => (at(rng.between(hour, 23 * hour)), None),
                1 => (before, Some(at(rng.between(hour, 23 * hour)))),
                _ => (
                    at(rng.between(hour, 11 * hour)),
                    Some(at(rng.between(13 * hour, 23 * hour))),
                ),
            };
            partial_ips += 1;
            out.push(assign, holder, ip, IpEventKind::Assign);
            if let Some(release) = release {
                out.push(release, holder, ip, IpEventKind::Release);
            }
        } else {
            out.push(before, holder, ip, IpEventKind::Assign);
        }
    }
    let mut events = out.events;
    rng.shuffle(&mut events);
    EventLog {
        events,
        zone,
        window,
        ips: addresses,
        partial_ips,
        pieces: ips,
    }
}

/// A made-up answer to `queries`: for every `(tag, ip)` asked, between 1 and
/// 10^9 bytes each way (never zero, so every piece makes a record).
pub fn synthetic_answer(queries: &[TrafficQuery], seed: u64) -> TrafficAnswer {
    let mut rng = SplitMix64::new(seed);
    let mut answer = TrafficAnswer::new();
    for query in queries {
        for &ip in &query.ips {
            let counts = ByteCounts {
                sent: 1 + rng.below(1_000_000_000),
                received: 1 + rng.below(1_000_000_000),
            };
            answer
                .insert(query.tag, ip, counts)
                .expect("a plan asks each (tag, ip) once");
        }
    }
    answer
}

/// The sum of every count of `answer`.
pub fn answer_total(answer: &TrafficAnswer) -> ByteCounts {
    answer.iter().fold(ByteCounts::ZERO, |sum, (_, _, counts)| {
        sum.checked_add(counts)
            .expect("synthetic totals fit in u64")
    })
}

/// The `index`-th peer: the far end of guests' flows, in `198.51.0.0/16`.
fn peer_ip(index: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, (index >> 8) as u8, index as u8))
}

fn flow(at: OffsetDateTime, guest: IpAddr, peer: IpAddr, sent: bool, bytes: u64) -> Flow {
    let (ipsource, ipdestination, sourcezone, destinationzone) = if sent {
        (guest, peer, GUEST_ZONE, PEER_ZONE)
    } else {
        (peer, guest, PEER_ZONE, GUEST_ZONE)
    };
    Flow {
        time: at,
        ipsource,
        ipdestination,
        sourcezone: sourcezone.to_owned(),
        destinationzone: destinationzone.to_owned(),
        bytes,
    }
}

/// Flows in which every address of `ips` sends once in every hour of
/// `window` and receives once in every other hour, at random instants, from
/// and to peers in [`PEER_ZONE`]. Every ownership piece of at least an hour
/// thus has sent traffic, so CloudStack's script (which prints only
/// addresses that sent) reports every piece.
pub fn hourly_flows(ips: &[IpAddr], window: CollectionWindow, seed: u64) -> Vec<Flow> {
    let mut rng = SplitMix64::new(seed);
    let hours = (window.end() - window.start()).whole_hours();
    let mut flows = Vec::with_capacity(ips.len() * (hours as usize) * 3 / 2);
    for &ip in ips {
        for hour in 0..hours {
            let bucket = window.start() + Duration::hours(hour);
            let at = bucket + Duration::seconds(rng.between(0, 3_600));
            flows.push(flow(
                at,
                ip,
                peer_ip(rng.below(1 << 16)),
                true,
                1 + rng.below(10_000_000),
            ));
            if hour % 2 == 0 {
                let at = bucket + Duration::seconds(rng.between(0, 3_600));
                flows.push(flow(
                    at,
                    ip,
                    peer_ip(rng.below(1 << 16)),
                    false,
                    1 + rng.below(10_000_000),
                ));
            }
        }
    }
    flows
}

/// Sparse flows: every address of `ips` sends `sent` flows and receives
/// `received` flows at random instants of `window`.
pub fn sparse_flows(
    ips: &[IpAddr],
    window: CollectionWindow,
    sent: usize,
    received: usize,
    seed: u64,
) -> Vec<Flow> {
    let mut rng = SplitMix64::new(seed);
    let span = (window.end() - window.start()).whole_seconds();
    let mut flows = Vec::with_capacity(ips.len() * (sent + received));
    for &ip in ips {
        for k in 0..sent + received {
            let at = window.start() + Duration::seconds(rng.between(0, span));
            flows.push(flow(
                at,
                ip,
                peer_ip(rng.below(1 << 16)),
                k < sent,
                1 + rng.below(10_000_000),
            ));
        }
    }
    flows
}

/// An answer body and the request it answers, for parser benchmarks.
#[derive(Clone, Debug)]
pub struct AnswerFixture {
    /// The request the body answers (one request; the script is not sent).
    pub request: ScriptRequest,
    /// The body: a row per address and side, then the sentinel.
    pub body: Vec<u8>,
    /// The number of rows.
    pub rows: usize,
    /// The sum of the rows' bytes, per side.
    pub total: ByteCounts,
}

/// A well-formed answer body of about `target_bytes` bytes: queries of
/// 1,000 addresses each over consecutive hours of [`bench_window`], every
/// address with a sent and a received row, byte counts up to 10^10, each
/// `topN`'s rows largest first as Traffic Sentinel prints them.
///
/// # Errors
///
/// The client's [`plan_requests`] errors (none for these queries).
pub fn answer_fixture(
    target_bytes: usize,
    seed: u64,
) -> Result<AnswerFixture, traffic_sentinel_client::Error> {
    const IPS_PER_QUERY: usize = 1_000;
    // A row is 27 bytes or more; every address has two.
    let ips = target_bytes.div_ceil(54).max(1);
    let window = bench_window();
    let queries: Vec<TrafficQuery> = (0..ips.div_ceil(IPS_PER_QUERY))
        .map(|q| {
            let hour = (q % 24) as i64;
            let start = window.start() + Duration::hours(hour);
            TrafficQuery {
                tag: QueryTag(q as u32),
                interval: TimeInterval::new(start, start + Duration::hours(1))
                    .expect("an hour is an interval"),
                ips: (q * IPS_PER_QUERY..((q + 1) * IPS_PER_QUERY).min(ips))
                    .map(|i| guest_ip(i as u32))
                    .collect(),
            }
        })
        .collect();
    let config = MonitorConfig::builder("http://127.0.0.1:8080")
        .max_script_bytes(usize::MAX)
        .max_ips_per_query(usize::MAX)
        .build()?;
    let mut requests = plan_requests(&config, &queries)?;
    let request = requests.swap_remove(0);
    let mut rng = SplitMix64::new(seed);
    let mut body = Vec::with_capacity(target_bytes + target_bytes / 8);
    let mut rows = 0;
    let mut total = ByteCounts::ZERO;
    for chunk in request.chunks() {
        for side in Side::BOTH {
            // As Traffic Sentinel prints a topN: largest first.
            let mut side_rows: Vec<(u64, IpAddr)> = chunk
                .ips()
                .iter()
                .map(|&ip| (1 + rng.below(10_000_000_000), ip))
                .collect();
            side_rows.sort_unstable_by(|a, b| b.cmp(a));
            for (bytes, ip) in side_rows {
                match side {
                    Side::Sent => total.sent += bytes,
                    Side::Received => total.received += bytes,
                }
                body.extend_from_slice(
                    format!("{},{},{ip},{bytes}\n", side.letter(), chunk.tag()).as_bytes(),
                );
                rows += 1;
            }
        }
    }
    body.extend_from_slice(format!("end,{rows}\n").as_bytes());
    Ok(AnswerFixture {
        request,
        body,
        rows,
        total,
    })
}

/// Apache CloudStack's Traffic Sentinel script for `ips` over `interval`
/// (`TrafficSentinelResource.getScript`), with the spacing its string
/// building leaves, times written in UTC as `yyyyMMdd HH:mm:ss`.
///
/// It prints `IP,SENT,RECEIVED` for each address that *sent* something.
pub fn cloudstack_script(
    ips: &[IpAddr],
    include_zones: &[&str],
    exclude_zones: &[&str],
    interval: TimeInterval,
) -> String {
    traffic_sentinel_emulator::cloudstack_script(
        ips,
        include_zones,
        exclude_zones,
        interval.start(),
        interval.end(),
        time::UtcOffset::UTC,
    )
}

/// The lines `IP,SENT,RECEIVED` of an answer to [`cloudstack_script`].
///
/// # Errors
///
/// A message naming the first line that is not three comma-separated fields
/// (an address and two non-negative integers).
pub fn parse_cloudstack_answer(body: &str) -> Result<Vec<(IpAddr, ByteCounts)>, String> {
    body.lines()
        .enumerate()
        .map(|(number, line)| {
            let bad = || format!("line {}: unreadable cloudstack row {line:?}", number + 1);
            let mut fields = line.split(',');
            let (Some(ip), Some(sent), Some(received), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad());
            };
            Ok((
                ip.parse().map_err(|_| bad())?,
                ByteCounts {
                    sent: sent.parse().map_err(|_| bad())?,
                    received: received.parse().map_err(|_| bad())?,
                },
            ))
        })
        .collect()
}

/// The median of `values` (the upper one of an even count); `values` must
/// not be empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The peak resident memory of this process so far (`VmHWM` of
/// `/proc/self/status`, Linux), in kB as text; `?` where it cannot be read.
pub fn peak_memory_kb() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .map_or("?".to_owned(), |kb| {
            kb.trim().trim_end_matches(" kB").to_owned()
        })
}

/// Runs this benchmark program again as a child with environment variable
/// `var` set to `value` (the child does one measured task and prints
/// `COUNT PEAK_KB` as its last line, see [`peak_memory_kb`]), so that its
/// peak memory is the task's alone; returns the count and the peak, each
/// `?` when the child printed nothing.
pub fn measure_child(var: &str, value: &str) -> (String, String) {
    let output = std::process::Command::new(std::env::current_exe().expect("this program"))
        .env(var, value)
        .output()
        .expect("the child runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default().to_owned();
    let (count, peak) = line.split_once(' ').unwrap_or(("?", "?"));
    (count.to_owned(), peak.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_takes_the_exact_share() {
        assert_eq!((0..1_000).filter(|&i| picked(i, 30)).count(), 300);
        assert_eq!((0..7).filter(|&i| picked(i, 15)).count(), 1);
    }

    #[test]
    fn handover_log_has_four_events_per_address_and_unique_ids() {
        let log = handover_log(50, 30, 1);
        assert_eq!(log.events.len(), 200);
        assert_eq!(log.partial_ips, 15);
        let mut ids: Vec<u64> = log.events.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 200);
    }

    #[test]
    fn partial_log_makes_one_piece_per_address() {
        let log = partial_log(200, 15, 2);
        assert_eq!(log.partial_ips, 30);
        let ledger = usage_correlator::OwnershipLedger::from_events(
            usage_correlator::LedgerOptions::new(),
            log.events.clone(),
        );
        let plan = usage_correlator::QueryPlan::new(
            &ledger,
            &log.zone,
            log.window,
            usage_model::Grid::HOURLY,
        )
        .unwrap();
        assert_eq!(plan.piece_count(), 200);
        assert!(ledger.anomalies().is_empty());
    }

    #[test]
    fn answer_fixture_parses_to_its_totals() {
        let fixture = answer_fixture(100_000, 3).unwrap();
        assert!((80_000..125_000).contains(&fixture.body.len()));
        let answer =
            traffic_sentinel_client::parse_answer(&fixture.body, &fixture.request).unwrap();
        assert_eq!(answer_total(&answer), fixture.total);
        assert_eq!(answer.len() * 2, fixture.rows);
    }

    #[test]
    fn cloudstack_rows_parse() {
        let rows = parse_cloudstack_answer("10.0.0.1,5,0\n2001:db8::7,1,2\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1].1,
            ByteCounts {
                sent: 1,
                received: 2
            }
        );
        assert!(parse_cloudstack_answer("10.0.0.1,5\n").is_err());
    }
}

/// The README's library example, compiled with the doctests so that it keeps
/// matching the crates' API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExample;
