//! Migrating a SQLite file of schema version 1 (the first release's store)
//! in place, inside the read-write open's `BEGIN IMMEDIATE` transaction.
//!
//! Version 1 kept times as RFC 3339 text and bytes and event ids as signed
//! integers, in tables `usage_records`, `checkpoints`, `anomalies` and
//! `windows` (`PRAGMA user_version = 1`). Its tables are renamed `v1_*`, the
//! current schema is created, every row is converted (record ids recomputed
//! from the natural key with the current id function), and the `v1_*`
//! tables are dropped. Windows and zones of version 1 have no ownership or
//! event-log digest (stored as NULL) and no settings. Any row that does not
//! convert fails the migration, which then leaves the file as it was.

use std::net::IpAddr;

use sqlx::AnyConnection;
use sqlx::Executor as _;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use usage_model::{AccountId, UsageRecord, ZoneId};

use crate::StoreError;
use crate::codec::{ip_key, split, split_wide, to_seconds};
use crate::dialect::Dialect;
use crate::error::Doing as _;
use crate::store::get;
use crate::window_rows::{RecordColumns, insert_records};

/// Records converted per page.
const PAGE: i64 = 2_000;

/// Migrates the version-1 tables of the connection's file.
pub(crate) async fn migrate(conn: &mut AnyConnection, dialect: Dialect) -> Result<(), StoreError> {
    for statement in [
        "DROP INDEX IF EXISTS usage_records_by_zone_account",
        "ALTER TABLE usage_records RENAME TO v1_usage_records",
        "ALTER TABLE checkpoints RENAME TO v1_checkpoints",
        "ALTER TABLE anomalies RENAME TO v1_anomalies",
        "ALTER TABLE windows RENAME TO v1_windows",
    ] {
        conn.execute(statement)
            .await
            .doing("migrating schema version 1")?;
    }
    crate::open::create(conn, dialect, "").await?;

    let checkpoints = sqlx::query("SELECT zone, at FROM v1_checkpoints ORDER BY zone")
        .fetch_all(&mut *conn)
        .await
        .doing("migrating checkpoints")?;
    for row in checkpoints {
        let zone: String = get(&row, "checkpoints", "?", "zone", 0)?;
        let at = seconds(&row, "checkpoints", &zone, "at", 1)?;
        sqlx::query(
            "INSERT INTO zones (zone, checkpoint_at, event_log_digest) VALUES (?, ?, NULL)",
        )
        .bind(&zone)
        .bind(at)
        .execute(&mut *conn)
        .await
        .doing("migrating checkpoints")?;
    }

    let windows = sqlx::query(
        "SELECT zone, start, end, ips, requests, bytes_sent, bytes_received, records, anomalies,
                collected_at
         FROM v1_windows ORDER BY zone, start",
    )
    .fetch_all(&mut *conn)
    .await
    .doing("migrating windows")?;
    for row in windows {
        let zone: String = get(&row, "windows", "?", "zone", 0)?;
        let key = zone.as_str();
        let start = seconds(&row, "windows", key, "start", 1)?;
        let sent = split_wide(
            "window bytes_sent",
            u128::from(unsigned(&row, "windows", key, "bytes_sent", 5)?),
        )?;
        let received = split_wide(
            "window bytes_received",
            u128::from(unsigned(&row, "windows", key, "bytes_received", 6)?),
        )?;
        sqlx::query(
            "INSERT INTO windows
                 (zone, start_at, end_at, ownership_digest, ips, requests, records, anomalies,
                  sent_hi, sent_lo, received_hi, received_lo, collected_at, restatements)
             VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        )
        .bind(key)
        .bind(start)
        .bind(seconds(&row, "windows", key, "end", 2)?)
        .bind(get::<i64>(&row, "windows", key, "ips", 3)?)
        .bind(get::<i64>(&row, "windows", key, "requests", 4)?)
        .bind(get::<i64>(&row, "windows", key, "records", 7)?)
        .bind(get::<i64>(&row, "windows", key, "anomalies", 8)?)
        .bind(sent.0)
        .bind(sent.1)
        .bind(received.0)
        .bind(received.1)
        .bind(whole_seconds(&row, "windows", key, "collected_at", 9)?)
        .execute(&mut *conn)
        .await
        .doing("migrating windows")?;
    }

    let anomalies = sqlx::query(
        "SELECT zone, window_start, window_end, kind, event_id, other_event_id, detail
         FROM v1_anomalies ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .doing("migrating anomalies")?;
    for row in anomalies {
        let zone: String = get(&row, "anomalies", "?", "zone", 0)?;
        let key = zone.as_str();
        let (event_hi, event_lo) = split(unsigned(&row, "anomalies", key, "event_id", 4)?);
        let other: Option<i64> = get(&row, "anomalies", key, "other_event_id", 5)?;
        let other = other
            .map(|id| {
                u64::try_from(id)
                    .map(split)
                    .map_err(|_| StoreError::Corrupt {
                        table: "anomalies",
                        key: key.to_owned(),
                        column: "other_event_id",
                        reason: format!("negative event id {id}"),
                    })
            })
            .transpose()?;
        sqlx::query(
            "INSERT INTO anomalies
                 (zone, window_start, window_end, kind, event_hi, event_lo,
                  other_event_hi, other_event_lo, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (zone, window_start, kind, event_hi, event_lo) DO NOTHING",
        )
        .bind(key)
        .bind(seconds(&row, "anomalies", key, "window_start", 1)?)
        .bind(seconds(&row, "anomalies", key, "window_end", 2)?)
        .bind(get::<String>(&row, "anomalies", key, "kind", 3)?)
        .bind(event_hi)
        .bind(event_lo)
        .bind(other.map(|(hi, _)| hi))
        .bind(other.map(|(_, lo)| lo))
        .bind(get::<String>(&row, "anomalies", key, "detail", 6)?)
        .execute(&mut *conn)
        .await
        .doing("migrating anomalies")?;
    }

    let mut after: i64 = i64::MIN;
    loop {
        let rows = sqlx::query(
            "SELECT rowid, id, zone, account, ip, start, end, bytes_sent, bytes_received
             FROM v1_usage_records WHERE rowid > ? ORDER BY rowid LIMIT ?",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await
        .doing("migrating usage records")?;
        let Some(last) = rows.last() else { break };
        after = get(last, "usage_records", "?", "rowid", 0)?;
        let records = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        insert_records(conn, dialect, &records).await?;
    }

    for table in [
        "v1_usage_records",
        "v1_checkpoints",
        "v1_anomalies",
        "v1_windows",
    ] {
        conn.execute(format!("DROP TABLE {table}").as_str())
            .await
            .doing("migrating schema version 1")?;
    }
    Ok(())
}

/// A version-1 record, its id recomputed.
fn record(row: &AnyRow) -> Result<RecordColumns, StoreError> {
    let old_id: String = get(row, "usage_records", "?", "id", 1)?;
    let key = old_id.as_str();
    let corrupt = |column: &'static str, reason: String| StoreError::Corrupt {
        table: "usage_records",
        key: key.to_owned(),
        column,
        reason,
    };
    let zone = ZoneId::new(get::<String>(row, "usage_records", key, "zone", 2)?)
        .map_err(|e| corrupt("zone", e.to_string()))?;
    let account = AccountId::new(get::<String>(row, "usage_records", key, "account", 3)?)
        .map_err(|e| corrupt("account", e.to_string()))?;
    let ip_text: String = get(row, "usage_records", key, "ip", 4)?;
    let ip: IpAddr = ip_text
        .parse()
        .map_err(|_| corrupt("ip", format!("{ip_text:?} is not an IP address")))?;
    let start = time(row, "usage_records", key, "start", 5)?;
    let end = time(row, "usage_records", key, "end", 6)?;
    let sent = unsigned(row, "usage_records", key, "bytes_sent", 7)?;
    let received = unsigned(row, "usage_records", key, "bytes_received", 8)?;
    let record = UsageRecord::new(
        zone,
        account,
        ip,
        start,
        end,
        usage_model::ByteCounts { sent, received },
    );
    Ok(RecordColumns {
        id: record.id.to_string(),
        zone: record.zone.to_string(),
        account: record.account.to_string(),
        ip: record.ip.to_string(),
        ip_key: ip_key(record.ip),
        start: to_seconds("record start", start)?,
        end: to_seconds("record end", end)?,
        sent,
        received,
        source: usize::MAX,
    })
}

fn time(
    row: &AnyRow,
    table: &'static str,
    key: &str,
    column: &'static str,
    index: usize,
) -> Result<OffsetDateTime, StoreError> {
    let text: String = get(row, table, key, column, index)?;
    OffsetDateTime::parse(&text, &Rfc3339).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        column,
        reason: format!("{text:?} is not an RFC 3339 time ({e})"),
    })
}

/// A boundary time as whole seconds (a fraction is an error: boundaries lie
/// on the grid).
fn seconds(
    row: &AnyRow,
    table: &'static str,
    key: &str,
    column: &'static str,
    index: usize,
) -> Result<i64, StoreError> {
    to_seconds(column, time(row, table, key, column, index)?)
}

/// A collection time as seconds, its fraction dropped.
fn whole_seconds(
    row: &AnyRow,
    table: &'static str,
    key: &str,
    column: &'static str,
    index: usize,
) -> Result<i64, StoreError> {
    let at = time(row, table, key, column, index)?;
    to_seconds(column, at.replace_nanosecond(0).unwrap_or(at))
}

fn unsigned(
    row: &AnyRow,
    table: &'static str,
    key: &str,
    column: &'static str,
    index: usize,
) -> Result<u64, StoreError> {
    let value: i64 = get(row, table, key, column, index)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        column,
        reason: format!("negative value {value}"),
    })
}
