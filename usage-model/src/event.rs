use std::net::IpAddr;

use time::OffsetDateTime;

use crate::{AccountId, ZoneId};

/// What an [`IpEvent`] does to its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum IpEventKind {
    /// The address was given to the account (CloudStack `NET.IPASSIGN`).
    Assign,
    /// The address was taken back from the account (CloudStack `NET.IPRELEASE`).
    Release,
}

impl IpEventKind {
    /// The CloudStack `usage_event` type: `NET.IPASSIGN` or `NET.IPRELEASE`.
    pub fn cloudstack_type(self) -> &'static str {
        match self {
            IpEventKind::Assign => "NET.IPASSIGN",
            IpEventKind::Release => "NET.IPRELEASE",
        }
    }

    /// The kind named by a CloudStack `usage_event` type, or `None`.
    pub fn from_cloudstack_type(s: &str) -> Option<IpEventKind> {
        match s {
            "NET.IPASSIGN" => Some(IpEventKind::Assign),
            "NET.IPRELEASE" => Some(IpEventKind::Release),
            _ => None,
        }
    }
}

/// One assign or release of an address, as logged by the cloud.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IpEvent {
    /// Unique id of the event; the tie-breaker for events at the same instant.
    pub id: u64,
    /// When it happened (UTC).
    pub at: OffsetDateTime,
    /// The zone the address belongs to.
    pub zone: ZoneId,
    /// The account that gained or lost the address.
    pub account: AccountId,
    /// The address.
    pub ip: IpAddr,
    /// Assign or release.
    pub kind: IpEventKind,
}
