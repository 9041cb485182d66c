//! The command-line interface: commands, flags and their defaults (DESIGN §9).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use time::{Duration, OffsetDateTime, UtcOffset};
use traffic_sentinel_emulator::{Fault, Times};
use usage_model::{AccountId, Grid, ServerTimeZone, ZoneId};

use crate::report::{Format, Grouping};
use crate::units::{
    parse_duration, parse_fault, parse_fault_times, parse_grid, parse_lag, parse_server_time_zone,
    parse_std_duration, parse_time, parse_ts_zone, parse_utc_offset,
};

/// Bill guest-network traffic measured by inMon Traffic Sentinel to the
/// accounts that held each IP address.
///
/// Times are RFC 3339 (any offset, e.g. 2026-11-01T10:00:00Z); durations are
/// numbers with units s, m, h, d, w, largest first (90s, 30m, 2h, 1d, 1h30m).
/// Data goes to standard output; logs go to standard error (RUST_LOG, e.g.
/// RUST_LOG=debug or RUST_LOG=warn,traffic_usage=debug).
#[derive(Debug, Parser)]
#[command(name = "traffic-usage", version, propagate_version = true)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a self-checking demonstration against an in-process emulator.
    ///
    /// Starts the Traffic Sentinel emulator on loopback with synthetic flows
    /// and a synthetic event log, collects through the real client into a
    /// temporary database, prints per-account usage and checks that the bytes
    /// billed equal the bytes of owned buckets the emulator holds.
    ///
    /// With --sflow, the traffic travels as sFlow v5 datagrams over loopback
    /// UDP into the emulator's live sFlow ingest instead of through a flows
    /// CSV, in real time: each demo hour is played as a one-second bucket,
    /// so the demo takes --hours seconds plus about four (about 16 s with
    /// the default 12 hours). The demo then checks that every datagram sent
    /// was aggregated and that, per address, the emulator holds exactly the
    /// bytes sent, before it collects and checks conservation as without
    /// --sflow.
    Demo(DemoArgs),
    /// Serve the Traffic Sentinel query protocol over a flows CSV file
    /// and/or sFlow datagrams received over UDP.
    ///
    /// The first line on standard output is `listening on http://IP:PORT`;
    /// with --sflow-listen, the second is `sflow on udp://IP:PORT`. Runs
    /// until interrupted (SIGINT or SIGTERM); the open sFlow bucket is then
    /// recorded to --record.
    Emulate(EmulateArgs),
    /// Collect usage from Traffic Sentinel into a store.
    ///
    /// Runs collection windows from the zone's stored checkpoint (or --from
    /// when there is none) up to --until, each at most --max-window long, and
    /// stores each window's records and the new checkpoint in one transaction.
    Collect(CollectArgs),
    /// Print the query plan and scripts `collect` would send, without network.
    Plan(PlanArgs),
    /// Print stored usage per account, per IP or per day, anomalies or
    /// adjustments; read-only.
    Report(ReportArgs),
    /// Print one row per zone: checkpoint, windows, records, anomalies and
    /// when it was last collected; read-only.
    Status(StatusArgs),
    /// The long-running collector: collects every configured zone on a
    /// timer, as CloudStack's direct.network.stats.interval does.
    ///
    /// The configuration is TOML (see docs/run.md); it and the events source
    /// are re-read every pass. SIGINT or SIGTERM stops it: the window in
    /// progress stores nothing, and the process exits 0.
    Run(RunArgs),
    /// Read sFlow datagrams out of pcap/pcapng captures and write the flows
    /// CSV (the emulator's history) to standard output.
    ///
    /// Each flow sample counts frame length × sampling rate bytes at the
    /// capture time of its datagram, summed per bucket, source, destination
    /// and their zones. A summary goes to standard error. Exit status 0 when
    /// every file could be read as a capture, whatever was skipped inside;
    /// 1 when one could not.
    SflowImport(SflowImportArgs),
}

