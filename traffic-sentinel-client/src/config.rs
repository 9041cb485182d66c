use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::UtcOffset;
use url::Url;
use usage_model::{Grid, ServerTimeZone};

use crate::Error;

const REDACTED: &str = "<redacted>";

/// A Traffic Sentinel zone name, such as `EXTERNAL`: the zones the
/// `sourcezone`/`destinationzone` filters of a query name.
///
/// Only ASCII letters, digits, `_`, `.` and `-` are allowed, so a zone name can
/// never change the meaning of the script it is written into. This is not the
/// cloud's availability zone ([`usage_model::ZoneId`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TsZone(String);

impl TsZone {
    /// Validates `name` as a zone name (`[A-Za-z0-9_.-]+`).
    ///
    /// # Errors
    ///
    /// Returns [`Error::Config`] naming the zone when it is empty or holds any
    /// other character.
    ///
    /// # Example
    ///
    /// ```
    /// use traffic_sentinel_client::TsZone;
    ///
    /// assert_eq!(TsZone::new("EXTERNAL").unwrap().as_str(), "EXTERNAL");
    /// assert!(TsZone::new("EXTERNAL\"").is_err());
    /// ```
    pub fn new(name: &str) -> Result<TsZone, Error> {
        Self::validated("zone", name)
    }

    fn validated(what: &'static str, name: &str) -> Result<TsZone, Error> {
        let reason = if name.is_empty() {
            Some("must not be empty".to_owned())
        } else {
            name.chars()
                .find(|&c| !usage_model::is_ts_zone_char(c))
                .map(|c| format!("character {c:?} is not allowed; use only [A-Za-z0-9_.-]"))
        };
        match reason {
            Some(reason) => Err(Error::Config {
                what,
                value: name.to_owned(),
                reason,
            }),
            None => Ok(TsZone(name.to_owned())),
        }
    }

    /// The zone name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TsZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TsZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl FromStr for TsZone {
    type Err = Error;

    fn from_str(s: &str) -> Result<TsZone, Error> {
        TsZone::new(s)
    }
}

/// HTTP basic credentials. Neither part is ever printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// How to reach and query one Traffic Sentinel monitor.
///
/// Built with [`MonitorConfig::builder`], which validates every setting. The
/// `Debug` output never shows the credentials.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use traffic_sentinel_client::MonitorConfig;
///
/// let config = MonitorConfig::builder("http://10.147.28.100:8080")
///     .include_zones(["EXTERNAL", "PEERING"])
///     .exclude_zones(["INTERNAL"])
///     .server_utc_offset(time::macros::offset!(+05:30))
///     .granularity(usage_model::Grid::MINUTELY)
///     .total_timeout(Duration::from_secs(30))
///     .credentials("reports", "s3cret")
///     .build()?;
/// assert_eq!(config.query_url().as_str(), "http://10.147.28.100:8080/inmsf/Query");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), traffic_sentinel_client::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    url: Url,
    query_url: Url,
    include_zones: Vec<TsZone>,
    exclude_zones: Vec<TsZone>,
    server_time_zone: ServerTimeZone,
    granularity: Grid,
    connect_timeout: Duration,
    total_timeout: Duration,
    retries: u32,
    retry_backoff: Duration,
    max_retry_backoff: Duration,
    max_ips_per_query: usize,
    max_script_bytes: usize,
    credentials: Option<Credentials>,
}

impl MonitorConfig {
    /// Starts a configuration for the monitor at `url`, e.g.
    /// `http://10.147.28.100:8080`. Every other setting has a default; the URL
    /// is checked by [`MonitorConfigBuilder::build`].
    pub fn builder(url: &str) -> MonitorConfigBuilder {
        MonitorConfigBuilder {
            url: url.to_owned(),
            include_zones: vec!["EXTERNAL".to_owned()],
            exclude_zones: Vec::new(),
            server_time_zone: ServerTimeZone::UTC,
            granularity: Grid::HOURLY,
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(120),
            retries: 3,
            retry_backoff: Duration::from_millis(500),
            max_retry_backoff: Duration::from_secs(30),
            max_ips_per_query: 10_000,
            max_script_bytes: 4 * 1024 * 1024,
            credentials: None,
        }
    }

