//! A collection cycle, our strategy against Apache CloudStack's, both against
//! the same in-process emulator over loopback HTTP, at 1k and 10k addresses
//! of which 15% are held for part of the window only.
//!
//! - Ours: `client.fetch(plan.queries())` (one query per distinct
//!   `[start, end)`, all in as few requests as the limits allow), then the
//!   join.
//! - CloudStack's: one request for the addresses held over the whole window,
//!   then one request per partially held address, one after the other, each
//!   with CloudStack's exact script.
//!
//! Every address sends in every hour, so CloudStack's script (which prints
//! only addresses that sent something) reports every piece and the two
//! strategies can be compared byte for byte: before timing, each piece's
//! sent and received bytes must be equal both ways and equal to what the
//! emulator holds. The grid is an hour (CloudStack's default view).
//!
//! `cargo bench -p usage-benches --bench cycle`; under `cargo test` it runs
//! once on 200 addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::Criterion;
use time::OffsetDateTime;
use tokio::runtime::Runtime;
use traffic_sentinel_client::{MonitorConfig, TrafficSentinelClient};
use traffic_sentinel_emulator::{Emulator, EmulatorOptions, FlowHistory, Side, ZoneFilter};
use usage_benches::{
    PEER_ZONE, cloudstack_script, full_run, hourly_flows, median, parse_cloudstack_answer,
    partial_log,
};
use usage_correlator::{CycleOutcome, LedgerOptions, OwnershipLedger, QueryPlan};
use usage_model::{ByteCounts, TimeInterval};

/// CloudStack's hourly view.
const GRID: usage_model::Grid = usage_model::Grid::HOURLY;

/// Bytes per `(ip, start, end)` piece.
type Billed = BTreeMap<(IpAddr, OffsetDateTime, OffsetDateTime), ByteCounts>;

struct Setup {
    emulator: Emulator,
    plan: QueryPlan,
    client: TrafficSentinelClient,
    http: reqwest::Client,
    runtime: Runtime,
}

impl Setup {
    fn new(ips: usize) -> Setup {
        let log = partial_log(ips, 15, 23);
        let history = FlowHistory::new(GRID, hourly_flows(&log.ips, log.window, 29))
            .expect("synthetic flows fit");
        let emulator = Emulator::start_in_background(
            "127.0.0.1:0".parse().expect("a socket address"),
            history,
            EmulatorOptions::new(),
        )
        .expect("the emulator starts on loopback");
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), log.events);
        let plan = QueryPlan::new(&ledger, &log.zone, log.window, GRID)
            .expect("the window is on the grid");
        assert_eq!(plan.piece_count(), ips);
        let config = MonitorConfig::builder(emulator.url().as_str())
            .include_zones([PEER_ZONE])
            .granularity(GRID)
            .build()
            .expect("a valid monitor config");
        let client = TrafficSentinelClient::new(config).expect("an http client");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Setup {
            emulator,
            plan,
            client,
            http: reqwest::Client::new(),
            runtime,
        }
    }

    /// Our cycle: fetch every query of the plan, join.
    fn ours(&self) -> CycleOutcome {
        self.runtime.block_on(async {
            let fetched = self
                .client
                .fetch(self.plan.queries())
                .await
                .expect("the emulator answers");
            self.plan
                .join(&fetched.answer)
                .expect("the answer is the plan's")
        })
    }

    /// CloudStack's cycle: one request for the addresses held all window,
    /// then one per other piece, serially.
    fn cloudstack(&self) -> Billed {
        let window = self.plan.window().interval();
        let url = self.client.config().query_url().clone();
        self.runtime.block_on(async {
            let mut billed = Billed::new();
            let mut ask = async |ips: &[IpAddr], interval: TimeInterval| {
                let script = cloudstack_script(ips, &[PEER_ZONE], &[], interval);
                let body = self
                    .http
                    .post(url.clone())
                    .form(&[
                        ("script", script.as_str()),
                        ("authenticate", "basic"),
                        ("resultFormat", "txt"),
                    ])
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .expect("the emulator answers CloudStack's script")
                    .text()
                    .await
                    .expect("a text answer");
                for (ip, counts) in parse_cloudstack_answer(&body).expect("CloudStack rows") {
                    billed.insert((ip, interval.start(), interval.end()), counts);
                }
            };
            let whole: Vec<IpAddr> = self
                .plan
                .pieces()
                .iter()
                .filter(|p| p.interval == window)
                .map(|p| p.ip)
                .collect();
            ask(&whole, window).await;
            for piece in self.plan.pieces().iter().filter(|p| p.interval != window) {
                ask(&[piece.ip], piece.interval).await;
            }
            billed
        })
    }

    /// What the emulator holds for every piece of the plan.
    fn truth(&self) -> Billed {
        let history = self.emulator.history();
        let zones = ZoneFilter::any().include(PEER_ZONE);
        self.plan
            .pieces()
            .iter()
            .map(|p| {
                let (start, end) = (p.interval.start(), p.interval.end());
                let counts = ByteCounts {
                    sent: history.bytes(p.ip, Side::Sent, &zones, start, end),
                    received: history.bytes(p.ip, Side::Received, &zones, start, end),
                };
                ((p.ip, start, end), counts)
            })
            .collect()
    }
}

