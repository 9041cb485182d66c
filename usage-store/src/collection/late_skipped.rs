//! Rows of the events source skipped (DESIGN §11: a `resource_name` that is
//! not an address) and found after the windows of their times were billed.

use std::ops::ControlFlow;

use usage_model::CollectionWindow;

use super::{Collection, TrafficSource};
use crate::{SkippedUsageEvent, StoreError};

impl<'a, S: TrafficSource + Sync> Collection<'a, S> {
    /// Stores the zone's skipped rows dated before its checkpoint with the
    /// billed windows of their times (a row dated before the zone's first
    /// window with that window, as a first collection reports it), each
    /// once; returns those that were not stored before. A row inserted
    /// into CloudStack's table after its window was billed is so reported
    /// (DESIGN §4: never silently absorbed), and a rerun reports nothing
    /// again.
    ///
    /// # Errors
    ///
    /// Store errors, as [`crate::Store::record_late_skipped_rows`].
    pub async fn check_late_skipped_rows(&self) -> Result<Vec<&'a SkippedUsageEvent>, StoreError> {
        let Some(checkpoint) = self.store.checkpoint(self.zone).await? else {
            return Ok(Vec::new());
        };
        let zone = self.zone;
        let late: Vec<&'a SkippedUsageEvent> = self
            .skipped
            .iter()
            .filter(|row| row.zone == *zone && row.at < checkpoint)
            .collect();
        if late.is_empty() {
            return Ok(Vec::new());
        }
        let mut billed: Vec<CollectionWindow> = Vec::new();
        self.store
            .billed_windows(zone, |window| {
                billed.push(window.window);
                ControlFlow::Continue(())
            })
            .await?;
        // The billed window holding each row's time (by start order).
        let placed: Vec<(&'a SkippedUsageEvent, CollectionWindow)> = late
            .into_iter()
            .filter_map(|row| {
                let index = billed.partition_point(|window| window.end() <= row.at);
                let window = billed
                    .get(index)
                    .filter(|window| window.contains(row.at) || index == 0)?;
                Some((row, *window))
            })
            .collect();
        let rows: Vec<_> = placed
            .iter()
            .map(|(row, window)| (*window, row.anomaly_row()))
            .collect();
        let new = self
            .store
            .record_late_skipped_rows(zone, checkpoint, &rows)
            .await?;
        Ok(placed
            .into_iter()
            .zip(new)
            .filter_map(|((row, _), new)| new.then_some(row))
            .collect())
    }
}
