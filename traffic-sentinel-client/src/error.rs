use usage_model::QueryTag;

/// The error type of this crate.
///
/// Every variant carries the offending value: the setting and its value, the
/// query tag, the answer line and its content, the HTTP status, the number of
/// attempts made. Credentials never appear in any of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A monitor setting was refused when the configuration was built.
    #[error("invalid {what} {value:?}: {reason}")]
    Config {
        /// The setting: `"monitor url"`, `"include zone"`, `"granularity"`, ….
        what: &'static str,
        /// The refused value, as text (user info of a URL is redacted).
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A query could not be turned into requests.
    #[error("cannot plan query {tag}: {reason}")]
    Plan {
        /// The tag of the query at fault.
        tag: QueryTag,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached, or the connection failed before the
    /// whole answer arrived, on every attempt.
    #[error("transport error after {attempts} attempt(s): {cause}")]
    Transport {
        /// Attempts made, retries included.
        attempts: usize,
        /// The last failure, as text.
        cause: String,
    },
    /// The connect or total timeout passed on every attempt.
    #[error("request timed out after {attempts} attempt(s): {cause}")]
    Timeout {
        /// Attempts made, retries included.
        attempts: usize,
        /// The last failure, as text.
        cause: String,
    },
    /// The server answered with a status other than `200 OK`.
    #[error("http status {status} after {attempts} attempt(s): {body_prefix:?}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// The first characters of the response body.
        body_prefix: String,
        /// Attempts made, retries included.
        attempts: usize,
    },
    /// An answer line is neither a row this request can produce nor the sentinel.
    #[error("malformed answer at line {line}: {reason}: {content:?}")]
    Malformed {
        /// The 1-based line number.
        line: usize,
        /// The line as received (lossily decoded, long lines cut short).
        content: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The answer ended before its sentinel line: it was cut short.
    #[error("answer truncated: no sentinel line after {rows_seen} row(s)")]
    Truncated {
        /// Complete rows read before the answer ended.
        rows_seen: usize,
    },
    /// The answer body was empty.
    #[error("answer is empty: expected rows and a sentinel line")]
    EmptyAnswer,
    /// The answer is longer than the request could ever produce; reading
    /// stopped at the limit.
    #[error("answer larger than the {limit} bytes the request can produce")]
    AnswerTooLarge {
        /// The largest body the request can produce, in bytes.
        limit: u64,
    },
}

impl Error {
    /// Whether this error is a timeout (connect or total).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Attempts made for the failing request, when the error came from the
    /// network (transport, timeout, HTTP status).
    pub fn attempts(&self) -> Option<usize> {
        match self {
            Error::Transport { attempts, .. }
            | Error::Timeout { attempts, .. }
            | Error::HttpStatus { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }
}
