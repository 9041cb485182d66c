use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::ops::Range;

use time::{OffsetDateTime, UtcOffset};
use usage_model::{QueryTag, Side, TimeInterval, TrafficQuery};

use crate::{Error, MonitorConfig};

/// First lines of every script: the row counter and the query variable.
const SCRIPT_HEADER: &str = "var n = 0;\nvar q;\n";
/// Last line of every script: the sentinel that proves the answer is whole.
const SCRIPT_FOOTER: &str = "println(\"end,\" + n);";

/// The longest answer row: `s,` + a `u32` tag + `,` + the longest IP text
/// (45, an IPv6 address with an embedded IPv4 one) + `,` + a `u64` + `\r\n`.
const MAX_ROW_BYTES: u64 = 2 + 10 + 1 + 45 + 1 + 20 + 2;
/// The longest sentinel line: `end,` + a `u64` + `\r\n`.
const MAX_SENTINEL_BYTES: u64 = 4 + 20 + 2;
/// Room for what the limit does not foresee (e.g. leading zeros).
const ANSWER_SLACK_BYTES: u64 = 4096;

/// Part of one query: up to `max_ips_per_query` of its addresses, asked with
/// one `topN` per side whose `N` is the number of addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryChunk {
    tag: QueryTag,
    interval: TimeInterval,
    ips: Vec<IpAddr>,
}

impl QueryChunk {
    /// The tag of the query this chunk belongs to.
    pub fn tag(&self) -> QueryTag {
        self.tag
    }

    /// The query's interval.
    pub fn interval(&self) -> TimeInterval {
        self.interval
    }

    /// The addresses this chunk asks about, in query order.
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }
}

/// One HTTP request's worth of queries: the script and the chunks it asks.
///
/// Made by [`plan_requests`]. The script is exactly the text sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRequest {
    script: String,
    chunks: Vec<QueryChunk>,
}

impl ScriptRequest {
    /// The script text, exactly as it is sent (before form encoding).
    pub fn script(&self) -> &str {
        &self.script
    }

    /// The query chunks the script asks about, in script order.
    pub fn chunks(&self) -> &[QueryChunk] {
        &self.chunks
    }

    /// The tags of the queries the request covers (wholly or in part), each once.
    pub fn tags(&self) -> Vec<QueryTag> {
        let mut tags: Vec<QueryTag> = Vec::new();
        for chunk in &self.chunks {
            if !tags.contains(&chunk.tag) {
                tags.push(chunk.tag);
            }
        }
        tags
    }

    /// The number of addresses asked about, over all chunks.
    pub fn ip_count(&self) -> usize {
        self.chunks.iter().map(|c| c.ips.len()).sum()
    }

    /// The most rows the answer can hold: one per address and side.
    pub fn max_rows(&self) -> usize {
        2 * self.ip_count()
    }

    /// The largest answer body this request can produce, in bytes; a longer
    /// body is refused with [`Error::AnswerTooLarge`] without being read whole.
    pub fn max_answer_bytes(&self) -> u64 {
        (self.max_rows() as u64)
            .saturating_mul(MAX_ROW_BYTES)
            .saturating_add(MAX_SENTINEL_BYTES + ANSWER_SLACK_BYTES)
    }

    /// The form body posted for this request:
    /// `script=<percent-encoded script>&authenticate=basic&resultFormat=txt`.
    pub fn form_body(&self) -> String {
        const PREFIX: &[u8] = b"script=";
        const SUFFIX: &[u8] = b"&authenticate=basic&resultFormat=txt";
        let script = self.script.as_bytes();
        let encoded_len = form_encoded_len(script);
        let mut body =
            Vec::with_capacity(PREFIX.len() + encoded_len + FORM_ENCODING_SLACK + SUFFIX.len());
        body.extend_from_slice(PREFIX);
        write_form_encoded(&mut body, script, encoded_len);
        body.extend_from_slice(SUFFIX);
        String::from_utf8(body).unwrap_or_else(|_| unreachable!("form encoding writes ascii only"))
    }
}

/// How `application/x-www-form-urlencoded` writes each byte, as
/// `url::form_urlencoded::byte_serialize` does: `[A-Za-z0-9*._-]` as
/// itself, a space as `+`, any other byte as `%XX` (upper-case hex). Each
/// entry holds the encoded bytes in its three low bytes (little-endian,
/// zero-padded) and their count in its high byte.
const FORM_ENCODING: [u32; 256] = {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        let (encoded, len) = if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
        {
            ([b, 0, 0], 1)
        } else if b == b' ' {
            ([b'+', 0, 0], 1)
        } else {
            ([b'%', HEX[(b >> 4) as usize], HEX[(b & 0x0F) as usize]], 3)
        };
        table[byte] = u32::from_le_bytes([encoded[0], encoded[1], encoded[2], len]);
        byte += 1;
    }
    table
};

/// The length of `bytes` form-encoded (see [`FORM_ENCODING`]).
fn form_encoded_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|&b| (FORM_ENCODING[usize::from(b)] >> 24) as usize)
        .sum()
}

/// Bytes [`write_form_encoded`] needs past the encoded text.
const FORM_ENCODING_SLACK: usize = 3;

