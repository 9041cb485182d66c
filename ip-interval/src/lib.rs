//! Half-open interval algebra, generic over the time type.
//!
//! ```
//! use ip_interval::{GridPoint, Interval, IntervalSet, Timeline};
//!
//! let iv = |s, e| Interval::new(s, e).unwrap();
//!
//! // Half-open: `[8, 12)` and `[12, 13)` touch but do not overlap.
//! assert!(!iv(8, 12).overlaps(&iv(12, 13)));
//!
//! // Who held an address, and when. Overlapping holdings are refused.
//! let mut holders = Timeline::new();
//! holders.insert(iv(0, 12), "acct-1")?;
//! holders.insert(iv(12, 30), "acct-2")?;
//! assert!(holders.insert(iv(20, 40), "acct-3").is_err());
//!
//! // The holdings inside a billing window, clipped to it.
//! let window = iv(10, 20);
//! let billed: Vec<_> = holders.pieces(window).collect();
//! assert_eq!(billed, [(iv(10, 12), &"acct-1"), (iv(12, 20), &"acct-2")]);
//!
//! // Window boundaries snap down to the collector's grid.
//! assert_eq!(37_i64.floor_to(10), Some(30));
//!
//! // Sets of points in one canonical form.
//! let covered: IntervalSet<i64> = holders.iter().map(|(held, _)| held).collect();
//! assert_eq!(covered.intervals(), &[iv(0, 30)]);
//! # Ok::<(), ip_interval::Error>(())
//! ```
//!
//! # Concepts
//!
//! - [`Interval<T>`]: a half-open interval `[start, end)` over any `Ord + Copy`
//!   point type (integers, `time::OffsetDateTime`, …). A release at 10:00 and
//!   the next assign at 10:00 do not overlap.
//! - [`IntervalSet<T>`]: a set of points kept as sorted, disjoint,
//!   non-adjacent intervals, with union, intersection, difference and
//!   complement within bounds in linear time.
//! - [`Timeline<T, V>`]: non-overlapping intervals that each carry a value
//!   (the owner); [`KeyedTimelines<K, T, V>`] holds one per key (an IP
//!   address). Inserting an overlapping interval is an [`Error::Overlap`] that
//!   names both intervals.
//! - [`GridPoint`]: flooring (and ceiling) of points to a grid given by a
//!   step, anchored at zero for integers and at the Unix epoch in UTC for
//!   `time::OffsetDateTime`; times come back in UTC.
//!
//! # Features
//!
//! - `time` (default): [`GridPoint`] for `time::OffsetDateTime`.
//! - `serde`: `Serialize`/`Deserialize` for [`Interval`], [`IntervalSet`],
//!   [`Timeline`] and [`KeyedTimelines`]. Deserializing checks every
//!   invariant: no interval with `start > end`, sets brought to canonical
//!   form, no overlapping pieces in a timeline.

mod error;
mod grid;
mod interval;
mod set;
mod timeline;

pub use crate::error::Error;
pub use crate::grid::GridPoint;
pub use crate::interval::Interval;
pub use crate::set::IntervalSet;
pub use crate::timeline::{KeyedTimelines, Timeline};
