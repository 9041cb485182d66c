use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::{AccountId, ByteCounts, Error, TimeInterval, ZoneId};

/// One account's hold on one address over `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ownership {
    /// The zone of the address.
    pub zone: ZoneId,
    /// The holder.
    pub account: AccountId,
    /// The address held.
    pub ip: IpAddr,
    /// When it was held, half-open.
    #[cfg_attr(feature = "serde", serde(with = "crate::rfc3339::serde_interval"))]
    pub interval: TimeInterval,
}

/// The stretch of time one collection cycle bills: `[start, end)`, never empty.
///
/// With the `serde` feature it serializes as `{"start": …, "end": …}` in
/// RFC 3339 (UTC); deserializing refuses an empty window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "WindowFields"))]
pub struct CollectionWindow {
    #[cfg_attr(feature = "serde", serde(with = "crate::rfc3339::serde_utc"))]
    start: OffsetDateTime,
    #[cfg_attr(feature = "serde", serde(with = "crate::rfc3339::serde_utc"))]
    end: OffsetDateTime,
}

/// The unchecked fields of a [`CollectionWindow`], as deserialized.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowFields {
    #[serde(with = "crate::rfc3339::serde_utc")]
    start: OffsetDateTime,
    #[serde(with = "crate::rfc3339::serde_utc")]
    end: OffsetDateTime,
}

#[cfg(feature = "serde")]
impl TryFrom<WindowFields> for CollectionWindow {
    type Error = Error;

    fn try_from(fields: WindowFields) -> Result<Self, Error> {
        CollectionWindow::new(fields.start, fields.end)
    }
}

/// `at` in UTC, or [`Error::TimeOutOfRange`] when it has no UTC equivalent.
fn to_utc(at: OffsetDateTime) -> Result<OffsetDateTime, Error> {
    at.checked_to_offset(time::UtcOffset::UTC)
        .ok_or(Error::TimeOutOfRange { value: at })
}

impl CollectionWindow {
    /// Builds the window `[start, end)`, both converted to UTC.
    ///
    /// # Errors
    ///
    /// Returns [`Error::EmptyWindow`] unless `start < end`, and
    /// [`Error::TimeOutOfRange`] when an instant has no UTC equivalent (only at
    /// the very ends of the range of [`OffsetDateTime`]).
    ///
    /// # Example
    ///
    /// ```
    /// use usage_model::CollectionWindow;
    /// use time::macros::datetime;
    ///
    /// let window = CollectionWindow::new(
    ///     datetime!(2026-11-01 12:00 +02:00),
    ///     datetime!(2026-11-01 11:00 UTC),
    /// )?;
    /// assert_eq!(window.start(), datetime!(2026-11-01 10:00 UTC));
    /// assert!(window.contains(datetime!(2026-11-01 10:30 UTC)));
    /// assert!(!window.contains(window.end()));
    ///
    /// let instant = datetime!(2026-11-01 10:00 UTC);
    /// assert!(CollectionWindow::new(instant, instant).is_err());
    /// # Ok::<(), usage_model::Error>(())
    /// ```
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> Result<Self, Error> {
        let (start, end) = (to_utc(start)?, to_utc(end)?);
        if start >= end {
            return Err(Error::EmptyWindow { start, end });
        }
        Ok(CollectionWindow { start, end })
    }

    /// The first instant billed.
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// The end of the window (exclusive): the next window's start.
    pub fn end(&self) -> OffsetDateTime {
        self.end
    }

    /// The window as an interval.
    pub fn interval(&self) -> TimeInterval {
        // `start < end` holds by construction.
        TimeInterval::new(self.start, self.end).unwrap_or_else(|_| unreachable!("window invariant"))
    }

    /// Whether `instant` lies in `[start, end)`: at or after the start and
    /// before the end.
    pub fn contains(&self, instant: OffsetDateTime) -> bool {
        self.start <= instant && instant < self.end
    }
}

/// A usage type, numbered as CloudStack's usage types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum UsageType {
    /// Bytes sent by the account's addresses (CloudStack type 4).
    BytesSent = 4,
    /// Bytes received by the account's addresses (CloudStack type 5).
    BytesReceived = 5,
}

impl UsageType {
    /// Every usage type, in code order: bytes sent (4), bytes received (5).
    pub const ALL: [UsageType; 2] = [UsageType::BytesSent, UsageType::BytesReceived];

    /// The CloudStack usage type number: 4 or 5.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The usage type numbered `code`, or `None`.
    pub fn from_code(code: u8) -> Option<UsageType> {
        match code {
            4 => Some(UsageType::BytesSent),
            5 => Some(UsageType::BytesReceived),
            _ => None,
        }
    }
}

