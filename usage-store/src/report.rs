//! Reports (DESIGN §9 `report`): stored usage per account, per record, per
//! day, and the stored anomalies and adjustments, aggregated by the engine
//! and streamed row by row in a fixed order, so that memory does not grow
//! with the number of records and every engine gives the same rows.

use std::net::IpAddr;
use std::ops::ControlFlow;

use sqlx::any::AnyRow;
use time::{Date, OffsetDateTime};
use usage_model::{AccountId, ByteCounts, CollectionWindow, UsageRecord, ZoneId};

use crate::codec::join_signed;
use crate::rows::{narrow, next_row, wide};
use crate::store::{corrupt_time, get, get_text, window_of};
use crate::window_rows::account_id;
use crate::{Adjustment, Store, StoreError};

/// Which rows a report keeps. By default, all of them.
///
/// # Example
///
/// ```
/// use time::macros::datetime;
/// use usage_model::ZoneId;
/// use usage_store::ReportFilter;
///
/// let filter = ReportFilter::new()
///     .zone(ZoneId::new("zone-1")?)
///     .from(datetime!(2026-11-01 00:00 UTC))
///     .until(datetime!(2026-12-01 00:00 UTC));
/// # Ok::<(), usage_model::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportFilter {
    zone: Option<ZoneId>,
    account: Option<AccountId>,
    from: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
}

impl ReportFilter {
    /// A filter that keeps everything.
    pub fn new() -> ReportFilter {
        ReportFilter::default()
    }

    /// Keeps one zone. By default, every zone.
    pub fn zone(self, zone: ZoneId) -> ReportFilter {
        ReportFilter {
            zone: Some(zone),
            ..self
        }
    }

    /// Keeps one account (usage and adjustments; anomalies have no account
    /// and ignore it). By default, every account.
    pub fn account(self, account: AccountId) -> ReportFilter {
        ReportFilter {
            account: Some(account),
            ..self
        }
    }

    /// Keeps records (windows, for anomalies and adjustments) that start at
    /// or after `from`. By default, no lower bound.
    pub fn from(self, from: OffsetDateTime) -> ReportFilter {
        ReportFilter {
            from: Some(from),
            ..self
        }
    }

    /// Keeps records (windows, for anomalies and adjustments) that end at or
    /// before `until`. By default, no upper bound.
    pub fn until(self, until: OffsetDateTime) -> ReportFilter {
        ReportFilter {
            until: Some(until),
            ..self
        }
    }

    /// The `WHERE` clause and its arguments, over the given column names.
    fn clause(&self, start: &str, end: &str, with_account: bool) -> (String, Vec<Argument>) {
        let mut conditions = Vec::new();
        let mut arguments = Vec::new();
        if let Some(zone) = &self.zone {
            conditions.push("zone = ?".to_owned());
            arguments.push(Argument::Text(zone.to_string()));
        }
        if let (true, Some(account)) = (with_account, &self.account) {
            conditions.push("account = ?".to_owned());
            arguments.push(Argument::Text(account.to_string()));
        }
        // Stored times are whole seconds: a bound with a fraction keeps the
        // records inside it, rounding `from` up and `until` down.
        if let Some(from) = self.from {
            let seconds = from.unix_timestamp() + i64::from(from.nanosecond() > 0);
            conditions.push(format!("{start} >= ?"));
            arguments.push(Argument::Integer(seconds));
        }
        if let Some(until) = self.until {
            conditions.push(format!("{end} <= ?"));
            arguments.push(Argument::Integer(until.unix_timestamp()));
        }
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        (clause, arguments)
    }
}

enum Argument {
    Text(String),
    Integer(i64),
}

/// One row of [`Store::report_by_account`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccountUsage {
    /// The zone.
    pub zone: ZoneId,
    /// The account.
    pub account: AccountId,
    /// Bytes sent, summed.
    pub bytes_sent: u64,
    /// Bytes received, summed.
    pub bytes_received: u64,
}

/// One row of [`Store::report_by_day`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DayUsage {
    /// The zone.
    pub zone: ZoneId,
    /// The account.
    pub account: AccountId,
    /// The UTC day of the records' starts (a record never crosses midnight).
    pub day: Date,
    /// Bytes sent, summed.
    pub bytes_sent: u64,
    /// Bytes received, summed.
    pub bytes_received: u64,
}

/// One row of [`Store::report_anomalies`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoredAnomaly {
    /// The zone.
    pub zone: ZoneId,
    /// The window it is stored with.
    pub window: CollectionWindow,
    /// What happened, e.g. `assign-while-held` or `late-event`.
    pub kind: String,
    /// The event that raised it.
    pub event_id: u64,
    /// The other event involved, if any.
    pub other_event_id: Option<u64>,
    /// A human-readable account of it.
    pub detail: String,
}

