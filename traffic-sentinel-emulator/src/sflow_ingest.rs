//! Live sFlow ingest: a receiver thread (UDP socket → arrival time), a
//! decoder thread (decode → open bucket, closing buckets on time) and a
//! settler thread (closed buckets → record file → settled history).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use time::OffsetDateTime;

use crate::error::Error;
use crate::flow_record::FlowRecord;
use crate::live_history::{ClosedBatch, IngestCounts, LiveHistory};
use crate::sflow_options::SflowIngest;

/// How long the receiver waits for a datagram before it looks at the clock
/// and the stop flag again: the most a bucket stays open past its end when
/// no datagram arrives, and the most a shutdown waits for the receiver.
const POLL: Duration = Duration::from_millis(100);

/// How many received datagrams may wait for the decoder (about 1 KB each
/// from a typical agent); beyond that the socket's buffer takes the rest.
const QUEUE: usize = 1 << 16;

/// The largest UDP payload (IPv4: 65,535 − 8 − 20 bytes; an IPv6 datagram is
/// no larger without jumbograms).
const MAX_DATAGRAM: usize = 65_535;

/// The running receiver and settler; stopping them records the open bucket.
#[derive(Debug)]
pub(crate) struct Ingest {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Receiver, decoder, settler: each ends after the one before it.
    threads: Vec<JoinHandle<()>>,
}

impl Ingest {
    /// Binds the UDP socket of `options` (before anything else starts, so a
    /// bad address is an error, not a log line).
    ///
    /// # Errors
    ///
    /// [`Error::SflowListen`] when the socket cannot be set up.
    pub(crate) fn bind(options: &SflowIngest) -> Result<UdpSocket, Error> {
        let addr = options.listen;
        let error = |source| Error::SflowListen { addr, source };
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(error)?;
        // The system may grant less than asked; what it grants is logged.
        if let Err(e) = socket.set_recv_buffer_size(options.receive_buffer_bytes) {
            tracing::warn!(error = %e, "cannot set the sflow receive buffer size");
        }
        socket.bind(&addr.into()).map_err(error)?;
        let socket = UdpSocket::from(socket);
        socket.set_read_timeout(Some(POLL)).map_err(error)?;
        Ok(socket)
    }

