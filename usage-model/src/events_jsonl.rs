//! The events file: JSON Lines, one [`IpEvent`] per line (DESIGN §9).
//!
//! ```text
//! {"id":17,"type":"NET.IPASSIGN","at":"2026-11-01T10:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
//! ```

use std::fmt::Write as _;
use std::io::{BufRead, Read as _, Write};
use std::iter::FusedIterator;
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::json::{Scanner, SyntaxError, ValueKind, number_syntax_error};
use crate::rfc3339::{self, TimestampError};
use crate::{AccountId, Error, IpEvent, IpEventKind, ZoneId};

/// The UTF-8 byte order mark, accepted at the start of line 1 only.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Streams [`IpEvent`]s from the JSON Lines events format, one line at a time.
///
/// # Format
///
/// Each line holds one JSON object (RFC 8259), for example
///
/// ```text
/// {"id":17,"type":"NET.IPASSIGN","at":"2026-11-01T10:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
/// ```
///
/// - `id`: an unsigned integer up to `u64::MAX`, written as a plain JSON
///   integer (no sign, fraction, exponent or leading zero);
/// - `type`: `"NET.IPASSIGN"` or `"NET.IPRELEASE"`;
/// - `at`: an RFC 3339 timestamp (`T` between date and time) with `Z` or any
///   `±HH:MM` offset, converted to UTC; its UTC year must lie in 0000–9999;
/// - `zone`, `account`: non-empty strings without control characters
///   ([`ZoneId`], [`AccountId`]);
/// - `ip`: an IPv4 or IPv6 address.
///
/// Keys may come in any order, with JSON whitespace around every token; each
/// key may appear once. Strings take every JSON escape, including `\uXXXX`
/// surrogate pairs. Other keys are allowed and ignored, provided their values
/// are valid JSON (arrays and objects nest at most 64 levels). Lines that are
/// empty or hold only whitespace are skipped; lines may end in `\n` or
/// `\r\n`. A UTF-8 byte order mark is accepted at the start of line 1 only.
///
/// # Errors
///
/// Each item is an event or an error naming the 1-based line number:
/// [`Error::EventLine`] for a line that is not a valid event (with the field
/// when one field is at fault, and the offending value quoted) — reading then
/// goes on with the next line; [`Error::Io`] when reading fails, or
/// [`Error::EventLine`] for a line longer than
/// [`max_line_length`](EventReader::max_line_length) — after which the
/// iterator ends.
///
/// # Example
///
/// ```
/// use usage_model::{EventReader, IpEventKind};
///
/// let input = br#"{"id":1,"type":"NET.IPASSIGN","at":"2026-11-01T12:00:00+02:00","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
///
/// {"id":2,"type":"NET.IPSWAP","at":"2026-11-01T11:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
/// "#;
/// let mut events = EventReader::new(&input[..]);
/// let first = events.next().unwrap()?;
/// assert_eq!(first.kind, IpEventKind::Assign);
/// assert_eq!(first.at, time::macros::datetime!(2026-11-01 10:00 UTC));
///
/// let err = events.next().unwrap().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"line 3: field "type": unknown event type "NET.IPSWAP" (expected "NET.IPASSIGN" or "NET.IPRELEASE")"#
/// );
/// assert!(events.next().is_none());
/// # Ok::<(), usage_model::Error>(())
/// ```
#[derive(Debug)]
pub struct EventReader<R> {
    reader: R,
    buf: Vec<u8>,
    line: usize,
    max_line_length: usize,
    finished: bool,
}

/// The longest line an [`EventReader`] accepts by default: 1 MiB.
const DEFAULT_MAX_LINE_LENGTH: usize = 1 << 20;

impl<R: BufRead> EventReader<R> {
    /// Reads events from `reader`, line by line, reusing one line buffer.
    pub fn new(reader: R) -> EventReader<R> {
        EventReader {
            reader,
            buf: Vec::new(),
            line: 0,
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            finished: false,
        }
    }

    /// Refuses lines longer than `bytes` (not counting the final `\n`), so
    /// that one endless line cannot exhaust memory.
    ///
    /// By default, 1 MiB (1,048,576 bytes).
    pub fn max_line_length(mut self, bytes: usize) -> EventReader<R> {
        self.max_line_length = bytes;
        self
    }

