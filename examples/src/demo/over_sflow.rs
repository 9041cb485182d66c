//! `demo --sflow`: the demo's traffic played to the emulator as sFlow v5
//! datagrams over loopback UDP, then collected, reported and checked for
//! conservation exactly as the CSV demo is.
//!
//! The emulator stamps each datagram with its arrival time (DESIGN §13), so
//! a history cannot be sent into the past. The demo's data is therefore
//! drawn as usual — `--hours` hours from [`DEMO_START`](super::DEMO_START),
//! traffic from an hour before to an hour after — and then mapped onto the
//! wall clock, one demo hour ([`GRID`](super::GRID)) to one bucket of [`PLAY_SECONDS`], starting at the
//! next whole second. The mapping keeps the order of events, events at the
//! same instant, and the bucket every time falls in, so ownership per bucket
//! is the demo's. Each bucket's flows are sent early in that bucket, each
//! flow as flow samples at sampling rate 1 whose frame lengths add up to
//! its bytes (the estimate is then exact).
//!
//! Before collecting, the demo waits until the emulator has decoded every
//! datagram sent and settled every bucket, and checks that it took in
//! exactly the datagrams, samples and bytes sent, and per address exactly
//! the bytes sent to and from each zone. It then collects on the bucket
//! grid with a lag of one bucket, and runs the demo's conservation check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sflow::{DatagramBuilder, FlowRecordKind, FlowSampleSpec, ZoneMap, ZoneName};
use time::{Duration, OffsetDateTime};
use traffic_sentinel_emulator::{
    Emulator, EmulatorOptions, FlowHistory, HistorySnapshot, IngestCounts, SflowIngest, Side,
    ZoneFilter,
};
use usage_model::{Grid, ZoneId};

use super::{
    BILLABLE_ZONE, Clock, DemoData, DemoOutcome, GUEST_ZONE, OTHER_ZONE, ZONE, collect_and_check,
    scratch_db,
};
use crate::cli::DemoArgs;
use crate::commands::{runtime, write_stdout};
use crate::error::CliError;

/// Each demo hour is played as a bucket of this many seconds (the
/// emulator's granularity and the billing grid of `demo --sflow`).
const PLAY_SECONDS: u64 = 1;
/// How far into its bucket a bucket's datagrams are sent: the bucket has
/// surely begun on the emulator's clock, and most of it is left for a busy
/// machine to deliver them in.
const SEND_OFFSET: Duration = Duration::milliseconds(200);
/// Flow samples per datagram: about 1.1 KB (IPv4) to 1.3 KB (IPv6), within
/// a 1500-byte Ethernet MTU, as agents keep them.
const SAMPLES_PER_DATAGRAM: usize = 10;
/// The agent address of the demo's switch (TEST-NET-1, above the peers).
const AGENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254));
/// How long, after the last bucket has ended, the demo waits for the
/// emulator to aggregate and settle everything sent.
const INGEST_WAIT: Duration = Duration::seconds(10);
/// How often the demo looks at the emulator's ingest counts while it waits.
const INGEST_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// The most addresses `demo --sflow` plays: each sends about 17 flow
/// samples per demo hour, so the largest pool sends about 35,000 samples
/// (3,500 datagrams) a second.
const MAX_SFLOW_IPS: u32 = 2_000;

