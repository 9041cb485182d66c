//! The commands: each takes its parsed flags and writes its data to standard
//! output.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;

use time::OffsetDateTime;
use traffic_sentinel_client::{MonitorConfig, MonitorConfigBuilder};

use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan, Schedule};
use usage_model::{AccountId, EventReader, Grid, ZoneId};

use crate::cli::{BillingArgs, DemoArgs, EmulateArgs, PlanArgs, ReportArgs, StatusArgs};
use crate::collect::store_target;
use crate::error::CliError;
use crate::events_source::{EventsSource, LoadedEvents};
use crate::report::{print_report, print_status};
use crate::units::{check_monitor_url, format_time};
use usage_store::{OpenMode, ReportFilter, Store};

/// `demo`: the self-checking demonstration against an in-process emulator.
///
/// # Errors
///
/// As [`crate::demo::run`].
pub(crate) fn demo(args: &DemoArgs) -> Result<(), CliError> {
    crate::demo::run(args)
}

/// `emulate`: as [`crate::emulate::run`].
pub(crate) fn emulate(args: &EmulateArgs) -> Result<(), CliError> {
    crate::emulate::run(args)
}

/// `plan`: prints, for each window, the query plan and every request (its
/// URL and exact script), without any network access.
///
/// # Errors
///
/// [`CliError::OpenInput`] or [`CliError::Events`] for the events file,
/// [`CliError::Monitor`] for bad monitor settings, [`CliError::Correlator`]
/// for a bad schedule, [`CliError::Client`] when queries cannot be planned
/// into requests, [`CliError::Stdout`].
pub(crate) fn plan(args: &PlanArgs) -> Result<(), CliError> {
    check_monitor_url(&args.monitor).map_err(CliError::BadValue)?;
    check_billing(&args.billing)?;
    if args.from >= args.until {
        return Err(CliError::FromNotBeforeUntil {
            from: args.from,
            until: args.until,
        });
    }
    let source = EventsSource {
        text: &args.events,
        password_env: args.events_password_env.as_deref(),
        resource_type: &args.cloudstack_resource_type,
    };
    let loaded = source.ledger(
        &args.billing.exclude_accounts,
        std::slice::from_ref(&args.zone),
    )?;
    check_zone_known(&loaded, &args.zone, &source.name())?;
    let ledger = loaded.ledger;
    note_floored("--from", args.from, args.billing.granularity);
    note_floored("--until", args.until, args.billing.granularity);
    let config = monitor_config(&args.monitor, &args.billing)
        .build()
        .map_err(CliError::Monitor)?;
    let grid = args.billing.granularity;
    let windows = Schedule::new()
        .max_window(args.billing.max_window)
        .grid(grid)
        .windows_between(args.from, args.until)?;
    let header = format!(
        "plan of zone {} from {} to {}: {} window(s) on a {} s grid; requests go to POST {}\n",
        args.zone,
        format_time(args.from),
        format_time(args.until),
        windows.clone().count(),
        grid.seconds(),
        config.query_url()
    );
    write_stdout(header.as_bytes())?;
    // One window at a time: the output streams, memory stays flat however
    // long the span.
    for window in windows {
        let plan = QueryPlan::new(&ledger, &args.zone, window, grid)?;
        let requests = traffic_sentinel_client::plan_requests(&config, plan.queries())
            .map_err(CliError::Client)?;
        let mut out = String::new();
        write_plan(&mut out, &plan, &requests, &config);
        write_stdout(out.as_bytes())?;
    }
    Ok(())
}

