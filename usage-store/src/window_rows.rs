//! The rows one window stores, checked and written the same way by a commit,
//! a restatement and a migration: usage records, anomalies, settings.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::AnyConnection;
use time::OffsetDateTime;
use usage_model::{AccountId, CollectionWindow, RecordId, UsageRecord, ZoneId};

use crate::codec::{day_of, ip_key, split, to_seconds};
use crate::dialect::Dialect;
use crate::error::{Doing as _, show};
use crate::rows::wide;
use crate::schema::{MAX_KIND, MAX_NAME};
use crate::store::get;
use crate::{AnomalyRow, StoreError};

/// Rows per multi-row `INSERT`: 500 records of 11 columns stay far below
/// every engine's limit on parameters (SQLite 32766, the others 65535).
const BATCH: usize = 500;

/// The natural key of a stored record: `(account, ip_key, start, end)`
/// within one zone.
pub(crate) type NaturalKey = (String, String, i64, i64);

/// A record as its columns, checked.
pub(crate) struct RecordColumns {
    pub(crate) id: String,
    pub(crate) zone: String,
    pub(crate) account: String,
    pub(crate) ip: String,
    pub(crate) ip_key: String,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    /// Its index among the records given, or `usize::MAX` for a stored one.
    pub(crate) source: usize,
}

impl RecordColumns {
    pub(crate) fn key(&self) -> NaturalKey {
        (
            self.account.clone(),
            self.ip_key.clone(),
            self.start,
            self.end,
        )
    }
}

/// Checks that a zone or account name fits its column.
pub(crate) fn check_name(what: &'static str, value: &str) -> Result<(), StoreError> {
    if value.chars().count() > MAX_NAME {
        return Err(StoreError::InvalidValue {
            what,
            value: value.to_owned(),
            reason: "longer than 255 characters",
        });
    }
    Ok(())
}

/// Checks a window: storable times, and no UTC midnight inside it.
pub(crate) fn check_window(
    zone: &ZoneId,
    window: CollectionWindow,
) -> Result<(i64, i64), StoreError> {
    check_name("zone", zone.as_str())?;
    let start = to_seconds("window start", window.start())?;
    let end = to_seconds("window end", window.end())?;
    if day_of(start) != day_of(end - 1) {
        return Err(StoreError::WindowCrossesMidnight {
            zone: zone.clone(),
            window,
        });
    }
    Ok((start, end))
}

/// Checks that `record` belongs to `window` of `zone` and carries the id of
/// its natural key, and returns its columns.
pub(crate) fn check_record(
    record: &UsageRecord,
    zone: &ZoneId,
    window: CollectionWindow,
) -> Result<RecordColumns, StoreError> {
    let invalid = |reason: String| StoreError::InvalidRecord {
        id: record.id,
        reason,
    };
    if &record.zone != zone {
        return Err(invalid(format!(
            "its zone {} is not the window's zone {zone}",
            record.zone
        )));
    }
    if !(window.start() <= record.start && record.start < record.end && record.end <= window.end())
    {
        return Err(invalid(format!(
            "its interval {}..{} is empty or outside the window {}..{}",
            show(&record.start),
            show(&record.end),
            show(&window.start()),
            show(&window.end())
        )));
    }
    let expected = RecordId::of(
        &record.zone,
        &record.account,
        record.ip,
        record.start,
        record.end,
    );
    if record.id != expected {
        return Err(invalid(format!(
            "its id does not match its zone, account, ip and interval (expected {expected})"
        )));
    }
    check_name("account", record.account.as_str())?;
    Ok(RecordColumns {
        id: record.id.to_string(),
        zone: record.zone.to_string(),
        account: record.account.to_string(),
        ip: record.ip.to_string(),
        ip_key: ip_key(record.ip),
        start: to_seconds("record start", record.start)?,
        end: to_seconds("record end", record.end)?,
        sent: record.bytes_sent,
        received: record.bytes_received,
        source: usize::MAX,
    })
}

/// Checks every record and refuses two of one natural key.
pub(crate) fn check_records(
    records: &[UsageRecord],
    zone: &ZoneId,
    window: CollectionWindow,
) -> Result<Vec<RecordColumns>, StoreError> {
    let mut seen = HashSet::with_capacity(records.len());
    let mut columns = Vec::with_capacity(records.len());
    for (source, record) in records.iter().enumerate() {
        let mut checked = check_record(record, zone, window)?;
        checked.source = source;
        if !seen.insert(checked.id.clone()) {
            // The id is the hash of the natural key: the same record twice.
            continue;
        }
        columns.push(checked);
    }
    Ok(columns)
}

/// Checks anomalies and drops repeats of one `(kind, event_id)`, the key
/// under which a window stores them; the first wins.
pub(crate) fn check_anomalies(anomalies: &[AnomalyRow]) -> Result<Vec<&AnomalyRow>, StoreError> {
    let mut seen = HashSet::new();
    let mut kept = Vec::with_capacity(anomalies.len());
    for anomaly in anomalies {
        check_kind("anomaly kind", &anomaly.kind)?;
        if seen.insert((anomaly.kind.as_str(), anomaly.event_id)) {
            kept.push(anomaly);
        }
    }
    Ok(kept)
}

