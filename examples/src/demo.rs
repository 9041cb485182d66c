//! The demo: a synthetic event log and flow history drawn from a seed,
//! collected through the real client from an in-process emulator over
//! loopback HTTP, reported, and checked for conservation by a replay that
//! shares no code with the billing core. With `--sflow`, the same data is
//! played to the emulator as sFlow datagrams ([`over_sflow`]).

mod over_sflow;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use traffic_sentinel_client::{MonitorConfig, TrafficSentinelClient};
use traffic_sentinel_emulator::{
    Emulator, EmulatorOptions, Flow, FlowHistory, HistorySnapshot, Side, ZoneFilter,
};
use usage_correlator::{LedgerOptions, OwnershipLedger, Schedule};
use usage_model::{AccountId, ByteCounts, Grid, IpEvent, IpEventKind, UsageRecord, ZoneId};

use crate::cli::DemoArgs;
use crate::collect::Sentinel;
use crate::commands::{runtime, write_stdout};
use crate::error::CliError;
use crate::progress::Progress;
use crate::report::{Format, Grouping, print_report};
use crate::units::format_time;
use usage_store::{Collection, OpenMode, ReportFilter, Store, StoreTarget};

/// The zone of the demo's events.
const ZONE: &str = "zone-1";
/// The zone of the guest addresses in flows (never billable).
const GUEST_ZONE: &str = "CLOUD";
/// The zone whose traffic is billed (the client's default).
const BILLABLE_ZONE: &str = "EXTERNAL";
/// A zone whose traffic must not be billed.
const OTHER_ZONE: &str = "INTERNAL";
/// The largest `--ips × --days` the demo accepts: about 9 million flows,
/// under 2 GiB.
const MAX_IP_DAYS: u64 = 20_000;

/// The billing grid of the demo's time: Traffic Sentinel's hourly view.
/// (`--sflow` plays each of its hours as a shorter bucket.)
const GRID: Grid = Grid::HOURLY;
/// The emulator's bucket size: minute data.
const BUCKET: Duration = Duration::MINUTE;
/// The first instant billed.
const DEMO_START: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);

/// Runs the demo and prints what it found; see the `demo` command's help.
///
/// # Errors
///
/// [`CliError::Conservation`] when the bytes billed differ from the bytes of
/// owned buckets; any error of the emulator, the client, the store or the
/// billing core; with `--sflow`, as [`over_sflow::run`].
pub(crate) fn run(args: &DemoArgs) -> Result<(), CliError> {
    if args.sflow {
        return over_sflow::run(args);
    }
    // The synthetic history is held in memory (about 450 flows per address
    // and day, a few hundred bytes each): refuse what would not fit.
    let ip_days = u64::from(args.ips) * u64::from(args.days);
    if ip_days > MAX_IP_DAYS {
        return Err(CliError::BadValue(format!(
            "demo --ips {} --days {} would generate about {} flows held in memory; \
             keep --ips × --days at most {MAX_IP_DAYS} (e.g. --ips 5000 --days 4)",
            args.ips,
            args.days,
            ip_days * 450
        )));
    }
    let data = DemoData::generate(args)?;
    let history = FlowHistory::new(usage_model::Grid::MINUTELY, data.flows.iter().cloned())
        .map_err(CliError::Emulator)?;
    let (dir, db) = scratch_db()?;
    let zone = ZoneId::new(ZONE).map_err(CliError::DemoData)?;

    let (outcome, url) = runtime()?.block_on(async {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let emulator = Emulator::start(loopback, history, EmulatorOptions::new())
            .await
            .map_err(CliError::Emulator)?;
        let url = emulator.url();
        // The demo's clock: its span has just ended.
        let clock = Clock {
            now: data.end,
            lag: Duration::ZERO,
        };
        let result = collect_and_check(&data, &emulator, &zone, &db, clock).await;
        emulator.shutdown().await;
        result.map(|outcome| (outcome, url))
    })?;

    let mut out = data.describe("demo", &format!("{} day(s)", args.days));
    out.push_str(&format!(
        "served by the Traffic Sentinel emulator at {url} ({} s buckets), collected into a temporary SQLite database\n\n",
        BUCKET.whole_seconds(),
    ));
    out.push_str(&outcome.finish(&data));
    write_stdout(out.as_bytes())?;
    drop(dir);
    Ok(())
}

