//! The two TS script shapes the emulator understands, and their answers.
//!
//! 1. The client's script (SCRIPT-CONTRACT): `var n = 0; var q;`, then any
//!    number of `q = Query.topN(...); q.run(function(row, table) { if (row[0])
//!    { println("s,TAG," + row[0] + "," + row[1]); n++; } });` pairs, then
//!    `println("end," + n);`.
//! 2. CloudStack's script (`TrafficSentinelResource.getScript`): a topN over
//!    `ipsource,bytes` into `totalsSent`, a topN over `ipdestination,bytes`
//!    into `totalsRcvd`, then `for (var addr in totalsSent)` printing
//!    `addr,TS,TR`.
//!
//! Any amount of whitespace (including none, where JavaScript allows it) may
//! separate tokens. Anything else is refused with the line and column of the
//! first token that was not understood.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use nom::bytes::complete::{tag, take_while_m_n, take_while1};
use nom::character::complete::multispace1;
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};
use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

use crate::error::{Error, shorten};
use usage_model::{Side, is_ts_zone_char};

use crate::history::{FlowHistory, ZoneFilter};

/// The script Apache CloudStack's Traffic Sentinel integration sends
/// (`TrafficSentinelResource.getScript`), for comparisons with it: one line
/// of JavaScript with the spacing its Java string building leaves, a topN of
/// `ipsource,bytes` into `totalsSent` and one of `ipdestination,bytes` into
/// `totalsRcvd` (both `N = 100000`, CloudStack's cap), then a loop printing
/// `addr,SENT,RECEIVED` for each address that *sent* something.
///
/// The ` & … = ZONES` and ` & … != ZONES` parts are left out when their list
/// is empty; the interval `[start, end)` is written as `yyyyMMdd HH:mm:ss` in
/// `server_utc_offset`, as the server reads it.
///
/// # Example
///
/// ```
/// use usage_model::Grid;
/// use time::{Duration, UtcOffset, macros::datetime};
/// use traffic_sentinel_emulator::{Flow, FlowHistory, answer_script, cloudstack_script};
///
/// let (sender, receiver) = ("203.0.113.7".parse().unwrap(), "203.0.113.8".parse().unwrap());
/// let flow = Flow {
///     time: datetime!(2026-11-01 10:15 UTC),
///     ipsource: sender,
///     ipdestination: receiver,
///     sourcezone: "EXTERNAL".into(),
///     destinationzone: "EXTERNAL".into(),
///     bytes: 1500,
/// };
/// let history = FlowHistory::new(Grid::MINUTELY, [flow]).unwrap();
/// let script = cloudstack_script(
///     &[sender, receiver],
///     &["EXTERNAL"],
///     &[],
///     datetime!(2026-11-01 10:00 UTC),
///     datetime!(2026-11-01 11:00 UTC),
///     UtcOffset::UTC,
/// );
/// // CloudStack's defect: the address that only received is not printed.
/// assert_eq!(answer_script(&history, &script, UtcOffset::UTC).unwrap(), "203.0.113.7,1500,0\n");
/// ```
pub fn cloudstack_script(
    ips: &[IpAddr],
    include_zones: &[&str],
    exclude_zones: &[&str],
    start: time::OffsetDateTime,
    end: time::OffsetDateTime,
    server_utc_offset: UtcOffset,
) -> String {
    let ips = ips
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (include, exclude) = (include_zones.join(","), exclude_zones.join(","));
    let (mut dest, mut src) = (String::new(), String::new());
    if !include.is_empty() {
        dest = format!(" & destinationzone = {include}");
        src = format!(" & sourcezone = {include}");
    }
    if !exclude.is_empty() {
        dest += &format!(" & destinationzone != {exclude}");
        src += &format!(" & sourcezone != {exclude}");
    }
    let local = |t: time::OffsetDateTime| {
        let t = t.to_offset(server_utc_offset);
        format!(
            "{:04}{:02}{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    let (start, end) = (local(start), local(end));
    let mut sb = String::new();
    sb += "var q = Query.topN(\"historytrmx\",";
    sb += "                 \"ipsource,bytes\",";
    sb += &format!("                 \"ipsource = {ips}{dest}\",");
    sb += &format!("                 \"{start}, {end}\",");
    sb += "                 \"bytes\",";
    sb += "                 100000);";
    sb += "var totalsSent = {};";
    sb += "var t = q.run(";
    sb += "  function(row,table) {";
    sb += "    if(row[0]) {    ";
    sb += "      totalsSent[row[0]] = row[1];";
    sb += "    }";
    sb += "  });";
    sb += "var q = Query.topN(\"historytrmx\",";
    sb += "                 \"ipdestination,bytes\",";
    sb += &format!("                 \"ipdestination = {ips}{src}\",");
    sb += &format!("                 \"{start}, {end}\",");
    sb += "                 \"bytes\",";
    sb += "                 100000);";
    sb += "var totalsRcvd = {};";
    sb += "var t = q.run(";
    sb += "  function(row,table) {";
    sb += "    if(row[0]) {";
    sb += "      totalsRcvd[row[0]] = row[1];";
    sb += "    }";
    sb += "  });";
    sb += "for (var addr in totalsSent) {";
    sb += "    var TS = 0;";
    sb += "    var TR = 0;";
    sb += "    if(totalsSent[addr]) TS = totalsSent[addr];";
    sb += "    if(totalsRcvd[addr]) TR = totalsRcvd[addr];";
    sb += "    println(addr + \",\" + TS + \",\" + TR);";
    sb += "}";
    sb
}

/// The largest `N` a `Query.topN` may ask for; larger values are refused.
pub const MAX_TOP_N: u64 = 10_000_000;

/// One `Query.topN("historytrmx", FIELD ",bytes", FILTER, INTERVAL, "bytes", N)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TopN {
    pub(crate) side: Side,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) zones: ZoneFilter,
    /// Interval bounds in the server's local time.
    pub(crate) start: PrimitiveDateTime,
    pub(crate) end: PrimitiveDateTime,
    pub(crate) n: usize,
}

/// A parsed script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Script {
    /// The client's script: each query with the literal row prefix it prints
    /// (e.g. `s,7,`).
    Client(Vec<(TopN, String)>),
    /// CloudStack's script.
    CloudStack { sent: TopN, received: TopN },
}