    /// How many lines have been read so far (blank lines included).
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// The underlying reader, positioned after the last line read.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Reads the next line into `self.buf`, without its `\n`.
    /// `Ok(false)` at the end of the input.
    fn read_line(&mut self) -> Result<bool, Error> {
        self.buf.clear();
        let number = self.line + 1;
        let limit = u64::try_from(self.max_line_length)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| Error::Io {
                line: number,
                source,
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.line = number;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > self.max_line_length {
            return Err(Error::EventLine {
                line: number,
                field: None,
                reason: format!("line is longer than {} bytes", self.max_line_length),
            });
        }
        Ok(true)
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<IpEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            match self.read_line() {
                Ok(true) => {}
                Ok(false) => {
                    self.finished = true;
                    break;
                }
                Err(err) => {
                    self.finished = true;
                    return Some(Err(err));
                }
            }
            let line = self.line;
            let mut bytes = &self.buf[..];
            if line == 1 {
                bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(err) => {
                    return Some(Err(Error::EventLine {
                        line,
                        field: None,
                        reason: format!("invalid UTF-8 at byte {}", err.valid_up_to() + 1),
                    }));
                }
            };
            if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
                continue;
            }
            return Some(parse_event(text).map_err(|err| Error::EventLine {
                line,
                field: err.field,
                reason: err.reason,
            }));
        }
        None
    }
}

impl<R: BufRead> FusedIterator for EventReader<R> {}

/// Reads every event of an events file, in file order.
///
/// The format is described on [`EventReader`]. Nothing partial is returned:
/// either every line is a valid event (or blank), or the result is the first
/// error.
///
/// # Errors
///
/// Returns the first [`Error::EventLine`] (a line that is not a valid event,
/// naming its number, the field and the offending value) or [`Error::Io`]
/// (reading failed).
///
/// # Example
///
/// ```
/// use usage_model::{read_events, IpEventKind};
///
/// let input = "\
/// {\"id\":1,\"type\":\"NET.IPASSIGN\",\"at\":\"2026-11-01T10:00:00Z\",\"zone\":\"zone-1\",\"account\":\"acct-42\",\"ip\":\"2001:db8::7\"}
/// {\"id\":2,\"type\":\"NET.IPRELEASE\",\"at\":\"2026-11-01T12:30:00+01:00\",\"zone\":\"zone-1\",\"account\":\"acct-42\",\"ip\":\"2001:db8::7\"}
/// ";
/// let events = read_events(input.as_bytes())?;
/// assert_eq!(events.len(), 2);
/// assert_eq!(events[1].kind, IpEventKind::Release);
/// assert_eq!(events[1].at, time::macros::datetime!(2026-11-01 11:30 UTC));
///
/// let bad = input.replace("2026-11-01T10:00:00Z", "2026-13-01T00:00:00Z");
/// let err = read_events(bad.as_bytes()).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"line 1: field "at": invalid RFC 3339 timestamp "2026-13-01T00:00:00Z""#
/// );
/// # Ok::<(), usage_model::Error>(())
/// ```
pub fn read_events<R: BufRead>(reader: R) -> Result<Vec<IpEvent>, Error> {
    EventReader::new(reader).collect()
}

/// Writes events in the JSON Lines events format, one line each, in the
/// order given, then flushes `writer`.
///
/// Keys come in the order `id`, `type`, `at`, `zone`, `account`, `ip`, with no
/// whitespace; `at` is RFC 3339 in UTC with `Z` (fractional seconds only when
/// there are any); strings are JSON-escaped. [`read_events`] reads the output
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
    let mut line = String::new();
    let mut number = 0;
    for event in events {
        number += 1;
        line.clear();
        format_event(&mut line, event)?;
        writer
            .write_all(line.as_bytes())
            .map_err(|source| Error::Io {
                line: number,
                source,
            })?;
    }
    writer.flush().map_err(|source| Error::Io {
        line: number.max(1),
        source,
    })
}

