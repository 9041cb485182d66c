//! `run`: the long-running collector (DESIGN §12). Every pass re-reads the
//! configuration and the events source and collects each monitor's zone up
//! to now minus the lag; zones are independent.

use std::net::SocketAddr;
use std::sync::Arc;

use time::OffsetDateTime;
use traffic_sentinel_client::{MonitorConfig, TrafficSentinelClient};
use usage_correlator::Schedule;
use usage_model::Grid;
use usage_store::{Collection, OpenMode, Store, StoreTarget};

use crate::cli::RunArgs;
use crate::collect::{
    PostingOrigin, Sentinel, billing_settings, check_posting_store, cloudstack_posting,
    in_stored_spelling, read_env,
};
use crate::commands::{Interrupt, runtime, write_stdout};
use crate::error::CliError;
use crate::events_source::{EventsSource, LoadedEvents};
use crate::metrics::{Metrics, serve};
use crate::progress::Progress;
use crate::run_config::{MonitorSection, MonitorSource, RunConfig};
use crate::units::format_time;

/// `run`: passes on a timer (or one with `--once`) until SIGINT/SIGTERM.
///
/// # Errors
///
/// [`CliError::Config`] for a configuration that cannot be read (exit 2);
/// [`CliError::PassFailed`] when `--once` and a zone failed (exit 1);
/// [`CliError::Setup`] for the runtime, signals or the metrics address.
pub(crate) fn run(args: &RunArgs) -> Result<(), CliError> {
    let config = RunConfig::load(&args.config).map_err(|e| CliError::Config(e.to_string()))?;
    check_postings(&config)?;
    runtime()?.block_on(async {
        let mut interrupt = Interrupt::new()?;
        let metrics = Arc::new(Metrics::new(config.monitors.iter().map(|m| &m.zone)));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let server = match args.metrics_listen {
            Some(addr) => Some(start_metrics(addr, &metrics, stop_rx.clone()).await?),
            None => None,
        };
        let mut config = config;
        let mut first = true;
        let result = loop {
            let pass = pass(&config, &metrics, args.accept_changed_settings, first);
            first = false;
            let failed = tokio::select! {
                failed = pass => match failed {
                    Ok(failed) => failed,
                    // A zone's settings changed: the operator must say so.
                    Err(error) => break Err(error),
                },
                () = interrupt.wait() => {
                    tracing::info!("interrupted: the window in progress stored nothing");
                    break Ok(());
                }
            };
            if args.once {
                break if failed == 0 {
                    Ok(())
                } else {
                    Err(CliError::PassFailed(failed))
                };
            }
            tokio::select! {
                () = tokio::time::sleep(config.interval) => {}
                () = interrupt.wait() => break Ok(()),
            }
            // A changed configuration applies from the next pass; one that no
            // longer loads leaves the last good one in force.
            match RunConfig::load(&args.config) {
                Ok(next) => match check_postings(&next) {
                    Ok(()) => config = next,
                    Err(error) => {
                        tracing::error!("{error}; keeping the last good configuration");
                    }
                },
                Err(error) => tracing::error!("{error}; keeping the last good configuration"),
            }
        };
        let _ = stop_tx.send(true);
        if let Some(server) = server {
            server.stopped().await;
        }
        result
    })
}

/// The events source of `config`.
fn events_source(config: &RunConfig) -> EventsSource<'_> {
    EventsSource {
        text: &config.events,
        password_env: config.events_password_env.as_deref(),
        resource_type: &config.cloudstack_resource_type,
    }
}

/// Refuses, before any pass, a monitor with `cloudstack_host_id` while the
/// store is not on CloudStack's MySQL server: its windows would be billed
/// without reaching CloudStack. With `url = "cloudstack"` alone, the
/// registered host's id is the default (DESIGN §11), refused alike.
///
/// # Errors
///
/// [`CliError::BadValue`] naming the zone (exit 2).
fn check_postings(config: &RunConfig) -> Result<(), CliError> {
    let source = events_source(config);
    for monitor in &config.monitors {
        // The registration's host id (known only when read, each pass) is
        // the default: the store must take its posting all the same.
        let origin = match (monitor.cloudstack_host_id, &monitor.source) {
            (Some(_), _) => PostingOrigin::HostId,
            (None, MonitorSource::CloudStack) => PostingOrigin::Registration,
            (None, MonitorSource::Url(_)) => continue,
        };
        let target = StoreTarget::parse(&config.db)?;
        check_posting_store(origin, &monitor.zone, &target, &config.db, &source)
            .map_err(|error| CliError::BadValue(format!("zone {}: {error}", monitor.zone)))?;
    }
    Ok(())
}

