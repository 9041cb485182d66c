//! `collect`: the zone's windows from its checkpoint until caught up (or a
//! restatement), through the library's [`Collection`].

use time::OffsetDateTime;
use traffic_sentinel_client::{MonitorConfig, TrafficSentinelClient};
use usage_correlator::Schedule;
use usage_model::{TrafficAnswer, TrafficQuery, ZoneId};
use usage_store::{
    CloudStackPosting, Collection, OpenMode, Store, StoreTarget, TrafficSource, WindowReport,
};

use crate::cli::{CollectArgs, DbArgs};
use crate::commands::{check_billing, check_zone_known, note_floored, runtime};
use crate::error::CliError;
use crate::events_source::{EventsSource, on_one_server};
use crate::progress::Progress;
use crate::units::{check_monitor_url, format_time};

/// Traffic Sentinel through the HTTP client, as the collection asks it.
pub(crate) struct Sentinel(pub(crate) TrafficSentinelClient);

impl TrafficSource for Sentinel {
    type Error = traffic_sentinel_client::Error;

    async fn fetch(&self, queries: &[TrafficQuery]) -> Result<(TrafficAnswer, u64), Self::Error> {
        let fetched = self.0.fetch(queries).await?;
        Ok((fetched.answer, fetched.requests as u64))
    }
}

/// The settings a zone is billed with (DESIGN §12), as stored with its
/// windows: the grid in seconds, the zone lists, the server time zone and
/// the excluded accounts (sorted).
pub(crate) fn billing_settings(
    grid: usage_model::Grid,
    include_zones: &[String],
    exclude_zones: &[String],
    time_zone: &usage_model::ServerTimeZone,
    excluded: &[usage_model::AccountId],
) -> Vec<(String, String)> {
    let mut excluded: Vec<&str> = excluded.iter().map(|a| a.as_str()).collect();
    excluded.sort_unstable();
    excluded.dedup();
    vec![
        ("granularity".to_owned(), grid.seconds().to_string()),
        ("include_zones".to_owned(), include_zones.join(",")),
        ("exclude_zones".to_owned(), exclude_zones.join(",")),
        ("server_time_zone".to_owned(), time_zone.to_string()),
        ("exclude_accounts".to_owned(), excluded.join(",")),
    ]
}

/// A refused setting named also by the `collect` flag that sets it (the
/// stored name is `run`'s config key).
fn with_flag(mut error: usage_store::StoreError) -> usage_store::StoreError {
    if let usage_store::StoreError::SettingsChanged { setting, .. } = &mut error {
        let flag = match setting.as_str() {
            "granularity" => "--granularity",
            "include_zones" => "--include-zones",
            "exclude_zones" => "--exclude-zones",
            "server_time_zone" => "--server-time-zone or --server-utc-offset",
            "exclude_accounts" => "--exclude-account",
            _ => return error,
        };
        *setting = format!("{setting} ({flag})");
    }
    error
}

/// `settings` with each value that means the same as the zone's stored one
/// written as it is stored, so that only a real change is refused (DESIGN
/// §12): a server time zone of one constant offset however it is spelled
/// (`UTC`, `+00:00`), zone lists as sets (order and repeats aside).
pub(crate) fn in_stored_spelling(
    stored: &[(String, String)],
    settings: Vec<(String, String)>,
) -> Vec<(String, String)> {
    settings
        .into_iter()
        .map(|(name, value)| {
            let same = stored
                .iter()
                .find(|(stored_name, _)| *stored_name == name)
                .filter(|(_, stored_value)| {
                    *stored_value != value && same_setting(&name, stored_value, &value)
                });
            match same {
                Some((_, stored_value)) => (name, stored_value.clone()),
                None => (name, value),
            }
        })
        .collect()
}

