//! Usage events from CloudStack's `usage_event` table (DESIGN §11):
//! the address assigns and releases of a resource type, streamed row by row
//! in id order and mapped to [`IpEvent`]s.
//!
//! Source: DESIGN §11 and CloudStack's schema. `usage_event` holds every
//! usage event of the cloud (`VM.CREATE`, `NETWORK.OFFERING.ASSIGN`,
//! `PORTABLE.IPRELEASE`, …); CloudStack logs an address given to an
//! account as `NET.IPASSIGN` and taken back as `NET.IPRELEASE`, with the
//! address in `resource_name` and the kind of VLAN it belongs to in
//! `resource_type`: `DirectAttached` for the guest addresses of shared
//! networks (which Traffic Sentinel meters), `VirtualNetwork` for public
//! addresses of isolated networks. `created` is a `DATETIME` in UTC.

use std::net::IpAddr;
use std::ops::ControlFlow;

use sqlx::Row as _;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use usage_model::{AccountId, IpEvent, IpEventKind, ZoneId};

use crate::rows::next_row;
use crate::store::{corrupt_time, get, get_text};
use crate::{AnomalyRow, CloudStackDatabase, StoreError};

/// The kind of the anomaly of a `usage_event` row whose `resource_name` is
/// not an IP address ([`SkippedUsageEvent`]).
pub const NOT_AN_IP_ADDRESS: &str = "not-an-ip-address";

/// The `resource_type` read by default: `DirectAttached`, the guest
/// addresses of CloudStack's shared networks.
pub const DIRECT_ATTACHED: &str = "DirectAttached";

const TABLE: &str = "usage_event";

/// Which `usage_event` rows [`CloudStackDatabase::read_ip_events`] reads.
/// By default, the `NET.IPASSIGN` and `NET.IPRELEASE` rows of resource type
/// [`DIRECT_ATTACHED`].
///
/// # Example
///
/// ```
/// use usage_store::UsageEventOptions;
///
/// let options = UsageEventOptions::new().resource_type("VirtualNetwork");
/// assert_eq!(options.get_resource_type(), "VirtualNetwork");
/// assert_eq!(UsageEventOptions::new().get_resource_type(), "DirectAttached");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsageEventOptions {
    resource_type: String,
    collected_zones: Option<Vec<ZoneId>>,
}

impl Default for UsageEventOptions {
    fn default() -> UsageEventOptions {
        UsageEventOptions {
            resource_type: DIRECT_ATTACHED.to_owned(),
            collected_zones: None,
        }
    }
}

impl UsageEventOptions {
    /// The default options.
    pub fn new() -> UsageEventOptions {
        UsageEventOptions::default()
    }

    /// Reads the rows whose `resource_type` is exactly `resource_type`
    /// (compared byte by byte, as CloudStack compares it), e.g.
    /// `VirtualNetwork`. By default, [`DIRECT_ATTACHED`].
    pub fn resource_type(self, resource_type: impl Into<String>) -> UsageEventOptions {
        UsageEventOptions {
            resource_type: resource_type.into(),
            ..self
        }
    }

    /// The zones being collected: only their skipped rows are listed in
    /// [`UsageEventsRead::skipped`] (memory does not grow with the other
    /// zones' rows), and only their rows are refused as corrupt (a row that
    /// names another zone cannot change these zones' ownership, and is
    /// passed over). Events of every zone are still handed over, so that a
    /// caller can name the zones the table holds. By default, every zone.
    pub fn collected_zones(self, zones: impl IntoIterator<Item = ZoneId>) -> UsageEventOptions {
        UsageEventOptions {
            collected_zones: Some(zones.into_iter().collect()),
            ..self
        }
    }

    /// The resource type read.
    pub fn get_resource_type(&self) -> &str {
        &self.resource_type
    }
}

