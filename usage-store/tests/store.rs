//! The integration tests of `usage-store`: each runs against every engine
//! reachable here (see `engines`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "store/cloud_database.rs"]
mod cloud_database;
#[path = "store/cloudstack.rs"]
mod cloudstack;
#[path = "store/cloudstack_events.rs"]
mod cloudstack_events;
#[path = "store/commit.rs"]
mod commit;
#[path = "store/engines.rs"]
mod engines;
#[path = "store/fixtures.rs"]
mod fixtures;
#[path = "store/open.rs"]
mod open;
#[path = "store/reports.rs"]
mod reports;
#[path = "store/restate.rs"]
mod restate;
#[path = "store/stories.rs"]
mod stories;
#[path = "store/traffic_monitor.rs"]
mod traffic_monitor;
