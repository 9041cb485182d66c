//! Where the events come from: a JSON Lines file, or CloudStack's
//! `usage_event` table (DESIGN §11), and CloudStack's traffic monitor
//! registry.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::Path;

use usage_correlator::{LedgerOptions, OwnershipLedger};
use usage_model::{AccountId, IpEvent, ZoneId};
use usage_store::{
    CloudStackDatabase, RegisteredTrafficMonitor, SkippedUsageEvent, StoreTarget, UsageEventOptions,
};

use crate::collect::read_env;
use crate::commands::{load_ledger, runtime};
use crate::error::CliError;
use crate::units::redact_credentials;

/// What an events source gave: the ledger of its events and, for
/// CloudStack's `usage_event`, the rows skipped because their
/// `resource_name` is not an IP address (DESIGN §11), which `collect` and
/// `run` store as anomalies with their windows.
pub(crate) struct LoadedEvents {
    pub(crate) ledger: OwnershipLedger,
    pub(crate) skipped: Vec<SkippedUsageEvent>,
    /// Every zone an event of the source names, kept in the ledger or not
    /// (for the message of a zone that no event names).
    pub(crate) zones: Vec<ZoneId>,
}

/// CloudStack's events of the zones asked for, its skipped rows, and every
/// zone its rows name.
type CloudStackEvents = (Vec<IpEvent>, Vec<SkippedUsageEvent>, Vec<ZoneId>);

/// The events source as given: a file path, or a `mysql://…/cloud` URL.
#[derive(Clone, Debug)]
pub(crate) struct EventsSource<'a> {
    /// The text of `--events`.
    pub(crate) text: &'a str,
    /// `--events-password-env`.
    pub(crate) password_env: Option<&'a str>,
    /// `--cloudstack-resource-type`.
    pub(crate) resource_type: &'a str,
}

impl EventsSource<'_> {
    /// Whether the events come from CloudStack's database.
    pub(crate) fn is_cloudstack(&self) -> bool {
        self.text.starts_with("mysql://")
    }

    /// The CloudStack database target, with its password.
    ///
    /// # Errors
    ///
    /// A bad URL; a password variable that is not set.
    pub(crate) fn cloudstack_target(&self) -> Result<StoreTarget, CliError> {
        let target = StoreTarget::parse(self.text)?;
        match self.password_env {
            Some(var) => Ok(target.with_password(read_env(var, "--events-password-env")?)?),
            None => Ok(target),
        }
    }

    /// The name the source goes by in messages (no password).
    pub(crate) fn name(&self) -> String {
        if self.is_cloudstack() {
            format!(
                "CloudStack's usage_event at {}",
                redact_credentials(self.text)
            )
        } else {
            format!("events file {}", self.text)
        }
    }

    /// The ownership ledger of the source's events of `zones`, with
    /// `excluded` not billed. CloudStack's rows of other zones are passed
    /// over as they stream (DESIGN §11: memory does not grow with the
    /// table); a file is read whole.
    ///
    /// # Errors
    ///
    /// As [`load_ledger`] for a file; for CloudStack, a connection or row
    /// error (naming the row and column).
    pub(crate) fn ledger(
        &self,
        excluded: &[AccountId],
        zones: &[ZoneId],
    ) -> Result<LoadedEvents, CliError> {
        if self.is_cloudstack() {
            runtime()?.block_on(self.ledger_in_runtime(excluded, zones))
        } else {
            self.file_ledger(excluded)
        }
    }

    /// The ledger of a file or CloudStack source, inside an async runtime.
    ///
    /// # Errors
    ///
    /// As [`EventsSource::ledger`].
    pub(crate) async fn ledger_in_runtime(
        &self,
        excluded: &[AccountId],
        zones: &[ZoneId],
    ) -> Result<LoadedEvents, CliError> {
        if !self.is_cloudstack() {
            return self.file_ledger(excluded);
        }
        let (events, skipped, named) = self.cloudstack_events(zones).await?;
        Ok(LoadedEvents {
            ledger: self.cloudstack_ledger(events, excluded, skipped.len()),
            skipped,
            zones: named,
        })
    }

    /// The ledger of an events file: nothing is skipped.
    fn file_ledger(&self, excluded: &[AccountId]) -> Result<LoadedEvents, CliError> {
        let ledger = load_ledger(Path::new(self.text), excluded)?;
        let zones = ledger.zones().cloned().collect();
        Ok(LoadedEvents {
            ledger,
            skipped: Vec::new(),
            zones,
        })
    }

    /// The NET.IPASSIGN/NET.IPRELEASE rows of the resource type in
    /// `zones`, streamed (other zones' rows are only named); rows whose
    /// resource_name is not an address are reported and skipped (returned,
    /// to be stored as anomalies with their windows).
    async fn cloudstack_events(&self, zones: &[ZoneId]) -> Result<CloudStackEvents, CliError> {
        let target = self.cloudstack_target()?;
        let options = UsageEventOptions::new()
            .resource_type(self.resource_type)
            .collected_zones(zones.iter().cloned());
        let database = CloudStackDatabase::connect(&target).await?;
        let mut events: Vec<IpEvent> = Vec::new();
        let mut named: BTreeSet<ZoneId> = BTreeSet::new();
        let read = database
            .read_ip_events(&options, |event| {
                if zones.contains(&event.zone) {
                    events.push(event);
                } else {
                    named.insert(event.zone);
                }
                ControlFlow::Continue(())
            })
            .await;
        database.close().await;
        let skipped = read?.skipped;
        for skipped in &skipped {
            // Warned of with the window that stores it (once).
            tracing::debug!("anomaly: {}", skipped.detail);
        }
        named.extend(events.iter().map(|event| event.zone.clone()));
        Ok((events, skipped, named.into_iter().collect()))
    }

    /// The ledger of CloudStack's events; `skipped` rows were not
    /// addresses (logged with the ledger's own anomalies).
    fn cloudstack_ledger(
        &self,
        events: Vec<IpEvent>,
        excluded: &[AccountId],
        skipped: usize,
    ) -> OwnershipLedger {
        let ledger_options = excluded
            .iter()
            .cloned()
            .fold(LedgerOptions::new(), LedgerOptions::exclude_account);
        let ledger = OwnershipLedger::from_events(ledger_options, events);
        // Debug, not info: a refusal that follows (an unknown zone, say)
        // is then the only line on standard error (DESIGN §9).
        tracing::debug!(
            events = ledger.event_count(),
            anomalies = ledger.anomalies().len() + skipped,
            skipped,
            "events loaded from {}",
            self.name()
        );
        ledger
    }

    /// The traffic monitor CloudStack registered for `zone`.
    ///
    /// # Errors
    ///
    /// [`CliError::BadValue`] when the events are not CloudStack's; the
    /// registry's errors (none registered, two, no url).
    pub(crate) fn traffic_monitor(
        &self,
        zone: &ZoneId,
    ) -> Result<RegisteredTrafficMonitor, CliError> {
        if !self.is_cloudstack() {
            return Err(CliError::BadValue(
                "--monitor cloudstack needs --events mysql://USER@HOST/cloud (CloudStack's database)".to_owned(),
            ));
        }
        runtime()?.block_on(self.traffic_monitor_in_runtime(zone))
    }

    /// [`EventsSource::traffic_monitor`] inside an async runtime.
    ///
    /// # Errors
    ///
    /// As [`EventsSource::traffic_monitor`].
    pub(crate) async fn traffic_monitor_in_runtime(
        &self,
        zone: &ZoneId,
    ) -> Result<RegisteredTrafficMonitor, CliError> {
        let target = self.cloudstack_target()?;
        let database = CloudStackDatabase::connect(&target).await?;
        let monitor = database.traffic_monitor(zone).await;
        database.close().await;
        Ok(monitor?)
    }
}

