use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::str::FromStr;

use nom::bytes::complete::{tag, take_till};
use nom::character::complete::digit1;
use nom::combinator::all_consuming;
use nom::multi::separated_list1;
use nom::{IResult, Parser};
use usage_model::{ByteCounts, QueryTag, TrafficAnswer};

use crate::{Error, ScriptRequest, Side};

/// Characters of a line kept in an error message.
const MAX_CONTENT_CHARS: usize = 200;

/// One row of an answer: the bytes one address moved one way for one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerRow {
    /// The 1-based line number the row was read from.
    pub line: usize,
    /// Sent (`s`) or received (`r`).
    pub side: Side,
    /// The tag of the query the row answers.
    pub tag: QueryTag,
    /// The address.
    pub ip: IpAddr,
    /// The bytes moved.
    pub bytes: u64,
}

/// A line of an answer, as read.
enum Line {
    Row {
        side: Side,
        tag: QueryTag,
        ip: IpAddr,
        bytes: u64,
    },
    Sentinel {
        count: u64,
    },
}

/// Parses an answer into its rows, checking its form but not which request
/// it answers: every line must be `s,TAG,IP,BYTES`, `r,TAG,IP,BYTES` or, last,
/// the sentinel `end,COUNT` where `COUNT` is the number of rows before it.
/// Lines end in `\n` (`\r\n` is accepted); the sentinel's own `\n` is optional.
///
/// # Errors
///
/// - [`Error::EmptyAnswer`] for an empty body;
/// - [`Error::Truncated`] when the body ends before the sentinel (including a
///   last line cut short);
/// - [`Error::Malformed`] with the 1-based line number and its content for an
///   HTML page, an empty or unknown line, a bad tag, address or byte count
///   (negative, not an integer, over `u64`), a row repeated for the same side,
///   tag and address, a sentinel whose count is not the number of rows, and
///   any line after the sentinel.
///
/// # Example
///
/// ```
/// use traffic_sentinel_client::{parse_answer_rows, Side};
///
/// let rows = parse_answer_rows("s,7,203.0.113.7,1200\nr,7,2001:db8::1,80\nend,2\n")?;
/// assert_eq!(rows.len(), 2);
/// assert_eq!((rows[1].side, rows[1].bytes), (Side::Received, 80));
/// assert!(parse_answer_rows("s,7,203.0.113.7,1200\n").is_err());
/// # Ok::<(), traffic_sentinel_client::Error>(())
/// ```
pub fn parse_answer_rows(body: impl AsRef<[u8]>) -> Result<Vec<AnswerRow>, Error> {
    let mut rows = Vec::new();
    let mut seen: HashSet<(Side, QueryTag, IpAddr), FastHash> = HashSet::default();
    scan(body.as_ref(), |row| {
        if !seen.insert((row.side, row.tag, row.ip)) {
            return Err(duplicate_row(row));
        }
        rows.push(*row);
        Ok(())
    })?;
    Ok(rows)
}

/// Why a row repeats an earlier one.
fn duplicate_row(row: &AnswerRow) -> String {
    format!(
        "duplicate row: {} of ip {} under tag {} already given",
        row.side.letter(),
        row.ip,
        row.tag
    )
}

/// Parses the answer to `request` into byte counts per `(tag, ip)`: sent
/// bytes from `s` rows, received bytes from `r` rows. An address with a row
/// for one side only has zero bytes for the other; an address with no row
/// moved no byte in the billable zones and is absent.
///
/// Since an address has at most one row per side and every row names an
/// address of its chunk, no `topN` can answer more rows than its `N`.
///
/// # Errors
///
/// Everything [`parse_answer_rows`] refuses, and [`Error::Malformed`] for a
/// row whose tag is not a query of `request` or whose address was not asked
/// for under that tag.
///
/// # Example
///
/// ```
/// use time::macros::datetime;
/// use traffic_sentinel_client::{parse_answer, plan_requests, MonitorConfig};
/// use usage_model::{ByteCounts, QueryTag, TimeInterval, TrafficQuery};
///
/// let config = MonitorConfig::builder("http://10.0.0.1:8080").build()?;
/// let ip = "203.0.113.7".parse().unwrap();
/// let query = TrafficQuery {
///     tag: QueryTag(7),
///     interval: TimeInterval::new(datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-01 11:00 UTC)).unwrap(),
///     ips: vec![ip],
/// };
/// let request = &plan_requests(&config, &[query])?[0];
/// let answer = parse_answer("r,7,203.0.113.7,512\nend,1\n", request)?;
/// assert_eq!(answer.get(QueryTag(7), ip), Some(ByteCounts { sent: 0, received: 512 }));
/// # Ok::<(), traffic_sentinel_client::Error>(())
/// ```
pub fn parse_answer(
    body: impl AsRef<[u8]>,
    request: &ScriptRequest,
) -> Result<TrafficAnswer, Error> {
    let mut answer = TrafficAnswer::new();
    parse_answer_into(body.as_ref(), request, &mut answer)?;
    Ok(answer)
}

