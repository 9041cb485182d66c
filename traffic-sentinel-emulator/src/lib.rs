//! A loopback HTTP server that answers inMon Traffic Sentinel queries over an
//! in-memory flow history, with fault injection; the history can grow from
//! sFlow datagrams received while it runs.
//!
//! Flows ([`Flow`], read from the CSV of DESIGN §9 by [`read_flows`]) are
//! consolidated into epoch-aligned buckets by [`FlowHistory`], which answers
//! per-address byte counts over `[start, end)` in logarithmic time. An
//! [`Emulator`] serves `/inmsf/Query` over such a history, understanding
//! the client's script and Apache CloudStack's script ([`answer_script`]),
//! and can be told to misbehave through [`FaultControl`].
//!
//! ```
//! use usage_model::Grid;
//! use std::net::IpAddr;
//! use time::{Duration, macros::datetime};
//! use traffic_sentinel_emulator::{Flow, FlowHistory, Side, ZoneFilter};
//!
//! let guest: IpAddr = "203.0.113.7".parse().unwrap();
//! let peer: IpAddr = "2001:db8::99".parse().unwrap();
//! let flow = |minute, src, dst, bytes| Flow {
//!     time: datetime!(2026-11-01 10:00 UTC) + Duration::minutes(minute),
//!     ipsource: src,
//!     ipdestination: dst,
//!     sourcezone: "EXTERNAL".into(),
//!     destinationzone: "EXTERNAL".into(),
//!     bytes,
//! };
//! let history = FlowHistory::new(
//!     Grid::MINUTELY,
//!     [flow(0, guest, peer, 1_000), flow(30, peer, guest, 250), flow(60, guest, peer, 7)],
//! )
//! .unwrap();
//!
//! let external = ZoneFilter::any().include("EXTERNAL");
//! let (start, end) = (datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-01 11:00 UTC));
//! // The bucket starting at 11:00 is not in [10:00, 11:00).
//! assert_eq!(history.bytes(guest, Side::Sent, &external, start, end), 1_000);
//! assert_eq!(history.bytes(guest, Side::Received, &external, start, end), 250);
//! assert_eq!(history.total_bytes(), 1_257);
//! ```
//!
//! Serving it, with a fault injected:
//!
//! ```no_run
//! use usage_model::Grid;
//! use time::Duration;
//! use traffic_sentinel_emulator::{Emulator, EmulatorOptions, Fault, FlowHistory, Times};
//!
//! # #[tokio::main] async fn main() -> Result<(), traffic_sentinel_emulator::Error> {
//! let history = FlowHistory::new(Grid::MINUTELY, [])?;
//! let emulator =
//!     Emulator::start("127.0.0.1:0".parse().unwrap(), history, EmulatorOptions::new()).await?;
//! emulator.faults().set(Fault::TruncateBeforeSentinel, Times::Next(1))?;
//! println!("listening on {}", emulator.url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! From synchronous code, [`Emulator::start_in_background`] runs the server
//! on a runtime of its own; dropping the emulator stops it.
//!
//! With [`SflowIngest`], the history grows while it is served: sFlow
//! datagrams received over UDP are billed per bucket as they arrive,
//! closed buckets are recorded to a flows CSV and loaded back at the next
//! start (DESIGN §13; see [`Emulator`'s ingest](Emulator#sflow-ingest)):
//!
//! ```no_run
//! use traffic_sentinel_emulator::{Emulator, EmulatorOptions, FlowHistory, SflowIngest};
//! use usage_model::Grid;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ingest = SflowIngest::new("0.0.0.0:6343".parse()?).record("flows.csv");
//! let emulator = Emulator::start(
//!     "127.0.0.1:8080".parse()?,
//!     FlowHistory::new(Grid::MINUTELY, [])?,
//!     EmulatorOptions::new().sflow(ingest),
//! )
//! .await?;
//! println!("sflow on udp://{}", emulator.sflow_addr().unwrap());
//! emulator.shutdown().await; // records the open bucket
//! # Ok(()) }
//! ```
//!
//! # Answers
//!
//! `Query.topN` rows are sorted by bytes descending (ties by address
//! ascending), at most `N` of them, rows with 0 bytes left out. The interval
//! `"yyyyMMdd HH:mm:ss, yyyyMMdd HH:mm:ss"` is read in the configured server
//! time zone ([`EmulatorOptions::server_time_zone`]) and covers the buckets
//! whose start lies in `[START, END)`. See [`answer_script`] for what each
//! script shape prints.
//!
//! # HTTP
//!
//! Like a real TS, the form (`application/x-www-form-urlencoded`, holding
//! `script`, `resultFormat=txt` and optionally `authenticate`, in any order)
//! is taken from a `POST` body (Apache CloudStack 4.10 and later) or a `GET`
//! query string (CloudStack 4.9 and older), on `/inmsf/Query` or with its
//! slashes repeated (`//inmsf/Query`, from a monitor URL ending in `/`). With
//! [`EmulatorOptions::basic_auth`], a request without those HTTP basic
//! credentials gets `401` and a `WWW-Authenticate: Basic` challenge.
//! Answers are `text/plain`. A script that is not understood, a missing
//! field or another `resultFormat` gets `400` with a one-line message; a body
//! over [`EmulatorOptions::max_body_bytes`] gets `413`; other paths `404`;
//! other methods `405`. Interval times are read on the server's clock
//! ([`EmulatorOptions::server_time_zone`]).

mod answer_writer;
mod basic_auth;
mod cloudstack_script;
mod error;
mod evaluate;
mod fault;
mod flow_record;
mod flows;
mod form;
mod history;
mod history_snapshot;
mod live_history;
mod options;
mod response;
mod script;
mod server;
mod sflow_ingest;
mod sflow_options;
mod zone_filter;

pub use crate::cloudstack_script::cloudstack_script;
pub use crate::error::Error;
pub use crate::evaluate::answer_script;
pub use crate::fault::{Fault, FaultControl, GARBAGE_LINE, HTML_ERROR_PAGE, Times};
pub use crate::flows::{
    FLOWS_HEADER, Flow, FlowReader, MAX_FLOWS_LINE_BYTES, is_valid_zone_name, read_flows,
    write_flows,
};
pub use crate::history::FlowHistory;
pub use crate::history_snapshot::HistorySnapshot;
pub use crate::live_history::IngestCounts;
pub use crate::options::EmulatorOptions;
pub use crate::script::MAX_TOP_N;
pub use crate::server::{Emulator, QUERY_PATH};
pub use crate::sflow_options::SflowIngest;
pub use crate::zone_filter::ZoneFilter;

#[doc(no_inline)]
pub use usage_model::Side;