/// Appends one window's plan and requests to `out`.
fn write_plan(
    out: &mut String,
    plan: &QueryPlan,
    requests: &[traffic_sentinel_client::ScriptRequest],
    config: &MonitorConfig,
) {
    let window = plan.window();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "\nwindow {}..{}: {} piece(s), {} group(s), {} ip(s), {} anomaly(ies), {} request(s)",
        format_time(window.start()),
        format_time(window.end()),
        plan.piece_count(),
        plan.query_count(),
        plan.ip_count(),
        plan.anomalies().len(),
        requests.len()
    );
    for query in plan.queries() {
        let _ = writeln!(
            out,
            "  query {}  {}..{}  {} ip(s)",
            query.tag,
            format_time(query.interval.start()),
            format_time(query.interval.end()),
            query.ips.len()
        );
        for &ip in &query.ips {
            let account = plan
                .piece(query.tag, ip)
                .map_or("?", |piece| piece.account.as_str());
            let _ = writeln!(out, "    {ip}  {account}");
        }
    }
    for anomaly in plan.anomalies() {
        let _ = writeln!(out, "  anomaly {anomaly}");
    }
    if plan.is_empty() {
        let _ = writeln!(
            out,
            "  nothing held: no request; the window still moves the checkpoint"
        );
    }
    let count = requests.len();
    for (number, request) in requests.iter().enumerate() {
        let number = number + 1;
        let _ = writeln!(
            out,
            "--- request {number}/{count}: POST {} ({} chunk(s), {} ip(s)); script:",
            config.query_url(),
            request.chunks().len(),
            request.ip_count()
        );
        out.push_str(request.script());
        if !request.script().ends_with('\n') {
            out.push('\n');
        }
        let _ = writeln!(out, "--- end of request {number}/{count}");
    }
}

/// `report`: prints stored usage, anomalies or adjustments, streaming from
/// the store opened read-only.
///
/// # Errors
///
/// [`CliError::Store`] when the store is missing, not ours, of a newer
/// schema or fails; [`CliError::Stdout`] (a closed pipe is not an error).
pub(crate) fn report(args: &ReportArgs) -> Result<(), CliError> {
    let target = store_target(&args.db)?;
    if let (Some(from), Some(until)) = (args.from, args.until)
        && from >= until
    {
        return Err(CliError::FromNotBeforeUntil { from, until });
    }
    let mut filter = ReportFilter::new();
    if let Some(zone) = &args.zone {
        filter = filter.zone(zone.clone());
    }
    if let Some(account) = &args.account {
        filter = filter.account(account.clone());
    }
    if let Some(from) = args.from {
        filter = filter.from(from);
    }
    if let Some(until) = args.until {
        filter = filter.until(until);
    }
    runtime()?.block_on(async {
        let store = Store::open(&target, OpenMode::ReadOnly).await?;
        let mut stdout = io::stdout().lock();
        let result = print_report(&store, &filter, args.by, args.format, &mut stdout).await;
        store.close().await;
        ignore_broken_pipe(result)
    })
}

/// `status`: one row per zone of the store opened read-only.
///
/// # Errors
///
/// As [`report`].
pub(crate) fn status(args: &StatusArgs) -> Result<(), CliError> {
    let target = store_target(&args.db)?;
    runtime()?.block_on(async {
        let store = Store::open(&target, OpenMode::ReadOnly).await?;
        let zones = store.status().await;
        store.close().await;
        let mut stdout = io::stdout().lock();
        ignore_broken_pipe(print_status(&zones?, args.format, &mut stdout))
    })
}

/// `result`, with a reader that went away (`| head`) not counted as an error.
fn ignore_broken_pipe(result: Result<(), CliError>) -> Result<(), CliError> {
    match result {
        Err(CliError::Stdout(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes data to standard output; a reader that went away (`| head`) is fine.
pub(crate) fn write_stdout(data: &[u8]) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(data).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Stdout(e)),
        _ => Ok(()),
    }
}

/// Opens an input file for reading, naming it in the error.
fn open_input(what: &'static str, path: &Path) -> Result<BufReader<File>, CliError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| CliError::OpenInput {
            what,
            path: path.to_owned(),
            source,
        })
}

/// The `Ok` items of a reader of results, up to its first error, which it
/// keeps: a file streams into its consumer line by line, and a bad line
/// still discards everything (the consumer's result is dropped).
struct UntilError<I, E> {
    items: I,
    error: Option<E>,
}

impl<I, E> UntilError<I, E> {
    fn new(items: I) -> UntilError<I, E> {
        UntilError { items, error: None }
    }
}

