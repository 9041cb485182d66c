use std::net::IpAddr;

use time::{Duration, OffsetDateTime};
use usage_model::{AccountId, QueryTag, UsageType};

use crate::display::{Instant, Span};

/// The error type of this crate.
///
/// Anomalies in the event log are not errors: they are reported as
/// [`Anomaly`](crate::Anomaly) values. An `Error` means a request could not be
/// served at all (a bad configuration, a window off the grid, an answer that
/// does not fit the plan, a count that overflows).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settle lag is negative.
    #[error("settle lag {} is negative", Span(*.lag))]
    NegativeSettleLag {
        /// The lag that was given.
        lag: Duration,
    },
    /// The maximum window is shorter than one grid step, so no window could
    /// ever end on the grid.
    #[error("maximum window {} is shorter than the grid step {}", Span(*.max_window), Span(*.grid))]
    MaxWindowBelowGrid {
        /// The maximum window that was given.
        max_window: Duration,
        /// The grid step.
        grid: Duration,
    },
    /// A collection window whose start or end is not on the grid.
    #[error(
        "window [{}, {}) is not on the grid of {}",
        Instant(*.start),
        Instant(*.end),
        Span(*.grid)
    )]
    WindowOffGrid {
        /// The window start.
        start: OffsetDateTime,
        /// The window end.
        end: OffsetDateTime,
        /// The grid step.
        grid: Duration,
    },
    /// An instant could not be floored to the grid, or moved by a duration,
    /// without leaving the range of representable times.
    #[error("time {} moved by {} is out of range", Instant(*.at), Span(*.by))]
    TimeOutOfRange {
        /// The instant.
        at: OffsetDateTime,
        /// The grid step or offset that was applied to it.
        by: Duration,
    },
    /// An explicit end of collection later than `now - settle_lag`.
    #[error(
        "end {} is after now minus the settle lag of {} ({}): traffic that is not settled is never collected",
        Instant(*.until),
        Span(*.lag),
        Instant(*.settled)
    )]
    UntilNotSettled {
        /// The end asked for.
        until: OffsetDateTime,
        /// `now - settle_lag`: the latest end allowed.
        settled: OffsetDateTime,
        /// The settle lag.
        lag: Duration,
    },
    /// A plan would need more queries than there are query tags (`u32`).
    #[error("plan needs more than {count} queries, more than query tags can number")]
    TooManyQueries {
        /// The number of queries already tagged.
        count: usize,
    },
    /// The answer holds counts for a `(tag, ip)` pair the plan did not ask for.
    #[error("answer for query {tag} and ip {ip} that the plan did not ask for")]
    UnexpectedAnswer {
        /// The tag of the answer row.
        tag: QueryTag,
        /// The address of the answer row.
        ip: IpAddr,
    },
    /// Summing an account's bytes of one usage type overflowed `u64`.
    #[error(
        "byte count overflow totalling usage type {} of account {account} in zone {zone}: {left} + {right}",
        .usage.code()
    )]
    TotalOverflow {
        /// The zone of the account.
        zone: usage_model::ZoneId,
        /// The account whose total overflowed.
        account: AccountId,
        /// The usage type (4 sent, 5 received).
        usage: UsageType,
        /// The running total.
        left: u64,
        /// The bytes that could not be added to it.
        right: u64,
    },
}
