//! The one error type of the command-line tool.

use std::io;

use crate::store::StoreError;

/// Why a command failed; shown to the user as one `error: …` line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// The command exists in the interface but is not available in this build.
    #[error("the {0} command is not available in this build")]
    NotBuilt(&'static str),
    /// The SQLite store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sum of stored byte counts does not fit in 64 bits.
    #[error("{what} of {key} overflows a 64-bit byte count")]
    TotalOverflow {
        /// Which sum: `"bytes_sent"` or `"bytes_received"`.
        what: &'static str,
        /// The row whose sum overflowed, e.g. `zone-1/acct-42` or `TOTAL`.
        key: String,
    },
    /// The environment variable named by `--password-env` is missing or not UTF-8.
    #[error("environment variable {var} named by --password-env {reason}")]
    PasswordEnv {
        /// The variable's name.
        var: String,
        /// `"is not set"` or `"is not valid unicode"`.
        reason: &'static str,
    },
    /// Writing to standard output failed.
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] io::Error),
}