/// Answers `script` over `history` as Traffic Sentinel would, reading the
/// script's interval strings in `server_utc_offset`.
///
/// For the client's script the answer is the `s,TAG,IP,BYTES` and
/// `r,TAG,IP,BYTES` rows of each query in statement order (largest bytes first,
/// ties by address, at most `N` rows, no 0-byte rows), then `end,COUNT`.
/// For CloudStack's script it is one `IP,SENT,RECEIVED` line per address of
/// the *sent* query, in that query's order, `RECEIVED` being `0` when the
/// address has no row in the received query: addresses that only received are
/// not printed, as with the real script. Every line ends in `\n`.
///
/// Byte counts are printed as exact integers (a JavaScript engine would
/// round counts above 2^53).
///
/// # Errors
///
/// [`Error::Script`] when the script is neither shape, or holds a bad value
/// (address, zone, date, tag, `N` above [`MAX_TOP_N`], an interval whose start
/// is after its end), naming the line and column.
///
/// # Example
///
/// ```
/// use usage_model::Grid;
/// use time::{Duration, UtcOffset, macros::datetime};
/// use traffic_sentinel_emulator::{Flow, FlowHistory, answer_script};
///
/// let flow = Flow {
///     time: datetime!(2026-11-01 10:15 UTC),
///     ipsource: "203.0.113.7".parse().unwrap(),
///     ipdestination: "198.51.100.1".parse().unwrap(),
///     sourcezone: "INTERNAL".into(),
///     destinationzone: "EXTERNAL".into(),
///     bytes: 1500,
/// };
/// let history = FlowHistory::new(Grid::MINUTELY, [flow]).unwrap();
/// let script = r#"var n = 0;
/// var q;
/// q = Query.topN("historytrmx", "ipsource,bytes", "ipsource = 203.0.113.7 & destinationzone = EXTERNAL", "20261101 10:00:00, 20261101 11:00:00", "bytes", 1);
/// q.run(function(row, table) { if (row[0]) { println("s,7," + row[0] + "," + row[1]); n++; } });
/// println("end," + n);
/// "#;
/// let answer = answer_script(&history, script, UtcOffset::UTC).unwrap();
/// assert_eq!(answer, "s,7,203.0.113.7,1500\nend,1\n");
/// ```
pub fn answer_script(
    history: &FlowHistory,
    script: &str,
    server_utc_offset: UtcOffset,
) -> Result<String, Error> {
    let script = parse_script(script)?;
    Ok(evaluate(history, &script, server_utc_offset))
}

/// Runs a parsed script.
pub(crate) fn evaluate(history: &FlowHistory, script: &Script, offset: UtcOffset) -> String {
    let run = |q: &TopN| {
        history.top_n(
            &q.ips,
            q.side,
            &q.zones,
            q.start.assume_offset(offset),
            q.end.assume_offset(offset),
            q.n,
        )
    };
    // Only ASCII and `Display` output is written, so this is UTF-8.
    let mut out: Vec<u8> = Vec::new();
    match script {
        Script::Client(queries) => {
            let answers: Vec<(Vec<(IpAddr, u64)>, &str)> = queries
                .iter()
                .map(|(query, prefix)| (run(query), prefix.as_str()))
                .collect();
            // Room for IPv4 rows; longer ones grow the buffer.
            out.reserve(
                answers
                    .iter()
                    .map(|(rows, prefix)| rows.len() * (prefix.len() + Line::IPV4_ROW))
                    .sum::<usize>()
                    + Line::IPV4_ROW,
            );
            let mut count: u64 = 0;
            for (rows, prefix) in answers {
                let mut line = Line::new();
                let prefix_in_line = line.prefix(prefix.as_bytes());
                let start = line.len;
                for (ip, bytes) in rows {
                    if !prefix_in_line {
                        out.extend_from_slice(prefix.as_bytes());
                    }
                    line.len = start;
                    line.ip(ip);
                    line.byte(b',');
                    line.number(bytes);
                    line.byte(b'\n');
                    out.extend_from_slice(line.as_bytes());
                    count += 1;
                }
            }
            let mut line = Line::new();
            line.number(count);
            line.byte(b'\n');
            out.extend_from_slice(b"end,");
            out.extend_from_slice(line.as_bytes());
        }
        Script::CloudStack { sent, received } => {
            let mut received = run(received);
            received.sort_unstable_by_key(|&(ip, _)| ip);
            let sent = run(sent);
            out.reserve(sent.len() * (Line::IPV4_ROW + 21));
            for (ip, sent_bytes) in sent {
                let received_bytes = received
                    .binary_search_by_key(&ip, |&(ip, _)| ip)
                    .map_or(0, |k| received[k].1);
                let mut line = Line::new();
                line.ip(ip);
                line.byte(b',');
                line.number(sent_bytes);
                line.byte(b',');
                line.number(received_bytes);
                line.byte(b'\n');
                out.extend_from_slice(line.as_bytes());
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// One answer line, `[PREFIX]IP,COUNT[,COUNT]\n`, built on the stack and
/// appended to the answer at once.
struct Line {
    buf: [u8; Line::CAPACITY],
    len: usize,
}

impl Line {
    /// The longest prefix kept in the line; longer ones are written apart.
    const PREFIX_ROOM: usize = 24;

    /// Room for a prefix, an address of at most 45 characters
    /// (`INET6_ADDRSTRLEN`), two counts of at most 20 digits, their commas
    /// and the newline.
    const CAPACITY: usize = Line::PREFIX_ROOM + 45 + 2 * 21 + 1;

    /// The longest `IPv4,COUNT\n`.
    const IPV4_ROW: usize = 15 + 21 + 1;

    fn new() -> Line {
        Line {
            buf: [0; Line::CAPACITY],
            len: 0,
        }
    }

    /// Starts the line with `prefix` when it fits; says whether it did.
    fn prefix(&mut self, prefix: &[u8]) -> bool {
        let fits = self.len == 0 && prefix.len() <= Line::PREFIX_ROOM;
        if fits {
            self.buf[..prefix.len()].copy_from_slice(prefix);
            self.len = prefix.len();
        }
        fits
    }

    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `n` in decimal, as its `Display` form writes it.
    fn number(&mut self, mut n: u64) {
        let digits = n.checked_ilog10().map_or(1, |log| log as usize + 1);
        let end = self.len + digits;
        for slot in self.buf[self.len..end].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len = end;
    }

    /// `ip` as its `Display` form writes it.
    fn ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                self.number(u64::from(a));
                for octet in [b, c, d] {
                    self.byte(b'.');
                    self.number(u64::from(octet));
                }
            }
            IpAddr::V6(_) => {
                let mut rest = &mut self.buf[self.len..];
                let room = rest.len();
                // At most 45 characters always fit.
                drop(write!(rest, "{ip}"));
                self.len += room - rest.len();
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Parses a script of either shape.
pub(crate) fn parse_script(script: &str) -> Result<Script, Error> {
    match script_shape(script) {
        Ok((_, parsed)) => Ok(parsed),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.into_error(script)),
        Err(nom::Err::Incomplete(_)) => Err(Error::Script {
            line: 1,
            column: 1,
            message: "incomplete script".to_owned(),
        }),
    }
}

// ---------------------------------------------------------------------------
// Error type and helpers

#[derive(Debug)]
enum Expected {
    Kind(ErrorKind),
    Token(&'static str),
    Message(String),
}

#[derive(Debug)]
struct SyntaxError<'a> {
    at: &'a str,
    expected: Expected,
}

impl<'a> ParseError<&'a str> for SyntaxError<'a> {
    fn from_error_kind(at: &'a str, kind: ErrorKind) -> Self {
        SyntaxError {
            at,
            expected: Expected::Kind(kind),
        }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

impl SyntaxError<'_> {
    fn into_error(self, full: &str) -> Error {
        let offset = (self.at.as_ptr() as usize)
            .checked_sub(full.as_ptr() as usize)
            .filter(|&o| o <= full.len())
            .unwrap_or(0);
        let before = full.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        let found = describe_found(self.at);
        let message = match self.expected {
            Expected::Token(t) => format!("expected `{t}`, found {found}"),
            Expected::Message(m) => m,
            Expected::Kind(k) => format!("unexpected {found} ({})", k.description()),
        };
        Error::Script {
            line,
            column,
            message,
        }
    }
}

fn describe_found(at: &str) -> String {
    if at.is_empty() {
        return "end of script".to_owned();
    }
    let line = at.split(['\n', '\r']).next().unwrap_or("");
    let snippet: String = line.chars().take(24).collect();
    if snippet.is_empty() {
        "end of line".to_owned()
    } else if snippet.len() < line.len() {
        format!("{snippet:?}…")
    } else {
        format!("{snippet:?}")
    }
}

type PResult<'a, T> = IResult<&'a str, T, SyntaxError<'a>>;

fn error<'a, T>(at: &'a str, message: String) -> PResult<'a, T> {
    Err(nom::Err::Error(SyntaxError {
        at,
        expected: Expected::Message(message),
    }))
}

/// Skips spaces, tabs, carriage returns and line feeds (nom's `multispace0`).
fn ws(i: &str) -> &str {
    i.trim_start_matches([' ', '\t', '\r', '\n'])
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// A script token: a word (identifier or keyword, which must not run on into
/// another identifier character) or punctuation.
#[derive(Clone, Copy)]
enum Tok {
    W(&'static str),
    P(&'static str),
}
use Tok::{P, W};

/// `q.run(function(row, table) { if (row[0]) {`: how both script shapes start
/// handling a row.
const RUN_IF_ROW0: [Tok; 19] = [
    W("q"),
    P("."),
    W("run"),
    P("("),
    W("function"),
    P("("),
    W("row"),
    P(","),
    W("table"),
    P(")"),
    P("{"),
    W("if"),
    P("("),
    W("row"),
    P("["),
    P("0"),
    P("]"),
    P(")"),
    P("{"),
];
/// `row[0]`.
const ROW0: [Tok; 4] = [W("row"), P("["), P("0"), P("]")];
/// `row[1]`.
const ROW1: [Tok; 4] = [W("row"), P("["), P("1"), P("]")];

/// Skips whitespace, then matches `t`.
fn token(t: Tok) -> impl Fn(&str) -> PResult<'_, ()> {
    move |i: &str| {
        let i = ws(i);
        let (text, is_word) = match t {
            W(w) => (w, true),
            P(p) => (p, false),
        };
        let fail = || {
            nom::Err::Error(SyntaxError {
                at: i,
                expected: Expected::Token(text),
            })
        };
        let rest = i.strip_prefix(text).ok_or_else(fail)?;
        if is_word && rest.starts_with(is_ident_char) {
            return Err(fail());
        }
        Ok((rest, ()))
    }
}

/// Matches a sequence of tokens.
fn tokens<'a>(mut i: &'a str, toks: &[Tok]) -> PResult<'a, ()> {
    for &t in toks {
        (i, ()) = token(t)(i)?;
    }
    Ok((i, ()))
}

/// Whether the next token (after whitespace) is `t`.
fn peek(i: &str, t: Tok) -> bool {
    token(t)(i).is_ok()
}

/// A double-quoted string literal whose content `inner` must consume entirely.
fn string_with<'a, T>(i: &'a str, inner: impl FnOnce(&'a str) -> PResult<'a, T>) -> PResult<'a, T> {
    let (i, ()) = token(P("\""))(i)?;
    let (content, i) = i.split_at(string_content_len(i.as_bytes()));
    let (i, _) = tag::<_, _, SyntaxError<'_>>("\"").parse(i).map_err(|_| {
        nom::Err::Error(SyntaxError {
            at: i,
            expected: Expected::Message(format!(
                "expected the closing `\"` of a string, found {}",
                describe_found(i)
            )),
        })
    })?;
    let (_, value) = inner(content)?;
    Ok((i, value))
}

