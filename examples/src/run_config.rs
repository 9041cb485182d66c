//! The configuration file of `traffic-usage run` (DESIGN §12): TOML, every
//! key checked before the first pass.
//!
//! ```toml
//! db = "usage.sqlite"
//! events = "events.jsonl"
//! interval = "1h"
//!
//! [[monitor]]
//! zone = "zone-1"
//! url = "http://10.147.28.100:8080"
//! ```
//!
//! [`RunConfig::load`] reads and checks such a file. Every error is one line
//! naming the file, the line and the key, e.g. `config
//! /etc/traffic-usage.toml: line 7: key "interval": invalid duration "5x": …`;
//! a key the file may not hold is an error too, and no error shows a password.
//! `docs/run.md` lists every key with its default and its CloudStack
//! counterpart.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::{OffsetDateTime, UtcOffset};
use toml::{Spanned, Value};
use traffic_sentinel_client::TsZone;
use url::Url;
use usage_model::{AccountId, ZoneId};

use crate::units::{parse_duration, parse_lag, parse_time, parse_utc_offset, redact_credentials};

#[cfg(test)]
mod tests;
mod values;

use values::{default_include_zones, is_mysql};

/// `interval` by default: one pass an hour. CloudStack's
/// `direct.network.stats.interval` defaults to 86,400 s; an hourly pass bills
/// each hour about `lag` after it ends, for one request per zone.
pub(crate) const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// `lag` by default: two hours, as `collect --lag`.
pub(crate) const DEFAULT_LAG: time::Duration = time::Duration::hours(2);

/// `max_window` by default: one day, as `collect --max-window`.
pub(crate) const DEFAULT_MAX_WINDOW: time::Duration = time::Duration::days(1);

/// `granularity` by default, in seconds: Traffic Sentinel's hourly
/// historical view (DESIGN §3).
pub(crate) const DEFAULT_GRANULARITY: u32 = 3600;

/// `include_zones` by default, as CloudStack's `traffic.sentinel.include.zones`.
pub(crate) const DEFAULT_INCLUDE_ZONE: &str = "EXTERNAL";

/// `cloudstack_resource_type` by default: the guest IPs of shared networks,
/// which Traffic Sentinel meters (DESIGN §11).
pub(crate) const DEFAULT_RESOURCE_TYPE: &str = "DirectAttached";

/// The most `retries` a monitor may ask for, as `collect --retries`.
pub(crate) const MAX_RETRIES: u32 = 10;

/// The keys of the top level.
const TOP_KEYS: [&str; 10] = [
    "db",
    "db_password_env",
    "events",
    "events_password_env",
    "cloudstack_resource_type",
    "interval",
    "lag",
    "max_window",
    "exclude_accounts",
    "monitor",
];

/// The keys of a `[[monitor]]` table.
const MONITOR_KEYS: [&str; 12] = [
    "zone",
    "url",
    "include_zones",
    "exclude_zones",
    "granularity",
    "server_time_zone",
    "user",
    "password_env",
    "cloudstack_host_id",
    "timeout",
    "retries",
    "from",
];

/// The checked configuration of `traffic-usage run`.
///
/// Built only by [`RunConfig::load`] and [`RunConfig::parse`]. Passwords are
/// never held here: only the names of the environment variables that hold
/// them. `Debug` hides a password written in the `db` or `events` URL.
#[derive(Clone, PartialEq)]
pub(crate) struct RunConfig {
    /// The store: a SQLite file path (relative to the working directory),
    /// or a `postgres://` / `mysql://` URL (DESIGN §10), as written.
    pub(crate) db: String,
    /// The environment variable holding the password of the `db` URL's user.
    pub(crate) db_password_env: Option<String>,
    /// The events: a JSON Lines file path, or CloudStack's database as a
    /// `mysql://` URL (DESIGN §11), as written.
    pub(crate) events: String,
    /// The environment variable holding the password of the `events` URL's user.
    pub(crate) events_password_env: Option<String>,
    /// The `usage_event.resource_type` read from CloudStack; by default
    /// [`DEFAULT_RESOURCE_TYPE`]. Only set with CloudStack events.
    pub(crate) cloudstack_resource_type: String,
    /// How often a pass starts; positive.
    pub(crate) interval: std::time::Duration,
    /// How long after the fact Traffic Sentinel's data is complete; zero or more.
    pub(crate) lag: time::Duration,
    /// The longest window one collection cycle covers; positive.
    pub(crate) max_window: time::Duration,
    /// Accounts never billed (their holdings still count for ownership).
    pub(crate) exclude_accounts: Vec<AccountId>,
    /// One per zone, in file order; at least one, zones unique.
    pub(crate) monitors: Vec<MonitorSection>,
}

