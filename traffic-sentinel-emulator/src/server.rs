//! The HTTP server: `POST /inmsf/Query`, fault injection, request counting.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use time::UtcOffset;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use url::Url;

use crate::error::{Error, shorten};
use crate::history::FlowHistory;
use crate::script::{evaluate, parse_script};

/// The path TS serves queries on.
pub const QUERY_PATH: &str = "/inmsf/Query";

/// The line [`Fault::GarbageLine`] inserts among the rows of an answer.
pub const GARBAGE_LINE: &str = "#!garbage: this is not a row";

/// The body [`Fault::HtmlErrorPage`] answers with (status 200, `text/html`).
pub const HTML_ERROR_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Error</title></head>\
<body><h1>Internal Server Error</h1><p>The query could not be run.</p></body></html>\n";

/// How long in-flight connections may take to finish after a shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long a [`Fault::DropMidBody`] answer waits after its partial body
/// before closing, so the partial body reaches the client first.
const DROP_PAUSE: Duration = Duration::from_millis(50);

/// How the emulator serves, besides its history.
///
/// A small by-value builder:
///
/// ```
/// use time::macros::offset;
/// use traffic_sentinel_emulator::EmulatorOptions;
///
/// let options = EmulatorOptions::new()
///     .server_utc_offset(offset!(+05:30))
///     .max_body_bytes(1 << 20);
/// assert_eq!(options.get_max_body_bytes(), 1 << 20);
/// ```
#[derive(Clone)]
pub struct EmulatorOptions {
    server_utc_offset: UtcOffset,
    max_body_bytes: usize,
    basic_auth: Option<(String, String)>,
}

impl Default for EmulatorOptions {
    fn default() -> EmulatorOptions {
        EmulatorOptions {
            server_utc_offset: UtcOffset::UTC,
            max_body_bytes: 64 << 20,
            basic_auth: None,
        }
    }
}

impl fmt::Debug for EmulatorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorOptions")
            .field("server_utc_offset", &self.server_utc_offset)
            .field("max_body_bytes", &self.max_body_bytes)
            .field(
                "basic_auth",
                &self
                    .basic_auth
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .finish()
    }
}

impl EmulatorOptions {
    /// The default options.
    pub fn new() -> EmulatorOptions {
        EmulatorOptions::default()
    }

    /// The UTC offset in which the server reads the `"yyyyMMdd HH:mm:ss"`
    /// interval strings of scripts (TS's local time). By default, UTC.
    pub fn server_utc_offset(mut self, offset: UtcOffset) -> EmulatorOptions {
        self.server_utc_offset = offset;
        self
    }

    /// The largest request body accepted; larger requests get
    /// `413 Payload Too Large` without being read in full. By default, 64 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> EmulatorOptions {
        self.max_body_bytes = bytes;
        self
    }

    /// Requires HTTP basic credentials on queries; requests without them (or
    /// with others) get `401 Unauthorized`. By default, no credentials are
    /// required and any `Authorization` header is ignored.
    pub fn basic_auth(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> EmulatorOptions {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// The configured server UTC offset.
    pub fn get_server_utc_offset(&self) -> UtcOffset {
        self.server_utc_offset
    }

    /// The configured body size limit.
    pub fn get_max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}

/// A misbehaviour the emulator can be told to show, through [`FaultControl`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Wait this long (after reading the request) before answering.
    Delay(Duration),
    /// Answer with this HTTP status (400..=599) and a short text body instead
    /// of running the script.
    HttpStatus(u16),
    /// Send the status and headers with the full answer's `Content-Length`,
    /// then only the first half of the body, then close the connection.
    DropMidBody,
    /// Answer `200` with a correct `Content-Length`, but without the last
    /// line (the `end,COUNT` sentinel of a client script) and, when two or
    /// more lines remain, without the last of those rows too.
    TruncateBeforeSentinel,
    /// Insert [`GARBAGE_LINE`] in the middle of the answer's lines.
    GarbageLine,
    /// Answer `200` with `text/html` [`HTML_ERROR_PAGE`] instead of running the script.
    HtmlErrorPage,
    /// Answer `200` with an empty `text/plain` body.
    EmptyBody,
}