/// Appends `event` as one line, `\n` included.
fn format_event(out: &mut String, event: &IpEvent) -> Result<(), Error> {
    let at = rfc3339::format_utc(event.at).ok_or(Error::UnwritableTimestamp {
        id: event.id,
        at: event.at,
    })?;
    // Writing to a `String` cannot fail.
    let _ = write!(
        out,
        "{{\"id\":{},\"type\":\"{}\",\"at\":\"{at}\",\"zone\":",
        event.id,
        event.kind.cloudstack_type()
    );
    push_json_string(out, event.zone.as_str());
    out.push_str(",\"account\":");
    push_json_string(out, event.account.as_str());
    let _ = writeln!(out, ",\"ip\":\"{}\"}}", event.ip.to_canonical());
    Ok(())
}

/// Appends `s` as a JSON string: quoted, with `"`, `\` and control
/// characters escaped.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What is wrong with one line, before the line number is known.
#[derive(Debug)]
struct LineError {
    field: Option<&'static str>,
    reason: String,
}

impl LineError {
    fn line(reason: impl Into<String>) -> LineError {
        LineError {
            field: None,
            reason: reason.into(),
        }
    }

    fn field(field: &'static str, reason: impl Into<String>) -> LineError {
        LineError {
            field: Some(field),
            reason: reason.into(),
        }
    }
}

/// The 1-based column of byte position `pos` in `text`, in characters.
fn column(text: &str, pos: usize) -> usize {
    text.get(..pos).map_or(pos, |head| head.chars().count()) + 1
}

/// A syntax error as a line error, with its column.
fn syntax(text: &str, field: Option<&'static str>, err: SyntaxError) -> LineError {
    LineError {
        field,
        reason: format!("{} at column {}", err.reason, column(text, err.pos)),
    }
}

/// The keys of an event, in the order they are written and checked.
const FIELDS: [&str; 6] = ["id", "type", "at", "zone", "account", "ip"];

/// The fields of an event seen so far on one line.
#[derive(Default)]
struct Fields {
    id: Option<u64>,
    kind: Option<IpEventKind>,
    at: Option<OffsetDateTime>,
    zone: Option<ZoneId>,
    account: Option<AccountId>,
    ip: Option<IpAddr>,
}

impl Fields {
    fn is_set(&self, field: &str) -> bool {
        match field {
            "id" => self.id.is_some(),
            "type" => self.kind.is_some(),
            "at" => self.at.is_some(),
            "zone" => self.zone.is_some(),
            "account" => self.account.is_some(),
            _ => self.ip.is_some(),
        }
    }
}

/// Parses one non-blank line (BOM and line ending removed) as an event.
fn parse_event(text: &str) -> Result<IpEvent, LineError> {
    let mut sc = Scanner::new(text);
    sc.skip_whitespace();
    if text[sc.pos()..].starts_with('\u{feff}') {
        return Err(LineError::line(
            "a byte order mark is only allowed at the start of line 1",
        ));
    }
    match sc.peek().and_then(ValueKind::of) {
        Some(ValueKind::Object) => {}
        Some(kind) => {
            return Err(LineError::line(format!(
                "expected a JSON object, found {}",
                kind.with_article()
            )));
        }
        None => {
            return Err(syntax(
                text,
                None,
                sc.error(format!("expected a JSON object, found {}", sc.found())),
            ));
        }
    }
    let mut fields = Fields::default();
    let mut other_keys: Vec<String> = Vec::new();
    sc.expect(b'{', "'{'").map_err(|e| syntax(text, None, e))?;
    sc.skip_whitespace();
    if sc.peek() == Some(b'}') {
        sc.expect(b'}', "'}'").map_err(|e| syntax(text, None, e))?;
    } else {
        loop {
            if sc.peek() != Some(b'"') {
                let err = sc.error(format!("expected a key string, found {}", sc.found()));
                return Err(syntax(text, None, err));
            }
            let key = sc.string().map_err(|e| syntax(text, None, e))?;
            sc.skip_whitespace();
            sc.expect(b':', "':' after a key")
                .map_err(|e| syntax(text, None, e))?;
            sc.skip_whitespace();
            match FIELDS.iter().find(|&&f| f == key) {
                Some(&field) => {
                    if fields.is_set(field) {
                        return Err(LineError::field(field, "duplicate key"));
                    }
                    read_field(&mut sc, text, field, &mut fields)?;
                }
                None => {
                    if other_keys.iter().any(|k| *k == key) {
                        return Err(LineError::line(format!("duplicate key {key:?}")));
                    }
                    other_keys.push(key.into_owned());
                    sc.skip_value(0).map_err(|e| syntax(text, None, e))?;
                }
            }
            sc.skip_whitespace();
            match sc.peek() {
                Some(b',') => {
                    sc.expect(b',', "','").map_err(|e| syntax(text, None, e))?;
                    sc.skip_whitespace();
                }
                Some(b'}') => {
                    sc.expect(b'}', "'}'").map_err(|e| syntax(text, None, e))?;
                    break;
                }
                _ => {
                    let err = sc.error(format!(
                        "expected ',' or '}}' after a value, found {}",
                        sc.found()
                    ));
                    return Err(syntax(text, None, err));
                }
            }
        }
    }
    sc.skip_whitespace();
    if !sc.rest().is_empty() {
        let shown: String = sc.rest().chars().take(24).collect();
        let err = sc.error(format!("unexpected text {shown:?} after the object"));
        return Err(syntax(text, None, err));
    }
    let missing = |field: &'static str| LineError::field(field, "required key is missing");
    Ok(IpEvent {
        id: fields.id.ok_or_else(|| missing("id"))?,
        kind: fields.kind.ok_or_else(|| missing("type"))?,
        at: fields.at.ok_or_else(|| missing("at"))?,
        zone: fields.zone.ok_or_else(|| missing("zone"))?,
        account: fields.account.ok_or_else(|| missing("account"))?,
        ip: fields.ip.ok_or_else(|| missing("ip"))?,
    })
}

