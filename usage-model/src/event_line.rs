//! One line of the events file as an [`IpEvent`].
//!
//! `serde_json` reads the line as a JSON object, keeping the values of the
//! six event keys as raw JSON text borrowed from the line and checking (then
//! dropping) every other value. Each of the six values is then checked here,
//! so that an error names the field and quotes the offending value as it was
//! written.

use std::cell::Cell;
use std::fmt;
use std::net::IpAddr;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::rfc3339::{self, TimestampError};
use crate::{AccountId, IpEvent, IpEventKind, ZoneId};

/// What is wrong with one line, before the line number is known.
#[derive(Debug)]
pub(crate) struct LineError {
    /// The field at fault, or `None` when the line as a whole is.
    pub(crate) field: Option<&'static str>,
    /// What is wrong, with the offending value quoted.
    pub(crate) reason: String,
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

/// The keys of an event, in the order they are written and checked.
const FIELDS: [&str; 6] = ["id", "type", "at", "zone", "account", "ip"];

/// Parses one non-blank line (byte order mark and line ending removed) as an
/// event.
///
/// A line that is not one JSON object is refused as a whole; then a key that
/// appears twice; then the first field at fault, in the order of [`FIELDS`].
pub(crate) fn parse_event(text: &str) -> Result<IpEvent, LineError> {
    let start = text.len() - text.trim_start_matches([' ', '\t', '\r']).len();
    let rest = &text[start..];
    if rest.starts_with('\u{feff}') {
        return Err(LineError::line(
            "a byte order mark is only allowed at the start of line 1",
        ));
    }
    match rest.chars().next() {
        Some('{') => {}
        Some(c) => {
            let found = match value_kind(c) {
                Some(kind) => kind.to_owned(),
                None => format!("{c:?} at column {}", column(text, start)),
            };
            return Err(LineError::line(format!(
                "expected a JSON object, found {found}"
            )));
        }
        None => return Err(LineError::line("expected a JSON object, found nothing")),
    }

    let raw = RawFields::parse(text)?;
    if let Some(duplicate) = raw.duplicate {
        return Err(match duplicate {
            Duplicate::Field(field) => LineError::field(field, "duplicate key"),
            Duplicate::Other(key) => LineError::line(format!("duplicate key {key:?}")),
        });
    }
    let [id, kind, at, zone, account, ip] = raw.values;
    let id = parse_id(text, present("id", id)?)?;
    let kind = parse_kind(text, present("type", kind)?)?;
    let at = parse_at(text, present("at", at)?)?;
    let zone = string_value(text, "zone", present("zone", zone)?)?;
    let zone = ZoneId::new(zone).map_err(|e| LineError::field("zone", e.to_string()))?;
    let account = string_value(text, "account", present("account", account)?)?;
    let account =
        AccountId::new(account).map_err(|e| LineError::field("account", e.to_string()))?;
    let ip = parse_ip(text, present("ip", ip)?)?;
    Ok(IpEvent {
        id,
        at,
        zone,
        account,
        ip,
        kind,
    })
}

/// The value of `field`, or the error that it is missing.
fn present<'a>(field: &'static str, raw: Option<&'a RawValue>) -> Result<&'a RawValue, LineError> {
    raw.ok_or_else(|| LineError::field(field, "required key is missing"))
}

/// `id`: a JSON integer from 0 to `u64::MAX`, written with digits only.
fn parse_id(text: &str, raw: &RawValue) -> Result<u64, LineError> {
    const FIELD: &str = "id";
    let json = raw.get();
    if !json.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(wrong_type(text, FIELD, raw, "an unsigned integer"));
    }
    // `serde_json` has checked the number's grammar (no leading zero, …).
    if !json.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineError::field(
            FIELD,
            format!("expected an unsigned integer, found {json:?}"),
        ));
    }
    json.parse::<u64>().map_err(|_| {
        LineError::field(
            FIELD,
            format!("{json:?} is larger than the largest id {}", u64::MAX),
        )
    })
}

/// `type`: `"NET.IPASSIGN"` or `"NET.IPRELEASE"`.
fn parse_kind(text: &str, raw: &RawValue) -> Result<IpEventKind, LineError> {
    const FIELD: &str = "type";
    let value = string_value(text, FIELD, raw)?;
    IpEventKind::from_cloudstack_type(&value).ok_or_else(|| {
        LineError::field(
            FIELD,
            format!(
                "unknown event type {value:?} (expected \"NET.IPASSIGN\" or \"NET.IPRELEASE\")"
            ),
        )
    })
}

/// `at`: an RFC 3339 timestamp with any offset, converted to UTC.
fn parse_at(text: &str, raw: &RawValue) -> Result<time::OffsetDateTime, LineError> {
    const FIELD: &str = "at";
    let value = string_value(text, FIELD, raw)?;
    rfc3339::parse_utc(&value).map_err(|err| {
        LineError::field(
            FIELD,
            match err {
                TimestampError::Invalid => format!("invalid RFC 3339 timestamp {value:?}"),
                TimestampError::OutOfRange => format!(
                    "timestamp {value:?} is out of range (its UTC year must be 0000 to 9999)"
                ),
            },
        )
    })
}

/// `ip`: an IPv4 or IPv6 address; an IPv4-mapped IPv6 address is the IPv4
/// address (DESIGN §4).
fn parse_ip(text: &str, raw: &RawValue) -> Result<IpAddr, LineError> {
    const FIELD: &str = "ip";
    let value = string_value(text, FIELD, raw)?;
    let ip = value
        .parse::<IpAddr>()
        .map_err(|_| LineError::field(FIELD, format!("invalid IP address {value:?}")))?;
    Ok(ip.to_canonical())
}