/// Flags of `sflow-import`.
#[derive(Debug, Args)]
pub(crate) struct SflowImportArgs {
    /// Captures to read (pcap or pcapng), in order.
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    pub(crate) pcap: Vec<PathBuf>,
    /// Zones of addresses: lines `cidr,zone` (IPv4 or IPv6), `#` comments;
    /// the longest prefix wins.
    #[arg(long, value_name = "FILE")]
    pub(crate) zones: Option<PathBuf>,
    /// Zone of an address in no prefix of --zones.
    #[arg(long, value_name = "NAME", default_value = "EXTERNAL")]
    pub(crate) default_zone: String,
    /// UDP port the datagrams were sent to.
    #[arg(long, value_name = "N", default_value_t = sflow::SFLOW_PORT)]
    pub(crate) port: u16,
    /// Bucket size of the flows written, in seconds (it must divide a day).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) granularity: u32,
}

/// Flags of `demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Number of IP addresses in the synthetic pool.
    #[arg(long, value_name = "N", default_value_t = 48, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) ips: u32,
    /// Number of synthetic accounts.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) accounts: u32,
    /// Number of days of synthetic history (without --sflow).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=3_660), conflicts_with = "sflow")]
    pub(crate) days: u32,
    /// Seed of the synthetic data; the same seed gives the same demo.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Send the traffic to the emulator as sFlow datagrams over loopback UDP
    /// (sampling rate 1, each flow one sample whose frame length is its
    /// bytes), one demo hour per second, and collect it on a 1 s grid with
    /// a 1 s lag; at most 2000 --ips.
    #[arg(long)]
    pub(crate) sflow: bool,
    /// With --sflow: the demo hours to play, each as a one-second bucket
    /// (plus one before and one after them).
    #[arg(long, value_name = "N", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=48), requires = "sflow")]
    pub(crate) hours: u32,
}

/// Flags of `emulate`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("history_source")
        .args(["flows", "sflow_listen"])
        .required(true)
        .multiple(true)
))]
pub(crate) struct EmulateArgs {
    /// Flow history: CSV with header time,ipsource,ipdestination,sourcezone,destinationzone,bytes.
    #[arg(long, value_name = "FILE")]
    pub(crate) flows: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Bucket size of the served history, in seconds (it must divide a day).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) granularity: u32,
    /// UTC offset of the emulated server's local time, used to read query intervals.
    #[arg(long, value_name = "±HH:MM", default_value = "+00:00", value_parser = parse_utc_offset, allow_hyphen_values = true)]
    pub(crate) server_utc_offset: UtcOffset,
    /// IANA time zone of the emulated server's local time (e.g.
    /// Europe/Berlin), with its daylight-saving changes; instead of
    /// --server-utc-offset.
    #[arg(long, value_name = "NAME", value_parser = crate::emulate::parse_server_time_zone, conflicts_with = "server_utc_offset")]
    pub(crate) server_time_zone: Option<ServerTimeZone>,
    /// Require HTTP basic authentication as this user (with --password-env).
    #[arg(long, value_name = "USER", requires = "password_env")]
    pub(crate) user: Option<String>,
    /// Name of the environment variable holding the password of --user.
    #[arg(long, value_name = "VAR", requires = "user")]
    pub(crate) password_env: Option<String>,
    /// Receive sFlow v5 datagrams on this UDP address (port 6343 by
    /// convention; port 0 picks one): each flow sample counts frame length ×
    /// sampling rate bytes at the datagram's arrival time.
    #[arg(long, value_name = "ADDR")]
    pub(crate) sflow_listen: Option<SocketAddr>,
    /// Zones of sFlow addresses: lines `cidr,zone` (IPv4 or IPv6), `#`
    /// comments; the longest prefix wins.
    #[arg(long, value_name = "FILE", requires = "sflow_listen")]
    pub(crate) zones: Option<PathBuf>,
    /// Zone of an sFlow address in no prefix of --zones.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "EXTERNAL",
        requires = "sflow_listen"
    )]
    pub(crate) default_zone: String,
    /// Append each closed sFlow bucket to this flows CSV (synced) and load
    /// it at start, so a restart loses at most the bucket still open.
    #[arg(long, value_name = "FILE", requires = "sflow_listen")]
    pub(crate) record: Option<PathBuf>,
    /// Misbehave, for fault drills: 5xx (status 503), status=CODE (400-599),
    /// drop (close mid-body), truncate (cut before the sentinel), garbage (a
    /// line that is not a row), html (an HTML error page), empty (an empty
    /// body) or delay=DUR (wait before answering). Repeatable: a delay
    /// combines with one other fault. By default, none.
    #[arg(long, value_name = "FAULT", value_parser = parse_fault)]
    pub(crate) fault: Vec<Fault>,
    /// How many query requests the faults apply to: a number, or `always`.
    #[arg(long, value_name = "N|always", default_value = "always", value_parser = parse_fault_times, requires = "fault")]
    pub(crate) fault_times: Times,
}

