use std::time::Duration;

use usage_model::{TrafficAnswer, TrafficQuery};

use crate::answer::parse_answer_into;
use crate::{Error, MonitorConfig, ScriptRequest, plan_requests};

/// The form content type of every query.
pub(crate) const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// Bytes of an error response's body kept for [`Error::HttpStatus`].
const STATUS_BODY_PREFIX_CHARS: usize = 200;
/// Bytes read from an error response's body at most.
pub(crate) const STATUS_BODY_READ_BYTES: usize = 1024;

/// What came of fetching: the answer and what it took.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchOutcome {
    /// Byte counts per `(tag, ip)` over every request.
    pub answer: TrafficAnswer,
    /// HTTP requests that succeeded (one per [`ScriptRequest`]).
    pub requests: usize,
    /// HTTP attempts made, retries included.
    pub attempts: usize,
}

impl FetchOutcome {
    pub(crate) fn empty() -> FetchOutcome {
        FetchOutcome {
            answer: TrafficAnswer::new(),
            requests: 0,
            attempts: 0,
        }
    }

    /// Adds the answer to `request`, received after `attempts` attempts.
    pub(crate) fn absorb(
        &mut self,
        body: &[u8],
        request: &ScriptRequest,
        attempts: usize,
    ) -> Result<(), Error> {
        parse_answer_into(body, request, &mut self.answer)?;
        self.requests += 1;
        self.attempts += attempts;
        Ok(())
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum AttemptFailure {
    /// No complete response: connect error, timeout, broken connection.
    Transport {
        cause: String,
        timeout: bool,
        retryable: bool,
    },
    /// A status other than 200.
    Status { status: u16, body_prefix: String },
    /// The body passed what the request can produce.
    TooLarge { limit: u64 },
}

impl AttemptFailure {
    fn is_retryable(&self) -> bool {
        match self {
            AttemptFailure::Transport { retryable, .. } => *retryable,
            AttemptFailure::Status { status, .. } => (500..600).contains(status),
            AttemptFailure::TooLarge { .. } => false,
        }
    }

    fn into_error(self, attempts: usize) -> Error {
        match self {
            AttemptFailure::Transport {
                cause,
                timeout: true,
                ..
            } => Error::Timeout { attempts, cause },
            AttemptFailure::Transport { cause, .. } => Error::Transport { attempts, cause },
            AttemptFailure::Status {
                status,
                body_prefix,
            } => Error::HttpStatus {
                status,
                body_prefix,
                attempts,
            },
            AttemptFailure::TooLarge { limit } => Error::AnswerTooLarge { limit },
        }
    }

    /// A failure reported by the HTTP library.
    pub(crate) fn from_http(err: &reqwest::Error) -> AttemptFailure {
        AttemptFailure::Transport {
            cause: error_chain(err),
            timeout: err.is_timeout(),
            retryable: !err.is_builder(),
        }
    }

    /// A non-200 status with the start of its body.
    pub(crate) fn status(status: u16, body: &[u8]) -> AttemptFailure {
        let text = String::from_utf8_lossy(body);
        AttemptFailure::Status {
            status,
            body_prefix: text.chars().take(STATUS_BODY_PREFIX_CHARS).collect(),
        }
    }
}

/// An error and its sources, as one line of text.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// Counts attempts and decides whether a failure is retried.
pub(crate) struct Retry<'c> {
    config: &'c MonitorConfig,
    attempts: usize,
}

impl<'c> Retry<'c> {
    pub(crate) fn new(config: &'c MonitorConfig) -> Retry<'c> {
        Retry {
            config,
            attempts: 0,
        }
    }

    /// Starts an attempt and returns its 1-based number.
    pub(crate) fn begin(&mut self) -> usize {
        self.attempts += 1;
        self.attempts
    }

    /// Attempts started so far.
    pub(crate) fn attempts(&self) -> usize {
        self.attempts
    }

    /// After a failed attempt: how long to wait before the next one, or the
    /// final error when the failure is not retried or no retry is left.
    pub(crate) fn after_failure(&self, failure: AttemptFailure) -> Result<Duration, Error> {
        let retries_used = self.attempts.saturating_sub(1);
        if failure.is_retryable() && retries_used < self.config.retries() as usize {
            let wait = self
                .config
                .backoff_before_retry(u32::try_from(self.attempts).unwrap_or(u32::MAX));
            tracing::debug!(
                attempt = self.attempts,
                failure = ?failure,
                wait_ms = wait.as_millis() as u64,
                "traffic sentinel attempt failed; retrying"
            );
            Ok(wait)
        } else {
            tracing::debug!(
                attempt = self.attempts,
                failure = ?failure,
                "traffic sentinel attempt failed; giving up"
            );
            Err(failure.into_error(self.attempts))
        }
    }
}

/// Collects an answer body, refusing it as soon as it passes its limit.
pub(crate) struct AnswerBuffer {
    bytes: Vec<u8>,
    limit: u64,
}

impl AnswerBuffer {
    /// A buffer for the answer to `request`, whose declared length (if any)
    /// is `content_length`.
    pub(crate) fn new(
        request: &ScriptRequest,
        content_length: Option<u64>,
    ) -> Result<AnswerBuffer, AttemptFailure> {
        let limit = request.max_answer_bytes();
        match content_length {
            Some(length) if length > limit => Err(AttemptFailure::TooLarge { limit }),
            Some(length) => Ok(AnswerBuffer {
                bytes: Vec::with_capacity(usize::try_from(length).unwrap_or(0)),
                limit,
            }),
            None => Ok(AnswerBuffer {
                bytes: Vec::new(),
                limit,
            }),
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<(), AttemptFailure> {
        if self.bytes.len() as u64 + chunk.len() as u64 > self.limit {
            return Err(AttemptFailure::TooLarge { limit: self.limit });
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Logs the start of an attempt (never the credentials).
pub(crate) fn log_attempt(config: &MonitorConfig, request: &ScriptRequest, attempt: usize) {
    tracing::debug!(
        url = %config.query_url(),
        attempt,
        script_bytes = request.script().len(),
        chunks = request.chunks().len(),
        max_rows = request.max_rows(),
        "posting traffic sentinel query"
    );
}

/// An asynchronous Traffic Sentinel client (on `tokio`).
///
/// Every attempt has the configured connect and total timeouts; connect
/// errors, timeouts, broken connections and 5xx statuses are retried with
/// exponential backoff (the query is read-only). Redirects are not followed.
/// System proxy settings (`HTTP_PROXY`, `NO_PROXY`, …) apply.
///
/// # Example
///
/// ```no_run
/// use time::macros::datetime;
/// use traffic_sentinel_client::{MonitorConfig, TrafficSentinelClient};
/// use usage_model::{QueryTag, TimeInterval, TrafficQuery};
///
/// # async fn run() -> Result<(), traffic_sentinel_client::Error> {
/// let config = MonitorConfig::builder("http://10.147.28.100:8080").build()?;
/// let client = TrafficSentinelClient::new(config)?;
/// let query = TrafficQuery {
///     tag: QueryTag(1),
///     interval: TimeInterval::new(datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-01 11:00 UTC)).unwrap(),
///     ips: vec!["203.0.113.7".parse().unwrap()],
/// };
/// let outcome = client.fetch(&[query]).await?;
/// for (tag, ip, counts) in outcome.answer.iter() {
///     println!("{tag} {ip} sent {} received {}", counts.sent, counts.received);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TrafficSentinelClient {
    config: MonitorConfig,
    http: reqwest::Client,
}

impl TrafficSentinelClient {
    /// A client for the monitor `config` describes.
    ///
    /// # Errors
    ///
    /// Returns [`Error::Config`] when the HTTP client cannot be set up (e.g.
    /// the TLS backend fails to initialise).
    pub fn new(config: MonitorConfig) -> Result<TrafficSentinelClient, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout())
            .timeout(config.total_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| Error::Config {
                what: "http client",
                value: config.query_url().to_string(),
                reason: error_chain(&err),
            })?;
        Ok(TrafficSentinelClient { config, http })
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// The requests [`TrafficSentinelClient::fetch`] would send for `queries`
    /// (see [`plan_requests`]).
    ///
    /// # Errors
    ///
    /// As [`plan_requests`].
    pub fn plan(&self, queries: &[TrafficQuery]) -> Result<Vec<ScriptRequest>, Error> {
        plan_requests(&self.config, queries)
    }

    /// Asks the monitor about every query, in as few requests as the limits
    /// allow, one request after the other, and joins their answers.
    ///
    /// # Errors
    ///
    /// The first error of any request: [`Error::Plan`] for invalid queries,
    /// [`Error::Transport`], [`Error::Timeout`] or [`Error::HttpStatus`] after
    /// the retries, [`Error::AnswerTooLarge`], and the answer errors of
    /// [`crate::parse_answer`]. Nothing is returned for the requests that
    /// succeeded before it.
    pub async fn fetch(&self, queries: &[TrafficQuery]) -> Result<FetchOutcome, Error> {
        let requests = self.plan(queries)?;
        let mut outcome = FetchOutcome::empty();
        for request in &requests {
            let (body, attempts) = self.fetch_body(request).await?;
            outcome.absorb(&body, request, attempts)?;
        }
        Ok(outcome)
    }

    /// Sends one planned request (with retries) and parses its answer.
    ///
    /// # Errors
    ///
    /// As [`TrafficSentinelClient::fetch`], except [`Error::Plan`].
    pub async fn fetch_request(&self, request: &ScriptRequest) -> Result<FetchOutcome, Error> {
        let (body, attempts) = self.fetch_body(request).await?;
        let mut outcome = FetchOutcome::empty();
        outcome.absorb(&body, request, attempts)?;
        Ok(outcome)
    }

    /// The body of a 200 answer to `request` and the attempts it took.
    async fn fetch_body(&self, request: &ScriptRequest) -> Result<(Vec<u8>, usize), Error> {
        let form = request.form_body();
        let mut retry = Retry::new(&self.config);
        loop {
            let attempt = retry.begin();
            log_attempt(&self.config, request, attempt);
            match self.attempt(request, &form).await {
                Ok(body) => return Ok((body, retry.attempts())),
                Err(failure) => tokio::time::sleep(retry.after_failure(failure)?).await,
            }
        }
    }

    async fn attempt(
        &self,
        request: &ScriptRequest,
        form: &str,
    ) -> Result<Vec<u8>, AttemptFailure> {
        let mut builder = self
            .http
            .post(self.config.query_url().clone())
            .header(reqwest::header::CONTENT_TYPE, FORM_CONTENT_TYPE)
            .body(form.to_owned());
        if let Some(credentials) = self.config.credentials() {
            builder = builder.basic_auth(&credentials.user, Some(&credentials.password));
        }
        let mut response = builder
            .send()
            .await
            .map_err(|err| AttemptFailure::from_http(&err))?;
        let status = response.status().as_u16();
        if status != 200 {
            let mut prefix = Vec::new();
            while prefix.len() < STATUS_BODY_READ_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => prefix.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            return Err(AttemptFailure::status(status, &prefix));
        }
        let mut buffer = AnswerBuffer::new(request, response.content_length())?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| AttemptFailure::from_http(&err))?
        {
            buffer.push(&chunk)?;
        }
        Ok(buffer.into_bytes())
    }
}
