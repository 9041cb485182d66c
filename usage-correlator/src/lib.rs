//! The sans-IO core of guest-network usage billing: who held which address
//! when, what to ask Traffic Sentinel, and how its answer becomes usage
//! records and the next checkpoint.
//!
//! This crate performs no I/O. It takes events and answers and hands back
//! plans, records and a checkpoint; fetching traffic and persisting records
//! (with the checkpoint, in one transaction) are the caller's job.
//!
//! ```
//! use time::Duration;
//! use time::macros::datetime;
//! use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan, Schedule};
//! use usage_model::{AccountId, ByteCounts, IpEvent, IpEventKind, TrafficAnswer, ZoneId};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let zone = ZoneId::new("zone-1")?;
//! let ip = "203.0.113.7".parse()?;
//! let event = |id, at, account: &str, kind| -> Result<IpEvent, usage_model::Error> {
//!     Ok(IpEvent { id, at, zone: zone.clone(), account: AccountId::new(account)?, ip, kind })
//! };
//!
//! // 1. The event log: acct-a holds the address until 02:00, acct-b from then.
//! let ledger = OwnershipLedger::from_events(
//!     LedgerOptions::new(),
//!     [
//!         event(1, datetime!(2026-10-30 09:00 UTC), "acct-a", IpEventKind::Assign)?,
//!         event(2, datetime!(2026-11-01 02:00 UTC), "acct-a", IpEventKind::Release)?,
//!         event(3, datetime!(2026-11-01 02:00 UTC), "acct-b", IpEventKind::Assign)?,
//!     ],
//! );
//!
//! // 2. The window due: from the checkpoint to now minus the settle lag.
//! let schedule = Schedule::new(); // 1 h grid, 2 h lag, 1 day windows
//! let windows: Vec<_> = schedule
//!     .due_windows(datetime!(2026-11-01 00:00 UTC), datetime!(2026-11-01 08:15 UTC))?
//!     .collect();
//! assert_eq!(windows.len(), 1); // [00:00, 06:00)
//!
//! // 3. The plan: one query per distinct [start, end).
//! let plan = QueryPlan::new(&ledger, &zone, windows[0], schedule.get_grid())?;
//! assert_eq!(plan.query_count(), 2);
//!
//! // 4. Traffic Sentinel's answer (here made up): bytes per (query tag, ip).
//! let mut answer = TrafficAnswer::new();
//! for query in plan.queries() {
//!     for &ip in &query.ips {
//!         answer.insert(query.tag, ip, ByteCounts { sent: 1_000, received: 20 })?;
//!     }
//! }
//!
//! // 5. The join: one record per holding with traffic, and the next checkpoint.
//! let outcome = plan.join(&answer)?;
//! let billed: Vec<_> = outcome
//!     .records
//!     .iter()
//!     .map(|r| (r.account.as_str(), r.start.hour(), r.end.hour(), r.bytes_sent))
//!     .collect();
//! assert_eq!(billed, [("acct-a", 0, 2, 1_000), ("acct-b", 2, 6, 1_000)]);
//! assert_eq!(outcome.checkpoint.at, datetime!(2026-11-01 06:00 UTC));
//! # Ok(())
//! # }
//! ```
//!
//! # Concepts
//!
//! - [`OwnershipLedger`]: per `(zone, ip)` ownership timelines built from
//!   assign/release events in any order, duplicates allowed, incrementally or
//!   at once; every irregularity is an [`Anomaly`].
//! - [`QueryPlan`]: the holdings of one zone in one [`CollectionWindow`],
//!   floored to the Traffic Sentinel grid and grouped into tagged
//!   [`TrafficQuery`]s.
//! - [`QueryPlan::join`]: the answer ([`TrafficAnswer`]) joined back to the
//!   holdings, giving a [`CycleOutcome`]: [`UsageRecord`]s, per-account totals
//!   (usage types 4 and 5) and the next [`Checkpoint`].
//! - [`Schedule`]: the grid-aligned windows still to collect.
//!
//! # Billing on the grid
//!
//! Traffic Sentinel keeps bytes in buckets of `g` (the grid). Every boundary
//! sent to it is floored to the grid, so each bucket of each address is
//! billed to exactly one account: the one holding the address at the bucket's
//! last instant, or nobody. Windows lie on the grid too, so cycles tile time
//! with no gap and no overlap, and collecting `[a, c)` at once bills the same
//! bytes to the same accounts as `[a, b)` then `[b, c)`.
//!
//! [`CollectionWindow`]: usage_model::CollectionWindow
//! [`TrafficQuery`]: usage_model::TrafficQuery
//! [`TrafficAnswer`]: usage_model::TrafficAnswer
//! [`UsageRecord`]: usage_model::UsageRecord
//! [`Checkpoint`]: usage_model::Checkpoint

mod anomaly;
mod digest;
mod display;
mod error;
mod ledger;
mod plan;
mod replay;
mod schedule;

pub use crate::anomaly::{Anomaly, AnomalyKind};
pub use crate::digest::{Digest, ParseDigestError};
pub use crate::error::Error;
pub use crate::ledger::{EventLogDigester, LateEventFinder, LedgerOptions, OwnershipLedger};
pub use crate::plan::{CycleOutcome, QueryPlan};
pub use crate::schedule::{Schedule, Windows};