    /// The monitor's base URL (scheme, host, optional port, path `/`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL queries are posted to: `{url}/inmsf/Query`.
    pub fn query_url(&self) -> &Url {
        &self.query_url
    }

    /// Zones a flow's other end must be in to count (empty: any zone).
    pub fn include_zones(&self) -> &[TsZone] {
        &self.include_zones
    }

    /// Zones a flow's other end must not be in to count.
    pub fn exclude_zones(&self) -> &[TsZone] {
        &self.exclude_zones
    }

    /// The time zone the server reads interval strings in (its local time).
    pub fn server_time_zone(&self) -> &ServerTimeZone {
        &self.server_time_zone
    }

    /// The server's time grid: every interval boundary is a whole multiple of
    /// it from the Unix epoch.
    pub fn granularity(&self) -> Grid {
        self.granularity
    }

    /// How long connecting to the server may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long one attempt may take, from connecting to the last answer byte.
    pub fn total_timeout(&self) -> Duration {
        self.total_timeout
    }

    /// How many times a failed attempt is retried (connect errors, timeouts,
    /// broken connections and 5xx only).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The wait before the first retry; it doubles for each further retry.
    pub fn retry_backoff(&self) -> Duration {
        self.retry_backoff
    }

    /// The longest wait between two attempts.
    pub fn max_retry_backoff(&self) -> Duration {
        self.max_retry_backoff
    }

    /// The most addresses one `topN` query names.
    pub fn max_ips_per_query(&self) -> usize {
        self.max_ips_per_query
    }

    /// The most bytes of script one request carries (before form encoding).
    pub fn max_script_bytes(&self) -> usize {
        self.max_script_bytes
    }

    /// The basic-auth user name, when credentials are set.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.user.as_str())
    }

    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The wait before retry number `retry` (1 for the first retry):
    /// `retry_backoff × 2^(retry-1)`, at most `max_retry_backoff`.
    pub fn backoff_before_retry(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_backoff
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_retry_backoff)
    }
}