/// Appends `bytes` form-encoded (see [`FORM_ENCODING`]), given their
/// encoded length ([`form_encoded_len`]).
fn write_form_encoded(out: &mut Vec<u8>, bytes: &[u8], encoded_len: usize) {
    let start = out.len();
    // Every byte's table entry is stored whole (four bytes), then the
    // position moves by the encoded length: no branch per byte. The last
    // entry's excess lands in the slack, cut off after.
    out.resize(start + encoded_len + FORM_ENCODING_SLACK, 0);
    let dest = &mut out[start..];
    let mut at = 0;
    for &b in bytes {
        let entry = FORM_ENCODING[usize::from(b)];
        dest[at..at + 4].copy_from_slice(&entry.to_le_bytes());
        at += (entry >> 24) as usize;
    }
    out.truncate(start + encoded_len);
}

/// The parts of one request: (query index, address range) pairs.
type RequestParts = Vec<(usize, Range<usize>)>;

/// A validated query with its text parts prepared.
struct PreparedQuery<'q> {
    query: &'q TrafficQuery,
    /// The addresses' texts, each followed by a comma.
    ip_list: String,
    /// Where each address's text starts in `ip_list`, then `ip_list.len()`.
    ip_starts: Vec<usize>,
    /// Per side (as [`Side::BOTH`]): the text between the address list and
    /// `N` (zone filters, interval, ordering) and the text after `N` (the
    /// `run` line).
    sides: [(String, String); 2],
    /// Length of both sides' text for this query with no address and an
    /// empty `N`: the rest is `2 × (addresses, commas, digits of N)`.
    fixed_len: usize,
}

impl PreparedQuery<'_> {
    /// Script bytes of a chunk of `count` addresses whose texts sum to `ip_bytes`.
    fn chunk_len(&self, count: usize, ip_bytes: usize) -> usize {
        self.fixed_len + 2 * (ip_bytes + count.saturating_sub(1) + decimal_digits(count))
    }

    /// The number of addresses.
    fn ip_count(&self) -> usize {
        self.ip_starts.len() - 1
    }

    /// The text of the `position`-th address.
    fn ip_text(&self, position: usize) -> &str {
        self.ip_list_text(position..position + 1)
    }

    /// The addresses of `range`, comma-separated, as the filter lists them.
    fn ip_list_text(&self, range: Range<usize>) -> &str {
        // Every address's text is followed by its comma, left out here.
        &self.ip_list[self.ip_starts[range.start]..self.ip_starts[range.end] - 1]
    }
}

fn decimal_digits(mut value: usize) -> usize {
    let mut digits = 1;
    while value >= 10 {
        value /= 10;
        digits += 1;
    }
    digits
}

/// Appends `value` in decimal, as `Display` writes it.
fn push_decimal(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}

/// Appends `ip` as its `Display` form: dotted decimal for IPv4 (written
/// here, digit by digit), the standard library's text for IPv6.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        // Writing to a String cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Turns queries into the fewest requests the configured limits allow.
///
/// Each query's addresses are cut into chunks of at most
/// [`MonitorConfig::max_ips_per_query`]; each chunk becomes a sent (`s`) and a
/// received (`r`) `topN` whose `N` is the chunk's address count, always in the
/// same request. Chunks are packed in query order into requests of at most
/// [`MonitorConfig::max_script_bytes`]; a chunk that does not fit in what is
/// left of a request is cut further, so requests are filled.
///
/// # Errors
///
/// Returns [`Error::Plan`] naming the tag when two queries share a tag, an
/// interval is empty or has an end off the grid (a whole multiple of
/// [`MonitorConfig::granularity`] from the Unix epoch), an interval cannot be
/// written in the server's offset (year outside 0000–9999), a query has no
/// address or the same address twice, or a script for a single address would
/// exceed the script-bytes limit.
///
/// # Example
///
/// ```
/// use time::macros::datetime;
/// use traffic_sentinel_client::{plan_requests, MonitorConfig};
/// use usage_model::{QueryTag, Side, TimeInterval, TrafficQuery};
///
/// let config = MonitorConfig::builder("http://10.0.0.1:8080").max_ips_per_query(2).build()?;
/// let query = TrafficQuery {
///     tag: QueryTag(1),
///     interval: TimeInterval::new(datetime!(2026-11-01 10:00 UTC), datetime!(2026-11-01 12:00 UTC)).unwrap(),
///     ips: vec!["203.0.113.7".parse().unwrap(), "203.0.113.8".parse().unwrap(), "2001:db8::1".parse().unwrap()],
/// };
/// let requests = plan_requests(&config, &[query])?;
/// assert_eq!(requests.len(), 1);
/// assert_eq!(requests[0].chunks().len(), 2);
/// assert_eq!(requests[0].max_rows(), 6);
/// # Ok::<(), traffic_sentinel_client::Error>(())
/// ```
pub fn plan_requests(
    config: &MonitorConfig,
    queries: &[TrafficQuery],
) -> Result<Vec<ScriptRequest>, Error> {
    let prepared = prepare_queries(config, queries)?;
    let limit = config.max_script_bytes();
    let max_ips = config.max_ips_per_query();
    let base_len = SCRIPT_HEADER.len() + SCRIPT_FOOTER.len();

    // Each planned request is its script's length and a list of
    // (query index, address range).
    let mut requests: Vec<(usize, RequestParts)> = Vec::new();
    let mut current: RequestParts = Vec::new();
    let mut current_len = base_len;
    for (index, query) in prepared.iter().enumerate() {
        let mut start = 0;
        let mut count = 0;
        let mut ip_bytes = 0;
        for (position, starts) in query.ip_starts.windows(2).enumerate() {
            // The text and its comma.
            let ip_len = starts[1] - starts[0] - 1;
            let grown = query.chunk_len(count + 1, ip_bytes + ip_len);
            if count < max_ips && current_len + grown <= limit {
                count += 1;
                ip_bytes += ip_len;
                continue;
            }
            if count > 0 {
                current.push((index, start..position));
                current_len += query.chunk_len(count, ip_bytes);
            }
            let single = query.chunk_len(1, ip_len);
            if current_len + single > limit && !current.is_empty() {
                requests.push((current_len, std::mem::take(&mut current)));
                current_len = base_len;
            }
            if current_len + single > limit {
                return Err(Error::Plan {
                    tag: query.query.tag,
                    reason: format!(
                        "a script for the single ip {} takes {} bytes, over the limit of {limit} script bytes per request",
                        query.ip_text(position),
                        current_len + single
                    ),
                });
            }
            start = position;
            count = 1;
            ip_bytes = ip_len;
        }
        if count > 0 {
            current.push((index, start..query.ip_count()));
            current_len += query.chunk_len(count, ip_bytes);
        }
    }
    if !current.is_empty() {
        requests.push((current_len, current));
    }

    let mut planned = Vec::with_capacity(requests.len());
    for (script_len, parts) in requests {
        let mut script = String::with_capacity(script_len);
        script.push_str(SCRIPT_HEADER);
        let mut chunks = Vec::with_capacity(parts.len());
        for (index, range) in parts {
            let query = &prepared[index];
            write_chunk(&mut script, query, range.clone());
            chunks.push(QueryChunk {
                tag: query.query.tag,
                interval: query.query.interval,
                ips: query.query.ips[range].to_vec(),
            });
        }
        script.push_str(SCRIPT_FOOTER);
        debug_assert_eq!(script.len(), script_len, "predicted script length");
        planned.push(ScriptRequest { script, chunks });
    }
    tracing::debug!(
        queries = queries.len(),
        requests = planned.len(),
        "planned traffic sentinel requests"
    );
    Ok(planned)
}

