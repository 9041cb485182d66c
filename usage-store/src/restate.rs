//! Restating a billed window (DESIGN §10): its records, anomalies and
//! ownership digest replaced in one transaction, with one adjustment per
//! account whose totals changed.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::AnyConnection;
use sqlx::Row as _;
use time::OffsetDateTime;
use usage_model::{AccountId, CollectionWindow, Grid, UsageRecord, ZoneId};

use crate::cloudstack::{CloudStackPosting, check_posting, post_usage};
use crate::codec::{count, digest_to_hex, split_signed, split_wide};
use crate::commit::{WindowRow, grid_seconds, write_window_row};
use crate::error::Doing as _;
use crate::late_event::LATE_EVENT;
use crate::store::{get, get_text, lock_zone};
use crate::window_rows::{
    WindowTotals, account_id, account_totals, check_anomalies, check_records, check_settings,
    check_window, insert_anomalies, insert_records, store_settings, stored_records, timestamp,
};
use crate::{AnomalyRow, Store, StoreError, WindowStats};

/// A recollection of a billed window, stored by [`Store::restate_window`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestateCommit {
    /// The zone.
    pub zone: ZoneId,
    /// The window, exactly as committed, ending at or before the zone's
    /// checkpoint.
    pub window: CollectionWindow,
    /// The window's records as collected now; they replace the stored ones.
    pub records: Vec<UsageRecord>,
    /// The window's anomalies as found now; they replace the stored ones,
    /// `late-event` anomalies included (the restatement resolves them).
    pub anomalies: Vec<AnomalyRow>,
    /// The digest of the holdings the window bills now.
    pub ownership_digest: [u8; 32],
    /// The grid the window was planned on now (the current one, as a first
    /// collection would use); stored with the window
    /// ([`BilledWindow::grid`](crate::BilledWindow::grid)).
    pub grid: Grid,
    /// Addresses queried and requests sent.
    pub stats: WindowStats,
    /// When the restatement was made: the adjustments' `restated_at`, and
    /// the window's new collection time (stored in whole seconds).
    pub restated_at: OffsetDateTime,
    /// Also add the increases to CloudStack's `user_statistics` (DESIGN
    /// §11); decreases stay adjustments for the operator, as CloudStack's
    /// usage server drops negative amounts.
    pub cloudstack: Option<CloudStackPosting>,
    /// The settings the zone is billed with now (granularity, include and
    /// exclude zones, server time zone, excluded accounts): when the window
    /// changes, they replace the zone's stored settings, as a window
    /// committed with them would ([`WindowCommit::settings`](crate::WindowCommit::settings)).
    /// Empty: the stored settings are kept.
    pub settings: Vec<(String, String)>,
}

/// What a restatement changed for one account: new total − old total, per
/// direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjustment {
    /// The zone.
    pub zone: ZoneId,
    /// The account.
    pub account: AccountId,
    /// The window restated.
    pub window: CollectionWindow,
    /// Change of bytes sent (signed).
    pub bytes_sent_delta: i128,
    /// Change of bytes received (signed).
    pub bytes_received_delta: i128,
    /// When the restatement was made.
    pub restated_at: OffsetDateTime,
}

/// The result of [`Store::restate_window`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestateOutcome {
    /// The window's records, anomalies and ownership digest were already
    /// what the restatement gives: nothing was stored.
    Unchanged,
    /// The window was replaced; `adjustments` holds one entry per account
    /// whose totals changed (possibly none, when only addresses or
    /// anomalies changed), ordered by account.
    Restated {
        /// The adjustments stored.
        adjustments: Vec<Adjustment>,
    },
}