impl Fault {
    /// `503 Service Unavailable`, the usual transient server error.
    pub const SERVICE_UNAVAILABLE: Fault = Fault::HttpStatus(503);
}

/// For how many query requests a fault applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// The next `K` requests to the query path, whatever their outcome;
    /// `Next(u32::MAX)` means [`Times::Always`] and `Next(0)` removes the fault.
    Next(u32),
    /// Every request until cleared.
    Always,
}

impl Times {
    fn normalized(self) -> Option<Times> {
        match self {
            Times::Next(0) => None,
            Times::Next(u32::MAX) | Times::Always => Some(Times::Always),
            other => Some(other),
        }
    }

    /// Uses up one request; returns whether the fault applies to it.
    fn consume(slot: &mut Option<(Fault, Times)>) -> Option<Fault> {
        let (fault, times) = (*slot)?;
        if let Times::Next(k) = times {
            *slot = (k > 1).then_some((fault, Times::Next(k - 1)));
        }
        Some(fault)
    }
}

#[derive(Debug, Default)]
struct FaultState {
    /// `Fault::Delay`, which combines with any response fault.
    delay: Option<(Fault, Times)>,
    /// Any other fault; setting one replaces the previous.
    response: Option<(Fault, Times)>,
}

/// What faults are to be applied to one request.
#[derive(Debug, Default)]
struct FaultPlan {
    delay: Option<Duration>,
    response: Option<Fault>,
}

/// A handle to set and clear an emulator's faults at runtime; clones share
/// the same state.
///
/// There are two slots: a [`Fault::Delay`], and one response fault (any
/// other variant). A delay combines with a response fault; setting a response
/// fault replaces the previous one. Faults apply only to requests to
/// [`QUERY_PATH`].
///
/// ```
/// use traffic_sentinel_emulator::{Fault, FaultControl, Times};
///
/// let faults = FaultControl::default();
/// faults.set(Fault::SERVICE_UNAVAILABLE, Times::Next(2)).unwrap();
/// assert_eq!(faults.active(), vec![(Fault::HttpStatus(503), Times::Next(2))]);
/// faults.clear();
/// assert!(faults.active().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct FaultControl {
    state: Arc<Mutex<FaultState>>,
}

impl FaultControl {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `fault` to the next requests as `times` says.
    ///
    /// # Errors
    ///
    /// [`Error::FaultStatus`] when a [`Fault::HttpStatus`] is outside `400..=599`.
    pub fn set(&self, fault: Fault, times: Times) -> Result<(), Error> {
        if let Fault::HttpStatus(code) = fault
            && !(400..=599).contains(&code)
        {
            return Err(Error::FaultStatus(code));
        }
        let entry = times.normalized().map(|times| (fault, times));
        let mut state = self.lock();
        match fault {
            Fault::Delay(_) => state.delay = entry,
            _ => state.response = entry,
        }
        Ok(())
    }

    /// Removes every fault.
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
    }

    /// The faults still to be applied, delay first.
    pub fn active(&self) -> Vec<(Fault, Times)> {
        let state = self.lock();
        state.delay.into_iter().chain(state.response).collect()
    }

    fn take(&self) -> FaultPlan {
        let mut state = self.lock();
        let delay = match Times::consume(&mut state.delay) {
            Some(Fault::Delay(d)) => Some(d),
            _ => None,
        };
        FaultPlan {
            delay,
            response: Times::consume(&mut state.response),
        }
    }
}

struct Shared {
    history: Arc<FlowHistory>,
    options: EmulatorOptions,
    expected_authorization: Option<String>,
    faults: FaultControl,
    served: AtomicU64,
}