/// One `[[monitor]]` table: the Traffic Sentinel of one zone, as CloudStack's
/// `addTrafficMonitor` registers it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MonitorSection {
    /// The zone collected (unique across monitors).
    pub(crate) zone: ZoneId,
    /// Where the monitor is.
    pub(crate) source: MonitorSource,
    /// Traffic Sentinel zones whose traffic is billable; by default
    /// `["EXTERNAL"]`. For [`MonitorSource::CloudStack`], the defaults that
    /// apply when the monitor's `host_details` has no `inclZones`.
    pub(crate) include_zones: Vec<TsZone>,
    /// Traffic Sentinel zones excluded from billing; by default none. For
    /// [`MonitorSource::CloudStack`], as `include_zones` with `exclZones`.
    pub(crate) exclude_zones: Vec<TsZone>,
    /// Traffic Sentinel's bucket size in seconds; divides a day. By default
    /// [`DEFAULT_GRANULARITY`].
    pub(crate) granularity: u32,
    /// The server's own time zone; by default UTC.
    pub(crate) server_time_zone: ServerTimeZone,
    /// HTTP basic credentials; by default none.
    pub(crate) credentials: Option<MonitorCredentials>,
    /// The `host.id` whose `user_statistics` rows the windows also feed
    /// (DESIGN §11); by default none, or the registered host's id for
    /// [`MonitorSource::CloudStack`].
    pub(crate) cloudstack_host_id: Option<u64>,
    /// Total time limit of one request; by default the client's (120 s).
    pub(crate) timeout: Option<std::time::Duration>,
    /// Retries after a connection error, timeout or 5xx, at most
    /// [`MAX_RETRIES`]; by default the client's (3).
    pub(crate) retries: Option<u32>,
    /// Where collection starts while the zone has no checkpoint, in UTC; by
    /// default none (a zone without a checkpoint then fails, as `collect`
    /// without `--from`).
    pub(crate) from: Option<OffsetDateTime>,
    /// The line of the monitor's `zone` key, for messages about it.
    pub(crate) line: usize,
}

/// Where a zone's Traffic Sentinel is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MonitorSource {
    /// At this `http`/`https` URL with a host, no user info, path, query or
    /// fragment, e.g. `http://10.147.28.100:8080` (CloudStack's
    /// `addTrafficMonitor` `url`).
    Url(Url),
    /// `url = "cloudstack"`: as CloudStack registered it, read from its
    /// `host` and `host_details` tables (DESIGN §11). Needs CloudStack events.
    CloudStack,
}

/// The time zone in which Traffic Sentinel reads interval times (DESIGN §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServerTimeZone {
    /// A fixed offset, written `±HH:MM` (or `Z`).
    Offset(UtcOffset),
    /// An IANA time zone known to the bundled time zone database, spelled
    /// as the database spells it, e.g. `Europe/Berlin`.
    Named(String),
}

/// HTTP basic credentials of a monitor: the user and where its password is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MonitorCredentials {
    /// The user name (no `:`, no control character).
    pub(crate) user: String,
    /// The environment variable holding the password.
    pub(crate) password_env: String,
}

/// Why a configuration file was refused; displays as one line starting
/// `config PATH: `, naming the line and the key where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("config {}: cannot read: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The text is not TOML, or not of the shape of this file.
    #[error("config {}: line {line}: {message}", .path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// The TOML reader's message.
        message: String,
    },
    /// A key this file may not hold.
    #[error("config {}: line {line}: unknown key {key:?}{hint}", .path.display())]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// The key.
        key: String,
        /// Where the key belongs, when it is a key of the other section.
        hint: &'static str,
    },
    /// A required key is missing: at the top level (no line), or in the
    /// `[[monitor]]` table at `line`.
    #[error(
        "config {}: {}missing key {key:?}",
        .path.display(),
        .line.map(|l| format!("line {l}: [[monitor]] table: ")).unwrap_or_default()
    )]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The line of the monitor table, or none for a top-level key.
        line: Option<usize>,
        /// The key.
        key: &'static str,
    },
    /// A value was refused.
    #[error("config {}: line {line}: key {key:?}: {reason}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// The key.
        key: &'static str,
        /// Why, with the value (any password in it hidden).
        reason: String,
    },
    /// Two monitors name the same zone.
    #[error(
        "config {}: line {line}: key \"zone\": zone {zone:?} already has a monitor (line {first_line}); one monitor per zone",
        .path.display()
    )]
    DuplicateZone {
        /// The file.
        path: PathBuf,
        /// The line of the second monitor's `zone`.
        line: usize,
        /// The zone.
        zone: String,
        /// The line of the first monitor's `zone`.
        first_line: usize,
    },
    /// The file has no `[[monitor]]` table.
    #[error("config {}: no [[monitor]] table; add one per zone", .path.display())]
    NoMonitor {
        /// The file.
        path: PathBuf,
    },
}

