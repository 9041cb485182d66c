//! End to end at 100k addresses: one day window, 60 s grid, the emulator in
//! process on loopback. Timed: plan + HTTP + parse + join (the ledger is
//! built once, beforehand, and timed on its own).
//!
//! 15% of the addresses are held for part of the day; each address sends two
//! flows and receives one, at random minutes, so the history builds fast but
//! every query still spans its whole interval. Before timing, the billed
//! bytes are checked piece by piece against the emulator's history. Target:
//! under 10 s on a 2-core machine.
//!
//! `cargo bench -p usage-benches --bench end_to_end`; under `cargo test` it
//! runs once on 2,000 addresses.

use std::time::{Duration, Instant};

use criterion::Criterion;
use tokio::runtime::Runtime;
use traffic_sentinel_client::{MonitorConfig, TrafficSentinelClient};
use traffic_sentinel_emulator::{Emulator, EmulatorOptions, FlowHistory, Side, ZoneFilter};
use usage_benches::{BENCH_GRID, EventLog, PEER_ZONE, full_run, partial_log, sparse_flows};
use usage_correlator::{CycleOutcome, LedgerOptions, OwnershipLedger, QueryPlan};
use usage_model::ByteCounts;

/// What one cycle did, besides its outcome.
struct CycleStats {
    requests: usize,
    queries: usize,
    plan: Duration,
    fetch: Duration,
    join: Duration,
}

/// One collection cycle: plan, fetch over HTTP (script, request, parse), join.
fn cycle(
    runtime: &Runtime,
    client: &TrafficSentinelClient,
    ledger: &OwnershipLedger,
    log: &EventLog,
) -> (CycleOutcome, CycleStats) {
    let start = Instant::now();
    let plan = QueryPlan::new(ledger, &log.zone, log.window, BENCH_GRID)
        .expect("the window is on the grid");
    let planned = Instant::now();
    let fetched = runtime
        .block_on(client.fetch(plan.queries()))
        .expect("the emulator answers");
    let fetched_at = Instant::now();
    let outcome = plan
        .join(&fetched.answer)
        .expect("the answer is the plan's");
    let stats = CycleStats {
        requests: fetched.requests,
        queries: plan.query_count(),
        plan: planned - start,
        fetch: fetched_at - planned,
        join: fetched_at.elapsed(),
    };
    (outcome, stats)
}

fn main() {
    let full = full_run();
    let ips = if full { 100_000 } else { 2_000 };
    let log = partial_log(ips, 15, 31);
    let history = FlowHistory::new(BENCH_GRID, sparse_flows(&log.ips, log.window, 2, 1, 37))
        .expect("synthetic flows fit");
    let emulator = Emulator::start_in_background(
        "127.0.0.1:0".parse().expect("a socket address"),
        history,
        EmulatorOptions::new(),
    )
    .expect("the emulator starts on loopback");
    let ledger_start = Instant::now();
    let ledger = OwnershipLedger::from_events(LedgerOptions::new(), log.events.clone());
    let ledger_time = ledger_start.elapsed();
    let config = MonitorConfig::builder(emulator.url().as_str())
        .include_zones([PEER_ZONE])
        .granularity(BENCH_GRID)
        .build()
        .expect("a valid monitor config");
    let client = TrafficSentinelClient::new(config).expect("an http client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    // Check before timing: every piece billed exactly what the emulator holds.
    let (outcome, _) = cycle(&runtime, &client, &ledger, &log);
    let plan = QueryPlan::new(&ledger, &log.zone, log.window, BENCH_GRID).expect("on the grid");
    assert_eq!(plan.piece_count(), log.pieces);
    let zones = ZoneFilter::any().include(PEER_ZONE);
    let history = emulator.history();
    let mut expected_records = 0;
    let mut expected = ByteCounts::ZERO;
    for piece in plan.pieces() {
        let (start, end) = (piece.interval.start(), piece.interval.end());
        let counts = ByteCounts {
            sent: history.bytes(piece.ip, Side::Sent, &zones, start, end),
            received: history.bytes(piece.ip, Side::Received, &zones, start, end),
        };
        if !counts.is_zero() {
            expected_records += 1;
        }
        expected = expected.checked_add(counts).expect("totals fit");
    }
    let billed = outcome
        .records
        .iter()
        .fold(ByteCounts::ZERO, |sum, r| ByteCounts {
            sent: sum.sent + r.bytes_sent,
            received: sum.received + r.bytes_received,
        });
    assert_eq!(outcome.records.len(), expected_records);
    assert_eq!(billed, expected);
    assert!(billed.sent > 0 && billed.received > 0);
    assert_eq!(outcome.checkpoint.at, log.window.end());

    let runs = if full { 3 } else { 1 };
    let mut times: Vec<(Duration, CycleStats)> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let (_, stats) = cycle(&runtime, &client, &ledger, &log);
            (start.elapsed(), stats)
        })
        .collect();
    times.sort_unstable_by_key(|(total, _)| *total);
    let (total, median) = &times[runs / 2];
    println!(
        "end_to_end: {ips} ips, {} flows, {} pieces in {} queries, {} request(s), {} records; \
         ledger build {:.0} ms (not in the cycle); cycle {:.0} ms = plan {:.0} ms + fetch \
         (script, HTTP, emulator, parse) {:.0} ms + join {:.0} ms (target < 10 s)",
        history.flow_count(),
        plan.piece_count(),
        median.queries,
        median.requests,
        outcome.records.len(),
        ledger_time.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        median.plan.as_secs_f64() * 1e3,
        median.fetch.as_secs_f64() * 1e3,
        median.join.as_secs_f64() * 1e3,
    );

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("end_to_end");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    group.bench_function(if full { "100k" } else { "2k" }, |b| {
        b.iter(|| cycle(&runtime, &client, &ledger, &log))
    });
    group.finish();
    criterion.final_summary();
}
