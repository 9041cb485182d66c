//! Answers: the rows of a body, checked line by line, and the byte counts
//! they give the queries of a request.

mod line;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use usage_model::{ByteCounts, QueryTag, Side, TrafficAnswer};

use self::line::{Line, line_end, looks_like_html, parse_ip, parse_line, printable};
use crate::{Error, ScriptRequest};

/// The hash of the parser's lookups (a row's address and tag, one lookup
/// per row): `foldhash`, which takes a few nanoseconds where SipHash takes
/// tens; the keys it hashes come from the request, which the answer can
/// only look up, not add to.
type FastState = foldhash::fast::RandomState;

/// One row of an answer: the bytes one address moved one way for one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerRow {
    /// The 1-based line number the row was read from.
    pub line: usize,
    /// Sent (`s`) or received (`r`).
    pub side: Side,
    /// The tag of the query the row answers.
    pub tag: QueryTag,
    /// The address, canonical: an IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) is its IPv4 address (DESIGN §4).
    pub ip: IpAddr,
    /// The bytes moved.
    pub bytes: u64,
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
    let body = body.as_ref();
    // A row takes 27 bytes or more for addresses of a few digits.
    let mut rows = Vec::with_capacity(body.len() / 32);
    // The addresses seen per side and tag: rows come grouped by side and
    // tag, so the set in use is small and stays in cache.
    let mut groups: HashMap<(Side, QueryTag), usize, FastState> = HashMap::default();
    let mut seen: Vec<HashSet<[u64; 2], FastState>> = Vec::new();
    let mut current: Option<((Side, QueryTag), usize)> = None;
    scan(body, |raw| {
        let ip = parse_ip(raw.ip_text)?;
        let row = AnswerRow {
            line: raw.line,
            side: raw.side,
            tag: raw.tag,
            ip,
            bytes: raw.bytes,
        };
        let key = (row.side, row.tag);
        let group = match current {
            Some((held, group)) if held == key => group,
            _ => {
                let group = *groups.entry(key).or_insert_with(|| {
                    seen.push(HashSet::default());
                    seen.len() - 1
                });
                current = Some((key, group));
                group
            }
        };
        if !seen[group].insert(address_key(row.ip)) {
            return Err(duplicate_row(row.side, row.tag, row.ip));
        }
        rows.push(row);
        Ok(())
    })?;
    Ok(rows)
}

/// Why a row repeats an earlier one.
fn duplicate_row(side: Side, tag: QueryTag, ip: IpAddr) -> String {
    format!(
        "duplicate row: {} of ip {ip} under tag {tag} already given",
        side.letter(),
    )
}

/// Parses the answer to `request` into byte counts per `(tag, ip)`: sent
/// bytes from `s` rows, received bytes from `r` rows. An address with a row
/// for one side only has zero bytes for the other; an address with no row
/// moved no byte in the billable zones and is absent. A row's address is
/// matched in its canonical form (an IPv4-mapped IPv6 address is its IPv4
/// address); the answer holds the address as the query asked it.
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
    let mut tags = RequestTags::new(request);
    // The tag of the last row and its place in `tags`: rows come grouped
    // by tag, so the tag is looked up once per group.
    let mut current: Option<(QueryTag, usize)> = None;
    scan(body, |row| {
        let at = match current {
            Some((tag, at)) if tag == row.tag => at,
            _ => {
                let at = *tags
                    .by_tag
                    .get(&row.tag)
                    .ok_or_else(|| format!("tag {} is not a query of this request", row.tag))?;
                current = Some((row.tag, at));
                at
            }
        };
        tags.tags[at].record(row)
    })?;
    let given: usize = tags.tags.iter().map(|tag| tag.given).sum();
    tags.tags.sort_unstable_by_key(|tag| tag.tag);
    let rows = || tags.tags.iter().flat_map(TagAnswer::rows);
    if answer.is_empty() {
        // Each pair at most once, in ascending order: built in one pass.
        if let Ok(built) = TrafficAnswer::from_rows(Counted::new(rows(), given)) {
            *answer = built;
            return Ok(());
        }
    }
    for (tag, ip, counts) in rows() {
        answer.add(tag, ip, counts).map_err(|err| {
            let line = last_line_of(body, tag, ip);
            let text = String::from_utf8_lossy(body);
            let content = text.split('\n').nth(line - 1).unwrap_or_default();
            Error::Malformed {
                line,
                content: printable(content.strip_suffix('\r').unwrap_or(content)),
                reason: err.to_string(),
            }
        })?;
    }
    Ok(())
}

/// An iterator known to yield `remaining` more items, which says so in its
/// size hint, so that `TrafficAnswer::from_rows` reserves room once.
struct Counted<I> {
    items: I,
    remaining: usize,
}