/// A temporary directory and the path of a SQLite database in it (created
/// by the first collection); the directory goes when dropped.
fn scratch_db() -> Result<(tempfile::TempDir, PathBuf), CliError> {
    let dir = tempfile::Builder::new()
        .prefix("traffic-usage-demo-")
        .tempdir()
        .map_err(|source| CliError::Setup {
            what: "a temporary directory",
            source,
        })?;
    let db = dir.path().join("usage.db");
    Ok((dir, db))
}

/// The clock a demo collects by: windows end at `now - lag` at the latest.
#[derive(Clone, Copy, Debug)]
struct Clock {
    now: OffsetDateTime,
    lag: Duration,
}

/// What the collection gave and what the check found.
struct DemoOutcome {
    /// The report by account, as a table.
    table: String,
    windows: u64,
    requests: u64,
    check: Conservation,
}

impl DemoOutcome {
    /// The report table, a blank line and the line of the check.
    fn finish(&self, data: &DemoData) -> String {
        format!(
            "{}\n{}",
            self.table,
            self.check
                .line(data.pool.len(), self.windows as usize, self.requests)
        )
    }
}

/// Collects the demo span on the data's grid through the real client into
/// `db`, then checks conservation against what the emulator serves.
async fn collect_and_check(
    data: &DemoData,
    emulator: &Emulator,
    zone: &ZoneId,
    db: &Path,
    clock: Clock,
) -> Result<DemoOutcome, CliError> {
    let config = MonitorConfig::builder(emulator.url().as_str())
        .granularity(data.grid)
        .build()
        .map_err(CliError::Monitor)?;
    let source = Sentinel(TrafficSentinelClient::new(config).map_err(CliError::Monitor)?);
    let ledger = OwnershipLedger::from_events(LedgerOptions::new(), data.events.iter().cloned());
    let schedule = Schedule::new()
        .grid(data.grid)
        .max_window(Duration::DAY)
        .settle_lag(clock.lag);
    let store = Store::open(&StoreTarget::sqlite(db), OpenMode::ReadWrite).await?;
    let collection = Collection::new(&store, &ledger, &source, zone).schedule(schedule);
    let mut progress = Progress::new();
    let summary = collection
        .collect(Some(data.start), Some(data.end), clock.now, |report| {
            progress.window_done(report);
        })
        .await;
    progress.finish();
    let summary = summary?;
    let mut records = Vec::new();
    let filter = ReportFilter::new().zone(zone.clone());
    store
        .report_by_ip(&filter, |record| {
            records.push(record);
            ControlFlow::Continue(())
        })
        .await?;
    let mut table = Vec::new();
    print_report(
        &store,
        &filter,
        Grouping::Account,
        Format::Table,
        &mut table,
    )
    .await?;
    store.close().await;
    let served = emulator.served_history().map_err(CliError::Emulator)?;
    let check = Conservation::check(data, &served, &records)?;
    Ok(DemoOutcome {
        table: String::from_utf8_lossy(&table).into_owned(),
        windows: summary.windows,
        requests: emulator.requests_served(),
        check,
    })
}

/// The splitmix64 generator: small, fast and the same on every platform.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }

    /// True once in `n` times on average.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn minutes(&mut self, low: u64, high: u64) -> Duration {
        Duration::minutes(i64::try_from(self.range(low, high)).unwrap_or(i64::MAX))
    }
}

/// The `i`-th address of the pool: two of three are IPv4 (203.0.113.0/24 and
/// 198.51.100.0/24 alternately, while they last), every third is IPv6
/// (2001:db8:0:1::/64); `--sflow`'s zone map puts them all in the guests'
/// zone.
fn pool_address(i: u32) -> IpAddr {
    let v4_before = (i / 3) * 2 + (i % 3);
    if i % 3 != 2 && v4_before < 2 * 254 {
        let host = u8::try_from(v4_before / 2 + 1).unwrap_or(u8::MAX);
        return if v4_before.is_multiple_of(2) {
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, host))
        } else {
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, host))
        };
    }
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0));
    IpAddr::V6(Ipv6Addr::from(base + u128::from(i)))
}