/// Checks a name of a setting or an anomaly kind.
pub(crate) fn check_kind(what: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.is_empty() {
        "empty"
    } else if value.chars().count() > MAX_KIND {
        "longer than 64 characters"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidValue {
        what,
        value: value.to_owned(),
        reason,
    })
}

/// Checks settings: names non-empty, at most 64 characters, each once.
pub(crate) fn check_settings(settings: &[(String, String)]) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for (name, _) in settings {
        check_kind("setting name", name)?;
        if !seen.insert(name.as_str()) {
            return Err(StoreError::InvalidValue {
                what: "setting name",
                value: name.clone(),
                reason: "given twice",
            });
        }
    }
    Ok(())
}

/// Sums bytes per account: `(sent, received)` as `u128`, which cannot
/// overflow for fewer than 2^64 records.
pub(crate) fn account_totals(records: &[RecordColumns]) -> BTreeMap<String, (u128, u128)> {
    let mut totals: BTreeMap<String, (u128, u128)> = BTreeMap::new();
    for record in records {
        let entry = totals.entry(record.account.clone()).or_default();
        entry.0 += u128::from(record.sent);
        entry.1 += u128::from(record.received);
    }
    totals
}

/// The stored records of the zone inside `[start, end)`, with their ids and
/// bytes.
pub(crate) async fn stored_records(
    conn: &mut AnyConnection,
    dialect: Dialect,
    zone: &str,
    start: i64,
    end: i64,
) -> Result<Vec<RecordColumns>, StoreError> {
    let sql = dialect.sql(
        "SELECT id, account, ip, ip_key, start_at, end_at, sent_hi, sent_lo, received_hi, received_lo
         FROM usage_records WHERE zone = ? AND start_at >= ? AND start_at < ?",
    );
    let rows = sqlx::query(&sql)
        .bind(zone)
        .bind(start)
        .bind(end)
        .fetch_all(&mut *conn)
        .await
        .doing("reading the window's records")?;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = get(&row, "usage_records", zone, "id", 0)?;
        let narrow = |index, column| -> Result<u64, StoreError> {
            let value = wide(&row, "usage_records", &id, column, index)?;
            u64::try_from(value).map_err(|_| StoreError::Corrupt {
                table: "usage_records",
                key: id.clone(),
                column,
                reason: format!("{value} does not fit in 64 bits"),
            })
        };
        records.push(RecordColumns {
            zone: zone.to_owned(),
            account: get(&row, "usage_records", &id, "account", 1)?,
            ip: get(&row, "usage_records", &id, "ip", 2)?,
            ip_key: get(&row, "usage_records", &id, "ip_key", 3)?,
            start: get(&row, "usage_records", &id, "start_at", 4)?,
            end: get(&row, "usage_records", &id, "end_at", 5)?,
            sent: narrow(6, "sent")?,
            received: narrow(8, "received")?,
            source: usize::MAX,
            id,
        });
    }
    Ok(records)
}

/// Refuses a new record whose natural key a stored record of another id
/// holds; returns the ids of stored records the new ones replace.
pub(crate) fn replaced_ids(
    stored: &[RecordColumns],
    new: &[RecordColumns],
    records: &[UsageRecord],
) -> Result<Vec<String>, StoreError> {
    let by_key: HashMap<NaturalKey, &str> =
        stored.iter().map(|r| (r.key(), r.id.as_str())).collect();
    let mut replaced = Vec::new();
    for record in new {
        match by_key.get(&record.key()) {
            Some(&id) if id == record.id => replaced.push(record.id.clone()),
            Some(&id) => {
                if let Some(original) = records.get(record.source) {
                    return Err(StoreError::RecordKeyTaken {
                        record: Box::new(original.clone()),
                        stored_id: id.to_owned(),
                    });
                }
            }
            None => {}
        }
    }
    Ok(replaced)
}

/// Deletes records by id.
pub(crate) async fn delete_records(
    conn: &mut AnyConnection,
    dialect: Dialect,
    ids: &[String],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(BATCH) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("DELETE FROM usage_records WHERE id IN ({marks})");
        let sql = dialect.sql(&sql);
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        query
            .execute(&mut *conn)
            .await
            .doing("replacing usage records")?;
    }
    Ok(())
}

