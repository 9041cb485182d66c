//! The client's integration tests, in one binary: against a scripted HTTP
//! server (exact requests, retries, timeouts, limits), against the real
//! emulator (answers checked with the flows put in), every fault in one
//! table, windows across a daylight-saving fold, and the blocking client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "blocking")]
#[path = "client/blocking.rs"]
mod blocking;
#[path = "client/emulator.rs"]
mod emulator;
#[path = "client/faults.rs"]
mod faults;
#[path = "client/fold.rs"]
mod fold;
#[path = "client/http.rs"]
mod http;
#[path = "client/support.rs"]
mod support;