/// A `usage_event` row skipped because its `resource_name` is not an IP
/// address: an anomaly of kind [`NOT_AN_IP_ADDRESS`], never an error.
/// Its other columns were read as for any event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SkippedUsageEvent {
    /// The row's `id`.
    pub id: u64,
    /// The row's `resource_name`, as stored (empty for a `NULL`).
    pub resource_name: String,
    /// The row's `created` (UTC).
    pub at: OffsetDateTime,
    /// The row's `zone_id`, as decimal text.
    pub zone: ZoneId,
    /// The row's `account_id`, as decimal text.
    pub account: AccountId,
    /// The row's `type`.
    pub event_kind: IpEventKind,
    /// One line saying what was skipped and why, e.g.
    /// `usage_event 17: resource_name "vm-12" is not an IP address
    /// (NET.IPASSIGN, account 42, zone 1); skipped`.
    pub detail: String,
}

impl SkippedUsageEvent {
    /// The anomaly to store with the window the row falls in: kind
    /// [`NOT_AN_IP_ADDRESS`], the row's id and [`detail`](Self::detail).
    pub fn anomaly_row(&self) -> AnomalyRow {
        AnomalyRow {
            kind: NOT_AN_IP_ADDRESS.to_owned(),
            event_id: self.id,
            other_event_id: None,
            detail: self.detail.clone(),
        }
    }
}

/// What [`CloudStackDatabase::read_ip_events`] read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageEventsRead {
    /// The events handed to the caller.
    pub events: u64,
    /// The rows skipped, in id order (one per row whose `resource_name` is
    /// not an IP address; their number grows with such rows only).
    pub skipped: Vec<SkippedUsageEvent>,
}

impl CloudStackDatabase {
    /// Reads the `usage_event` rows of type `NET.IPASSIGN` or
    /// `NET.IPRELEASE` and the resource type of `options`, in `id` order,
    /// and hands each to `each` as an [`IpEvent`] until it returns
    /// [`ControlFlow::Break`].
    ///
    /// The rows are streamed: one decoded row is in memory at a time
    /// (besides the connection's read buffer), whatever the size of the
    /// table, and each event is handed over as soon as its row arrives. They come from one `SELECT`, a consistent snapshot of the
    /// table. To build an ownership ledger, push the events into a `Vec`
    /// and give it to `usage_correlator::OwnershipLedger::from_events`,
    /// which keeps them anyway: the peak memory is that of the events, with
    /// no buffer of rows beside them.
    ///
    /// Mapping (DESIGN §11): `id` → [`IpEvent::id`]; `created` (a `DATETIME`
    /// in UTC, whole seconds) → [`IpEvent::at`]; `zone_id` and `account_id`
    /// as decimal text → [`IpEvent::zone`] and [`IpEvent::account`];
    /// `resource_name` → [`IpEvent::ip`], an IPv4-mapped IPv6 address read
    /// as the IPv4 address; `type` → [`IpEvent::kind`]. `type` and
    /// `resource_type` are compared byte by byte, as CloudStack compares
    /// them. A row whose `resource_name` is not an IP address is skipped and
    /// listed in [`UsageEventsRead::skipped`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails (e.g. no `usage_event`
    /// table); [`StoreError::Corrupt`] naming the row id and column of a
    /// value that cannot be read (a `NULL` `created`, `zone_id` or
    /// `account_id`, a time before 1970) in a row of a collected zone (see
    /// [`UsageEventOptions::collected_zones`]). Events handed over before an
    /// error stay handed over.
    pub async fn read_ip_events(
        &self,
        options: &UsageEventOptions,
        mut each: impl FnMut(IpEvent) -> ControlFlow<()>,
    ) -> Result<UsageEventsRead, StoreError> {
        // `BIGINT UNSIGNED` columns are read as text (sqlx's `Any` driver
        // has no unsigned 64-bit type); `created` as seconds since the
        // epoch, by arithmetic on the `DATETIME` that no session time zone
        // affects.
        let sql = "SELECT CAST(id AS CHAR), type, CAST(account_id AS CHAR),
                          TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', created),
                          CAST(zone_id AS CHAR), resource_name
                   FROM usage_event
                   WHERE CAST(type AS BINARY) IN ('NET.IPASSIGN', 'NET.IPRELEASE')
                     AND CAST(resource_type AS BINARY) = CAST(? AS BINARY)
                   ORDER BY id";
        let mut rows = sqlx::query(sql)
            .bind(options.resource_type.as_str())
            .fetch(&self.pool);
        let mut read = UsageEventsRead::default();
        let collected = |zone: &str| {
            options
                .collected_zones
                .as_ref()
                .is_none_or(|zones| zones.iter().any(|z| z.as_str() == zone))
        };
        while let Some(row) = next_row(&mut rows, "reading CloudStack's usage events").await? {
            let outcome = match event_of(&row) {
                Ok(outcome) => outcome,
                Err(error) => {
                    // A corrupt row of a zone not collected is passed over.
                    let zone: Option<String> = row.try_get(4).ok().flatten();
                    if zone.is_some_and(|zone| !collected(&zone)) {
                        continue;
                    }
                    return Err(error);
                }
            };
            match outcome {
                RowOutcome::Event(event) => {
                    read.events += 1;
                    if each(event).is_break() {
                        break;
                    }
                }
                RowOutcome::Skipped(skipped) => {
                    if collected(skipped.zone.as_str()) {
                        read.skipped.push(skipped);
                    }
                }
            }
        }
        Ok(read)
    }
}

