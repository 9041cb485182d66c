//! Benchmark support for the traffic-usage workspace.
