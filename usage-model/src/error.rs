/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identifier (account or zone) was empty or held a control character.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidId {
        /// What kind of identifier: `"account"` or `"zone"`.
        kind: &'static str,
        /// The value that was refused.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A window whose start is not before its end.
    #[error("empty collection window [{start}, {end})")]
    EmptyWindow {
        /// The start that was given.
        start: time::OffsetDateTime,
        /// The end that was given.
        end: time::OffsetDateTime,
    },
    /// Adding byte counts overflowed `u64`.
    #[error("byte count overflow adding {left} and {right}")]
    Overflow {
        /// The left operand.
        left: u64,
        /// The right operand.
        right: u64,
    },
    /// The same `(tag, ip)` pair was answered twice.
    #[error("duplicate answer for query {tag} and ip {ip}")]
    DuplicateAnswer {
        /// The query tag.
        tag: crate::QueryTag,
        /// The address.
        ip: std::net::IpAddr,
    },
}