/// Whether two spellings of the setting `name` bill the same.
fn same_setting(name: &str, a: &str, b: &str) -> bool {
    match name {
        "server_time_zone" => {
            let offset = |text: &str| {
                crate::units::parse_utc_offset(text).ok().or_else(|| {
                    usage_model::ServerTimeZone::named(text)
                        .ok()?
                        .constant_offset()
                })
            };
            offset(a).is_some_and(|a| Some(a) == offset(b))
        }
        "include_zones" | "exclude_zones" => {
            let set = |text: &str| {
                text.split(',')
                    .filter(|zone| !zone.is_empty())
                    .map(str::to_owned)
                    .collect::<std::collections::BTreeSet<String>>()
            };
            set(a) == set(b)
        }
        _ => false,
    }
}

/// Why windows are posted to CloudStack (DESIGN §11), for the messages of
/// [`cloudstack_posting`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum PostingOrigin {
    /// `--cloudstack-host-id` (`cloudstack_host_id` in a `run` config).
    HostId,
    /// The monitor read from CloudStack's registration (`--monitor
    /// cloudstack`, `url = "cloudstack"`), whose host id is the default.
    Registration,
}

/// Refuses posting each window of a zone to CloudStack's `user_statistics`
/// (asked for as `origin` says) when the store cannot take it: the store
/// must be a `mysql://` database on the server of CloudStack's database, so
/// that one transaction covers both. This holds whether the host id was
/// given or is the registered monitor's (the default of DESIGN §11), and is
/// checked before any request; so is the zone, which must be CloudStack's
/// numeric zone id (`data_center_id`).
///
/// # Errors
///
/// [`CliError::BadValue`] (exit 2) naming what to change.
pub(crate) fn check_posting_store(
    origin: PostingOrigin,
    zone: &ZoneId,
    target: &StoreTarget,
    db: &str,
    source: &EventsSource<'_>,
) -> Result<(), CliError> {
    let not_zone_id;
    let reason = if usage_store::cloudstack_id(zone.as_str()).is_none() {
        not_zone_id = format!(
            "the zone must be CloudStack's numeric zone id, not {:?}",
            zone.as_str()
        );
        not_zone_id.as_str()
    } else if target.engine() != usage_store::Engine::MySql {
        "--db must be a mysql:// database on CloudStack's server"
    } else if source.is_cloudstack() && !on_one_server(db, source.text) {
        "--db must be on the same MySQL server as --events (CloudStack's database): one \
         transaction must cover both"
    } else {
        return Ok(());
    };
    match origin {
        PostingOrigin::HostId => Err(CliError::BadValue(format!(
            "--cloudstack-host-id posts to CloudStack's user_statistics in the window's \
             transaction, so {reason}"
        ))),
        // DESIGN §11: the registered host's id is then the default
        // --cloudstack-host-id, with the same requirement; billing without
        // posting would leave those windows out of CloudStack for good.
        PostingOrigin::Registration => Err(CliError::BadValue(format!(
            "the traffic monitor registered in CloudStack makes its host id the default \
             --cloudstack-host-id, which posts to CloudStack's user_statistics in the window's \
             transaction, so {reason}"
        ))),
    }
}

/// The posting of each window to CloudStack's `user_statistics` under
/// `host_id`, once [`check_posting_store`] accepts the store.
///
/// # Errors
///
/// As [`check_posting_store`]; a password variable that is not set.
pub(crate) fn cloudstack_posting(
    host_id: u64,
    origin: PostingOrigin,
    zone: &ZoneId,
    target: &StoreTarget,
    db: &str,
    source: &EventsSource<'_>,
) -> Result<CloudStackPosting, CliError> {
    check_posting_store(origin, zone, target, db, source)?;
    let cloud_database = if source.is_cloudstack() {
        source
            .cloudstack_target()?
            .database()
            .unwrap_or("cloud")
            .to_owned()
    } else {
        "cloud".to_owned()
    };
    let posting = CloudStackPosting {
        host_id,
        cloud_database,
    };
    posting.check_database_name()?;
    Ok(posting)
}

/// The store named by `--db`, with the password of `--db-password-env`.
///
/// # Errors
///
/// [`CliError::Store`] for a bad target; [`CliError::PasswordEnv`].
pub(crate) fn store_target(db: &DbArgs) -> Result<StoreTarget, CliError> {
    let target = StoreTarget::parse(&db.db)?;
    match &db.db_password_env {
        Some(var) => Ok(target.with_password(read_env(var, "--db-password-env")?)?),
        None => Ok(target),
    }
}

