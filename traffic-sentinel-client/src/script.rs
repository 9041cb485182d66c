use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use time::{OffsetDateTime, UtcOffset};
use usage_model::{QueryTag, TimeInterval, TrafficQuery};

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

/// Which way the bytes of an answer row went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Bytes with the address as source (row letter `s`).
    Sent,
    /// Bytes with the address as destination (row letter `r`).
    Received,
}

impl Side {
    /// Both sides, in the order a script asks for them.
    pub const BOTH: [Side; 2] = [Side::Sent, Side::Received];

    /// The letter that starts this side's answer rows: `s` or `r`.
    pub fn letter(self) -> char {
        match self {
            Side::Sent => 's',
            Side::Received => 'r',
        }
    }

    /// The flow field holding the address: `ipsource` or `ipdestination`.
    fn ip_field(self) -> &'static str {
        match self {
            Side::Sent => "ipsource",
            Side::Received => "ipdestination",
        }
    }

    /// The flow field holding the other end's zone.
    fn zone_field(self) -> &'static str {
        match self {
            Side::Sent => "destinationzone",
            Side::Received => "sourcezone",
        }
    }
}

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
        let mut body = String::with_capacity(self.script.len() * 2 + 48);
        body.push_str("script=");
        body.extend(url::form_urlencoded::byte_serialize(self.script.as_bytes()));
        body.push_str("&authenticate=basic&resultFormat=txt");
        body
    }
}

/// A validated query with its text parts prepared.
struct PreparedQuery<'q> {
    query: &'q TrafficQuery,
    ip_texts: Vec<String>,
    /// Length of both sides' text for this query with no address and an
    /// empty `N`: the rest is `2 × (addresses, commas, digits of N)`.
    fixed_len: usize,
}

impl PreparedQuery<'_> {
    /// Script bytes of a chunk of `count` addresses whose texts sum to `ip_bytes`.
    fn chunk_len(&self, count: usize, ip_bytes: usize) -> usize {
        self.fixed_len + 2 * (ip_bytes + count.saturating_sub(1) + decimal_digits(count))
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
/// use usage_model::{QueryTag, TimeInterval, TrafficQuery};
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

    // Each planned request is a list of (query index, address range).
    let mut requests: Vec<Vec<(usize, std::ops::Range<usize>)>> = Vec::new();
    let mut current: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    let mut current_len = base_len;
    for (index, query) in prepared.iter().enumerate() {
        let mut start = 0;
        let mut count = 0;
        let mut ip_bytes = 0;
        for (position, ip_text) in query.ip_texts.iter().enumerate() {
            let grown = query.chunk_len(count + 1, ip_bytes + ip_text.len());
            if count < max_ips && current_len + grown <= limit {
                count += 1;
                ip_bytes += ip_text.len();
                continue;
            }
            if count > 0 {
                current.push((index, start..position));
                current_len += query.chunk_len(count, ip_bytes);
            }
            let single = query.chunk_len(1, ip_text.len());
            if current_len + single > limit && !current.is_empty() {
                requests.push(std::mem::take(&mut current));
                current_len = base_len;
            }
            if current_len + single > limit {
                return Err(Error::Plan {
                    tag: query.query.tag,
                    reason: format!(
                        "a script for the single ip {ip_text} takes {} bytes, over the limit of {limit} script bytes per request",
                        current_len + single
                    ),
                });
            }
            start = position;
            count = 1;
            ip_bytes = ip_text.len();
        }
        if count > 0 {
            current.push((index, start..query.ip_texts.len()));
            current_len += query.chunk_len(count, ip_bytes);
        }
    }
    if !current.is_empty() {
        requests.push(current);
    }

    let mut planned = Vec::with_capacity(requests.len());
    for parts in requests {
        let mut script = String::from(SCRIPT_HEADER);
        let mut chunks = Vec::with_capacity(parts.len());
        for (index, range) in parts {
            let query = &prepared[index];
            write_chunk(&mut script, config, query, range.clone())?;
            chunks.push(QueryChunk {
                tag: query.query.tag,
                interval: query.query.interval,
                ips: query.query.ips[range].to_vec(),
            });
        }
        script.push_str(SCRIPT_FOOTER);
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
            if !on_grid(instant, config.granularity()) {
                return Err(refuse(format!(
                    "interval {name} {instant} is not on the grid of {} seconds from the unix epoch",
                    config.granularity().whole_seconds()
                )));
            }
        }
        if query.ips.is_empty() {
            return Err(refuse("the query has no ip address".to_owned()));
        }
        let mut seen = HashSet::with_capacity(query.ips.len());
        if let Some(ip) = query.ips.iter().find(|ip| !seen.insert(**ip)) {
            return Err(refuse(format!("ip {ip} appears more than once")));
        }
        let interval_text = ts_interval(interval, config.server_utc_offset()).map_err(refuse)?;
        let mut empty = String::new();
        for side in Side::BOTH {
            write_side(&mut empty, config, query.tag, &interval_text, side, &[], "");
        }
        prepared.push(PreparedQuery {
            query,
            ip_texts: query.ips.iter().map(ToString::to_string).collect(),
            fixed_len: empty.len(),
        });
    }
    Ok(prepared)
}

fn on_grid(instant: OffsetDateTime, granularity: time::Duration) -> bool {
    let step = granularity.whole_nanoseconds();
    step > 0 && instant.unix_timestamp_nanos().rem_euclid(step) == 0
}

/// Writes both sides of one chunk of `query`.
fn write_chunk(
    script: &mut String,
    config: &MonitorConfig,
    query: &PreparedQuery<'_>,
    range: std::ops::Range<usize>,
) -> Result<(), Error> {
    let ips = &query.ip_texts[range];
    let interval_text =
        ts_interval(query.query.interval, config.server_utc_offset()).map_err(|reason| {
            Error::Plan {
                tag: query.query.tag,
                reason,
            }
        })?;
    let n = ips.len().to_string();
    for side in Side::BOTH {
        write_side(
            script,
            config,
            query.query.tag,
            &interval_text,
            side,
            ips,
            &n,
        );
    }
    Ok(())
}

/// Writes the `topN` of one side and the `run` that prints its rows.
fn write_side(
    script: &mut String,
    config: &MonitorConfig,
    tag: QueryTag,
    interval_text: &str,
    side: Side,
    ips: &[String],
    n: &str,
) {
    let ip_field = side.ip_field();
    let zone_field = side.zone_field();
    // Writing to a String cannot fail.
    let _ = write!(
        script,
        "q = Query.topN(\"historytrmx\", \"{ip_field},bytes\", \"{ip_field} = "
    );
    for (i, ip) in ips.iter().enumerate() {
        if i > 0 {
            script.push(',');
        }
        script.push_str(ip);
    }
    for (zones, operator) in [
        (config.include_zones(), "="),
        (config.exclude_zones(), "!="),
    ] {
        if zones.is_empty() {
            continue;
        }
        let _ = write!(script, " & {zone_field} {operator} ");
        for (i, zone) in zones.iter().enumerate() {
            if i > 0 {
                script.push(',');
            }
            script.push_str(zone.as_str());
        }
    }
    let _ = write!(
        script,
        "\", \"{interval_text}\", \"bytes\", {n});\nq.run(function(row, table) {{ if (row[0]) {{ println(\"{letter},{tag},\" + row[0] + \",\" + row[1]); n++; }} }});\n",
        letter = side.letter(),
    );
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
            let ip_bytes: usize = prepared[0].ip_texts.iter().map(String::len).sum();
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
}
