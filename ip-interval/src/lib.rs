//! Half-open interval algebra, generic over the time type.
//!
//! ```
//! use ip_interval::{GridPoint, Interval, KeyedTimelines};
//!
//! let iv = |s, e| Interval::new(s, e).unwrap();
//!
//! // Half-open: `[8, 12)` holds 8 but not 12.
//! assert!(iv(8, 12).contains(8) && !iv(8, 12).contains(12));
//!
//! // Who held each address, and when. Overlapping holdings are refused.
//! let ip = "203.0.113.7";
//! let mut holders = KeyedTimelines::new();
//! holders.insert(ip, iv(0, 12), "acct-1")?;
//! holders.insert(ip, iv(12, 30), "acct-2")?; // abutting is fine
//! assert!(holders.insert(ip, iv(20, 40), "acct-3").is_err());
//! assert_eq!(holders.at(ip, 12), Some(&"acct-2"));
//!
//! // The holdings inside a billing window, clipped to it.
//! let window = iv(10, 20);
//! let billed: Vec<_> = holders.pieces(window).collect();
//! assert_eq!(billed, [(&ip, iv(10, 12), &"acct-1"), (&ip, iv(12, 20), &"acct-2")]);
//!
//! // Window boundaries snap down to the collector's grid.
//! assert_eq!(37_i128.floor_to(10), Some(30));
//! # Ok::<(), ip_interval::Error>(())
//! ```
//!
//! # Concepts
//!
//! - [`Interval<T>`]: a half-open interval `[start, end)` over any `Ord + Copy`
//!   point type (integers, `time::OffsetDateTime`, …). A release at 10:00 and
//!   the next assign at 10:00 do not overlap.
//! - [`KeyedTimelines<K, T, V>`]: per key (an IP address), a [`Timeline<T, V>`]
//!   of non-overlapping intervals that each carry a value (the owner).
//!   Inserting an overlapping interval is an [`Error::Overlap`] that names
//!   both intervals and the key.
//! - [`GridPoint`]: flooring (and ceiling) of points to a grid given by a
//!   step, anchored at zero for integers (`i128`) and at the Unix epoch in
//!   UTC for `time::OffsetDateTime`; times come back in UTC.
//!
//! # Features
//!
//! - `time` (default): [`GridPoint`] for `time::OffsetDateTime`.
//! - `serde`: `Serialize`/`Deserialize` for [`Interval`], [`Timeline`] and
//!   [`KeyedTimelines`]. Deserializing checks every invariant: no interval
//!   with `start > end`, no overlapping pieces in a timeline.

mod error;
mod grid;
mod interval;
mod timeline;

pub use crate::error::Error;
pub use crate::grid::GridPoint;
pub use crate::interval::Interval;
pub use crate::timeline::{KeyedTimelines, Timeline};