/// A remote address talking to pool address `i`, of the same family.
fn peer_address(i: u32, rng: &mut SplitMix64, v6: bool) -> IpAddr {
    let n = u8::try_from(1 + (u64::from(i) + rng.below(7)) % 200).unwrap_or(1);
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xffff,
            0,
            0,
            0,
            0,
            u16::from(n),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }
}

/// How the synthetic data came out.
#[derive(Clone, Copy, Debug, Default)]
struct DemoStats {
    v6: usize,
    assigns: usize,
    same_instant: usize,
    within_the_hour: usize,
    received_only: usize,
    anomalies: usize,
    duplicates: usize,
    flow_bytes: u64,
}

/// The demo's synthetic event log and flows.
#[derive(Clone, Debug)]
struct DemoData {
    seed: u64,
    accounts: u32,
    /// The span billed, `[start, end)`, on `grid`.
    start: OffsetDateTime,
    end: OffsetDateTime,
    /// The billing grid: [`GRID`] in the demo's time.
    grid: Grid,
    pool: Vec<IpAddr>,
    events: Vec<IpEvent>,
    flows: Vec<Flow>,
    stats: DemoStats,
}

/// An event before ids are given: ids follow time, so at one instant a
/// release comes before the assign that follows it.
struct DraftEvent {
    at: OffsetDateTime,
    seq: u64,
    ip: IpAddr,
    account: u64,
    kind: IpEventKind,
}