/// The length of the string content at the start of `i`: the bytes before
/// the first `"`, `\\`, CR or LF (ASCII bytes, which never occur inside a
/// multi-byte character), eight bytes at a time.
fn string_content_len(i: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Whether any byte of `word` is `b` (exact, by the zero-byte test).
    let has = |word: u64, b: u8| {
        let x = word ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    let (words, _) = i.as_chunks::<8>();
    let clean = words
        .iter()
        .map(|&w| u64::from_ne_bytes(w))
        .take_while(|&w| !(has(w, b'"') || has(w, b'\\') || has(w, b'\n') || has(w, b'\r')))
        .count();
    let from = clean * 8;
    from + i[from..]
        .iter()
        .position(|b| matches!(b, b'"' | b'\\' | b'\n' | b'\r'))
        .unwrap_or(i.len() - from)
}

/// A string literal whose content is exactly `text`.
fn string_exact<'a>(i: &'a str, text: &'static str) -> PResult<'a, ()> {
    string_with(i, |s| {
        if s == text {
            Ok(("", ()))
        } else {
            error(
                s,
                format!("expected the string \"{text}\", found \"{}\"", shorten(s)),
            )
        }
    })
}

/// Succeeds at the end of a string's content (after whitespace).
fn end_of_content<'a>(i: &'a str, what: &'static str) -> PResult<'a, ()> {
    let i = ws(i);
    if i.is_empty() {
        Ok((i, ()))
    } else {
        error(i, format!("expected {what}, found {}", describe_found(i)))
    }
}

// ---------------------------------------------------------------------------
// Grammar

fn script_shape(i: &str) -> PResult<'_, Script> {
    let (i, ()) = token(W("var"))(i)?;
    if peek(i, W("n")) {
        client_script(i)
    } else if peek(i, W("q")) {
        cloudstack_shape(i)
    } else {
        let at = ws(i);
        error(
            at,
            format!(
                "expected `var n = 0;` (client script) or `var q = Query.topN(` \
                 (CloudStack script), found {}",
                describe_found(at)
            ),
        )
    }
}

/// The rest of `var n = 0; var q; (q = Query.topN(..); q.run(..);)* println("end," + n);`
/// after the first `var`.
fn client_script(i: &str) -> PResult<'_, Script> {
    let (mut i, ()) = tokens(
        i,
        &[W("n"), P("="), P("0"), P(";"), W("var"), W("q"), P(";")],
    )?;
    let mut queries = Vec::new();
    while peek(i, W("q")) {
        let (rest, ()) = tokens(i, &[W("q"), P("=")])?;
        let (rest, query) = topn_call(rest, None)?;
        let (rest, ()) = token(P(";"))(rest)?;
        let (rest, prefix) = client_run(rest, query.side)?;
        let (rest, ()) = token(P(";"))(rest)?;
        queries.push((query, prefix));
        i = rest;
    }
    if !peek(i, W("println")) {
        let at = ws(i);
        return error(
            at,
            format!(
                "expected `q = Query.topN(` or `println(\"end,\" + n);`, found {}",
                describe_found(at)
            ),
        );
    }
    let (i, ()) = tokens(i, &[W("println"), P("(")])?;
    let (i, ()) = string_exact(i, "end,")?;
    let (i, ()) = tokens(i, &[P("+"), W("n"), P(")"), P(";")])?;
    let (i, ()) = end_of_script(i)?;
    Ok((i, Script::Client(queries)))
}

/// `q.run(function(row, table) { if (row[0]) { println("s,7," + row[0] + "," + row[1]); n++; } })`,
/// returning the printed prefix (`s,7,`).
fn client_run(i: &str, side: Side) -> PResult<'_, String> {
    let (i, ()) = tokens(i, &RUN_IF_ROW0)?;
    let (i, ()) = tokens(i, &[W("println"), P("(")])?;
    let (i, prefix) = string_with(i, |s| row_prefix(s, side))?;
    let (i, ()) = token(P("+"))(i)?;
    let (i, ()) = tokens(i, &ROW0)?;
    let (i, ()) = token(P("+"))(i)?;
    let (i, ()) = string_exact(i, ",")?;
    let (i, ()) = token(P("+"))(i)?;
    let (i, ()) = tokens(i, &ROW1)?;
    let (i, ()) = tokens(
        i,
        &[
            P(")"),
            P(";"),
            W("n"),
            P("++"),
            P(";"),
            P("}"),
            P("}"),
            P(")"),
        ],
    )?;
    Ok((i, prefix))
}

