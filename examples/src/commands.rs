//! The commands: each takes its parsed flags and writes its data to standard
//! output.

use std::io::{self, Write};

use crate::cli::{CollectArgs, DemoArgs, EmulateArgs, PlanArgs, ReportArgs};
use crate::error::CliError;
use crate::report::Report;
use crate::store::Store;

/// `demo`: the self-checking demonstration against an in-process emulator.
///
/// # Errors
///
/// [`CliError::NotBuilt`]: this build has no demo.
pub(crate) fn demo(_args: &DemoArgs) -> Result<(), CliError> {
    Err(CliError::NotBuilt("demo"))
}

/// `emulate`: serves the Traffic Sentinel protocol over a flows file.
///
/// # Errors
///
/// [`CliError::NotBuilt`]: this build has no emulator.
pub(crate) fn emulate(_args: &EmulateArgs) -> Result<(), CliError> {
    Err(CliError::NotBuilt("emulate"))
}

/// `collect`: runs collection windows into the database until caught up.
///
/// # Errors
///
/// [`CliError::NotBuilt`]: this build has no collector.
pub(crate) fn collect(_args: &CollectArgs) -> Result<(), CliError> {
    Err(CliError::NotBuilt("collect"))
}

/// `plan`: prints the query plan and scripts, without network.
///
/// # Errors
///
/// [`CliError::NotBuilt`]: this build has no planner.
pub(crate) fn plan(_args: &PlanArgs) -> Result<(), CliError> {
    Err(CliError::NotBuilt("plan"))
}

/// `report`: prints the stored usage of an existing database.
///
/// # Errors
///
/// [`CliError::Store`] when the database is missing, not ours or corrupt;
/// [`CliError::TotalOverflow`] when a sum overflows; [`CliError::Stdout`] when
/// standard output cannot be written (a closed pipe is not an error).
pub(crate) fn report(args: &ReportArgs) -> Result<(), CliError> {
    let store = Store::open_existing(&args.db)?;
    let records = store.records(args.zone.as_ref())?;
    let text = Report::build(&records, args.by)?.render(args.format)?;
    write_stdout(text.as_bytes())
}

/// Writes data to standard output; a reader that went away (`| head`) is fine.
pub(crate) fn write_stdout(data: &[u8]) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(data).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Stdout(e)),
        _ => Ok(()),
    }
}
