//! The HTTP server: `/inmsf/Query` by POST or GET, request counting.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use url::Url;

use crate::basic_auth::{REALM_CHALLENGE, authorization_matches};
use crate::error::{Error, shorten};
use crate::evaluate::evaluate;
use crate::fault::{
    Fault, FaultControl, HTML_ERROR_PAGE, insert_garbage_line, truncate_before_sentinel,
};
use crate::flow_record::FlowRecord;
use crate::form::{QueryForm, is_form_content_type};
use crate::history::FlowHistory;
use crate::history_snapshot::HistorySnapshot;
use crate::live_history::{IngestCounts, LiveHistory};
use crate::options::EmulatorOptions;
use crate::response::{AnswerBody, dropped_mid_body, text_response};
use crate::script::parse_script;
use crate::sflow_ingest::Ingest;

/// The path TS serves queries on.
pub const QUERY_PATH: &str = "/inmsf/Query";

/// How long in-flight connections may take to finish after a shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

struct Shared {
    /// The history the emulator was started with.
    started_with: Arc<FlowHistory>,
    /// What it answers from.
    history: Arc<LiveHistory>,
    options: EmulatorOptions,
    faults: FaultControl,
    served: AtomicU64,
}

/// A running Traffic Sentinel emulator: an HTTP server answering
/// `POST /inmsf/Query` over a [`FlowHistory`].
///
/// Stop it with [`Emulator::shutdown`]; dropping it stops it too (in-flight
/// requests get a few seconds to finish).
///
/// # sFlow ingest
///
/// With [`EmulatorOptions::sflow`], the emulator also receives sFlow
/// datagrams on a UDP socket ([`Emulator::sflow_addr`]), on threads of its
/// own (not tasks of the runtime, so that a busy runtime does not make the
/// socket drop datagrams): one receives and stamps, one decodes and adds,
/// one records and merges.
///
/// - Each datagram is stamped with its arrival time (UTC; never before the
///   end of the last closed bucket, should the clock step back), decoded
///   ([`sflow::decode`]; a malformed datagram or one of another version is
///   counted and skipped whole) and its flow samples added, `frame length ×
///   sampling rate` bytes each, to the *open* bucket of its (bucket,
///   ipsource, ipdestination, sourcezone, destinationzone), buckets being
///   the history's granularity aligned to the Unix epoch.
/// - A bucket *closes* when the clock passes its end (within a tenth of a
///   second). A second thread appends its rows to the record file, if any
///   (flushed and synced), then merges them into the settled history
///   ([`FlowHistory::extended`]).
/// - Queries see everything received so far: the settled history, the
///   buckets being recorded and the open bucket, taken together under one
///   lock so that no bucket is counted twice or missed while it moves
///   ([`HistorySnapshot`]). A bucket's answer only grows until it closes,
///   then no longer changes.
/// - At start, the record file's rows are added to the history given; at
///   shutdown ([`Emulator::shutdown`] or drop) the open bucket is recorded
///   too, so a restart keeps it (its traffic after the restart adds to it).
///   A crash loses at most the bucket still open, and an append cut short
///   leaves an incomplete last line, which the next start drops.
/// - Counts ([`Emulator::sflow_counts`]) are logged at `info` every
///   [`SflowIngest::stats_interval`](crate::SflowIngest::stats_interval)
///   and at shutdown.
///
/// # Example
///
/// ```no_run
/// use usage_model::Grid;
/// use time::Duration;
/// use traffic_sentinel_emulator::{Emulator, EmulatorOptions, Fault, FlowHistory, Times};
///
/// # async fn example() -> Result<(), traffic_sentinel_emulator::Error> {
/// let history = FlowHistory::new(Grid::MINUTELY, [])?;
/// let emulator = Emulator::start(
///     "127.0.0.1:0".parse().unwrap(),
///     history,
///     EmulatorOptions::new(),
/// )
/// .await?;
/// println!("listening on {}", emulator.url());
/// emulator.faults().set(Fault::SERVICE_UNAVAILABLE, Times::Next(1))?;
/// // ... run a client against emulator.url() ...
/// assert!(emulator.requests_served() <= 1);
/// emulator.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Emulator {
    local_addr: SocketAddr,
    url: Url,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    done: Option<oneshot::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    ingest: Option<Ingest>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("local_addr", &self.local_addr)
            .field("requests_served", &self.requests_served())
            .field("options", &self.shared.options)
            .field("background", &self.thread.is_some())
            .field("sflow_addr", &self.sflow_addr())
            .finish()
    }
}