/// The content `s,TAG,` / `r,TAG,` of the printed prefix.
fn row_prefix(s: &str, side: Side) -> PResult<'_, String> {
    let (expected_letter, field) = (side.letter(), side.address_field());
    let letter = s.chars().next();
    if !matches!(letter, Some('s' | 'r')) {
        return error(
            s,
            format!(
                "expected a row prefix `s,TAG,` or `r,TAG,`, found \"{}\"",
                shorten(s)
            ),
        );
    }
    if letter != Some(expected_letter) {
        return error(
            s,
            format!(
                "row prefix \"{}\" does not match the {field} query (expected `{expected_letter},TAG,`)",
                shorten(s)
            ),
        );
    }
    let rest = &s[1..];
    let bad = |at| {
        error(
            at,
            format!(
                "expected a row prefix `{expected_letter},TAG,` with a decimal u32 TAG, found \"{}\"",
                shorten(s)
            ),
        )
    };
    let Some(digits) = rest.strip_prefix(',').and_then(|r| r.strip_suffix(',')) else {
        return bad(s);
    };
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.parse::<u32>().is_err()
    {
        return bad(digits);
    }
    Ok(("", s.to_owned()))
}

/// The rest of CloudStack's script after its first `var`.
fn cloudstack_shape(i: &str) -> PResult<'_, Script> {
    let (i, ()) = tokens(i, &[W("q"), P("=")])?;
    let (i, sent) = topn_call(i, Some(Side::Sent))?;
    let (i, ()) = token(P(";"))(i)?;
    let (i, ()) = cloudstack_run(i, "totalsSent")?;
    let (i, ()) = tokens(i, &[W("var"), W("q"), P("=")])?;
    let (i, received) = topn_call(i, Some(Side::Received))?;
    let (i, ()) = token(P(";"))(i)?;
    let (i, ()) = cloudstack_run(i, "totalsRcvd")?;
    let (i, ()) = tokens(
        i,
        &[
            W("for"),
            P("("),
            W("var"),
            W("addr"),
            W("in"),
            W("totalsSent"),
            P(")"),
            P("{"),
            W("var"),
            W("TS"),
            P("="),
            P("0"),
            P(";"),
            W("var"),
            W("TR"),
            P("="),
            P("0"),
            P(";"),
            W("if"),
            P("("),
            W("totalsSent"),
            P("["),
            W("addr"),
            P("]"),
            P(")"),
            W("TS"),
            P("="),
            W("totalsSent"),
            P("["),
            W("addr"),
            P("]"),
            P(";"),
            W("if"),
            P("("),
            W("totalsRcvd"),
            P("["),
            W("addr"),
            P("]"),
            P(")"),
            W("TR"),
            P("="),
            W("totalsRcvd"),
            P("["),
            W("addr"),
            P("]"),
            P(";"),
            W("println"),
            P("("),
            W("addr"),
            P("+"),
        ],
    )?;
    let (i, ()) = string_exact(i, ",")?;
    let (i, ()) = tokens(i, &[P("+"), W("TS"), P("+")])?;
    let (i, ()) = string_exact(i, ",")?;
    let (i, ()) = tokens(i, &[P("+"), W("TR"), P(")"), P(";"), P("}")])?;
    let (i, ()) = end_of_script(i)?;
    Ok((i, Script::CloudStack { sent, received }))
}

/// `var totals = {}; var t = q.run(function(row,table) { if(row[0]) { totals[row[0]] = row[1]; } });`
fn cloudstack_run<'a>(i: &'a str, totals: &'static str) -> PResult<'a, ()> {
    let (i, ()) = tokens(
        i,
        &[
            W("var"),
            W(totals),
            P("="),
            P("{"),
            P("}"),
            P(";"),
            W("var"),
            W("t"),
            P("="),
        ],
    )?;
    let (i, ()) = tokens(i, &RUN_IF_ROW0)?;
    let (i, ()) = tokens(i, &[W(totals), P("[")])?;
    let (i, ()) = tokens(i, &ROW0)?;
    let (i, ()) = tokens(i, &[P("]"), P("=")])?;
    let (i, ()) = tokens(i, &ROW1)?;
    tokens(i, &[P(";"), P("}"), P("}"), P(")"), P(";")])
}

fn end_of_script(i: &str) -> PResult<'_, ()> {
    let i = ws(i);
    if i.is_empty() {
        Ok((i, ()))
    } else {
        error(
            i,
            format!(
                "expected the end of the script, found {}",
                describe_found(i)
            ),
        )
    }
}

/// `Query.topN("historytrmx", "FIELD,bytes", "FILTER", "START, END", "bytes", N)`.
fn topn_call(i: &str, required_side: Option<Side>) -> PResult<'_, TopN> {
    let (i, ()) = tokens(i, &[W("Query"), P("."), W("topN"), P("(")])?;
    let (i, ()) = string_exact(i, "historytrmx")?;
    let (i, ()) = token(P(","))(i)?;
    let (i, side) = string_with(i, |s| field_spec(s, required_side))?;
    let (i, ()) = token(P(","))(i)?;
    let (i, (ips, zones)) = string_with(i, |s| filter(s, side))?;
    let (i, (start, end)) = {
        let (i, ()) = token(P(","))(i)?;
        string_with(i, interval)?
    };
    let (i, ()) = token(P(","))(i)?;
    let (i, ()) = string_exact(i, "bytes")?;
    let (i, ()) = token(P(","))(i)?;
    let (i, n) = top_n_count(i)?;
    let (i, ()) = token(P(")"))(i)?;
    Ok((
        i,
        TopN {
            side,
            ips,
            zones,
            start,
            end,
            n,
        },
    ))
}

/// `ipsource,bytes` or `ipdestination,bytes`.
fn field_spec(s: &str, required: Option<Side>) -> PResult<'_, Side> {
    let at = ws(s);
    let (i, side) = if let Ok((i, ())) = token(W("ipsource"))(s) {
        (i, Side::Sent)
    } else if let Ok((i, ())) = token(W("ipdestination"))(s) {
        (i, Side::Received)
    } else {
        return error(
            at,
            format!(
                "expected \"ipsource,bytes\" or \"ipdestination,bytes\", found \"{}\"",
                shorten(s)
            ),
        );
    };
    if let Some(required) = required
        && required != side
    {
        let want = match required {
            Side::Sent => "ipsource,bytes",
            Side::Received => "ipdestination,bytes",
        };
        return error(
            at,
            format!(
                "expected \"{want}\" in this query, found \"{}\"",
                shorten(s)
            ),
        );
    }
    let (i, ()) = tokens(i, &[P(","), W("bytes")])?;
    let (i, ()) = end_of_content(i, "the end of the field list")?;
    Ok((i, side))
}

