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

mod error;
mod event;
mod ids;
mod record;
mod traffic;

pub use crate::error::Error;
pub use crate::event::{IpEvent, IpEventKind};
pub use crate::ids::{AccountId, ZoneId};
pub use crate::record::{
    Checkpoint, CollectionWindow, Ownership, RecordId, UsageRecord, UsageType,
};
pub use crate::traffic::{ByteCounts, QueryTag, TrafficAnswer, TrafficQuery};

/// A half-open interval of instants, `[start, end)`, in UTC.
pub type TimeInterval = ip_interval::Interval<time::OffsetDateTime>;
