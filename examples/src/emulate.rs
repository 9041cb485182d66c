//! `emulate`: a Traffic Sentinel emulator over a flows CSV and/or sFlow
//! datagrams received over UDP (DESIGN §9, §13).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use traffic_sentinel_emulator::{
    Emulator, EmulatorOptions, Fault, FlowHistory, FlowReader, SflowIngest,
};
use usage_model::{Grid, ServerTimeZone};

use crate::cli::EmulateArgs;
use crate::commands::{Interrupt, runtime, write_stdout};
use crate::error::CliError;

/// Serves the Traffic Sentinel protocol until interrupted (Ctrl-C or
/// SIGTERM), then shuts down cleanly: with `--sflow-listen`, receiving stops
/// and the open bucket is recorded to `--record`.
///
/// # Errors
///
/// Before anything is served (exit 2): [`CliError::OpenInput`] or
/// [`CliError::Flows`] for the flows file, [`CliError::BadValue`] for a bad
/// granularity, zones file, default zone, fault list or record file line,
/// [`CliError::PasswordEnv`]. [`CliError::Emulator`] when an address cannot
/// be bound; [`CliError::Setup`] when the runtime or signal handlers cannot
/// be set up.
pub(crate) fn run(args: &EmulateArgs) -> Result<(), CliError> {
    check_faults(&args.fault)?;
    let grid = Grid::from_seconds(u64::from(args.granularity))
        .map_err(|e| CliError::BadValue(format!("--granularity: {e}")))?;
    let history = match &args.flows {
        Some(path) => load_flows(path, grid)?,
        None => FlowHistory::new(grid, []).map_err(CliError::Emulator)?,
    };
    let mut options = match &args.server_time_zone {
        Some(zone) => EmulatorOptions::new().server_time_zone(zone.clone()),
        None => EmulatorOptions::new().server_utc_offset(args.server_utc_offset),
    };
    if let (Some(user), Some(var)) = (&args.user, &args.password_env) {
        options = options.basic_auth(
            user.clone(),
            crate::collect::read_env(var, "--password-env")?,
        );
    }
    if let Some(listen) = args.sflow_listen {
        let mut ingest = SflowIngest::new(listen).zones(crate::sflow_import::zone_map(
            args.zones.as_deref(),
            &args.default_zone,
        )?);
        if let Some(record) = &args.record {
            ingest = ingest.record(record);
        }
        options = options.sflow(ingest);
    }
    runtime()?.block_on(async {
        // Handlers first: a signal right after the first line must not kill
        // the process uncleanly.
        let mut interrupt = Interrupt::new()?;
        let (flows, addresses, bytes) = (
            history.flow_count(),
            history.ips().len(),
            history.total_bytes(),
        );
        let emulator = Emulator::start(args.listen, history, options)
            .await
            .map_err(start_error)?;
        // Once started: a refusal before this is the only line on stderr.
        tracing::info!(flows, addresses, bytes, "flow history loaded");
        for &fault in &args.fault {
            emulator
                .faults()
                .set(fault, args.fault_times)
                .map_err(CliError::Emulator)?;
            tracing::warn!(?fault, times = ?args.fault_times, "fault injected");
        }
        write_stdout(format!("listening on http://{}\n", emulator.local_addr()).as_bytes())?;
        if let Some(sflow) = emulator.sflow_addr() {
            write_stdout(format!("sflow on udp://{sflow}\n").as_bytes())?;
        }
        interrupt.wait().await;
        let served = emulator.requests_served();
        emulator.shutdown().await;
        tracing::info!("interrupted after serving {served} query request(s)");
        Ok(())
    })
}

/// A server time zone by its IANA name, for `--server-time-zone`.
///
/// # Errors
///
/// The zone database's message for a name it does not hold.
pub(crate) fn parse_server_time_zone(text: &str) -> Result<ServerTimeZone, String> {
    ServerTimeZone::named(text.trim()).map_err(|e| e.to_string())
}

/// One delay may combine with one other fault; a second of either kind
/// would silently replace the first.
fn check_faults(faults: &[Fault]) -> Result<(), CliError> {
    let delays = faults
        .iter()
        .filter(|f| matches!(f, Fault::Delay(_)))
        .count();
    if delays > 1 || faults.len() - delays > 1 {
        return Err(CliError::BadValue(format!(
            "--fault given {} times: at most one delay=DUR and one other fault combine",
            faults.len()
        )));
    }
    Ok(())
}

/// The flow history of the flows file, streamed from it; all or nothing.
///
/// # Errors
///
/// [`CliError::OpenInput`] when the file cannot be opened;
/// [`CliError::Flows`] naming the first bad line and field, or a byte total
/// that overflows.
fn load_flows(path: &Path, grid: Grid) -> Result<FlowHistory, CliError> {
    let file = File::open(path).map_err(|source| CliError::OpenInput {
        what: "flows",
        path: path.to_owned(),
        source,
    })?;
    let mut reader = FlowReader::new(BufReader::new(file));
    let mut failure = None;
    let flows = std::iter::from_fn(|| match reader.next()? {
        Ok(flow) => Some(flow),
        Err(error) => {
            failure = Some(error);
            None
        }
    });
    let history = FlowHistory::new(grid, flows);
    let flows_error = |source| CliError::Flows {
        path: path.to_owned(),
        source,
    };
    if let Some(source) = failure {
        return Err(flows_error(source));
    }
    match history {
        // The flows are read one at a time: the line read last holds the
        // flow whose bytes overflowed.
        Err(traffic_sentinel_emulator::Error::ByteOverflow { bytes, .. }) => {
            Err(CliError::BadValue(format!(
                "flows file {}: line {}: field \"bytes\": {bytes} takes the byte total of the flows past 2^64 - 1",
                path.display(),
                reader.line_number()
            )))
        }
        history => history.map_err(flows_error),
    }
}

/// A refusal of the emulator as the command's error: a bad or unreadable
/// record file is bad input (exit 2).
fn start_error(error: traffic_sentinel_emulator::Error) -> CliError {
    match error {
        traffic_sentinel_emulator::Error::RecordFile { path, source } => CliError::OpenInput {
            what: "record",
            path,
            source,
        },
        error @ traffic_sentinel_emulator::Error::RecordLine { .. } => {
            CliError::BadValue(error.to_string())
        }
        error => CliError::Emulator(error),
    }
}