/// Runs `demo --sflow`; see the `demo` command's help.
///
/// # Errors
///
/// [`CliError::BadValue`] when `--ips` is over [`MAX_SFLOW_IPS`];
/// [`CliError::DemoSflow`] when a datagram cannot be sent or the emulator did
/// not aggregate exactly what was sent; as [`super::run`] for the rest.
pub(super) fn run(args: &DemoArgs) -> Result<(), CliError> {
    if args.ips > MAX_SFLOW_IPS {
        return Err(CliError::BadValue(format!(
            "demo --sflow --ips {}: at most {MAX_SFLOW_IPS} addresses are played in real time",
            args.ips
        )));
    }
    let demo = DemoData::generate(args)?;
    let bucket = Grid::from_seconds(PLAY_SECONDS).map_err(CliError::DemoData)?;
    let zones = zone_map()?;
    let (dir, db) = scratch_db()?;
    let zone = ZoneId::new(ZONE).map_err(CliError::DemoData)?;

    let run = runtime()?.block_on(async {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let ingest = SflowIngest::new(loopback).zones(zones);
        let history = FlowHistory::new(bucket, []).map_err(CliError::Emulator)?;
        let emulator = Emulator::start(loopback, history, EmulatorOptions::new().sflow(ingest))
            .await
            .map_err(CliError::Emulator)?;
        let result = play_collect_and_check(&demo, bucket, &emulator, &zone, &db).await;
        emulator.shutdown().await;
        result
    })?;

    let data = &run.data;
    let mut out = data.describe(
        "demo --sflow",
        &format!(
            "{} demo hours played as {} s buckets",
            args.hours,
            bucket.seconds()
        ),
    );
    let (sent, taken) = (run.sent, run.taken.decoded);
    out.push_str(&format!(
        "sflow: sent {} datagrams ({} flow samples at sampling rate 1, {} bytes) to udp://{} \
         in {} buckets of {} s; aggregated {} datagrams ({} flow samples, {} bytes), \
         {} malformed, none lost\n",
        sent.datagrams,
        sent.samples,
        sent.bytes,
        run.sflow_addr,
        run.buckets,
        bucket.seconds(),
        taken.datagrams,
        taken.flow_samples_billed,
        taken.bytes_billed,
        taken.malformed,
    ));
    out.push_str(&format!(
        "per address, the emulator holds exactly the bytes sent ({} addresses, sent and received, \
         zones {BILLABLE_ZONE} and {OTHER_ZONE})\n",
        data.pool.len()
    ));
    out.push_str(&format!(
        "served by the Traffic Sentinel emulator at {} ({} s buckets, fed by sFlow), collected into \
         a temporary SQLite database on a {} s grid with a {} s lag\n\n",
        run.url,
        bucket.seconds(),
        bucket.seconds(),
        bucket.seconds(),
    ));
    out.push_str(&run.outcome.finish(data));
    write_stdout(out.as_bytes())?;
    drop(dir);
    Ok(())
}

/// What a `demo --sflow` run did.
struct SflowRun {
    /// The data as played, on the wall clock.
    data: DemoData,
    sent: Tally,
    taken: IngestCounts,
    buckets: usize,
    sflow_addr: SocketAddr,
    url: url::Url,
    outcome: DemoOutcome,
}

/// Plays `demo` to `emulator`'s sFlow socket in buckets of `bucket`, waits
/// until all of it is aggregated, checks it against what was sent, then
/// collects and checks conservation.
async fn play_collect_and_check(
    demo: &DemoData,
    bucket: Grid,
    emulator: &Emulator,
    zone: &ZoneId,
    db: &std::path::Path,
) -> Result<SflowRun, CliError> {
    let sflow_addr = emulator
        .sflow_addr()
        .ok_or_else(|| CliError::DemoSflow("the emulator does not take in sFlow".to_owned()))?;
    // The bucket of the hour before the demo starts at the next whole
    // second, a little ahead so that the datagrams are ready.
    let first = bucket
        .ceil(OffsetDateTime::now_utc() + Duration::milliseconds(300))
        .map_err(CliError::DemoData)?;
    let data = demo.played(first + bucket.step(), bucket)?;
    let playlist = Playlist::encode(&data, first, bucket)?;
    let played_until = first + bucket.step() * playlist.buckets.len() as u32;
    tracing::info!(
        datagrams = playlist.tally.datagrams,
        buckets = playlist.buckets.len(),
        "playing the demo's traffic as sFlow to udp://{sflow_addr}, one demo hour per {} s",
        bucket.seconds()
    );
    playlist.send(sflow_addr, first, bucket).await?;
    let taken = await_ingest(emulator, playlist.tally, played_until).await?;
    let served = emulator.served_history().map_err(CliError::Emulator)?;
    check_per_address(&data, &served)?;
    // Windows end a bucket before the clock at the latest: every bucket up
    // to the end of the demo has closed.
    let clock = Clock {
        now: OffsetDateTime::now_utc(),
        lag: bucket.step(),
    };
    let outcome = collect_and_check(&data, emulator, zone, db, clock).await?;
    Ok(SflowRun {
        data,
        sent: playlist.tally,
        taken,
        buckets: playlist.buckets.len(),
        sflow_addr,
        url: emulator.url(),
        outcome,
    })
}