impl DemoData {
    /// Draws the data of `args` from its seed: `--days` days, or with
    /// `--sflow` `--hours` hours, from [`DEMO_START`] on the hourly grid.
    fn generate(args: &DemoArgs) -> Result<DemoData, CliError> {
        let mut rng = SplitMix64(args.seed);
        let start = DEMO_START;
        let end = if args.sflow {
            start + Duration::hours(i64::from(args.hours))
        } else {
            start + Duration::days(i64::from(args.days))
        };
        let accounts = u64::from(args.accounts);
        let pool: Vec<IpAddr> = (0..args.ips).map(pool_address).collect();
        let mut stats = DemoStats {
            v6: pool.iter().filter(|ip| ip.is_ipv6()).count(),
            ..DemoStats::default()
        };

        let mut drafts: Vec<DraftEvent> = Vec::new();
        let mut push = |at, ip, account, kind| {
            let seq = drafts.len() as u64;
            drafts.push(DraftEvent {
                at,
                seq,
                ip,
                account,
                kind,
            });
        };
        let mut planted_takeover = false;
        let mut planted_stray = false;
        for &ip in &pool {
            // Held since before the demo (carried into the first window), or
            // free for a while first.
            let mut at = if rng.one_in(2) {
                start - rng.minutes(30, 12 * 60)
            } else {
                start + rng.minutes(0, 8 * 60)
            };
            let mut account = rng.below(accounts);
            while at < end {
                push(at, ip, account, IpEventKind::Assign);
                stats.assigns += 1;
                let hold = if rng.one_in(3) {
                    rng.minutes(1, 30) * 60
                } else {
                    rng.minutes(20, 30 * 60)
                };
                let released = at + hold;
                if released >= end {
                    break; // Still held when the demo ends.
                }
                let next = if accounts > 1 {
                    (account + 1 + rng.below(accounts - 1)) % accounts
                } else {
                    account
                };
                match rng.below(4) {
                    0 => {
                        // Handed over at the same instant.
                        if !planted_takeover && released >= start && next != account {
                            // Once, the release is missing: the new assign
                            // takes the address over (an anomaly).
                            planted_takeover = true;
                            stats.anomalies += 1;
                        } else {
                            push(released, ip, account, IpEventKind::Release);
                        }
                        stats.same_instant += 1;
                        at = released;
                    }
                    1 => {
                        // Handed over within the hour.
                        push(released, ip, account, IpEventKind::Release);
                        stats.within_the_hour += 1;
                        at = released + rng.minutes(1, 59);
                    }
                    _ => {
                        push(released, ip, account, IpEventKind::Release);
                        let gap = rng.minutes(60, 14 * 60);
                        let stray = released + gap / 2;
                        if !planted_stray
                            && gap >= Duration::hours(2)
                            && stray >= start
                            && stray < end
                        {
                            // Once, a release of the free address (an anomaly).
                            planted_stray = true;
                            stats.anomalies += 1;
                            push(stray, ip, rng.below(accounts), IpEventKind::Release);
                        }
                        at = released + gap;
                    }
                }
                account = next;
            }
        }
        drafts.sort_by_key(|d| (d.at, d.seq));

        let zone = ZoneId::new(ZONE).map_err(CliError::DemoData)?;
        let width = args.accounts.to_string().len();
        let names = (0..args.accounts)
            .map(|a| AccountId::new(format!("acct-{:0width$}", a + 1)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(CliError::DemoData)?;
        let mut events: Vec<IpEvent> = drafts
            .iter()
            .zip(1..)
            .map(|(draft, id)| IpEvent {
                id,
                at: draft.at,
                zone: zone.clone(),
                account: names[usize::try_from(draft.account).unwrap_or(0)].clone(),
                ip: draft.ip,
                kind: draft.kind,
            })
            .collect();
        // The log holds one line twice, as logs do.
        if let Some(copy) = events.get(events.len() / 2).cloned() {
            events.push(copy);
            stats.duplicates = 1;
        }

        let flows = Self::flows(&mut rng, &pool, start, end, &mut stats);
        Ok(DemoData {
            seed: args.seed,
            accounts: args.accounts,
            start,
            end,
            grid: GRID,
            pool,
            events,
            flows,
            stats,
        })
    }

    /// About every minute some traffic per address, from an hour before the
    /// demo to an hour after it, whoever holds the address (free addresses
    /// move bytes too); some addresses only receive; one flow in eight talks
    /// to a zone that is not billed.
    fn flows(
        rng: &mut SplitMix64,
        pool: &[IpAddr],
        start: OffsetDateTime,
        end: OffsetDateTime,
        stats: &mut DemoStats,
    ) -> Vec<Flow> {
        let mut flows = Vec::new();
        for (i, &ip) in (0u32..).zip(pool) {
            let received_only = i % 7 == 3;
            stats.received_only += usize::from(received_only);
            let activity = rng.range(10, 45);
            let mut minute = start - Duration::HOUR;
            while minute < end + Duration::HOUR {
                if rng.below(100) < activity {
                    let time =
                        minute + Duration::seconds(i64::try_from(rng.below(60)).unwrap_or(0));
                    let peer = peer_address(i, rng, ip.is_ipv6());
                    let peer_zone = if rng.one_in(8) {
                        OTHER_ZONE
                    } else {
                        BILLABLE_ZONE
                    };
                    let bytes = if rng.one_in(100) {
                        rng.range(100_000, 5_000_000)
                    } else {
                        rng.range(40, 60_000)
                    };
                    stats.flow_bytes = stats.flow_bytes.saturating_add(bytes);
                    let (ipsource, ipdestination, sourcezone, destinationzone) =
                        if received_only || rng.one_in(2) {
                            (peer, ip, peer_zone, GUEST_ZONE)
                        } else {
                            (ip, peer, GUEST_ZONE, peer_zone)
                        };
                    flows.push(Flow {
                        time,
                        ipsource,
                        ipdestination,
                        sourcezone: sourcezone.to_owned(),
                        destinationzone: destinationzone.to_owned(),
                        bytes,
                    });
                }
                minute += Duration::MINUTE;
            }
        }
        flows
    }

    /// Lines describing the data: `title` and `span` say what was run over
    /// how long.
    fn describe(&self, title: &str, span: &str) -> String {
        let s = &self.stats;
        format!(
            "{title}, seed {}: {} addresses ({} IPv4, {} IPv6) held by {} accounts over {span} from {}\n\
             events: {} lines: {} assigns; handovers: {} at the same instant, {} within the hour; \
             anomalies planted: {}; duplicate lines: {}; addresses that only receive: {}\n\
             flows: {} holding {} bytes, one in eight with zone {}\n",
            self.seed,
            self.pool.len(),
            self.pool.len() - s.v6,
            s.v6,
            self.accounts,
            format_time(self.start),
            self.events.len(),
            s.assigns,
            s.same_instant,
            s.within_the_hour,
            s.anomalies,
            s.duplicates,
            s.received_only,
            self.flows.len(),
            s.flow_bytes,
            OTHER_ZONE
        )
    }
}

/// The conservation check: the bytes billed per account against the bytes
/// the emulator holds for the buckets each account owned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Conservation {
    billed: ByteCounts,
    free: ByteCounts,
    other_zone: ByteCounts,
}

impl Conservation {
    /// Replays the events naively — sorted by `(at, id)`, an assign makes its
    /// account the holder, a release makes the address free — and gives each
    /// bucket `[t, t + g)` of the data's grid `g` of each address to its
    /// holder at `t + g - 1 ns`. The expected bytes of an account are the
    /// billable bytes of its buckets as the emulator's history holds them;
    /// they must equal the bytes billed to it in `records`.
    ///
    /// # Errors
    ///
    /// [`CliError::Conservation`] listing every account whose bytes differ.
    fn check(
        data: &DemoData,
        history: &HistorySnapshot,
        records: &[UsageRecord],
    ) -> Result<Conservation, CliError> {
        let billable = ZoneFilter::any().include(BILLABLE_ZONE);
        let other = ZoneFilter::any().include(OTHER_ZONE);
        let mut events: Vec<&IpEvent> = data.events.iter().collect();
        events.sort_by_key(|e| (e.at, e.id));
        let mut by_ip: BTreeMap<IpAddr, Vec<&IpEvent>> = BTreeMap::new();
        for event in events {
            by_ip.entry(event.ip).or_default().push(event);
        }

        let mut expected: BTreeMap<&AccountId, ByteCounts> = BTreeMap::new();
        let mut free = ByteCounts::ZERO;
        let mut other_zone = ByteCounts::ZERO;
        let empty = Vec::new();
        for &ip in &data.pool {
            let events = by_ip.get(&ip).unwrap_or(&empty);
            let mut next = 0;
            let mut holder: Option<&AccountId> = None;
            let mut bucket = data.start;
            while bucket < data.end {
                let bucket_end = bucket + data.grid.step();
                let last_instant = bucket_end - Duration::NANOSECOND;
                while let Some(event) = events.get(next).filter(|e| e.at <= last_instant) {
                    holder = match event.kind {
                        IpEventKind::Assign => Some(&event.account),
                        IpEventKind::Release => None,
                    };
                    next += 1;
                }
                let bytes = |zones: &ZoneFilter| ByteCounts {
                    sent: history.bytes(ip, Side::Sent, zones, bucket, bucket_end),
                    received: history.bytes(ip, Side::Received, zones, bucket, bucket_end),
                };
                let owed = bytes(&billable);
                let slot = match holder {
                    Some(account) => expected.entry(account).or_default(),
                    None => &mut free,
                };
                *slot = add(*slot, owed)?;
                other_zone = add(other_zone, bytes(&other))?;
                bucket = bucket_end;
            }
        }

        let mut billed_by_account: BTreeMap<&AccountId, ByteCounts> = BTreeMap::new();
        for record in records {
            let slot = billed_by_account.entry(&record.account).or_default();
            *slot = add(*slot, record.bytes())?;
        }
        let mut differences = Vec::new();
        let mut billed = ByteCounts::ZERO;
        let accounts: std::collections::BTreeSet<&AccountId> = expected
            .keys()
            .chain(billed_by_account.keys())
            .copied()
            .collect();
        for account in accounts {
            let want = expected.get(account).copied().unwrap_or_default();
            let got = billed_by_account.get(account).copied().unwrap_or_default();
            billed = add(billed, got)?;
            if want != got {
                differences.push(format!(
                    "{account} billed sent {} received {}, owned buckets hold sent {} received {}",
                    got.sent, got.received, want.sent, want.received
                ));
            }
        }
        if !differences.is_empty() {
            return Err(CliError::Conservation(differences.join("; ")));
        }
        Ok(Conservation {
            billed,
            free,
            other_zone,
        })
    }

