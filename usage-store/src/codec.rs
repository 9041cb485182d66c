//! How values are written into the columns of the schema, the same on every
//! engine: byte counts and event ids as two 32-bit halves, signed amounts as
//! a sign and two halves, instants as Unix seconds, digests as hex text, and
//! addresses with a text key that sorts them by value.

use std::fmt::Write as _;
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::StoreError;

/// The low 32 bits of a split number.
const LOW_MASK: u64 = 0xffff_ffff;

/// A `u64` as the `(hi, lo)` pair of its high and low 32-bit halves, each
/// below 2^32: a sum over fewer than 2^31 rows of either half fits in a
/// signed 64-bit SQL integer on every engine.
pub(crate) fn split(value: u64) -> (i64, i64) {
    // Both halves are below 2^32: the conversions are exact.
    ((value >> 32) as i64, (value & LOW_MASK) as i64)
}

/// The number `hi * 2^32 + lo` of two halves or of two sums of halves.
///
/// # Errors
///
/// `Err(())` for a negative half, which no column of ours holds.
pub(crate) fn join(hi: i64, lo: i64) -> Result<u128, ()> {
    let hi = u128::try_from(hi).map_err(|_| ())?;
    let lo = u128::try_from(lo).map_err(|_| ())?;
    Ok((hi << 32) + lo)
}

/// A `u128` total as `(hi, lo)` with `lo` below 2^32 and `hi` the rest, for
/// the window totals: exact while the total is below 2^95.
pub(crate) fn split_wide(what: &str, value: u128) -> Result<(i64, i64), StoreError> {
    let hi = i64::try_from(value >> 32).map_err(|_| StoreError::TooLarge {
        what: what.to_owned(),
        value: value.to_string(),
    })?;
    Ok((hi, (value & u128::from(LOW_MASK)) as i64))
}

/// A signed amount as `(negative, hi, lo)`: its sign as 0 or 1 and its
/// magnitude split as by [`split_wide`].
pub(crate) fn split_signed(what: &str, value: i128) -> Result<(i64, i64, i64), StoreError> {
    let (hi, lo) = split_wide(what, value.unsigned_abs())?;
    Ok((i64::from(value < 0), hi, lo))
}

/// The signed amount of [`split_signed`]'s columns.
pub(crate) fn join_signed(negative: i64, hi: i64, lo: i64) -> Result<i128, ()> {
    let magnitude = i128::try_from(join(hi, lo)?).map_err(|_| ())?;
    match negative {
        0 => Ok(magnitude),
        1 => Ok(-magnitude),
        _ => Err(()),
    }
}

/// A count (records, addresses, requests) as a signed 64-bit integer.
pub(crate) fn count(what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge {
        what: what.to_owned(),
        value: value.to_string(),
    })
}

/// An instant as whole Unix seconds, UTC.
///
/// # Errors
///
/// [`StoreError::UnstorableTime`] for an instant before 1970 or with a
/// fraction of a second: billing times are on a grid of whole seconds.
pub(crate) fn to_seconds(what: &'static str, at: OffsetDateTime) -> Result<i64, StoreError> {
    let unstorable = |reason: &'static str| StoreError::UnstorableTime { what, at, reason };
    if at.nanosecond() != 0 {
        return Err(unstorable("it has a fraction of a second"));
    }
    let seconds = at.unix_timestamp();
    if seconds < 0 {
        return Err(unstorable("it lies before 1970-01-01T00:00:00Z"));
    }
    Ok(seconds)
}

/// The instant of whole Unix seconds `seconds`, in UTC.
pub(crate) fn from_seconds(seconds: i64) -> Result<OffsetDateTime, String> {
    if seconds < 0 {
        return Err(format!("{seconds} is before 1970"));
    }
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| format!("{seconds} is out of range"))
}