/// A running Traffic Sentinel emulator: an HTTP server answering
/// `POST /inmsf/Query` over a [`FlowHistory`].
///
/// Stop it with [`Emulator::shutdown`]; dropping it stops it too (in-flight
/// requests get a few seconds to finish).
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
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("local_addr", &self.local_addr)
            .field("requests_served", &self.requests_served())
            .field("options", &self.shared.options)
            .field("background", &self.thread.is_some())
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
    /// [`Error::Listen`] when the address cannot be bound.
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
    /// when the runtime or its thread cannot be started.
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
        let expected_authorization = options.basic_auth.as_ref().map(|(user, password)| {
            format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
        });
        let shared = Arc::new(Shared {
            history: Arc::new(history),
            options,
            expected_authorization,
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

    /// The history the emulator answers from.
    pub fn history(&self) -> &FlowHistory {
        &self.shared.history
    }

    /// The options the emulator runs with.
    pub fn options(&self) -> &EmulatorOptions {
        &self.shared.options
    }

    /// Stops accepting connections, lets in-flight requests finish (for a
    /// few seconds at most; injected delays are cut short) and waits until
    /// the server has stopped.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
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
    if request.uri().path() != QUERY_PATH {
        let message = format!("not found: {}", shorten(request.uri().path()));
        return Ok(text_response(StatusCode::NOT_FOUND, message));
    }
    if request.method() != Method::POST {
        let message = format!(
            "method {} not allowed on {QUERY_PATH}, use POST",
            request.method()
        );
        let mut response = text_response(StatusCode::METHOD_NOT_ALLOWED, message);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
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

    if let Some(expected) = &shared.expected_authorization {
        let given = request.headers().get(header::AUTHORIZATION);
        if !given.is_some_and(|value| authorization_matches(value.as_bytes(), expected)) {
            let mut response = text_response(
                StatusCode::UNAUTHORIZED,
                "authentication required".to_owned(),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Traffic Sentinel\""),
            );
            return response;
        }
    }

    let max = shared.options.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return too_large(max);
    }
    let content_type_ok = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| is_form_content_type(v.as_bytes()));
    let body = match Limited::new(request.into_body(), max).collect().await {
        Ok(collected) => collected.to_bytes(),
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

fn is_form_content_type(value: &[u8]) -> bool {
    let value = String::from_utf8_lossy(value);
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

fn authorization_matches(given: &[u8], expected: &str) -> bool {
    let given = String::from_utf8_lossy(given);
    let given = given.trim();
    match (given.split_once(' '), expected.split_once(' ')) {
        (Some((scheme, credentials)), Some((want_scheme, want_credentials))) => {
            scheme.eq_ignore_ascii_case(want_scheme) && credentials.trim() == want_credentials
        }
        _ => false,
    }
}

/// Decodes the form, runs the script and returns the answer text, or the
/// status and one-line message of a refusal.
fn answer_form(shared: &Shared, body: &[u8]) -> Result<String, (StatusCode, String)> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, message);
    let form = Form::parse(body).map_err(bad)?;
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
    Ok(evaluate(
        &shared.history,
        &parsed,
        shared.options.server_utc_offset,
    ))
}

/// The fields of a query form.
#[derive(Debug, Default, PartialEq, Eq)]
struct Form {
    script: Option<String>,
    authenticate: Option<String>,
    result_format: Option<String>,
}

impl Form {
    /// Parses `application/x-www-form-urlencoded`: `&`-separated `key=value`
    /// pairs, `+` for space, `%XX` escapes; unknown fields are ignored.
    fn parse(body: &[u8]) -> Result<Form, String> {
        let mut form = Form::default();
        for pair in body.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            let key = percent_decode(key, "a field name")?;
            let slot = match key.as_str() {
                "script" => &mut form.script,
                "authenticate" => &mut form.authenticate,
                "resultFormat" => &mut form.result_format,
                _ => continue,
            };
            if slot.is_some() {
                return Err(format!("form field \"{key}\" given twice"));
            }
            *slot = Some(percent_decode(value, &format!("form field \"{key}\""))?);
        }
        Ok(form)
    }
}