impl Emulator {
    /// Starts serving on `addr` (port 0 picks a free port) as tasks of the
    /// current Tokio runtime.
    ///
    /// The server runs only while that runtime runs: on a current-thread
    /// runtime (the `#[tokio::test]` default), blocking that thread (e.g. a
    /// synchronous HTTP call) starves the server. Synchronous callers use
    /// [`Emulator::start_in_background`].
    ///
    /// # Errors
    ///
    /// [`Error::Listen`] when the address cannot be bound. With sFlow
    /// ingest: [`Error::SflowListen`] when its UDP socket cannot be set up,
    /// [`Error::RecordLine`] for a bad line of the record file (nothing is
    /// served), [`Error::RecordFile`] when it cannot be opened or read,
    /// [`Error::Runtime`] when its threads cannot be started.
    ///
    /// # Panics
    ///
    /// When not called from within a Tokio runtime.
    pub async fn start(
        addr: SocketAddr,
        history: FlowHistory,
        options: EmulatorOptions,
    ) -> Result<Emulator, Error> {
        let listener = bind(addr)?;
        let listener =
            TcpListener::from_std(listener).map_err(|source| Error::Listen { addr, source })?;
        let (emulator, shared, shutdown, done) =
            Emulator::prepare(addr, &listener, history, options)?;
        tokio::spawn(serve(listener, shared, shutdown, done));
        Ok(emulator)
    }

