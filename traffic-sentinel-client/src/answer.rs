use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use nom::bytes::complete::{tag, take_till};
use nom::character::complete::digit1;
use nom::combinator::all_consuming;
use nom::multi::separated_list1;
use nom::{IResult, Parser};
use usage_model::{ByteCounts, FastHashBuilder, QueryTag, Side, TrafficAnswer};

use crate::{Error, ScriptRequest};

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
    let body = body.as_ref();
    // A row takes 27 bytes or more for addresses of a few digits.
    let mut rows = Vec::with_capacity(body.len() / 32);
    // The addresses seen per side and tag: rows come grouped by side and
    // tag, so the set in use is small and stays in cache.
    let mut groups: HashMap<(Side, QueryTag), usize, FastHashBuilder> = HashMap::default();
    let mut seen: Vec<HashSet<IpAddr, FastHashBuilder>> = Vec::new();
    let mut current: Option<((Side, QueryTag), usize)> = None;
    scan(body, |row, _| {
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
        if !seen[group].insert(row.ip) {
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
    let index = RequestIndex::new(request);
    // Per pair (numbered in script order): the sides given (bit 1 sent,
    // bit 2 received), small enough to stay in cache, and the counts,
    // zero for a side without a row, only written while reading.
    let mut sides = vec![0u8; index.pairs.len()];
    let mut counts = vec![[0u64; 2]; index.pairs.len()];
    // The number of pairs with a row.
    let mut given = 0;
    let mut current: Option<(QueryTag, &AddressTable)> = None;
    scan(body, |row, address| {
        // Rows come grouped by tag: the tag's table is usually cached.
        let table = match current {
            Some((tag, table)) if tag == row.tag => table,
            _ => {
                let table = index
                    .table(row.tag)
                    .ok_or_else(|| format!("tag {} is not a query of this request", row.tag))?;
                current = Some((row.tag, table));
                table
            }
        };
        let Some(pair) = table.get(address) else {
            return Err(format!(
                "ip {} was not asked for under tag {}",
                row.ip, row.tag
            ));
        };
        let (bit, field) = match row.side {
            Side::Sent => (1, 0),
            Side::Received => (2, 1),
        };
        if sides[pair] & bit != 0 {
            return Err(duplicate_row(row));
        }
        given += usize::from(sides[pair] == 0);
        sides[pair] |= bit;
        counts[pair][field] = row.bytes;
        Ok(())
    })?;
    let found = |number: usize| {
        (sides[number] != 0).then(|| {
            let [sent, received] = counts[number];
            let (tag, ip) = index.pairs[number];
            (tag, ip, ByteCounts { sent, received })
        })
    };
    if answer.is_empty() {
        // Each pair at most once, in ascending order: built in one pass.
        let rows = index
            .ordered
            .iter()
            .filter_map(|&number| found(number as usize));
        if let Ok(built) = TrafficAnswer::from_rows(Counted::new(rows, given)) {
            *answer = built;
            return Ok(());
        }
    }
    // Added in script order: for a plan's queries, ascending (tag, ip).
    for (tag, ip, counts) in (0..index.pairs.len()).filter_map(found) {
        answer.add(tag, ip, counts).map_err(|err| {
            let line = last_line_of(body, tag, ip);
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

/// An iterator known to yield `remaining` more items, which says so in its
/// size hint (so a collection reserves room once).
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

    #[inline]
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
    let _ = scan(body, |row, _| {
        if (row.tag, row.ip) == (tag, ip) {
            last = row.line;
        }
        Ok(())
    });
    last
}

/// Every `(tag, ip)` pair a request asks about, numbered in script order;
/// per tag its addresses and numbers, and a table from address to number
/// built when the tag's first row comes (so it is in cache while that
/// tag's rows are read); the numbers in ascending `(tag, ip)` order.
struct RequestIndex {
    pairs: Vec<(QueryTag, IpAddr)>,
    by_tag: HashMap<QueryTag, TagAddresses, FastHashBuilder>,
    ordered: Vec<u32>,
}

/// The addresses of one tag with their pair numbers, and their table.
struct TagAddresses {
    ips: Vec<(IpAddr, u32)>,
    table: OnceCell<AddressTable>,
}

impl RequestIndex {
    fn new(request: &ScriptRequest) -> RequestIndex {
        let mut pairs: Vec<(QueryTag, IpAddr)> = Vec::with_capacity(request.ip_count());
        let mut by_tag: HashMap<QueryTag, TagAddresses, FastHashBuilder> = HashMap::default();
        for chunk in request.chunks() {
            let tag = by_tag.entry(chunk.tag()).or_insert_with(|| TagAddresses {
                ips: Vec::new(),
                table: OnceCell::new(),
            });
            for &ip in chunk.ips() {
                // A request asks about far fewer than 2^32 addresses (the
                // script would be gigabytes long); numbers fit in u32.
                tag.ips.push((ip, pairs.len() as u32));
                pairs.push((chunk.tag(), ip));
            }
        }
        let mut tags: Vec<QueryTag> = by_tag.keys().copied().collect();
        tags.sort_unstable();
        let mut ordered = Vec::with_capacity(pairs.len());
        for tag in tags {
            if let Some(addresses) = by_tag.get(&tag) {
                push_in_address_order(&addresses.ips, &mut ordered);
            }
        }
        RequestIndex {
            pairs,
            by_tag,
            ordered,
        }
    }

    /// The address table of `tag`, if the request asks about it.
    fn table(&self, tag: QueryTag) -> Option<&AddressTable> {
        let addresses = self.by_tag.get(&tag)?;
        Some(
            addresses
                .table
                .get_or_init(|| AddressTable::new(&addresses.ips)),
        )
    }
}

/// Appends the numbers of `ips` to `ordered` in ascending address order
/// (and, for an address listed twice, ascending number).
fn push_in_address_order(ips: &[(IpAddr, u32)], ordered: &mut Vec<u32>) {
    fn ascending<'a>(mut ips: impl Iterator<Item = &'a (IpAddr, u32)>) -> bool {
        let mut previous: Option<IpAddr> = None;
        ips.all(|&(ip, _)| previous.replace(ip).is_none_or(|previous| previous < ip))
    }
    if ascending(ips.iter()) {
        ordered.extend(ips.iter().map(|&(_, number)| number));
        return;
    }
    // Addresses listed in numeric order within each family, interleaved:
    // every IPv4 address sorts before every IPv6 one.
    let is_v4 = |&&(ip, _): &&(IpAddr, u32)| ip.is_ipv4();
    let is_v6 = |&&(ip, _): &&(IpAddr, u32)| ip.is_ipv6();
    if ascending(ips.iter().filter(is_v4)) && ascending(ips.iter().filter(is_v6)) {
        ordered.extend(ips.iter().filter(is_v4).map(|&(_, number)| number));
        ordered.extend(ips.iter().filter(is_v6).map(|&(_, number)| number));
        return;
    }
    let mut sorted = ips.to_vec();
    sorted.sort_unstable();
    ordered.extend(sorted.iter().map(|&(_, number)| number));
}

/// A table from the addresses of one tag to their pair numbers, one hash
/// table per address family.
struct AddressTable {
    v4: ProbeTable<u32>,
    v6: ProbeTable<u128>,
}

impl AddressTable {
    /// A table of `ips`; an address listed twice keeps its first number.
    fn new(ips: &[(IpAddr, u32)]) -> AddressTable {
        let v4_count = ips.iter().filter(|(ip, _)| ip.is_ipv4()).count();
        let seed = FastHashBuilder::new().hash_one(ips.len());
        let mut table = AddressTable {
            v4: ProbeTable::with_capacity(v4_count, seed),
            v6: ProbeTable::with_capacity(ips.len() - v4_count, seed),
        };
        for &(ip, number) in ips {
            match ip {
                IpAddr::V4(v4) => table.v4.insert(v4.to_bits(), number),
                IpAddr::V6(v6) => table.v6.insert(v6.to_bits(), number),
            }
        }
        table
    }

    /// The pair number of `address`, if the tag asked about it.
    #[inline]
    fn get(&self, address: AddressKey) -> Option<usize> {
        let number = match address {
            AddressKey::V4(bits) => self.v4.get(bits),
            AddressKey::V6(bits) => self.v6.get(bits),
        };
        number.map(|number| number as usize)
    }
}

/// An address as integers, as the parser hands it over with a row (in
/// registers, where an `IpAddr` would go through memory) and as the
/// address tables look it up.
#[derive(Clone, Copy)]
enum AddressKey {
    V4(u32),
    V6(u128),
}

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> AddressKey {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4.to_bits()),
            IpAddr::V6(v6) => AddressKey::V6(v6.to_bits()),
        }
    }
}

/// An address's bits, as a key of a [`ProbeTable`].
trait AddressBits: Copy + Eq + Default {
    /// The bits folded into a word to hash.
    fn fold(self) -> u64;
}

impl AddressBits for u32 {
    fn fold(self) -> u64 {
        u64::from(self)
    }
}

impl AddressBits for u128 {
    fn fold(self) -> u64 {
        ((self >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self as u64)
    }
}

/// A hash table from address bits to numbers: open addressing with linear
/// probing, at most half full, hashed by a multiplication from a per-table
/// random seed. It holds only the request's own addresses, so an answer
/// cannot lengthen its probe runs; it can only look up.
struct ProbeTable<K> {
    /// `(key, number + 1)`; `0` marks an empty slot.
    slots: Vec<(K, u32)>,
    /// `64 - log2(slots.len())`: the high bits of a hash pick the slot.
    shift: u32,
    seed: u64,
}

impl<K: AddressBits> ProbeTable<K> {
    fn with_capacity(keys: usize, seed: u64) -> ProbeTable<K> {
        let capacity = (keys * 2).next_power_of_two().max(4);
        ProbeTable {
            slots: vec![(K::default(), 0); capacity],
            shift: 64 - capacity.trailing_zeros(),
            seed,
        }
    }

    /// Where the probe for `key` starts.
    #[inline]
    fn start(&self, key: K) -> usize {
        ((key.fold() ^ self.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Adds `key` with `number`, unless it is already there.
    fn insert(&mut self, key: K, number: u32) {
        let mask = self.slots.len() - 1;
        let mut slot = self.start(key);
        loop {
            let (held, stored) = &mut self.slots[slot];
            if *stored == 0 {
                *held = key;
                *stored = number.saturating_add(1);
                return;
            }
            if *held == key {
                return;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The number of `key`, if it is there.
    #[inline]
    fn get(&self, key: K) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut slot = self.start(key);
        loop {
            let (held, stored) = self.slots[slot];
            if stored == 0 {
                return None;
            }
            if held == key {
                return Some(stored - 1);
            }
            slot = (slot + 1) & mask;
        }
    }
}

/// Reads every line of `body`, hands each row and its address's key to
/// `on_row` (which may refuse it with a reason) and checks the sentinel.
/// Returns the number of rows.
fn scan(
    body: &[u8],
    mut on_row: impl FnMut(&AnswerRow, AddressKey) -> Result<(), String>,
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
        let line = rest;
        // The fast path: a well-formed row, with its line ending, before
        // the sentinel; anything else takes the checked path.
        let fast = match sentinel_line {
            None => parse_row(rest, number),
            Some(_) => None,
        };
        let (row, address) = match fast {
            Some((row, address, length)) => {
                rest = &rest[length..];
                (row, address)
            }
            None => match checked_line(&mut rest, number, rows, &mut sentinel_line)? {
                Some(row) => (row, AddressKey::from(row.ip)),
                None => continue,
            },
        };
        // One call for both paths, which lets it be inlined.
        on_row(&row, address).map_err(|reason| {
            let raw = line.split(|&b| b == b'\n').next().unwrap_or(line);
            malformed(number, raw.strip_suffix(b"\r").unwrap_or(raw), reason)
        })?;
        rows += 1;
    }
    match sentinel_line {
        Some(_) => Ok(rows),
        None => Err(Error::Truncated { rows_seen: rows }),
    }
}

/// The checked path of [`scan`] for line `number` at the start of `rest`,
/// after `rows` rows: moves `rest` past the line and returns its row,
/// `None` for the sentinel (noting its line in `sentinel_line`), or the
/// error the line makes.
#[inline(never)]
fn checked_line(
    rest: &mut &[u8],
    number: usize,
    rows: usize,
    sentinel_line: &mut Option<usize>,
) -> Result<Option<AnswerRow>, Error> {
    let malformed = |content: &[u8], reason: String| Error::Malformed {
        line: number,
        content: printable(content),
        reason,
    };
    let (raw, terminated) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => {
            let raw = &rest[..end];
            *rest = &rest[end + 1..];
            (raw, true)
        }
        None => {
            let raw = *rest;
            *rest = &[];
            (raw, false)
        }
    };
    let content = raw.strip_suffix(b"\r").unwrap_or(raw);
    if let Some(sentinel) = *sentinel_line {
        return Err(malformed(
            content,
            format!("line after the sentinel on line {sentinel}"),
        ));
    }
    match parse_line_checked(content) {
        Ok(Line::Sentinel { count }) => {
            if count != rows as u64 {
                return Err(malformed(
                    content,
                    format!("sentinel counts {count} row(s) but {rows} came before it"),
                ));
            }
            *sentinel_line = Some(number);
            Ok(None)
        }
        // A last line without its newline was cut short.
        Ok(Line::Row { .. }) | Err(_) if !terminated => Err(Error::Truncated { rows_seen: rows }),
        Ok(Line::Row {
            side,
            tag,
            ip,
            bytes,
        }) => Ok(Some(AnswerRow {
            line: number,
            side,
            tag,
            ip,
            bytes,
        })),
        Err(reason) => Err(malformed(content, reason)),
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

/// The fast path of the parser: the well-formed row that starts `text`,
/// with its line ending (`\n` or `\r\n`), its address's key, and the
/// length of the line with its ending; `None` for anything else (the
/// sentinel, a last line without its ending, or a line
/// [`parse_line_checked`] explains). The row is numbered `line`.
///
/// It accepts exactly the rows `parse_line_checked` accepts, with the same
/// values; it may leave a few well-formed ones (a tag or count with many
/// leading zeros) to it.
#[inline(always)]
fn parse_row(text: &[u8], line: usize) -> Option<(AnswerRow, AddressKey, usize)> {
    let side = match text {
        [b's', b',', ..] => Side::Sent,
        [b'r', b',', ..] => Side::Received,
        _ => return None,
    };
    let mut at = 2;
    let (tag, length) = leading_decimal(&text[at..], 10)?;
    let tag = u32::try_from(tag).ok()?;
    at += length;
    if text.get(at) != Some(&b',') {
        return None;
    }
    at += 1;
    let field = &text[at..];
    let (ip, address, length) = match leading_ipv4(field) {
        Some((v4, length)) if field.get(length) == Some(&b',') => {
            (IpAddr::V4(v4), AddressKey::V4(v4.to_bits()), length)
        }
        _ => {
            let (ip, length) = leading_ip(field)?;
            (ip, AddressKey::from(ip), length)
        }
    };
    at += length + 1;
    // At most 19 digits: no overflow.
    let (bytes, length) = leading_decimal(text.get(at..)?, 19)?;
    at += length;
    let length = match text.get(at) {
        Some(b'\n') => at + 1,
        Some(b'\r') if text.get(at + 1) == Some(&b'\n') => at + 2,
        _ => return None,
    };
    let row = AnswerRow {
        line,
        side,
        tag: QueryTag(tag),
        ip,
        bytes,
    };
    Some((row, address, length))
}

/// The run of 1 to `max_digits` ASCII digits (at most 19) that starts
/// `text`, as a number, and its length; `None` when `text` starts with no
/// digit or with more than `max_digits` of them.
#[inline]
fn leading_decimal(text: &[u8], max_digits: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    let mut length = 0;
    for &byte in text {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        if length == max_digits {
            return None;
        }
        value = value * 10 + u64::from(digit);
        length += 1;
    }
    (length > 0).then_some((value, length))
}

/// The address field that starts `text`, up to the comma that must end it,
/// and its length (without the comma); `None` for anything
/// `IpAddr::from_str` refuses, or no comma.
#[inline(never)]
fn leading_ip(text: &[u8]) -> Option<(IpAddr, usize)> {
    if let Some((v4, length)) = leading_ipv4(text)
        && text.get(length) == Some(&b',')
    {
        return Some((IpAddr::V4(v4), length));
    }
    if let Some((v6, length)) = leading_ipv6(text)
        && text.get(length) == Some(&b',')
    {
        return Some((IpAddr::V6(v6), length));
    }
    let length = text.iter().position(|&b| b == b',')?;
    let ip = std::str::from_utf8(&text[..length]).ok()?.parse().ok()?;
    Some((ip, length))
}

/// The dotted-quad IPv4 address that starts `text`, and its length: four
/// decimal octets of one to three digits, none above 255 and none with a
/// leading zero (`01`), separated by dots, as `Ipv4Addr::from_str` accepts
/// them. What follows is not looked at; `None` when `text` does not start
/// with such an address.
#[inline(always)]
fn leading_ipv4(text: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let digit = |at: usize| {
        text.get(at)
            .map(|b| b.wrapping_sub(b'0'))
            .filter(|&d| d <= 9)
    };
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (position, octet) in octets.iter_mut().enumerate() {
        if position > 0 {
            if text.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let mut value = u32::from(digit(at)?);
        at += 1;
        for _ in 0..2 {
            let Some(next) = digit(at) else { break };
            if value == 0 {
                // A leading zero.
                return None;
            }
            value = value * 10 + u32::from(next);
            at += 1;
        }
        *octet = u8::try_from(value).ok()?;
    }
    Some((Ipv4Addr::from(octets), at))
}

/// The IPv6 address in hexadecimal groups that starts `text`, and its
/// length: eight groups of one to four hexadecimal digits separated by
/// colons, or fewer around one `::`, as `Ipv6Addr::from_str` accepts them.
/// What follows is not looked at, and an address ending in a dotted quad
/// (`::ffff:192.0.2.1`) is left to `Ipv6Addr::from_str`: `None` when `text`
/// does not start with such an address or a dot follows it.
fn leading_ipv6(text: &[u8]) -> Option<(Ipv6Addr, usize)> {
    let mut groups = [0u16; 8];
    let mut count = 0;
    // The number of groups before the `::`, if there is one.
    let mut gap = None;
    let mut at = 0;
    let mut after_gap = false;
    if text.starts_with(b"::") {
        gap = Some(0);
        at = 2;
        after_gap = true;
    }
    loop {
        let mut value = 0u16;
        let mut length = 0;
        while length < 4 {
            let Some(digit) = text
                .get(at + length)
                .and_then(|&b| (b as char).to_digit(16))
            else {
                break;
            };
            value = value << 4 | digit as u16;
            length += 1;
        }
        if length == 0 {
            // Only a `::` may end without a group after it.
            if after_gap {
                break;
            }
            return None;
        }
        if count == groups.len() {
            return None;
        }
        groups[count] = value;
        count += 1;
        at += length;
        after_gap = false;
        if text.get(at) != Some(&b':') {
            break;
        }
        if text.get(at + 1) == Some(&b':') {
            if gap.is_some() {
                return None;
            }
            gap = Some(count);
            at += 2;
            after_gap = true;
        } else {
            at += 1;
        }
    }
    if text.get(at) == Some(&b'.') {
        return None;
    }
    match gap {
        None if count == 8 => {}
        Some(head) if count < 8 => {
            // The groups after the `::` move to the end; zeros fill the gap.
            let tail = count - head;
            groups.copy_within(head..count, 8 - tail);
            groups[head..8 - tail].fill(0);
        }
        _ => return None,
    }
    Some((Ipv6Addr::from(groups), at))
}

/// Parses one line (without its line ending) or says what is wrong with
/// it: the authority on what a line may be, of which [`parse_row`] is the
/// fast path.
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
    use std::collections::BTreeMap;
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

    #[test]
    fn a_second_answer_adds_to_the_first_and_names_the_line_of_an_overflow() {
        let request = request();
        let mut answer = parse_answer("s,8,203.0.113.7,5\nend,1\n", &request).unwrap();
        parse_answer_into(
            b"r,7,2001:db8::1,80\ns,8,203.0.113.7,6\nend,2\n",
            &request,
            &mut answer,
        )
        .unwrap();
        assert_eq!(
            answer.get(QueryTag(8), ip("203.0.113.7")),
            Some(ByteCounts {
                sent: 11,
                received: 0
            })
        );
        assert_eq!(answer.len(), 2);

        let mut full = TrafficAnswer::new();
        let most = ByteCounts {
            sent: u64::MAX,
            received: 0,
        };
        full.insert(QueryTag(7), ip("203.0.113.7"), most).unwrap();
        let body = b"s,7,203.0.113.7,1\nr,7,2001:db8::1,5\nr,7,203.0.113.7,2\r\nend,3\n";
        match parse_answer_into(body, &request, &mut full) {
            Err(Error::Malformed {
                line,
                content,
                reason,
            }) => {
                // The line of the pair's last row.
                assert_eq!(line, 3);
                assert_eq!(content, "r,7,203.0.113.7,2");
                assert_eq!(
                    reason,
                    format!("byte count overflow adding {} and 1", u64::MAX)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// The fast address parsers on a whole field: the address if one of
    /// them takes all of it.
    fn fast_ip(text: &[u8]) -> Option<IpAddr> {
        if let Some((v4, length)) = leading_ipv4(text)
            && length == text.len()
        {
            return Some(IpAddr::V4(v4));
        }
        if let Some((v6, length)) = leading_ipv6(text)
            && length == text.len()
        {
            return Some(IpAddr::V6(v6));
        }
        None
    }

    /// An address as `Display` prints it, or in one of the other forms
    /// `FromStr` reads: IPv6 groups in full with leading zeros, upper case.
    fn printed_ip() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|x| IpAddr::from(x).to_string()),
            any::<[u16; 8]>().prop_map(|x| IpAddr::from(x).to_string()),
            // Runs of zero groups, so `::` appears in every place.
            (any::<[u16; 8]>(), any::<u8>()).prop_map(|(x, zeros)| IpAddr::from(
                x.map(|g| if zeros & (1 << (g % 8)) != 0 { 0 } else { g })
            )
            .to_string()),
            any::<[u16; 8]>().prop_map(|x| {
                x.iter()
                    .map(|g| format!("{g:04X}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }),
            any::<[u16; 8]>().prop_map(|x| {
                x.iter()
                    .map(|g| format!("{g:x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }),
        ]
    }

    /// A printed address with one character inserted, removed or replaced.
    fn mutated_ip() -> impl Strategy<Value = String> {
        (
            printed_ip(),
            any::<prop::sample::Index>(),
            0u8..3,
            prop::sample::select(b"0123456789abcdefABCDEFg:.,% -+x".to_vec()),
        )
            .prop_map(|(text, at, edit, byte)| {
                let mut bytes = text.into_bytes();
                let position = at.index(bytes.len() + 1);
                match edit {
                    0 => bytes.insert(position, byte),
                    1 if position < bytes.len() => {
                        bytes.remove(position);
                    }
                    _ if position < bytes.len() => bytes[position] = byte,
                    _ => bytes.push(byte),
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
    }

    /// Tricky line fields, well formed or not.
    fn line_field(
        valid: impl Strategy<Value = String>,
        tricky: &'static [&'static str],
    ) -> impl Strategy<Value = String> {
        prop_oneof![
            3 => valid,
            1 => prop::sample::select(tricky).prop_map(str::to_owned),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn fast_address_parsers_agree_with_std(
            text in prop_oneof![
                printed_ip(),
                mutated_ip(),
                "[0-9a-fA-F:.]{0,42}",
                "[0-9.]{0,18}",
                "[0-2:]{0,20}",
            ],
        ) {
            let std = text.parse::<IpAddr>().ok();
            let fast = fast_ip(text.as_bytes());
            if fast.is_some() {
                prop_assert_eq!(fast, std, "{:?}", text);
            }
            // Every address std reads without a dotted quad in an IPv6
            // one is read by the fast path too.
            if let Some(ip) = std && !(ip.is_ipv6() && text.contains('.')) {
                prop_assert_eq!(fast, Some(ip), "{:?}", text);
            }
        }

        #[test]
        fn fast_row_path_agrees_with_the_checked_path(
            side in line_field("[sr]", &["S", "x", "end", "", "s ", "ss"]),
            tag in line_field(any::<u32>().prop_map(|t| t.to_string()), &["0007", "-1", "4294967296", "", "00000000000000000001", "1a", " 1"]),
            address in line_field(printed_ip(), &["", "1.2.3.4 ", "01.2.3.4", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4.5", "::1::"]),
            bytes in line_field(any::<u64>().prop_map(|b| b.to_string()), &["18446744073709551616", "-5", "+5", " 5", "", "1e3", "000000000000000000001", "99999999999999999999", "1.5"]),
            extra in prop_oneof![4 => Just(""), 1 => Just(",x"), 1 => Just(",")],
            ending in prop::sample::select(vec!["\n", "\r\n", "", "\r", "\r\r\n", "\n\n"]),
        ) {
            let line = format!("{side},{tag},{address},{bytes}{extra}{ending}");
            let content = line.strip_suffix(ending).unwrap_or(&line);
            let checked = parse_line_checked(content.as_bytes());
            match parse_row(line.as_bytes(), 7) {
                Some((row, _, length)) => {
                    prop_assert_eq!(&line[length..], if ending == "\n\n" { "\n" } else { "" });
                    match checked {
                        Ok(Line::Row { side, tag, ip, bytes }) => prop_assert_eq!(
                            row,
                            AnswerRow { line: 7, side, tag, ip, bytes }
                        ),
                        Ok(Line::Sentinel { .. }) => prop_assert!(false, "{line:?}: sentinel"),
                        Err(reason) => prop_assert!(false, "{line:?}: {reason}"),
                    }
                }
                None => {
                    // Plain rows take the fast path.
                    let plain = matches!(checked, Ok(Line::Row { .. }))
                        && matches!(ending, "\n" | "\r\n" | "\n\n")
                        && tag.len() <= 10
                        && bytes.len() <= 19
                        && !(address.contains(':') && address.contains('.'));
                    prop_assert!(!plain, "{:?} left to the checked path", line);
                }
            }
        }
    }

    /// An address per family and index: `10.0.0.i` or `2001:db8::i`.
    fn family_ip(v6: bool, index: u8) -> IpAddr {
        if v6 {
            IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(index)])
        } else {
            IpAddr::from([10, 0, 0, index])
        }
    }

    /// The addresses of a query: sorted, sorted within each family but
    /// interleaved, or in any order.
    fn query_ips() -> impl Strategy<Value = Vec<IpAddr>> {
        (
            proptest::collection::btree_set((any::<bool>(), any::<u8>()), 1..24),
            0u8..3,
            any::<u64>(),
        )
            .prop_map(|(keys, order, seed)| {
                let mut ips: Vec<IpAddr> = keys.iter().map(|&(v6, i)| family_ip(v6, i)).collect();
                match order {
                    0 => ips.sort_unstable(),
                    // `keys` is ordered by index within family already;
                    // ordering by index interleaves the families.
                    1 => ips.sort_by_key(|ip| match ip {
                        IpAddr::V4(v4) => v4.octets()[3],
                        IpAddr::V6(v6) => v6.octets()[15],
                    }),
                    _ => {
                        let mut state = seed | 1;
                        for i in (1..ips.len()).rev() {
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            ips.swap(i, (state % (i as u64 + 1)) as usize);
                        }
                    }
                }
                ips
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any request, any subset of rows in any order: the answer holds
        /// exactly the rows' counts, in (tag, ip) order.
        #[test]
        fn answers_hold_exactly_their_rows(
            queries in proptest::collection::btree_map(0u32..40, query_ips(), 1..6),
            picks in proptest::collection::vec((any::<bool>(), any::<bool>(), any::<u64>()), 300),
            order_seed in any::<u64>(),
            per_query in 1usize..30,
        ) {
            let interval = TimeInterval::new(
                datetime!(2026-11-01 10:00 UTC),
                datetime!(2026-11-01 11:00 UTC),
            )
            .unwrap();
            // Queries in descending tag order: not the order of the answer.
            let queries: Vec<TrafficQuery> = queries
                .iter()
                .rev()
                .map(|(&tag, ips)| TrafficQuery { tag: QueryTag(tag), interval, ips: ips.clone() })
                .collect();
            let config = MonitorConfig::builder("http://10.0.0.1:8080")
                .max_script_bytes(usize::MAX)
                .max_ips_per_query(per_query)
                .build()
                .unwrap();
            let request = plan_requests(&config, &queries).unwrap().remove(0);
            // The index lists every pair once, in ascending (tag, ip) order.
            let index = RequestIndex::new(&request);
            let ordered: Vec<_> = index.ordered.iter().map(|&n| index.pairs[n as usize]).collect();
            prop_assert!(ordered.is_sorted_by(|a, b| a < b));
            prop_assert_eq!(ordered.len(), index.pairs.len());
            let mut rows = Vec::new();
            let mut expected = BTreeMap::new();
            let pairs = queries.iter().flat_map(|q| q.ips.iter().map(move |&ip| (q.tag, ip)));
            for ((tag, ip), &(sent, received, bytes)) in pairs.zip(&picks) {
                let mut counts = ByteCounts::ZERO;
                if sent {
                    rows.push(format!("s,{tag},{ip},{bytes}"));
                    counts.sent = bytes;
                }
                if received {
                    rows.push(format!("r,{tag},{ip},{}", bytes / 3));
                    counts.received = bytes / 3;
                }
                if sent || received {
                    expected.insert((tag, ip), counts);
                }
            }
            let mut state = order_seed | 1;
            for i in (1..rows.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                rows.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let body = format!("{}end,{}\n", rows.iter().map(|r| format!("{r}\n")).collect::<String>(), rows.len());
            let answer = parse_answer(&body, &request).unwrap();
            let got: Vec<_> = answer.iter().collect();
            let want: Vec<_> = expected.iter().map(|(&(tag, ip), &c)| (tag, ip, c)).collect();
            prop_assert_eq!(got, want);

            // The same rows added to an answer that holds other pairs.
            let mut added = TrafficAnswer::new();
            added.insert(QueryTag(1000), ip("192.0.2.1"), ByteCounts::ZERO).unwrap();
            parse_answer_into(body.as_bytes(), &request, &mut added).unwrap();
            prop_assert_eq!(added.len(), expected.len() + 1);
            for (&(tag, ip), &counts) in &expected {
                prop_assert_eq!(added.get(tag, ip), Some(counts));
            }
        }
    }
}