/// The decoded string that `raw` holds, refusing any other kind of value.
fn string_value(text: &str, field: &'static str, raw: &RawValue) -> Result<String, LineError> {
    if !raw.get().starts_with('"') {
        return Err(wrong_type(text, field, raw, "a string"));
    }
    decode_string(text, field, raw)
}

/// Decodes the JSON string `raw` (escapes included).
fn decode_string(text: &str, field: &'static str, raw: &RawValue) -> Result<String, LineError> {
    serde_json::from_str(raw.get())
        .map_err(|err| json_error(text, Some(field), offset_in(text, raw.get()), &err))
}

/// The error for a value of the wrong kind, quoting it when it is a scalar.
fn wrong_type(text: &str, field: &'static str, raw: &RawValue, expected: &str) -> LineError {
    let json = raw.get();
    let found = match json.chars().next().and_then(value_kind) {
        Some("a string") => match decode_string(text, field, raw) {
            Ok(s) => format!("the string {s:?}"),
            Err(err) => return err,
        },
        Some("a number") => format!("the number {json}"),
        Some(kind @ ("an object" | "an array")) => kind.to_owned(),
        // `true`, `false` or `null`, as written.
        _ => json.to_owned(),
    };
    LineError::field(
        field,
        format!(
            "expected {expected}, found {found} at column {}",
            column(text, offset_in(text, json))
        ),
    )
}

/// The kind of JSON value that starts with `c`, with its article, or `None`
/// when no JSON value starts with it.
fn value_kind(c: char) -> Option<&'static str> {
    match c {
        '"' => Some("a string"),
        '-' | '0'..='9' => Some("a number"),
        't' | 'f' => Some("a boolean"),
        'n' => Some("null"),
        '{' => Some("an object"),
        '[' => Some("an array"),
        _ => None,
    }
}

/// The 1-based column of byte position `pos` in `text`, in characters.
fn column(text: &str, pos: usize) -> usize {
    text.get(..pos).map_or(pos, |head| head.chars().count()) + 1
}

/// The byte position of `part`, a slice of `text`, in `text`.
fn offset_in(text: &str, part: &str) -> usize {
    part.as_ptr().addr().saturating_sub(text.as_ptr().addr())
}

/// A `serde_json` error found at byte position `base` of `text` or after it,
/// with its position given as a column of the line.
fn json_error(
    text: &str,
    field: Option<&'static str>,
    base: usize,
    err: &serde_json::Error,
) -> LineError {
    let message = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    let reason = message.strip_suffix(&position).unwrap_or(&message);
    // `serde_json` counts columns in bytes, from 1.
    let pos = base + err.column().saturating_sub(1);
    LineError {
        field,
        reason: format!("{reason} at column {}", column(text, pos)),
    }
}

/// The raw values of the six event keys on one line, borrowed from it.
struct RawFields<'a> {
    /// In the order of [`FIELDS`].
    values: [Option<&'a RawValue>; 6],
    /// The first key found twice, if any.
    duplicate: Option<Duplicate>,
}

/// A key found twice on one line.
enum Duplicate {
    /// One of [`FIELDS`].
    Field(&'static str),
    /// Any other key.
    Other(String),
}

impl<'a> RawFields<'a> {
    /// Reads `text`, which starts (after whitespace) with `{`, as one JSON
    /// object and nothing after it.
    fn parse(text: &'a str) -> Result<RawFields<'a>, LineError> {
        let reading = Cell::new(None);
        let mut de = serde_json::Deserializer::from_str(text);
        let fields = (&mut de)
            .deserialize_map(LineVisitor { reading: &reading })
            .map_err(|err| json_error(text, reading.get(), 0, &err))?;
        if let Err(err) = de.end() {
            // Only trailing text fails here; `serde_json` points at its first
            // character.
            let at = err.column().saturating_sub(1);
            let shown: String = text
                .get(at..)
                .unwrap_or_default()
                .chars()
                .take(24)
                .collect();
            return Err(LineError::line(format!(
                "unexpected text {shown:?} after the object at column {}",
                column(text, at)
            )));
        }
        Ok(fields)
    }
}

/// Collects the raw values of one JSON object's event keys.
struct LineVisitor<'c> {
    /// The event key whose value is being read, so that a syntax error inside
    /// it names the field.
    reading: &'c Cell<Option<&'static str>>,
}

impl<'de> Visitor<'de> for LineVisitor<'_> {
    type Value = RawFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFields<'de>, A::Error> {
        let mut fields = RawFields {
            values: [None; 6],
            duplicate: None,
        };
        let mut other_keys: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match FIELDS.iter().position(|&field| field == key) {
                Some(index) => {
                    let field = FIELDS[index];
                    let value = map.next_value_seed(FieldValue {
                        field,
                        reading: self.reading,
                    })?;
                    if fields.values[index].is_some() {
                        fields.duplicate.get_or_insert(Duplicate::Field(field));
                    } else {
                        fields.values[index] = Some(value);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    if other_keys.contains(&key) {
                        fields.duplicate.get_or_insert(Duplicate::Other(key));
                    } else {
                        other_keys.push(key);
                    }
                }
            }
        }
        Ok(fields)
    }
}

/// Reads the value of an event key as raw JSON text, noting the key while
/// the value is read.
struct FieldValue<'c> {
    field: &'static str,
    reading: &'c Cell<Option<&'static str>>,
}

impl<'de> DeserializeSeed<'de> for FieldValue<'_> {
    type Value = &'de RawValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<&'de RawValue, D::Error> {
        self.reading.set(Some(self.field));
        let raw = <&RawValue>::deserialize(deserializer)?;
        self.reading.set(None);
        Ok(raw)
    }
}