/// The zones of the demo's addresses: the pool's prefixes (see
/// [`super::pool_address`]) are the guests' zone, the internal peers'
/// prefixes ([`internal_peer`]) the zone that is not billed, and every other
/// address is in the billable zone.
fn zone_map() -> Result<ZoneMap, CliError> {
    let text = format!(
        "# the demo's guest addresses\n\
         203.0.113.0/24,{GUEST_ZONE}\n\
         198.51.100.0/24,{GUEST_ZONE}\n\
         2001:db8:0:1::/64,{GUEST_ZONE}\n\
         # peers inside the network, not billed\n\
         10.0.2.0/24,{OTHER_ZONE}\n\
         fd00::/64,{OTHER_ZONE}\n"
    );
    let error = |e: sflow::Error| CliError::DemoSflow(format!("the demo's zone map: {e}"));
    let billable: ZoneName = BILLABLE_ZONE.parse().map_err(error)?;
    Ok(ZoneMap::parse(&text).map_err(error)?.default_zone(billable))
}

/// The address of peer `peer` (of [`super::peer_address`]) when it talks
/// from inside the network: the same host number in 10.0.2.0/24 or
/// fd00::/64.
fn internal_peer(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::new(10, 0, 2, v4.octets()[3])),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, v6.segments()[7])),
    }
}

impl DemoData {
    /// This data, drawn in the demo's time, played on the wall clock from
    /// `start`: every time `t` becomes `start + (t − demo start) × b / 1 h`
    /// for buckets `b` of `bucket`, rounded down to the nanosecond, so each
    /// hour of the demo becomes one bucket and every time stays in its
    /// bucket, in its order, and at the same instant as the times it was
    /// equal to. Peers of the zone that is not billed move to
    /// [`internal_peer`] addresses, since over sFlow a zone is told from an
    /// address ([`zone_map`]).
    ///
    /// # Errors
    ///
    /// [`CliError::DemoSflow`] when a time does not fit the clock (never for
    /// the spans the flags allow).
    fn played(&self, start: OffsetDateTime, bucket: Grid) -> Result<DemoData, CliError> {
        let origin = self.start;
        let (to, from) = (
            i128::from(bucket.seconds()),
            i128::from(self.grid.seconds()),
        );
        let play = |at: OffsetDateTime| -> Result<OffsetDateTime, CliError> {
            let scaled = ((at - origin).whole_nanoseconds() * to).div_euclid(from);
            i64::try_from(scaled)
                .ok()
                .and_then(|ns| start.checked_add(Duration::nanoseconds(ns)))
                .ok_or_else(|| CliError::DemoSflow(format!("cannot play {at} from {start}")))
        };
        let mut data = self.clone();
        data.start = play(self.start)?;
        data.end = play(self.end)?;
        data.grid = bucket;
        for event in &mut data.events {
            event.at = play(event.at)?;
        }
        for flow in &mut data.flows {
            flow.time = play(flow.time)?;
            if flow.sourcezone == OTHER_ZONE {
                flow.ipsource = internal_peer(flow.ipsource);
            }
            if flow.destinationzone == OTHER_ZONE {
                flow.ipdestination = internal_peer(flow.ipdestination);
            }
        }
        Ok(data)
    }
}

/// Datagrams, flow samples and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    datagrams: u64,
    samples: u64,
    /// As `sflow::DecodeSummary` sums them: 128-bit.
    bytes: u128,
}

/// The encoded datagrams of each bucket, in order from the first.
#[derive(Debug)]
struct Playlist {
    buckets: Vec<Vec<Vec<u8>>>,
    tally: Tally,
}