/// `FIELD = ip,ip,... [& ZONEFIELD = z,...] [& ZONEFIELD != z,...]`.
fn filter(s: &str, side: Side) -> PResult<'_, (Vec<IpAddr>, ZoneFilter)> {
    let (ip_field, zone_field) = (side.address_field(), side.zone_field());
    let (i, ()) = tokens(s, &[W(ip_field), P("=")])?;
    let (mut i, ips) = ip_list(i)?;
    let mut zones = ZoneFilter::any();
    let (mut have_include, mut have_exclude) = (false, false);
    loop {
        let at = ws(i);
        if at.is_empty() {
            break;
        }
        if !peek(at, P("&")) {
            return error(
                at,
                format!(
                    "expected `,`, `&` or the end of the filter, found {}",
                    describe_found(at)
                ),
            );
        }
        let (rest, ()) = tokens(at, &[P("&"), W(zone_field)])?;
        let op_at = ws(rest);
        let (rest, exclude) = if let Ok((rest, ())) = token(P("!="))(rest) {
            (rest, true)
        } else if let Ok((rest, ())) = token(P("="))(rest) {
            (rest, false)
        } else {
            return error(
                op_at,
                format!("expected `=` or `!=`, found {}", describe_found(op_at)),
            );
        };
        if exclude && have_exclude {
            return error(at, format!("{zone_field} != given twice"));
        }
        if !exclude && (have_include || have_exclude) {
            return error(
                at,
                format!("{zone_field} = must be given at most once, before {zone_field} !="),
            );
        }
        let (rest, names) = zone_list(rest)?;
        for name in names {
            zones = if exclude {
                zones.exclude(name)
            } else {
                zones.include(name)
            };
        }
        have_include |= !exclude;
        have_exclude |= exclude;
        i = rest;
    }
    Ok((i, (ips, zones)))
}

/// The bytes an address may be written with: hex digits, `:` and `.`.
const IP_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_hexdigit() || c == b':' || c == b'.';
        b += 1;
    }
    table
};

fn ip_list(i: &str) -> PResult<'_, Vec<IpAddr>> {
    // Byte positions: every one used to slice `i` follows an ASCII byte.
    let bytes = i.as_bytes();
    let skip_ws = |mut k: usize| {
        while bytes
            .get(k)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            k += 1;
        }
        k
    };
    let mut ips = Vec::new();
    let mut k = 0;
    loop {
        let start = skip_ws(k);
        k = start;
        while bytes.get(k).is_some_and(|&b| IP_BYTES[usize::from(b)]) {
            k += 1;
        }
        let text = &i[start..k];
        if text.is_empty() {
            let at = &i[start..];
            return error(
                at,
                format!("expected an ip address, found {}", describe_found(at)),
            );
        }
        match parse_ip(text) {
            Some(ip) => ips.push(ip),
            None => {
                return error(
                    &i[start..],
                    format!("invalid ip address \"{}\"", shorten(text)),
                );
            }
        }
        let after = skip_ws(k);
        if bytes.get(after) == Some(&b',') {
            k = after + 1;
        } else {
            return Ok((&i[k..], ips));
        }
    }
}

/// `text` as `IpAddr::from_str` reads it: dotted-quad IPv4 addresses by a
/// fast path, anything else by the standard library.
fn parse_ip(text: &str) -> Option<IpAddr> {
    match parse_ipv4(text.as_bytes()) {
        Some(v4) => Some(IpAddr::V4(v4)),
        None => text.parse().ok(),
    }
}

/// A dotted-quad IPv4 address as `Ipv4Addr::from_str` accepts it: four
/// decimal octets of one to three digits, at most 255, without a leading
/// zero, separated by single dots; `None` for anything else.
fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
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

fn zone_list(mut i: &str) -> PResult<'_, Vec<String>> {
    let mut zones = Vec::new();
    loop {
        let at = ws(i);
        let (rest, name) =
            take_while1::<_, _, SyntaxError<'_>>(is_ts_zone_char)(at).or_else(|_| {
                error(
                    at,
                    format!(
                        "expected a zone name [A-Za-z0-9_.-]+, found {}",
                        describe_found(at)
                    ),
                )
            })?;
        zones.push(name.to_owned());
        i = rest;
        match token(P(","))(i) {
            Ok((rest, ())) => i = rest,
            Err(_) => return Ok((i, zones)),
        }
    }
}

/// `yyyyMMdd HH:mm:ss, yyyyMMdd HH:mm:ss`.
fn interval(s: &str) -> PResult<'_, (PrimitiveDateTime, PrimitiveDateTime)> {
    let start_at = ws(s);
    let (i, start) = date_time(start_at)?;
    let (i, ()) = token(P(","))(i)?;
    let (i, end) = date_time(ws(i))?;
    let (i, ()) = end_of_content(i, "the end of the interval")?;
    if start > end {
        return error(
            start_at,
            format!("interval \"{}\" starts after it ends", shorten(s)),
        );
    }
    Ok((i, (start, end)))
}

fn date_time(i: &str) -> PResult<'_, PrimitiveDateTime> {
    fn digits(n: usize) -> impl Fn(&str) -> PResult<'_, &str> {
        move |i| take_while_m_n(n, n, |c: char| c.is_ascii_digit()).parse(i)
    }
    let bad = || {
        nom::Err::Error(SyntaxError {
            at: i,
            expected: Expected::Message(format!(
                "expected a time `yyyyMMdd HH:mm:ss`, found {}",
                describe_found(i)
            )),
        })
    };
    let parsed: PResult<'_, _> = (
        digits(8),
        multispace1,
        digits(2),
        tag(":"),
        digits(2),
        tag(":"),
        digits(2),
    )
        .parse(i);
    let (rest, (ymd, _, hh, _, mm, _, ss)) = parsed.map_err(|_| bad())?;
    let text = &i[..i.len() - rest.len()];
    let invalid = || error(i, format!("invalid date or time \"{}\"", shorten(text)));
    let num = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
    let year = num(&ymd[..4]) as i32;
    let Ok(month) = Month::try_from(num(&ymd[4..6]).min(255) as u8) else {
        return invalid();
    };
    let Ok(date) = Date::from_calendar_date(year, month, num(&ymd[6..]).min(255) as u8) else {
        return invalid();
    };
    let Ok(time) = Time::from_hms(
        num(hh).min(255) as u8,
        num(mm).min(255) as u8,
        num(ss).min(255) as u8,
    ) else {
        return invalid();
    };
    Ok((rest, PrimitiveDateTime::new(date, time)))
}

