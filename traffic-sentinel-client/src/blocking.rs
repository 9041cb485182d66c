//! A blocking Traffic Sentinel client, for callers without an async runtime.
//!
//! It plans, retries and parses exactly as the asynchronous
//! [`crate::TrafficSentinelClient`] does. Like `reqwest`'s blocking client, it
//! must not be created or dropped inside an async runtime.

use std::io::Read;
use std::time::Instant;

use usage_model::TrafficQuery;

use crate::client::{
    AnswerBuffer, AttemptFailure, FORM_CONTENT_TYPE, Retry, STATUS_BODY_READ_BYTES, error_chain,
    log_attempt,
};
use crate::{Error, FetchOutcome, MonitorConfig, ScriptRequest, plan_requests};

/// Bytes read from the connection at a time.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// A blocking Traffic Sentinel client.
///
/// Each attempt has the configured connect timeout; the total timeout bounds
/// sending the request and each read of the answer, and the answer is given
/// up once the total timeout has passed between reads. Retries and backoff
/// are those of the asynchronous client.
///
/// # Example
///
/// ```no_run
/// use time::macros::datetime;
/// use traffic_sentinel_client::blocking::TrafficSentinelClient;
/// use traffic_sentinel_client::MonitorConfig;
/// use usage_model::{QueryTag, TimeInterval, TrafficQuery};
///
/// let config = MonitorConfig::builder("http://10.147.28.100:8080").build()?;
/// let client = TrafficSentinelClient::new(config)?;
/// let query = TrafficQuery {
///     tag: QueryTag(1),
///     interval: TimeInterval::new(datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-01 11:00 UTC)).unwrap(),
///     ips: vec!["203.0.113.7".parse().unwrap()],
/// };
/// let outcome = client.fetch(&[query])?;
/// println!("{} pairs in {} request(s)", outcome.answer.len(), outcome.requests);
/// # Ok::<(), traffic_sentinel_client::Error>(())
/// ```
#[derive(Debug)]
pub struct TrafficSentinelClient {
    config: MonitorConfig,
    http: reqwest::blocking::Client,
}

impl TrafficSentinelClient {
    /// A client for the monitor `config` describes.
    ///
    /// # Errors
    ///
    /// Returns [`Error::Config`] when the HTTP client cannot be set up.
    pub fn new(config: MonitorConfig) -> Result<TrafficSentinelClient, Error> {
        let http = reqwest::blocking::Client::builder()
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

    /// The requests [`TrafficSentinelClient::fetch`] would send for `queries`.
    ///
    /// # Errors
    ///
    /// As [`plan_requests`].
    pub fn plan(&self, queries: &[TrafficQuery]) -> Result<Vec<ScriptRequest>, Error> {
        plan_requests(&self.config, queries)
    }

    /// Asks the monitor about every query, as
    /// [`crate::TrafficSentinelClient::fetch`] does, blocking until done.
    ///
    /// # Errors
    ///
    /// As [`crate::TrafficSentinelClient::fetch`].
    pub fn fetch(&self, queries: &[TrafficQuery]) -> Result<FetchOutcome, Error> {
        let requests = self.plan(queries)?;
        let mut outcome = FetchOutcome::empty();
        for request in &requests {
            let (body, attempts) = self.fetch_body(request)?;
            outcome.absorb(&body, request, attempts)?;
        }
        Ok(outcome)
    }

    /// Sends one planned request (with retries) and parses its answer.
    ///
    /// # Errors
    ///
    /// As [`TrafficSentinelClient::fetch`], except [`Error::Plan`].
    pub fn fetch_request(&self, request: &ScriptRequest) -> Result<FetchOutcome, Error> {
        let (body, attempts) = self.fetch_body(request)?;
        let mut outcome = FetchOutcome::empty();
        outcome.absorb(&body, request, attempts)?;
        Ok(outcome)
    }

    fn fetch_body(&self, request: &ScriptRequest) -> Result<(Vec<u8>, usize), Error> {
        let form = request.form_body();
        let mut retry = Retry::new(&self.config);
        loop {
            let attempt = retry.begin();
            log_attempt(&self.config, request, attempt);
            match self.attempt(request, &form) {
                Ok(body) => return Ok((body, retry.attempts())),
                Err(failure) => std::thread::sleep(retry.after_failure(failure)?),
            }
        }
    }

    fn attempt(&self, request: &ScriptRequest, form: &str) -> Result<Vec<u8>, AttemptFailure> {
        let started = Instant::now();
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
            .map_err(|err| AttemptFailure::from_http(&err))?;
        let status = response.status().as_u16();
        if status != 200 {
            let mut prefix = Vec::new();
            // The body only explains the status; a failure to read it is ignored.
            let _ = (&mut response)
                .take(STATUS_BODY_READ_BYTES as u64)
                .read_to_end(&mut prefix);
            return Err(AttemptFailure::status(status, &prefix));
        }
        let mut buffer = AnswerBuffer::new(request, response.content_length())?;
        let mut chunk = vec![0u8; READ_BUFFER_BYTES];
        loop {
            if started.elapsed() > self.config.total_timeout() {
                return Err(AttemptFailure::Transport {
                    cause: format!(
                        "answer not complete within the total timeout of {:?}",
                        self.config.total_timeout()
                    ),
                    timeout: true,
                    retryable: true,
                });
            }
            let read = match response.read(&mut chunk) {
                Ok(read) => read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(io_failure(&err)),
            };
            if read == 0 {
                return Ok(buffer.into_bytes());
            }
            buffer.push(&chunk[..read])?;
        }
    }
}

/// A failure while reading the answer body.
fn io_failure(err: &std::io::Error) -> AttemptFailure {
    let http_timeout = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
        .is_some_and(reqwest::Error::is_timeout);
    AttemptFailure::Transport {
        cause: error_chain(err),
        timeout: http_timeout || err.kind() == std::io::ErrorKind::TimedOut,
        retryable: true,
    }
}
