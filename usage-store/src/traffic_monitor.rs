//! The zone's traffic monitor as CloudStack registered it (DESIGN §11,
//! `--monitor cloudstack`).
//!
//! Source: DESIGN §11 and Apache CloudStack's `addTrafficMonitor`, which
//! creates a `host` row of `type` `TrafficMonitor` in the zone
//! (`data_center_id`) and `host_details` rows (`host_id`, `name`, `value`)
//! holding `url` and, when given, `inclZones` and `exclZones`
//! (comma-separated Traffic Sentinel zone names). A host that is deleted
//! keeps its row with `removed` set. CloudStack refuses a second monitor in
//! a zone. Its Traffic Sentinel resource sends no zone condition for a list
//! that is present but empty, and for a list that is absent uses the global
//! settings `traffic.sentinel.include.zones` (default `EXTERNAL`) and
//! `traffic.sentinel.exclude.zones` (default empty) of its `configuration`
//! table (`TrafficSentinelResource`: "Use Global include/exclude zones if
//! there are no per TS zones").

use std::fmt;

use sqlx::Row as _;
use usage_model::ZoneId;

use crate::cloudstack::cloudstack_id;
use crate::error::Doing as _;
use crate::store::{get, get_text};
use crate::{CloudStackDatabase, StoreError};

/// The include zones of a monitor registered without `inclZones` when
/// CloudStack's global setting `traffic.sentinel.include.zones` cannot be
/// read: its default, `EXTERNAL`, traffic to and from outside the cloud.
pub const DEFAULT_INCLUDE_ZONES: &[&str] = &["EXTERNAL"];

/// CloudStack's global settings (`configuration.name`) that give the zone
/// lists of a monitor registered without its own.
const GLOBAL_INCLUDE_ZONES: &str = "traffic.sentinel.include.zones";
/// See [`GLOBAL_INCLUDE_ZONES`].
const GLOBAL_EXCLUDE_ZONES: &str = "traffic.sentinel.exclude.zones";

/// A zone's traffic monitor as CloudStack's `addTrafficMonitor` registered
/// it, found by [`CloudStackDatabase::traffic_monitor`].
///
/// Its `Debug` hides a password in the URL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RegisteredTrafficMonitor {
    /// The `host.id`: the `device_id` of the zone's `user_statistics` rows
    /// ([`CloudStackPosting::host_id`](crate::CloudStackPosting::host_id)).
    pub host_id: u64,
    /// The `url` detail: the Traffic Sentinel server, as given to
    /// `addTrafficMonitor` (not validated here).
    pub url: String,
    /// The `inclZones` detail split at commas, items trimmed and empty ones
    /// dropped. When the detail is absent, CloudStack's global setting
    /// `traffic.sentinel.include.zones` read the same way, or
    /// [`DEFAULT_INCLUDE_ZONES`] when that cannot be read (no
    /// `configuration` table, no such row, no privilege to read it). Empty
    /// when the list is present but empty: no zone condition.
    pub include_zones: Vec<String>,
    /// The `exclZones` detail, read the same way (the global setting
    /// `traffic.sentinel.exclude.zones`); empty when neither can be read.
    pub exclude_zones: Vec<String>,
}

impl fmt::Debug for RegisteredTrafficMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredTrafficMonitor")
            .field("host_id", &self.host_id)
            .field("url", &without_password(&self.url))
            .field("include_zones", &self.include_zones)
            .field("exclude_zones", &self.exclude_zones)
            .finish()
    }
}