/// A digest as 64 lowercase hex digits.
pub(crate) fn digest_to_hex(digest: &[u8; 32]) -> String {
    let mut text = String::with_capacity(64);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The digest of 64 hex digits.
pub(crate) fn digest_from_hex(text: &str) -> Result<[u8; 32], String> {
    let bad = || format!("{text:?} is not 64 hex digits");
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut digest = [0u8; 32];
    for (index, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).map_err(|_| bad())?;
    }
    Ok(digest)
}

/// The sort key of an address: `4` and 8 hex digits for IPv4, `6` and 32 for
/// IPv6, so that text order is the order of [`IpAddr`] (IPv4 first, then by
/// value) on every engine.
pub(crate) fn ip_key(ip: IpAddr) -> String {
    let mut key = String::with_capacity(33);
    match ip {
        IpAddr::V4(v4) => {
            key.push('4');
            for byte in v4.octets() {
                let _ = write!(key, "{byte:02x}");
            }
        }
        IpAddr::V6(v6) => {
            key.push('6');
            for byte in v6.octets() {
                let _ = write!(key, "{byte:02x}");
            }
        }
    }
    key
}

/// The UTC day of `seconds`, as days since 1970-01-01.
pub(crate) fn day_of(seconds: i64) -> i64 {
    seconds.div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_are_exact_at_the_edges() {
        for value in [
            0,
            1,
            LOW_MASK,
            LOW_MASK + 1,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let (hi, lo) = split(value);
            assert!((0..1 << 32).contains(&hi) && (0..1 << 32).contains(&lo));
            assert_eq!(join(hi, lo), Ok(u128::from(value)));
        }
        assert_eq!(join(-1, 0), Err(()));
        let total = u128::from(u64::MAX) * 3;
        let (hi, lo) = split_wide("total", total).unwrap();
        assert_eq!(join(hi, lo), Ok(total));
        assert!(split_wide("total", u128::MAX).is_err());
    }

    #[test]
    fn signed_amounts_round_trip() {
        let max = i128::from(u64::MAX);
        for value in [0, 1, -1, max, -max, 2 * max, -2 * max] {
            let (negative, hi, lo) = split_signed("delta", value).unwrap();
            assert_eq!(join_signed(negative, hi, lo), Ok(value));
        }
        assert_eq!(join_signed(2, 0, 1), Err(()));
    }

    #[test]
    fn ip_keys_sort_like_addresses() {
        let mut ips: Vec<IpAddr> = [
            "2001:db8::7",
            "203.0.113.10",
            "203.0.113.9",
            "::1",
            "0.0.0.1",
        ]
        .iter()
        .map(|ip| ip.parse().unwrap())
        .collect();
        let mut by_key = ips.clone();
        by_key.sort_by_key(|ip| ip_key(*ip));
        ips.sort();
        assert_eq!(by_key, ips);
        assert_eq!(ip_key("192.0.2.1".parse().unwrap()), "4c0000201");
    }

    #[test]
    fn digests_round_trip_and_refuse_bad_text() {
        let mut digest = [0u8; 32];
        digest[0] = 0xab;
        digest[31] = 0x01;
        let text = digest_to_hex(&digest);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("ab") && text.ends_with("01"));
        assert_eq!(digest_from_hex(&text), Ok(digest));
        assert!(digest_from_hex("ab").is_err());
        assert!(digest_from_hex(&"zz".repeat(32)).is_err());
        assert!(digest_from_hex(&"é".repeat(32)).is_err());
    }

    #[test]
    fn times_are_whole_seconds_after_1970() {
        use time::macros::datetime;
        assert_eq!(
            to_seconds("start", datetime!(2026-11-01 00:00 UTC)).unwrap(),
            1_793_491_200
        );
        assert!(to_seconds("start", datetime!(2026-11-01 00:00:00.5 UTC)).is_err());
        assert!(to_seconds("start", datetime!(1969-12-31 23:59 UTC)).is_err());
        assert_eq!(
            from_seconds(1_793_491_200).unwrap(),
            datetime!(2026-11-01 00:00 UTC)
        );
        assert_eq!(day_of(1_793_491_200 + 86_399), 1_793_491_200 / 86_400);
    }
}
