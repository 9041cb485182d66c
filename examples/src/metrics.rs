//! The Prometheus metrics of `traffic-usage run` (DESIGN §12) and the small
//! HTTP server that exposes them at `/metrics`.
//!
//! Every series carries the label `zone`:
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `traffic_usage_checkpoint_timestamp_seconds` | gauge | Unix time of the zone's checkpoint: everything before it is billed |
//! | `traffic_usage_windows_total` | counter | windows committed |
//! | `traffic_usage_bytes_billed_total{direction="sent"\|"received"}` | counter | bytes billed |
//! | `traffic_usage_collect_failures_total` | counter | collection attempts that failed and stored nothing |
//! | `traffic_usage_anomalies_total` | counter | anomalies stored with committed windows |
//!
//! Counters hold `u64` and are written as integers, so byte counts above
//! 2^53 stay exact. The server answers in the Prometheus text format,
//! version 0.0.4.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use usage_model::ZoneId;

/// The path the metrics are served on.
pub(crate) const METRICS_PATH: &str = "/metrics";

/// The `Content-Type` of the answer: Prometheus text format 0.0.4.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How long open connections may take to finish after a shutdown; well
/// inside the 10 s a stopping `run` has.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The labels of a per-zone series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ZoneLabels {
    zone: String,
}

/// The labels of a `traffic_usage_bytes_billed_total` series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BilledLabels {
    zone: String,
    direction: Direction,
}

/// Which way billed bytes went, as CloudStack's usage types 4 (sent) and 5
/// (received).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Direction {
    Sent,
    Received,
}

impl EncodeLabelValue for Direction {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        encoder.write_str(match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        })
    }
}

/// The metrics of a collector, per zone; shared between the collection loop
/// and the HTTP server (`Arc<Metrics>`), all methods take `&self`.
///
/// Counters wrap around at 2^64 (which Prometheus reads as a counter reset);
/// nothing here panics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    checkpoint: Family<ZoneLabels, Gauge>,
    windows: Family<ZoneLabels, Counter>,
    bytes_billed: Family<BilledLabels, Counter>,
    collect_failures: Family<ZoneLabels, Counter>,
    anomalies: Family<ZoneLabels, Counter>,
}

