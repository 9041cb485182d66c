//! Persistence of guest-network usage billing (DESIGN §6, §10, §11, §12):
//! usage records, per-zone checkpoints and settings, anomalies, ownership
//! and event-log digests, restatements with their adjustments, and the
//! reports and status read from them — in a SQLite file (the embedded
//! default), a PostgreSQL database shared by many collectors, or a
//! MySQL/MariaDB database beside CloudStack, with one schema and the same
//! answers on all three.
//!
//! ```
//! use std::ops::ControlFlow;
//!
//! use time::macros::datetime;
//! use usage_model::{AccountId, ByteCounts, CollectionWindow, UsageRecord, ZoneId};
//! use usage_store::{OpenMode, ReportFilter, Store, StoreTarget, WindowCommit, WindowStats};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let target = StoreTarget::parse(dir.path().join("usage.sqlite").to_str().unwrap())?;
//! let store = Store::open(&target, OpenMode::ReadWrite).await?;
//!
//! let zone = ZoneId::new("zone-1")?;
//! let (start, end) = (datetime!(2026-11-01 00:00 UTC), datetime!(2026-11-01 01:00 UTC));
//! let record = UsageRecord::new(
//!     zone.clone(),
//!     AccountId::new("acct-42")?,
//!     "203.0.113.7".parse()?,
//!     start,
//!     end,
//!     ByteCounts { sent: 1_000, received: 250 },
//! );
//! store
//!     .commit_window(&WindowCommit {
//!         zone: zone.clone(),
//!         window: CollectionWindow::new(start, end)?,
//!         planned_from: None, // the zone's first window
//!         records: vec![record],
//!         anomalies: Vec::new(),
//!         ownership_digest: [0; 32],
//!         grid: usage_model::Grid::HOURLY,
//!         event_log_digest: [0; 32],
//!         stats: WindowStats { ips: 1, requests: 1 },
//!         settings: vec![("granularity".to_owned(), "3600".to_owned())],
//!         collected_at: datetime!(2026-11-01 03:00 UTC),
//!         cloudstack: None,
//!     })
//!     .await?;
//! assert_eq!(store.checkpoint(&zone).await?, Some(end));
//!
//! let mut totals = Vec::new();
//! store
//!     .report_by_account(&ReportFilter::new(), |row| {
//!         totals.push((row.account.to_string(), row.bytes_sent, row.bytes_received));
//!         ControlFlow::Continue(())
//!     })
//!     .await?;
//! assert_eq!(totals, [("acct-42".to_owned(), 1_000, 250)]);
//! # Ok(())
//! # }
//! ```
//!
//! # Engines
//!
//! A [`StoreTarget`] names the store: a path is a SQLite file,
//! `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` a PostgreSQL database,
//! `mysql://USER[:PASSWORD]@HOST[:PORT]/DB` a MySQL or MariaDB one. All
//! three go through [`sqlx`](https://docs.rs/sqlx) 0.8 and its `Any` driver,
//! which picks the engine at run time: one async API and one body of SQL,
//! with the few differences of spelling in one place (the `dialect`
//! module). sqlx is the well-kept pure-Rust driver family that covers the
//! three engines with one connection pool and transaction type; its query
//! macros, offline mode and migrations are not used (the schema is created
//! and versioned here, see `schema`). It bundles SQLite, so this crate is
//! the workspace's SQLite user.
//!
//! * **SQLite**: the file is created by a [`OpenMode::ReadWrite`] open;
//!   writes take the file's write lock with `BEGIN IMMEDIATE` and wait up
//!   to 30 s for another writer. The file stays in the default rollback
//!   journal mode, so a [`OpenMode::ReadOnly`] open (reports, status) never
//!   writes or leaves a file beside it.
//! * **PostgreSQL**: writes lock the zone's row with `SELECT … FOR UPDATE`
//!   after inserting it if missing (`ON CONFLICT DO NOTHING`), so that two
//!   collectors starting the same zone serialize.
//! * **MySQL/MariaDB** (InnoDB): the same with InnoDB row locks, sessions in
//!   `READ COMMITTED` and strict mode; text keys in a binary, no-pad
//!   collation. Only here can a window also be posted to CloudStack's
//!   `user_statistics` in the same transaction ([`CloudStackPosting`]).
//!
//! # Exactness
//!
//! Byte counts and event ids are `u64` end to end: stored as two columns of
//! 32 bits each (see `schema`), summed by the engine in 64-bit integers and
//! combined in Rust; a sum past `u64` is [`StoreError::TotalOverflow`]
//! naming the zone and account, never a cap. Times are whole Unix seconds.

mod cloudstack;
mod cloudstack_database;
mod cloudstack_events;
mod codec;
mod collection;
mod commit;
mod dialect;
mod error;
mod late_event;
mod migrate_v1;
mod open;
mod report;
mod restate;
mod rows;
mod schema;
mod status;
mod store;
mod target;
mod traffic_monitor;
mod window_rows;

pub use crate::cloudstack::{CloudStackPosting, cloudstack_id};
pub use crate::cloudstack_database::CloudStackDatabase;
pub use crate::cloudstack_events::{
    DIRECT_ATTACHED, NOT_AN_IP_ADDRESS, SkippedUsageEvent, UsageEventOptions, UsageEventsRead,
};
pub use crate::collection::{CollectSummary, Collection, TrafficSource, WindowReport};
pub use crate::commit::{AnomalyRow, WindowCommit, WindowStats};
pub use crate::error::StoreError;
pub use crate::late_event::{LATE_EVENT, LateEventAnomaly, LateEvents};
pub use crate::report::{AccountUsage, DayUsage, ReportFilter, StoredAnomaly};
pub use crate::restate::{Adjustment, RestateCommit, RestateOutcome};
pub use crate::schema::SCHEMA_VERSION;
pub use crate::status::ZoneStatus;
pub use crate::store::{BilledWindow, OpenMode, Store};
pub use crate::target::{Engine, StoreTarget};
pub use crate::traffic_monitor::{DEFAULT_INCLUDE_ZONES, RegisteredTrafficMonitor};