impl Playlist {
    /// Encodes the flows of `data` (played) into datagrams, bucket by bucket
    /// of `bucket` from `first`; each flow becomes samples at sampling rate
    /// 1 whose frame lengths add up to its bytes ([`frame_lengths`]), raw
    /// packet header and sampled IP records in turn.
    ///
    /// # Errors
    ///
    /// [`CliError::DemoSflow`] for a flow before `first`.
    fn encode(data: &DemoData, first: OffsetDateTime, bucket: Grid) -> Result<Playlist, CliError> {
        let step = bucket.step().whole_nanoseconds();
        let mut flows_by_bucket: Vec<Vec<&traffic_sentinel_emulator::Flow>> = Vec::new();
        for flow in &data.flows {
            let index = usize::try_from((flow.time - first).whole_nanoseconds().div_euclid(step))
                .map_err(|_| {
                CliError::DemoSflow(format!(
                    "a flow at {} is before the first bucket",
                    flow.time
                ))
            })?;
            if flows_by_bucket.len() <= index {
                flows_by_bucket.resize_with(index + 1, Vec::new);
            }
            flows_by_bucket[index].push(flow);
        }
        let mut tally = Tally::default();
        let mut buckets = Vec::with_capacity(flows_by_bucket.len());
        for (index, flows) in flows_by_bucket.iter().enumerate() {
            let samples = flows.iter().flat_map(|flow| {
                frame_lengths(flow.bytes)
                    .map(|length| FlowSampleSpec::new(flow.ipsource, flow.ipdestination, length))
            });
            let mut datagrams = Vec::new();
            let mut builder: Option<(DatagramBuilder, usize)> = None;
            for spec in samples {
                let record = if tally.samples % 2 == 0 {
                    FlowRecordKind::RawPacketHeader
                } else {
                    FlowRecordKind::SampledIp
                };
                let (open, count) = builder.get_or_insert_with(|| {
                    let uptime = (index as u64 * 1000 * PLAY_SECONDS) as u32;
                    let builder = DatagramBuilder::new(AGENT)
                        .sequence_number(tally.datagrams as u32)
                        .uptime_ms(uptime);
                    (builder, 0)
                });
                open.flow_sample(spec.record(record));
                *count += 1;
                tally.samples += 1;
                if *count == SAMPLES_PER_DATAGRAM
                    && let Some((full, _)) = builder.take()
                {
                    datagrams.push(full.encode());
                    tally.datagrams += 1;
                }
            }
            if let Some((last, _)) = builder.take() {
                datagrams.push(last.encode());
                tally.datagrams += 1;
            }
            tally.bytes = flows
                .iter()
                .fold(tally.bytes, |sum, flow| sum + u128::from(flow.bytes));
            buckets.push(datagrams);
        }
        Ok(Playlist { buckets, tally })
    }

    /// Sends each bucket's datagrams to `to`, [`SEND_OFFSET`] into the
    /// bucket (at once when that has passed).
    ///
    /// # Errors
    ///
    /// [`CliError::DemoSflow`] when the socket cannot be set up or a
    /// datagram cannot be sent whole.
    async fn send(
        &self,
        to: SocketAddr,
        first: OffsetDateTime,
        bucket: Grid,
    ) -> Result<(), CliError> {
        let error =
            |e: std::io::Error| CliError::DemoSflow(format!("cannot send to udp://{to}: {e}"));
        let local = SocketAddr::new(
            match to {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            },
            0,
        );
        let socket = tokio::net::UdpSocket::bind(local).await.map_err(error)?;
        let mut at = first + SEND_OFFSET;
        for datagrams in &self.buckets {
            if let Ok(wait) = std::time::Duration::try_from(at - OffsetDateTime::now_utc()) {
                tokio::time::sleep(wait).await;
            }
            for datagram in datagrams {
                let sent = socket.send_to(datagram, to).await.map_err(error)?;
                if sent != datagram.len() {
                    return Err(CliError::DemoSflow(format!(
                        "sent {sent} of the {} bytes of a datagram to udp://{to}",
                        datagram.len()
                    )));
                }
            }
            at += bucket.step();
        }
        Ok(())
    }
}

/// The frame lengths of samples carrying `bytes`: as few as a frame length
/// (a 32-bit field) allows, the last taking the rest; none for 0 bytes.
fn frame_lengths(bytes: u64) -> impl Iterator<Item = u32> {
    let max = u64::from(u32::MAX);
    let full = bytes / max;
    let rest = u32::try_from(bytes % max).unwrap_or(u32::MAX);
    (0..full)
        .map(|_| u32::MAX)
        .chain(Some(rest).filter(|&r| r > 0))
}