impl RunConfig {
    /// Reads and checks the configuration file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] when the file cannot be read (or is not UTF-8),
    /// else as [`RunConfig::parse`].
    pub(crate) fn load(path: &Path) -> Result<RunConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        RunConfig::parse(&text, path)
    }

    /// Checks the configuration `text`; `path` names it in errors.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`] for text that is not TOML or a `monitor` that
    /// is not an array of tables, [`ConfigError::UnknownKey`],
    /// [`ConfigError::MissingKey`] (`db`, `events`, a monitor's `zone` or
    /// `url`), [`ConfigError::Invalid`] for a refused value,
    /// [`ConfigError::DuplicateZone`] and [`ConfigError::NoMonitor`].
    pub(crate) fn parse(text: &str, path: &Path) -> Result<RunConfig, ConfigError> {
        let source = Source { text, path };
        let raw: RawConfig = toml::from_str(text).map_err(|error| source.toml_error(&error))?;
        source.check(raw)
    }

    /// Whether the events come from CloudStack's database (`mysql://`).
    pub(crate) fn events_from_cloudstack(&self) -> bool {
        is_mysql(&self.events)
    }
}

impl fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunConfig")
            .field("db", &redact_credentials(&self.db))
            .field("db_password_env", &self.db_password_env)
            .field("events", &redact_credentials(&self.events))
            .field("events_password_env", &self.events_password_env)
            .field("cloudstack_resource_type", &self.cloudstack_resource_type)
            .field("interval", &self.interval)
            .field("lag", &self.lag)
            .field("max_window", &self.max_window)
            .field("exclude_accounts", &self.exclude_accounts)
            .field("monitors", &self.monitors)
            .finish()
    }
}

/// The file as written: each value kept with its byte span, checked later.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    db: Option<Spanned<Value>>,
    db_password_env: Option<Spanned<Value>>,
    events: Option<Spanned<Value>>,
    events_password_env: Option<Spanned<Value>>,
    cloudstack_resource_type: Option<Spanned<Value>>,
    interval: Option<Spanned<Value>>,
    lag: Option<Spanned<Value>>,
    max_window: Option<Spanned<Value>>,
    exclude_accounts: Option<Spanned<Value>>,
    #[serde(default, deserialize_with = "monitor_tables")]
    monitor: Vec<Spanned<RawMonitor>>,
}

/// Reads `monitor` as an array of tables; anything else is refused naming
/// `[[monitor]]` (serde's own message would say "a sequence").
fn monitor_tables<'de, D>(deserializer: D) -> Result<Vec<Spanned<RawMonitor>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Tables;
    impl<'de> serde::de::Visitor<'de> for Tables {
        type Value = Vec<Spanned<RawMonitor>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("[[monitor]] tables for key `monitor`")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut tables = Vec::new();
            while let Some(table) = seq.next_element()? {
                tables.push(table);
            }
            Ok(tables)
        }
    }
    deserializer.deserialize_seq(Tables)
}

/// One `[[monitor]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[monitor]] table")]
struct RawMonitor {
    zone: Option<Spanned<Value>>,
    url: Option<Spanned<Value>>,
    include_zones: Option<Spanned<Value>>,
    exclude_zones: Option<Spanned<Value>>,
    granularity: Option<Spanned<Value>>,
    server_time_zone: Option<Spanned<Value>>,
    user: Option<Spanned<Value>>,
    password_env: Option<Spanned<Value>>,
    cloudstack_host_id: Option<Spanned<Value>>,
    timeout: Option<Spanned<Value>>,
    retries: Option<Spanned<Value>>,
    from: Option<Spanned<Value>>,
}