impl fmt::Debug for MonitorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorConfig")
            .field("url", &self.url.as_str())
            .field("include_zones", &self.include_zones)
            .field("exclude_zones", &self.exclude_zones)
            .field(
                "server_time_zone",
                &format_args!("{}", self.server_time_zone),
            )
            .field("granularity", &format_args!("{}", self.granularity))
            .field("connect_timeout", &self.connect_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_retry_backoff", &self.max_retry_backoff)
            .field("max_ips_per_query", &self.max_ips_per_query)
            .field("max_script_bytes", &self.max_script_bytes)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// Builder of a [`MonitorConfig`]; see [`MonitorConfig::builder`].
///
/// Settings are checked only by [`MonitorConfigBuilder::build`]. The `Debug`
/// output never shows the credentials.
#[derive(Clone)]
pub struct MonitorConfigBuilder {
    url: String,
    include_zones: Vec<String>,
    exclude_zones: Vec<String>,
    server_time_zone: ServerTimeZone,
    granularity: Grid,
    connect_timeout: Duration,
    total_timeout: Duration,
    retries: u32,
    retry_backoff: Duration,
    max_retry_backoff: Duration,
    max_ips_per_query: usize,
    max_script_bytes: usize,
    credentials: Option<Credentials>,
}

impl MonitorConfigBuilder {
    /// Zones whose traffic counts: sent bytes count when the destination is in
    /// one of them, received bytes when the source is (CloudStack's
    /// `traffic.sentinel.include.zones`). An empty list means any zone.
    ///
    /// By default, `["EXTERNAL"]`.
    pub fn include_zones<I, S>(mut self, zones: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.include_zones = zones.into_iter().map(Into::into).collect();
        self
    }

    /// Zones whose traffic never counts (CloudStack's
    /// `traffic.sentinel.exclude.zones`).
    ///
    /// By default, none.
    pub fn exclude_zones<I, S>(mut self, zones: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exclude_zones = zones.into_iter().map(Into::into).collect();
        self
    }

    /// The time zone the server reads interval strings in (its local time):
    /// a fixed offset or an IANA zone with its daylight-saving changes
    /// ([`ServerTimeZone`]). It is never taken from this machine's time
    /// zone. Boundaries in a repeated autumn hour are written as their
    /// earlier reading, as [`plan_requests`](crate::plan_requests)
    /// describes.
    ///
    /// By default, UTC.
    pub fn server_time_zone(mut self, zone: ServerTimeZone) -> Self {
        self.server_time_zone = zone;
        self
    }

    /// A server time zone at the fixed UTC `offset`: the same as
    /// `server_time_zone(ServerTimeZone::fixed(offset))`.
    ///
    /// By default, UTC.
    pub fn server_utc_offset(self, offset: UtcOffset) -> Self {
        self.server_time_zone(ServerTimeZone::fixed(offset))
    }

    /// The server's consolidation grid: every query interval must start and
    /// end on it. It must be the server's real bucket size (see [`Grid`]).
    ///
    /// By default, [`Grid::HOURLY`] (TS's hourly historical view).
    pub fn granularity(mut self, granularity: Grid) -> Self {
        self.granularity = granularity;
        self
    }

    /// How long connecting may take; must be positive.
    ///
    /// By default, 10 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may take, from connecting to reading the last
    /// answer byte; must be positive.
    ///
    /// By default, 120 seconds.
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// How many times an attempt that failed on a connect error, a timeout, a
    /// broken connection or a 5xx status is retried. Other failures are never
    /// retried.
    ///
    /// By default, 3.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The wait before the first retry; each further retry waits twice as
    /// long, up to [`MonitorConfigBuilder::max_retry_backoff`].
    ///
    /// By default, 500 milliseconds.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// The longest wait between two attempts.
    ///
    /// By default, 30 seconds.
    pub fn max_retry_backoff(mut self, backoff: Duration) -> Self {
        self.max_retry_backoff = backoff;
        self
    }

    /// The most addresses one `topN` query may name; larger queries are
    /// split. Must be at least 1.
    ///
    /// By default, 10,000.
    pub fn max_ips_per_query(mut self, max: usize) -> Self {
        self.max_ips_per_query = max;
        self
    }

    /// The most script bytes (before form encoding) one request may carry;
    /// more queries are spread over more requests. Must be at least 1.
    ///
    /// By default, 4 MiB.
    pub fn max_script_bytes(mut self, max: usize) -> Self {
        self.max_script_bytes = max;
        self
    }

    /// HTTP basic credentials for the monitor. They are never printed by
    /// `Debug`, logs or errors.
    ///
    /// By default, none (no `Authorization` header).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Checks every setting and builds the configuration.
    ///
    /// # Errors
    ///
    /// Returns [`Error::Config`] naming the setting, its value and the reason
    /// when: the URL does not parse, its scheme is not `http`/`https`, it has
    /// no host, or it has user info, a path other than `/`, a query or a
    /// fragment; a zone name is not `[A-Za-z0-9_.-]+`; a timeout is zero; the maximum IPs
    /// per query or script bytes is zero; the credentials hold a control
    /// character or the user a `:` (credentials are shown as `<redacted>`).
    pub fn build(self) -> Result<MonitorConfig, Error> {
        let url = validate_url(&self.url)?;
        let query_url = url.join("inmsf/Query").map_err(|err| Error::Config {
            what: "monitor url",
            value: redact_userinfo(&self.url),
            reason: err.to_string(),
        })?;
        let include_zones = self
            .include_zones
            .iter()
            .map(|z| TsZone::validated("include zone", z))
            .collect::<Result<Vec<_>, _>>()?;
        let exclude_zones = self
            .exclude_zones
            .iter()
            .map(|z| TsZone::validated("exclude zone", z))
            .collect::<Result<Vec<_>, _>>()?;
        for (what, timeout) in [
            ("connect timeout", self.connect_timeout),
            ("total timeout", self.total_timeout),
        ] {
            if timeout.is_zero() {
                return Err(Error::Config {
                    what,
                    value: format!("{timeout:?}"),
                    reason: "must be positive".to_owned(),
                });
            }
        }
        for (what, max) in [
            ("max ips per query", self.max_ips_per_query),
            ("max script bytes", self.max_script_bytes),
        ] {
            if max == 0 {
                return Err(Error::Config {
                    what,
                    value: max.to_string(),
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        if let Some(credentials) = &self.credentials {
            let reason = if credentials.user.contains(':') {
                Some("the user must not contain ':'")
            } else if credentials.user.chars().any(char::is_control)
                || credentials.password.chars().any(char::is_control)
            {
                Some("must not contain control characters")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::Config {
                    what: "credentials",
                    value: REDACTED.to_owned(),
                    reason: reason.to_owned(),
                });
            }
        }
        Ok(MonitorConfig {
            url,
            query_url,
            include_zones,
            exclude_zones,
            server_time_zone: self.server_time_zone,
            granularity: self.granularity,
            connect_timeout: self.connect_timeout,
            total_timeout: self.total_timeout,
            retries: self.retries,
            retry_backoff: self.retry_backoff,
            max_retry_backoff: self.max_retry_backoff,
            max_ips_per_query: self.max_ips_per_query,
            max_script_bytes: self.max_script_bytes,
            credentials: self.credentials,
        })
    }
}

impl fmt::Debug for MonitorConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorConfigBuilder")
            .field("url", &redact_userinfo(&self.url))
            .field("include_zones", &self.include_zones)
            .field("exclude_zones", &self.exclude_zones)
            .field(
                "server_time_zone",
                &format_args!("{}", self.server_time_zone),
            )
            .field("granularity", &format_args!("{}", self.granularity))
            .field("connect_timeout", &self.connect_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_retry_backoff", &self.max_retry_backoff)
            .field("max_ips_per_query", &self.max_ips_per_query)
            .field("max_script_bytes", &self.max_script_bytes)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// The monitor URL rule of CloudStack's `addTrafficMonitor`: `http` or
/// `https`, a host, an optional port, and nothing else.
fn validate_url(text: &str) -> Result<Url, Error> {
    let refuse = |reason: &str| Error::Config {
        what: "monitor url",
        value: redact_userinfo(text),
        reason: reason.to_owned(),
    };
    let url = Url::parse(text).map_err(|err| refuse(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse(&format!(
            "scheme {:?} is not supported; use http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "must not hold user info; give credentials separately",
        ));
    }
    if !matches!(url.path(), "" | "/") {
        return Err(refuse(&format!(
            "must not have a path (found {:?})",
            url.path()
        )));
    }
    if url.query().is_some() {
        return Err(refuse("must not have a query"));
    }
    if url.fragment().is_some() {
        return Err(refuse("must not have a fragment"));
    }
    Ok(url)
}

/// `text` with any user info of its authority replaced by `<redacted>`, so a
/// password given inside a URL never reaches an error message or a log.
fn redact_userinfo(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &text[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}{REDACTED}{}", &text[..authority_start], &rest[at..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(result: Result<MonitorConfig, Error>) -> (&'static str, String, String) {
        match result {
            Err(Error::Config {
                what,
                value,
                reason,
            }) => (what, value, reason),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let config = MonitorConfig::builder("http://10.147.28.100:8080")
            .build()
            .unwrap();
        assert_eq!(config.url().as_str(), "http://10.147.28.100:8080/");
        assert_eq!(
            config.query_url().as_str(),
            "http://10.147.28.100:8080/inmsf/Query"
        );
        assert_eq!(config.include_zones(), &[TsZone::new("EXTERNAL").unwrap()]);
        assert!(config.exclude_zones().is_empty());
        assert_eq!(config.server_time_zone(), &ServerTimeZone::UTC);
        assert_eq!(config.granularity(), Grid::HOURLY);
        assert_eq!(config.connect_timeout(), Duration::from_secs(10));
        assert_eq!(config.total_timeout(), Duration::from_secs(120));
        assert_eq!(config.retries(), 3);
        assert_eq!(config.retry_backoff(), Duration::from_millis(500));
        assert_eq!(config.max_ips_per_query(), 10_000);
        assert_eq!(config.max_script_bytes(), 4 * 1024 * 1024);
        assert_eq!(config.user(), None);
    }

    #[test]
    fn accepts_https_with_trailing_slash_and_ipv6_host() {
        for url in [
            "https://ts.example.net",
            "https://ts.example.net/",
            "http://[2001:db8::1]:8080",
        ] {
            let config = MonitorConfig::builder(url).build().unwrap();
            assert!(config.query_url().as_str().ends_with("/inmsf/Query"));
        }
    }

    #[test]
    fn refuses_bad_urls_naming_url_and_reason() {
        let cases = [
            ("ftp://10.0.0.1", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("http://10.0.0.1:8080/inmsf", "path"),
            ("http://10.0.0.1:8080/?a=b", "query"),
            ("http://10.0.0.1:8080?", "query"),
            ("http://10.0.0.1:8080/#top", "fragment"),
            ("http://user@10.0.0.1:8080", "user info"),
            ("http://:pw@10.0.0.1:8080", "user info"),
            ("not a url", "relative URL"),
            ("http://10.0.0.1:99999", "port"),
        ];
        for (url, needle) in cases {
            let (what, value, reason) = config_error(MonitorConfig::builder(url).build());
            assert_eq!(what, "monitor url");
            assert_eq!(value, redact_userinfo(url), "{url}");
            assert!(reason.contains(needle), "{url}: {reason}");
        }
    }

    #[test]
    fn url_with_password_is_refused_without_showing_it() {
        let err = MonitorConfig::builder("http://admin:hunter2@10.0.0.1:8080")
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("user info"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{err:?}").contains("hunter2"));
        let builder = MonitorConfig::builder("http://admin:hunter2@10.0.0.1:8080/x");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }

    #[test]
    fn redact_userinfo_only_touches_the_authority() {
        assert_eq!(
            redact_userinfo("http://a:b@h:1/p@q"),
            "http://<redacted>@h:1/p@q"
        );
        assert_eq!(redact_userinfo("http://h/p@q"), "http://h/p@q");
        assert_eq!(redact_userinfo("no scheme@all"), "no scheme@all");
    }

    #[test]
    fn refuses_unsafe_zone_names() {
        for zone in ["EXTERNAL\"", "); println(\"x", "", "EXT ERNAL", "a,b", "é"] {
            let (what, value, _) = config_error(
                MonitorConfig::builder("http://h")
                    .include_zones([zone])
                    .build(),
            );
            assert_eq!((what, value.as_str()), ("include zone", zone));
            let (what, value, _) = config_error(
                MonitorConfig::builder("http://h")
                    .exclude_zones(["OK", zone])
                    .build(),
            );
            assert_eq!((what, value.as_str()), ("exclude zone", zone));
        }
        let err = MonitorConfig::builder("http://h")
            .include_zones(["EXTERNAL\""])
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid include zone \"EXTERNAL\\\"\": character '\"' is not allowed; use only [A-Za-z0-9_.-]"
        );
    }

    #[test]
    fn empty_include_list_is_allowed() {
        let config = MonitorConfig::builder("http://h")
            .include_zones(Vec::<String>::new())
            .build()
            .unwrap();
        assert!(config.include_zones().is_empty());
    }

    #[test]
    fn refuses_bad_numbers() {
        let base = || MonitorConfig::builder("http://h");
        let cases = [
            (base().connect_timeout(Duration::ZERO), "connect timeout"),
            (base().total_timeout(Duration::ZERO), "total timeout"),
            (base().max_ips_per_query(0), "max ips per query"),
            (base().max_script_bytes(0), "max script bytes"),
        ];
        for (builder, expected) in cases {
            assert_eq!(config_error(builder.build()).0, expected);
        }
    }

    #[test]
    fn debug_redacts_credentials() {
        let builder = MonitorConfig::builder("http://h").credentials("billing-user", "pa55word");
        let builder_debug = format!("{builder:?}");
        let config = builder.build().unwrap();
        assert_eq!(config.user(), Some("billing-user"));
        for text in [builder_debug, format!("{config:?}"), format!("{config:#?}")] {
            assert!(!text.contains("pa55word"), "{text}");
            assert!(!text.contains("billing-user"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
    }

    #[test]
    fn bad_credentials_are_refused_without_showing_them() {
        for (user, password) in [("a:b", "secretpw"), ("user", "secret\npw")] {
            let err = MonitorConfig::builder("http://h")
                .credentials(user, password)
                .build()
                .unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(text.contains("credentials"), "{text}");
            assert!(!text.contains("secret"), "{text}");
            assert!(!text.contains(user), "{text}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = MonitorConfig::builder("http://h")
            .retry_backoff(Duration::from_millis(100))
            .max_retry_backoff(Duration::from_millis(350))
            .build()
            .unwrap();
        let waits: Vec<_> = (1..=5).map(|r| config.backoff_before_retry(r)).collect();
        assert_eq!(
            waits,
            [100, 200, 350, 350, 350]
                .map(Duration::from_millis)
                .to_vec()
        );
        assert_eq!(config.backoff_before_retry(200), Duration::from_millis(350));
    }
}
