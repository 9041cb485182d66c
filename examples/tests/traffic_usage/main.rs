//! The `traffic-usage` binary driven as a user or a script would: one test
//! binary, one module per concern.
//!
//! Every test runs the built binary against an emulator on loopback and
//! reads what it stored only through the binary's own read-only outputs
//! (`report`, `status`); the CloudStack tests also read CloudStack's own
//! `user_statistics`, which the binary writes and does not report. Tests
//! that bill run on every store engine reachable here (SQLite always;
//! PostgreSQL and MySQL/MariaDB on 127.0.0.1, see [`support::stores`]) and
//! expect the same answers from each; the CloudStack tests need MySQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod cloudstack;
mod end_to_end;
mod late_events;
mod no_silent_loss;
mod reliability;
mod run_command;
mod settings;
mod sflow_emulate;
mod sflow_import;
mod support;