impl Store {
    /// Replaces a billed window's records, anomalies and ownership digest in
    /// one transaction, storing one adjustment per account whose totals
    /// changed. After it, reports equal what a first collection of the
    /// window would give; the window's `late-event` anomalies are deleted
    /// with its other anomalies, as the restatement resolves them.
    ///
    /// # Errors
    ///
    /// Before any write: [`StoreError::ReadOnly`], and the checks of
    /// [`Store::commit_window`] on the window, records and anomalies. In the
    /// transaction: [`StoreError::WindowNotBeforeCheckpoint`] unless the
    /// window ends at or before the zone's checkpoint;
    /// [`StoreError::WindowNotBilled`] unless a window of exactly this start
    /// and end was committed; [`StoreError::Database`].
    pub async fn restate_window(
        &self,
        restate: &RestateCommit,
    ) -> Result<RestateOutcome, StoreError> {
        self.writable()?;
        let zone = &restate.zone;
        let window = restate.window;
        let bounds = check_window(zone, window)?;
        let records = check_records(&restate.records, zone, window)?;
        let anomalies = check_anomalies(&restate.anomalies)?;
        check_settings(&restate.settings)?;
        let new_totals = account_totals(&records);
        let window_totals = WindowTotals::of(&new_totals);
        let restated_at = timestamp("restatement time", restate.restated_at)?;
        let digest = digest_to_hex(&restate.ownership_digest);
        if let Some(posting) = &restate.cloudstack {
            // Accounts whose totals may grow: every account of the new records.
            let possible: Vec<(&str, u128, u128)> = new_totals
                .iter()
                .map(|(account, (sent, received))| (account.as_str(), *sent, *received))
                .collect();
            check_posting(self, posting, zone, &possible)?;
        }
        let row = WindowRow {
            bounds,
            ownership_digest: digest.clone(),
            ips: count("window ips", restate.stats.ips)?,
            requests: count("window requests", restate.stats.requests)?,
            records: count("window records", records.len() as u64)?,
            anomalies: count("window anomalies", anomalies.len() as u64)?,
            sent: split_wide("window total bytes_sent", window_totals.sent)?,
            received: split_wide("window total bytes_received", window_totals.received)?,
            collected_at: restated_at,
            restatements: 0,
            grid_seconds: grid_seconds(restate.grid)?,
        };
        let (records, anomalies, new_totals, row, digest) =
            (&records, &anomalies, &new_totals, &row, &digest);
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let conn: &mut AnyConnection = &mut tx;
            let checkpoint = lock_zone(conn, self.dialect, zone, false).await?.flatten();
            if checkpoint.is_none_or(|checkpoint| window.end() > checkpoint) {
                return Err(StoreError::WindowNotBeforeCheckpoint {
                    zone: zone.clone(),
                    window,
                    checkpoint,
                });
            }
            let select = format!(
                "SELECT end_at, ownership_digest, restatements FROM windows
                 WHERE zone = ? AND start_at = ?{}",
                self.dialect.for_update()
            );
            let select = self.dialect.sql(&select);
            let stored = sqlx::query(&select)
                .bind(zone.as_str())
                .bind(bounds.0)
                .fetch_optional(&mut *conn)
                .await
                .doing("reading the window")?;
            let Some(stored) = stored else {
                return Err(StoreError::WindowNotBilled {
                    zone: zone.clone(),
                    window,
                });
            };
            let key = zone.as_str();
            let end: i64 = get(&stored, "windows", key, "end_at", 0)?;
            if end != bounds.1 {
                return Err(StoreError::WindowNotBilled {
                    zone: zone.clone(),
                    window,
                });
            }
            let old_digest: Option<String> = get(&stored, "windows", key, "ownership_digest", 1)?;
            let restatements: i64 = get(&stored, "windows", key, "restatements", 2)?;

            let old_records = stored_records(conn, self.dialect, key, bounds.0, bounds.1).await?;
            let old_anomalies = stored_anomalies(conn, self, key, bounds.0).await?;
            let same_records = record_set(&old_records) == record_set(records);
            let new_anomalies: BTreeSet<AnomalyKey> =
                anomalies.iter().map(|a| anomaly_key(a)).collect();
            let same_anomalies = old_anomalies == new_anomalies;
            if same_records && same_anomalies && old_digest.as_deref() == Some(digest.as_str()) {
                tx.rollback().await.doing("ending the restatement")?;
                return Ok(RestateOutcome::Unchanged);
            }

            let delete_records = self
                .dialect
                .sql("DELETE FROM usage_records WHERE zone = ? AND start_at >= ? AND start_at < ?");
            sqlx::query(&delete_records)
                .bind(key)
                .bind(bounds.0)
                .bind(bounds.1)
                .execute(&mut *conn)
                .await
                .doing("replacing the window's records")?;
            let delete_anomalies = self
                .dialect
                .sql("DELETE FROM anomalies WHERE zone = ? AND window_start = ?");
            sqlx::query(&delete_anomalies)
                .bind(key)
                .bind(bounds.0)
                .execute(&mut *conn)
                .await
                .doing("replacing the window's anomalies")?;
            insert_records(conn, self.dialect, records).await?;
            insert_anomalies(conn, self.dialect, key, bounds, anomalies).await?;
            let row = WindowRow {
                restatements: restatements + 1,
                ..row.clone()
            };
            write_window_row(conn, self.dialect, key, &row).await?;
            if !restate.settings.is_empty() {
                store_settings(conn, self.dialect, key, &restate.settings).await?;
            }

            let old_totals = account_totals(&old_records);
            let adjustments =
                adjustments(zone, window, restate.restated_at, &old_totals, new_totals)?;
            store_adjustments(
                conn,
                self,
                bounds,
                row.restatements,
                restated_at,
                &adjustments,
            )
            .await?;
            if let Some(posting) = &restate.cloudstack {
                let increases: Vec<(&str, u128, u128)> = adjustments
                    .iter()
                    .map(|a| {
                        (
                            a.account.as_str(),
                            a.bytes_sent_delta.max(0).unsigned_abs(),
                            a.bytes_received_delta.max(0).unsigned_abs(),
                        )
                    })
                    .collect();
                post_usage(conn, posting, zone, &increases).await?;
            }
            tx.commit().await.doing("committing the restatement")?;
            Ok(RestateOutcome::Restated { adjustments })
        })
        .await
    }
}