fn prepare_queries<'q>(
    config: &MonitorConfig,
    queries: &'q [TrafficQuery],
) -> Result<Vec<PreparedQuery<'q>>, Error> {
    let mut tags = HashSet::with_capacity(queries.len());
    let mut prepared = Vec::with_capacity(queries.len());
    for query in queries {
        let refuse = |reason: String| Error::Plan {
            tag: query.tag,
            reason,
        };
        if !tags.insert(query.tag) {
            return Err(refuse("the tag is used by more than one query".to_owned()));
        }
        let interval = query.interval;
        if interval.is_empty() {
            return Err(refuse(format!("interval {interval} is empty")));
        }
        for (name, instant) in [("start", interval.start()), ("end", interval.end())] {
            if !config.granularity().holds(instant) {
                return Err(refuse(format!(
                    "interval {name} {instant} is not on the grid of {} seconds from the unix epoch",
                    config.granularity().seconds()
                )));
            }
        }
        if query.ips.is_empty() {
            return Err(refuse("the query has no ip address".to_owned()));
        }
        if let Some(ip) = first_repeated(&query.ips) {
            return Err(refuse(format!("ip {ip} appears more than once")));
        }
        let interval_text = ts_interval(interval, config.server_utc_offset()).map_err(refuse)?;
        let sides = Side::BOTH.map(|side| side_texts(config, query.tag, &interval_text, side));
        let fixed_len = Side::BOTH
            .iter()
            .zip(&sides)
            .map(|(side, (middle, tail))| side_head(*side).len() + middle.len() + tail.len())
            .sum();
        // IPv4 texts take at most 16 bytes with their comma; IPv6 texts are
        // longer, and the string grows for them.
        let mut ip_list = String::with_capacity(16 * query.ips.len());
        let mut ip_starts = Vec::with_capacity(query.ips.len() + 1);
        for &ip in &query.ips {
            ip_starts.push(ip_list.len());
            push_ip(&mut ip_list, ip);
            ip_list.push(',');
        }
        ip_starts.push(ip_list.len());
        prepared.push(PreparedQuery {
            query,
            ip_list,
            ip_starts,
            sides,
            fixed_len,
        });
    }
    Ok(prepared)
}

/// The first address of `ips` that repeats an earlier one, if any.
fn first_repeated(ips: &[IpAddr]) -> Option<IpAddr> {
    // Plans list their addresses in ascending order: no repeat is possible.
    if ips.windows(2).all(|pair| pair[0] < pair[1]) {
        return None;
    }
    let mut seen = HashSet::with_capacity(ips.len());
    ips.iter().find(|ip| !seen.insert(**ip)).copied()
}

/// Writes both sides of one chunk of `query`.
fn write_chunk(script: &mut String, query: &PreparedQuery<'_>, range: Range<usize>) {
    let n = range.len() as u64;
    let ips = query.ip_list_text(range);
    for (side, (middle, tail)) in Side::BOTH.into_iter().zip(&query.sides) {
        script.push_str(side_head(side));
        script.push_str(ips);
        script.push_str(middle);
        push_decimal(script, n);
        script.push_str(tail);
    }
}

