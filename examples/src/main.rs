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
mod error;
mod progress;
mod report;
mod store;
mod units;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, whatever the messages it wraps hold.
            let message = error.to_string().replace(['\n', '\r'], " ");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &Command) -> Result<(), CliError> {
    match command {
        Command::Demo(args) => commands::demo(args),
        Command::Emulate(args) => commands::emulate(args),
        Command::Collect(args) => commands::collect(args),
        Command::Plan(args) => commands::plan(args),
        Command::Report(args) => commands::report(args),
    }
}

/// The crates of this project, logged at `info` by default.
const OWN_TARGETS: [&str; 6] = [
    "traffic_usage",
    "usage_correlator",
    "traffic_sentinel_client",
    "traffic_sentinel_emulator",
    "usage_model",
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
