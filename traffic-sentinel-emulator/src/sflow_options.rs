//! How the emulator takes in sFlow datagrams over UDP (DESIGN §13).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sflow::ZoneMap;

/// Live sFlow ingest: where datagrams arrive, how their addresses are zoned,
/// where closed buckets are recorded (DESIGN §13).
///
/// Given to [`EmulatorOptions::sflow`](crate::EmulatorOptions::sflow), it
/// makes the emulator receive sFlow v5 datagrams on a UDP socket, stamp each
/// with its arrival time (UTC), bill its flow samples (`frame length ×
/// sampling rate`, [`sflow::decode`]) per (bucket of the history's
/// granularity, ipsource, ipdestination, sourcezone, destinationzone), and
/// serve them by the same query protocol. See
/// [`Emulator`](crate::Emulator#sflow-ingest) for when buckets close and what
/// a restart keeps.
///
/// A small by-value builder:
///
/// ```
/// use sflow::{ZoneMap, ZoneName};
/// use traffic_sentinel_emulator::SflowIngest;
///
/// let zones = ZoneMap::parse("10.0.0.0/8,GUEST\n")?.default_zone("EXTERNAL".parse::<ZoneName>()?);
/// let ingest = SflowIngest::new("0.0.0.0:6343".parse()?)
///     .zones(zones)
///     .record("/var/lib/ts-emulator/flows.csv");
/// assert_eq!(ingest.get_listen().port(), 6343);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SflowIngest {
    pub(crate) listen: SocketAddr,
    pub(crate) zones: ZoneMap,
    pub(crate) record: Option<PathBuf>,
    pub(crate) stats_interval: Duration,
    pub(crate) receive_buffer_bytes: usize,
}

impl SflowIngest {
    /// The standard sFlow collector port, 6343 (sFlow v5, §4).
    pub const PORT: u16 = sflow::SFLOW_PORT;

    /// Ingest on the UDP address `listen` (port 0 picks a free port; the
    /// address taken is [`Emulator::sflow_addr`](crate::Emulator::sflow_addr)).
    pub fn new(listen: SocketAddr) -> SflowIngest {
        SflowIngest {
            listen,
            zones: ZoneMap::default(),
            record: None,
            stats_interval: Duration::from_secs(60),
            receive_buffer_bytes: 16 << 20,
        }
    }

    /// The zones of addresses: a flow's `sourcezone` and `destinationzone`
    /// are its addresses' zones in `zones` (longest prefix; an address in no
    /// prefix is in the map's default zone). By default, an empty map whose
    /// default zone is `EXTERNAL`.
    pub fn zones(mut self, zones: ZoneMap) -> SflowIngest {
        self.zones = zones;
        self
    }

    /// Appends each closed bucket's rows to `path` in the flows CSV format
    /// (DESIGN §9; the header is written when the file is new or empty),
    /// flushed and synced to disk bucket by bucket, and loads the file's rows
    /// into the history at start. By default, nothing is recorded.
    pub fn record(mut self, path: impl Into<PathBuf>) -> SflowIngest {
        self.record = Some(path.into());
        self
    }

    /// How often the ingest counts (datagrams, flow samples billed, samples
    /// skipped by reason, malformed datagrams, other versions) are logged at
    /// `info`, when they changed; they are logged at shutdown too. By
    /// default, every 60 seconds.
    pub fn stats_interval(mut self, interval: Duration) -> SflowIngest {
        self.stats_interval = interval;
        self
    }

    /// The receive buffer asked of the operating system for the UDP socket
    /// (`SO_RCVBUF`), which holds datagrams arriving while the ingest is
    /// busy; the system may grant less (Linux caps it at
    /// `net.core.rmem_max`, e.g. 4 MiB, granting twice that). By default,
    /// 16 MiB.
    pub fn receive_buffer_bytes(mut self, bytes: usize) -> SflowIngest {
        self.receive_buffer_bytes = bytes;
        self
    }

    /// The UDP address asked for.
    pub fn get_listen(&self) -> SocketAddr {
        self.listen
    }

    /// The zone map.
    pub fn get_zones(&self) -> &ZoneMap {
        &self.zones
    }

    /// The record file, if any.
    pub fn get_record(&self) -> Option<&Path> {
        self.record.as_deref()
    }
}
