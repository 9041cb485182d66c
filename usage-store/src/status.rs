//! The `status` of a store (DESIGN §9): one row per zone.

use time::OffsetDateTime;
use usage_model::ZoneId;

use crate::rows::next_row;
use crate::store::{corrupt_time, get};
use crate::{Store, StoreError};

/// One zone of [`Store::status`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZoneStatus {
    /// The zone.
    pub zone: ZoneId,
    /// Its checkpoint: the end of its last window.
    pub checkpoint: OffsetDateTime,
    /// Windows committed.
    pub windows: u64,
    /// Usage records stored.
    pub records: u64,
    /// Anomalies stored.
    pub anomalies: u64,
    /// When its latest window was collected (or restated).
    pub last_collected_at: Option<OffsetDateTime>,
}

impl Store {
    /// One row per zone with a checkpoint, ordered by zone.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; [`StoreError::Corrupt`].
    pub async fn status(&self) -> Result<Vec<ZoneStatus>, StoreError> {
        let sql = "SELECT z.zone, z.checkpoint_at,
                (SELECT COUNT(*) FROM windows w WHERE w.zone = z.zone),
                (SELECT COUNT(*) FROM usage_records r WHERE r.zone = z.zone),
                (SELECT COUNT(*) FROM anomalies a WHERE a.zone = z.zone),
                (SELECT MAX(w.collected_at) FROM windows w WHERE w.zone = z.zone)
             FROM zones z WHERE z.checkpoint_at IS NOT NULL ORDER BY z.zone";
        let mut rows = sqlx::query(sql).fetch(&self.pool);
        let mut zones = Vec::new();
        while let Some(row) = next_row(&mut rows, "reading the status").await? {
            let zone: String = get(&row, "zones", "?", "zone", 0)?;
            let key = zone.as_str();
            let count = |index: usize, column: &'static str| -> Result<u64, StoreError> {
                let n: i64 = get(&row, "zones", key, column, index)?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt {
                    table: "zones",
                    key: key.to_owned(),
                    column,
                    reason: format!("negative count {n}"),
                })
            };
            let checkpoint: i64 = get(&row, "zones", key, "checkpoint_at", 1)?;
            let last: Option<i64> = get(&row, "zones", key, "collected_at", 5)?;
            zones.push(ZoneStatus {
                checkpoint: corrupt_time("zones", key, "checkpoint_at", checkpoint)?,
                windows: count(2, "windows")?,
                records: count(3, "records")?,
                anomalies: count(4, "anomalies")?,
                last_collected_at: last
                    .map(|at| corrupt_time("windows", key, "collected_at", at))
                    .transpose()?,
                zone: ZoneId::new(zone.clone()).map_err(|e| StoreError::Corrupt {
                    table: "zones",
                    key: zone.clone(),
                    column: "zone",
                    reason: e.to_string(),
                })?,
            });
        }
        Ok(zones)
    }
}
