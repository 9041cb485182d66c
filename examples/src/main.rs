//! `traffic-usage`: collect guest-network usage from inMon Traffic Sentinel,
//! store it in SQLite and report it per account, per IP or per day.
//!
//! Data goes to standard output, logs to standard error (`RUST_LOG`). Any
//! failure ends the program with one `error: …` line on standard error and
//! exit status 1; invalid arguments exit with status 2.

mod cli;
mod collect;
mod commands;
mod demo;
mod emulate;
mod error;
mod events_source;
mod metrics;
mod progress;
mod report;
mod run;
mod run_config;
mod sflow_import;
mod units;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return clap_error(&error),
    };
    init_logging();
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error.to_string()));
            ExitCode::from(error.exit_code())
        }
    }
}

/// `message` on one line, without any password a URL in it carries.
fn one_line(message: &str) -> String {
    units::redact_credentials(&message.replace(['\n', '\r'], " "))
}

/// Prints help or the version as clap writes them, and any other clap error
/// as one `error: …` line; exit status 0 for help and version, 2 otherwise.
fn clap_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = error.render().to_string();
    eprintln!("error: {} (see --help)", one_line(&clap_message(&text)));
    ExitCode::from(2)
}

/// The message of clap's rendered error `text`: its first line, followed,
/// when that line ends with `:`, by the lines it introduces (e.g. the
/// missing arguments), joined by commas.
fn clap_message(text: &str) -> String {
    let mut lines = text
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    if !first.ends_with(':') {
        return first.to_owned();
    }
    let listed: Vec<&str> = lines.take_while(|line| !line.is_empty()).collect();
    format!("{first} {}", listed.join(", "))
}

fn run(command: &Command) -> Result<(), CliError> {
    match command {
        Command::Demo(args) => commands::demo(args),
        Command::Emulate(args) => commands::emulate(args),
        Command::Collect(args) => collect::collect(args),
        Command::Plan(args) => commands::plan(args),
        Command::Report(args) => commands::report(args),
        Command::Status(args) => commands::status(args),
        Command::Run(args) => run::run(args),
        Command::SflowImport(args) => sflow_import::run(args),
    }
}

/// The crates of this project, logged at `info` by default.
const OWN_TARGETS: [&str; 8] = [
    "traffic_usage",
    "usage_correlator",
    "usage_store",
    "traffic_sentinel_client",
    "traffic_sentinel_emulator",
    "usage_model",
    "sflow",
    "ip_interval",
];

/// Logs to standard error, filtered by `RUST_LOG` (e.g. `debug` or
/// `warn,traffic_usage=debug`); by default `info` for this project's crates
/// and `warn` for others.
fn init_logging() {
    let default = OWN_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::WARN),
        |t, target| t.with_target(*target, LevelFilter::INFO),
    );
    let mut bad_filter = None;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec.parse::<Targets>().unwrap_or_else(|e| {
            bad_filter = Some((spec.clone(), e));
            default.clone()
        }),
        _ => default,
    };
    let stderr = std::io::stderr();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(stderr.is_terminal());
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
    if let Some((spec, error)) = bad_filter {
        tracing::warn!("ignoring RUST_LOG={spec:?}: {error}");
    }
}