fn top_n_count(i: &str) -> PResult<'_, usize> {
    let at = ws(i);
    let (rest, digits) = take_while1::<_, _, SyntaxError<'_>>(|c: char| c.is_ascii_digit())(at)
        .or_else(|_| {
            error(
                at,
                format!("expected the row count N, found {}", describe_found(at)),
            )
        })?;
    if rest.starts_with(is_ident_char) {
        return error(
            at,
            format!("expected the row count N, found {}", describe_found(at)),
        );
    }
    match digits.parse::<u64>() {
        Ok(n) if n <= MAX_TOP_N => Ok((rest, usize::try_from(n).unwrap_or(usize::MAX))),
        _ => error(
            at,
            format!(
                "row count N {} is above the limit {MAX_TOP_N}",
                shorten(digits)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::Flow;
    use time::macros::{datetime, offset};
    use time::{Duration, OffsetDateTime};
    use usage_model::Grid;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn flow(time: OffsetDateTime, src: &str, dst: &str, sz: &str, dz: &str, bytes: u64) -> Flow {
        Flow {
            time,
            ipsource: ip(src),
            ipdestination: ip(dst),
            sourcezone: sz.into(),
            destinationzone: dz.into(),
            bytes,
        }
    }

    fn client_pair(side: char, tag: u32, filter: &str, interval: &str, n: u64) -> String {
        let field = if side == 's' {
            "ipsource"
        } else {
            "ipdestination"
        };
        format!(
            "q = Query.topN(\"historytrmx\", \"{field},bytes\", \"{filter}\", \"{interval}\", \"bytes\", {n});\n\
             q.run(function(row, table) {{ if (row[0]) {{ println(\"{side},{tag},\" + row[0] + \",\" + row[1]); n++; }} }});\n"
        )
    }

    fn client_script(pairs: &[String]) -> String {
        format!(
            "var n = 0;\nvar q;\n{}println(\"end,\" + n);\n",
            pairs.concat()
        )
    }

    /// CloudStack's `getScript` for the addresses, zones and local times
    /// given as text (times as `yyyyMMdd HH:mm:ss` at UTC).
    fn cloudstack_script(ips: &str, incl: &str, excl: &str, start: &str, end: &str) -> String {
        let ips: Vec<IpAddr> = ips.split(',').map(|ip| ip.parse().unwrap()).collect();
        let (incl, excl): (Vec<&str>, Vec<&str>) = (
            incl.split(',').filter(|z| !z.is_empty()).collect(),
            excl.split(',').filter(|z| !z.is_empty()).collect(),
        );
        let format =
            time::macros::format_description!("[year][month][day] [hour]:[minute]:[second]");
        let at = |t: &str| PrimitiveDateTime::parse(t, &format).unwrap().assume_utc();
        super::cloudstack_script(&ips, &incl, &excl, at(start), at(end), UtcOffset::UTC)
    }

    const A: &str = "203.0.113.7";
    const B: &str = "2001:db8::1";
    const C: &str = "198.51.100.9";
    const PEER: &str = "192.0.2.1";

    fn history() -> FlowHistory {
        let t = datetime!(2026-11-01 10:00 UTC);
        FlowHistory::new(
            Grid::MINUTELY,
            [
                flow(t, A, PEER, "INTERNAL", "EXTERNAL", 100),
                flow(t + Duration::minutes(5), A, PEER, "INTERNAL", "PEERING", 10),
                flow(t, A, PEER, "INTERNAL", "INTERNAL", 1),
                flow(t, PEER, A, "EXTERNAL", "INTERNAL", 40),
                flow(t, B, PEER, "INTERNAL", "EXTERNAL", 300),
                flow(t, PEER, C, "EXTERNAL", "INTERNAL", 70), // C only receives
                flow(
                    datetime!(2026-11-01 11:00 UTC),
                    A,
                    PEER,
                    "",
                    "EXTERNAL",
                    5000,
                ), // END bucket
            ],
        )
        .unwrap()
    }

    const HOUR: &str = "20261101 10:00:00, 20261101 11:00:00";

    fn answer(script: &str) -> Result<String, Error> {
        answer_script(&history(), script, UtcOffset::UTC)
    }

    #[test]
    fn client_script_rows_in_statement_order_then_end() {
        let ips = format!("{A},{B},{C}");
        let script = client_script(&[
            client_pair(
                's',
                7,
                &format!(
                    "ipsource = {ips} & destinationzone = EXTERNAL,PEERING & destinationzone != INTERNAL"
                ),
                HOUR,
                3,
            ),
            client_pair(
                'r',
                7,
                &format!(
                    "ipdestination = {ips} & sourcezone = EXTERNAL,PEERING & sourcezone != INTERNAL"
                ),
                HOUR,
                3,
            ),
        ]);
        assert_eq!(
            answer(&script).unwrap(),
            format!("s,7,{B},300\ns,7,{A},110\nr,7,{C},70\nr,7,{A},40\nend,4\n")
        );
    }

    #[test]
    fn zone_filters_include_exclude_and_omitted() {
        let run =
            |filter: &str| answer(&client_script(&[client_pair('s', 1, filter, HOUR, 5)])).unwrap();
        assert_eq!(
            run(&format!("ipsource = {A}")),
            format!("s,1,{A},111\nend,1\n")
        );
        assert_eq!(
            run(&format!("ipsource = {A} & destinationzone = EXTERNAL")),
            format!("s,1,{A},100\nend,1\n")
        );
        assert_eq!(
            run(&format!(
                "ipsource = {A} & destinationzone != EXTERNAL,PEERING"
            )),
            format!("s,1,{A},1\nend,1\n")
        );
        assert_eq!(
            run(&format!("ipsource = {A} & destinationzone = NONE")),
            "end,0\n"
        );
    }

    #[test]
    fn n_cuts_off_and_ties_sort_by_address() {
        let t = datetime!(2026-11-01 10:00 UTC);
        let h = FlowHistory::new(
            Grid::MINUTELY,
            [
                flow(t, "10.0.0.3", PEER, "", "", 5),
                flow(t, "10.0.0.1", PEER, "", "", 5),
                flow(t, "10.0.0.2", PEER, "", "", 9),
            ],
        )
        .unwrap();
        let script = |n| {
            client_script(&[client_pair(
                's',
                0,
                "ipsource = 10.0.0.3,10.0.0.1,10.0.0.2,10.0.0.4",
                HOUR,
                n,
            )])
        };
        assert_eq!(
            answer_script(&h, &script(10), UtcOffset::UTC).unwrap(),
            "s,0,10.0.0.2,9\ns,0,10.0.0.1,5\ns,0,10.0.0.3,5\nend,3\n"
        );
        assert_eq!(
            answer_script(&h, &script(2), UtcOffset::UTC).unwrap(),
            "s,0,10.0.0.2,9\ns,0,10.0.0.1,5\nend,2\n"
        );
        assert_eq!(
            answer_script(&h, &script(0), UtcOffset::UTC).unwrap(),
            "end,0\n"
        );
    }

    #[test]
    fn interval_is_read_in_the_server_offset() {
        // 15:30 at +05:30 is 10:00 UTC.
        let local = "20261101 15:30:00, 20261101 16:30:00";
        let script = client_script(&[client_pair('s', 3, &format!("ipsource = {A}"), local, 1)]);
        let h = history();
        assert_eq!(
            answer_script(&h, &script, offset!(+05:30)).unwrap(),
            format!("s,3,{A},111\nend,1\n")
        );
        assert_eq!(
            answer_script(&h, &script, UtcOffset::UTC).unwrap(),
            "end,0\n"
        );
        // And the END bucket (11:00 UTC = 16:30 local) is excluded while 16:31 includes it.
        let longer = "20261101 15:30:00, 20261101 16:31:00";
        let script = client_script(&[client_pair('s', 3, &format!("ipsource = {A}"), longer, 1)]);
        assert_eq!(
            answer_script(&h, &script, offset!(+05:30)).unwrap(),
            format!("s,3,{A},5111\nend,1\n")
        );
    }

    #[test]
    fn tolerates_whitespace_between_tokens() {
        let script = format!(
            "\n  var   n=0 ;var q\n;\tq=Query . topN ( \"historytrmx\" ,\"ipsource , bytes\",\n\
             \"  ipsource=  {A} ,{B}&destinationzone=EXTERNAL , PEERING  &  destinationzone!=INTERNAL \",\
             \"20261101   10:00:00 ,20261101 11:00:00\" , \"bytes\" ,\n 007 ) ; q.run(function(row,table){{if(row[0]){{println(\"s,007,\"+row[0]+\",\"+row[1]);n++;}}}});\
             println ( \"end,\" + n ) ;\n\n"
        );
        assert_eq!(
            answer(&script).unwrap(),
            format!("s,007,{B},300\ns,007,{A},110\nend,2\n")
        );
    }

    #[test]
    fn empty_client_script_prints_only_the_sentinel() {
        assert_eq!(answer(&client_script(&[])).unwrap(), "end,0\n");
    }

    #[test]
    fn cloudstack_script_prints_sent_addresses_only() {
        let script = cloudstack_script(
            &format!("{A},{B},{C}"),
            "EXTERNAL,PEERING",
            "",
            "20261101 10:00:00",
            "20261101 11:00:00",
        );
        // A sent 110 and received 40; B sent 300 and received nothing (TR stays 0);
        // C only received, so the loop over totalsSent never prints it.
        assert_eq!(answer(&script).unwrap(), format!("{B},300,0\n{A},110,40\n"));
        let with_excl = cloudstack_script(
            A,
            "EXTERNAL,PEERING",
            "PEERING",
            "20261101 10:00:00",
            "20261101 11:00:00",
        );
        assert_eq!(answer(&with_excl).unwrap(), format!("{A},100,40\n"));
        let no_zones = cloudstack_script(A, "", "", "20261101 10:00:00", "20261101 11:00:00");
        assert_eq!(answer(&no_zones).unwrap(), format!("{A},111,40\n"));
        let nothing =
            cloudstack_script(C, "EXTERNAL", "", "20261101 10:00:00", "20261101 11:00:00");
        assert_eq!(answer(&nothing).unwrap(), "");
    }

    #[test]
    fn cloudstack_script_with_newlines_is_accepted() {
        let script = cloudstack_script(A, "EXTERNAL", "", "20261101 10:00:00", "20261101 11:00:00")
            .replace(';', ";\n");
        assert_eq!(answer(&script).unwrap(), format!("{A},100,40\n"));
    }

    fn error_of(script: &str) -> (usize, usize, String) {
        match answer(script).unwrap_err() {
            Error::Script {
                line,
                column,
                message,
            } => (line, column, message),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn unknown_scripts_are_refused_with_position() {
        let (line, column, message) = error_of("println('hello');");
        assert_eq!((line, column), (1, 1));
        assert!(message.contains("expected `var`"), "{message}");

        let (_, _, message) = error_of("var x = 1;");
        assert!(message.contains("client script"), "{message}");

        let (line, _, message) = error_of("var n = 0;\nvar q;\nq = Query.topM(\"historytrmx\"");
        assert_eq!(line, 3);
        assert!(
            message.contains("expected `topN`, found \"topM"),
            "{message}"
        );

        let (_, _, message) = error_of("");
        assert!(message.contains("end of script"), "{message}");

        let good = client_script(&[client_pair('s', 1, &format!("ipsource = {A}"), HOUR, 1)]);
        let (_, _, message) = error_of(&format!("{good}println(1);"));
        assert!(
            message.contains("expected the end of the script"),
            "{message}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let cases: Vec<(String, &str)> = vec![
            (
                client_pair('s', 1, "ipsource = 10.0.0.300", HOUR, 1),
                "invalid ip address \"10.0.0.300\"",
            ),
            (
                client_pair('s', 1, "ipsource = ", HOUR, 1),
                "expected an ip address",
            ),
            (
                client_pair('s', 1, "ipdestination = 10.0.0.1", HOUR, 1),
                "expected `ipsource`",
            ),
            (
                client_pair('s', 1, "ipsource = 10.0.0.1 & sourcezone = A", HOUR, 1),
                "expected `destinationzone`",
            ),
            (
                client_pair(
                    's',
                    1,
                    "ipsource = 10.0.0.1 & destinationzone = A\\\"",
                    HOUR,
                    1,
                ),
                "closing",
            ),
            (
                client_pair(
                    's',
                    1,
                    "ipsource = 10.0.0.1 & destinationzone = 'x'",
                    HOUR,
                    1,
                ),
                "expected a zone name",
            ),
            (
                client_pair(
                    's',
                    1,
                    "ipsource = 10.0.0.1 & destinationzone != A & destinationzone = B",
                    HOUR,
                    1,
                ),
                "at most once",
            ),
            (
                client_pair(
                    's',
                    1,
                    "ipsource = 10.0.0.1 & destinationzone != A & destinationzone != B",
                    HOUR,
                    1,
                ),
                "given twice",
            ),
            (
                client_pair('s', 1, "ipsource = 10.0.0.1; drop", HOUR, 1),
                "expected `,`, `&` or the end of the filter",
            ),
            (
                client_pair(
                    's',
                    1,
                    "ipsource = 10.0.0.1",
                    "20261301 10:00:00, 20261101 11:00:00",
                    1,
                ),
                "invalid date or time \"20261301 10:00:00\"",
            ),
            (
                client_pair(
                    's',
                    1,
                    "ipsource = 10.0.0.1",
                    "20261101 24:00:00, 20261101 11:00:00",
                    1,
                ),
                "invalid date or time",
            ),
            (
                client_pair('s', 1, "ipsource = 10.0.0.1", "end - 5 minutes, end", 1),
                "expected a time",
            ),
            (
                client_pair(
                    's',
                    1,
                    "ipsource = 10.0.0.1",
                    "20261101 12:00:00, 20261101 11:00:00",
                    1,
                ),
                "starts after it ends",
            ),
            (
                client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, MAX_TOP_N + 1),
                "above the limit",
            ),
            (
                client_pair('r', 1, "ipsource = 10.0.0.1", HOUR, 1)
                    .replace("ipdestination,", "ipsource,"),
                "does not match the ipsource query",
            ),
            (
                client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, 1)
                    .replace("s,1,", "s,4294967296,"),
                "decimal u32 TAG",
            ),
            (
                client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, 1).replace("s,1,", "s,-1,"),
                "decimal u32 TAG",
            ),
            (
                client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, 1)
                    .replace("historytrmx", "history"),
                "expected the string \"historytrmx\"",
            ),
        ];
        for (pair, want) in cases {
            let script = client_script(&[pair]);
            let (line, _, message) = error_of(&script);
            assert!(message.contains(want), "want {want:?} in {message:?}");
            assert!(line >= 3, "{message}");
        }
        // N larger than u64.
        let pair = client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, 1)
            .replace(", 1);", ", 99999999999999999999999);");
        assert!(
            error_of(&client_script(&[pair]))
                .2
                .contains("above the limit")
        );
    }

    #[test]
    fn cloudstack_shape_variations_are_refused() {
        let good = cloudstack_script(A, "EXTERNAL", "", "20261101 10:00:00", "20261101 11:00:00");
        assert!(answer(&good).is_ok());
        let swapped = good.replacen(
            "for (var addr in totalsSent)",
            "for (var addr in totalsRcvd)",
            1,
        );
        assert!(error_of(&swapped).2.contains("expected `totalsSent`"));
        let received_first = good.replacen("\"ipsource,bytes\"", "\"ipdestination,bytes\"", 1);
        assert!(
            error_of(&received_first)
                .2
                .contains("expected \"ipsource,bytes\" in this query")
        );
    }

    #[test]
    fn position_counts_lines_and_characters() {
        let script = "var n = 0;\nvar q;\n  é";
        let err = parse_script(script).unwrap_err();
        match err {
            Error::Script {
                line,
                column,
                message,
            } => {
                assert_eq!((line, column), (3, 3));
                assert!(message.contains("\"é\""), "{message}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_ipv4_fast_path_refuses_what_std_refuses() {
        for text in [
            "",
            "1",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3.4",
            "1..2.3",
            "00.0.0.0",
            "1.2.3.04",
            "1.2.3.00",
            "256.0.0.1",
            "1.2.3.1000",
            "1.2.3.4a",
            "0x1.2.3.4",
            "1.2.3.-4",
            "::1",
            "1.2.3.4:80",
        ] {
            assert_eq!(
                parse_ipv4(text.as_bytes()),
                text.parse::<std::net::Ipv4Addr>().ok(),
                "{text:?}"
            );
            assert_eq!(parse_ip(text), text.parse::<IpAddr>().ok(), "{text:?}");
        }
        assert_eq!(
            parse_ipv4(b"0.10.255.199"),
            Some(std::net::Ipv4Addr::new(0, 10, 255, 199))
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn valid_script() -> String {
            client_script(&[
                client_pair(
                    's',
                    7,
                    &format!(
                        "ipsource = {A},{B} & destinationzone = EXTERNAL,PEERING & destinationzone != INTERNAL"
                    ),
                    HOUR,
                    2,
                ),
                client_pair(
                    'r',
                    8,
                    &format!("ipdestination = {A},{B} & sourcezone = EXTERNAL"),
                    HOUR,
                    2,
                ),
            ])
        }

        fn check(history: &FlowHistory, script: &str) -> Result<(), TestCaseError> {
            match answer_script(history, script, offset!(-03:00)) {
                Ok(answer) => prop_assert!(answer.ends_with('\n') || answer.is_empty()),
                Err(Error::Script {
                    line,
                    column,
                    message,
                }) => {
                    prop_assert!(line >= 1 && line <= script.matches('\n').count() + 1);
                    prop_assert!(column >= 1);
                    prop_assert!(!message.is_empty() && !message.contains('\n'));
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            #[test]
            fn random_text_never_panics(script in "\\PC{0,300}") {
                check(&history(), &script)?;
            }

            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let script = String::from_utf8_lossy(&bytes);
                check(&history(), &script)?;
            }

            #[test]
            fn mutated_valid_scripts_never_panic(
                edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..4),
                cloudstack in any::<bool>(),
            ) {
                let mut script: Vec<char> = if cloudstack {
                    cloudstack_script(&format!("{A},{B}"), "EXTERNAL", "INTERNAL", "20261101 10:00:00", "20261101 11:00:00")
                } else {
                    valid_script()
                }
                .chars()
                .collect();
                for (index, op, c) in edits {
                    let at = index.index(script.len() + 1);
                    match op {
                        0 => script.insert(at, c),
                        1 if at < script.len() => { script.remove(at); }
                        _ if at < script.len() => script[at] = c,
                        _ => script.push(c),
                    }
                }
                let script: String = script.into_iter().collect();
                check(&history(), &script)?;
            }

            #[test]
            fn truncated_valid_scripts_are_refused(cut in 0usize..1000) {
                let script = valid_script();
                let cut = cut % script.len();
                // Cutting inside the final statement always leaves it incomplete.
                prop_assume!(cut < script.trim_end().len() - 1);
                let truncated = &script[..cut];
                prop_assert!(parse_script(truncated).is_err());
            }
        }

        /// Text made of the bytes an address may be written with, often
        /// shaped like a dotted quad.
        fn address_like() -> impl Strategy<Value = String> {
            prop_oneof![
                "[0-9.]{0,20}",
                "[0-9a-fA-F:.]{0,45}",
                (
                    proptest::collection::vec((0u32..1000, 0usize..3), 1..6),
                    any::<bool>()
                )
                    .prop_map(|(parts, trailing_dot)| {
                        let mut text = parts
                            .iter()
                            .map(|&(n, zeros)| format!("{}{n}", "0".repeat(zeros)))
                            .collect::<Vec<_>>()
                            .join(".");
                        if trailing_dot {
                            text.push('.');
                        }
                        text
                    }),
                any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
                any::<std::net::Ipv6Addr>().prop_map(|ip| ip.to_string()),
            ]
        }

        /// The rows `evaluate` must print for a client script, by `format!`.
        fn formatted_client_answer(history: &FlowHistory, script: &Script) -> String {
            let Script::Client(queries) = script else {
                panic!("a client script")
            };
            let mut out = String::new();
            let mut count = 0;
            for (q, prefix) in queries {
                let rows = history.top_n(
                    &q.ips,
                    q.side,
                    &q.zones,
                    q.start.assume_utc(),
                    q.end.assume_utc(),
                    q.n,
                );
                for (ip, bytes) in rows {
                    out += &format!("{prefix}{ip},{bytes}\n");
                    count += 1;
                }
            }
            out + &format!("end,{count}\n")
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn the_ipv4_fast_path_agrees_with_std(text in address_like()) {
                let fast = parse_ipv4(text.as_bytes());
                prop_assert_eq!(fast, text.parse::<std::net::Ipv4Addr>().ok(), "{:?}", text);
                prop_assert_eq!(parse_ip(&text), text.parse::<IpAddr>().ok(), "{:?}", text);
            }

            #[test]
            fn lines_print_as_display(n in any::<u64>(), small in 0u64..1000, ip in any::<IpAddr>()) {
                let mut line = Line::new();
                line.ip(ip);
                line.byte(b',');
                line.number(n);
                line.byte(b',');
                line.number(small);
                prop_assert_eq!(
                    std::str::from_utf8(line.as_bytes()).unwrap(),
                    format!("{ip},{n},{small}")
                );
            }

            #[test]
            fn string_content_ends_at_the_first_stop_byte(
                text in "[a-z\"\\\\\r\né, ]{0,40}",
                pad in 0usize..17,
            ) {
                let text = format!("{}{text}", "x".repeat(pad));
                let naive = text
                    .find(['"', '\\', '\n', '\r'])
                    .unwrap_or(text.len());
                prop_assert_eq!(string_content_len(text.as_bytes()), naive);
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn answers_print_rows_as_display(
                queries in proptest::collection::vec(
                    (
                        any::<bool>(),
                        0u32..40,
                        0usize..30,
                        proptest::collection::vec(prop_oneof![
                            Just(A), Just(B), Just(C), Just(PEER), Just("10.0.0.1"), Just("::ffff:1.2.3.4")
                        ], 1..6),
                        0u64..6,
                    ),
                    0..5,
                ),
            ) {
                let h = history();
                let pairs: Vec<String> = queries
                    .iter()
                    .map(|(sent, tag, zeros, ips, n)| {
                        let side = if *sent { 's' } else { 'r' };
                        let field = if *sent { "ipsource" } else { "ipdestination" };
                        client_pair(side, 0, &format!("{field} = {}", ips.join(",")), HOUR, *n)
                            .replace(&format!("{side},0,"), &format!("{side},{}{tag},", "0".repeat(*zeros)))
                    })
                    .collect();
                let script = client_script(&pairs);
                let parsed = parse_script(&script).unwrap();
                prop_assert_eq!(
                    evaluate(&h, &parsed, UtcOffset::UTC),
                    formatted_client_answer(&h, &parsed)
                );
            }
        }
    }
}