/// The deterministic identity of a [`UsageRecord`].
///
/// A 128-bit FNV-1a hash of `(zone, account, ip, start, end)` laid out as
/// documented on [`RecordId::of`]; shown as 32 lowercase hex digits and
/// parsed back from 32 hex digits of either case. With the `serde` feature
/// it serializes as that 32-digit string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct RecordId(u128);

const FNV128_OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
const FNV128_PRIME: u128 = 0x0000000001000000000000000000013B;
/// `FNV128_PRIME` to the eighth power (modulo 2^128): one multiplication by it
/// is eight FNV-1a steps over `0x00` bytes.
const FNV128_PRIME_POW8: u128 = {
    let mut power = 1u128;
    let mut i = 0;
    while i < 8 {
        power = power.wrapping_mul(FNV128_PRIME);
        i += 1;
    }
    power
};

/// FNV-1a steps over `bytes`: per byte, `(hash ^ byte) * FNV128_PRIME`
/// modulo 2^128.
#[inline(always)]
fn fnv_bytes(mut hash: u128, bytes: &[u8]) -> u128 {
    for &b in bytes {
        hash ^= u128::from(b);
        hash = hash.wrapping_mul(FNV128_PRIME);
    }
    hash
}

/// FNV-1a steps over 16 bytes, eight at a time. Eight `0x00` bytes (the
/// high half of every timestamp of this era, much of an IPv6 address)
/// leave each step a multiplication by the prime only, so they are one
/// multiplication by its eighth power: the same result in one step
/// instead of eight dependent ones.
#[inline(always)]
fn fnv_16(mut hash: u128, bytes: [u8; 16]) -> u128 {
    for half in [&bytes[..8], &bytes[8..]] {
        hash = if half == [0u8; 8] {
            hash.wrapping_mul(FNV128_PRIME_POW8)
        } else {
            fnv_bytes(hash, half)
        };
    }
    hash
}

/// The first part of a [`RecordId`]: the hash of a zone and an account.
///
/// Records of one zone and account share the first bytes of their hashed
/// layout (see [`RecordId::of`]); hashing them once and finishing with
/// [`RecordIdPrefix::id`] for each record gives the same ids as
/// [`RecordId::of`] with less work.
///
/// ```
/// use usage_model::{AccountId, RecordId, RecordIdPrefix, ZoneId};
/// use time::macros::datetime;
///
/// let zone = ZoneId::new("zone-1")?;
/// let account = AccountId::new("acct-42")?;
/// let prefix = RecordIdPrefix::new(&zone, &account);
/// let (start, end) = (datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-01 11:00 UTC));
/// for ip in ["203.0.113.7", "2001:db8::7"] {
///     let ip = ip.parse().unwrap();
///     assert_eq!(prefix.id(ip, start, end), RecordId::of(&zone, &account, ip, start, end));
/// }
/// # Ok::<(), usage_model::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordIdPrefix {
    /// The FNV-1a state after the zone, its `0x00`, the account and its `0x00`.
    state: u128,
}

impl RecordIdPrefix {
    /// Hashes the zone and account part of the layout of [`RecordId::of`].
    pub fn new(zone: &ZoneId, account: &AccountId) -> RecordIdPrefix {
        let mut state = fnv_bytes(FNV128_OFFSET, zone.as_str().as_bytes());
        state = fnv_bytes(state, &[0]);
        state = fnv_bytes(state, account.as_str().as_bytes());
        state = fnv_bytes(state, &[0]);
        RecordIdPrefix { state }
    }

    /// The id of the record of this zone and account for `ip` over
    /// `[start, end)`: equal to [`RecordId::of`] with the same arguments.
    pub fn id(&self, ip: IpAddr, start: OffsetDateTime, end: OffsetDateTime) -> RecordId {
        let mut hash = self.state;
        match ip {
            IpAddr::V4(v4) => {
                hash = fnv_bytes(hash, &[4]);
                hash = fnv_bytes(hash, &v4.octets());
            }
            IpAddr::V6(v6) => {
                hash = fnv_bytes(hash, &[6]);
                hash = fnv_16(hash, v6.octets());
            }
        }
        hash = fnv_16(hash, start.unix_timestamp_nanos().to_be_bytes());
        hash = fnv_16(hash, end.unix_timestamp_nanos().to_be_bytes());
        RecordId(hash)
    }
}