/// Serves the metrics and prints where.
async fn start_metrics(
    addr: SocketAddr,
    metrics: &Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<crate::metrics::MetricsServer, CliError> {
    let shutdown = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let server = serve(addr, Arc::clone(metrics), shutdown)
        .await
        .map_err(|source| CliError::Setup {
            what: "the metrics listener",
            source,
        })?;
    write_stdout(format!("metrics on http://{}/metrics\n", server.local_addr()).as_bytes())?;
    Ok(server)
}

/// One pass over every zone; the number of zones that failed.
///
/// A zone whose settings differ from those it was billed with (DESIGN
/// §12) is refused: in the `first` pass, the one the collector was started
/// for, the collector stops (exit 2); in a later pass, after the file was
/// edited, that zone fails (logged, counted, retried next pass) and the
/// others go on, so one edit does not stop every zone's billing.
///
/// # Errors
///
/// The first pass's refusal of changed settings: [`CliError::Store`] naming
/// the setting.
async fn pass(
    config: &RunConfig,
    metrics: &Metrics,
    accept_changed: bool,
    first: bool,
) -> Result<usize, CliError> {
    let source = events_source(config);
    let zones: Vec<usage_model::ZoneId> = config.monitors.iter().map(|m| m.zone.clone()).collect();
    let loaded = match source
        .ledger_in_runtime(&config.exclude_accounts, &zones)
        .await
    {
        Ok(loaded) => loaded,
        Err(error) => {
            tracing::error!("events: {error}");
            for monitor in &config.monitors {
                metrics.collect_failed(&monitor.zone);
            }
            return Ok(config.monitors.len());
        }
    };
    let store = match open_store(config).await {
        Ok(store) => store,
        Err(error) => {
            tracing::error!("store: {error}");
            for monitor in &config.monitors {
                metrics.collect_failed(&monitor.zone);
            }
            return Ok(config.monitors.len());
        }
    };
    let mut failed = 0;
    for monitor in &config.monitors {
        let zone = &monitor.zone;
        // Known before the pass: a long catch-up shows where it stands.
        if let Ok(Some(checkpoint)) = store.checkpoint(zone).await {
            metrics.set_checkpoint(zone, checkpoint);
        }
        match zone_pass(config, monitor, &loaded, &store, metrics, accept_changed).await {
            Ok(()) => {}
            Err(error @ CliError::Store(usage_store::StoreError::SettingsChanged { .. }))
                if first =>
            {
                store.close().await;
                return Err(error);
            }
            Err(error) => {
                failed += 1;
                metrics.collect_failed(zone);
                tracing::error!("zone {zone}: {error}; retried next pass");
            }
        }
        if let Ok(Some(checkpoint)) = store.checkpoint(zone).await {
            metrics.set_checkpoint(zone, checkpoint);
        }
    }
    store.close().await;
    Ok(failed)
}

async fn open_store(config: &RunConfig) -> Result<Store, CliError> {
    let mut target = StoreTarget::parse(&config.db)?;
    if let Some(var) = &config.db_password_env {
        target = target.with_password(read_env(var, "db_password_env")?)?;
    }
    Ok(Store::open(&target, OpenMode::ReadWrite).await?)
}

/// Collects one zone up to now minus the lag.
async fn zone_pass(
    config: &RunConfig,
    monitor: &MonitorSection,
    loaded: &LoadedEvents,
    store: &Store,
    metrics: &Metrics,
    accept_changed: bool,
) -> Result<(), CliError> {
    let zone = &monitor.zone;
    let ledger = &loaded.ledger;
    if !ledger.has_zone(zone) {
        return Err(CliError::UnknownZone {
            zone: zone.clone(),
            source_name: format!("events {}", config.events),
            known: loaded.zones.clone(),
        });
    }
    let grid = Grid::from_seconds(u64::from(monitor.granularity))
        .map_err(|e| CliError::BadValue(format!("zone {zone}: {e}")))?;
    let time_zone = server_time_zone(monitor)?;
    let mut include: Vec<String> = monitor
        .include_zones
        .iter()
        .map(|z| z.as_str().to_owned())
        .collect();
    let mut exclude: Vec<String> = monitor
        .exclude_zones
        .iter()
        .map(|z| z.as_str().to_owned())
        .collect();
    let mut host_id = monitor.cloudstack_host_id;
    let mut origin = PostingOrigin::HostId;
    let url = match &monitor.source {
        MonitorSource::Url(url) => url.to_string(),
        MonitorSource::CloudStack if config.events_from_cloudstack() => {
            let registered = events_source(config)
                .traffic_monitor_in_runtime(zone)
                .await?;
            include = registered.include_zones;
            exclude = registered.exclude_zones;
            if host_id.is_none() {
                host_id = Some(registered.host_id);
                origin = PostingOrigin::Registration;
            }
            registered.url
        }
        MonitorSource::CloudStack => {
            return Err(CliError::BadValue(format!(
                "zone {zone}: url = \"cloudstack\" needs events from CloudStack's database"
            )));
        }
    };
    let mut builder = MonitorConfig::builder(url.as_str())
        .include_zones(include.iter().cloned())
        .exclude_zones(exclude.iter().cloned())
        .server_time_zone(time_zone.clone())
        .granularity(grid);
    if let Some(timeout) = monitor.timeout {
        builder = builder.total_timeout(timeout);
    }
    if let Some(retries) = monitor.retries {
        builder = builder.retries(retries);
    }
    if let Some(credentials) = &monitor.credentials {
        builder = builder.credentials(
            credentials.user.clone(),
            read_env(&credentials.password_env, "password_env")?,
        );
    }
    let source = Sentinel(
        TrafficSentinelClient::new(builder.build().map_err(CliError::Monitor)?)
            .map_err(CliError::Monitor)?,
    );
    let schedule = Schedule::new()
        .grid(grid)
        .settle_lag(config.lag)
        .max_window(config.max_window);
    let settings = in_stored_spelling(
        &store.zone_settings(zone).await?,
        billing_settings(
            grid,
            &include,
            &exclude,
            &time_zone,
            &config.exclude_accounts,
        ),
    );
    let posting = match host_id {
        Some(host_id) => cloudstack_posting(
            host_id,
            origin,
            zone,
            &StoreTarget::parse(&config.db)?,
            &config.db,
            &events_source(config),
        )
        .map(Some)?,
        None => None,
    };
    let collection = Collection::new(store, ledger, &source, zone)
        .skipped_events(&loaded.skipped)
        .schedule(schedule)
        .settings(settings)
        .cloudstack(posting);
    collection.check_settings(accept_changed).await?;
    let late = collection.check_late_events().await?;
    for late in &late {
        eprintln!("warning: {}", late.detail);
    }
    let late_rows = collection.check_late_skipped_rows().await?;
    for row in &late_rows {
        eprintln!(
            "warning: {} (found after its window was billed; stored with it)",
            row.detail
        );
    }
    metrics.late_anomalies_found(zone, (late.len() + late_rows.len()) as u64);
    let mut progress = Progress::new();
    let summary = collection
        .collect(monitor.from, None, OffsetDateTime::now_utc(), |report| {
            progress.window_done(report);
            crate::progress::log_anomalies(report);
            metrics.set_checkpoint(zone, report.window.end());
            metrics.window_committed(
                zone,
                report.bytes_sent,
                report.bytes_received,
                report.anomaly_count(),
            );
        })
        .await;
    progress.finish();
    let summary = summary?;
    match summary.checkpoint {
        Some(checkpoint) => tracing::info!(
            "zone {zone}: {} window(s) up to {}",
            summary.windows,
            format_time(checkpoint)
        ),
        None => tracing::info!("zone {zone} is caught up: nothing due yet"),
    }
    Ok(())
}

/// The monitor's server time zone as the client takes it.
fn server_time_zone(monitor: &MonitorSection) -> Result<usage_model::ServerTimeZone, CliError> {
    match &monitor.server_time_zone {
        crate::run_config::ServerTimeZone::Offset(offset) => Ok((*offset).into()),
        crate::run_config::ServerTimeZone::Named(name) => usage_model::ServerTimeZone::named(name)
            .map_err(|e| CliError::BadValue(format!("zone {}: {e}", monitor.zone))),
    }
}