    /// Starts receiving on `socket` into `live`, recording closed buckets to
    /// `record`.
    ///
    /// # Errors
    ///
    /// [`Error::SflowListen`] when the socket's address cannot be read,
    /// [`Error::Runtime`] when a thread cannot be started.
    pub(crate) fn start(
        socket: UdpSocket,
        live: Arc<LiveHistory>,
        record: Option<FlowRecord>,
        stats_interval: Duration,
    ) -> Result<Ingest, Error> {
        let local_addr = socket.local_addr().map_err(|source| Error::SflowListen {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        let buffer = socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .unwrap_or(0);
        tracing::info!(%local_addr, receive_buffer = buffer, "sflow ingest listening");
        let stop = Arc::new(AtomicBool::new(false));
        let (batches, closed) = mpsc::channel::<ClosedBatch>();
        let (arrived, arrivals) = mpsc::sync_channel::<Arrival>(QUEUE);
        let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(work)
                .map_err(Error::Runtime)
        };
        let settler = {
            let live = live.clone();
            spawn(
                "sflow-settle",
                Box::new(move || settle(&live, record, &closed)),
            )?
        };
        let decoder = {
            let live = live.clone();
            spawn(
                "sflow-decode",
                Box::new(move || decode_and_aggregate(&live, &arrivals, &batches, stats_interval)),
            )?
        };
        let receiver = {
            let stop = stop.clone();
            spawn(
                "sflow-receive",
                Box::new(move || receive(&socket, &live, &arrived, &stop)),
            )?
        };
        Ok(Ingest {
            local_addr,
            stop,
            threads: vec![receiver, decoder, settler],
        })
    }

    /// The UDP address datagrams are received on.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops receiving, adds what was received, records the open bucket and
    /// waits for the threads (a tenth of a second plus the last write).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The start of the bucket holding `at`, in buckets of `seconds`.
fn bucket_start(at: OffsetDateTime, seconds: i64) -> OffsetDateTime {
    let start = at.unix_timestamp().div_euclid(seconds) * seconds;
    OffsetDateTime::from_unix_timestamp(start).unwrap_or(at)
}

/// A datagram as received: its arrival time (UTC) and its bytes.
type Arrival = (OffsetDateTime, Vec<u8>);

/// The receiver: each datagram stamped with its arrival time and handed to
/// the decoder, as fast as the socket gives them, so that a busy decoder or
/// a query holding the history's lock does not make the socket overflow.
/// When the decoder falls [`QUEUE`] datagrams behind, the receiver waits
/// (the socket's buffer then takes what arrives).
fn receive(
    socket: &UdpSocket,
    live: &LiveHistory,
    arrivals: &mpsc::SyncSender<Arrival>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut error_logged_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((len, _peer)) => {
                let at = OffsetDateTime::now_utc();
                let datagram = buf.get(..len).unwrap_or_default().to_vec();
                if arrivals.send((at, datagram)).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                live.add_receive_error();
                // Once a second at most; an error that repeats must not
                // spin the thread either.
                if error_logged_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "sflow receive failed");
                    error_logged_at = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The decoder: each datagram decoded and its flow samples added to the
/// open bucket of its arrival time (never before the end of the last closed
/// bucket, should the clock step back); buckets closed as the clock passes
/// their end; counts logged every `stats_interval`. When the receiver has
/// stopped, every datagram received is added and every bucket closed.
fn decode_and_aggregate(
    live: &LiveHistory,
    arrivals: &mpsc::Receiver<Arrival>,
    batches: &mpsc::Sender<ClosedBatch>,
    stats_interval: Duration,
) {
    let seconds = i64::from(live.settled().granularity().seconds());
    let mut closed_until = bucket_start(OffsetDateTime::now_utc(), seconds);
    let mut next_stats = Instant::now() + stats_interval;
    let mut logged = IngestCounts::default();
    loop {
        match arrivals.recv_timeout(POLL) {
            Ok((at, datagram)) => {
                live.add_datagram(at.max(closed_until), &sflow::decode(&datagram));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let now = bucket_start(OffsetDateTime::now_utc(), seconds);
        if now > closed_until {
            closed_until = now;
            if let Some(batch) = live.close_before(Some(now)) {
                let _ = batches.send(batch);
            }
        }
        if Instant::now() >= next_stats {
            next_stats = Instant::now() + stats_interval;
            let counts = live.counts();
            if counts != logged {
                log_counts("sflow ingest", &counts);
                logged = counts;
            }
        }
    }
    if let Some(batch) = live.close_before(None) {
        let _ = batches.send(batch);
    }
}

/// The settler: each closed batch appended to the record file, then merged
/// into the settled history (not the last batch, taken at shutdown). Ends
/// when the receiver has ended.
fn settle(
    live: &LiveHistory,
    mut record: Option<FlowRecord>,
    closed: &mpsc::Receiver<ClosedBatch>,
) {
    for batch in closed {
        if let Some(record) = &mut record {
            match record.append(&batch.flows) {
                Ok(rows) => live.add_recorded(Ok(rows)),
                Err(error) => {
                    live.add_recorded(Err(()));
                    tracing::error!(
                        path = %record.path().display(),
                        %error,
                        rows = batch.flows.len(),
                        "cannot record a closed bucket; it is served, but a restart loses it"
                    );
                }
            }
        }
        if batch.last {
            continue;
        }
        match live.settled().extended(batch.flows.iter().cloned()) {
            Ok(merged) => live.settle(batch.id, merged),
            Err(error) => {
                tracing::error!(%error, rows = batch.flows.len(), "cannot merge a closed bucket; dropping it");
                live.discard(batch.id);
            }
        }
    }
    log_counts("sflow ingest stopped", &live.counts());
}

/// Logs `counts` at `info` under `message`.
fn log_counts(message: &str, counts: &IngestCounts) {
    let decoded = &counts.decoded;
    tracing::info!(
        datagrams = decoded.datagrams,
        flow_samples_billed = decoded.flow_samples_billed,
        bytes_billed = decoded.bytes_billed,
        counter_samples = decoded.counter_samples,
        discarded_packet_samples = decoded.discarded_packet_samples,
        no_ip_packet = decoded.no_ip_packet,
        zero_sampling_rate = decoded.zero_sampling_rate,
        unknown_samples = decoded.unknown_samples,
        malformed = decoded.malformed,
        other_versions = decoded.other_versions,
        buckets_closed = counts.buckets_closed,
        rows_recorded = counts.rows_recorded,
        record_failures = counts.record_failures,
        receive_errors = counts.receive_errors,
        byte_sum_overflows = counts.byte_sum_overflows,
        "{message}"
    );
}
