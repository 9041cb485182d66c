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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::StartAfterEnd { start, end } => {
                write!(f, "interval start {start} is after its end {end}")
            }
        }
    }
}

impl std::error::Error for Error {}
