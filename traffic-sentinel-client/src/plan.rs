//! Planning: queries into the fewest requests the size limits allow.

use std::collections::HashSet;
use std::net::IpAddr;
use std::ops::Range;

use usage_model::{Side, TimeInterval, TrafficQuery};

use crate::request::{QueryChunk, ScriptRequest};
use crate::script::{
    SCRIPT_FOOTER, SCRIPT_HEADER, push_ip, side_head, side_texts, ts_interval, write_chunk,
};
use crate::{Error, MonitorConfig};

/// The parts of one request: (query index, address range) pairs.
type RequestParts = Vec<(usize, Range<usize>)>;

/// A validated query with its text parts prepared.
pub(crate) struct PreparedQuery<'q> {
    pub(crate) query: &'q TrafficQuery,
    /// The interval as the script sends it (see the fold rule of
    /// [`plan_requests`]).
    pub(crate) sent: TimeInterval,
    /// The addresses' texts, each followed by a comma.
    pub(crate) ip_list: String,
    /// Where each address's text starts in `ip_list`, then `ip_list.len()`.
    pub(crate) ip_starts: Vec<usize>,
    /// Per side (as [`Side::BOTH`]): the text between the address list and
    /// `N` (zone filters, interval, ordering) and the text after `N` (the
    /// `run` line).
    pub(crate) sides: [(String, String); 2],
    /// Length of both sides' text for this query with no address and an
    /// empty `N`: the rest is `2 × (addresses, commas, digits of N)`.
    pub(crate) fixed_len: usize,
}

impl PreparedQuery<'_> {
    /// Script bytes of a chunk of `count` addresses whose texts sum to `ip_bytes`.
    pub(crate) fn chunk_len(&self, count: usize, ip_bytes: usize) -> usize {
        self.fixed_len + 2 * (ip_bytes + count.saturating_sub(1) + decimal_digits(count))
    }

    /// The number of addresses.
    pub(crate) fn ip_count(&self) -> usize {
        self.ip_starts.len() - 1
    }

    /// The text of the `position`-th address.
    pub(crate) fn ip_text(&self, position: usize) -> &str {
        self.ip_list_text(position..position + 1)
    }

    /// The addresses of `range`, comma-separated, as the filter lists them.
    pub(crate) fn ip_list_text(&self, range: Range<usize>) -> &str {
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

/// Turns queries into the fewest requests the configured limits allow.
///
/// Each query's addresses are cut into chunks of at most
/// [`MonitorConfig::max_ips_per_query`]; each chunk becomes a sent (`s`) and a
/// received (`r`) `topN` whose `N` is the chunk's address count, always in the
/// same request. Chunks are packed in query order into requests of at most
/// [`MonitorConfig::max_script_bytes`]; a chunk that does not fit in what is
/// left of a request is cut further, so requests are filled.
///
/// # Server time zones and the autumn fold
///
/// Interval boundaries are written on the server's clock
/// ([`MonitorConfig::server_time_zone`]), and the server reads a local time
/// that occurs twice (the hour repeated when clocks go back) as the earlier
/// instant. As DESIGN §3 says, a boundary in the repeated hour is written as
/// the earlier of its two readings: a boundary in the second reading as its
/// wall time, which the server reads an hour early; a boundary in the first
/// reading as the repeated hour's start, so that boundaries keep their
/// order ([`ServerTimeZone::fold_boundary`](usage_model::ServerTimeZone::fold_boundary)).
/// Two intervals that met still meet, and, as the server reads them back,
/// none goes backwards and none overlaps another: each bucket is asked at
/// most once and none is lost. An interval that does not touch the repeated
/// hour is sent unchanged; an interval that the rule makes empty (one that
/// lies in the first reading) is not sent, and its buckets go to the
/// interval that reaches into them from after. On an hourly grid this is
/// exactly the earlier reading of every boundary. [`QueryChunk::interval`]
/// is the interval as sent.
///
/// # Errors
///
/// Returns [`Error::Plan`] naming the tag when two queries share a tag, an
/// interval is empty or has an end off the grid (a whole multiple of
/// [`MonitorConfig::granularity`] from the Unix epoch), an interval cannot be
/// written on the server's clock (year outside 0000–9999), a query has no
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
            write_chunk(
                &mut script,
                query.ip_list_text(range.clone()),
                range.len(),
                &query.sides,
            );
            chunks.push(QueryChunk {
                tag: query.query.tag,
                interval: query.sent,
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
        let zone = config.server_time_zone();
        let written = |at| {
            zone.fold_boundary(at)
                .map_err(|err| refuse(format!("{err} in the server's time zone {zone}")))
        };
        let (start, end) = (written(interval.start())?, written(interval.end())?);
        let sent = match TimeInterval::new(start, end) {
            Ok(sent) if !sent.is_empty() => sent,
            _ => {
                tracing::debug!(
                    tag = %query.tag, %interval, %zone,
                    "interval lies in the first reading of a repeated hour; not sent"
                );
                continue;
            }
        };
        let interval_text = ts_interval(sent, zone).map_err(refuse)?;
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
            sent,
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

#[cfg(test)]
mod tests;
