//! No input makes the decoder panic, and every error names an offset inside
//! the datagram: random bytes, and real and encoded datagrams bit-flipped,
//! truncated and with 32-bit words (lengths, counts) overwritten.

use std::sync::OnceLock;

use proptest::prelude::*;
use sflow::{
    CaptureReader, DatagramBuilder, Decoded, Error, FlowRecordKind, FlowSampleSpec, decode,
};

use crate::shared::{capture_names, read};

/// The datagrams of every shared capture, and a few encoded ones.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut corpus = Vec::new();
        for name in capture_names() {
            let bytes = read(&name);
            if name.ends_with(".dat") {
                corpus.push(bytes);
            } else {
                let reader = CaptureReader::new(bytes.as_slice()).expect("a capture");
                corpus.extend(reader.map(|d| d.expect("a readable capture").bytes));
            }
        }
        let mut v4 = DatagramBuilder::new("192.0.2.1".parse().expect("ip"));
        let mut v6 = DatagramBuilder::new("2001:db8::1".parse().expect("ip")).sequence_number(9);
        for (i, record) in [FlowRecordKind::RawPacketHeader, FlowRecordKind::SampledIp]
            .into_iter()
            .enumerate()
        {
            let spec = FlowSampleSpec::new(
                "10.0.0.1".parse().expect("ip"),
                "2001:db8::7".parse().expect("ip"),
                1500,
            )
            .sampling_rate(100)
            .record(record)
            .expanded(i == 1);
            v4.flow_sample(spec).counter_sample();
            v6.flow_sample(spec).discarded_packet_sample();
        }
        corpus.push(v4.encode());
        corpus.push(v6.encode());
        corpus
    })
}

/// Decodes `bytes` and checks what any outcome must satisfy.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match decode(bytes) {
        Ok(Decoded::Datagram(datagram)) => {
            let samples = datagram.samples();
            prop_assert_eq!(samples.flow_samples_billed as usize, datagram.flows().len());
            for flow in datagram.flows() {
                prop_assert!(flow.sampling_rate > 0);
                prop_assert_eq!(flow.source, flow.source.to_canonical());
                prop_assert_eq!(flow.destination, flow.destination.to_canonical());
            }
        }
        Ok(Decoded::OtherVersion { version }) => prop_assert_ne!(version, 5),
        Ok(other) => prop_assert!(false, "unexpected outcome {:?}", other),
        Err(Error::MalformedDatagram { offset, .. }) => prop_assert!(offset <= bytes.len()),
        Err(other) => prop_assert!(false, "unexpected error {}", other),
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize),
    /// Overwrite the aligned word at `index × 4` (lengths and counts are
    /// aligned words).
    Word(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u32),
                Just(1),
                Just(3),
                Just(4),
                Just(5),
                Just(0x7fff_ffff),
                Just(u32::MAX),
                0u32..2048,
                any::<u32>()
            ]
        )
            .prop_map(|(at, word)| Mutation::Word(at, word)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *mutation {
        Mutation::FlipBit(at, bit) => {
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
        }
        Mutation::Truncate(at) => bytes.truncate(at % bytes.len()),
        Mutation::Word(at, word) => {
            let words = bytes.len() / 4;
            if words > 0 {
                let at = (at % words) * 4;
                bytes[at..at + 4].copy_from_slice(&word.to_be_bytes());
            }
        }
    }
}

proptest! {
    // Bounded to run in a couple of seconds under `cargo test`.
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
    }

    /// Random bytes behind a valid sFlow v5 header, so that samples are read.
    #[test]
    fn random_samples(count in 0u32..8, body in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = Vec::new();
        for word in [5u32, 1, 0xc000_0201, 0, 1, 1, count] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.extend_from_slice(&body);
        check(&bytes)?;
    }

    #[test]
    fn mutated_datagrams(
        index in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let corpus = corpus();
        let mut bytes = index.get(corpus).clone();
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        check(&bytes)?;
    }
}

#[test]
fn every_truncation_of_every_datagram() {
    for datagram in corpus() {
        for len in 0..datagram.len() {
            check(&datagram[..len]).expect("no panic, offsets inside");
        }
    }
}
