//! Encoded datagrams decode to what was encoded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use sflow::{DatagramBuilder, Decoded, FlowEstimate, FlowRecordKind, FlowSampleSpec, decode};

fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        // IPv4-mapped: decoded as IPv4.
        any::<[u8; 4]>().prop_map(|o| IpAddr::V6(Ipv4Addr::from(o).to_ipv6_mapped())),
    ]
}

#[derive(Debug, Clone)]
enum Sample {
    Flow(FlowSampleSpec, IpAddr, IpAddr, u32, u32),
    Counter,
    Discarded,
}

fn sample() -> impl Strategy<Value = Sample> {
    let flow = (
        address(),
        address(),
        any::<u32>(),
        prop_oneof![Just(0u32), 1u32..=1, 1u32..65536, any::<u32>()],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(source, destination, frame_length, rate, sampled_ip, expanded)| {
                let record = if sampled_ip {
                    FlowRecordKind::SampledIp
                } else {
                    FlowRecordKind::RawPacketHeader
                };
                let spec = FlowSampleSpec::new(source, destination, frame_length)
                    .sampling_rate(rate)
                    .record(record)
                    .expanded(expanded);
                Sample::Flow(spec, source, destination, frame_length, rate)
            },
        );
    prop_oneof![6 => flow, 1 => Just(Sample::Counter), 1 => Just(Sample::Discarded)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn encoded_datagrams_decode_to_their_samples(
        agent in address(),
        sequence_number in any::<u32>(),
        samples in prop::collection::vec(sample(), 0..24),
    ) {
        let mut builder = DatagramBuilder::new(agent).sequence_number(sequence_number).uptime_ms(12);
        let mut want = Vec::new();
        let (mut counters, mut discarded, mut zero_rate) = (0, 0, 0);
        for sample in &samples {
            match sample {
                Sample::Flow(spec, source, destination, frame_length, rate) => {
                    builder.flow_sample(*spec);
                    if *rate == 0 {
                        zero_rate += 1;
                    } else {
                        want.push(FlowEstimate {
                            source: source.to_canonical(),
                            destination: destination.to_canonical(),
                            frame_length: *frame_length,
                            sampling_rate: *rate,
                        });
                    }
                }
                Sample::Counter => {
                    builder.counter_sample();
                    counters += 1;
                }
                Sample::Discarded => {
                    builder.discarded_packet_sample();
                    discarded += 1;
                }
            }
        }
        let bytes = builder.encode();
        let Ok(Decoded::Datagram(datagram)) = decode(&bytes) else {
            panic!("an encoded datagram decodes");
        };
        prop_assert_eq!(datagram.agent(), agent.to_canonical());
        prop_assert_eq!(datagram.sequence_number(), sequence_number);
        prop_assert_eq!(datagram.uptime_ms(), 12);
        prop_assert_eq!(datagram.flows(), want.as_slice());
        let counts = datagram.samples();
        prop_assert_eq!(counts.flow_samples_billed as usize, want.len());
        prop_assert_eq!(counts.zero_sampling_rate, zero_rate);
        prop_assert_eq!(counts.counter_samples, counters);
        prop_assert_eq!(counts.discarded_packet_samples, discarded);
        prop_assert_eq!(counts.no_ip_packet, 0);
        prop_assert_eq!(counts.unknown_samples, 0);
    }
}