impl<T, E, I: Iterator<Item = Result<T, E>>> Iterator for UntilError<I, E> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.error.is_some() {
            return None;
        }
        match self.items.next()? {
            Ok(item) => Some(item),
            Err(error) => {
                self.error = Some(error);
                None
            }
        }
    }
}

/// The ownership ledger of the events file, without the excluded accounts,
/// streamed from the file; all or nothing.
///
/// # Errors
///
/// [`CliError::OpenInput`] when the file cannot be opened;
/// [`CliError::Events`] naming the first bad line and field.
pub(crate) fn load_ledger(
    path: &Path,
    excluded: &[AccountId],
) -> Result<OwnershipLedger, CliError> {
    let options = excluded
        .iter()
        .cloned()
        .fold(LedgerOptions::new(), LedgerOptions::exclude_account);
    let mut events = UntilError::new(EventReader::new(open_input("events", path)?));
    let ledger = OwnershipLedger::from_events(options, &mut events);
    if let Some(source) = events.error {
        return Err(CliError::Events {
            path: path.to_owned(),
            source,
        });
    }
    // Debug, not info: a refusal that follows (an unknown zone, say)
    // is then the only line on standard error (DESIGN §9).
    tracing::debug!(
        events = ledger.event_count(),
        duplicates = ledger.duplicate_count(),
        excluded = ledger.excluded_count(),
        anomalies = ledger.anomalies().len(),
        "events loaded from {}",
        path.display()
    );
    Ok(ledger)
}

/// Refuses billing settings that can never bill anything: a Traffic
/// Sentinel zone both included and excluded.
pub(crate) fn check_billing(billing: &BillingArgs) -> Result<(), CliError> {
    match billing
        .include_zones()
        .into_iter()
        .find(|zone| billing.exclude_zones.contains(zone))
    {
        Some(zone) => Err(CliError::ZoneIncludedAndExcluded(zone)),
        None => Ok(()),
    }
}

/// Refuses a zone that no event of the log names (DESIGN §4).
pub(crate) fn check_zone_known(
    loaded: &LoadedEvents,
    zone: &ZoneId,
    events: &str,
) -> Result<(), CliError> {
    if loaded.ledger.has_zone(zone) {
        return Ok(());
    }
    Err(CliError::UnknownZone {
        zone: zone.clone(),
        source_name: events.to_owned(),
        known: loaded.zones.clone(),
    })
}

/// Says on standard error when `at`, given as `flag`, is not on the grid and
/// is floored to it.
pub(crate) fn note_floored(flag: &str, at: OffsetDateTime, grid: Grid) {
    if let Ok(floored) = grid.floor(at)
        && floored != at
    {
        eprintln!(
            "note: {flag} {} is not on the {} s grid; using {}",
            format_time(at),
            grid.seconds(),
            format_time(floored)
        );
    }
}

/// The monitor settings shared by `collect` and `plan`; the client's
/// granularity is the billing grid.
fn monitor_config(url: &str, billing: &BillingArgs) -> MonitorConfigBuilder {
    MonitorConfig::builder(url)
        .include_zones(billing.include_zones())
        .exclude_zones(billing.exclude_zones.iter().cloned())
        .server_time_zone(billing.time_zone())
        .granularity(billing.granularity)
}

/// The async runtime of a command: two worker threads are plenty for one
/// client or one emulator.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| CliError::Setup {
            what: "the async runtime",
            source,
        })
}

/// Ctrl-C, and SIGTERM on Unix.
pub(crate) struct Interrupt {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Interrupt {
    /// Installs the handlers; must run inside the runtime.
    pub(crate) fn new() -> Result<Interrupt, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let setup = |source| CliError::Setup {
                what: "signal handlers",
                source,
            };
            Ok(Interrupt {
                terminate: signal(SignalKind::terminate()).map_err(setup)?,
                interrupt: signal(SignalKind::interrupt()).map_err(setup)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Interrupt {})
        }
    }

    /// Waits for the first signal.
    pub(crate) async fn wait(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => {}
                _ = self.interrupt.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            // Without a handler there is nothing to wait for but the process end.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