/// The value of environment variable `var`, named by `flag`.
///
/// # Errors
///
/// [`CliError::PasswordEnv`] when it is not set or not unicode.
pub(crate) fn read_env(var: &str, flag: &'static str) -> Result<String, CliError> {
    std::env::var(var).map_err(|error| CliError::PasswordEnv {
        var: var.to_owned(),
        flag,
        reason: match error {
            std::env::VarError::NotPresent => "is not set",
            std::env::VarError::NotUnicode(_) => "is not valid unicode",
        },
    })
}

/// `collect`: runs collection windows (or a restatement) into the store.
///
/// # Errors
///
/// Before anything is stored (exit status 2): bad flags, events, store
/// target or settings, an `--until` later than now minus the lag, a zone the
/// log does not name, changed settings. Then [`CliError::Store`] wrapping
/// the window that failed (exit status 1): it stored nothing.
pub(crate) fn collect(args: &CollectArgs) -> Result<(), CliError> {
    let source = EventsSource {
        text: &args.events,
        password_env: args.events_password_env.as_deref(),
        resource_type: &args.cloudstack_resource_type,
    };
    let from_cloudstack = args.monitor == "cloudstack";
    if !from_cloudstack {
        check_monitor_url(&args.monitor).map_err(CliError::BadValue)?;
    }
    check_billing(&args.billing)?;
    if from_cloudstack && args.billing.zone_lists_given() {
        // As `run` refuses them beside `url = "cloudstack"`: a flag that
        // seemed to take effect would not.
        return Err(CliError::BadValue(
            "--include-zones and --exclude-zones cannot be given with --monitor cloudstack: \
             the zone lists are those CloudStack registered (inclZones, exclZones)"
                .to_owned(),
        ));
    }
    if let (Some(from), Some(until)) = (args.from, args.until)
        && from >= until
    {
        return Err(CliError::FromNotBeforeUntil { from, until });
    }
    let target = store_target(&args.db)?;
    if let Some(path) = target.path()
        && args.from.is_none()
        && !path.exists()
    {
        // No database, so no checkpoint: say so without creating one.
        return Err(CliError::Store(usage_store::StoreError::NoStart {
            zone: args.zone.clone(),
        }));
    }
    // The traffic monitor as CloudStack registered it, when asked; its zone
    // lists and host id replace the defaults.
    let registered = if from_cloudstack {
        Some(source.traffic_monitor(&args.zone)?)
    } else {
        None
    };
    let posting = match (args.cloudstack_host_id, &registered) {
        (Some(host_id), _) => Some((host_id, PostingOrigin::HostId)),
        (None, Some(monitor)) => Some((monitor.host_id, PostingOrigin::Registration)),
        (None, None) => None,
    }
    .map(|(host_id, origin)| {
        cloudstack_posting(host_id, origin, &args.zone, &target, &args.db.db, &source)
    })
    .transpose()?;
    let loaded = source.ledger(
        &args.billing.exclude_accounts,
        std::slice::from_ref(&args.zone),
    )?;
    check_zone_known(&loaded, &args.zone, &source.name())?;
    let ledger = &loaded.ledger;
    let grid = args.billing.granularity;
    let schedule = Schedule::new()
        .settle_lag(args.lag)
        .max_window(args.billing.max_window)
        .grid(grid);
    schedule.validate()?;
    let now = OffsetDateTime::now_utc();
    if let Some(until) = args.until {
        // Refused, never clamped, before anything is stored.
        let settled = schedule.settled(now)?;
        schedule.windows_until(settled, until, now)?;
        if !args.restate {
            note_floored("--until", until, grid);
        }
    }
    if let Some(from) = args.from
        && !args.restate
    {
        note_floored("--from", from, grid);
    }

    let (url, include, exclude) = match &registered {
        Some(monitor) => (
            monitor.url.clone(),
            monitor.include_zones.clone(),
            monitor.exclude_zones.clone(),
        ),
        None => (
            args.monitor.clone(),
            args.billing.include_zones(),
            args.billing.exclude_zones.clone(),
        ),
    };
    let settings = billing_settings(
        grid,
        &include,
        &exclude,
        &args.billing.time_zone(),
        &args.billing.exclude_accounts,
    );
    let mut builder = MonitorConfig::builder(&url)
        .include_zones(include.iter().cloned())
        .exclude_zones(exclude.iter().cloned())
        .server_time_zone(args.billing.time_zone())
        .granularity(grid);
    if let Some(timeout) = args.timeout {
        builder = builder
            .total_timeout(timeout)
            .connect_timeout(timeout.min(std::time::Duration::from_secs(10)));
    }
    if let Some(retries) = args.retries {
        builder = builder.retries(retries);
    }
    if let (Some(user), Some(var)) = (&args.user, &args.password_env) {
        builder = builder.credentials(user.clone(), read_env(var, "--password-env")?);
    }
    let config = builder.build().map_err(CliError::Monitor)?;
    let source = Sentinel(TrafficSentinelClient::new(config).map_err(CliError::Monitor)?);

    runtime()?.block_on(async {
        let store = Store::open(&target, OpenMode::ReadWrite).await?;
        let settings = in_stored_spelling(&store.zone_settings(&args.zone).await?, settings);
        let collection = Collection::new(&store, ledger, &source, &args.zone)
            .schedule(schedule)
            .settings(settings)
            .cloudstack(posting)
            .skipped_events(&loaded.skipped);
        let result = run(args, &store, &collection, now).await;
        store.close().await;
        result
    })
}

