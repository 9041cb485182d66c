use std::fmt;

/// The error type of this crate.
///
/// Every variant carries the offending values, rendered with `Debug`, so the
/// message says exactly what was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An interval was built with its start after its end.
    StartAfterEnd {
        /// The start that was given, as `Debug` text.
        start: String,
        /// The end that was given, as `Debug` text.
        end: String,
    },
    /// An interval inserted into a [`Timeline`](crate::Timeline) overlaps one
    /// it already holds.
    Overlap {
        /// The key of the timeline, as `Debug` text; `None` only while the
        /// timeline is not yet tied to a key (deserializing a lone
        /// [`Timeline`](crate::Timeline)).
        key: Option<String>,
        /// The interval that was refused, as `Debug` text.
        new: String,
        /// The interval already held that it overlaps, as `Debug` text.
        existing: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::StartAfterEnd { start, end } => {
                write!(f, "interval start {start} is after its end {end}")
            }
            Error::Overlap {
                key: None,
                new,
                existing,
            } => {
                write!(
                    f,
                    "interval {new} overlaps the interval {existing} already held"
                )
            }
            Error::Overlap {
                key: Some(key),
                new,
                existing,
            } => write!(
                f,
                "interval {new} for key {key} overlaps the interval {existing} already held"
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn overlap_message_names_both_intervals_and_the_key() {
        let err = Error::Overlap {
            key: Some("10.0.0.1".to_owned()),
            new: "[3, 7)".to_owned(),
            existing: "[5, 9)".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "interval [3, 7) for key 10.0.0.1 overlaps the interval [5, 9) already held"
        );
        let err = Error::Overlap {
            key: None,
            new: "[3, 7)".to_owned(),
            existing: "[5, 9)".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "interval [3, 7) overlaps the interval [5, 9) already held"
        );
    }

    #[test]
    fn start_after_end_message_carries_both_points() {
        let err = Error::StartAfterEnd {
            start: "5".to_owned(),
            end: "1".to_owned(),
        };
        assert_eq!(err.to_string(), "interval start 5 is after its end 1");
    }
}
