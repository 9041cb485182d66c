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
use usage_benches::{answer_fixture, answer_total, full_run, median};

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

/// The seconds one call of `f` takes.
fn seconds(f: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// `runs` rounds of the floor and each parser back to back, so that a
/// slower or faster spell of a shared machine falls on all of them alike:
/// the median MB/s of each, and the median of each parser's per-round ratio
/// to the floor of its round.
fn interleaved(bytes: usize, runs: usize, fs: &mut [&mut dyn FnMut()]) -> (Vec<f64>, Vec<f64>) {
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); fs.len()];
    for _ in 0..runs {
        for (f, times) in fs.iter_mut().zip(&mut times) {
            times.push(seconds(f));
        }
    }
    let mb = bytes as f64 / 1e6;
    let throughputs = times
        .iter()
        .map(|t| median(t.iter().map(|s| mb / s).collect()))
        .collect();
    let ratios = times[1..]
        .iter()
        .map(|t| {
            median(
                t.iter()
                    .zip(&times[0])
                    .map(|(s, floor)| floor / s)
                    .collect(),
            )
        })
        .collect();
    (throughputs, ratios)
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

    let runs = if full { 21 } else { 1 };
    let (mb_per_s, ratios) = interleaved(
        body.len(),
        runs,
        &mut [
            &mut || {
                black_box(split_floor(black_box(body)));
            },
            &mut || {
                black_box(parse_answer(black_box(body), &fixture.request).ok());
            },
            &mut || {
                black_box(parse_answer_rows(black_box(body)).ok());
            },
        ],
    );
    println!(
        "parser: {:.2} MB body, {} rows, {runs} interleaved rounds (medians); split floor \
         {:.0} MB/s, parse_answer {:.0} MB/s ({:.2} of the floor, target >= 0.33), \
         parse_answer_rows {:.0} MB/s ({:.2} of the floor)",
        body.len() as f64 / 1e6,
        fixture.rows,
        mb_per_s[0],
        mb_per_s[1],
        ratios[0],
        mb_per_s[2],
        ratios[1],
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