/// The collection itself, on an open store.
async fn run(
    args: &CollectArgs,
    store: &Store,
    collection: &Collection<'_, Sentinel>,
    now: OffsetDateTime,
) -> Result<(), CliError> {
    let zone = &args.zone;
    collection
        .check_settings(args.accept_changed_settings)
        .await
        .map_err(with_flag)?;
    // A bad restatement range is refused before anything is stored.
    if let (true, Some(from), Some(until)) = (args.restate, args.from, args.until) {
        collection.check_restate_range(from, until).await?;
    }
    for late in collection.check_late_events().await? {
        eprintln!("warning: {}", late.detail);
    }
    for row in collection.check_late_skipped_rows().await? {
        eprintln!(
            "warning: {} (found after its window was billed; stored with it)",
            row.detail
        );
    }
    let checkpoint = store.checkpoint(zone).await?;
    if let (Some(checkpoint), Some(from), false) = (checkpoint, args.from, args.restate) {
        tracing::info!(
            "zone {zone} has checkpoint {}; --from {} is ignored",
            format_time(checkpoint),
            format_time(from)
        );
    }
    let mut progress = Progress::new();
    let on_window = |report: &WindowReport| {
        progress.window_done(report);
        crate::progress::log_anomalies(report);
    };
    let summary = match (args.restate, args.from, args.until) {
        (true, Some(from), Some(until)) => collection.restate(from, until, now, on_window).await,
        _ => {
            collection
                .collect(args.from, args.until, now, on_window)
                .await
        }
    };
    progress.finish();
    let summary = summary?;
    let verb = if args.restate {
        "restated"
    } else {
        "collected"
    };
    if summary.windows == 0 && !args.restate {
        eprintln!(
            "zone {zone} is caught up: {}; nothing to collect",
            checkpoint.map_or_else(
                || "no checkpoint yet".to_owned(),
                |c| format!("checkpoint {}", format_time(c))
            ),
        );
        return Ok(());
    }
    eprintln!(
        "{verb} {} window(s) of zone {zone} up to {}: {} record(s), bytes sent {} received {}, {} request(s), {} anomaly(ies)",
        summary.windows,
        summary
            .checkpoint
            .map_or_else(|| "nothing".to_owned(), format_time),
        summary.records,
        summary.bytes_sent,
        summary.bytes_received,
        summary.requests,
        summary.anomalies
    );
    Ok(())
}