impl RecordId {
    /// Computes the id of the record for `(zone, account, ip, start, end)`.
    ///
    /// The hash is 128-bit FNV-1a over these bytes, in order:
    /// the zone as UTF-8 then a `0x00` byte; the account as UTF-8 then `0x00`;
    /// the address as `0x04` and its 4 octets, or `0x06` and its 16 octets;
    /// `start` then `end` as Unix timestamps in nanoseconds, each a 16-byte
    /// big-endian two's-complement `i128`. It is stable across runs,
    /// platforms and versions of this crate.
    ///
    /// The offset of `start` and `end` does not matter: the same instants give
    /// the same id.
    ///
    /// # Example
    ///
    /// ```
    /// use usage_model::{AccountId, RecordId, ZoneId};
    /// use time::macros::datetime;
    ///
    /// let zone = ZoneId::new("zone-1")?;
    /// let account = AccountId::new("acct-42")?;
    /// let ip = "203.0.113.7".parse().unwrap();
    /// let id = RecordId::of(
    ///     &zone,
    ///     &account,
    ///     ip,
    ///     datetime!(2026-11-01 10:00 UTC),
    ///     datetime!(2026-11-01 11:00 UTC),
    /// );
    /// // Same inputs, same id, whatever the offset the instants carry.
    /// let again = RecordId::of(
    ///     &zone,
    ///     &account,
    ///     ip,
    ///     datetime!(2026-11-01 12:00 +02:00),
    ///     datetime!(2026-11-01 13:00 +02:00),
    /// );
    /// assert_eq!(id, again);
    /// assert_eq!(id.to_string().parse::<RecordId>().unwrap(), id);
    /// # Ok::<(), usage_model::Error>(())
    /// ```
    pub fn of(
        zone: &ZoneId,
        account: &AccountId,
        ip: IpAddr,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> RecordId {
        RecordIdPrefix::new(zone, account).id(ip, start, end)
    }

    /// The hash as a number.
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({self})")
    }
}

/// The error of parsing a [`RecordId`] from text that is not 32 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid record id {0:?}: expected 32 hex digits")]
pub struct ParseRecordIdError(String);

impl FromStr for RecordId {
    type Err = ParseRecordIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseRecordIdError(s.to_owned()));
        }
        u128::from_str_radix(s, 16)
            .map(RecordId)
            .map_err(|_| ParseRecordIdError(s.to_owned()))
    }
}

impl TryFrom<String> for RecordId {
    type Error = ParseRecordIdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RecordId> for String {
    fn from(id: RecordId) -> String {
        id.to_string()
    }
}

/// The bytes one address moved while one account held it, over `[start, end)`.
///
/// With the `serde` feature it serializes with its field names, `start` and
/// `end` in RFC 3339 (UTC); deserializing refuses a record whose `id` is not
/// [`RecordId::of`] its fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "RecordFields"))]
pub struct UsageRecord {
    /// Deterministic id of `(zone, account, ip, start, end)`; see [`RecordId::of`].
    pub id: RecordId,
    /// The zone.
    pub zone: ZoneId,
    /// The account billed.
    pub account: AccountId,
    /// The address.
    pub ip: IpAddr,
    /// First instant covered (on the grid).
    #[cfg_attr(feature = "serde", serde(with = "crate::rfc3339::serde_utc"))]
    pub start: OffsetDateTime,
    /// End of the covered span, exclusive (on the grid).
    #[cfg_attr(feature = "serde", serde(with = "crate::rfc3339::serde_utc"))]
    pub end: OffsetDateTime,
    /// Bytes sent by the address (usage type 4).
    pub bytes_sent: u64,
    /// Bytes received by the address (usage type 5).
    pub bytes_received: u64,
}

/// The unchecked fields of a [`UsageRecord`], as deserialized.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFields {
    id: RecordId,
    zone: ZoneId,
    account: AccountId,
    ip: IpAddr,
    #[serde(with = "crate::rfc3339::serde_utc")]
    start: OffsetDateTime,
    #[serde(with = "crate::rfc3339::serde_utc")]
    end: OffsetDateTime,
    bytes_sent: u64,
    bytes_received: u64,
}

#[cfg(feature = "serde")]
impl TryFrom<RecordFields> for UsageRecord {
    type Error = Error;

    fn try_from(f: RecordFields) -> Result<Self, Error> {
        let bytes = ByteCounts {
            sent: f.bytes_sent,
            received: f.bytes_received,
        };
        let record = UsageRecord::new(f.zone, f.account, f.ip, f.start, f.end, bytes);
        if record.id != f.id {
            return Err(Error::RecordIdMismatch {
                found: f.id,
                expected: record.id,
            });
        }
        Ok(record)
    }
}