/// The billing options shared by `collect` and `plan`.
#[derive(Debug, Args)]
pub(crate) struct BillingArgs {
    /// Traffic Sentinel's bucket size: seconds or a duration (60, 1m, 1h).
    ///
    /// It must be the server's real bucket size (3600 for its hourly
    /// historical view, 60 where the view holds minute data): a finer grid
    /// bills the bytes of a bucket in which an address changed hands to both
    /// holders; a coarser one moves bytes to whoever holds the address when
    /// the bucket closes. It must divide a day.
    #[arg(long, value_name = "G", default_value = "3600", value_parser = parse_grid)]
    pub(crate) granularity: Grid,
    /// Longest window one collection cycle covers.
    #[arg(long, value_name = "DUR", default_value = "1d", value_parser = parse_duration)]
    pub(crate) max_window: Duration,
    /// Traffic Sentinel zones whose traffic is billable (comma-separated).
    /// Not with --monitor cloudstack, which takes the registered zones.
    /// [default: EXTERNAL]
    #[arg(long, value_name = "Z,..", value_delimiter = ',', value_parser = parse_ts_zone)]
    pub(crate) include_zones: Option<Vec<String>>,
    /// Traffic Sentinel zones excluded from billing (comma-separated).
    #[arg(long, value_name = "Z,..", value_delimiter = ',', value_parser = parse_ts_zone)]
    pub(crate) exclude_zones: Vec<String>,
    /// UTC offset of the Traffic Sentinel server's local time (it reads
    /// query times in its own time zone).
    #[arg(long, value_name = "±HH:MM", default_value = "+00:00", value_parser = parse_utc_offset, allow_hyphen_values = true, conflicts_with = "server_time_zone")]
    pub(crate) server_utc_offset: UtcOffset,
    /// The Traffic Sentinel server's time zone as an IANA name (e.g.
    /// Europe/Berlin), whose daylight-saving changes apply per boundary;
    /// instead of --server-utc-offset.
    #[arg(long, value_name = "NAME", value_parser = parse_server_time_zone)]
    pub(crate) server_time_zone: Option<ServerTimeZone>,
    /// Accounts never billed (CloudStack's system account is 1): a comma
    /// list, repeatable. Their holdings still count for ownership.
    #[arg(
        long = "exclude-account",
        value_name = "ID[,ID..]",
        value_delimiter = ','
    )]
    pub(crate) exclude_accounts: Vec<AccountId>,
}

impl BillingArgs {
    /// The zones of `--include-zones`, by default `EXTERNAL` (as
    /// CloudStack's `traffic.sentinel.include.zones`).
    pub(crate) fn include_zones(&self) -> Vec<String> {
        self.include_zones
            .clone()
            .unwrap_or_else(|| vec!["EXTERNAL".to_owned()])
    }

