//! The addresses whose billed holdings the current event log no longer
//! gives, as a window's stored records show them.

use std::net::IpAddr;
use std::ops::ControlFlow;

use usage_model::CollectionWindow;

use super::{Collection, TrafficSource};
use crate::{ReportFilter, StoreError};

impl<S: TrafficSource + Sync> Collection<'_, S> {
    /// The addresses of `window`'s stored records that the current log no
    /// longer gives to the record's account at any time of the record:
    /// addresses a late event changed, as far as records show (an address
    /// that carried no traffic has no record). Sorted, without repeats.
    ///
    /// # Errors
    ///
    /// As [`crate::Store::report_by_ip`].
    pub(super) async fn changed_addresses(
        &self,
        window: CollectionWindow,
    ) -> Result<Vec<IpAddr>, StoreError> {
        let filter = ReportFilter::new()
            .zone(self.zone.clone())
            .from(window.start())
            .until(window.end());
        let held = self.ledger.ownerships(self.zone, window.interval());
        let mut changed = Vec::new();
        self.store
            .report_by_ip(&filter, |record| {
                let still_held = held.iter().any(|holding| {
                    holding.ip == record.ip
                        && holding.account == record.account
                        && holding.interval.start() < record.end
                        && record.start < holding.interval.end()
                });
                if !still_held {
                    changed.push(record.ip);
                }
                ControlFlow::Continue(())
            })
            .await?;
        changed.sort_unstable();
        changed.dedup();
        Ok(changed)
    }
}
