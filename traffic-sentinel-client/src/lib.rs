//! A client for the query protocol of inMon Traffic Sentinel (TS).
//!
//! Queries ([`TrafficQuery`]: a tag, a grid-aligned interval, addresses) are
//! planned into as few HTTP requests as the size limits allow
//! ([`plan_requests`]); each request carries a script built only from typed
//! values (addresses, validated zone names, formatted times); the answer is
//! parsed strictly ([`parse_answer`]): every line is a row of the request or
//! the final sentinel, anything else is an error naming the line.
//!
//! ```
//! use time::macros::{datetime, offset};
//! use traffic_sentinel_client::{plan_requests, MonitorConfig};
//! use usage_model::{QueryTag, TimeInterval, TrafficQuery};
//!
//! let config = MonitorConfig::builder("http://10.147.28.100:8080")
//!     .include_zones(["EXTERNAL"])
//!     .server_utc_offset(offset!(-08:00))
//!     .build()?;
//! let query = TrafficQuery {
//!     tag: QueryTag(7),
//!     interval: TimeInterval::new(
//!         datetime!(2026-11-01 10:00 UTC),
//!         datetime!(2026-11-01 11:00 UTC),
//!     )
//!     .unwrap(),
//!     ips: vec!["203.0.113.7".parse().unwrap(), "2001:db8::1".parse().unwrap()],
//! };
//! let requests = plan_requests(&config, &[query])?;
//! assert_eq!(requests.len(), 1);
//! // The server reads times in its own offset: 10:00 UTC is 02:00 at -08:00.
//! assert!(requests[0].script().contains("\"20261101 02:00:00, 20261101 03:00:00\""));
//! println!("POST {}\n{}", config.query_url(), requests[0].script());
//! # Ok::<(), traffic_sentinel_client::Error>(())
//! ```
//!
//! [`TrafficSentinelClient`] sends the requests (with timeouts, retries and a
//! bound on the answer size); with the `blocking` feature,
//! `blocking::TrafficSentinelClient` does the same without an async runtime.

mod answer;
#[cfg(feature = "blocking")]
pub mod blocking;
mod client;
mod config;
mod error;
mod plan;
mod request;
mod script;

pub use crate::answer::{AnswerRow, parse_answer, parse_answer_rows};
pub use crate::client::{FetchOutcome, TrafficSentinelClient};
pub use crate::config::{MonitorConfig, MonitorConfigBuilder, TsZone};
pub use crate::error::Error;
pub use crate::plan::plan_requests;
pub use crate::request::{QueryChunk, ScriptRequest};

#[doc(no_inline)]
pub use url::Url;
#[doc(no_inline)]
pub use usage_model::{ByteCounts, QueryTag, Side, TimeInterval, TrafficAnswer, TrafficQuery};