/// Parses the answer to `request` and adds its counts to `answer`.
///
/// Requests of one plan ask about disjoint `(tag, ip)` pairs, so adding
/// never merges two answers' counts.
pub(crate) fn parse_answer_into(
    body: &[u8],
    request: &ScriptRequest,
    answer: &mut TrafficAnswer,
) -> Result<(), Error> {
    // Every (tag, ip) asked, numbered in script order, and per tag its
    // addresses sorted with their numbers: rows come grouped by tag, so a
    // row is found by a binary search in its tag's (often cached) list.
    let mut pairs: Vec<(QueryTag, IpAddr)> = Vec::with_capacity(request.ip_count());
    let mut by_tag: HashMap<QueryTag, Vec<(IpAddr, usize)>, FastHash> = HashMap::default();
    for chunk in request.chunks() {
        let ips = by_tag.entry(chunk.tag()).or_default();
        for &ip in chunk.ips() {
            ips.push((ip, pairs.len()));
            pairs.push((chunk.tag(), ip));
        }
    }
    for ips in by_tag.values_mut() {
        if !ips.is_sorted() {
            ips.sort_unstable();
        }
        // Chunks of one tag never repeat an address (the planner refuses
        // queries that do); keep the first number if they ever did.
        ips.dedup_by_key(|(ip, _)| *ip);
    }
    // Per pair: its counts, the sides given (bit 1 sent, bit 2 received)
    // and the line of its last row.
    let mut counts = vec![ByteCounts::ZERO; pairs.len()];
    let mut given = vec![0u8; pairs.len()];
    let mut lines = vec![0usize; pairs.len()];
    let mut current: Option<(QueryTag, &[(IpAddr, usize)])> = None;
    scan(body, |row| {
        let ips = match current {
            Some((tag, ips)) if tag == row.tag => ips,
            _ => {
                let ips = by_tag
                    .get(&row.tag)
                    .ok_or_else(|| format!("tag {} is not a query of this request", row.tag))?;
                current = Some((row.tag, ips));
                ips
            }
        };
        let index = match ips.binary_search_by(|(ip, _)| ip.cmp(&row.ip)) {
            Ok(found) => ips[found].1,
            Err(_) => {
                return Err(format!(
                    "ip {} was not asked for under tag {}",
                    row.ip, row.tag
                ));
            }
        };
        let side = match row.side {
            Side::Sent => 1,
            Side::Received => 2,
        };
        if given[index] & side != 0 {
            return Err(duplicate_row(row));
        }
        given[index] |= side;
        lines[index] = row.line;
        match row.side {
            Side::Sent => counts[index].sent = row.bytes,
            Side::Received => counts[index].received = row.bytes,
        }
        Ok(())
    })?;
    // Added in script order: for a plan's queries, ascending (tag, ip).
    for (index, &(tag, ip)) in pairs.iter().enumerate() {
        if given[index] == 0 {
            continue;
        }
        answer.add(tag, ip, counts[index]).map_err(|err| {
            let line = lines[index];
            let content = body.split(|&b| b == b'\n').nth(line - 1).unwrap_or(&[]);
            Error::Malformed {
                line,
                content: printable(content.strip_suffix(b"\r").unwrap_or(content)),
                reason: err.to_string(),
            }
        })?;
    }
    Ok(())
}