/// The requests `f` makes to the emulator.
fn requests_of<T>(setup: &Setup, f: impl Fn() -> T) -> u64 {
    let before = setup.emulator.requests_served();
    drop(f());
    setup.emulator.requests_served() - before
}

/// `rounds` rounds of our cycle (the fastest of three) and CloudStack's
/// back to back, so that a slow spell of a shared machine falls on both:
/// the median of each one's times and the median of the per-round
/// ratios (CloudStack's time over ours).
fn interleaved(setup: &Setup, rounds: usize) -> (Duration, Duration, f64) {
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let our_time = (0..3)
            .map(|_| time(&|| drop(setup.ours())))
            .min()
            .unwrap_or_default();
        let their_time = time(&|| drop(setup.cloudstack()));
        ours.push(our_time.as_secs_f64());
        theirs.push(their_time.as_secs_f64());
        ratios.push(their_time.as_secs_f64() / our_time.as_secs_f64());
    }
    (
        Duration::from_secs_f64(median(ours)),
        Duration::from_secs_f64(median(theirs)),
        median(ratios),
    )
}

fn main() {
    let full = full_run();
    let sizes: &[(usize, &str)] = if full {
        &[(1_000, "1k"), (10_000, "10k")]
    } else {
        &[(200, "200")]
    };
    let mut criterion = Criterion::default().configure_from_args();
    for &(ips, label) in sizes {
        let setup = Setup::new(ips);

        // Check before timing: both strategies bill what the emulator holds.
        let truth = setup.truth();
        assert!(truth.values().all(|c| c.sent > 0), "every piece sent bytes");
        let ours: Billed = setup
            .ours()
            .records
            .iter()
            .map(|r| {
                let counts = ByteCounts {
                    sent: r.bytes_sent,
                    received: r.bytes_received,
                };
                ((r.ip, r.start, r.end), counts)
            })
            .collect();
        assert_eq!(ours, truth, "our cycle bills every piece's bytes");
        assert_eq!(
            setup.cloudstack(),
            truth,
            "CloudStack's strategy bills the same"
        );

        let rounds = if full { 11 } else { 1 };
        let our_requests = requests_of(&setup, || setup.ours());
        let cs_requests = requests_of(&setup, || setup.cloudstack());
        let (our_time, cs_time, ratio) = interleaved(&setup, rounds);
        println!(
            "cycle/{label}: {ips} ips, {} partially held, {} queries; {rounds} interleaved \
             rounds (medians): ours {our_requests} request(s) in {:.1} ms (fastest of 3 per \
             round); CloudStack {cs_requests} requests in {:.1} ms; ours is {ratio:.1}x faster \
             with {:.0}x fewer requests (target: <= 2 requests and >= 20x at 10k)",
            setup.plan.piece_count()
                - setup
                    .plan
                    .pieces()
                    .iter()
                    .filter(|p| p.interval == setup.plan.window().interval())
                    .count(),
            setup.plan.query_count(),
            our_time.as_secs_f64() * 1e3,
            cs_time.as_secs_f64() * 1e3,
            cs_requests as f64 / our_requests as f64,
        );

        let mut group = criterion.benchmark_group(format!("cycle/{label}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(10));
        group.bench_function("ours", |b| b.iter(|| setup.ours()));
        group.bench_function("cloudstack", |b| b.iter(|| setup.cloudstack()));
        group.finish();
    }
    criterion.final_summary();
}