    /// Whether `--include-zones` or `--exclude-zones` was given.
    pub(crate) fn zone_lists_given(&self) -> bool {
        self.include_zones.is_some() || !self.exclude_zones.is_empty()
    }

    /// The server's time zone: `--server-time-zone`, else the fixed
    /// `--server-utc-offset`.
    pub(crate) fn time_zone(&self) -> ServerTimeZone {
        self.server_time_zone
            .clone()
            .unwrap_or_else(|| ServerTimeZone::from(self.server_utc_offset))
    }
}

/// The store flags shared by `collect`, `report` and `status`.
#[derive(Debug, Args)]
pub(crate) struct DbArgs {
    /// The store: a SQLite file path, postgres://USER:PASSWORD@HOST:PORT/DB
    /// or mysql://USER:PASSWORD@HOST:PORT/DB (password and port optional).
    #[arg(long, value_name = "TARGET")]
    pub(crate) db: String,
    /// Name of the environment variable holding the store's password.
    #[arg(long, value_name = "VAR")]
    pub(crate) db_password_env: Option<String>,
}

/// Flags of `collect`.
#[derive(Debug, Args)]
pub(crate) struct CollectArgs {
    /// Traffic Sentinel URL, e.g. http://10.147.28.100:8080, or
    /// `cloudstack`: the zone's traffic monitor as CloudStack registered it
    /// (with --events mysql://…/cloud).
    #[arg(long, value_name = "URL")]
    pub(crate) monitor: String,
    /// IP assign/release events: a JSON Lines file, or CloudStack's
    /// database, mysql://USER:PASSWORD@HOST:PORT/cloud (its usage_event
    /// table, read only).
    #[arg(long, value_name = "SOURCE")]
    pub(crate) events: String,
    /// Name of the environment variable holding the password of --events.
    #[arg(long, value_name = "VAR")]
    pub(crate) events_password_env: Option<String>,
    /// The usage_event resource_type read from CloudStack.
    #[arg(long, value_name = "T", default_value = "DirectAttached")]
    pub(crate) cloudstack_resource_type: String,
    /// The store.
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Zone to collect.
    #[arg(long, value_name = "ZONE")]
    pub(crate) zone: ZoneId,
    /// Where to start when the zone has no checkpoint yet.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub(crate) from: Option<OffsetDateTime>,
    /// Where to stop; by default now minus --lag, and never later.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub(crate) until: Option<OffsetDateTime>,
    /// How long after the fact Traffic Sentinel's data is complete: windows
    /// end no later than now minus the lag, so a bucket still filling is
    /// never billed short (it would never be collected again). 0 is allowed.
    #[arg(long, value_name = "DUR", default_value = "2h", value_parser = parse_lag)]
    pub(crate) lag: Duration,
    /// The billing options.
    #[command(flatten)]
    pub(crate) billing: BillingArgs,
    /// User for HTTP basic authentication (with --password-env).
    #[arg(long, value_name = "USER", requires = "password_env")]
    pub(crate) user: Option<String>,
    /// Name of the environment variable holding the password of --user.
    #[arg(long, value_name = "VAR", requires = "user")]
    pub(crate) password_env: Option<String>,
    /// Total time limit of one HTTP request.
    #[arg(long, value_name = "DUR", value_parser = parse_std_duration)]
    pub(crate) timeout: Option<std::time::Duration>,
    /// Retries of a request after a connection error, timeout or 5xx (at
    /// most 10, so one window's requests end within (N + 1) × --timeout).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub(crate) retries: Option<u32>,
    /// Recollect already billed windows between --from and --until (both
    /// required, on the grid, not after the checkpoint) from the current
    /// log and a fresh answer, storing signed adjustments.
    #[arg(long, requires_all = ["from", "until"])]
    pub(crate) restate: bool,
    /// Bill a zone with settings other than those it was billed with; the
    /// change applies from the next window.
    #[arg(long)]
    pub(crate) accept_changed_settings: bool,
    /// Also add each window's bytes to CloudStack's cloud.user_statistics
    /// for this traffic monitor host id (the store must be mysql:// on
    /// CloudStack's server).
    #[arg(long, value_name = "N")]
    pub(crate) cloudstack_host_id: Option<u64>,
}