impl Metrics {
    /// Metrics for `zones`, whose counters start at 0 so that every zone is
    /// listed from the first scrape. A zone's checkpoint gauge appears with
    /// its first [`Metrics::set_checkpoint`]. Another zone is listed the
    /// same way from its first update.
    pub(crate) fn new<'a>(zones: impl IntoIterator<Item = &'a ZoneId>) -> Metrics {
        let mut registry = Registry::default();
        let checkpoint = Family::<ZoneLabels, Gauge>::default();
        let windows = Family::<ZoneLabels, Counter>::default();
        let bytes_billed = Family::<BilledLabels, Counter>::default();
        let collect_failures = Family::<ZoneLabels, Counter>::default();
        let anomalies = Family::<ZoneLabels, Counter>::default();
        registry.register_with_unit(
            "traffic_usage_checkpoint_timestamp",
            "Unix time of the zone's checkpoint: traffic before it is billed",
            Unit::Seconds,
            checkpoint.clone(),
        );
        registry.register(
            "traffic_usage_windows",
            "Collection windows committed",
            windows.clone(),
        );
        registry.register(
            "traffic_usage_bytes_billed",
            "Bytes billed to accounts, by direction (sent: usage type 4, received: usage type 5)",
            bytes_billed.clone(),
        );
        registry.register(
            "traffic_usage_collect_failures",
            "Collection attempts that failed and stored nothing",
            collect_failures.clone(),
        );
        registry.register(
            "traffic_usage_anomalies",
            "Event anomalies stored with committed windows",
            anomalies.clone(),
        );
        let metrics = Metrics {
            registry,
            checkpoint,
            windows,
            bytes_billed,
            collect_failures,
            anomalies,
        };
        for zone in zones {
            metrics.list_zone(zone);
        }
        metrics
    }

    /// Creates the zone's counters (at 0) unless they exist.
    fn list_zone(&self, zone: &ZoneId) {
        let labels = zone_labels(zone);
        // A series that exists is only read; the write lock is taken once.
        for family in [&self.windows, &self.collect_failures, &self.anomalies] {
            let _ = family.get_or_create(&labels);
        }
        for direction in [Direction::Sent, Direction::Received] {
            let _ = self
                .bytes_billed
                .get_or_create(&billed_labels(zone, direction));
        }
    }

    /// Sets the zone's checkpoint (whole Unix seconds).
    pub(crate) fn set_checkpoint(&self, zone: &ZoneId, checkpoint: OffsetDateTime) {
        self.list_zone(zone);
        self.checkpoint
            .get_or_create(&zone_labels(zone))
            .set(checkpoint.unix_timestamp());
    }

    /// Counts one committed window of the zone with the bytes it billed and
    /// the anomalies stored with it. A byte counter stops at 2^64 − 1
    /// rather than wrapping (it is a gauge of progress, not the bill: the
    /// store's sums are exact and `report` refuses one past 64 bits).
    pub(crate) fn window_committed(
        &self,
        zone: &ZoneId,
        bytes_sent: u128,
        bytes_received: u128,
        anomalies: u64,
    ) {
        self.list_zone(zone);
        let labels = zone_labels(zone);
        self.windows.get_or_create(&labels).inc();
        self.anomalies.get_or_create(&labels).inc_by(anomalies);
        for (direction, bytes) in [
            (Direction::Sent, bytes_sent),
            (Direction::Received, bytes_received),
        ] {
            let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
            let counter = self
                .bytes_billed
                .get_or_create(&billed_labels(zone, direction));
            // Saturating: `inc_by` wraps.
            let _ = counter.inner().fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |total| Some(total.saturating_add(bytes)),
            );
        }
    }

    /// Counts anomalies stored for the zone's windows billed before (they
    /// come with no new window): `late-event`s, and skipped rows of the
    /// events source found after their windows were billed.
    pub(crate) fn late_anomalies_found(&self, zone: &ZoneId, anomalies: u64) {
        self.list_zone(zone);
        self.anomalies
            .get_or_create(&zone_labels(zone))
            .inc_by(anomalies);
    }

    /// Counts one failed collection attempt of the zone.
    pub(crate) fn collect_failed(&self, zone: &ZoneId) {
        self.list_zone(zone);
        self.collect_failures
            .get_or_create(&zone_labels(zone))
            .inc();
    }

    /// All metrics in the Prometheus text format, version 0.0.4.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // The encoder fails only when its writer does, and a String never does.
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::error!(%error, "cannot encode the metrics");
        }
        text
    }
}

fn zone_labels(zone: &ZoneId) -> ZoneLabels {
    ZoneLabels {
        zone: zone.as_str().to_owned(),
    }
}

fn billed_labels(zone: &ZoneId, direction: Direction) -> BilledLabels {
    BilledLabels {
        zone: zone.as_str().to_owned(),
        direction,
    }
}

/// The running metrics server; it stops when the `shutdown` future given to
/// [`serve`] resolves.
#[derive(Debug)]
pub(crate) struct MetricsServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The address bound, with the port chosen when `:0` was asked for.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server has stopped: after the shutdown, open
    /// connections get [`SHUTDOWN_GRACE`] (2 s) to finish.
    pub(crate) async fn stopped(self) {
        if let Err(error) = self.task.await {
            tracing::error!(%error, "metrics server task failed");
        }
    }
}

/// Binds `addr` and serves `metrics` there on the current tokio runtime:
/// `GET` (or `HEAD`) [`METRICS_PATH`] answers 200 with [`CONTENT_TYPE`],
/// another method there 405, any other path 404. Serving stops when
/// `shutdown` resolves.
///
/// # Errors
///
/// The operating system's error when `addr` cannot be bound (in use, not
/// local, not allowed); the caller names the address.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, metrics, shutdown));
    Ok(MetricsServer { local_addr, task })
}

async fn accept_loop(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, metrics.clone(), stop_rx.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let finish = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, finish).await.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    tracing::debug!("metrics server stopped");
}

async fn serve_connection(
    stream: TcpStream,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let service = service_fn(move |request| {
        let metrics = metrics.clone();
        async move { Ok::<_, Infallible>(answer(&request, &metrics)) }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "metrics: connection ended with an error");
            }
        }
        () = stop_requested(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Resolves once the server stops (or its accept loop is gone).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stop| stop).await;
}

/// The answer to one request.
fn answer(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    if request.uri().path() != METRICS_PATH {
        return plain(
            StatusCode::NOT_FOUND,
            "not found; metrics are at /metrics\n",
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut response = Response::new(Full::new(Bytes::from(metrics.encode())));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests;