    /// The line that says the check passed, with what it covered.
    fn line(&self, ips: usize, windows: usize, requests: u64) -> String {
        format!(
            "conservation check passed: billed {} bytes sent and {} received = bytes the emulator holds \
             for owned buckets ({ips} ips, {windows} windows, {requests} requests); \
             billed to no one: {} bytes of free addresses, {} bytes with zone {OTHER_ZONE}\n",
            self.billed.sent,
            self.billed.received,
            self.free.sent.saturating_add(self.free.received),
            self.other_zone
                .sent
                .saturating_add(self.other_zone.received),
        )
    }
}

fn add(left: ByteCounts, right: ByteCounts) -> Result<ByteCounts, CliError> {
    left.checked_add(right)
        .map_err(|e| CliError::Conservation(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn args(ips: u32, accounts: u32, days: u32, seed: u64) -> DemoArgs {
        DemoArgs {
            ips,
            accounts,
            days,
            seed,
            sflow: false,
            hours: 12,
        }
    }

    #[test]
    fn pool_addresses_are_distinct_and_mixed() {
        let pool: Vec<IpAddr> = (0..2_000).map(pool_address).collect();
        let distinct: std::collections::BTreeSet<_> = pool.iter().collect();
        assert_eq!(distinct.len(), pool.len());
        assert_eq!(pool[0], "203.0.113.1".parse::<IpAddr>().unwrap());
        assert_eq!(pool[1], "198.51.100.1".parse::<IpAddr>().unwrap());
        assert_eq!(pool[2], "2001:db8:0:1::2".parse::<IpAddr>().unwrap());
        assert!(pool[..48].iter().any(IpAddr::is_ipv6));
        assert!(
            pool[1_000..].iter().all(IpAddr::is_ipv6),
            "v4 ranges run out"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let a = DemoData::generate(&args(12, 3, 1, 7)).unwrap();
        let b = DemoData::generate(&args(12, 3, 1, 7)).unwrap();
        let c = DemoData::generate(&args(12, 3, 1, 8)).unwrap();
        assert_eq!(a.events, b.events);
        assert_eq!(a.flows, b.flows);
        assert_ne!(a.flows, c.flows);
    }

    #[test]
    fn data_has_the_promised_shapes() {
        let data = DemoData::generate(&args(48, 6, 3, 1)).unwrap();
        let s = data.stats;
        assert!(s.same_instant > 0 && s.within_the_hour > 0, "{s:?}");
        assert!(s.received_only > 0 && s.v6 > 0, "{s:?}");
        assert_eq!((s.anomalies, s.duplicates), (2, 1), "{s:?}");
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), data.events.clone());
        let kinds: Vec<&str> = ledger.anomalies().iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert!(kinds.contains(&"release-of-free-ip"), "{kinds:?}");
        assert!(kinds.contains(&"assign-while-held-by-other"), "{kinds:?}");
        assert_eq!(ledger.duplicate_count(), 1);
        assert!(data.flows.iter().any(|f| f.destinationzone == OTHER_ZONE));
        // Ids follow time; the last line repeats an earlier one.
        let (last, rest) = data.events.split_last().unwrap();
        assert!(
            rest.windows(2)
                .all(|w| w[0].id + 1 == w[1].id && w[0].at <= w[1].at)
        );
        assert!(rest.contains(last));
    }

    #[test]
    fn conservation_notices_a_missing_byte() {
        let data = DemoData::generate(&args(6, 2, 1, 3)).unwrap();
        let history =
            FlowHistory::new(usage_model::Grid::MINUTELY, data.flows.iter().cloned()).unwrap();
        let err = Conservation::check(&data, &HistorySnapshot::from(history), &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("conservation check failed: acct-"),
            "{err}"
        );
    }
}
