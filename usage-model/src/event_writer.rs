//! Writing the events file: JSON Lines, one [`IpEvent`] per line (DESIGN §9).

use std::io::Write;
use std::net::IpAddr;

use crate::{Error, IpEvent, rfc3339};

/// Writes events in the JSON Lines events format, one line each, in the
/// order given, then flushes `writer`.
///
/// Keys come in the order `id`, `type`, `at`, `zone`, `account`, `ip`, with no
/// whitespace; `at` is RFC 3339 in UTC with `Z` (fractional seconds only when
/// there are any); strings are JSON-escaped. [`read_events`](crate::read_events) reads the output
/// back to equal events.
///
/// # Errors
///
/// Returns [`Error::UnwritableTimestamp`] for an event whose instant lies,
/// in UTC, outside the years 0000–9999 (which RFC 3339 cannot express), and
/// [`Error::Io`] when writing fails. Lines before the failing event have
/// been handed to `writer` by then.
///
/// # Example
///
/// ```
/// use usage_model::{write_events, AccountId, IpEvent, IpEventKind, ZoneId};
/// use time::macros::datetime;
///
/// let event = IpEvent {
///     id: 17,
///     at: datetime!(2026-11-01 12:00 +02:00),
///     zone: ZoneId::new("zone-1")?,
///     account: AccountId::new("acct-42")?,
///     ip: "203.0.113.7".parse().unwrap(),
///     kind: IpEventKind::Assign,
/// };
/// let mut out = Vec::new();
/// write_events(&mut out, [&event])?;
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "{\"id\":17,\"type\":\"NET.IPASSIGN\",\"at\":\"2026-11-01T10:00:00Z\",\
///      \"zone\":\"zone-1\",\"account\":\"acct-42\",\"ip\":\"203.0.113.7\"}\n"
/// );
/// # Ok::<(), usage_model::Error>(())
/// ```
pub fn write_events<'a, W: Write>(
    mut writer: W,
    events: impl IntoIterator<Item = &'a IpEvent>,
) -> Result<(), Error> {
    let mut line = Vec::new();
    let mut number = 0;
    for event in events {
        number += 1;
        line.clear();
        format_event(&mut line, event, number)?;
        writer.write_all(&line).map_err(|source| Error::Io {
            line: number,
            source,
        })?;
    }
    writer.flush().map_err(|source| Error::Io {
        line: number.max(1),
        source,
    })
}

/// One line of the events file, keys in the order they are written.
#[derive(serde::Serialize)]
struct Line<'a> {
    id: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    at: &'a str,
    zone: &'a str,
    account: &'a str,
    ip: IpAddr,
}

/// Appends `event`, line `number` of the file, as one line, `\n` included.
fn format_event(out: &mut Vec<u8>, event: &IpEvent, number: usize) -> Result<(), Error> {
    let at = rfc3339::format_utc(event.at).ok_or(Error::UnwritableTimestamp {
        id: event.id,
        at: event.at,
    })?;
    let line = Line {
        id: event.id,
        kind: event.kind.cloudstack_type(),
        at: &at,
        zone: event.zone.as_str(),
        account: event.account.as_str(),
        // An IPv4-mapped IPv6 address is the IPv4 address (DESIGN §4).
        ip: event.ip.to_canonical(),
    };
    serde_json::to_writer(&mut *out, &line).map_err(|err| Error::Io {
        line: number,
        source: err.into(),
    })?;
    out.push(b'\n');
    Ok(())
}
