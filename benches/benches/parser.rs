//! Parser throughput: a 10 MB answer body through the client's strict
//! `parse_answer` and `parse_answer_rows`, next to a floor measured in the
//! same run: splitting the same bytes on `\n` and `,` without validation.
//!
//! Before timing, the parsed answer is checked against the fixture's row
//! count and byte totals. Target: `parse_answer` at least a third of the
//! floor's MB/s.
//!
//! `cargo bench -p usage-benches --bench parser`; under `cargo test` it runs
//! once on a 100 kB body.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use traffic_sentinel_client::{parse_answer, parse_answer_rows};
use usage_benches::{answer_fixture, answer_total, full_run};

/// The floor: every line cut on `,`, the fields' lengths summed so the work
/// cannot be skipped. No validation at all.
fn split_floor(body: &[u8]) -> (usize, usize) {
    let mut lines = 0;
    let mut field_bytes = 0;
    for line in body.split(|&b| b == b'\n') {
        lines += 1;
        for field in line.split(|&b| b == b',') {
            field_bytes += field.len();
        }
    }
    (lines, field_bytes)
}

/// Megabytes (10^6 bytes) per second of `runs` runs of `f` over `bytes`,
/// from the median run.
fn throughput(bytes: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    bytes as f64 / 1e6 / times[runs / 2].as_secs_f64()
}

fn main() {
    let full = full_run();
    let target = if full { 10_000_000 } else { 100_000 };
    let fixture = answer_fixture(target, 5).expect("the fixture's queries plan");
    let body = &fixture.body;

    // Check before timing.
    let answer = parse_answer(body, &fixture.request).expect("the fixture is well formed");
    assert_eq!(answer.len() * 2, fixture.rows);
    assert_eq!(answer_total(&answer), fixture.total);
    let rows = parse_answer_rows(body).expect("the fixture is well formed");
    assert_eq!(rows.len(), fixture.rows);
    let (lines, _) = split_floor(body);
    // The rows, the sentinel, and the empty piece after the last newline.
    assert_eq!(lines, fixture.rows + 2);

    let runs = if full { 11 } else { 1 };
    let floor = throughput(body.len(), runs, || {
        black_box(split_floor(black_box(body)));
    });
    let strict = throughput(body.len(), runs, || {
        black_box(parse_answer(black_box(body), &fixture.request).ok());
    });
    let rows_only = throughput(body.len(), runs, || {
        black_box(parse_answer_rows(black_box(body)).ok());
    });
    println!(
        "parser: {:.2} MB body, {} rows; split floor {floor:.0} MB/s, parse_answer \
         {strict:.0} MB/s ({:.2} of the floor, target >= 0.33), parse_answer_rows \
         {rows_only:.0} MB/s ({:.2} of the floor)",
        body.len() as f64 / 1e6,
        fixture.rows,
        strict / floor,
        rows_only / floor,
    );

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("parser/10MB");
    group
        .throughput(Throughput::Bytes(body.len() as u64))
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("split_floor", |b| b.iter(|| split_floor(black_box(body))));
    group.bench_function("parse_answer", |b| {
        b.iter(|| parse_answer(black_box(body), &fixture.request).expect("well formed"))
    });
    group.bench_function("parse_answer_rows", |b| {
        b.iter(|| parse_answer_rows(black_box(body)).expect("well formed"))
    });
    group.finish();
    criterion.final_summary();
}