/// What one row gives.
enum RowOutcome {
    /// An event.
    Event(IpEvent),
    /// A row skipped for its `resource_name`.
    Skipped(SkippedUsageEvent),
}

/// The event of one row, or the row skipped for its `resource_name`.
fn event_of(row: &AnyRow) -> Result<RowOutcome, StoreError> {
    let id_text: String = get(row, TABLE, "?", "id", 0)?;
    let id: u64 = id_text.parse().map_err(|_| StoreError::Corrupt {
        table: TABLE,
        key: id_text.clone(),
        column: "id",
        reason: format!("{id_text:?} is not an unsigned 64-bit number"),
    })?;
    let key = id_text.as_str();
    let corrupt = |column: &'static str, reason: String| StoreError::Corrupt {
        table: TABLE,
        key: key.to_owned(),
        column,
        reason,
    };
    let type_text = get_text(row, TABLE, key, "type", 1)?;
    let kind = IpEventKind::from_cloudstack_type(&type_text)
        .ok_or_else(|| corrupt("type", format!("unexpected event type {type_text:?}")))?;
    let account: Option<String> = get(row, TABLE, key, "account_id", 2)?;
    let account = account.ok_or_else(|| corrupt("account_id", "NULL".to_owned()))?;
    let account = AccountId::new(account).map_err(|e| corrupt("account_id", e.to_string()))?;
    let seconds: Option<i64> = get(row, TABLE, key, "created", 3)?;
    let seconds =
        seconds.ok_or_else(|| corrupt("created", "NULL or not a valid date".to_owned()))?;
    let at = corrupt_time(TABLE, key, "created", seconds)?;
    let zone: Option<String> = get(row, TABLE, key, "zone_id", 4)?;
    let zone = zone.ok_or_else(|| corrupt("zone_id", "NULL".to_owned()))?;
    let zone = ZoneId::new(zone).map_err(|e| corrupt("zone_id", e.to_string()))?;
    // A NULL reads as `None`; a name in a binary collation as bytes.
    let resource_name: Option<String> = match row.try_get::<Option<String>, _>(5) {
        Ok(name) => name,
        Err(_) => Some(get_text(row, TABLE, key, "resource_name", 5)?),
    };
    let parsed = resource_name
        .as_deref()
        .and_then(|name| name.parse::<IpAddr>().ok());
    match parsed {
        Some(ip) => Ok(RowOutcome::Event(IpEvent {
            id,
            at,
            zone,
            account,
            ip: ip.to_canonical(),
            kind,
        })),
        None => {
            let shown = resource_name
                .as_deref()
                .map_or_else(|| "NULL".to_owned(), |name| format!("{name:?}"));
            let detail = format!(
                "usage_event {id}: resource_name {shown} is not an IP address ({kind}, account {account}, zone {zone}); skipped"
            );
            Ok(RowOutcome::Skipped(SkippedUsageEvent {
                id,
                resource_name: resource_name.unwrap_or_default(),
                at,
                zone,
                account,
                event_kind: kind,
                detail,
            }))
        }
    }
}
