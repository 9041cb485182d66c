//! The integration tests of `usage-correlator`, in one binary: the billing
//! laws (property tests), the comparison with a naive reference model, and
//! the billing stories of `testdata/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod digests;
mod laws;
mod reference;
mod stories;
