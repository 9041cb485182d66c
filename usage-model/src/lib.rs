//! The shared vocabulary of guest-network usage billing.
//!
//! Accounts hold IP addresses over half-open time intervals ([`Ownership`]),
//! learnt from assign/release events ([`IpEvent`]); Traffic Sentinel answers
//! [`ByteCounts`] per address; billing joins the two into [`UsageRecord`]s and
//! moves a per-zone [`Checkpoint`].
//!
//! ```
//! use usage_model::{AccountId, ByteCounts, UsageRecord, ZoneId};
//! use time::macros::datetime;
//!
//! let record = UsageRecord::new(
//!     ZoneId::new("zone-1").unwrap(),
//!     AccountId::new("acct-42").unwrap(),
//!     "203.0.113.7".parse().unwrap(),
//!     datetime!(2026-11-01 10:00 UTC),
//!     datetime!(2026-11-01 11:00 UTC),
//!     ByteCounts { sent: 1_000, received: 250 },
//! );
//! // The id depends only on (zone, account, ip, start, end): replays upsert.
//! assert_eq!(record.id.to_string().len(), 32);
//! ```
//!
//! Events come from a JSON Lines file (DESIGN §9), read from any
//! [`BufRead`](std::io::BufRead) with [`read_events`] (all or nothing) or
//! [`EventReader`] (streaming), and written with [`write_events`]:
//!
//! ```
//! use usage_model::{read_events, write_events, IpEventKind};
//!
//! let input: &[u8] = br#"{"id":17,"type":"NET.IPASSIGN","at":"2026-11-01T10:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
//! {"id":18,"type":"NET.IPRELEASE","at":"2026-11-01T13:00:00+02:00","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
//! "#;
//! let events = read_events(input)?;
//! assert_eq!(events[0].kind, IpEventKind::Assign);
//! // Any offset is read; every instant is kept in UTC.
//! assert_eq!(events[1].at, time::macros::datetime!(2026-11-01 11:00 UTC));
//!
//! let mut output = Vec::new();
//! write_events(&mut output, &events)?;
//! assert_eq!(read_events(&output[..])?, events);
//!
//! // A bad line is reported with its number and field, and nothing is loaded.
//! let bad: &[u8] = br#"{"id":-1,"type":"NET.IPASSIGN","at":"2026-11-01T10:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}"#;
//! let err = read_events(bad).unwrap_err();
//! assert_eq!(err.to_string(), r#"line 1: field "id": expected an unsigned integer, found "-1""#);
//! # Ok::<(), usage_model::Error>(())
//! ```
//!
//! # Features
//!
//! - `serde`: `Serialize`/`Deserialize` for every public data type. Instants
//!   are RFC 3339 strings in UTC; an [`IpEvent`] serializes with the keys and
//!   values of the events file; deserializing checks the same invariants as
//!   the constructors (non-empty ids and windows, record ids that match their
//!   fields, no duplicate answer pairs).

mod byte_counts;
mod error;
mod event;
mod event_line;
mod event_reader;
mod event_writer;
mod grid;
mod ids;
mod ip_text;
mod record;
mod rfc3339;
mod server_time_zone;
mod side;
mod traffic_answer;
mod traffic_query;
mod zone_name;

pub use crate::byte_counts::ByteCounts;
pub use crate::error::Error;
pub use crate::event::{IpEvent, IpEventKind};
pub use crate::event_reader::{EventReader, read_events};
pub use crate::event_writer::write_events;
pub use crate::grid::Grid;
pub use crate::ids::{AccountId, ZoneId};
pub use crate::ip_text::{read_dotted_quad, read_ip};
pub use crate::record::{
    Checkpoint, CollectionWindow, Ownership, ParseRecordIdError, RecordId, UsageRecord, UsageType,
};
pub use crate::server_time_zone::ServerTimeZone;
pub use crate::side::Side;
pub use crate::traffic_answer::TrafficAnswer;
pub use crate::traffic_query::{QueryTag, TrafficQuery};
pub use crate::zone_name::{is_ts_zone_char, is_ts_zone_name};

/// A half-open interval of instants, `[start, end)`, in UTC.
pub type TimeInterval = ip_interval::Interval<time::OffsetDateTime>;
