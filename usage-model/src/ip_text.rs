//! Reading an IP address written as text, as both sides of the Traffic
//! Sentinel protocol do once per row: the client in answer rows, the
//! emulator in the address lists of scripts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// `text` as [`IpAddr::from_str`] reads it (not made canonical): the
/// common dotted-quad form by [`read_dotted_quad`], text with a colon as
/// IPv6 straight away (std's reader would try IPv4 first), anything else by
/// the standard library. `None` where std refuses.
///
/// # Example
///
/// ```
/// use std::net::IpAddr;
///
/// assert_eq!(usage_model::read_ip("203.0.113.7"), "203.0.113.7".parse::<IpAddr>().ok());
/// assert_eq!(usage_model::read_ip("2001:db8::1"), "2001:db8::1".parse::<IpAddr>().ok());
/// assert_eq!(usage_model::read_ip("01.2.3.4"), None);
/// ```
// Both readers are inlined into their callers: an `Option` of an address
// returned through memory was read back before the callee's writes had
// landed, a stall of 5–20% of the answer loop (`perf`).
#[inline(always)]
pub fn read_ip(text: &str) -> Option<IpAddr> {
    if let Some(v4) = read_dotted_quad(text.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    if text.contains(':') {
        return Ipv6Addr::from_str(text).ok().map(IpAddr::V6);
    }
    IpAddr::from_str(text).ok()
}

/// A dotted-quad IPv4 address as `Ipv4Addr::from_str` accepts it: four
/// decimal octets of one to three digits, at most 255, without a leading
/// zero, separated by single dots; `None` for anything else (which std may
/// still read: [`read_ip`] asks it).
///
/// Why it exists: addresses are most of an answer's rows and of a script's
/// bytes, and std's general reader took about 14% of the answer parse
/// (BENCHMARKS.md §2). Property tests in the client and the emulator hold
/// it to std.
#[inline(always)]
pub fn read_dotted_quad(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut rest = text;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            rest = rest.strip_prefix(b".")?;
        }
        let digits = rest
            .iter()
            .take(3)
            .take_while(|b| b.is_ascii_digit())
            .count();
        let (number, after) = rest.split_at(digits);
        let value = match *number {
            [a] => u32::from(a - b'0'),
            [b'0', ..] | [] => return None,
            [a, b] => u32::from(a - b'0') * 10 + u32::from(b - b'0'),
            [a, b, c] => u32::from(a - b'0') * 100 + u32::from(b - b'0') * 10 + u32::from(c - b'0'),
            _ => return None,
        };
        *octet = u8::try_from(value).ok()?;
        rest = after;
    }
    rest.is_empty().then_some(Ipv4Addr::from(octets))
}
