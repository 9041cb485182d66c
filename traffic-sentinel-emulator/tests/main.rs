//! The emulator's integration tests, in one binary: its HTTP server and
//! fault injection, the exact requests Apache CloudStack sends, and hostile
//! input at every entry point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "emulator/cloudstack.rs"]
mod cloudstack;
#[path = "emulator/hostile.rs"]
mod hostile;
#[path = "emulator/server.rs"]
mod server;