    /// Starts serving on `addr` from a Tokio runtime of its own, on a
    /// background thread; for callers without a runtime (synchronous tests,
    /// benchmarks, a CLI). Stop it by dropping it.
    ///
    /// # Errors
    ///
    /// [`Error::Listen`] when the address cannot be bound, [`Error::Runtime`]
    /// when the runtime or its thread cannot be started; with sFlow ingest,
    /// as [`Emulator::start`].
    pub fn start_in_background(
        addr: SocketAddr,
        history: FlowHistory,
        options: EmulatorOptions,
    ) -> Result<Emulator, Error> {
        let listener = bind(addr)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ts-emulator")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener).map_err(|source| Error::Listen { addr, source })?
        };
        let (mut emulator, shared, shutdown, done) =
            Emulator::prepare(addr, &listener, history, options)?;
        let thread = std::thread::Builder::new()
            .name("ts-emulator".to_owned())
            .spawn(move || runtime.block_on(serve(listener, shared, shutdown, done)))
            .map_err(Error::Runtime)?;
        emulator.thread = Some(thread);
        Ok(emulator)
    }

    #[allow(clippy::type_complexity)]
    fn prepare(
        addr: SocketAddr,
        listener: &TcpListener,
        history: FlowHistory,
        options: EmulatorOptions,
    ) -> Result<
        (
            Emulator,
            Arc<Shared>,
            watch::Receiver<bool>,
            oneshot::Sender<()>,
        ),
        Error,
    > {
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::Listen { addr, source })?;
        let url = Url::parse(&format!("http://{local_addr}")).map_err(|e| Error::Listen {
            addr,
            source: std::io::Error::other(e),
        })?;
        let (history, live, ingest) = match options.sflow.clone() {
            None => {
                let history = Arc::new(history);
                let live = Arc::new(LiveHistory::fixed(history.clone()));
                (history, live, None)
            }
            Some(sflow) => {
                let socket = Ingest::bind(&sflow)?;
                let (record, history) = match &sflow.record {
                    Some(path) => {
                        let (record, history) = FlowRecord::open(path, history)?;
                        tracing::info!(
                            path = %path.display(),
                            flows = history.flow_count(),
                            bytes = history.total_bytes(),
                            "record file loaded"
                        );
                        (Some(record), history)
                    }
                    None => (None, history),
                };
                let history = Arc::new(history);
                let live = Arc::new(LiveHistory::ingesting(history.clone(), sflow.zones.clone()));
                let ingest = Ingest::start(socket, live.clone(), record, sflow.stats_interval)?;
                (history, live, Some(ingest))
            }
        };
        let shared = Arc::new(Shared {
            started_with: history,
            history: live,
            options,
            faults: FaultControl::default(),
            served: AtomicU64::new(0),
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (done_tx, done_rx) = oneshot::channel();
        let emulator = Emulator {
            local_addr,
            url,
            shared: shared.clone(),
            shutdown: shutdown_tx,
            done: Some(done_rx),
            thread: None,
            ingest,
        };
        tracing::info!(%local_addr, "traffic sentinel emulator listening");
        Ok((emulator, shared, shutdown_rx, done_tx))
    }

    /// The base URL of the emulator, `http://IP:PORT/` (the monitor URL).
    pub fn url(&self) -> Url {
        self.url.clone()
    }

    /// The address the emulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many requests to [`QUERY_PATH`] have been answered, whatever their
    /// outcome (errors and injected faults included).
    pub fn requests_served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// The handle to set and clear faults.
    pub fn faults(&self) -> FaultControl {
        self.shared.faults.clone()
    }

    /// The history the emulator was started with: the flows given (and,
    /// with sFlow ingest, the rows of the record file), which it answers
    /// from unless sFlow ingest adds to it; what it answers from at any
    /// moment is [`Emulator::served_history`].
    pub fn history(&self) -> &FlowHistory {
        &self.shared.started_with
    }

    /// What the emulator answers from now: the history it was started with,
    /// the buckets sFlow ingest settled since, and those still open or
    /// being recorded (see [`HistorySnapshot`]).
    ///
    /// # Errors
    ///
    /// [`Error::ByteOverflow`] when the bytes of the buckets not yet settled
    /// do not fit a `u64`.
    pub fn served_history(&self) -> Result<HistorySnapshot, Error> {
        self.shared.history.snapshot()
    }

    /// The UDP address sFlow datagrams are received on, with sFlow ingest.
    pub fn sflow_addr(&self) -> Option<SocketAddr> {
        self.ingest.as_ref().map(Ingest::local_addr)
    }

    /// What sFlow ingest has done so far, with sFlow ingest.
    pub fn sflow_counts(&self) -> Option<IngestCounts> {
        self.ingest.as_ref().map(|_| self.shared.history.counts())
    }

    /// The options the emulator runs with.
    pub fn options(&self) -> &EmulatorOptions {
        &self.shared.options
    }

    /// Stops accepting connections, lets in-flight requests finish (for a
    /// few seconds at most; injected delays are cut short) and waits until
    /// the server has stopped.
    ///
    /// With sFlow ingest, receiving stops first and the open bucket is
    /// recorded (see [the ingest](Emulator#sflow-ingest)).
    pub async fn shutdown(mut self) {
        if let Some(mut ingest) = self.ingest.take() {
            let _ = tokio::task::spawn_blocking(move || ingest.stop()).await;
        }
        let _ = self.shutdown.send(true);
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(mut ingest) = self.ingest.take() {
            ingest.stop();
        }
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, Error> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| Error::Listen { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| Error::Listen { addr, source })?;
    Ok(listener)
}

/// Resolves once a shutdown is asked for (or the emulator is gone).
async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|&stop| stop).await;
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    done: oneshot::Sender<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::trace!(%peer, "connection accepted");
                    connections.spawn(serve_connection(stream, shared.clone(), shutdown.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let finish = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, finish).await.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    tracing::info!("traffic sentinel emulator stopped");
    let _ = done.send(());
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let request_shutdown = shutdown.clone();
    let service =
        service_fn(move |request| handle(request, shared.clone(), request_shutdown.clone()));
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        () = shutdown_requested(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<AnswerBody>, Infallible> {
    if !is_query_path(request.uri().path()) {
        let message = format!("not found: {}", shorten(request.uri().path()));
        return Ok(text_response(StatusCode::NOT_FOUND, message));
    }
    if !matches!(*request.method(), Method::POST | Method::GET) {
        let message = format!(
            "method {} not allowed on {QUERY_PATH}, use POST or GET",
            request.method()
        );
        let mut response = text_response(StatusCode::METHOD_NOT_ALLOWED, message);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return Ok(response);
    }
    let response = query(request, &shared, shutdown).await;
    shared.served.fetch_add(1, Ordering::SeqCst);
    tracing::debug!(status = %response.status(), "query answered");
    Ok(response)
}

/// Answers one request to the query path, applying the faults in force.
async fn query(
    request: Request<Incoming>,
    shared: &Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Response<AnswerBody> {
    let faults = shared.faults.take();

    if let Some((user, password)) = &shared.options.basic_auth {
        let given = request.headers().get(header::AUTHORIZATION);
        if !given.is_some_and(|value| authorization_matches(value.as_bytes(), user, password)) {
            let mut response = text_response(
                StatusCode::UNAUTHORIZED,
                "authentication required".to_owned(),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(REALM_CHALLENGE),
            );
            return response;
        }
    }

    // CloudStack 4.9 and older send the form as the query string of a GET.
    let query_string = (request.method() == Method::GET)
        .then(|| Bytes::copy_from_slice(request.uri().query().unwrap_or("").as_bytes()));

    let max = shared.options.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return too_large(max);
    }
    let content_type_ok = query_string.is_some()
        || request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| is_form_content_type(v.as_bytes()));
    let body = match Limited::new(request.into_body(), max).collect().await {
        Ok(collected) => query_string.unwrap_or_else(|| collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => return too_large(max),
        Err(error) => {
            let message = format!("cannot read the request body: {error}");
            return text_response(StatusCode::BAD_REQUEST, message);
        }
    };

    if let Some(delay) = faults.delay {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown_requested(&mut shutdown) => {
                return text_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_owned());
            }
        }
    }

    match faults.response {
        Some(Fault::HttpStatus(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let reason = status.canonical_reason().unwrap_or("error");
            return text_response(status, format!("{} {reason}", status.as_u16()));
        }
        Some(Fault::HtmlErrorPage) => {
            let mut response = text_response(StatusCode::OK, HTML_ERROR_PAGE.to_owned());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            return response;
        }
        Some(Fault::EmptyBody) => return text_response(StatusCode::OK, String::new()),
        _ => {}
    }

    let answer = if content_type_ok {
        let task_shared = shared.clone();
        match tokio::task::spawn_blocking(move || answer_form(&task_shared, &body)).await {
            Ok(answer) => answer,
            Err(error) => Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("query failed: {error}"),
            )),
        }
    } else {
        Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type must be application/x-www-form-urlencoded".to_owned(),
        ))
    };

    let (status, text) = match answer {
        Ok(text) => match faults.response {
            Some(Fault::TruncateBeforeSentinel) => {
                (StatusCode::OK, truncate_before_sentinel(&text))
            }
            Some(Fault::GarbageLine) => (StatusCode::OK, insert_garbage_line(&text)),
            _ => (StatusCode::OK, text),
        },
        Err((status, message)) => (status, message),
    };
    if faults.response == Some(Fault::DropMidBody) {
        return dropped_mid_body(status, text);
    }
    text_response(status, text)
}

