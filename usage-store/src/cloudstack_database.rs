//! A read-only connection to CloudStack's own database (DESIGN §11), the
//! source of usage events and of the zone's registered traffic monitor.

use sqlx::AnyPool;

use crate::{Engine, OpenMode, StoreError, StoreTarget};

/// CloudStack's database (usually `cloud`) on its MySQL or MariaDB server,
/// opened read-only (DESIGN §11).
///
/// Every session is `READ ONLY`, so nothing read through it can write to
/// CloudStack's tables. It reads `usage_event`
/// ([`CloudStackDatabase::read_ip_events`]) and `host` / `host_details`
/// ([`CloudStackDatabase::traffic_monitor`]).
///
/// # Example
///
/// ```no_run
/// use std::ops::ControlFlow;
///
/// use usage_store::{CloudStackDatabase, StoreTarget, UsageEventOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The password may also be in the URL.
/// let target = StoreTarget::parse("mysql://cloud@db.example/cloud")?.with_password("s3cret")?;
/// let cloud = CloudStackDatabase::connect(&target).await?;
/// let mut events = Vec::new();
/// let read = cloud
///     .read_ip_events(&UsageEventOptions::new(), |event| {
///         events.push(event);
///         ControlFlow::Continue(())
///     })
///     .await?;
/// for skipped in &read.skipped {
///     eprintln!("{}", skipped.detail);
/// }
/// cloud.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct CloudStackDatabase {
    pub(crate) pool: AnyPool,
    target: StoreTarget,
}

impl CloudStackDatabase {
    /// Connects to CloudStack's database named by `target`, a
    /// `mysql://USER[:PASSWORD]@HOST[:PORT]/DB` target (a password given
    /// separately is set with [`StoreTarget::with_password`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidTarget`] for a target that is not `mysql://`;
    /// [`StoreError::Open`] when the server cannot be reached or refuses
    /// the login (without the password in the message).
    pub async fn connect(target: &StoreTarget) -> Result<CloudStackDatabase, StoreError> {
        if target.engine() != Engine::MySql {
            return Err(StoreError::InvalidTarget {
                target: target.to_string(),
                reason: "CloudStack's database is on MySQL or MariaDB: give a mysql:// URL"
                    .to_owned(),
            });
        }
        let pool = crate::open::connect(target, OpenMode::ReadOnly).await?;
        Ok(CloudStackDatabase {
            pool,
            target: target.clone(),
        })
    }

    /// The target it was opened from.
    pub fn target(&self) -> &StoreTarget {
        &self.target
    }

    /// Closes every connection, waiting until they are closed (a dropped
    /// value closes them in the background).
    pub async fn close(self) {
        self.pool.close().await;
    }
}