/// Waits until the emulator has decoded as many datagrams as were sent and
/// settled every bucket, and the clock has passed `played_until`; then
/// checks that it took in exactly what was sent.
///
/// # Errors
///
/// [`CliError::DemoSflow`] naming what was sent and what was taken in, when
/// that is not all there [`INGEST_WAIT`] after `played_until`, or differs.
async fn await_ingest(
    emulator: &Emulator,
    sent: Tally,
    played_until: OffsetDateTime,
) -> Result<IngestCounts, CliError> {
    let deadline = played_until + INGEST_WAIT;
    loop {
        let counts = emulator
            .sflow_counts()
            .ok_or_else(|| CliError::DemoSflow("the emulator does not take in sFlow".to_owned()))?;
        let now = OffsetDateTime::now_utc();
        let settled = emulator
            .served_history()
            .map_err(CliError::Emulator)?
            .part_count()
            == 1;
        if counts.decoded.datagrams >= sent.datagrams && settled && now >= played_until {
            return check_counts(sent, &counts, "");
        }
        if now >= deadline {
            return check_counts(
                sent,
                &counts,
                &format!(
                    " {} s after the last bucket{}",
                    INGEST_WAIT.whole_seconds(),
                    if settled {
                        ""
                    } else {
                        ", with buckets still open"
                    }
                ),
            );
        }
        tokio::time::sleep(INGEST_POLL).await;
    }
}

/// The counts of the emulator against what was sent: every datagram sent
/// decoded, every sample billed with its bytes, nothing malformed or
/// skipped; `when` says when the counts were read, for the error.
fn check_counts(sent: Tally, counts: &IngestCounts, when: &str) -> Result<IngestCounts, CliError> {
    let d = &counts.decoded;
    let taken = Tally {
        datagrams: d.datagrams,
        samples: d.flow_samples_billed,
        bytes: d.bytes_billed,
    };
    let skipped = d.malformed
        + d.other_versions
        + d.zero_sampling_rate
        + d.no_ip_packet
        + d.unknown_samples
        + counts.receive_errors
        + counts.byte_sum_overflows;
    if taken == sent && skipped == 0 {
        return Ok(*counts);
    }
    Err(CliError::DemoSflow(format!(
        "sent {} datagrams ({} flow samples, {} bytes) but the emulator aggregated {} datagrams \
         ({} flow samples, {} bytes){when}: {} lost; {} malformed, {} of another version, \
         {} samples skipped, {} receive errors",
        sent.datagrams,
        sent.samples,
        sent.bytes,
        taken.datagrams,
        taken.samples,
        taken.bytes,
        sent.datagrams.saturating_sub(taken.datagrams),
        d.malformed,
        d.other_versions,
        d.zero_sampling_rate + d.no_ip_packet + d.unknown_samples,
        counts.receive_errors,
    )))
}

