//! The one error type of the command-line tool.

use std::io;
use std::path::PathBuf;

use time::OffsetDateTime;
use usage_model::ZoneId;

use crate::units::format_time;
use usage_store::StoreError;

/// Why a command failed; shown to the user as one `error: …` line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// The store, or a collection through it, failed.
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
    #[error("environment variable {var} named by {flag} {reason}")]
    PasswordEnv {
        /// The variable's name.
        var: String,
        /// The flag that named it.
        flag: &'static str,
        /// `"is not set"` or `"is not valid unicode"`.
        reason: &'static str,
    },
    /// Writing to standard output failed.
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] io::Error),
    /// An input file could not be opened.
    #[error("cannot open {what} file {path}: {source}")]
    OpenInput {
        /// `"events"` or `"flows"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The events file holds a bad line; nothing was loaded.
    #[error("events file {path}: {source}")]
    Events {
        /// The file.
        path: PathBuf,
        /// The first bad line, by number and field.
        source: usage_model::Error,
    },
    /// The flows file holds a bad line; nothing was loaded.
    #[error("flows file {path}: {source}")]
    Flows {
        /// The file.
        path: PathBuf,
        /// The first bad line, by number and field.
        source: traffic_sentinel_emulator::Error,
    },
    /// The monitor settings were refused by the client.
    #[error("monitor configuration: {0}")]
    Monitor(#[source] traffic_sentinel_client::Error),
    /// The billing core refused a schedule, window or answer.
    #[error(transparent)]
    Correlator(#[from] usage_correlator::Error),
    /// Traffic Sentinel could not be asked, or its answer was refused, or
    /// the queries could not be planned into requests.
    #[error("{0}")]
    Client(#[source] traffic_sentinel_client::Error),
    /// The emulator could not be started or configured.
    #[error("emulator: {0}")]
    Emulator(#[source] traffic_sentinel_emulator::Error),
    /// The async runtime, the temporary directory or the signal handlers
    /// could not be set up.
    #[error("cannot set up {what}: {source}")]
    Setup {
        /// What was being set up.
        what: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The demo's synthetic data could not be built.
    #[error("cannot build the demo data: {0}")]
    DemoData(#[source] usage_model::Error),
    /// The demo's billed bytes differ from the bytes of owned buckets.
    #[error("conservation check failed: {0}")]
    Conservation(String),
    /// `demo --sflow`: the datagrams could not be sent, or the emulator did
    /// not aggregate exactly what was sent (datagrams, samples, bytes per
    /// address).
    #[error("demo over sflow: {0}")]
    DemoSflow(String),
    /// The zone asked for appears in no event of the log: a typo must not
    /// bill nothing successfully.
    #[error("zone {zone} appears in no event of {source_name}; the zones it holds are: {}", list_zones(.known))]
    UnknownZone {
        /// The zone asked for.
        zone: ZoneId,
        /// Where the events came from.
        source_name: String,
        /// The zones the log holds.
        known: Vec<ZoneId>,
    },
    /// A Traffic Sentinel zone is both included and excluded: the filter
    /// could never match and every window would bill zero.
    #[error(
        "zone {0} is given in both --include-zones and --exclude-zones; no traffic could match"
    )]
    ZoneIncludedAndExcluded(String),
    /// `--from` is not before `--until`.
    #[error("--from {} is not before --until {}", format_time(*.from), format_time(*.until))]
    FromNotBeforeUntil {
        /// The start asked for.
        from: OffsetDateTime,
        /// The end asked for.
        until: OffsetDateTime,
    },
    /// Captures that could not be read (the others' flows were written).
    #[error("{} capture(s) could not be read: {}", .0.len(), .0.join(", "))]
    Captures(Vec<String>),
    /// The `run` configuration could not be read (one line naming the
    /// file, the line and the key).
    #[error("{0}")]
    Config(String),
    /// A `run --once` pass in which zones failed.
    #[error("{0} zone(s) failed in this pass")]
    PassFailed(usize),
    /// A flag's value was refused after parsing (the message never shows a
    /// password).
    #[error("{0}")]
    BadValue(String),
}

impl CliError {
    /// The exit status for this error (DESIGN §9): 2 for bad input or flags,
    /// 1 when a collection step (or anything else at run time) failed.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::OpenInput { .. }
            | CliError::Events { .. }
            | CliError::Flows { .. }
            | CliError::PasswordEnv { .. }
            | CliError::Monitor(_)
            | CliError::UnknownZone { .. }
            | CliError::ZoneIncludedAndExcluded(_)
            | CliError::FromNotBeforeUntil { .. }
            | CliError::BadValue(_)
            | CliError::Config(_)
            | CliError::Correlator(
                usage_correlator::Error::UntilNotSettled { .. }
                | usage_correlator::Error::MaxWindowBelowGrid { .. }
                | usage_correlator::Error::NegativeSettleLag { .. },
            ) => 2,
            CliError::Store(error) => store_exit_code(error),
            _ => 1,
        }
    }
}

/// Exit status 2 for a store error that says the input was wrong (the
/// target, the zone's state, the settings, the range), 1 otherwise.
fn store_exit_code(error: &StoreError) -> u8 {
    match error {
        StoreError::InvalidTarget { .. }
        | StoreError::Missing { .. }
        | StoreError::Foreign { .. }
        | StoreError::SchemaTooNew { .. }
        | StoreError::SchemaOutdated { .. }
        | StoreError::NoStart { .. }
        | StoreError::CheckpointOffGrid { .. }
        | StoreError::SettingsChanged { .. }
        | StoreError::RestateRange { .. }
        | StoreError::CloudStackNeedsMySql { .. }
        | StoreError::CloudStackDatabase { .. }
        | StoreError::NotCloudStackId { .. }
        | StoreError::NoTrafficMonitor { .. }
        // CloudStack's own tables are input: a registry or an event row
        // that CloudStack would not leave is bad input, not a failed step.
        | StoreError::Corrupt {
            table: "host" | "host_details" | "usage_event",
            ..
        }
        | StoreError::Plan(
            usage_correlator::Error::UntilNotSettled { .. }
            | usage_correlator::Error::MaxWindowBelowGrid { .. }
            | usage_correlator::Error::NegativeSettleLag { .. },
        ) => 2,
        _ => 1,
    }
}

/// `a, b, c`, or `none` for an empty list.
fn list_zones(zones: &[ZoneId]) -> String {
    if zones.is_empty() {
        return "none (the log is empty)".to_owned();
    }
    zones
        .iter()
        .map(ZoneId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of CloudStack's own tables that CloudStack would not leave is
    /// bad input (exit 2); a corrupt row of the store is a failed step.
    #[test]
    fn corrupt_cloudstack_rows_are_bad_input() {
        let corrupt = |table| {
            CliError::Store(StoreError::Corrupt {
                table,
                key: "8, 10".to_owned(),
                column: "data_center_id",
                reason: "zone 4 has 2 live traffic monitors".to_owned(),
            })
        };
        for table in ["host", "host_details", "usage_event"] {
            assert_eq!(corrupt(table).exit_code(), 2, "{table}");
        }
        assert_eq!(corrupt("usage_records").exit_code(), 1);
    }
}