fn percent_decode(input: &[u8], what: &str) -> Result<String, String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    // Copies each run of plain bytes at once.
    while let Some(k) = rest.iter().position(|&b| b == b'%' || b == b'+') {
        out.extend_from_slice(&rest[..k]);
        if rest[k] == b'+' {
            out.push(b' ');
            rest = &rest[k + 1..];
            continue;
        }
        let decoded = rest
            .get(k + 1..k + 3)
            .and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?));
        let Some(byte) = decoded else {
            let at = input.len() - rest.len() + k;
            let end = (at + 3).min(input.len());
            let seq = String::from_utf8_lossy(&input[at..end]);
            return Err(format!(
                "invalid percent-encoding {seq:?} in {what} at byte {at}"
            ));
        };
        out.push(byte);
        rest = &rest[k + 3..];
    }
    out.extend_from_slice(rest);
    String::from_utf8(out).map_err(|e| {
        format!(
            "{what} is not valid utf-8 (at decoded byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn truncate_before_sentinel(answer: &str) -> String {
    let mut lines: Vec<&str> = answer.split_inclusive('\n').collect();
    lines.pop();
    if lines.len() >= 2 {
        lines.pop();
    }
    lines.concat()
}

fn insert_garbage_line(answer: &str) -> String {
    let mut lines: Vec<&str> = answer.split_inclusive('\n').collect();
    let garbage = format!("{GARBAGE_LINE}\n");
    lines.insert(lines.len() / 2, &garbage);
    lines.concat()
}

fn text_response(status: StatusCode, mut text: String) -> Response<AnswerBody> {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let mut response = Response::new(AnswerBody::full(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A response whose `Content-Length` announces `text` but whose connection
/// closes after the first half of it.
fn dropped_mid_body(status: StatusCode, text: String) -> Response<AnswerBody> {
    let announced = text.len().max(1);
    let sent = Bytes::from(text).slice(..announced / 2);
    let mut response = Response::new(AnswerBody::broken(sent));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
    response
}

/// A response body: either all of it at once, or part of it followed by a
/// failure that makes the server close the connection.
pub(crate) struct AnswerBody {
    kind: BodyKind,
}

enum BodyKind {
    Full(Option<Bytes>),
    Broken {
        chunk: Option<Bytes>,
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl AnswerBody {
    fn full(bytes: Bytes) -> AnswerBody {
        AnswerBody {
            kind: BodyKind::Full(Some(bytes)),
        }
    }

    fn broken(chunk: Bytes) -> AnswerBody {
        AnswerBody {
            kind: BodyKind::Broken {
                chunk: Some(chunk),
                pause: None,
            },
        }
    }
}

/// The failure that ends a [`Fault::DropMidBody`] body.
#[derive(Debug)]
pub(crate) struct ConnectionDropped;

impl fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped mid-body by fault injection")
    }
}

impl std::error::Error for ConnectionDropped {}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = ConnectionDropped;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ConnectionDropped>>> {
        match &mut self.kind {
            BodyKind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            BodyKind::Broken { chunk, pause } => {
                if let Some(chunk) = chunk.take() {
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                let sleep = pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(DROP_PAUSE)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Some(Err(ConnectionDropped)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, BodyKind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            BodyKind::Full(None) => SizeHint::with_exact(0),
            BodyKind::Broken { .. } => SizeHint::default(),
        }
    }
}

/// Standard base64 with padding (for the expected basic-auth header).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_plus_percent_order_and_unknown_fields() {
        let form =
            Form::parse(b"resultFormat=txt&x=1&&script=var+n%20%3D+0%3B%0A&authenticate=basic")
                .unwrap();
        assert_eq!(form.script.as_deref(), Some("var n = 0;\n"));
        assert_eq!(form.authenticate.as_deref(), Some("basic"));
        assert_eq!(form.result_format.as_deref(), Some("txt"));
        assert!(
            Form::parse(b"script=a&script=b")
                .unwrap_err()
                .contains("given twice")
        );
        let err = Form::parse(b"script=%zz").unwrap_err();
        assert!(
            err.contains("invalid percent-encoding \"%zz\" in form field \"script\""),
            "{err}"
        );
        assert!(Form::parse(b"script=%4").unwrap_err().contains("\"%4\""));
        assert!(
            Form::parse(b"script=%ff")
                .unwrap_err()
                .contains("not valid utf-8")
        );
        assert_eq!(Form::parse(b"script").unwrap().script.as_deref(), Some(""));
    }

    #[test]
    fn truncation_and_garbage() {
        assert_eq!(truncate_before_sentinel("a\nb\nc\nend,3\n"), "a\nb\n");
        assert_eq!(truncate_before_sentinel("a\nend,1\n"), "a\n");
        assert_eq!(truncate_before_sentinel("end,0\n"), "");
        assert_eq!(
            insert_garbage_line("a\nb\nend,2\n"),
            format!("a\n{GARBAGE_LINE}\nb\nend,2\n")
        );
        assert_eq!(
            insert_garbage_line("end,0\n"),
            format!("{GARBAGE_LINE}\nend,0\n")
        );
    }

    #[test]
    fn fault_counts_run_down() {
        let faults = FaultControl::default();
        faults.set(Fault::GarbageLine, Times::Next(2)).unwrap();
        faults
            .set(Fault::Delay(Duration::from_millis(1)), Times::Always)
            .unwrap();
        for _ in 0..2 {
            let plan = faults.take();
            assert_eq!(plan.response, Some(Fault::GarbageLine));
            assert_eq!(plan.delay, Some(Duration::from_millis(1)));
        }
        let plan = faults.take();
        assert_eq!(plan.response, None);
        assert_eq!(plan.delay, Some(Duration::from_millis(1)));
        faults.set(Fault::EmptyBody, Times::Next(u32::MAX)).unwrap();
        assert_eq!(faults.active()[1], (Fault::EmptyBody, Times::Always));
        faults.set(Fault::EmptyBody, Times::Next(0)).unwrap();
        assert_eq!(faults.active().len(), 1);
        assert!(matches!(
            faults.set(Fault::HttpStatus(200), Times::Always),
            Err(Error::FaultStatus(200))
        ));
        faults.clear();
        assert!(faults.active().is_empty());
    }

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert!(authorization_matches(
            b"basic  QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        ));
        assert!(!authorization_matches(b"Bearer x", "Basic x"));
    }

    /// Byte by byte, the straightforward way.
    fn percent_decode_bytewise(input: &[u8], what: &str) -> Result<String, String> {
        let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            match input[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let decoded = input
                        .get(i + 1..i + 3)
                        .and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?));
                    let Some(byte) = decoded else {
                        let end = (i + 3).min(input.len());
                        let seq = String::from_utf8_lossy(&input[i..end]);
                        return Err(format!(
                            "invalid percent-encoding {seq:?} in {what} at byte {i}"
                        ));
                    };
                    out.push(byte);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|e| {
            format!(
                "{what} is not valid utf-8 (at decoded byte {})",
                e.utf8_error().valid_up_to()
            )
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn percent_decoding_agrees_with_the_bytewise_decoder(
            input in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just(b'%'),
                    proptest::prelude::Just(b'+'),
                    proptest::sample::select(b"0123456789abcdefABCDEFgz,&= ".to_vec()),
                    proptest::prelude::any::<u8>(),
                ],
                0..60,
            ),
        ) {
            proptest::prop_assert_eq!(
                percent_decode(&input, "x"),
                percent_decode_bytewise(&input, "x")
            );
        }
    }

    #[test]
    fn options_debug_redacts_the_password() {
        let options = EmulatorOptions::new().basic_auth("user", "s3cret");
        let debug = format!("{options:?}");
        assert!(
            debug.contains("user") && !debug.contains("s3cret"),
            "{debug}"
        );
    }
}
