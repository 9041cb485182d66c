//! sFlow decoding rate: flow samples per second through `sflow::decode`, from
//! memory, over a buffer of encoded datagrams like an agent's (8 flow
//! samples each: raw packet headers and sampled IP records, IPv4 and IPv6,
//! compact and expanded, plus a counter sample), next to a floor measured in
//! the same run: a loop reading every 32-bit word of the same datagrams.
//!
//! Before timing, the decoded totals are checked: every flow sample billed,
//! the byte sum equal to the sum encoded, every counter sample skipped.
//! Target: at least 1 M flow samples/s.
//!
//! `cargo bench -p usage-benches --bench sflow_decode`; under `cargo test` it
//! runs once on 200 datagrams.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use sflow::{DatagramBuilder, DecodeSummary, FlowRecordKind, FlowSampleSpec, decode};
use usage_benches::{SplitMix64, full_run};

/// Flow samples per datagram.
const FLOWS_PER_DATAGRAM: u64 = 8;

/// Encoded datagrams and the bytes they stand for in all.
struct Fixture {
    datagrams: Vec<Vec<u8>>,
    flow_samples: u64,
    counter_samples: u64,
    bytes: u64,
}

fn address(random: &mut SplitMix64) -> IpAddr {
    if random.below(4) == 0 {
        let low = random.next_u64();
        IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(low)))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | random.below(1 << 20) as u32))
    }
}

fn fixture(count: usize) -> Fixture {
    let mut random = SplitMix64::new(6343);
    let mut fixture = Fixture {
        datagrams: Vec::with_capacity(count),
        flow_samples: 0,
        counter_samples: 0,
        bytes: 0,
    };
    for sequence in 0..count {
        let agent = IpAddr::V4(Ipv4Addr::new(192, 0, 2, (sequence % 8) as u8 + 1));
        let mut builder = DatagramBuilder::new(agent).sequence_number(sequence as u32);
        for i in 0..FLOWS_PER_DATAGRAM {
            let frame_length = 64 + random.below(1455) as u32;
            let rate = [512, 1024, 2048, 4096][random.below(4) as usize];
            let record = if i % 4 == 3 {
                FlowRecordKind::SampledIp
            } else {
                FlowRecordKind::RawPacketHeader
            };
            let spec =
                FlowSampleSpec::new(address(&mut random), address(&mut random), frame_length)
                    .sampling_rate(rate)
                    .record(record)
                    .expanded(i % 2 == 1);
            builder.flow_sample(spec);
            fixture.flow_samples += 1;
            fixture.bytes += u64::from(frame_length) * u64::from(rate);
        }
        builder.counter_sample();
        fixture.counter_samples += 1;
        fixture.datagrams.push(builder.encode());
    }
    fixture
}

/// Decodes every datagram; the summary of it all.
fn decode_all(datagrams: &[Vec<u8>]) -> DecodeSummary {
    let mut summary = DecodeSummary::default();
    for datagram in datagrams {
        summary.record(&decode(datagram));
    }
    summary
}

/// The floor: every 32-bit word of every datagram read and summed, so the
/// work cannot be skipped. No decoding at all.
fn word_floor(datagrams: &[Vec<u8>]) -> u64 {
    let mut sum = 0u64;
    for datagram in datagrams {
        for word in datagram.chunks_exact(4) {
            sum = sum.wrapping_add(u64::from(u32::from_be_bytes([
                word[0], word[1], word[2], word[3],
            ])));
        }
    }
    sum
}

/// Items per second of `runs` runs of `f` over `items`, from the median run.
fn rate(items: u64, runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    items as f64 / times[runs / 2].as_secs_f64()
}

fn main() {
    let full = full_run();
    let fixture = fixture(if full { 20_000 } else { 200 });
    let datagrams = &fixture.datagrams;
    let buffer_bytes: usize = datagrams.iter().map(Vec::len).sum();

    // Check before timing.
    let summary = decode_all(datagrams);
    assert_eq!(summary.datagrams, datagrams.len() as u64);
    assert_eq!(summary.flow_samples_billed, fixture.flow_samples);
    assert_eq!(summary.bytes_billed, u128::from(fixture.bytes));
    assert_eq!(summary.counter_samples, fixture.counter_samples);
    assert_eq!(
        summary.malformed + summary.no_ip_packet + summary.zero_sampling_rate,
        0
    );

    let runs = if full { 11 } else { 1 };
    let samples = fixture.flow_samples;
    let floor = rate(samples, runs, || {
        black_box(word_floor(black_box(datagrams)));
    });
    let decoded = rate(samples, runs, || {
        black_box(decode_all(black_box(datagrams)));
    });
    println!(
        "sflow_decode: {} datagrams, {samples} flow samples, {:.1} MB; word floor {:.1} M samples/s, \
         decode {:.2} M samples/s ({:.0} MB/s, {:.3} of the floor; target >= 1 M samples/s)",
        datagrams.len(),
        buffer_bytes as f64 / 1e6,
        floor / 1e6,
        decoded / 1e6,
        decoded / samples as f64 * buffer_bytes as f64 / 1e6,
        decoded / floor,
    );

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("sflow_decode");
    group
        .throughput(Throughput::Elements(samples))
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("word_floor", |b| {
        b.iter(|| word_floor(black_box(datagrams)))
    });
    group.bench_function("decode", |b| b.iter(|| decode_all(black_box(datagrams))));
    group.finish();
    criterion.final_summary();
}