/// `host:port` of a `mysql://` or `postgres://` URL (the port defaulting to
/// 3306 or 5432), or `None` when `url` has no host.
fn server_of(url: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(url).ok()?;
    let default = if parsed.scheme() == "postgres" {
        5432
    } else {
        3306
    };
    Some((
        parsed.host_str()?.to_ascii_lowercase(),
        parsed.port().unwrap_or(default),
    ))
}

/// Whether two `mysql://` or `postgres://` URLs name one database server:
/// the same host and port as written, or — when both names resolve — the
/// same port and a socket address in common (`localhost` and `127.0.0.1`
/// are one server). A name that does not resolve is compared as written.
pub(crate) fn on_one_server(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (server_of(a), server_of(b)) else {
        return false;
    };
    if a == b {
        return true;
    }
    if a.1 != b.1 {
        return false;
    }
    let resolve = |(host, port): &(String, u16)| -> Vec<std::net::SocketAddr> {
        // `url` keeps an IPv6 literal's brackets, which resolution does not take.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        std::net::ToSocketAddrs::to_socket_addrs(&(host, *port))
            .map(Iterator::collect)
            .unwrap_or_default()
    };
    let a = resolve(&a);
    resolve(&b).iter().any(|address| a.contains(address))
}

#[cfg(test)]
mod tests {
    use super::on_one_server;

    #[test]
    fn one_server_by_name_or_by_address() {
        let same = [
            (
                "mysql://a@127.0.0.1/cloud",
                "mysql://b@127.0.0.1:3306/usage",
            ),
            ("mysql://a@LOCALHOST/cloud", "mysql://b@localhost/usage"),
            ("mysql://a@localhost/cloud", "mysql://b@127.0.0.1/usage"),
            ("mysql://a@[::1]:3307/cloud", "mysql://b@[::1]:3307/usage"),
        ];
        for (a, b) in same {
            assert!(on_one_server(a, b), "{a} {b}");
            assert!(on_one_server(b, a), "{b} {a}");
        }
        let different = [
            (
                "mysql://a@127.0.0.1/cloud",
                "mysql://b@127.0.0.1:3307/usage",
            ),
            (
                "mysql://a@localhost/cloud",
                "mysql://b@localhost:3307/usage",
            ),
            ("mysql://a@127.0.0.1/cloud", "mysql://b@127.0.0.2/usage"),
            ("mysql://a@127.0.0.1/cloud", "usage.sqlite"),
            ("mysql://a@db.invalid/cloud", "mysql://b@127.0.0.1/usage"),
        ];
        for (a, b) in different {
            assert!(!on_one_server(a, b), "{a} {b}");
            assert!(!on_one_server(b, a), "{b} {a}");
        }
    }
}