/// The start of a side's `topN`, up to its address list.
fn side_head(side: Side) -> &'static str {
    match side {
        Side::Sent => "q = Query.topN(\"historytrmx\", \"ipsource,bytes\", \"ipsource = ",
        Side::Received => {
            "q = Query.topN(\"historytrmx\", \"ipdestination,bytes\", \"ipdestination = "
        }
    }
}

/// The texts of one side's `topN` after its address list, up to `N`, and
/// after `N`: `(zone filters, interval and ordering, the run line)`.
fn side_texts(
    config: &MonitorConfig,
    tag: QueryTag,
    interval_text: &str,
    side: Side,
) -> (String, String) {
    let zone_field = side.zone_field();
    let mut middle = String::new();
    for (zones, operator) in [
        (config.include_zones(), "="),
        (config.exclude_zones(), "!="),
    ] {
        if zones.is_empty() {
            continue;
        }
        // Writing to a String cannot fail.
        let _ = write!(middle, " & {zone_field} {operator} ");
        for (i, zone) in zones.iter().enumerate() {
            if i > 0 {
                middle.push(',');
            }
            middle.push_str(zone.as_str());
        }
    }
    let _ = write!(middle, "\", \"{interval_text}\", \"bytes\", ");
    let tail = format!(
        ");\nq.run(function(row, table) {{ if (row[0]) {{ println(\"{letter},{tag},\" + row[0] + \",\" + row[1]); n++; }} }});\n",
        letter = side.letter(),
    );
    (middle, tail)
}

/// `"yyyyMMdd HH:mm:ss, yyyyMMdd HH:mm:ss"` (without quotes) in `offset`.
fn ts_interval(interval: TimeInterval, offset: UtcOffset) -> Result<String, String> {
    Ok(format!(
        "{}, {}",
        ts_time(interval.start(), offset)?,
        ts_time(interval.end(), offset)?
    ))
}

