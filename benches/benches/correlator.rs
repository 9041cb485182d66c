//! Correlator scale: ledger build, plan and join over synthetic logs of 10k,
//! 100k and 1M events (4 events per address, 30% of addresses changing hands
//! within the window), next to a floor measured in the same run: sorting the
//! same events by `(at, id)` with `sort_unstable`.
//!
//! Before timing, each size is checked: no anomaly, the expected number of
//! pieces and queries, and every byte of a synthetic answer billed exactly
//! once. Peak heap memory of ledger + plan is measured with a counting
//! global allocator.
//!
//! `cargo bench -p usage-benches --bench correlator`; under `cargo test` it
//! runs once on 10k events only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use usage_benches::{BENCH_GRID, EventLog, answer_total, full_run, handover_log, synthetic_answer};
use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan};
use usage_model::{ByteCounts, IpEvent, TrafficAnswer};

/// Counts live heap bytes and their peak while [`COUNTING`] is on.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

fn shrank(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        // Blocks allocated before counting started may be freed while it is
        // on: the count saturates at zero instead of wrapping.
        let _ = CURRENT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            Some(now.saturating_sub(bytes))
        });
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and returns its result; the counters only observe sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator)
        // with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc`, and the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` with the counters on, from zero; returns its result and the
/// peak of heap bytes allocated during it and still live at that peak.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    CURRENT.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f();
    COUNTING.store(false, Ordering::SeqCst);
    (out, PEAK.load(Ordering::SeqCst))
}

fn sort_floor(mut events: Vec<IpEvent>) -> Vec<IpEvent> {
    events.sort_unstable_by_key(IpEvent::sort_key);
    events
}

fn build_ledger(events: Vec<IpEvent>) -> OwnershipLedger {
    OwnershipLedger::from_events(LedgerOptions::new(), events)
}

fn plan_window(log: &EventLog, ledger: &OwnershipLedger) -> QueryPlan {
    QueryPlan::new(ledger, &log.zone, log.window, BENCH_GRID).expect("the window is on the grid")
}

/// Checks the ledger, plan and join of `log`; returns them for timing.
fn check(log: &EventLog) -> (OwnershipLedger, QueryPlan, TrafficAnswer) {
    let ledger = build_ledger(log.events.clone());
    assert!(ledger.anomalies().is_empty(), "the synthetic log is clean");
    assert_eq!(ledger.event_count(), log.events.len());
    let plan = plan_window(log, &ledger);
    assert_eq!(plan.piece_count(), log.pieces);
    assert_eq!(plan.ip_count(), log.ips.len());
    let full_window = plan
        .queries()
        .iter()
        .find(|q| q.interval == log.window.interval())
        .expect("a query over the whole window");
    assert_eq!(full_window.ips.len(), log.ips.len() - log.partial_ips);

    let answer = synthetic_answer(plan.queries(), 11);
    let outcome = plan.join(&answer).expect("the answer is the plan's");
    // Every piece moved bytes, so every piece is a record, and every byte
    // of the answer is billed exactly once.
    assert_eq!(outcome.records.len(), log.pieces);
    let billed = outcome
        .records
        .iter()
        .fold(ByteCounts::ZERO, |sum, r| ByteCounts {
            sent: sum.sent + r.bytes_sent,
            received: sum.received + r.bytes_received,
        });
    assert_eq!(billed, answer_total(&answer));
    let totals = outcome.totals.values().fold(ByteCounts::ZERO, |sum, t| {
        sum.checked_add(*t).expect("totals fit")
    });
    assert_eq!(totals, billed);
    assert_eq!(outcome.checkpoint.at, log.window.end());
    (ledger, plan, answer)
}

/// The median wall time of `runs` runs of `f` on fresh clones of `events`.
fn median_time<T>(events: &[IpEvent], runs: usize, f: impl Fn(Vec<IpEvent>) -> T) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let input = events.to_vec();
            let start = Instant::now();
            let out = f(input);
            let elapsed = start.elapsed();
            drop(black_box(out));
            elapsed
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

fn main() {
    let full = full_run();
    let sizes: &[(usize, &str)] = if full {
        &[(10_000, "10k"), (100_000, "100k"), (1_000_000, "1M")]
    } else {
        &[(10_000, "10k")]
    };
    let mut criterion = Criterion::default().configure_from_args();
    for &(events, label) in sizes {
        let log = handover_log(events / 4, 30, 42);
        let (ledger, plan, answer) = check(&log);

        // From a vector of events to a plan: the events, the ledger they
        // move into and the plan, all counted.
        let ((), peak) = peak_heap(|| {
            let ledger = build_ledger(log.events.clone());
            let plan = plan_window(&log, &ledger);
            black_box((&ledger, &plan));
        });
        let (events_copy, input_bytes) = peak_heap(|| log.events.clone());
        drop(events_copy);
        let runs = if full { 5 } else { 1 };
        let sort = median_time(&log.events, runs, sort_floor);
        let ledger_only = median_time(&log.events, runs, build_ledger);
        let ledger_plan = median_time(&log.events, runs, |events| {
            let ledger = build_ledger(events);
            let plan = plan_window(&log, &ledger);
            (ledger, plan)
        });
        let mib = |bytes: usize| bytes as f64 / 1_048_576.0;
        let ms = |time: Duration| time.as_secs_f64() * 1e3;
        println!(
            "correlator/{label}: {} events, {} ips, {} pieces, {} queries; sort floor {:.1} ms; \
             ledger {:.1} ms; ledger+plan {:.1} ms = {:.2}x the sort floor (target <= 4x); \
             peak heap from the event vector to the plan {:.1} MiB = {:.0} MB, of which the \
             events {:.1} MiB (target < 300 MB)",
            log.events.len(),
            log.ips.len(),
            plan.piece_count(),
            plan.query_count(),
            ms(sort),
            ms(ledger_only),
            ms(ledger_plan),
            ledger_plan.as_secs_f64() / sort.as_secs_f64(),
            mib(peak),
            peak as f64 / 1e6,
            mib(input_bytes),
        );

        let mut group = criterion.benchmark_group(format!("correlator/{label}"));
        if events >= 100_000 {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(if events >= 1_000_000 {
                    20
                } else {
                    5
                }));
        }
        let batch = if events >= 100_000 {
            BatchSize::PerIteration
        } else {
            BatchSize::LargeInput
        };
        group.bench_function("sort_floor", |b| {
            b.iter_batched(|| log.events.clone(), sort_floor, batch)
        });
        group.bench_function("ledger", |b| {
            b.iter_batched(|| log.events.clone(), build_ledger, batch)
        });
        group.bench_function("plan", |b| b.iter(|| plan_window(&log, &ledger)));
        group.bench_function("join", |b| {
            b.iter(|| plan.join(&answer).expect("the answer is the plan's"))
        });
        group.finish();
    }
    criterion.final_summary();
}
