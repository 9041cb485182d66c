//! Committing one collection window: records, anomalies, the window's row
//! and the zone's new checkpoint, in one transaction that first checks the
//! checkpoint is the one the window was planned from.

use sqlx::AnyConnection;
use time::OffsetDateTime;
use usage_model::{CollectionWindow, Grid, UsageRecord, ZoneId};

use crate::cloudstack::{CloudStackPosting, check_posting, post_usage};
use crate::codec::{count, digest_to_hex, split_wide};
use crate::dialect::Dialect;
use crate::error::Doing as _;
use crate::store::lock_zone;
use crate::window_rows::{
    WindowTotals, account_totals, check_anomalies, check_records, check_settings, check_window,
    delete_records, insert_anomalies, insert_records, replaced_ids, store_settings, stored_records,
    timestamp,
};
use crate::{Store, StoreError};

/// An anomaly of the ownership ledger, stored with the window it was found
/// in (DESIGN §4), e.g. `assign-while-held`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AnomalyRow {
    /// What happened, e.g. `assign-while-held`; 1 to 64 characters. A window
    /// keeps one anomaly per `(kind, event_id)`.
    pub kind: String,
    /// The event that raised it.
    pub event_id: u64,
    /// The other event involved (e.g. the earlier assign), if any.
    pub other_event_id: Option<u64>,
    /// A human-readable account of it.
    pub detail: String,
}

/// The numbers of a window's collection that are not in its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WindowStats {
    /// Distinct addresses queried.
    pub ips: u64,
    /// HTTP requests sent to Traffic Sentinel.
    pub requests: u64,
}

/// Everything one collection window stores, committed at once by
/// [`Store::commit_window`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowCommit {
    /// The zone collected (at most 255 characters).
    pub zone: ZoneId,
    /// The window billed, in whole seconds, not crossing a UTC midnight; the
    /// checkpoint moves to its end.
    pub window: CollectionWindow,
    /// The checkpoint the window was planned from: its start, or `None` for
    /// the zone's first window. It must still be the stored one at commit.
    pub planned_from: Option<OffsetDateTime>,
    /// The usage records, all of `zone` and inside `window`, each with the
    /// id of its natural key. The same record given twice is stored once.
    pub records: Vec<UsageRecord>,
    /// The ledger's anomalies found while planning the window.
    pub anomalies: Vec<AnomalyRow>,
    /// The digest of the holdings the window bills (DESIGN §4, late events).
    pub ownership_digest: [u8; 32],
    /// The grid the window was planned on, kept with it so that a later
    /// check for late events, or a restatement, plans it on the same grid
    /// after an accepted change of granularity.
    pub grid: Grid,
    /// The digest of the zone's event log before the new checkpoint.
    pub event_log_digest: [u8; 32],
    /// Addresses queried and requests sent.
    pub stats: WindowStats,
    /// The settings the zone is billed with (granularity, include/exclude
    /// zones, server time zone, excluded accounts), as `(name, value)`;
    /// they replace the stored ones (DESIGN §12). Names are 1 to 64
    /// characters, each given once.
    pub settings: Vec<(String, String)>,
    /// When the window was collected (stored in whole seconds).
    pub collected_at: OffsetDateTime,
    /// Also add the window's bytes to CloudStack's `user_statistics`, in the
    /// same transaction (DESIGN §11); `mysql://` stores only.
    pub cloudstack: Option<CloudStackPosting>,
}