impl Store {
    /// Calls `each` with the bytes of every zone and account, summed by the
    /// engine, ordered by zone then account, until it returns
    /// [`ControlFlow::Break`].
    ///
    /// # Errors
    ///
    /// [`StoreError::TotalOverflow`] naming the zone and account whose sum
    /// passes `u64`; [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn report_by_account(
        &self,
        filter: &ReportFilter,
        mut each: impl FnMut(AccountUsage) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let (clause, arguments) = filter.clause("start_at", "end_at", true);
        let d = self.dialect;
        let sql = format!(
            "SELECT zone, account, {}, {}, {}, {} FROM usage_records{clause}
             GROUP BY zone, account ORDER BY zone, account",
            d.sum("sent_hi"),
            d.sum("sent_lo"),
            d.sum("received_hi"),
            d.sum("received_lo")
        );
        self.stream(&sql, arguments, "reporting usage by account", |row| {
            let (zone, account) = zone_account(row)?;
            let (bytes_sent, bytes_received) = sums(row, &zone, &account, None, 2)?;
            Ok(each(AccountUsage {
                zone,
                account,
                bytes_sent,
                bytes_received,
            }))
        })
        .await
    }

    /// Calls `each` with every stored record, ordered by zone, account,
    /// address (by value: IPv4 first), start and end, until it returns
    /// [`ControlFlow::Break`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn report_by_ip(
        &self,
        filter: &ReportFilter,
        mut each: impl FnMut(UsageRecord) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let (clause, arguments) = filter.clause("start_at", "end_at", true);
        let sql = format!(
            "SELECT zone, account, ip, start_at, end_at, sent_hi, sent_lo, received_hi, received_lo, id
             FROM usage_records{clause} ORDER BY zone, account, ip_key, start_at, end_at"
        );
        self.stream(&sql, arguments, "reporting usage by address", |row| {
            // A damaged row is named by its record id (column 9).
            let id: String = get(row, "usage_records", "?", "id", 9)?;
            let key = id.as_str();
            let (zone, account) = zone_account(row)?;
            let ip_text: String = get(row, "usage_records", key, "ip", 2)?;
            let ip: IpAddr = ip_text.parse().map_err(|_| StoreError::Corrupt {
                table: "usage_records",
                key: key.to_owned(),
                column: "ip",
                reason: format!("{ip_text:?} is not an IP address"),
            })?;
            let window = window_of(row, "usage_records", key, 3, 4)?;
            let sent = narrow(row, "usage_records", key, "sent", 5)?;
            let received = narrow(row, "usage_records", key, "received", 7)?;
            Ok(each(UsageRecord::new(
                zone,
                account,
                ip,
                window.start(),
                window.end(),
                ByteCounts { sent, received },
            )))
        })
        .await
    }

    /// Calls `each` with the bytes of every zone, account and UTC day (of the
    /// records' starts), summed by the engine, ordered by zone, account and
    /// day, until it returns [`ControlFlow::Break`].
    ///
    /// # Errors
    ///
    /// As [`Store::report_by_account`], naming the day too.
    pub async fn report_by_day(
        &self,
        filter: &ReportFilter,
        mut each: impl FnMut(DayUsage) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let (clause, arguments) = filter.clause("start_at", "end_at", true);
        let d = self.dialect;
        let sql = format!(
            "SELECT zone, account, {} AS day, {}, {}, {}, {} FROM usage_records{clause}
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            d.day("start_at"),
            d.sum("sent_hi"),
            d.sum("sent_lo"),
            d.sum("received_hi"),
            d.sum("received_lo")
        );
        self.stream(&sql, arguments, "reporting usage by day", |row| {
            let (zone, account) = zone_account(row)?;
            let days: i64 = get(row, "usage_records", account.as_str(), "day", 2)?;
            let day = corrupt_time(
                "usage_records",
                account.as_str(),
                "start_at",
                days.saturating_mul(86_400),
            )?
            .date();
            let (bytes_sent, bytes_received) = sums(row, &zone, &account, Some(day), 3)?;
            Ok(each(DayUsage {
                zone,
                account,
                day,
                bytes_sent,
                bytes_received,
            }))
        })
        .await
    }

    /// Calls `each` with every stored anomaly, ordered by zone, window start,
    /// kind and event id, until it returns [`ControlFlow::Break`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn report_anomalies(
        &self,
        filter: &ReportFilter,
        mut each: impl FnMut(StoredAnomaly) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let (clause, arguments) = filter.clause("window_start", "window_end", false);
        let sql = format!(
            "SELECT zone, window_start, window_end, kind, event_hi, event_lo,
                    other_event_hi, other_event_lo, detail
             FROM anomalies{clause} ORDER BY zone, window_start, kind, event_hi, event_lo"
        );
        self.stream(&sql, arguments, "reporting anomalies", |row| {
            let zone_text: String = get(row, "anomalies", "?", "zone", 0)?;
            let key = zone_text.as_str();
            let zone = ZoneId::new(zone_text.clone()).map_err(|e| StoreError::Corrupt {
                table: "anomalies",
                key: key.to_owned(),
                column: "zone",
                reason: e.to_string(),
            })?;
            let window = window_of(row, "anomalies", key, 1, 2)?;
            let other_hi: Option<i64> = get(row, "anomalies", key, "other_event_hi", 6)?;
            let other_event_id = match other_hi {
                Some(_) => Some(narrow(row, "anomalies", key, "other_event_id", 6)?),
                None => None,
            };
            Ok(each(StoredAnomaly {
                zone,
                window,
                kind: get(row, "anomalies", key, "kind", 3)?,
                event_id: narrow(row, "anomalies", key, "event_id", 4)?,
                other_event_id,
                detail: get_text(row, "anomalies", key, "detail", 8)?,
            }))
        })
        .await
    }

    /// Calls `each` with every stored adjustment, ordered by zone, account,
    /// window start and restatement, until it returns
    /// [`ControlFlow::Break`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn report_adjustments(
        &self,
        filter: &ReportFilter,
        mut each: impl FnMut(Adjustment) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let (clause, arguments) = filter.clause("window_start", "window_end", true);
        let sql = format!(
            "SELECT zone, account, window_start, window_end, sent_negative, sent_hi, sent_lo,
                    received_negative, received_hi, received_lo, restated_at
             FROM adjustments{clause} ORDER BY zone, account, window_start, revision"
        );
        self.stream(&sql, arguments, "reporting adjustments", |row| {
            let (zone, account) = zone_account(row)?;
            let key = account.as_str();
            let window = window_of(row, "adjustments", key, 2, 3)?;
            let signed = |index: usize, column: &'static str| -> Result<i128, StoreError> {
                let negative: i64 = get(row, "adjustments", key, column, index)?;
                let hi: i64 = get(row, "adjustments", key, column, index + 1)?;
                let lo: i64 = get(row, "adjustments", key, column, index + 2)?;
                join_signed(negative, hi, lo).map_err(|()| StoreError::Corrupt {
                    table: "adjustments",
                    key: key.to_owned(),
                    column,
                    reason: format!("bad signed amount ({negative}, {hi}, {lo})"),
                })
            };
            let restated: i64 = get(row, "adjustments", key, "restated_at", 10)?;
            Ok(each(Adjustment {
                bytes_sent_delta: signed(4, "sent")?,
                bytes_received_delta: signed(7, "received")?,
                restated_at: corrupt_time("adjustments", key, "restated_at", restated)?,
                zone,
                account,
                window,
            }))
        })
        .await
    }

    /// Runs `sql` with `arguments` and hands each row to `each` until it
    /// breaks; one row in memory at a time.
    async fn stream(
        &self,
        sql: &str,
        arguments: Vec<Argument>,
        action: &'static str,
        mut each: impl FnMut(&AnyRow) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        let sql = self.dialect.sql(sql);
        let mut query = sqlx::query(&sql);
        for argument in arguments {
            query = match argument {
                Argument::Text(text) => query.bind(text),
                Argument::Integer(number) => query.bind(number),
            };
        }
        let mut rows = query.fetch(&self.pool);
        while let Some(row) = next_row(&mut rows, action).await? {
            if each(&row)?.is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// The zone and account of columns 0 and 1.
fn zone_account(row: &AnyRow) -> Result<(ZoneId, AccountId), StoreError> {
    let zone: String = get(row, "usage_records", "?", "zone", 0)?;
    let account: String = get(row, "usage_records", &zone, "account", 1)?;
    let zone = ZoneId::new(zone.clone()).map_err(|e| StoreError::Corrupt {
        table: "usage_records",
        key: zone,
        column: "zone",
        reason: e.to_string(),
    })?;
    Ok((zone, account_id(&account)?))
}

/// The sums of halves at `index..index + 4` as `(sent, received)`, or
/// [`StoreError::TotalOverflow`].
fn sums(
    row: &AnyRow,
    zone: &ZoneId,
    account: &AccountId,
    day: Option<Date>,
    index: usize,
) -> Result<(u64, u64), StoreError> {
    let key = account.as_str();
    let overflow = |column| StoreError::TotalOverflow {
        column,
        zone: zone.clone(),
        account: account.clone(),
        day,
    };
    let sent = wide(row, "usage_records", key, "sent", index)?;
    let received = wide(row, "usage_records", key, "received", index + 2)?;
    Ok((
        u64::try_from(sent).map_err(|_| overflow("bytes_sent"))?,
        u64::try_from(received).map_err(|_| overflow("bytes_received"))?,
    ))
}