/// Records compared by content: natural key and bytes.
fn record_set(
    records: &[crate::window_rows::RecordColumns],
) -> BTreeSet<(String, String, i64, i64, u64, u64)> {
    records
        .iter()
        .map(|r| {
            (
                r.account.clone(),
                r.ip_key.clone(),
                r.start,
                r.end,
                r.sent,
                r.received,
            )
        })
        .collect()
}

/// An anomaly compared by content.
type AnomalyKey = (String, u64, Option<u64>, String);

fn anomaly_key(anomaly: &AnomalyRow) -> AnomalyKey {
    (
        anomaly.kind.clone(),
        anomaly.event_id,
        anomaly.other_event_id,
        anomaly.detail.clone(),
    )
}

/// The window's stored anomalies but its `late-event` ones.
async fn stored_anomalies(
    conn: &mut AnyConnection,
    store: &Store,
    zone: &str,
    start: i64,
) -> Result<BTreeSet<AnomalyKey>, StoreError> {
    let sql = store.dialect.sql(
        "SELECT kind, event_hi, event_lo, other_event_hi, other_event_lo, detail
         FROM anomalies WHERE zone = ? AND window_start = ? AND kind <> ?",
    );
    let rows = sqlx::query(&sql)
        .bind(zone)
        .bind(start)
        .bind(LATE_EVENT)
        .fetch_all(&mut *conn)
        .await
        .doing("reading the window's anomalies")?;
    let mut set = BTreeSet::new();
    for row in rows {
        let event = crate::rows::narrow(&row, "anomalies", zone, "event_id", 1)?;
        let other_hi: Option<i64> = row.try_get(3).ok().flatten();
        let other = match other_hi {
            Some(_) => Some(crate::rows::narrow(
                &row,
                "anomalies",
                zone,
                "other_event_id",
                3,
            )?),
            None => None,
        };
        set.insert((
            get(&row, "anomalies", zone, "kind", 0)?,
            event,
            other,
            get_text(&row, "anomalies", zone, "detail", 5)?,
        ));
    }
    Ok(set)
}

/// New − old per account, for the accounts whose totals changed.
fn adjustments(
    zone: &ZoneId,
    window: CollectionWindow,
    restated_at: OffsetDateTime,
    old: &BTreeMap<String, (u128, u128)>,
    new: &BTreeMap<String, (u128, u128)>,
) -> Result<Vec<Adjustment>, StoreError> {
    let accounts: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut adjustments = Vec::new();
    for account in accounts {
        let (old_sent, old_received) = old.get(account).copied().unwrap_or_default();
        let (new_sent, new_received) = new.get(account).copied().unwrap_or_default();
        if (old_sent, old_received) == (new_sent, new_received) {
            continue;
        }
        // Totals of fewer than 2^64 records of u64 bytes fit in i128.
        let delta = |new: u128, old: u128| {
            i128::try_from(new).unwrap_or(i128::MAX) - i128::try_from(old).unwrap_or(i128::MAX)
        };
        adjustments.push(Adjustment {
            zone: zone.clone(),
            account: account_id(account)?,
            window,
            bytes_sent_delta: delta(new_sent, old_sent),
            bytes_received_delta: delta(new_received, old_received),
            restated_at,
        });
    }
    Ok(adjustments)
}

async fn store_adjustments(
    conn: &mut AnyConnection,
    store: &Store,
    bounds: (i64, i64),
    revision: i64,
    restated_at: i64,
    adjustments: &[Adjustment],
) -> Result<(), StoreError> {
    let sql = store.dialect.sql(
        "INSERT INTO adjustments
             (zone, window_start, window_end, revision, account,
              sent_negative, sent_hi, sent_lo, received_negative, received_hi, received_lo,
              restated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    for adjustment in adjustments {
        let sent = split_signed("bytes_sent adjustment", adjustment.bytes_sent_delta)?;
        let received = split_signed("bytes_received adjustment", adjustment.bytes_received_delta)?;
        sqlx::query(&sql)
            .bind(adjustment.zone.as_str())
            .bind(bounds.0)
            .bind(bounds.1)
            .bind(revision)
            .bind(adjustment.account.as_str())
            .bind(sent.0)
            .bind(sent.1)
            .bind(sent.2)
            .bind(received.0)
            .bind(received.1)
            .bind(received.2)
            .bind(restated_at)
            .execute(&mut *conn)
            .await
            .doing("storing adjustments")?;
    }
    Ok(())
}
