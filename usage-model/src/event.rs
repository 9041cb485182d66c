use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::{AccountId, ZoneId};

/// What an [`IpEvent`] does to its address.
///
/// Displayed (and, with the `serde` feature, serialized) as its CloudStack
/// `usage_event` type: `NET.IPASSIGN` or `NET.IPRELEASE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum IpEventKind {
    /// The address was given to the account (CloudStack `NET.IPASSIGN`).
    #[cfg_attr(feature = "serde", serde(rename = "NET.IPASSIGN"))]
    Assign,
    /// The address was taken back from the account (CloudStack `NET.IPRELEASE`).
    #[cfg_attr(feature = "serde", serde(rename = "NET.IPRELEASE"))]
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

    /// The place of this kind among events of one instant: releases (0)
    /// before assigns (1), see [`IpEvent::sort_key`].
    pub fn replay_rank(self) -> u8 {
        match self {
            IpEventKind::Release => 0,
            IpEventKind::Assign => 1,
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

impl fmt::Display for IpEventKind {
    /// Writes the CloudStack type, as [`IpEventKind::cloudstack_type`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cloudstack_type())
    }
}

/// One assign or release of an address, as logged by the cloud.
///
/// Events are read from and written to files in the JSON Lines format of
/// [`read_events`](crate::read_events) and [`write_events`](crate::write_events).
/// With the `serde` feature an event serializes with the same keys and values
/// as that format (`type` is `NET.IPASSIGN` or `NET.IPRELEASE`, `at` is
/// RFC 3339 in UTC).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IpEvent {
    /// Unique id of the event; the tie-breaker for events at the same instant.
    pub id: u64,
    /// When it happened (UTC).
    #[cfg_attr(feature = "serde", serde(with = "crate::rfc3339::serde_utc"))]
    pub at: OffsetDateTime,
    /// The zone the address belongs to.
    pub zone: ZoneId,
    /// The account that gained or lost the address.
    pub account: AccountId,
    /// The address.
    pub ip: IpAddr,
    /// Assign or release.
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub kind: IpEventKind,
}

impl IpEvent {
    /// The key events are replayed in: by instant, releases before assigns
    /// at the same instant, then by id (DESIGN §4).
    ///
    /// Holdings are half-open, so a release at `t` ends `[.., t)` and an
    /// assign at `t` starts `[t, ..)`: applying the release first makes a
    /// same-instant handover read the same whatever ids the two events got.
    ///
    /// # Example
    ///
    /// ```
    /// use usage_model::{AccountId, IpEvent, IpEventKind, ZoneId};
    /// use time::macros::datetime;
    ///
    /// let event = |id, at| IpEvent {
    ///     id,
    ///     at,
    ///     zone: ZoneId::new("zone-1").unwrap(),
    ///     account: AccountId::new("acct-42").unwrap(),
    ///     ip: "203.0.113.7".parse().unwrap(),
    ///     kind: IpEventKind::Assign,
    /// };
    /// let mut events = vec![
    ///     event(9, datetime!(2026-11-01 11:00 UTC)),
    ///     event(8, datetime!(2026-11-01 10:00 UTC)),
    ///     event(3, datetime!(2026-11-01 10:00 UTC)),
    /// ];
    /// events.sort_by_key(IpEvent::sort_key);
    /// assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 8, 9]);
    ///
    /// // At one instant the release comes first, whatever the ids.
    /// let mut release = event(11, datetime!(2026-11-01 11:00 UTC));
    /// release.kind = IpEventKind::Release;
    /// events.push(release);
    /// events.sort_by_key(IpEvent::sort_key);
    /// assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 8, 11, 9]);
    /// ```
    pub fn sort_key(&self) -> (OffsetDateTime, u8, u64) {
        (self.at, self.kind.replay_rank(), self.id)
    }
}