/// Reads every line of `body`, hands each row to `on_row` (which may refuse
/// it with a reason) and checks the sentinel. Returns the number of rows.
fn scan(
    body: &[u8],
    mut on_row: impl FnMut(&AnswerRow) -> Result<(), String>,
) -> Result<usize, Error> {
    if body.is_empty() {
        return Err(Error::EmptyAnswer);
    }
    let malformed = |line: usize, content: &[u8], reason: String| Error::Malformed {
        line,
        content: printable(content),
        reason,
    };
    if looks_like_html(body) {
        let first = body.split(|&b| b == b'\n').next().unwrap_or(body);
        return Err(malformed(1, first, "answer is html, not txt".to_owned()));
    }
    let mut rows = 0usize;
    let mut sentinel_line = None;
    let mut rest = body;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let (raw, terminated) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let raw = &rest[..end];
                rest = &rest[end + 1..];
                (raw, true)
            }
            None => {
                let raw = rest;
                rest = &[];
                (raw, false)
            }
        };
        let content = raw.strip_suffix(b"\r").unwrap_or(raw);
        if let Some(sentinel) = sentinel_line {
            return Err(malformed(
                number,
                content,
                format!("line after the sentinel on line {sentinel}"),
            ));
        }
        match parse_line(content) {
            Ok(Line::Sentinel { count }) => {
                if count != rows as u64 {
                    return Err(malformed(
                        number,
                        content,
                        format!("sentinel counts {count} row(s) but {rows} came before it"),
                    ));
                }
                sentinel_line = Some(number);
            }
            // A last line without its newline was cut short.
            Ok(Line::Row { .. }) | Err(_) if !terminated => {
                return Err(Error::Truncated { rows_seen: rows });
            }
            Ok(Line::Row {
                side,
                tag,
                ip,
                bytes,
            }) => {
                let row = AnswerRow {
                    line: number,
                    side,
                    tag,
                    ip,
                    bytes,
                };
                on_row(&row).map_err(|reason| malformed(number, content, reason))?;
                rows += 1;
            }
            Err(reason) => return Err(malformed(number, content, reason)),
        }
    }
    match sentinel_line {
        Some(_) => Ok(rows),
        None => Err(Error::Truncated { rows_seen: rows }),
    }
}

/// Whether the body is an HTML page (an error page from a proxy or a login
/// form) rather than text rows.
fn looks_like_html(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'<')
}

/// The comma-separated fields of a line.
fn fields(line: &[u8]) -> IResult<&[u8], Vec<&[u8]>> {
    all_consuming(separated_list1(tag(","), take_till(|b| b == b','))).parse(line)
}

/// Parses one line (without its line ending) or says what is wrong with it.
fn parse_line(line: &[u8]) -> Result<Line, String> {
    match parse_row(line) {
        Some(row) => Ok(row),
        None => parse_line_checked(line),
    }
}

/// The fast path of [`parse_line`]: a well-formed row, or `None` for
/// anything else (the sentinel, or a line [`parse_line_checked`] explains).
/// It accepts exactly the rows `parse_line_checked` accepts, with the same
/// values.
fn parse_row(line: &[u8]) -> Option<Line> {
    let (side, rest) = match line {
        [b's', b',', rest @ ..] => (Side::Sent, rest),
        [b'r', b',', rest @ ..] => (Side::Received, rest),
        _ => return None,
    };
    let comma = rest.iter().position(|&b| b == b',')?;
    let tag = u32::try_from(digits(&rest[..comma])?).ok()?;
    let rest = &rest[comma + 1..];
    let comma = rest.iter().position(|&b| b == b',')?;
    let ip = std::str::from_utf8(&rest[..comma]).ok()?.parse().ok()?;
    let bytes = digits(&rest[comma + 1..])?;
    Some(Line::Row {
        side,
        tag: QueryTag(tag),
        ip,
        bytes,
    })
}