impl Store {
    /// Stores one window atomically: locks the zone, checks its checkpoint
    /// is `commit.planned_from`, stores the records (upserted by id, so a
    /// replay stores each record once), the anomalies, the window's row
    /// with its ownership digest and totals, the zone's new checkpoint,
    /// event-log digest and settings, and posts to CloudStack when asked —
    /// all in one transaction, or nothing.
    ///
    /// # Errors
    ///
    /// Before any write: [`StoreError::ReadOnly`];
    /// [`StoreError::WindowNotAtCheckpoint`] when the window does not start
    /// at `planned_from`; [`StoreError::WindowCrossesMidnight`];
    /// [`StoreError::InvalidRecord`] for a record of another zone, outside
    /// the window or with an id that is not its natural key's;
    /// [`StoreError::InvalidValue`] for a name too long or a setting given
    /// twice; [`StoreError::UnstorableTime`]; the CloudStack errors of
    /// [`CloudStackPosting`]. In the transaction:
    /// [`StoreError::CheckpointMoved`] when another collector committed
    /// first (the loser stores nothing); [`StoreError::RecordKeyTaken`]
    /// when a stored record of another id holds a record's natural key;
    /// [`StoreError::Database`] when the engine fails.
    pub async fn commit_window(&self, commit: &WindowCommit) -> Result<(), StoreError> {
        self.writable()?;
        let zone = &commit.zone;
        let window = commit.window;
        if let Some(checkpoint) = commit.planned_from
            && checkpoint != window.start()
        {
            return Err(StoreError::WindowNotAtCheckpoint {
                zone: zone.clone(),
                window,
                checkpoint,
            });
        }
        let bounds = check_window(zone, window)?;
        let records = check_records(&commit.records, zone, window)?;
        let anomalies = check_anomalies(&commit.anomalies)?;
        check_settings(&commit.settings)?;
        let totals = account_totals(&records);
        let amounts: Vec<(&str, u128, u128)> = totals
            .iter()
            .map(|(account, (sent, received))| (account.as_str(), *sent, *received))
            .collect();
        if let Some(posting) = &commit.cloudstack {
            check_posting(self, posting, zone, &amounts)?;
        }
        let window_totals = WindowTotals::of(&totals);
        let row = WindowRow {
            bounds,
            ownership_digest: digest_to_hex(&commit.ownership_digest),
            ips: count("window ips", commit.stats.ips)?,
            requests: count("window requests", commit.stats.requests)?,
            records: count("window records", records.len() as u64)?,
            anomalies: count("window anomalies", anomalies.len() as u64)?,
            sent: split_wide("window total bytes_sent", window_totals.sent)?,
            received: split_wide("window total bytes_received", window_totals.received)?,
            collected_at: timestamp("collection time", commit.collected_at)?,
            restatements: 0,
            grid_seconds: grid_seconds(commit.grid)?,
        };
        let event_log_digest = digest_to_hex(&commit.event_log_digest);

        let (records, anomalies, amounts, row, event_log_digest) =
            (&records, &anomalies, &amounts, &row, &event_log_digest);
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let conn: &mut AnyConnection = &mut tx;
            let found = lock_zone(conn, self.dialect, zone, true).await?.flatten();
            if found != commit.planned_from {
                return Err(StoreError::CheckpointMoved {
                    zone: zone.clone(),
                    expected: commit.planned_from,
                    found,
                });
            }
            let stored =
                stored_records(conn, self.dialect, zone.as_str(), bounds.0, bounds.1).await?;
            let replaced = replaced_ids(&stored, records, &commit.records)?;
            delete_records(conn, self.dialect, &replaced).await?;
            insert_records(conn, self.dialect, records).await?;
            insert_anomalies(conn, self.dialect, zone.as_str(), bounds, anomalies).await?;
            write_window_row(conn, self.dialect, zone.as_str(), row).await?;
            let update = self
                .dialect
                .sql("UPDATE zones SET checkpoint_at = ?, event_log_digest = ? WHERE zone = ?");
            sqlx::query(&update)
                .bind(bounds.1)
                .bind(event_log_digest.as_str())
                .bind(zone.as_str())
                .execute(&mut *conn)
                .await
                .doing("moving the checkpoint")?;
            store_settings(conn, self.dialect, zone.as_str(), &commit.settings).await?;
            if let Some(posting) = &commit.cloudstack {
                post_usage(conn, posting, zone, amounts).await?;
            }
            tx.commit().await.doing("committing the window")
        })
        .await
    }
}

/// The columns of a `windows` row.
#[derive(Clone)]
pub(crate) struct WindowRow {
    pub(crate) bounds: (i64, i64),
    pub(crate) ownership_digest: String,
    pub(crate) ips: i64,
    pub(crate) requests: i64,
    pub(crate) records: i64,
    pub(crate) anomalies: i64,
    pub(crate) sent: (i64, i64),
    pub(crate) received: (i64, i64),
    pub(crate) collected_at: i64,
    pub(crate) restatements: i64,
    pub(crate) grid_seconds: i64,
}

/// A grid's step as stored (`windows.grid_seconds`).
pub(crate) fn grid_seconds(grid: Grid) -> Result<i64, StoreError> {
    count("window grid", u64::from(grid.seconds()))
}

/// Writes the window's row, replacing one of the same start.
pub(crate) async fn write_window_row(
    conn: &mut AnyConnection,
    dialect: Dialect,
    zone: &str,
    row: &WindowRow,
) -> Result<(), StoreError> {
    sqlx::query(&dialect.sql("DELETE FROM windows WHERE zone = ? AND start_at = ?"))
        .bind(zone)
        .bind(row.bounds.0)
        .execute(&mut *conn)
        .await
        .doing("logging the window")?;
    let insert = dialect.sql(
        "INSERT INTO windows
             (zone, start_at, end_at, ownership_digest, ips, requests, records, anomalies,
              sent_hi, sent_lo, received_hi, received_lo, collected_at, restatements,
              grid_seconds)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    sqlx::query(&insert)
        .bind(zone)
        .bind(row.bounds.0)
        .bind(row.bounds.1)
        .bind(row.ownership_digest.as_str())
        .bind(row.ips)
        .bind(row.requests)
        .bind(row.records)
        .bind(row.anomalies)
        .bind(row.sent.0)
        .bind(row.sent.1)
        .bind(row.received.0)
        .bind(row.received.1)
        .bind(row.collected_at)
        .bind(row.restatements)
        .bind(row.grid_seconds)
        .execute(&mut *conn)
        .await
        .doing("logging the window")?;
    Ok(())
}