/// Reads the value of `field` (one of [`FIELDS`]) into `fields`.
fn read_field(
    sc: &mut Scanner<'_>,
    text: &str,
    field: &'static str,
    fields: &mut Fields,
) -> Result<(), LineError> {
    if field == "id" {
        fields.id = Some(read_id(sc, text)?);
        return Ok(());
    }
    let value = read_string(sc, text, field)?;
    match field {
        "type" => {
            let kind = IpEventKind::from_cloudstack_type(&value).ok_or_else(|| {
                LineError::field(
                    field,
                    format!(
                        "unknown event type {value:?} (expected \"NET.IPASSIGN\" or \"NET.IPRELEASE\")"
                    ),
                )
            })?;
            fields.kind = Some(kind);
        }
        "at" => {
            let at = rfc3339::parse_utc(&value).map_err(|err| {
                LineError::field(
                    field,
                    match err {
                        TimestampError::Invalid => {
                            format!("invalid RFC 3339 timestamp {value:?}")
                        }
                        TimestampError::OutOfRange => format!(
                            "timestamp {value:?} is out of range (its UTC year must be 0000 to 9999)"
                        ),
                    },
                )
            })?;
            fields.at = Some(at);
        }
        "zone" => {
            let zone = ZoneId::new(value).map_err(|e| LineError::field(field, e.to_string()))?;
            fields.zone = Some(zone);
        }
        "account" => {
            let account =
                AccountId::new(value).map_err(|e| LineError::field(field, e.to_string()))?;
            fields.account = Some(account);
        }
        _ => {
            let ip = value
                .parse::<IpAddr>()
                .map_err(|_| LineError::field(field, format!("invalid IP address {value:?}")))?;
            // An IPv4-mapped IPv6 address is the IPv4 address (DESIGN §4).
            fields.ip = Some(ip.to_canonical());
        }
    }
    Ok(())
}

/// Reads a string value for `field`, refusing any other kind of value.
fn read_string(sc: &mut Scanner<'_>, text: &str, field: &'static str) -> Result<String, LineError> {
    if sc.peek() == Some(b'"') {
        return sc
            .string()
            .map(|s| s.into_owned())
            .map_err(|e| syntax(text, Some(field), e));
    }
    Err(wrong_type(sc, text, field, "a string"))
}