impl UsageRecord {
    /// Builds a record and computes its id with [`RecordId::of`].
    pub fn new(
        zone: ZoneId,
        account: AccountId,
        ip: IpAddr,
        start: OffsetDateTime,
        end: OffsetDateTime,
        bytes: ByteCounts,
    ) -> UsageRecord {
        let id = RecordId::of(&zone, &account, ip, start, end);
        UsageRecord {
            id,
            zone,
            account,
            ip,
            start,
            end,
            bytes_sent: bytes.sent,
            bytes_received: bytes.received,
        }
    }

    /// The record's bytes as a pair.
    pub fn bytes(&self) -> ByteCounts {
        ByteCounts {
            sent: self.bytes_sent,
            received: self.bytes_received,
        }
    }

    /// The bytes of one usage type.
    pub fn bytes_of(&self, usage: UsageType) -> u64 {
        match usage {
            UsageType::BytesSent => self.bytes_sent,
            UsageType::BytesReceived => self.bytes_received,
        }
    }
}

/// How far a zone has been billed: every instant before `at` is done.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Checkpoint {
    /// The zone.
    pub zone: ZoneId,
    /// The end of the last billed window; the start of the next.
    #[cfg_attr(feature = "serde", serde(with = "crate::rfc3339::serde_utc"))]
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// FNV-1a 128 as its definition says: one xor and one multiplication by
    /// the prime per byte.
    fn straightforward(bytes: &[u8]) -> u128 {
        straightforward_from(FNV128_OFFSET, bytes)
    }

    /// [`straightforward`] from any state.
    fn straightforward_from(mut hash: u128, bytes: &[u8]) -> u128 {
        for &b in bytes {
            hash ^= u128::from(b);
            hash = hash.wrapping_mul(FNV128_PRIME);
        }
        hash
    }

    /// The documented layout of a record id's hashed bytes.
    fn layout(zone: &str, account: &str, ip: IpAddr, start: i128, end: i128) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(zone.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(account.as_bytes());
        bytes.push(0);
        match ip {
            IpAddr::V4(v4) => {
                bytes.push(4);
                bytes.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                bytes.push(6);
                bytes.extend_from_slice(&v6.octets());
            }
        }
        bytes.extend_from_slice(&start.to_be_bytes());
        bytes.extend_from_slice(&end.to_be_bytes());
        bytes
    }

    #[test]
    fn prime_power_is_eight_steps_over_zero() {
        assert_eq!(FNV128_PRIME, (1 << 88) + 0x13B);
        assert_eq!(
            fnv_bytes(FNV128_OFFSET, &[0; 8]),
            FNV128_OFFSET.wrapping_mul(FNV128_PRIME_POW8)
        );
    }

    /// Bytes that are often `0x00`, so that zero halves are common.
    fn sparse_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![3 => Just(0u8), 1 => any::<u8>()], 0..64)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn sixteen_bytes_match_the_definition(hash in any::<u128>(), bytes in sparse_bytes()) {
            let mut sixteen = [0u8; 16];
            for (to, from) in sixteen.iter_mut().zip(bytes) {
                *to = from;
            }
            prop_assert_eq!(fnv_16(hash, sixteen), straightforward_from(hash, &sixteen));
        }

        #[test]
        fn ids_match_the_straightforward_hash(
            zone in "[^\\p{Cc}]{1,24}",
            account in "[^\\p{Cc}]{1,24}",
            ip in prop_oneof![
                any::<[u8; 4]>().prop_map(IpAddr::from),
                any::<[u8; 16]>().prop_map(IpAddr::from),
                sparse_bytes().prop_map(|b| {
                    let mut octets = [0u8; 16];
                    for (o, v) in octets.iter_mut().zip(b) {
                        *o = v;
                    }
                    IpAddr::from(octets)
                }),
            ],
            start in -377_705_116_800_i64..=253_402_300_799,
            start_nanos in 0u32..1_000_000_000,
            length in prop_oneof![Just(0i64), 1i64..100_000_000],
        ) {
            let start = OffsetDateTime::from_unix_timestamp(start)
                .unwrap()
                .replace_nanosecond(start_nanos)
                .unwrap();
            let end = start.checked_add(time::Duration::seconds(length)).unwrap_or(start);
            let expected = straightforward(&layout(
                &zone,
                &account,
                ip,
                start.unix_timestamp_nanos(),
                end.unix_timestamp_nanos(),
            ));
            let zone = ZoneId::new(zone).unwrap();
            let account = AccountId::new(account).unwrap();
            prop_assert_eq!(RecordId::of(&zone, &account, ip, start, end).as_u128(), expected);
            prop_assert_eq!(RecordIdPrefix::new(&zone, &account).id(ip, start, end).as_u128(), expected);
        }
    }
}