/// The text being checked and the file it came from.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
}

/// A value with the key it was given under.
type Entry = (&'static str, Spanned<Value>);

impl Source<'_> {
    /// The line (from 1) holding byte `offset`.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        1 + self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn invalid(&self, key: &'static str, span: Range<usize>, reason: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line: self.line(span.start),
            key,
            reason,
        }
    }

    /// An error of the TOML reader (syntax, duplicate or unknown key, a
    /// `monitor` that is not an array of tables) as one line.
    fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        let line = self.line(error.span().map_or(0, |span| span.start));
        let message = error.message().trim();
        // serde's wording for deny_unknown_fields: "unknown field `KEY`, expected …".
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let end = rest
                .find("`, ")
                .or_else(|| rest.rfind('`'))
                .unwrap_or(rest.len());
            let key = rest[..end].to_owned();
            let hint = if MONITOR_KEYS.contains(&key.as_str()) {
                " at the top level; it belongs in a [[monitor]] table"
            } else if TOP_KEYS.contains(&key.as_str()) {
                " in a [[monitor]] table; top-level keys go before the first [[monitor]]"
            } else {
                ""
            };
            return ConfigError::UnknownKey {
                path: self.path.to_owned(),
                line,
                key,
                hint,
            };
        }
        // The reader says "duplicate key" and spans the key as written.
        if message == "duplicate key" {
            let written = error.span().and_then(|span| self.text.get(span));
            let key = written.map(|text| text.split('=').next().unwrap_or(text).trim());
            if let Some(key) = key.filter(|key| !key.is_empty()) {
                let key = key.trim_matches(|c| c == '"' || c == '\'');
                return ConfigError::Syntax {
                    path: self.path.to_owned(),
                    line,
                    message: format!("duplicate key {key:?}"),
                };
            }
        }
        ConfigError::Syntax {
            path: self.path.to_owned(),
            line,
            message: redact_credentials(&message.replace(['\r', '\n'], " ")),
        }
    }

    fn check(&self, raw: RawConfig) -> Result<RunConfig, ConfigError> {
        let missing = |key| ConfigError::MissingKey {
            path: self.path.to_owned(),
            line: None,
            key,
        };
        let db = self.store_target(("db", raw.db.ok_or_else(|| missing("db"))?))?;
        let events =
            self.events_source(("events", raw.events.ok_or_else(|| missing("events"))?))?;
        let db_password_env = self.password_env(
            raw.db_password_env.map(|v| ("db_password_env", v)),
            &db,
            "db",
        )?;
        let events_password_env = self.password_env(
            raw.events_password_env.map(|v| ("events_password_env", v)),
            &events,
            "events",
        )?;
        let cloudstack = is_mysql(&events);
        let cloudstack_resource_type = (raw.cloudstack_resource_type)
            .map(|v| self.resource_type(("cloudstack_resource_type", v), cloudstack))
            .transpose()?
            .unwrap_or_else(|| DEFAULT_RESOURCE_TYPE.to_owned());
        let interval = (raw.interval)
            .map(|v| self.duration(("interval", v), parse_duration))
            .transpose()?
            .map_or(DEFAULT_INTERVAL, time::Duration::unsigned_abs);
        let lag = (raw.lag)
            .map(|v| self.duration(("lag", v), parse_lag))
            .transpose()?
            .unwrap_or(DEFAULT_LAG);
        let max_window_span = raw.max_window.as_ref().map(Spanned::span);
        let max_window = (raw.max_window)
            .map(|v| self.duration(("max_window", v), parse_duration))
            .transpose()?
            .unwrap_or(DEFAULT_MAX_WINDOW);
        let exclude_accounts = (raw.exclude_accounts)
            .map(|v| {
                self.ids(("exclude_accounts", v), cloudstack, |id| {
                    AccountId::new(id).map_err(|e| e.to_string())
                })
            })
            .transpose()?
            .unwrap_or_default();
        let raw_monitors = raw.monitor;
        if raw_monitors.is_empty() {
            return Err(ConfigError::NoMonitor {
                path: self.path.to_owned(),
            });
        }
        let mut monitors: Vec<MonitorSection> = Vec::with_capacity(raw_monitors.len());
        for raw_monitor in raw_monitors {
            let monitor = self.monitor(raw_monitor, cloudstack, &db)?;
            if let Some(first) = monitors.iter().find(|m| m.zone == monitor.zone) {
                return Err(ConfigError::DuplicateZone {
                    path: self.path.to_owned(),
                    line: monitor.line,
                    zone: monitor.zone.as_str().to_owned(),
                    first_line: first.line,
                });
            }
            // A window holds at least one bucket (as `collect --max-window`).
            // The default of one day holds every grid's.
            if let Some(span) = max_window_span.clone()
                && max_window.whole_seconds() < i64::from(monitor.granularity)
            {
                return Err(self.invalid(
                    "max_window",
                    span,
                    format!(
                        "{max_window} is shorter than the granularity of {} s of the monitor of zone {} (line {})",
                        monitor.granularity, monitor.zone, monitor.line
                    ),
                ));
            }
            monitors.push(monitor);
        }
        Ok(RunConfig {
            db,
            db_password_env,
            events,
            events_password_env,
            cloudstack_resource_type,
            interval,
            lag,
            max_window,
            exclude_accounts,
            monitors,
        })
    }

    fn monitor(
        &self,
        raw: Spanned<RawMonitor>,
        cloudstack: bool,
        db: &str,
    ) -> Result<MonitorSection, ConfigError> {
        let table_line = self.line(raw.span().start);
        let raw = raw.into_inner();
        let missing = |key| ConfigError::MissingKey {
            path: self.path.to_owned(),
            line: Some(table_line),
            key,
        };
        let zone_value = raw.zone.ok_or_else(|| missing("zone"))?;
        let line = self.line(zone_value.span().start);
        let zone = self.id(("zone", zone_value), cloudstack, |id| {
            ZoneId::new(id).map_err(|e| e.to_string())
        })?;
        let source =
            self.monitor_source(("url", raw.url.ok_or_else(|| missing("url"))?), cloudstack)?;
        let from_cloudstack = source == MonitorSource::CloudStack;
        let include_zones = (raw.include_zones)
            .map(|v| self.ts_zones(("include_zones", v), from_cloudstack))
            .transpose()?
            .unwrap_or_else(default_include_zones);
        let exclude_zones = match raw.exclude_zones {
            None => Vec::new(),
            Some(value) => {
                let span = value.span();
                let zones = self.ts_zones(("exclude_zones", value), from_cloudstack)?;
                if let Some(both) = zones.iter().find(|z| include_zones.contains(z)) {
                    return Err(self.invalid(
                        "exclude_zones",
                        span,
                        format!("zone {:?} is also in include_zones", both.as_str()),
                    ));
                }
                zones
            }
        };
        let granularity = (raw.granularity)
            .map(|v| self.granularity(("granularity", v)))
            .transpose()?
            .unwrap_or(DEFAULT_GRANULARITY);
        let server_time_zone = (raw.server_time_zone)
            .map(|v| self.server_time_zone(("server_time_zone", v)))
            .transpose()?
            .unwrap_or(ServerTimeZone::Offset(UtcOffset::UTC));
        let credentials = match (raw.user, raw.password_env) {
            (None, None) => None,
            (Some(user), Some(password_env)) => Some(MonitorCredentials {
                user: self.user(("user", user))?,
                password_env: self.env_name(("password_env", password_env))?,
            }),
            (Some(user), None) => {
                return Err(self.invalid(
                    "user",
                    user.span(),
                    "needs password_env, the environment variable holding the password".into(),
                ));
            }
            (None, Some(password_env)) => {
                return Err(self.invalid("password_env", password_env.span(), "needs user".into()));
            }
        };
        let cloudstack_host_id = (raw.cloudstack_host_id)
            .map(|v| self.host_id(("cloudstack_host_id", v), db))
            .transpose()?;
        let timeout = (raw.timeout)
            .map(|v| self.duration(("timeout", v), parse_duration))
            .transpose()?
            .map(time::Duration::unsigned_abs);
        let retries = (raw.retries)
            .map(|v| self.retries(("retries", v)))
            .transpose()?;
        let from = (raw.from).map(|v| self.time(("from", v))).transpose()?;
        Ok(MonitorSection {
            zone,
            source,
            include_zones,
            exclude_zones,
            granularity,
            server_time_zone,
            credentials,
            cloudstack_host_id,
            timeout,
            retries,
            from,
            line,
        })
    }
}
