//! Posting a window's per-account bytes to CloudStack's `user_statistics`,
//! in the store's own transaction (DESIGN §11).
//!
//! Source: DESIGN §11, which follows Apache CloudStack's own collection of
//! direct-network (Traffic Sentinel) usage. CloudStack keeps one row per account,
//! zone and traffic monitor in `cloud.user_statistics`: `account_id`,
//! `data_center_id` = the zone id, `public_ip_address` NULL, `device_id` =
//! the monitor's `host.id`, `device_type` `'DirectNetwork'`, `network_id` 0
//! (never NULL: CloudStack's usage job fails on a NULL). It adds each
//! collection's bytes to `current_bytes_sent` / `current_bytes_received`;
//! CloudStack's usage server turns those into usage records of types 4 and
//! 5. This module does the same under a row lock (`SELECT … FOR UPDATE`),
//! creating the row with zero counters when missing. As the store's tables
//! and CloudStack's live on one MySQL server, a window is posted exactly
//! once or not at all.

use std::fmt::Write as _;

use sqlx::AnyConnection;
use usage_model::ZoneId;

use crate::error::Doing as _;
use crate::{Engine, Store, StoreError};

/// Where to post a window's bytes in CloudStack (DESIGN §11).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CloudStackPosting {
    /// The `host.id` of the zone's traffic monitor, as CloudStack's
    /// `addTrafficMonitor` created it: the rows' `device_id`.
    pub host_id: u64,
    /// The name of CloudStack's database on the store's MySQL server,
    /// usually `cloud` (CloudStack's `db.cloud.name`): any MySQL database
    /// name (1 to 64 characters, no NUL, no trailing space), written as a
    /// quoted identifier.
    pub cloud_database: String,
}

impl CloudStackPosting {
    /// Checks that [`CloudStackPosting::cloud_database`] can name a MySQL
    /// database, so that a caller can refuse it before any request.
    ///
    /// # Errors
    ///
    /// [`StoreError::CloudStackDatabase`] naming it.
    pub fn check_database_name(&self) -> Result<(), StoreError> {
        let name = &self.cloud_database;
        if name.is_empty()
            || name.chars().count() > 64
            || name.contains('\0')
            || name.ends_with(' ')
        {
            return Err(StoreError::CloudStackDatabase { name: name.clone() });
        }
        Ok(())
    }

    /// `` `cloud`.user_statistics ``: the table, its database name quoted
    /// as a MySQL identifier (a backtick doubled).
    fn user_statistics(&self) -> String {
        format!(
            "`{}`.user_statistics",
            self.cloud_database.replace('`', "``")
        )
    }
}