/// Per address of the pool, per direction, per zone of the peer: the bytes
/// the emulator holds (from sFlow) against the bytes of the flows sent,
/// over all time; and the totals.
///
/// # Errors
///
/// [`CliError::DemoSflow`] naming the first differences.
fn check_per_address(data: &DemoData, served: &HistorySnapshot) -> Result<(), CliError> {
    let sent =
        FlowHistory::new(data.grid, data.flows.iter().cloned()).map_err(CliError::Emulator)?;
    let (from, until) = (data.start - Duration::DAY, data.end + Duration::DAY);
    let mut differences = Vec::new();
    for &ip in &data.pool {
        for side in Side::BOTH {
            for zone in [BILLABLE_ZONE, OTHER_ZONE] {
                let zones = ZoneFilter::any().include(zone);
                let want = sent.bytes(ip, side, &zones, from, until);
                let got = served.bytes(ip, side, &zones, from, until);
                if want != got {
                    let side = match side {
                        Side::Sent => "sent",
                        Side::Received => "received",
                    };
                    differences.push(format!(
                        "{ip} {side} with zone {zone}: {want} sent, {got} held"
                    ));
                }
            }
        }
    }
    if sent.total_bytes() != served.total_bytes() {
        differences.push(format!(
            "in all: {} bytes sent, {} held",
            sent.total_bytes(),
            served.total_bytes()
        ));
    }
    if differences.is_empty() {
        return Ok(());
    }
    let shown = differences.len().min(5);
    Err(CliError::DemoSflow(format!(
        "the emulator holds other bytes than were sent ({} differences): {}",
        differences.len(),
        differences[..shown].join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::tests::args;
    use super::super::{DEMO_START, GRID, SplitMix64, peer_address, pool_address};
    use super::*;

    fn sflow_args(ips: u32, hours: u32, seed: u64) -> DemoArgs {
        DemoArgs {
            sflow: true,
            hours,
            ..args(ips, 3, 1, seed)
        }
    }

    fn second() -> Grid {
        Grid::from_seconds(PLAY_SECONDS).unwrap()
    }

    /// The index of the bucket of `grid` that holds `at`, from `origin`.
    fn bucket_of(at: OffsetDateTime, origin: OffsetDateTime, grid: Grid) -> i128 {
        (at - origin)
            .whole_nanoseconds()
            .div_euclid(grid.step().whole_nanoseconds())
    }

    #[test]
    fn playing_keeps_every_time_in_its_bucket_and_order() {
        let demo = DemoData::generate(&sflow_args(40, 6, 5)).unwrap();
        let start = time::macros::datetime!(2026-12-01 23:59:57 UTC);
        let played = demo.played(start, second()).unwrap();
        assert_eq!(
            (played.start, played.end),
            (start, start + Duration::seconds(6))
        );
        assert_eq!(played.grid, second());
        assert_eq!(played.events.len(), demo.events.len());
        for (was, is) in demo.events.iter().zip(&played.events) {
            assert_eq!(
                bucket_of(was.at, demo.start, GRID),
                bucket_of(is.at, start, second()),
                "{was:?} → {is:?}"
            );
            assert_eq!((was.id, &was.ip, was.kind), (is.id, &is.ip, is.kind));
        }
        for pair in demo
            .events
            .iter()
            .zip(&played.events)
            .collect::<Vec<_>>()
            .windows(2)
        {
            let ((a, pa), (b, pb)) = (pair[0], pair[1]);
            assert_eq!(a.at.cmp(&b.at), pa.at.cmp(&pb.at), "{a:?} {b:?}");
        }
        for (was, is) in demo.flows.iter().zip(&played.flows) {
            assert_eq!(
                bucket_of(was.time, demo.start, GRID),
                bucket_of(is.time, start, second())
            );
            assert_eq!(was.bytes, is.bytes);
        }
    }

    #[test]
    fn zones_are_told_from_addresses() {
        let zones = zone_map().unwrap();
        for i in 0..MAX_SFLOW_IPS {
            let ip = pool_address(i);
            assert_eq!(zones.zone_of(ip).as_str(), GUEST_ZONE, "{ip}");
            let mut rng = SplitMix64(u64::from(i));
            let peer = peer_address(i, &mut rng, ip.is_ipv6());
            assert_eq!(zones.zone_of(peer).as_str(), BILLABLE_ZONE, "{peer}");
            assert_eq!(
                zones.zone_of(internal_peer(peer)).as_str(),
                OTHER_ZONE,
                "{peer}"
            );
        }
        let demo = DemoData::generate(&sflow_args(30, 4, 2)).unwrap();
        let played = demo.played(DEMO_START, second()).unwrap();
        assert!(played.flows.iter().any(|f| f.destinationzone == OTHER_ZONE));
        for flow in &played.flows {
            assert_eq!(
                zones.zone_of(flow.ipsource).as_str(),
                flow.sourcezone,
                "{flow:?}"
            );
            assert_eq!(
                zones.zone_of(flow.ipdestination).as_str(),
                flow.destinationzone,
                "{flow:?}"
            );
        }
    }

    #[test]
    fn frame_lengths_add_up_and_fit_the_field() {
        let max = u64::from(u32::MAX);
        for bytes in [0, 1, 1500, max - 1, max, max + 1, 3 * max + 7] {
            let lengths: Vec<u32> = frame_lengths(bytes).collect();
            assert_eq!(lengths.iter().map(|&l| u64::from(l)).sum::<u64>(), bytes);
            assert!(lengths.iter().all(|&l| l > 0));
            assert_eq!(lengths.len() as u64, bytes.div_ceil(max));
        }
    }

    #[test]
    fn the_datagrams_decode_to_the_flows_bucket_by_bucket() {
        let demo = DemoData::generate(&sflow_args(20, 3, 9)).unwrap();
        let first = DEMO_START;
        let played = demo.played(first + second().step(), second()).unwrap();
        let playlist = Playlist::encode(&played, first, second()).unwrap();
        // The hour before, the hours of the demo, the hour after.
        assert_eq!(playlist.buckets.len(), 3 + 2);

        type Pairs = BTreeMap<(usize, IpAddr, IpAddr), u64>;
        let mut want = Pairs::new();
        for flow in &played.flows {
            let index = usize::try_from(bucket_of(flow.time, first, second())).unwrap();
            *want
                .entry((index, flow.ipsource, flow.ipdestination))
                .or_default() += flow.bytes;
        }
        let mut got = Pairs::new();
        let mut tally = Tally::default();
        for (index, datagrams) in playlist.buckets.iter().enumerate() {
            for datagram in datagrams {
                assert!(datagram.len() <= 1500, "{} bytes", datagram.len());
                let Ok(sflow::Decoded::Datagram(decoded)) = sflow::decode(datagram) else {
                    panic!("not an sFlow v5 datagram");
                };
                tally.datagrams += 1;
                for flow in decoded.flows() {
                    tally.samples += 1;
                    tally.bytes += u128::from(flow.bytes());
                    *got.entry((index, flow.source, flow.destination))
                        .or_default() += flow.bytes();
                }
            }
        }
        assert_eq!(got, want);
        assert_eq!(tally, playlist.tally);
        assert_eq!(tally.bytes, u128::from(demo.stats.flow_bytes));
        assert_eq!(tally.samples, played.flows.len() as u64);
    }

    #[test]
    fn a_byte_held_other_than_sent_is_named_with_its_address() {
        let demo = DemoData::generate(&sflow_args(8, 2, 4)).unwrap();
        let played = demo.played(DEMO_START, second()).unwrap();
        let exact = FlowHistory::new(second(), played.flows.iter().cloned()).unwrap();
        check_per_address(&played, &HistorySnapshot::from(exact)).unwrap();

        let mut flows = played.flows.clone();
        let moved = flows
            .iter_mut()
            .find(|f| f.destinationzone == OTHER_ZONE)
            .unwrap();
        moved.destinationzone = BILLABLE_ZONE.to_owned();
        let guest = moved.ipsource;
        let off = FlowHistory::new(second(), flows).unwrap();
        let err = check_per_address(&played, &HistorySnapshot::from(off)).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "demo over sflow: the emulator holds other bytes than were sent (2 differences): \
                 {guest} sent with zone {BILLABLE_ZONE}: "
            )),
            "{err}"
        );
    }

    #[test]
    fn counts_short_of_what_was_sent_are_an_error() {
        let sent = Tally {
            datagrams: 3,
            samples: 30,
            bytes: 4_000,
        };
        let mut counts = IngestCounts::default();
        counts.decoded.datagrams = 2;
        counts.decoded.flow_samples_billed = 20;
        counts.decoded.bytes_billed = 3_000;
        let err = check_counts(sent, &counts, " 10 s after the last bucket").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "demo over sflow: sent 3 datagrams (30 flow samples, 4000 bytes) but the emulator \
                 aggregated 2 datagrams (20 flow samples, 3000 bytes) 10 s after the last bucket: 1 lost"
            ),
            "{err}"
        );
        counts.decoded.datagrams = 3;
        counts.decoded.flow_samples_billed = 30;
        counts.decoded.bytes_billed = 4_000;
        assert!(check_counts(sent, &counts, "").is_ok());
        counts.decoded.malformed = 1;
        assert!(check_counts(sent, &counts, "").is_err());
    }
}
