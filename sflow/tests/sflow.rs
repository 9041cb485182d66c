//! The `sflow` crate's integration tests: every shared capture against
//! tshark's decode, fuzzing, the encoder round trip, captures, zones and
//! aggregation.

#[path = "sflow/aggregation.rs"]
mod aggregation;
#[path = "sflow/capture.rs"]
mod capture;
#[path = "sflow/fuzz.rs"]
mod fuzz;
#[path = "sflow/round_trip.rs"]
mod round_trip;
#[path = "sflow/shared.rs"]
mod shared;
#[path = "sflow/tshark.rs"]
mod tshark;
#[path = "sflow/zones.rs"]
mod zones;