/// Flags of `plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// IP assign/release events: a JSON Lines file, or CloudStack's
    /// database, mysql://USER:PASSWORD@HOST:PORT/cloud.
    #[arg(long, value_name = "SOURCE")]
    pub(crate) events: String,
    /// Name of the environment variable holding the password of --events.
    #[arg(long, value_name = "VAR")]
    pub(crate) events_password_env: Option<String>,
    /// The usage_event resource_type read from CloudStack.
    #[arg(long, value_name = "T", default_value = "DirectAttached")]
    pub(crate) cloudstack_resource_type: String,
    /// Zone to plan.
    #[arg(long, value_name = "ZONE")]
    pub(crate) zone: ZoneId,
    /// Start of the span to plan.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub(crate) from: OffsetDateTime,
    /// End of the span to plan (exclusive).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub(crate) until: OffsetDateTime,
    /// The billing options.
    #[command(flatten)]
    pub(crate) billing: BillingArgs,
    /// Traffic Sentinel URL the scripts are addressed to (no request is sent).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) monitor: String,
}

/// Flags of `report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The store written by `collect`; opened read-only.
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Only this zone; all zones by default.
    #[arg(long, value_name = "ZONE")]
    pub(crate) zone: Option<ZoneId>,
    /// Only this account.
    #[arg(long, value_name = "A")]
    pub(crate) account: Option<AccountId>,
    /// Only records (windows) whose [start, end) lies at or after T.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub(crate) from: Option<OffsetDateTime>,
    /// Only records (windows) whose [start, end) lies before or at T.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub(crate) until: Option<OffsetDateTime>,
    /// One row per account, per stored record (IP and interval), per account
    /// and day, per anomaly, or per adjustment.
    #[arg(long, value_name = "BY", value_enum, default_value_t = Grouping::Account)]
    pub(crate) by: Grouping,
    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// Flags of `run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: PathBuf,
    /// One pass, then exit: 0 when every zone succeeded, 1 otherwise.
    #[arg(long)]
    pub(crate) once: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics; the first line on
    /// standard output says where.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
    /// Bill zones with settings other than those they were billed with; the
    /// change applies from the next window.
    #[arg(long)]
    pub(crate) accept_changed_settings: bool,
}