/// Checks, before any write, that posting is possible: a `mysql://` store,
/// a database name, a decimal zone id and a decimal account id for
/// every account with bytes to post.
pub(crate) fn check_posting(
    store: &Store,
    posting: &CloudStackPosting,
    zone: &ZoneId,
    amounts: &[(&str, u128, u128)],
) -> Result<(), StoreError> {
    if store.engine() != Engine::MySql {
        return Err(StoreError::CloudStackNeedsMySql {
            target: store.target().to_string(),
        });
    }
    posting.check_database_name()?;
    require_cloudstack_id("zone", zone.as_str())?;
    for &(account, sent, received) in amounts {
        if sent == 0 && received == 0 {
            continue;
        }
        require_cloudstack_id("account", account)?;
        for (direction, amount) in [("bytes_sent", sent), ("bytes_received", received)] {
            if u64::try_from(amount).is_err() {
                return Err(StoreError::TooLarge {
                    what: format!("{direction} of account {account} to post to CloudStack"),
                    value: amount.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The number of a CloudStack id as CloudStack's `BIGINT UNSIGNED` id
/// columns hold it (`account_id`, `data_center_id`, `host.id`): decimal
/// digits only, fitting in `u64`. `None` for anything else: an empty text,
/// a sign, spaces, a number past 2^64 − 1.
///
/// # Example
///
/// ```
/// assert_eq!(usage_store::cloudstack_id("42"), Some(42));
/// assert_eq!(usage_store::cloudstack_id("zone-1"), None);
/// assert_eq!(usage_store::cloudstack_id("+42"), None);
/// ```
pub fn cloudstack_id(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// [`cloudstack_id`] of `value`, or [`StoreError::NotCloudStackId`] naming
/// `what` it is.
fn require_cloudstack_id(what: &'static str, value: &str) -> Result<u64, StoreError> {
    cloudstack_id(value).ok_or_else(|| StoreError::NotCloudStackId {
        what,
        value: value.to_owned(),
    })
}

/// Adds `(account, sent, received)` to each account's `user_statistics`
/// row, creating it when missing; accounts with nothing to add are skipped.
/// Every value was checked by [`check_posting`]; the numbers are written as
/// decimal literals because they are `u64` and CloudStack's columns are
/// `BIGINT UNSIGNED`.
pub(crate) async fn post_usage(
    conn: &mut AnyConnection,
    posting: &CloudStackPosting,
    zone: &ZoneId,
    amounts: &[(&str, u128, u128)],
) -> Result<(), StoreError> {
    let table = posting.user_statistics();
    let zone_id = require_cloudstack_id("zone", zone.as_str())?;
    for &(account, sent, received) in amounts {
        if sent == 0 && received == 0 {
            continue;
        }
        let account_id = require_cloudstack_id("account", account)?;
        let mut key = String::new();
        let _ = write!(
            key,
            "account_id = {account_id} AND data_center_id = {zone_id}
             AND public_ip_address IS NULL AND device_id = {host}
             AND device_type = 'DirectNetwork' AND network_id = 0",
            host = posting.host_id
        );
        // CloudStack's unique key does not hold while public_ip_address is
        // NULL, so the key may match more than one row: the first (lowest
        // id) takes the bytes, once.
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT CAST(id AS CHAR) FROM {table} WHERE {key} ORDER BY id FOR UPDATE"
        ))
        .fetch_all(&mut *conn)
        .await
        .doing("locking CloudStack's user statistics")?;
        let row_id = match rows.first() {
            Some(id) => id.clone(),
            None => {
                sqlx::query(&format!(
                "INSERT INTO {table}
                     (data_center_id, account_id, public_ip_address, device_id, device_type,
                      network_id, net_bytes_received, net_bytes_sent, current_bytes_received,
                      current_bytes_sent, agg_bytes_received, agg_bytes_sent)
                 VALUES ({zone_id}, {account_id}, NULL, {host}, 'DirectNetwork', 0, 0, 0, 0, 0, 0, 0)",
                host = posting.host_id
            ))
            .execute(&mut *conn)
            .await
            .doing("creating CloudStack's user statistics")?;
                sqlx::query_scalar("SELECT CAST(LAST_INSERT_ID() AS CHAR)")
                    .fetch_one(&mut *conn)
                    .await
                    .doing("creating CloudStack's user statistics")?
            }
        };
        let row_id: u64 = row_id.trim().parse().map_err(|_| StoreError::Corrupt {
            table: "user_statistics",
            key: account.to_owned(),
            column: "id",
            reason: format!("{row_id:?} is not a number"),
        })?;
        sqlx::query(&format!(
            "UPDATE {table}
             SET current_bytes_sent = current_bytes_sent + {sent},
                 current_bytes_received = current_bytes_received + {received}
             WHERE id = {row_id}"
        ))
        .execute(&mut *conn)
        .await
        .doing("adding usage to CloudStack's user statistics")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::CloudStackPosting;

    fn posting(name: &str) -> CloudStackPosting {
        CloudStackPosting {
            host_id: 5,
            cloud_database: name.to_owned(),
        }
    }

    #[test]
    fn any_mysql_database_name_is_quoted() {
        for (name, table) in [
            ("cloud", "`cloud`.user_statistics"),
            ("cloud-probe", "`cloud-probe`.user_statistics"),
            ("a`b; DROP", "`a``b; DROP`.user_statistics"),
        ] {
            assert!(posting(name).check_database_name().is_ok(), "{name}");
            assert_eq!(posting(name).user_statistics(), table);
        }
        for name in ["", "cloud ", "a\0b", &"x".repeat(65)] {
            assert!(posting(name).check_database_name().is_err(), "{name:?}");
        }
    }
}