impl CloudStackDatabase {
    /// The traffic monitor of `zone` (CloudStack's numeric zone id): the
    /// `host` row of `type` `TrafficMonitor`, `data_center_id` = `zone` and
    /// `removed` `NULL`, with its `url`, `inclZones` and `exclZones`
    /// details (`type` and detail names compared byte by byte).
    ///
    /// # Errors
    ///
    /// [`StoreError::NoTrafficMonitor`] naming the zone when no live
    /// monitor is registered for it (also for a zone that is not a decimal
    /// number, which no CloudStack zone is); [`StoreError::Database`] when a
    /// query fails;
    /// [`StoreError::Corrupt`] for a registry CloudStack would not leave:
    /// more than one live monitor in the zone (naming every host id), no
    /// `url` detail or an empty one, a detail given twice, or a zone in
    /// both `inclZones` and `exclZones`.
    pub async fn traffic_monitor(
        &self,
        zone: &ZoneId,
    ) -> Result<RegisteredTrafficMonitor, StoreError> {
        const ACTION: &str = "finding the zone's traffic monitor in CloudStack";
        let not_registered = |hint: &'static str| StoreError::NoTrafficMonitor {
            zone: zone.clone(),
            hint,
        };
        let Some(zone_id) = cloudstack_id(zone.as_str()) else {
            return Err(not_registered("CloudStack zones are numeric ids"));
        };
        let hosts: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT CAST(id AS CHAR) FROM host
             WHERE CAST(type AS BINARY) = 'TrafficMonitor' AND data_center_id = {zone_id}
               AND removed IS NULL
             ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .doing(ACTION)?;
        let host_id = match hosts.as_slice() {
            [] => return Err(not_registered("add one with addTrafficMonitor")),
            [one] => one.parse::<u64>().map_err(|_| StoreError::Corrupt {
                table: "host",
                key: one.clone(),
                column: "id",
                reason: format!("{one:?} is not an unsigned 64-bit number"),
            })?,
            several => {
                return Err(StoreError::Corrupt {
                    table: "host",
                    key: several.join(", "),
                    column: "data_center_id",
                    reason: format!(
                        "zone {zone_id} has {} live traffic monitors (hosts {}); CloudStack registers one per zone",
                        several.len(),
                        several.join(", ")
                    ),
                });
            }
        };
        let details = sqlx::query(&format!(
            "SELECT CAST(id AS CHAR), name, value FROM host_details
             WHERE host_id = {host_id} ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .doing(ACTION)?;
        let mut url = None;
        let mut include = None;
        let mut exclude = None;
        for row in &details {
            let detail_id: String = get(row, "host_details", "?", "id", 0)?;
            let key = detail_id.as_str();
            let name = get_text(row, "host_details", key, "name", 1)?;
            let (slot, column) = match name.as_str() {
                "url" => (&mut url, "url"),
                "inclZones" => (&mut include, "inclZones"),
                "exclZones" => (&mut exclude, "exclZones"),
                _ => continue,
            };
            let value = match row.try_get::<Option<String>, _>(2) {
                Ok(value) => value.unwrap_or_default(),
                Err(_) => get_text(row, "host_details", key, "value", 2)?,
            };
            if let Some((first, _)) = slot {
                return Err(StoreError::Corrupt {
                    table: "host_details",
                    key: detail_id.clone(),
                    column: "name",
                    reason: format!(
                        "a second {column} detail of traffic monitor host {host_id}, beside row {first}"
                    ),
                });
            }
            *slot = Some((detail_id.clone(), value));
        }
        let url = match url {
            Some((_, url)) if !url.trim().is_empty() => url,
            found => {
                return Err(StoreError::Corrupt {
                    table: "host_details",
                    key: found.map_or_else(|| format!("host_id {host_id}"), |(id, _)| id),
                    column: "value",
                    reason: format!(
                        "traffic monitor host {host_id} has no url detail (or an empty one)"
                    ),
                });
            }
        };
        let include_zones = match include {
            Some((_, list)) => zone_list(&list),
            None => match self.global_setting(GLOBAL_INCLUDE_ZONES).await {
                Some(list) => zone_list(&list),
                None => DEFAULT_INCLUDE_ZONES
                    .iter()
                    .map(|&z| z.to_owned())
                    .collect(),
            },
        };
        let (exclude_row, exclude_zones) = match exclude {
            Some((row, list)) => (Some(row), zone_list(&list)),
            None => (
                None,
                self.global_setting(GLOBAL_EXCLUDE_ZONES)
                    .await
                    .map_or_else(Vec::new, |list| zone_list(&list)),
            ),
        };
        // Lists that share a zone bill nothing (DESIGN §4: refused).
        if let Some(shared) = include_zones.iter().find(|z| exclude_zones.contains(z)) {
            return Err(StoreError::Corrupt {
                table: "host_details",
                key: exclude_row.unwrap_or_default(),
                column: "value",
                reason: format!(
                    "traffic monitor host {host_id} has zone {shared} in both inclZones and \
                     exclZones; no traffic could match"
                ),
            });
        }
        Ok(RegisteredTrafficMonitor {
            host_id,
            url,
            include_zones,
            exclude_zones,
        })
    }

    /// The value of CloudStack's global setting `name` (its `configuration`
    /// table; `NULL` read as empty), or `None` when it cannot be read: no
    /// such table, row or privilege. The caller then takes CloudStack's
    /// default, which a fresh installation also holds.
    async fn global_setting(&self, name: &str) -> Option<String> {
        let value: Option<Option<String>> =
            sqlx::query_scalar("SELECT value FROM configuration WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .ok()?;
        value.map(Option::unwrap_or_default)
    }
}

/// The items of a comma-separated list, trimmed, without empty ones.
fn zone_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `url` with a password in it replaced by `***`.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Not a URL: it may still hold `user:password@`.
        Err(_) => crate::target::redact(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_lists_are_split_at_commas() {
        let cases: [(&str, &[&str]); 5] = [
            ("EXTERNAL", &["EXTERNAL"]),
            ("EXTERNAL,PEERING", &["EXTERNAL", "PEERING"]),
            (" EXTERNAL , PEERING ,", &["EXTERNAL", "PEERING"]),
            ("", &[]),
            (",,", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(zone_list(text), want, "{text:?}");
        }
    }

    #[test]
    fn debug_hides_a_password_in_the_url() {
        let cases = [
            (
                "http://ts:s3cret@ts.example:8080",
                "http://ts:***@ts.example:8080/",
            ),
            ("http://ts.example:8080", "http://ts.example:8080"),
        ];
        for (url, shown) in cases {
            let monitor = RegisteredTrafficMonitor {
                host_id: 3,
                url: url.to_owned(),
                include_zones: Vec::new(),
                exclude_zones: Vec::new(),
            };
            let debug = format!("{monitor:?}");
            assert!(debug.contains(shown), "{debug}");
        }
    }
}