/// Inserts records, [`BATCH`] rows per statement.
pub(crate) async fn insert_records(
    conn: &mut AnyConnection,
    dialect: Dialect,
    records: &[RecordColumns],
) -> Result<(), StoreError> {
    let mut full_batch_sql = None;
    for chunk in records.chunks(BATCH) {
        let build = |rows: usize| {
            let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
            let values = vec![row; rows].join(", ");
            dialect
                .sql(&format!(
                    "INSERT INTO usage_records
                         (id, zone, account, ip, ip_key, start_at, end_at,
                          sent_hi, sent_lo, received_hi, received_lo)
                     VALUES {values}"
                ))
                .into_owned()
        };
        let sql = if chunk.len() == BATCH {
            full_batch_sql.get_or_insert_with(|| build(BATCH)).clone()
        } else {
            build(chunk.len())
        };
        let mut query = sqlx::query(&sql);
        for record in chunk {
            let (sent_hi, sent_lo) = split(record.sent);
            let (received_hi, received_lo) = split(record.received);
            query = query
                .bind(record.id.as_str())
                .bind(record.zone.as_str())
                .bind(record.account.as_str())
                .bind(record.ip.as_str())
                .bind(record.ip_key.as_str())
                .bind(record.start)
                .bind(record.end)
                .bind(sent_hi)
                .bind(sent_lo)
                .bind(received_hi)
                .bind(received_lo);
        }
        query
            .execute(&mut *conn)
            .await
            .doing("storing usage records")?;
    }
    Ok(())
}

/// Inserts anomalies of the window `[start, end)`, skipping any whose key
/// `(kind, event_id)` the window already holds.
pub(crate) async fn insert_anomalies(
    conn: &mut AnyConnection,
    dialect: Dialect,
    zone: &str,
    (start, end): (i64, i64),
    anomalies: &[&AnomalyRow],
) -> Result<(), StoreError> {
    if anomalies.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO anomalies
             (zone, window_start, window_end, kind, event_hi, event_lo,
              other_event_hi, other_event_lo, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?){}",
        dialect.on_conflict_do_nothing("zone, window_start, kind, event_hi, event_lo", "zone")
    );
    let sql = dialect.sql(&sql);
    for anomaly in anomalies {
        let (event_hi, event_lo) = split(anomaly.event_id);
        let other = anomaly.other_event_id.map(split);
        sqlx::query(&sql)
            .bind(zone)
            .bind(start)
            .bind(end)
            .bind(anomaly.kind.as_str())
            .bind(event_hi)
            .bind(event_lo)
            .bind(other.map(|(hi, _)| hi))
            .bind(other.map(|(_, lo)| lo))
            .bind(anomaly.detail.as_str())
            .execute(&mut *conn)
            .await
            .doing("storing anomalies")?;
    }
    Ok(())
}

/// Whether the window starting at `start` already holds an anomaly with
/// the key `(kind, event_id)` of `anomaly`. (Asked, not told by the insert:
/// MySQL counts a duplicate key left as it was as a row affected.)
pub(crate) async fn anomaly_stored(
    conn: &mut AnyConnection,
    dialect: Dialect,
    zone: &str,
    start: i64,
    anomaly: &AnomalyRow,
) -> Result<bool, StoreError> {
    let (event_hi, event_lo) = split(anomaly.event_id);
    let sql = dialect.sql(
        "SELECT COUNT(*) FROM anomalies
         WHERE zone = ? AND window_start = ? AND kind = ? AND event_hi = ? AND event_lo = ?",
    );
    let count: i64 = sqlx::query_scalar(&sql)
        .bind(zone)
        .bind(start)
        .bind(anomaly.kind.as_str())
        .bind(event_hi)
        .bind(event_lo)
        .fetch_one(&mut *conn)
        .await
        .doing("looking for a stored anomaly")?;
    Ok(count > 0)
}

/// Replaces the zone's settings.
pub(crate) async fn store_settings(
    conn: &mut AnyConnection,
    dialect: Dialect,
    zone: &str,
    settings: &[(String, String)],
) -> Result<(), StoreError> {
    sqlx::query(&dialect.sql("DELETE FROM zone_settings WHERE zone = ?"))
        .bind(zone)
        .execute(&mut *conn)
        .await
        .doing("storing the zone's settings")?;
    let sql = dialect.sql("INSERT INTO zone_settings (zone, name, value) VALUES (?, ?, ?)");
    for (name, value) in settings {
        sqlx::query(&sql)
            .bind(zone)
            .bind(name.as_str())
            .bind(value.as_str())
            .execute(&mut *conn)
            .await
            .doing("storing the zone's settings")?;
    }
    Ok(())
}

/// The totals of a window row: per direction, over all its records.
pub(crate) struct WindowTotals {
    pub(crate) sent: u128,
    pub(crate) received: u128,
}

impl WindowTotals {
    pub(crate) fn of(totals: &BTreeMap<String, (u128, u128)>) -> WindowTotals {
        WindowTotals {
            sent: totals.values().map(|t| t.0).sum(),
            received: totals.values().map(|t| t.1).sum(),
        }
    }
}

/// Account names in the order of `AccountId`, for adjustments and posting.
pub(crate) fn account_id(name: &str) -> Result<AccountId, StoreError> {
    AccountId::new(name).map_err(|e| StoreError::Corrupt {
        table: "usage_records",
        key: name.to_owned(),
        column: "account",
        reason: e.to_string(),
    })
}

/// `at` as seconds for a time column that is not a billing boundary (the
/// time of a collection or restatement): its fraction of a second dropped.
pub(crate) fn timestamp(what: &'static str, at: OffsetDateTime) -> Result<i64, StoreError> {
    let whole = at.replace_nanosecond(0).unwrap_or(at);
    to_seconds(what, whole)
}
