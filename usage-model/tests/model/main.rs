//! Integration tests of `usage-model`, through its public API only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod answer;
mod events;
mod types;