fn too_large(max: usize) -> Response<AnswerBody> {
    text_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {max} bytes"),
    )
}

/// Decodes the form, runs the script and returns the answer text, or the
/// status and one-line message of a refusal.
fn answer_form(shared: &Shared, body: &[u8]) -> Result<String, (StatusCode, String)> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, message);
    let form = QueryForm::parse(body).map_err(bad)?;
    match form.result_format.as_deref() {
        Some("txt") => {}
        Some(other) => {
            return Err(bad(format!(
                "resultFormat must be \"txt\", found \"{}\"",
                shorten(other)
            )));
        }
        None => return Err(bad("missing form field \"resultFormat\"".to_owned())),
    }
    let script = form
        .script
        .ok_or_else(|| bad("missing form field \"script\"".to_owned()))?;
    let parsed = parse_script(&script).map_err(|e| bad(e.to_string()))?;
    let history = shared
        .history
        .snapshot()
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    evaluate(&history, &parsed, &shared.options.server_time_zone).map_err(|e| bad(e.to_string()))
}

/// Whether `path` is [`QUERY_PATH`], allowing runs of slashes as a real TS
/// does (`//inmsf/Query`, from a monitor URL that ends in `/`).
fn is_query_path(path: &str) -> bool {
    let mut segments = path.split('/').filter(|segment| !segment.is_empty());
    path.starts_with('/')
        && segments.next() == Some("inmsf")
        && segments.next() == Some("Query")
        && segments.next().is_none()
        && !path.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::is_query_path;

    #[test]
    fn the_query_path_allows_repeated_slashes() {
        for path in [
            "/inmsf/Query",
            "//inmsf/Query",
            "/inmsf//Query",
            "///inmsf/Query",
        ] {
            assert!(is_query_path(path), "{path}");
        }
        for path in [
            "/inmsf/Query/",
            "/inmsf",
            "/inmsf/Query/x",
            "/Query",
            "inmsf/Query",
            "/inmsf/query",
        ] {
            assert!(!is_query_path(path), "{path}");
        }
    }
}