/// `yyyyMMdd HH:mm:ss` of `instant` in the server's `offset`.
fn ts_time(instant: OffsetDateTime, offset: UtcOffset) -> Result<String, String> {
    let local = instant
        .checked_to_offset(offset)
        .filter(|local| (0..=9999).contains(&local.year()))
        .ok_or_else(|| format!("{instant} cannot be written as yyyyMMdd in offset {offset}"))?;
    Ok(format!(
        "{:04}{:02}{:02} {:02}:{:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    ))
}

#[cfg(test)]
mod tests {
    use time::macros::{datetime, offset};

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn hour_query(tag: u32, ips: Vec<IpAddr>) -> TrafficQuery {
        TrafficQuery {
            tag: QueryTag(tag),
            interval: TimeInterval::new(
                datetime!(2026-11-01 10:00 UTC),
                datetime!(2026-11-01 11:00 UTC),
            )
            .unwrap(),
            ips,
        }
    }

    fn ipv4s(count: usize) -> Vec<IpAddr> {
        // Every address is 14 characters long: `10.1xx.1xx.100`.
        assert!(count <= 15_000);
        (0..count)
            .map(|i| IpAddr::from([10, 100 + (i / 100) as u8, 100 + (i % 100) as u8, 100]))
            .collect()
    }

    fn config(
        builder: impl FnOnce(crate::MonitorConfigBuilder) -> crate::MonitorConfigBuilder,
    ) -> MonitorConfig {
        builder(MonitorConfig::builder("http://10.0.0.1:8080"))
            .build()
            .unwrap()
    }

    fn plan_error(config: &MonitorConfig, queries: &[TrafficQuery]) -> (QueryTag, String) {
        match plan_requests(config, queries) {
            Err(Error::Plan { tag, reason }) => (tag, reason),
            other => panic!("expected a plan error, got {other:?}"),
        }
    }

    #[test]
    fn exact_script_for_a_small_query() {
        let config = config(|b| {
            b.include_zones(["EXTERNAL", "PEERING"])
                .exclude_zones(["INTERNAL"])
        });
        let query = hour_query(7, vec![ip("203.0.113.7"), ip("2001:db8::1")]);
        let requests = plan_requests(&config, std::slice::from_ref(&query)).unwrap();
        assert_eq!(requests.len(), 1);
        let expected = r#"var n = 0;
var q;
q = Query.topN("historytrmx", "ipsource,bytes", "ipsource = 203.0.113.7,2001:db8::1 & destinationzone = EXTERNAL,PEERING & destinationzone != INTERNAL", "20261101 10:00:00, 20261101 11:00:00", "bytes", 2);
q.run(function(row, table) { if (row[0]) { println("s,7," + row[0] + "," + row[1]); n++; } });
q = Query.topN("historytrmx", "ipdestination,bytes", "ipdestination = 203.0.113.7,2001:db8::1 & sourcezone = EXTERNAL,PEERING & sourcezone != INTERNAL", "20261101 10:00:00, 20261101 11:00:00", "bytes", 2);
q.run(function(row, table) { if (row[0]) { println("r,7," + row[0] + "," + row[1]); n++; } });
println("end," + n);"#;
        assert_eq!(requests[0].script(), expected);
        assert_eq!(
            requests[0].chunks(),
            &[QueryChunk {
                tag: QueryTag(7),
                interval: query.interval,
                ips: query.ips.clone(),
            }]
        );
        assert_eq!(requests[0].tags(), vec![QueryTag(7)]);
        assert_eq!(requests[0].max_rows(), 4);
    }

    #[test]
    fn default_zones_and_empty_include_list() {
        let query = hour_query(1, vec![ip("192.0.2.1")]);
        let default = plan_requests(&config(|b| b), std::slice::from_ref(&query)).unwrap();
        assert!(default[0].script().contains(
            "\"ipsource = 192.0.2.1 & destinationzone = EXTERNAL\", \"20261101 10:00:00, 20261101 11:00:00\", \"bytes\", 1);"
        ));
        assert!(
            default[0]
                .script()
                .contains("\"ipdestination = 192.0.2.1 & sourcezone = EXTERNAL\", ")
        );
        let any_zone = config(|b| b.include_zones(Vec::<String>::new()));
        let script = plan_requests(&any_zone, std::slice::from_ref(&query)).unwrap()[0]
            .script()
            .to_owned();
        assert!(
            script.contains("\"ipsource = 192.0.2.1\", \"20261101"),
            "{script}"
        );
        assert!(
            script.contains("\"ipdestination = 192.0.2.1\", \"20261101"),
            "{script}"
        );
        assert!(!script.contains("zone"), "{script}");
        let exclude_only = config(|b| {
            b.include_zones(Vec::<String>::new())
                .exclude_zones(["A", "B"])
        });
        let script = plan_requests(&exclude_only, &[query]).unwrap()[0]
            .script()
            .to_owned();
        assert!(
            script.contains("\"ipsource = 192.0.2.1 & destinationzone != A,B\""),
            "{script}"
        );
        assert!(
            script.contains("\"ipdestination = 192.0.2.1 & sourcezone != A,B\""),
            "{script}"
        );
    }

    #[test]
    fn interval_is_written_in_the_server_offset() {
        let interval = TimeInterval::new(
            datetime!(2026-11-01 22:00 UTC),
            datetime!(2026-11-02 00:00 UTC),
        )
        .unwrap();
        assert_eq!(
            ts_interval(interval, offset!(+05:30)).unwrap(),
            "20261102 03:30:00, 20261102 05:30:00"
        );
        assert_eq!(
            ts_interval(interval, offset!(-08:00)).unwrap(),
            "20261101 14:00:00, 20261101 16:00:00"
        );
        assert_eq!(
            ts_interval(interval, UtcOffset::UTC).unwrap(),
            "20261101 22:00:00, 20261102 00:00:00"
        );
        // Instants given in another offset are the same instants.
        let same = TimeInterval::new(
            datetime!(2026-11-02 03:30 +05:30),
            datetime!(2026-11-02 05:30 +05:30),
        )
        .unwrap();
        assert_eq!(
            ts_interval(same, offset!(-08:00)).unwrap(),
            "20261101 14:00:00, 20261101 16:00:00"
        );
        let query = TrafficQuery {
            tag: QueryTag(3),
            interval,
            ips: vec![ip("192.0.2.1")],
        };
        let script = plan_requests(&config(|b| b.server_utc_offset(offset!(+05:30))), &[query])
            .unwrap()[0]
            .script()
            .to_owned();
        assert!(
            script.contains("\"20261102 03:30:00, 20261102 05:30:00\""),
            "{script}"
        );
    }

    #[test]
    fn refuses_years_that_do_not_fit() {
        let query = TrafficQuery {
            tag: QueryTag(4),
            interval: TimeInterval::new(
                datetime!(9999-12-31 22:00 UTC),
                datetime!(9999-12-31 23:00 UTC),
            )
            .unwrap(),
            ips: vec![ip("192.0.2.1")],
        };
        assert!(plan_requests(&config(|b| b), std::slice::from_ref(&query)).is_ok());
        let (tag, reason) = plan_error(&config(|b| b.server_utc_offset(offset!(+05:30))), &[query]);
        assert_eq!(tag, QueryTag(4));
        assert!(reason.contains("yyyyMMdd"), "{reason}");
    }

    #[test]
    fn refuses_invalid_queries_naming_tag_and_value() {
        let config = config(|b| b);
        let good = hour_query(1, vec![ip("192.0.2.1")]);

        let (tag, reason) = plan_error(&config, &[good.clone(), good.clone()]);
        assert_eq!(tag, QueryTag(1));
        assert!(reason.contains("more than one query"), "{reason}");

        let mut empty = hour_query(2, vec![ip("192.0.2.1")]);
        empty.interval = TimeInterval::new(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 10:00 UTC),
        )
        .unwrap();
        let (tag, reason) = plan_error(&config, &[good.clone(), empty]);
        assert_eq!(tag, QueryTag(2));
        assert!(reason.contains("is empty"), "{reason}");

        let mut off_grid = hour_query(3, vec![ip("192.0.2.1")]);
        off_grid.interval = TimeInterval::new(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 10:30 UTC),
        )
        .unwrap();
        let (tag, reason) = plan_error(&config, &[off_grid]);
        assert_eq!(tag, QueryTag(3));
        assert!(
            reason.contains("interval end 2026-11-01 10:30:00.0 +00:00:00"),
            "{reason}"
        );
        assert!(reason.contains("grid of 3600 seconds"), "{reason}");

        let mut off_grid_ns = hour_query(4, vec![ip("192.0.2.1")]);
        off_grid_ns.interval = TimeInterval::new(
            datetime!(2026-11-01 10:00:00.5 UTC),
            datetime!(2026-11-01 11:00 UTC),
        )
        .unwrap();
        let (_, reason) = plan_error(&config, &[off_grid_ns]);
        assert!(reason.contains("interval start"), "{reason}");

        let (tag, reason) = plan_error(&config, &[hour_query(5, vec![])]);
        assert_eq!(tag, QueryTag(5));
        assert!(reason.contains("no ip"), "{reason}");

        let (tag, reason) = plan_error(
            &config,
            &[hour_query(
                6,
                vec![ip("192.0.2.1"), ip("2001:db8::1"), ip("2001:db8::1")],
            )],
        );
        assert_eq!(tag, QueryTag(6));
        assert!(
            reason.contains("ip 2001:db8::1 appears more than once"),
            "{reason}"
        );
    }

    #[test]
    fn offset_intervals_on_the_utc_grid_are_accepted() {
        // 10:30 +05:30 is 05:00 UTC: on the hourly grid.
        let query = TrafficQuery {
            tag: QueryTag(1),
            interval: TimeInterval::new(
                datetime!(2026-11-01 10:30 +05:30),
                datetime!(2026-11-01 11:30 +05:30),
            )
            .unwrap(),
            ips: vec![ip("192.0.2.1")],
        };
        assert!(plan_requests(&config(|b| b), &[query]).is_ok());
    }

    #[test]
    fn no_queries_means_no_requests() {
        assert!(plan_requests(&config(|b| b), &[]).unwrap().is_empty());
    }

    /// Checks the invariants of a plan and returns its requests' chunk sizes.
    fn check_plan(
        config: &MonitorConfig,
        queries: &[TrafficQuery],
        requests: &[ScriptRequest],
    ) -> Vec<Vec<usize>> {
        let mut seen: Vec<(QueryTag, IpAddr)> = Vec::new();
        for request in requests {
            assert!(request.script().len() <= config.max_script_bytes());
            assert!(request.script().starts_with(SCRIPT_HEADER));
            assert!(request.script().ends_with(SCRIPT_FOOTER));
            let topns = request.script().matches("Query.topN(").count();
            assert_eq!(topns, 2 * request.chunks().len());
            for chunk in request.chunks() {
                assert!(!chunk.ips().is_empty());
                assert!(chunk.ips().len() <= config.max_ips_per_query());
                let n = format!("\"bytes\", {});\n", chunk.ips().len());
                assert!(request.script().contains(&n));
                seen.extend(chunk.ips().iter().map(|ip| (chunk.tag(), *ip)));
            }
        }
        let expected: Vec<(QueryTag, IpAddr)> = queries
            .iter()
            .flat_map(|q| q.ips.iter().map(move |ip| (q.tag, *ip)))
            .collect();
        assert_eq!(seen, expected, "every address asked exactly once, in order");
        requests
            .iter()
            .map(|r| r.chunks().iter().map(|c| c.ips().len()).collect())
            .collect()
    }

    #[test]
    fn predicted_chunk_length_matches_the_script() {
        let config = config(|b| b.exclude_zones(["INTERNAL"]));
        for count in [1, 9, 10, 11, 99, 100, 101, 1000] {
            let mut ips = ipv4s(count);
            ips.push(ip("2001:db8::abcd:1"));
            let queries = [hour_query(4_000_000_000, ips)];
            let prepared = prepare_queries(&config, &queries).unwrap();
            let request = &plan_requests(&config, &queries).unwrap()[0];
            let ip_bytes: usize = (0..=count).map(|i| prepared[0].ip_text(i).len()).sum();
            assert_eq!(
                request.script().len(),
                SCRIPT_HEADER.len()
                    + SCRIPT_FOOTER.len()
                    + prepared[0].chunk_len(count + 1, ip_bytes)
            );
        }
    }

    #[test]
    fn chunks_at_the_per_query_limit() {
        let config = config(|b| b.max_ips_per_query(100));
        let queries = [
            hour_query(1, ipv4s(250)),
            hour_query(2, ipv4s(100)),
            hour_query(3, ipv4s(1)),
        ];
        let requests = plan_requests(&config, &queries).unwrap();
        assert_eq!(
            check_plan(&config, &queries, &requests),
            vec![vec![100, 100, 50, 100, 1]]
        );
        assert_eq!(requests[0].max_rows(), 2 * 351);
        assert_eq!(
            requests[0].tags(),
            vec![QueryTag(1), QueryTag(2), QueryTag(3)]
        );
        assert_eq!(requests[0].script().matches("\"bytes\", 100);").count(), 6);
        assert_eq!(requests[0].script().matches("\"bytes\", 50);").count(), 2);
    }

    #[test]
    fn requests_at_the_per_request_limit() {
        let base = config(|b| b.max_ips_per_query(10));
        let one_chunk = plan_requests(&base, &[hour_query(1, ipv4s(10))]).unwrap()[0]
            .script()
            .len();
        let chunk_len = one_chunk - SCRIPT_HEADER.len() - SCRIPT_FOOTER.len();
        // Room for exactly three 10-address chunks per request.
        let limit = SCRIPT_HEADER.len() + SCRIPT_FOOTER.len() + 3 * chunk_len;
        let config = config(|b| b.max_ips_per_query(10).max_script_bytes(limit));
        let queries = [hour_query(1, ipv4s(70))];
        let requests = plan_requests(&config, &queries).unwrap();
        assert_eq!(
            check_plan(&config, &queries, &requests),
            vec![vec![10, 10, 10], vec![10, 10, 10], vec![10]]
        );
        assert_eq!(requests[0].script().len(), limit);
        // One byte less: the third chunk of each request is cut short.
        let tight = config_with_limit(limit - 1);
        let requests = plan_requests(&tight, &queries).unwrap();
        let sizes = check_plan(&tight, &queries, &requests);
        assert_eq!(sizes.len(), 3);
        assert_eq!(sizes[0], vec![10, 10, 9]);
        assert_eq!(sizes.iter().flatten().sum::<usize>(), 70);
    }

    fn config_with_limit(limit: usize) -> MonitorConfig {
        config(|b| b.max_ips_per_query(10).max_script_bytes(limit))
    }

    #[test]
    fn several_queries_share_requests_and_split_across_them() {
        let single = plan_requests(&config(|b| b), &[hour_query(1, ipv4s(1))]).unwrap()[0]
            .script()
            .len();
        // Room for a bit more than two single-address queries.
        let config = config(|b| b.max_script_bytes(2 * single));
        let queries: Vec<_> = (0..5).map(|t| hour_query(t, ipv4s(1))).collect();
        let requests = plan_requests(&config, &queries).unwrap();
        assert_eq!(
            check_plan(&config, &queries, &requests),
            vec![vec![1, 1], vec![1, 1], vec![1]]
        );
    }

    #[test]
    fn a_single_address_that_does_not_fit_is_an_error() {
        let config = config(|b| b.max_script_bytes(500));
        let (tag, reason) = plan_error(&config, &[hour_query(9, vec![ip("192.0.2.1")])]);
        assert_eq!(tag, QueryTag(9));
        assert!(reason.contains("single ip 192.0.2.1"), "{reason}");
        assert!(reason.contains("limit of 500 script bytes"), "{reason}");
    }

    #[test]
    fn form_body_is_exact() {
        let request =
            &plan_requests(&config(|b| b), &[hour_query(7, vec![ip("2001:db8::1")])]).unwrap()[0];
        let body = request.form_body();
        assert!(body.starts_with(
            "script=var+n+%3D+0%3B%0Avar+q%3B%0Aq+%3D+Query.topN%28%22historytrmx%22%2C"
        ));
        assert!(body.ends_with("%22end%2C%22+%2B+n%29%3B&authenticate=basic&resultFormat=txt"));
        let decoded: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            decoded,
            vec![
                ("script".to_owned(), request.script().to_owned()),
                ("authenticate".to_owned(), "basic".to_owned()),
                ("resultFormat".to_owned(), "txt".to_owned()),
            ]
        );
    }

    #[test]
    fn answer_limit_follows_the_row_count() {
        let request = &plan_requests(&config(|b| b), &[hour_query(7, ipv4s(3))]).unwrap()[0];
        assert_eq!(request.max_rows(), 6);
        assert_eq!(
            request.max_answer_bytes(),
            6 * MAX_ROW_BYTES + MAX_SENTINEL_BYTES + ANSWER_SLACK_BYTES
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Whatever the limits, every address is asked exactly once, in
        /// order, no chunk passes the per-query limit, no script passes the
        /// per-request limit, and every request but the last is full enough
        /// that the next address could not have joined it.
        #[test]
        fn plans_respect_the_limits(
            max_ips in 1usize..25,
            max_bytes in 1_200usize..8_000,
            sizes in proptest::collection::vec(1usize..60, 1..5),
            v6 in proptest::prelude::any::<bool>(),
        ) {
            let config = config(|b| b.max_ips_per_query(max_ips).max_script_bytes(max_bytes).exclude_zones(["INTERNAL"]));
            let queries: Vec<TrafficQuery> = sizes
                .iter()
                .enumerate()
                .map(|(tag, &size)| {
                    let ips = (0..size)
                        .map(|i| {
                            if v6 && i % 2 == 1 {
                                IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, tag as u16, i as u16])
                            } else {
                                IpAddr::from([10, tag as u8, (i >> 8) as u8, i as u8])
                            }
                        })
                        .collect();
                    hour_query(tag as u32, ips)
                })
                .collect();
            let requests = plan_requests(&config, &queries).unwrap();
            check_plan(&config, &queries, &requests);
            let total: usize = sizes.iter().sum();
            proptest::prop_assert!(requests.len() <= total);
            let prepared = prepare_queries(&config, &queries).unwrap();
            for pair in requests.windows(2) {
                let next = &pair[1].chunks()[0];
                let query = prepared.iter().find(|q| q.query.tag == next.tag()).unwrap();
                let first_ip = next.ips()[0].to_string();
                // The first address of the next request did not fit in this one.
                proptest::prop_assert!(pair[0].script().len() + query.chunk_len(1, first_ip.len()) > max_bytes);
            }
        }
    }

    /// The script of `request` as the straightforward writer makes it:
    /// `Display` for every address and number, `format!` for every part.
    fn reference_script(config: &MonitorConfig, request: &ScriptRequest) -> String {
        let mut script = String::from(SCRIPT_HEADER);
        for chunk in request.chunks() {
            let interval_text = ts_interval(chunk.interval(), config.server_utc_offset()).unwrap();
            let ips: Vec<String> = chunk.ips().iter().map(ToString::to_string).collect();
            for side in Side::BOTH {
                let ip_field = match side {
                    Side::Sent => "ipsource",
                    Side::Received => "ipdestination",
                };
                let mut filter = format!("{ip_field} = {}", ips.join(","));
                for (zones, operator) in [
                    (config.include_zones(), "="),
                    (config.exclude_zones(), "!="),
                ] {
                    if !zones.is_empty() {
                        let zones: Vec<&str> = zones.iter().map(|z| z.as_str()).collect();
                        filter +=
                            &format!(" & {} {operator} {}", side.zone_field(), zones.join(","));
                    }
                }
                script += &format!(
                    "q = Query.topN(\"historytrmx\", \"{ip_field},bytes\", \"{filter}\", \"{interval_text}\", \"bytes\", {});\nq.run(function(row, table) {{ if (row[0]) {{ println(\"{},{},\" + row[0] + \",\" + row[1]); n++; }} }});\n",
                    ips.len(),
                    side.letter(),
                    chunk.tag(),
                );
            }
        }
        script + SCRIPT_FOOTER
    }

    fn any_ip() -> impl proptest::strategy::Strategy<Value = IpAddr> {
        use proptest::prelude::*;
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
            // IPv4-mapped and -compatible addresses, runs of zeros.
            any::<[u8; 4]>()
                .prop_map(|v4| IpAddr::V6(std::net::Ipv4Addr::from(v4).to_ipv6_mapped())),
            (any::<[u16; 2]>(), 0usize..8).prop_map(|(words, at)| {
                let mut segments = [0u16; 8];
                segments[at] = words[0];
                segments[7 - at] = words[1];
                IpAddr::from(segments)
            }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// The script is exactly what the straightforward writer makes, and
        /// its length is the predicted one.
        #[test]
        fn scripts_match_the_straightforward_writer(
            max_ips in 1usize..30,
            max_bytes in 1_500usize..20_000,
            include in proptest::collection::vec("[A-Za-z0-9_.-]{1,8}", 0..3),
            exclude in proptest::collection::vec("[A-Za-z0-9_.-]{1,8}", 0..3),
            offset_minutes in -12 * 60i32..=14 * 60,
            queries in proptest::collection::vec(
                (proptest::collection::btree_set(any_ip(), 1..40), 0u32..4_000_000_000, 0i64..48, 1i64..48),
                1..5,
            ),
            shuffle in proptest::prelude::any::<bool>(),
        ) {
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let config = config(|b| {
                b.max_ips_per_query(max_ips)
                    .max_script_bytes(max_bytes)
                    .include_zones(include)
                    .exclude_zones(exclude)
                    .server_utc_offset(offset)
            });
            let mut tags = HashSet::new();
            let queries: Vec<TrafficQuery> = queries
                .into_iter()
                .filter(|(_, tag, _, _)| tags.insert(*tag))
                .map(|(ips, tag, start_hours, hours)| {
                    let start = datetime!(2026-11-01 00:00 UTC) + time::Duration::hours(start_hours);
                    let mut ips: Vec<IpAddr> = ips.into_iter().collect();
                    if shuffle {
                        ips.reverse();
                    }
                    TrafficQuery {
                        tag: QueryTag(tag),
                        interval: TimeInterval::new(start, start + time::Duration::hours(hours)).unwrap(),
                        ips,
                    }
                })
                .collect();
            let requests = plan_requests(&config, &queries).unwrap();
            check_plan(&config, &queries, &requests);
            for request in &requests {
                proptest::prop_assert_eq!(request.script(), reference_script(&config, request));
            }
        }

        /// The form body is `url::form_urlencoded`'s encoding, byte for byte.
        #[test]
        fn form_encoding_matches_url(text in "\\PC{0,200}", bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            for input in [text.into_bytes(), bytes] {
                let mut ours = b"x".to_vec();
                write_form_encoded(&mut ours, &input, form_encoded_len(&input));
                let expected: String = url::form_urlencoded::byte_serialize(&input).collect();
                proptest::prop_assert_eq!(&ours[1..], expected.as_bytes());
                proptest::prop_assert_eq!(form_encoded_len(&input), expected.len());
            }
        }

        /// Addresses and numbers are written as `Display` writes them.
        #[test]
        fn ips_and_numbers_match_display(ip in any_ip(), value in proptest::prelude::any::<u64>(), small in 0u64..1000) {
            let mut text = String::from("x");
            push_ip(&mut text, ip);
            proptest::prop_assert_eq!(&text[1..], ip.to_string());
            for number in [value, small] {
                let mut text = String::new();
                push_decimal(&mut text, number);
                proptest::prop_assert_eq!(text, number.to_string());
            }
        }
    }

    #[test]
    fn form_body_of_a_whole_script_matches_url() {
        let config = config(|b| b.exclude_zones(["INTERNAL"]));
        let mut ips = ipv4s(300);
        ips.push(ip("2001:db8::abcd:1"));
        for request in plan_requests(&config, &[hour_query(12, ips)]).unwrap() {
            let expected: String =
                url::form_urlencoded::byte_serialize(request.script().as_bytes()).collect();
            assert_eq!(
                request.form_body(),
                format!("script={expected}&authenticate=basic&resultFormat=txt")
            );
        }
    }

    #[test]
    fn repeated_addresses_out_of_order_are_found() {
        let ips = [
            ip("10.0.0.3"),
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            ip("10.0.0.1"),
            ip("10.0.0.3"),
        ];
        assert_eq!(first_repeated(&ips), Some(ip("10.0.0.1")));
        assert_eq!(first_repeated(&ips[..3]), None);
        assert_eq!(
            first_repeated(&[ip("10.0.0.1"), ip("10.0.0.1")]),
            Some(ip("10.0.0.1"))
        );
    }
}