/// Flags of `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The store written by `collect`; opened read-only.
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Output format: table, csv or json.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;
    use time::macros::{datetime, offset};

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("traffic-usage").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn demo_defaults_and_flags() {
        let Command::Demo(a) = parse(&["demo"]).unwrap() else {
            panic!()
        };
        assert_eq!((a.ips, a.accounts, a.days, a.seed), (48, 6, 3, 1));
        assert!(!a.sflow);
        assert_eq!(a.hours, 12);
        let Command::Demo(a) = parse(&["demo", "--sflow", "--hours", "3"]).unwrap() else {
            panic!()
        };
        assert!(a.sflow);
        assert_eq!(a.hours, 3);
        let err = parse(&["demo", "--hours", "3"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        let err = parse(&["demo", "--sflow", "--days", "2"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
        let err = parse(&["demo", "--sflow", "--hours", "49"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        let Command::Demo(a) = parse(&[
            "demo",
            "--ips",
            "500",
            "--accounts",
            "20",
            "--days",
            "7",
            "--seed",
            "9",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!((a.ips, a.accounts, a.days, a.seed), (500, 20, 7, 9));
        let err = parse(&["demo", "--ips", "0"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
    }

    #[test]
    fn emulate_defaults_and_flags() {
        let Command::Emulate(a) = parse(&["emulate", "--flows", "f.csv"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.flows, Some(PathBuf::from("f.csv")));
        assert_eq!(a.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(a.granularity, 60);
        assert_eq!(a.server_utc_offset, UtcOffset::UTC);
        assert!(a.fault.is_empty());
        assert_eq!(a.fault_times, Times::Always);
        let Command::Emulate(a) = parse(&[
            "emulate",
            "--flows",
            "f.csv",
            "--fault",
            "5xx",
            "--fault=delay=2s",
            "--fault-times",
            "2",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            a.fault,
            [
                Fault::HttpStatus(503),
                Fault::Delay(std::time::Duration::from_secs(2))
            ]
        );
        assert_eq!(a.fault_times, Times::Next(2));
        let err = parse(&["emulate", "--flows", "f.csv", "--fault-times", "2"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        let err = parse(&["emulate", "--flows", "f.csv", "--fault", "teapot"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        let Command::Emulate(a) = parse(&[
            "emulate",
            "--flows",
            "f.csv",
            "--listen",
            "[::1]:0",
            "--granularity",
            "300",
            "--server-utc-offset",
            "-08:00",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.listen, "[::1]:0".parse().unwrap());
        assert_eq!(a.granularity, 300);
        assert_eq!(a.server_utc_offset, offset!(-08:00));
        assert!(
            parse(&["emulate"]).is_err(),
            "--flows or --sflow-listen is required"
        );
    }

    #[test]
    fn collect_defaults() {
        let Command::Collect(a) = parse(&[
            "collect",
            "--monitor",
            "http://ts:8080",
            "--events",
            "e.jsonl",
            "--db",
            "u.db",
            "--zone",
            "zone-1",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.monitor, "http://ts:8080");
        assert_eq!(a.events, PathBuf::from("e.jsonl"));
        assert_eq!(a.db.db, "u.db");
        assert_eq!(a.zone.as_str(), "zone-1");
        assert_eq!((a.from, a.until), (None, None));
        assert_eq!(a.lag, Duration::hours(2));
        assert_eq!(a.billing.granularity, Grid::HOURLY);
        assert_eq!(a.billing.max_window, Duration::days(1));
        assert_eq!(a.billing.include_zones(), ["EXTERNAL"]);
        assert!(!a.billing.zone_lists_given());
        assert!(a.billing.exclude_zones.is_empty());
        assert_eq!(a.billing.server_utc_offset, UtcOffset::UTC);
        assert!(a.billing.exclude_accounts.is_empty());
        assert_eq!((a.user, a.password_env), (None, None));
        assert_eq!((a.timeout, a.retries), (None, None));
    }

    #[test]
    fn collect_every_flag() {
        let Command::Collect(a) = parse(&[
            "collect",
            "--monitor=https://ts.example:8443",
            "--events=e.jsonl",
            "--db=u.db",
            "--zone=zone-1",
            "--from=2026-11-01T01:00:00+01:00",
            "--until=2026-11-03T00:00:00Z",
            "--lag=1h30m",
            "--granularity=60",
            "--max-window=6h",
            "--include-zones=EXTERNAL,DMZ",
            "--exclude-zones=INTERNAL",
            "--server-utc-offset=-08:00",
            "--exclude-account=1,acct-x",
            "--exclude-account=system",
            "--user=guest",
            "--password-env=TS_PASSWORD",
            "--timeout=30s",
            "--retries=5",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.from, Some(datetime!(2026-11-01 00:00 UTC)));
        assert_eq!(a.until, Some(datetime!(2026-11-03 00:00 UTC)));
        assert_eq!(a.lag, Duration::minutes(90));
        assert_eq!(a.billing.granularity, Grid::MINUTELY);
        assert_eq!(a.billing.max_window, Duration::hours(6));
        assert_eq!(a.billing.include_zones(), ["EXTERNAL", "DMZ"]);
        assert!(a.billing.zone_lists_given());
        assert_eq!(a.billing.exclude_zones, ["INTERNAL"]);
        assert_eq!(a.billing.server_utc_offset, offset!(-08:00));
        let excluded: Vec<&str> = a
            .billing
            .exclude_accounts
            .iter()
            .map(|a| a.as_str())
            .collect();
        assert_eq!(excluded, ["1", "acct-x", "system"]);
        assert_eq!(a.user.as_deref(), Some("guest"));
        assert_eq!(a.password_env.as_deref(), Some("TS_PASSWORD"));
        assert_eq!(a.timeout, Some(std::time::Duration::from_secs(30)));
        assert_eq!(a.retries, Some(5));
    }

    #[test]
    fn negative_offset_as_separate_value() {
        let Command::Plan(a) = parse(&[
            "plan",
            "--events",
            "e",
            "--zone",
            "z",
            "--from",
            "2026-11-01T00:00:00Z",
            "--until",
            "2026-11-02T00:00:00Z",
            "--server-utc-offset",
            "-03:30",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.billing.server_utc_offset, offset!(-03:30));
    }

    #[test]
    fn password_env_and_user_go_together() {
        let base = [
            "collect",
            "--monitor",
            "http://ts",
            "--events",
            "e",
            "--db",
            "d",
            "--zone",
            "z",
        ];
        let err = parse(&[&base[..], &["--password-env", "X"]].concat()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        // A user without a password would send an empty one: refused.
        let err = parse(&[&base[..], &["--user", "u"]].concat()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn plan_defaults() {
        let Command::Plan(a) = parse(&[
            "plan",
            "--events",
            "e.jsonl",
            "--zone",
            "zone-1",
            "--from",
            "2026-11-01T00:00:00Z",
            "--until",
            "2026-11-02T00:00:00Z",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.events, PathBuf::from("e.jsonl"));
        assert_eq!(a.zone.as_str(), "zone-1");
        assert_eq!(a.from, datetime!(2026-11-01 00:00 UTC));
        assert_eq!(a.until, datetime!(2026-11-02 00:00 UTC));
        assert_eq!(a.monitor, "http://127.0.0.1:8080");
        assert_eq!(a.billing.granularity, Grid::HOURLY);
        assert!(
            parse(&["plan", "--events", "e", "--zone", "z"]).is_err(),
            "--from/--until required"
        );
    }

    #[test]
    fn report_defaults_and_choices() {
        let Command::Report(a) = parse(&["report", "--db", "u.db"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.by, a.format, a.zone),
            (Grouping::Account, Format::Table, None)
        );
        let Command::Report(a) = parse(&[
            "report", "--db", "u.db", "--zone", "z", "--by", "day", "--format", "csv",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!((a.by, a.format), (Grouping::Day, Format::Csv));
        assert_eq!(a.zone.map(String::from).as_deref(), Some("z"));
        let err = parse(&["report", "--db", "u.db", "--by", "month"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn bad_values_are_clap_errors_naming_the_value() {
        let base = [
            "collect",
            "--monitor",
            "http://ts",
            "--events",
            "e",
            "--db",
            "d",
            "--zone",
            "z",
        ];
        for (flag, value) in [
            ("--from", "2026-13-01"),
            ("--until", "tomorrow"),
            ("--lag", "5x"),
            ("--max-window", "0d"),
            ("--granularity", "0"),
            ("--granularity", "7"),
            ("--retries", "4294967295"),
            ("--server-utc-offset", "+25:00"),
            ("--include-zones", "EXTERNAL\"|1"),
            ("--exclude-account", ""),
            ("--timeout", "10"),
        ] {
            let err = parse(&[&base[..], &[flag, value]].concat()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{flag} {value}");
            let text = err.to_string();
            assert!(text.contains(value) && text.contains(flag), "{text}");
        }
        let err = parse(&["report", "--db", "d", "--zone", ""]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
    }
}
