//! Late events (DESIGN §4): anomalies naming billed windows whose ownership
//! an event arriving after them changed, stored with the zone's new
//! event-log digest.

use sqlx::AnyConnection;
use time::OffsetDateTime;
use usage_model::{CollectionWindow, ZoneId};

use crate::codec::digest_to_hex;
use crate::error::Doing as _;
use crate::store::lock_zone;
use crate::window_rows::{anomaly_stored, check_window, insert_anomalies};
use crate::{AnomalyRow, Store, StoreError};

/// The kind of the anomalies stored by [`Store::record_late_event_anomalies`].
pub const LATE_EVENT: &str = "late-event";

/// One billed window whose ownership a late event changed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LateEventAnomaly {
    /// The billed window, exactly as committed.
    pub window: CollectionWindow,
    /// An event that changed its ownership.
    pub event_id: u64,
    /// A human-readable account of the change.
    pub detail: String,
}

/// What a late-event check found for one zone, stored by
/// [`Store::record_late_event_anomalies`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateEvents {
    /// The zone.
    pub zone: ZoneId,
    /// The zone's checkpoint the check was made against; it must still be
    /// the stored one.
    pub checkpoint: OffsetDateTime,
    /// The digest of the zone's event log before `checkpoint`, now.
    pub event_log_digest: [u8; 32],
    /// The windows whose ownership changed (possibly none).
    pub anomalies: Vec<LateEventAnomaly>,
}

impl Store {
    /// Stores a `late-event` anomaly for each window of `late.anomalies`
    /// (kind [`LATE_EVENT`], keyed by window and event, so a rerun stores
    /// nothing twice) and the zone's new event-log digest, in one
    /// transaction. The windows are not rebilled: a restatement does that,
    /// and resolves (deletes) these anomalies.
    ///
    /// # Errors
    ///
    /// [`StoreError::ReadOnly`]; [`StoreError::CheckpointMoved`] when the
    /// zone's checkpoint is no longer `late.checkpoint`;
    /// [`StoreError::WindowNotBilled`] for a window that was never committed;
    /// [`StoreError::Database`].
    pub async fn record_late_event_anomalies(&self, late: &LateEvents) -> Result<(), StoreError> {
        self.writable()?;
        let zone = &late.zone;
        let mut windows = Vec::with_capacity(late.anomalies.len());
        for anomaly in &late.anomalies {
            let bounds = check_window(zone, anomaly.window)?;
            let row = AnomalyRow {
                kind: LATE_EVENT.to_owned(),
                event_id: anomaly.event_id,
                other_event_id: None,
                detail: anomaly.detail.clone(),
            };
            windows.push((anomaly.window, bounds, row));
        }
        let digest = digest_to_hex(&late.event_log_digest);
        let (windows, digest) = (&windows, &digest);
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let conn: &mut AnyConnection = &mut tx;
            self.lock_at_checkpoint(conn, zone, late.checkpoint).await?;
            for (window, bounds, row) in windows {
                self.check_billed(conn, zone, *window, *bounds).await?;
                insert_anomalies(conn, self.dialect, zone.as_str(), *bounds, &[row]).await?;
            }
            let update = self
                .dialect
                .sql("UPDATE zones SET event_log_digest = ? WHERE zone = ?");
            sqlx::query(&update)
                .bind(digest.as_str())
                .bind(zone.as_str())
                .execute(&mut *conn)
                .await
                .doing("storing the event log digest")?;
            tx.commit().await.doing("committing late-event anomalies")
        })
        .await
    }

    /// Stores, with the billed windows their times fall in, the rows of the
    /// events source that were skipped (DESIGN §11: a `resource_name` that
    /// is not an address) and found after their windows were billed: each
    /// `(window, anomaly)` once (a rerun stores nothing twice), in one
    /// transaction. Returns, for each row, whether it was new.
    ///
    /// # Errors
    ///
    /// [`StoreError::ReadOnly`]; [`StoreError::CheckpointMoved`] when the
    /// zone's checkpoint is no longer `checkpoint`;
    /// [`StoreError::WindowNotBilled`] for a window that was never
    /// committed; [`StoreError::Database`].
    pub async fn record_late_skipped_rows(
        &self,
        zone: &ZoneId,
        checkpoint: OffsetDateTime,
        rows: &[(CollectionWindow, AnomalyRow)],
    ) -> Result<Vec<bool>, StoreError> {
        self.writable()?;
        let mut bounded = Vec::with_capacity(rows.len());
        for (window, row) in rows {
            bounded.push((*window, check_window(zone, *window)?, row));
        }
        let bounded = &bounded;
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let conn: &mut AnyConnection = &mut tx;
            self.lock_at_checkpoint(conn, zone, checkpoint).await?;
            let mut new = Vec::with_capacity(bounded.len());
            for (window, bounds, row) in bounded {
                self.check_billed(conn, zone, *window, *bounds).await?;
                let stored =
                    anomaly_stored(conn, self.dialect, zone.as_str(), bounds.0, row).await?;
                if !stored {
                    insert_anomalies(conn, self.dialect, zone.as_str(), *bounds, &[*row]).await?;
                }
                new.push(!stored);
            }
            tx.commit()
                .await
                .doing("committing skipped rows found late")?;
            Ok(new)
        })
        .await
    }

    /// Locks the zone's row, refusing when its checkpoint is not
    /// `checkpoint` (another collector moved it).
    async fn lock_at_checkpoint(
        &self,
        conn: &mut AnyConnection,
        zone: &ZoneId,
        checkpoint: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let found = lock_zone(conn, self.dialect, zone, false).await?.flatten();
        if found != Some(checkpoint) {
            return Err(StoreError::CheckpointMoved {
                zone: zone.clone(),
                expected: Some(checkpoint),
                found,
            });
        }
        Ok(())
    }

    /// Refuses `window` (stored as `bounds`) unless it was committed.
    async fn check_billed(
        &self,
        conn: &mut AnyConnection,
        zone: &ZoneId,
        window: CollectionWindow,
        bounds: (i64, i64),
    ) -> Result<(), StoreError> {
        let select = self
            .dialect
            .sql("SELECT end_at FROM windows WHERE zone = ? AND start_at = ?");
        let end: Option<i64> = sqlx::query_scalar(&select)
            .bind(zone.as_str())
            .bind(bounds.0)
            .fetch_optional(&mut *conn)
            .await
            .doing("reading the window")?;
        if end != Some(bounds.1) {
            return Err(StoreError::WindowNotBilled {
                zone: zone.clone(),
                window,
            });
        }
        Ok(())
    }
}