impl<I> Counted<I> {
    fn new(items: I, count: usize) -> Counted<I> {
        Counted {
            items,
            remaining: count,
        }
    }
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.items.next()?;
        self.remaining = self.remaining.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, self.items.size_hint().1)
    }
}

/// The line of the last row for `tag` and `ip` in a body that parsed; `1`
/// if there is none.
fn last_line_of(body: &[u8], tag: QueryTag, ip: IpAddr) -> usize {
    let mut last = 1;
    let _ = scan(body, |raw| {
        if raw.tag == tag && parse_ip(raw.ip_text) == Ok(ip.to_canonical()) {
            last = raw.line;
        }
        Ok(())
    });
    last
}

/// The queries of a request, one [`TagAnswer`] per tag, found by tag.
struct RequestTags {
    tags: Vec<TagAnswer>,
    by_tag: HashMap<QueryTag, usize, FastState>,
}

impl RequestTags {
    fn new(request: &ScriptRequest) -> RequestTags {
        let mut tags: Vec<TagAnswer> = Vec::new();
        let mut by_tag: HashMap<QueryTag, usize, FastState> = HashMap::default();
        for chunk in request.chunks() {
            let at = *by_tag.entry(chunk.tag()).or_insert_with(|| {
                tags.push(TagAnswer::new(chunk.tag()));
                tags.len() - 1
            });
            tags[at].ips.extend_from_slice(chunk.ips());
        }
        for tag in &mut tags {
            tag.sides = vec![0; tag.ips.len()];
            tag.counts = vec![[0; 2]; tag.ips.len()];
        }
        RequestTags { tags, by_tag }
    }
}

/// What the answer says about one query: per address asked (in script
/// order), the sides given (bit 1 sent, bit 2 received) and the counts,
/// zero for a side without a row; and a table from address to position,
/// built when the tag's first row comes, so that it is in cache while that
/// tag's rows are read.
struct TagAnswer {
    tag: QueryTag,
    ips: Vec<IpAddr>,
    by_address: Option<AddressTable>,
    sides: Vec<u8>,
    counts: Vec<[u64; 2]>,
    /// Addresses with a row.
    given: usize,
}

impl TagAnswer {
    fn new(tag: QueryTag) -> TagAnswer {
        TagAnswer {
            tag,
            ips: Vec::new(),
            by_address: None,
            sides: Vec::new(),
            counts: Vec::new(),
            given: 0,
        }
    }

    /// The position of the address a row names, or why it has none.
    fn position(&mut self, raw: &RawRow<'_>) -> Result<usize, String> {
        let ip = parse_ip(raw.ip_text)?;
        let ips = &self.ips;
        let by_address = self
            .by_address
            .get_or_insert_with(|| AddressTable::new(ips));
        by_address
            .get(ip)
            .map(|at| at as usize)
            .ok_or_else(|| format!("ip {ip} was not asked for under tag {}", raw.tag))
    }

    /// Records a row, or says why it cannot be.
    fn record(&mut self, raw: &RawRow<'_>) -> Result<(), String> {
        let at = self.position(raw)?;
        let (bit, field) = match raw.side {
            Side::Sent => (1, 0),
            Side::Received => (2, 1),
        };
        if self.sides[at] & bit != 0 {
            return Err(duplicate_row(
                raw.side,
                raw.tag,
                self.ips[at].to_canonical(),
            ));
        }
        self.given += usize::from(self.sides[at] == 0);
        self.sides[at] |= bit;
        self.counts[at][field] = raw.bytes;
        Ok(())
    }

    /// The addresses with a row and their counts, in ascending address order.
    fn rows(&self) -> impl Iterator<Item = (QueryTag, IpAddr, ByteCounts)> + '_ {
        let mut order = Vec::with_capacity(self.ips.len());
        push_in_address_order(&self.ips, &mut order);
        order.into_iter().filter_map(move |at| {
            let at = at as usize;
            (self.sides[at] != 0).then(|| {
                let [sent, received] = self.counts[at];
                (self.tag, self.ips[at], ByteCounts { sent, received })
            })
        })
    }
}

/// Positions of a query's addresses, by address: one table per family, so
/// that the IPv4 table (most addresses) takes 8 bytes a slot and stays in
/// the first-level cache while a tag's rows are read.
struct AddressTable {
    v4: HashMap<u32, u32, FastState>,
    v6: HashMap<u128, u32, FastState>,
}

impl AddressTable {
    /// A table of `ips`; an address listed twice (in two forms) keeps its
    /// first position. A query names far fewer than 2^32 addresses (its
    /// script would be gigabytes long): positions fit in u32.
    fn new(ips: &[IpAddr]) -> AddressTable {
        let v4_count = ips.iter().filter(|ip| ip.to_canonical().is_ipv4()).count();
        let mut table = AddressTable {
            v4: HashMap::with_capacity_and_hasher(v4_count, FastState::default()),
            v6: HashMap::with_capacity_and_hasher(ips.len() - v4_count, FastState::default()),
        };
        for (at, &ip) in ips.iter().enumerate() {
            match ip.to_canonical() {
                IpAddr::V4(v4) => table.v4.entry(v4.to_bits()).or_insert(at as u32),
                IpAddr::V6(v6) => table.v6.entry(v6.to_bits()).or_insert(at as u32),
            };
        }
        table
    }

