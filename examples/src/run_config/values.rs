//! The checks of single values of the `run` configuration: each takes a key
//! and its value as written and gives the typed value, or an error naming
//! the key and the line.

use time::{OffsetDateTime, UtcOffset};
use toml::{Spanned, Value};
use traffic_sentinel_client::TsZone;
use url::Url;
use usage_model::Grid;

use super::{
    ConfigError, DEFAULT_INCLUDE_ZONE, Entry, MAX_RETRIES, MonitorSource, ServerTimeZone, Source,
    parse_duration, parse_time, parse_utc_offset, redact_credentials,
};

/// The URL schemes of a store (DESIGN §10).
const STORE_SCHEMES: [&str; 3] = ["postgres", "postgresql", "mysql"];

/// The URL scheme of CloudStack's database (DESIGN §11).
const EVENTS_SCHEMES: [&str; 1] = ["mysql"];

impl Source<'_> {
    /// The text of a string value.
    fn string<'v>(
        &self,
        key: &'static str,
        value: &'v Spanned<Value>,
        like: &str,
    ) -> Result<&'v str, ConfigError> {
        match value.get_ref() {
            Value::String(text) => Ok(text),
            other => Err(self.invalid(
                key,
                value.span(),
                format!("expected {like}, found {}", describe(other)),
            )),
        }
    }

    /// `db`: a SQLite file path, or a PostgreSQL or MySQL URL.
    pub(super) fn store_target(&self, entry: Entry) -> Result<String, ConfigError> {
        self.location(
            entry,
            &STORE_SCHEMES,
            "a SQLite file path, postgres://USER@HOST/DB or mysql://USER@HOST/DB",
        )
    }

    /// `events`: a JSON Lines file path, or CloudStack's MySQL database.
    pub(super) fn events_source(&self, entry: Entry) -> Result<String, ConfigError> {
        self.location(
            entry,
            &EVENTS_SCHEMES,
            "a JSON Lines file path or mysql://USER@HOST/cloud",
        )
    }

    /// A file path, or a URL of one of `schemes` with a host and a database.
    fn location(
        &self,
        (key, value): Entry,
        schemes: &[&str],
        like: &str,
    ) -> Result<String, ConfigError> {
        let text = self.string(key, &value, like)?;
        let refuse = |reason: String| self.invalid(key, value.span(), reason);
        if text.trim().is_empty() {
            return Err(refuse(format!("must not be empty; expected {like}")));
        }
        if text.chars().any(char::is_control) {
            return Err(refuse(format!(
                "{:?} holds a control character",
                redact_credentials(text)
            )));
        }
        if !text.contains("://") {
            return Ok(text.to_owned());
        }
        let shown = redact_credentials(text);
        let url = Url::parse(text).map_err(|e| refuse(format!("invalid URL {shown:?}: {e}")))?;
        if !schemes.contains(&url.scheme()) {
            return Err(refuse(format!(
                "URL scheme {:?} is not supported in {shown:?}; expected {like}",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(refuse(format!("URL {shown:?} has no host")));
        }
        if url.path().trim_start_matches('/').is_empty() {
            return Err(refuse(format!("URL {shown:?} names no database")));
        }
        Ok(text.to_owned())
    }

    /// `db_password_env` / `events_password_env`: an environment variable
    /// name, only beside a database URL that holds no password itself.
    pub(super) fn password_env(
        &self,
        entry: Option<Entry>,
        location: &str,
        location_key: &str,
    ) -> Result<Option<String>, ConfigError> {
        let Some((key, value)) = entry else {
            return Ok(None);
        };
        let span = value.span();
        let name = self.env_name((key, value))?;
        if !location.contains("://") {
            return Err(self.invalid(
                key,
                span,
                format!("{location_key} is a file, which takes no password"),
            ));
        }
        if Url::parse(location).is_ok_and(|url| url.password().is_some()) {
            return Err(self.invalid(
                key,
                span,
                format!("the {location_key} URL already holds a password; keep only one of them"),
            ));
        }
        Ok(Some(name))
    }

    /// `cloudstack_resource_type`: a CloudStack resource type, with events
    /// from CloudStack only.
    pub(super) fn resource_type(
        &self,
        (key, value): Entry,
        cloudstack: bool,
    ) -> Result<String, ConfigError> {
        let text = self.string(key, &value, "a resource type like \"DirectAttached\"")?;
        if !cloudstack {
            return Err(self.invalid(
                key,
                value.span(),
                "only applies to events read from CloudStack (events = \"mysql://…/cloud\")".into(),
            ));
        }
        if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(self.invalid(
                key,
                value.span(),
                format!("invalid resource type {text:?}: expected letters, digits and _, like \"DirectAttached\""),
            ));
        }
        Ok(text.to_owned())
    }

    /// A duration string such as `90s`, `2h` or `1h30m`, read by `parse`.
    /// An integer is read as its digits, so `lag = 0` is zero and `3600`
    /// asks for a unit.
    pub(super) fn duration(
        &self,
        (key, value): Entry,
        parse: fn(&str) -> Result<time::Duration, String>,
    ) -> Result<time::Duration, ConfigError> {
        let text = match value.get_ref() {
            Value::Integer(n) => n.to_string(),
            _ => self
                .string(
                    key,
                    &value,
                    "a duration like \"90s\", \"30m\", \"2h\" or \"1d\"",
                )?
                .to_owned(),
        };
        parse(&text).map_err(|reason| {
            self.invalid(
                key,
                value.span(),
                format!("invalid duration {text:?}: {reason}"),
            )
        })
    }

    /// An identifier: a string, or a non-negative integer as its digits.
    /// With events from CloudStack it must be one of CloudStack's numeric ids.
    pub(super) fn id<T>(
        &self,
        (key, value): Entry,
        cloudstack: bool,
        make: impl Fn(String) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.id_value(key, value.get_ref(), cloudstack, &make)
            .map_err(|reason| self.invalid(key, value.span(), reason))
    }

    /// A list of identifiers, each as [`Source::id`] reads one.
    pub(super) fn ids<T>(
        &self,
        (key, value): Entry,
        cloudstack: bool,
        make: impl Fn(String) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        let Value::Array(items) = value.get_ref() else {
            return Err(self.invalid(
                key,
                value.span(),
                format!(
                    "expected an array like [\"1\"], found {}",
                    describe(value.get_ref())
                ),
            ));
        };
        items
            .iter()
            .map(|item| self.id_value(key, item, cloudstack, &make))
            .collect::<Result<_, _>>()
            .map_err(|reason| self.invalid(key, value.span(), reason))
    }

    fn id_value<T>(
        &self,
        key: &str,
        value: &Value,
        cloudstack: bool,
        make: &impl Fn(String) -> Result<T, String>,
    ) -> Result<T, String> {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Integer(n) if *n >= 0 => n.to_string(),
            other => {
                return Err(format!(
                    "expected a string or a non-negative integer, found {}",
                    describe(other)
                ));
            }
        };
        if cloudstack && (text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!(
                "{text:?} is not a CloudStack id: with events from CloudStack, {key} holds CloudStack's numeric ids"
            ));
        }
        make(text)
    }

    /// A monitor's `url`: an `http`/`https` URL with a host and nothing
    /// after it, or `cloudstack` (with events from CloudStack only).
    pub(super) fn monitor_source(
        &self,
        (key, value): Entry,
        cloudstack: bool,
    ) -> Result<MonitorSource, ConfigError> {
        let text = self.string(key, &value, "a URL like \"http://10.147.28.100:8080\"")?;
        let refuse = |reason: String| self.invalid(key, value.span(), reason);
        if text == "cloudstack" {
            return if cloudstack {
                Ok(MonitorSource::CloudStack)
            } else {
                Err(refuse(
                    "\"cloudstack\" reads the monitor from CloudStack's database and needs events = \"mysql://…/cloud\"".into(),
                ))
            };
        }
        let shown = redact_credentials(text);
        let url = Url::parse(text).map_err(|e| {
            refuse(format!(
                "invalid URL {shown:?}: {e}; expected a URL like \"http://10.147.28.100:8080\""
            ))
        })?;
        let reason = if !matches!(url.scheme(), "http" | "https") {
            Some(format!(
                "scheme {:?} is not supported; use http or https",
                url.scheme()
            ))
        } else if url.host_str().is_none_or(str::is_empty) {
            Some("it has no host".to_owned())
        } else if !url.username().is_empty() || url.password().is_some() {
            Some("it must not hold user info; use the keys user and password_env".to_owned())
        } else if !matches!(url.path(), "" | "/") {
            Some(format!("it must not have a path (found {:?})", url.path()))
        } else if url.query().is_some() || url.fragment().is_some() {
            Some("it must not have a query or a fragment".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(refuse(format!("invalid monitor URL {shown:?}: {reason}"))),
            None => Ok(MonitorSource::Url(url)),
        }
    }

    /// `include_zones` / `exclude_zones`: Traffic Sentinel zone names
    /// (`[A-Za-z0-9_.-]+`); not with `url = "cloudstack"`, which takes them
    /// from the monitor's registration.
    pub(super) fn ts_zones(
        &self,
        (key, value): Entry,
        from_cloudstack: bool,
    ) -> Result<Vec<TsZone>, ConfigError> {
        let refuse = |reason: String| self.invalid(key, value.span(), reason);
        if from_cloudstack {
            return Err(refuse(
                "url = \"cloudstack\" takes the zones from the monitor's registration (inclZones, exclZones); remove this key".into(),
            ));
        }
        let Value::Array(items) = value.get_ref() else {
            return Err(refuse(format!(
                "expected an array like [\"EXTERNAL\"], found {}",
                describe(value.get_ref())
            )));
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(name) => TsZone::new(name).map_err(|e| refuse(e.to_string())),
                other => Err(refuse(format!(
                    "expected zone names as strings, found {}",
                    describe(other)
                ))),
            })
            .collect()
    }

    /// `granularity`: whole seconds (an integer or digits) or a duration,
    /// dividing a day.
    pub(super) fn granularity(&self, (key, value): Entry) -> Result<u32, ConfigError> {
        const LIKE: &str = "seconds or a duration like 60, \"1m\" or \"1h\"";
        let refuse = |reason: String| self.invalid(key, value.span(), reason);
        let (text, seconds) = match value.get_ref() {
            Value::Integer(n) => (n.to_string(), u64::try_from(*n).ok()),
            _ => {
                let text = self.string(key, &value, LIKE)?;
                let seconds = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                    text.parse::<u64>().ok()
                } else {
                    let duration = parse_duration(text).map_err(|reason| {
                        refuse(format!("invalid granularity {text:?}: {reason}"))
                    })?;
                    u64::try_from(duration.whole_seconds()).ok()
                };
                (text.to_owned(), seconds)
            }
        };
        seconds
            .and_then(|seconds| Grid::from_seconds(seconds).ok())
            .map(Grid::seconds)
            .ok_or_else(|| {
                refuse(format!(
                    "invalid granularity {text:?}: expected {LIKE} that divides a day (86400 s)"
                ))
            })
    }

    /// `server_time_zone`: `±HH:MM` (or `Z`), or an IANA name.
    pub(super) fn server_time_zone(
        &self,
        (key, value): Entry,
    ) -> Result<ServerTimeZone, ConfigError> {
        const LIKE: &str = "an IANA name like \"Europe/Berlin\" or an offset like \"+05:30\"";
        let text = self.string(key, &value, LIKE)?;
        let refuse = |reason: String| self.invalid(key, value.span(), reason);
        if text.starts_with(['+', '-']) || text.eq_ignore_ascii_case("Z") {
            return parse_utc_offset(text)
                .map(ServerTimeZone::Offset)
                .map_err(|reason| refuse(format!("invalid offset {text:?}: {reason}")));
        }
        match jiff::tz::TimeZone::get(text) {
            Ok(zone) if !zone.is_unknown() => Ok(ServerTimeZone::Named(
                zone.iana_name().unwrap_or(text).to_owned(),
            )),
            _ => Err(refuse(format!(
                "unknown time zone {text:?}; expected {LIKE}"
            ))),
        }
    }

    /// `user`: a name without `:` or control characters (never echoed).
    pub(super) fn user(&self, (key, value): Entry) -> Result<String, ConfigError> {
        let text = self.string(key, &value, "a user name")?;
        let reason = if text.is_empty() {
            Some("must not be empty")
        } else if text.contains(':') {
            Some("must not contain ':'")
        } else if text.chars().any(char::is_control) {
            Some("must not contain control characters")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(self.invalid(key, value.span(), reason.to_owned())),
            None => Ok(text.to_owned()),
        }
    }

    /// The name of an environment variable: `[A-Za-z_][A-Za-z0-9_]*`.
    pub(super) fn env_name(&self, (key, value): Entry) -> Result<String, ConfigError> {
        let text = self.string(
            key,
            &value,
            "an environment variable name like \"TS_PASSWORD\"",
        )?;
        let valid = text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(text.to_owned())
        } else {
            Err(self.invalid(
                key,
                value.span(),
                format!(
                    "invalid environment variable name {text:?}: expected letters, digits and _"
                ),
            ))
        }
    }

    /// `cloudstack_host_id`: a positive integer, with a MySQL store only
    /// (the `user_statistics` update shares the window's transaction).
    pub(super) fn host_id(&self, (key, value): Entry, db: &str) -> Result<u64, ConfigError> {
        let refuse = |reason: String| self.invalid(key, value.span(), reason);
        let id = match value.get_ref() {
            Value::Integer(n) if *n > 0 => n.unsigned_abs(),
            other => {
                return Err(refuse(format!(
                    "expected a positive integer (CloudStack's host.id), found {}",
                    describe(other)
                )));
            }
        };
        if !is_mysql(db) {
            return Err(refuse(
                "posting to CloudStack's user_statistics needs db = \"mysql://…\" on CloudStack's database server".into(),
            ));
        }
        Ok(id)
    }

    /// `retries`: an integer from 0 to [`MAX_RETRIES`].
    pub(super) fn retries(&self, (key, value): Entry) -> Result<u32, ConfigError> {
        match value.get_ref() {
            Value::Integer(n) => u32::try_from(*n)
                .ok()
                .filter(|&n| n <= MAX_RETRIES)
                .ok_or_else(|| {
                    self.invalid(
                        key,
                        value.span(),
                        format!("{n} is out of range 0..={MAX_RETRIES}"),
                    )
                }),
            other => Err(self.invalid(
                key,
                value.span(),
                format!(
                    "expected an integer from 0 to {MAX_RETRIES}, found {}",
                    describe(other)
                ),
            )),
        }
    }

    /// `from`: an RFC 3339 time with an offset, as a string or a TOML
    /// date-time, in UTC.
    pub(super) fn time(&self, (key, value): Entry) -> Result<OffsetDateTime, ConfigError> {
        let text = match value.get_ref() {
            Value::Datetime(datetime) => datetime.to_string(),
            _ => self
                .string(key, &value, "an RFC 3339 time like 2026-11-01T00:00:00Z")?
                .to_owned(),
        };
        parse_time(&text)
            .map(|at| at.to_offset(UtcOffset::UTC))
            .map_err(|reason| {
                self.invalid(
                    key,
                    value.span(),
                    format!("invalid time {text:?}: {reason}"),
                )
            })
    }
}

/// `include_zones` by default: `[DEFAULT_INCLUDE_ZONE]`.
pub(super) fn default_include_zones() -> Vec<TsZone> {
    vec![TsZone::new(DEFAULT_INCLUDE_ZONE).expect("EXTERNAL is a valid zone name")]
}

/// Whether `location` is a MySQL URL (CloudStack's database for events).
pub(super) fn is_mysql(location: &str) -> bool {
    location
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("mysql://"))
}

/// A value's kind and, when short and harmless, the value, for "found …".
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => format!("string {:?}", redact_credentials(text)),
        Value::Integer(n) => format!("integer {n}"),
        Value::Float(x) => format!("float {x}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("date-time {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}
