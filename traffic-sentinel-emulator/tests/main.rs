//! The emulator's integration tests, in one binary: its HTTP server and
//! fault injection, the exact requests Apache CloudStack sends, hostile
//! input at every entry point, and live sFlow ingest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "emulator/cloudstack.rs"]
mod cloudstack;
#[path = "emulator/hostile.rs"]
mod hostile;
#[path = "emulator/server.rs"]
mod server;
#[path = "emulator/sflow_ingest.rs"]
mod sflow_ingest;
