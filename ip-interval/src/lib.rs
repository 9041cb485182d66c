//! Half-open interval algebra, generic over the time type.
//!
//! ```
//! use ip_interval::Interval;
//!
//! let morning = Interval::new(8, 12).unwrap();
//! let lunch = Interval::new(12, 13).unwrap();
//! // Half-open: `[8, 12)` and `[12, 13)` touch but do not overlap.
//! assert!(!morning.overlaps(&lunch));
//! assert_eq!(morning.intersection(&Interval::new(10, 20).unwrap()), Some(Interval::new(10, 12).unwrap()));
//! ```

mod error;
mod grid;
mod interval;

pub use crate::error::Error;
pub use crate::grid::GridPoint;
pub use crate::interval::Interval;
