//! One line of an answer body (as text: bytes that are not UTF-8 were
//! replaced by U+FFFD), read with `nom` (DESIGN §5): a tagged row
//! `s,TAG,IP,BYTES` or `r,TAG,IP,BYTES`, the sentinel `end,COUNT`, or the
//! reason it is neither.

use std::net::IpAddr;
use std::str::FromStr;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_until};
use nom::character::complete::{digit1, u32, u64};
use nom::combinator::{all_consuming, value};
use nom::sequence::{preceded, terminated};
use nom::{IResult, Parser};
use usage_model::{QueryTag, Side};

/// Characters of a line kept in an error message.
pub(crate) const MAX_CONTENT_CHARS: usize = 200;

/// A line of an answer, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A tagged row; its address field is read by [`parse_ip`] where it is
    /// needed (a row of a request is first looked up by its text).
    Row {
        side: Side,
        tag: QueryTag,
        ip_text: &'a str,
        bytes: u64,
    },
    /// The sentinel `end,COUNT`.
    Sentinel { count: u64 },
}

/// The fields of a row: its side, the tag, the address field as written
/// and the byte count.
type RowFields<'a> = (Side, u32, &'a [u8], u64);

/// A tagged row, the whole line: `s` or `r`, the tag, the address field,
/// the byte count. The numbers are decimal digits only (no sign, no
/// space; leading zeros allowed, as the standard library reads them), read
/// in the same pass that checks them; a value past the type's range is
/// refused.
fn row(line: &[u8]) -> IResult<&[u8], RowFields<'_>> {
    all_consuming((
        alt((
            value(Side::Sent, tag("s,")),
            value(Side::Received, tag("r,")),
        )),
        terminated(u32, tag(",")),
        terminated(take_till(|b| b == b','), tag(",")),
        u64,
    ))
    .parse(line)
}

/// The sentinel, the whole line: `end,` and a `u64` row count.
fn sentinel(line: &[u8]) -> IResult<&[u8], u64> {
    all_consuming(preceded(tag("end,"), u64)).parse(line)
}

/// Parses one line (without its line ending) or says what is wrong with it.
pub(crate) fn parse_line(line: &str) -> Result<Line<'_>, String> {
    // The grammar runs over the bytes (a character at a time would decode
    // UTF-8 at every step); the address field lies between commas, so it is
    // the same span of the text. A refused line is explained field by
    // field.
    if let Ok((_, (side, tag, ip_field, bytes))) = row(line.as_bytes()) {
        return Ok(Line::Row {
            side,
            tag: QueryTag(tag),
            ip_text: span(line, ip_field),
            bytes,
        });
    }
    if let Ok((_, count)) = sentinel(line.as_bytes()) {
        return Ok(Line::Sentinel { count });
    }
    Err(refusal(line))
}

/// The address of a row's address field, canonical (an IPv4-mapped IPv6
/// address is its IPv4 address, DESIGN §4), as the standard library reads
/// it; or why it is not one.
///
/// Inlined: returned through memory, the address was read back before the
/// callee's writes had landed, a stall of a fifth of the answer loop
/// (`perf`, BENCHMARKS.md §2).
#[inline(always)]
pub(crate) fn parse_ip(text: &str) -> Result<IpAddr, String> {
    usage_model::read_ip(text)
        .map(|ip| ip.to_canonical())
        .ok_or_else(|| format!("bad ip address {:?}", printable(text)))
}

/// The dotted-quad path of [`parse_ip`], shared with the emulator.
#[cfg(test)]
pub(crate) use usage_model::read_dotted_quad as dotted_quad;

/// The text of `field`, a subslice of `line`'s bytes that starts and ends
/// at a comma or an end of the line (so on character boundaries).
fn span<'a>(line: &'a str, field: &[u8]) -> &'a str {
    let start = (field.as_ptr() as usize).saturating_sub(line.as_ptr() as usize);
    line.get(start..start + field.len()).unwrap_or_default()
}

/// Why [`row`] and [`sentinel`] both refuse `line`, field by field.
fn refusal(line: &str) -> String {
    if line.is_empty() {
        return "empty line".to_owned();
    }
    let fields: Vec<&str> = line.split(',').collect();
    match fields[0] {
        "end" if fields.len() != 2 => format!(
            "sentinel must be `end,COUNT`, found {} field(s)",
            fields.len()
        ),
        "end" => match decimal::<u64>(fields[1]) {
            Err(problem) => format!("sentinel count {}", problem.describe(fields[1])),
            Ok(_) => "unreadable sentinel".to_owned(),
        },
        "s" | "r" if fields.len() != 4 => format!(
            "expected 4 comma-separated fields (side,tag,ip,bytes), found {}",
            fields.len()
        ),
        "s" | "r" => {
            if let Err(problem) = decimal::<u32>(fields[1]) {
                format!("tag {}", problem.describe(fields[1]))
            } else if let Err(problem) = decimal::<u64>(fields[3]) {
                format!("byte count {}", problem.describe(fields[3]))
            } else {
                "unreadable row".to_owned()
            }
        }
        _ => unknown_kind(line),
    }
}

/// Why a line whose first field is not `s`, `r` or `end` is refused.
fn unknown_kind(line: &str) -> String {
    let kind = line.split(',').next().unwrap_or_default();
    format!(
        "unknown row kind {:?}: expected s, r or end",
        printable(kind)
    )
}

/// Why a field is not a non-negative decimal integer (what [`u32`] and
/// [`u64`] refuse, told apart).
enum DecimalProblem {
    Negative,
    NotInteger,
    TooLarge,
}

impl DecimalProblem {
    fn describe(&self, field: &str) -> String {
        let field = printable(field);
        match self {
            DecimalProblem::Negative => format!("{field:?} is negative"),
            DecimalProblem::NotInteger => {
                format!("{field:?} is not a non-negative decimal integer")
            }
            DecimalProblem::TooLarge => format!("{field:?} is too large"),
        }
    }
}

/// All of `input` as ASCII digits.
fn digits(input: &str) -> IResult<&str, &str> {
    all_consuming(digit1).parse(input)
}

/// A non-negative decimal integer: digits only, no sign, no space.
fn decimal<T: FromStr>(field: &str) -> Result<T, DecimalProblem> {
    match digits(field) {
        // Only digits: the parse fails only when the value is too large.
        Ok((_, digits)) => digits.parse().map_err(|_| DecimalProblem::TooLarge),
        Err(_)
            if field
                .strip_prefix('-')
                .is_some_and(|rest| digits(rest).is_ok()) =>
        {
            Err(DecimalProblem::Negative)
        }
        Err(_) => Err(DecimalProblem::NotInteger),
    }
}

/// Where the line at the start of `rest` ends: the position of its `\n`,
/// found by `nom`'s `take_until` over the bytes (a `memchr` scan).
pub(crate) fn line_end(rest: &str) -> Option<usize> {
    let found: IResult<&[u8], &[u8]> = take_until(&b"\n"[..]).parse(rest.as_bytes());
    found.ok().map(|(_, line)| line.len())
}

/// Whether the body is an HTML page (an error page from a proxy or a login
/// form) rather than text rows.
pub(crate) fn looks_like_html(body: &str) -> bool {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    body.trim_start_matches(|c: char| c.is_ascii_whitespace())
        .starts_with('<')
}

/// `text` for an error message, cut to [`MAX_CONTENT_CHARS`] characters.
pub(crate) fn printable(text: &str) -> String {
    match text.char_indices().nth(MAX_CONTENT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