/// Reads the `id` value: a JSON integer from 0 to `u64::MAX`.
fn read_id(sc: &mut Scanner<'_>, text: &str) -> Result<u64, LineError> {
    const FIELD: &str = "id";
    if sc.peek().and_then(ValueKind::of) != Some(ValueKind::Number) {
        return Err(wrong_type(sc, text, FIELD, "an unsigned integer"));
    }
    let start = sc.pos();
    let token = sc.number_token();
    if let Some(why) = number_syntax_error(token) {
        let err = SyntaxError {
            pos: start,
            reason: format!("invalid number {token:?}: {why}"),
        };
        return Err(syntax(text, Some(FIELD), err));
    }
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineError::field(
            FIELD,
            format!("expected an unsigned integer, found {token:?}"),
        ));
    }
    token.parse::<u64>().map_err(|_| {
        LineError::field(
            FIELD,
            format!("{token:?} is larger than the largest id {}", u64::MAX),
        )
    })
}

/// The error for a value of the wrong kind, quoting it when it is a scalar.
fn wrong_type(sc: &mut Scanner<'_>, text: &str, field: &'static str, expected: &str) -> LineError {
    let start = sc.pos();
    let found = match sc.peek().and_then(ValueKind::of) {
        Some(ValueKind::String) => match sc.string() {
            Ok(s) => format!("the string {s:?}"),
            Err(e) => return syntax(text, Some(field), e),
        },
        Some(ValueKind::Number) => match sc.number() {
            Ok(n) => format!("the number {n}"),
            Err(e) => return syntax(text, Some(field), e),
        },
        Some(ValueKind::Boolean | ValueKind::Null) => match sc.literal() {
            Ok(word) => word.to_owned(),
            Err(e) => return syntax(text, Some(field), e),
        },
        Some(kind @ (ValueKind::Object | ValueKind::Array)) => kind.with_article().to_owned(),
        None => {
            let err = sc.error(format!("expected a value, found {}", sc.found()));
            return syntax(text, Some(field), err);
        }
    };
    LineError::field(
        field,
        format!(
            "expected {expected}, found {found} at column {}",
            column(text, start)
        ),
    )
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const GOOD: &str = r#"{"id":17,"type":"NET.IPASSIGN","at":"2026-11-01T10:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}"#;

    fn event() -> IpEvent {
        IpEvent {
            id: 17,
            at: datetime!(2026-11-01 10:00 UTC),
            zone: ZoneId::new("zone-1").unwrap(),
            account: AccountId::new("acct-42").unwrap(),
            ip: "203.0.113.7".parse().unwrap(),
            kind: IpEventKind::Assign,
        }
    }

    fn reason(line: &str) -> (Option<&'static str>, String) {
        let err = parse_event(line).unwrap_err();
        (err.field, err.reason)
    }

    #[test]
    fn parses_the_design_example() {
        assert_eq!(parse_event(GOOD).unwrap(), event());
    }

    #[test]
    fn writes_the_design_example() {
        let mut out = String::new();
        format_event(&mut out, &event()).unwrap();
        assert_eq!(out, format!("{GOOD}\n"));
    }

    #[test]
    fn keys_in_any_order_with_whitespace_and_other_keys() {
        let line = " \t{ \"ip\" : \"203.0.113.7\" , \"account\":\"acct-42\",\"extra\":[1,{\"x\":null}],\
                    \"zone\":\"zone-1\", \"at\":\"2026-11-01T10:00:00Z\",\"type\":\"NET.IPASSIGN\",\
                    \"flag\":true,\"id\":17, \"n\": -1.5e3 }\r";
        assert_eq!(parse_event(line).unwrap(), event());
    }

    #[test]
    fn escaped_keys_and_values_are_decoded() {
        let line = GOOD
            .replace(r#""zone":"zone-1""#, r#""\u007aone":"zone\u002d1""#)
            .replace("acct-42", r#"a\"c\\t\/é😀"#);
        let parsed = parse_event(&line).unwrap();
        assert_eq!(parsed.zone.as_str(), "zone-1");
        assert_eq!(parsed.account.as_str(), "a\"c\\t/é😀");
    }

    #[test]
    fn wrong_kinds_name_the_value() {
        assert_eq!(
            reason(&GOOD.replace("17", "\"17\"")),
            (
                Some("id"),
                "expected an unsigned integer, found the string \"17\" at column 7".into()
            )
        );
        assert_eq!(
            reason(&GOOD.replace("\"zone-1\"", "[\"zone-1\"]")),
            (
                Some("zone"),
                "expected a string, found an array at column 67".into()
            )
        );
        assert_eq!(
            reason(&GOOD.replace("\"acct-42\"", "null")),
            (
                Some("account"),
                "expected a string, found null at column 86".into()
            )
        );
        assert_eq!(
            reason(&GOOD.replace("\"203.0.113.7\"", "2030113")),
            (
                Some("ip"),
                "expected a string, found the number 2030113 at column 101".into()
            )
        );
    }

    #[test]
    fn id_must_be_a_plain_u64() {
        let id = |v: &str| reason(&GOOD.replace("17", v));
        assert_eq!(
            id("-1"),
            (
                Some("id"),
                r#"expected an unsigned integer, found "-1""#.into()
            )
        );
        assert_eq!(
            id("1.0"),
            (
                Some("id"),
                r#"expected an unsigned integer, found "1.0""#.into()
            )
        );
        assert_eq!(
            id("1e3"),
            (
                Some("id"),
                r#"expected an unsigned integer, found "1e3""#.into()
            )
        );
        assert_eq!(
            id("017"),
            (
                Some("id"),
                r#"invalid number "017": leading zeros are not allowed at column 7"#.into()
            )
        );
        assert_eq!(
            id("18446744073709551616"),
            (
                Some("id"),
                r#""18446744073709551616" is larger than the largest id 18446744073709551615"#
                    .into()
            )
        );
        let max = parse_event(&GOOD.replace("17", "18446744073709551615")).unwrap();
        assert_eq!(max.id, u64::MAX);
        assert_eq!(parse_event(&GOOD.replace("17", "0")).unwrap().id, 0);
    }

    #[test]
    fn structure_errors_have_no_field() {
        assert_eq!(
            reason("[1]"),
            (None, "expected a JSON object, found an array".into())
        );
        assert_eq!(
            reason("x"),
            (None, "expected a JSON object, found 'x' at column 1".into())
        );
        assert_eq!(
            reason(&format!("{GOOD} x")),
            (
                None,
                r#"unexpected text "x" after the object at column 116"#.into()
            )
        );
        assert_eq!(
            reason("{\"id\":17,}"),
            (None, "expected a key string, found '}' at column 10".into())
        );
        assert_eq!(
            reason("{\"id\":17"),
            (
                None,
                "expected ',' or '}' after a value, found end of line at column 9".into()
            )
        );
        assert_eq!(
            reason("{\"id\" 17}"),
            (
                None,
                "expected ':' after a key, found '1' at column 7".into()
            )
        );
        assert_eq!(
            reason("{\"x\":1,\"x\":2}"),
            (None, r#"duplicate key "x""#.into())
        );
        assert_eq!(
            reason("\u{feff}{}"),
            (
                None,
                "a byte order mark is only allowed at the start of line 1".into()
            )
        );
    }

    #[test]
    fn missing_keys_are_named_in_order() {
        assert_eq!(reason("{}"), (Some("id"), "required key is missing".into()));
        let without_ip = GOOD.replace(r#","ip":"203.0.113.7""#, "");
        assert_eq!(
            reason(&without_ip),
            (Some("ip"), "required key is missing".into())
        );
    }

    #[test]
    fn columns_count_characters() {
        let line = r#"{"x":"ééé","id":01}"#;
        assert_eq!(
            reason(line),
            (
                Some("id"),
                r#"invalid number "01": leading zeros are not allowed at column 17"#.into()
            )
        );
    }

    #[test]
    fn default_line_limit_is_one_mebibyte() {
        let padded = format!("{GOOD}{}", " ".repeat(DEFAULT_MAX_LINE_LENGTH - GOOD.len()));
        let events: Result<Vec<_>, _> = EventReader::new(padded.as_bytes()).collect();
        assert_eq!(events.unwrap(), [event()]);
        let over = format!("{padded} \n{GOOD}\n");
        let mut reader = EventReader::new(over.as_bytes());
        let err = reader.next().unwrap().unwrap_err();
        assert_eq!(err.to_string(), "line 1: line is longer than 1048576 bytes");
        assert!(reader.next().is_none());
    }

    #[test]
    fn escapes_control_characters_when_writing() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\n\u{1}\u{7f}é");
        assert_eq!(out, r#""a\"b\\c\n\u0001é""#.replace('é', "\u{7f}é"));
    }
}