    /// The position of `ip` (canonical), if the query asked about it.
    fn get(&self, ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(v4) => self.v4.get(&v4.to_bits()).copied(),
            IpAddr::V6(v6) => self.v6.get(&v6.to_bits()).copied(),
        }
    }
}

/// The key of an address in the duplicate sets: its canonical form as the
/// two words of an IPv6 address (an IPv4 address as its IPv4-mapped form).
fn address_key(ip: IpAddr) -> [u64; 2] {
    let bits = match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) => v6.to_bits(),
    };
    [(bits >> 64) as u64, bits as u64]
}

/// Appends the positions of `ips` to `order` in ascending address order
/// (and, for an address listed twice, ascending position).
///
/// Plans list each family's addresses in ascending order, often with the
/// families interleaved (every IPv4 address sorts before every IPv6 one):
/// both cases are recognised and take one pass instead of a sort, which
/// took a third of the parser benchmark's time (BENCHMARKS.md §2).
fn push_in_address_order(ips: &[IpAddr], order: &mut Vec<u32>) {
    // Within a family, an address's bits order it as `IpAddr` does.
    fn ascending<'a>(mut ips: impl Iterator<Item = &'a IpAddr>) -> bool {
        let mut previous: Option<u128> = None;
        ips.all(|&ip| {
            let bits = match ip {
                IpAddr::V4(v4) => u128::from(v4.to_bits()),
                IpAddr::V6(v6) => v6.to_bits(),
            };
            previous
                .replace(bits)
                .is_none_or(|previous| previous < bits)
        })
    }
    let positions = 0..ips.len() as u32;
    if ascending(ips.iter().filter(|ip| ip.is_ipv4()))
        && ascending(ips.iter().filter(|ip| ip.is_ipv6()))
    {
        order.extend(positions.clone().filter(|&at| ips[at as usize].is_ipv4()));
        order.extend(positions.filter(|&at| ips[at as usize].is_ipv6()));
        return;
    }
    order.extend(positions);
    order.sort_by_key(|&at| ips[at as usize]);
}

/// A row as [`scan`] reads it: its address field not yet read.
struct RawRow<'a> {
    line: usize,
    side: Side,
    tag: QueryTag,
    ip_text: &'a str,
    bytes: u64,
}

/// Reads every line of `body`, hands each row to `on_row` (which may
/// refuse it with a reason) and checks the sentinel. Returns the number of
/// rows.
///
/// The body is read as text: one UTF-8 check of the whole body, so no field
/// is checked again. Bytes that are not UTF-8 are replaced by U+FFFD, which
/// no field accepts, so a line holding one is refused as it would be with
/// any other wrong character (and shown lossily).
fn scan(
    body: &[u8],
    mut on_row: impl FnMut(&RawRow<'_>) -> Result<(), String>,
) -> Result<usize, Error> {
    if body.is_empty() {
        return Err(Error::EmptyAnswer);
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    };
    let body: &str = &text;
    if looks_like_html(body) {
        let first = body.split('\n').next().unwrap_or(body);
        return Err(Error::Malformed {
            line: 1,
            content: printable(first),
            reason: "answer is html, not txt".to_owned(),
        });
    }
    let mut rows = 0usize;
    let mut sentinel_line = None;
    let mut rest = body;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let (raw, terminated) = match line_end(rest) {
            Some(end) => {
                let raw = &rest[..end];
                rest = &rest[end + 1..];
                (raw, true)
            }
            None => (std::mem::take(&mut rest), false),
        };
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        let malformed = |reason: String| Error::Malformed {
            line: number,
            content: printable(content),
            reason,
        };
        if let Some(sentinel) = sentinel_line {
            return Err(malformed(format!(
                "line after the sentinel on line {sentinel}"
            )));
        }
        match parse_line(content) {
            Ok(Line::Sentinel { count }) => {
                if count != rows as u64 {
                    return Err(malformed(format!(
                        "sentinel counts {count} row(s) but {rows} came before it"
                    )));
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
                ip_text,
                bytes,
            }) => {
                let row = RawRow {
                    line: number,
                    side,
                    tag,
                    ip_text,
                    bytes,
                };
                on_row(&row).map_err(malformed)?;
                rows += 1;
            }
            Err(reason) => return Err(malformed(reason)),
        }
    }
    match sentinel_line {
        Some(_) => Ok(rows),
        None => Err(Error::Truncated { rows_seen: rows }),
    }
}