/// A non-empty run of ASCII digits as a `u64`; `None` for anything else,
/// including a value over `u64::MAX`.
fn digits(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    field.iter().try_fold(0u64, |value, &b| {
        if b.is_ascii_digit() {
            value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The checked path of [`parse_line`], which says what is wrong.
fn parse_line_checked(line: &[u8]) -> Result<Line, String> {
    if line.is_empty() {
        return Err("empty line".to_owned());
    }
    let fields = match fields(line) {
        Ok((_, fields)) => fields,
        Err(_) => return Err("unreadable line".to_owned()),
    };
    let side = match fields[0] {
        b"end" => {
            if fields.len() != 2 {
                return Err(format!(
                    "sentinel must be `end,COUNT`, found {} field(s)",
                    fields.len()
                ));
            }
            let count = decimal::<u64>(fields[1])
                .map_err(|problem| format!("sentinel count {}", problem.describe(fields[1])))?;
            return Ok(Line::Sentinel { count });
        }
        b"s" => Side::Sent,
        b"r" => Side::Received,
        other => {
            return Err(format!(
                "unknown row kind {:?}: expected s, r or end",
                printable(other)
            ));
        }
    };
    if fields.len() != 4 {
        return Err(format!(
            "expected 4 comma-separated fields (side,tag,ip,bytes), found {}",
            fields.len()
        ));
    }
    let tag = decimal::<u32>(fields[1])
        .map(QueryTag)
        .map_err(|problem| format!("tag {}", problem.describe(fields[1])))?;
    let ip = std::str::from_utf8(fields[2])
        .ok()
        .and_then(|text| IpAddr::from_str(text).ok())
        .ok_or_else(|| format!("bad ip address {:?}", printable(fields[2])))?;
    let bytes = decimal::<u64>(fields[3])
        .map_err(|problem| format!("byte count {}", problem.describe(fields[3])))?;
    Ok(Line::Row {
        side,
        tag,
        ip,
        bytes,
    })
}

/// Why a field is not a non-negative decimal integer.
enum DecimalProblem {
    Negative,
    NotInteger,
    TooLarge,
}

impl DecimalProblem {
    fn describe(&self, field: &[u8]) -> String {
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

/// A non-negative decimal integer: digits only, no sign, no space.
fn decimal<T: FromStr>(field: &[u8]) -> Result<T, DecimalProblem> {
    let digits: IResult<&[u8], &[u8]> = all_consuming(digit1).parse(field);
    match digits {
        Ok((_, digits)) => std::str::from_utf8(digits)
            .ok()
            .and_then(|text| text.parse().ok())
            // Only digits: the parse failed because the value is too large.
            .ok_or(DecimalProblem::TooLarge),
        Err(_)
            if field.starts_with(b"-")
                && all_consuming(digit1::<_, nom::error::Error<&[u8]>>)
                    .parse(&field[1..])
                    .is_ok() =>
        {
            Err(DecimalProblem::Negative)
        }
        Err(_) => Err(DecimalProblem::NotInteger),
    }
}

/// The hash of the parser's sets, keyed by tags and addresses from the
/// answer: a multiply-rotate hash (as rustc's `FxHash`) from a per-set
/// random seed, so a server cannot plan collisions.
#[derive(Clone, Debug)]
struct FastHash(u64);

impl Default for FastHash {
    fn default() -> FastHash {
        FastHash(RandomState::new().build_hasher().finish())
    }
}

impl BuildHasher for FastHash {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

/// The hasher of [`FastHash`].
struct FastHasher(u64);

impl FastHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn write_isize(&mut self, i: isize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // Spread the low bits into the high ones, which pick the buckets'
        // control bytes.
        self.0 ^ (self.0 >> 29)
    }
}

/// `bytes` as text for an error message: lossily decoded, cut to
/// [`MAX_CONTENT_CHARS`] characters.
fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(MAX_CONTENT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use proptest::prelude::*;
    use time::macros::datetime;
    use usage_model::{TimeInterval, TrafficQuery};

    use super::*;
    use crate::{MonitorConfig, plan_requests};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A request for tag 7 over three addresses and tag 8 over one.
    fn request() -> ScriptRequest {
        let config = MonitorConfig::builder("http://10.0.0.1:8080")
            .build()
            .unwrap();
        let interval = TimeInterval::new(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC),
        )
        .unwrap();
        let queries = [
            TrafficQuery {
                tag: QueryTag(7),
                interval,
                ips: vec![ip("203.0.113.7"), ip("2001:db8::1"), ip("198.51.100.1")],
            },
            TrafficQuery {
                tag: QueryTag(8),
                interval,
                ips: vec![ip("203.0.113.7")],
            },
        ];
        plan_requests(&config, &queries).unwrap().remove(0)
    }

    #[test]
    fn parses_rows_into_counts() {
        let body = "s,7,203.0.113.7,1200\nr,7,203.0.113.7,300\nr,7,2001:db8::1,80\ns,8,203.0.113.7,5\nend,4\n";
        let answer = parse_answer(body, &request()).unwrap();
        assert_eq!(answer.len(), 3);
        assert_eq!(
            answer.get(QueryTag(7), ip("203.0.113.7")),
            Some(ByteCounts {
                sent: 1200,
                received: 300
            })
        );
        // Received only: present with sent = 0.
        assert_eq!(
            answer.get(QueryTag(7), ip("2001:db8::1")),
            Some(ByteCounts {
                sent: 0,
                received: 80
            })
        );
        assert_eq!(
            answer.get(QueryTag(8), ip("203.0.113.7")),
            Some(ByteCounts {
                sent: 5,
                received: 0
            })
        );
        assert_eq!(answer.get(QueryTag(7), ip("198.51.100.1")), None);
    }

    #[test]
    fn accepts_crlf_and_a_sentinel_without_newline() {
        let request = request();
        for body in [
            "s,7,203.0.113.7,1\r\nend,1\r\n",
            "s,7,203.0.113.7,1\nend,1",
            "s,7,203.0.113.7,1\r\nend,1",
        ] {
            let answer = parse_answer(body, &request).unwrap();
            assert_eq!(
                answer.get(QueryTag(7), ip("203.0.113.7")),
                Some(ByteCounts {
                    sent: 1,
                    received: 0
                })
            );
        }
        assert!(parse_answer("end,0\n", &request).unwrap().is_empty());
        assert!(parse_answer("end,0", &request).unwrap().is_empty());
    }

    #[test]
    fn rows_keep_their_line_numbers() {
        let rows =
            parse_answer_rows("r,1,::1,0\ns,4294967295,1.2.3.4,18446744073709551615\nend,2\n")
                .unwrap();
        assert_eq!(
            rows,
            vec![
                AnswerRow {
                    line: 1,
                    side: Side::Received,
                    tag: QueryTag(1),
                    ip: ip("::1"),
                    bytes: 0
                },
                AnswerRow {
                    line: 2,
                    side: Side::Sent,
                    tag: QueryTag(u32::MAX),
                    ip: ip("1.2.3.4"),
                    bytes: u64::MAX
                },
            ]
        );
    }

    /// Every way an answer can be wrong, with the line and reason expected.
    #[test]
    fn malformed_answers_name_line_and_content() {
        let long = format!("s,7,{},1", "x".repeat(500));
        let cases: Vec<(String, usize, &str, &str)> = vec![
            (
                "x,7,203.0.113.7,1\nend,1\n".into(),
                1,
                "x,7,203.0.113.7,1",
                "unknown row kind \"x\"",
            ),
            (
                "S,7,203.0.113.7,1\nend,1\n".into(),
                1,
                "S,7,203.0.113.7,1",
                "unknown row kind",
            ),
            (
                "s,9,203.0.113.7,1\nend,1\n".into(),
                1,
                "s,9,203.0.113.7,1",
                "tag 9 is not a query of this request",
            ),
            (
                "s,8,2001:db8::1,1\nend,1\n".into(),
                1,
                "s,8,2001:db8::1,1",
                "ip 2001:db8::1 was not asked for under tag 8",
            ),
            (
                "s,7,203.0.113.7,1\ns,7,203.0.113.300,1\nend,2\n".into(),
                2,
                "s,7,203.0.113.300,1",
                "bad ip address \"203.0.113.300\"",
            ),
            (
                "s,7,fe80::1%eth0,1\nend,1\n".into(),
                1,
                "s,7,fe80::1%eth0,1",
                "bad ip address",
            ),
            ("s,7,,1\nend,1\n".into(), 1, "s,7,,1", "bad ip address \"\""),
            (
                "s,7,203.0.113.7,-5\nend,1\n".into(),
                1,
                "s,7,203.0.113.7,-5",
                "byte count \"-5\" is negative",
            ),
            (
                "s,7,203.0.113.7,1.5\nend,1\n".into(),
                1,
                "s,7,203.0.113.7,1.5",
                "byte count \"1.5\" is not a non-negative decimal integer",
            ),
            (
                "s,7,203.0.113.7,+5\nend,1\n".into(),
                1,
                "s,7,203.0.113.7,+5",
                "not a non-negative decimal integer",
            ),
            (
                "s,7,203.0.113.7, 5\nend,1\n".into(),
                1,
                "s,7,203.0.113.7, 5",
                "not a non-negative decimal integer",
            ),
            (
                "s,7,203.0.113.7,\nend,1\n".into(),
                1,
                "s,7,203.0.113.7,",
                "not a non-negative decimal integer",
            ),
            (
                "s,7,203.0.113.7,1e3\nend,1\n".into(),
                1,
                "s,7,203.0.113.7,1e3",
                "not a non-negative decimal integer",
            ),
            (
                "s,7,203.0.113.7,18446744073709551616\nend,1\n".into(),
                1,
                "s,7,203.0.113.7,18446744073709551616",
                "byte count \"18446744073709551616\" is too large",
            ),
            (
                "s,4294967296,203.0.113.7,1\nend,1\n".into(),
                1,
                "s,4294967296,203.0.113.7,1",
                "tag \"4294967296\" is too large",
            ),
            (
                "s,-7,203.0.113.7,1\nend,1\n".into(),
                1,
                "s,-7,203.0.113.7,1",
                "tag \"-7\" is negative",
            ),
            (
                "s,seven,203.0.113.7,1\nend,1\n".into(),
                1,
                "s,seven,203.0.113.7,1",
                "tag \"seven\" is not",
            ),
            (
                "s,7,203.0.113.7\nend,1\n".into(),
                1,
                "s,7,203.0.113.7",
                "expected 4 comma-separated fields (side,tag,ip,bytes), found 3",
            ),
            (
                "s,7,203.0.113.7,1,2\nend,1\n".into(),
                1,
                "s,7,203.0.113.7,1,2",
                "found 5",
            ),
            (
                "s,7,203.0.113.7,1\ns,7,203.0.113.7,2\nend,2\n".into(),
                2,
                "s,7,203.0.113.7,2",
                "duplicate row: s of ip 203.0.113.7 under tag 7",
            ),
            ("s,7,203.0.113.7,1\n\nend,1\n".into(), 2, "", "empty line"),
            (
                "s,7,203.0.113.7,1\nend,1\ns,7,2001:db8::1,1\n".into(),
                3,
                "s,7,2001:db8::1,1",
                "line after the sentinel on line 2",
            ),
            (
                "s,7,203.0.113.7,1\nend,1\n\n".into(),
                3,
                "",
                "line after the sentinel",
            ),
            (
                "s,7,203.0.113.7,1\nend,1\nend,1\n".into(),
                3,
                "end,1",
                "line after the sentinel",
            ),
            (
                "s,7,203.0.113.7,1\nend,2\n".into(),
                2,
                "end,2",
                "sentinel counts 2 row(s) but 1 came before it",
            ),
            (
                "end,0,1\n".into(),
                1,
                "end,0,1",
                "sentinel must be `end,COUNT`, found 3 field(s)",
            ),
            (
                "end,x\n".into(),
                1,
                "end,x",
                "sentinel count \"x\" is not a non-negative decimal integer",
            ),
            ("end\n".into(), 1, "end", "found 1 field(s)"),
            (
                "<html><body>Login</body></html>\n".into(),
                1,
                "<html><body>Login</body></html>",
                "answer is html, not txt",
            ),
            (
                "  \n<!DOCTYPE html>\n<html>".into(),
                1,
                "  ",
                "answer is html, not txt",
            ),
            (
                "hello world\nend,0\n".into(),
                1,
                "hello world",
                "unknown row kind \"hello world\"",
            ),
            (format!("{long}\nend,1\n"), 1, "*", "bad ip address"),
        ];
        let request = request();
        for (body, line, content, reason) in cases {
            match parse_answer(&body, &request) {
                Err(Error::Malformed {
                    line: l,
                    content: c,
                    reason: r,
                }) => {
                    assert_eq!(l, line, "{body:?}");
                    if content != "*" {
                        assert_eq!(c, content, "{body:?}");
                    }
                    assert!(r.contains(reason), "{body:?}: {r}");
                    let message = Error::Malformed {
                        line: l,
                        content: c,
                        reason: r,
                    }
                    .to_string();
                    assert!(
                        message.starts_with(&format!("malformed answer at line {line}: ")),
                        "{message}"
                    );
                }
                other => panic!("{body:?}: expected malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn long_lines_are_cut_in_errors() {
        let body = format!("s,7,{},1\nend,1\n", "é".repeat(1000));
        match parse_answer(&body, &request()) {
            Err(Error::Malformed { content, .. }) => {
                assert_eq!(content.chars().count(), MAX_CONTENT_CHARS + 1);
                assert!(content.starts_with("s,7,éé"));
                assert!(content.ends_with('…'));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_utf8_content_is_shown_lossily() {
        match parse_answer(b"s,7,\xff\xfe,1\nend,1\n", &request()) {
            Err(Error::Malformed {
                line: 1,
                content,
                reason,
            }) => {
                assert_eq!(content, "s,7,\u{fffd}\u{fffd},1");
                assert!(reason.contains("bad ip address"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_sentinel_is_truncated() {
        let request = request();
        let cases = [
            ("s,7,203.0.113.7,1\nr,7,203.0.113.7,2\n", 2),
            ("s,7,203.0.113.7,1\nr,7,203.0.113.7,2", 1),
            ("s,7,203.0.113.7,1\nr,7,203.0.1", 1),
            ("s,7,203.0.113.7,1\nen", 1),
            ("s,7,203.0.113.7,1\r\n", 1),
            ("s,7,203.0", 0),
        ];
        for (body, rows_seen) in cases {
            match parse_answer(body, &request) {
                Err(Error::Truncated { rows_seen: seen }) => {
                    assert_eq!(seen, rows_seen, "{body:?}")
                }
                other => panic!("{body:?}: expected truncated, got {other:?}"),
            }
        }
        assert_eq!(
            Error::Truncated { rows_seen: 2 }.to_string(),
            "answer truncated: no sentinel line after 2 row(s)"
        );
    }

    #[test]
    fn empty_body_is_its_own_error() {
        assert!(matches!(
            parse_answer("", &request()),
            Err(Error::EmptyAnswer)
        ));
        assert!(matches!(parse_answer_rows(b""), Err(Error::EmptyAnswer)));
        // A lone newline is an empty line, not a missing answer.
        assert!(matches!(
            parse_answer("\n", &request()),
            Err(Error::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn more_rows_than_n_cannot_pass() {
        // Tag 8 asked one address (N = 1): a second row for it is refused.
        let body = "s,8,203.0.113.7,5\ns,8,2001:db8::1,6\nend,2\n";
        assert!(matches!(
            parse_answer(body, &request()),
            Err(Error::Malformed { line: 2, .. })
        ));
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
            any::<u16>().prop_map(|x| IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0xc000, x])),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_answer_rows(&body);
            let _ = parse_answer(&body, &request());
        }

        #[test]
        fn mutated_answers_never_panic(
            position in 0usize..200,
            byte in any::<u8>(),
            cut in 0usize..200,
        ) {
            let mut body = b"s,7,203.0.113.7,1200\nr,7,203.0.113.7,300\nr,7,2001:db8::1,80\ns,8,203.0.113.7,5\nend,4\n".to_vec();
            let len = body.len();
            body[position % len] = byte;
            body.truncate(len - cut % len);
            let _ = parse_answer(&body, &request());
        }

        #[test]
        fn printed_rows_parse_back(
            rows in proptest::collection::btree_map(
                (any::<bool>(), any::<u32>(), any_ip()),
                any::<u64>(),
                0..40,
            ),
            crlf in any::<bool>(),
        ) {
            let ending = if crlf { "\r\n" } else { "\n" };
            let mut body = String::new();
            for ((sent, tag, ip), bytes) in &rows {
                let letter = if *sent { 's' } else { 'r' };
                write!(body, "{letter},{tag},{ip},{bytes}{ending}").unwrap();
            }
            write!(body, "end,{}{ending}", rows.len()).unwrap();
            let parsed = parse_answer_rows(&body).unwrap();
            prop_assert_eq!(parsed.len(), rows.len());
            for (row, ((sent, tag, ip), bytes)) in parsed.iter().zip(&rows) {
                let side = if *sent { Side::Sent } else { Side::Received };
                prop_assert_eq!((row.side, row.tag, row.ip, row.bytes), (side, QueryTag(*tag), *ip, *bytes));
            }
        }
    }
}
