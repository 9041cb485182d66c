//! Running a parsed script over the flow history.

use std::net::IpAddr;

use usage_model::ServerTimeZone;

use crate::answer_writer::Line;
use crate::error::Error;
use crate::history::FlowHistory;
use crate::history_snapshot::HistorySnapshot;
use crate::script::{Script, TopN, parse_script};
use crate::zone_filter::ZoneFilter;

/// What a script is run over: a history, or a snapshot of several.
pub(crate) trait TopNSource {
    /// TS's `Query.topN` over the addresses `ips` (see [`FlowHistory::top_n`]).
    fn top_n(
        &self,
        ips: &[IpAddr],
        side: usage_model::Side,
        zones: &ZoneFilter,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
        n: usize,
    ) -> Vec<(IpAddr, u64)>;
}

impl TopNSource for FlowHistory {
    fn top_n(
        &self,
        ips: &[IpAddr],
        side: usage_model::Side,
        zones: &ZoneFilter,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
        n: usize,
    ) -> Vec<(IpAddr, u64)> {
        FlowHistory::top_n(self, ips, side, zones, start, end, n)
    }
}

impl TopNSource for HistorySnapshot {
    fn top_n(
        &self,
        ips: &[IpAddr],
        side: usage_model::Side,
        zones: &ZoneFilter,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
        n: usize,
    ) -> Vec<(IpAddr, u64)> {
        HistorySnapshot::top_n(self, ips, side, zones, start, end, n)
    }
}

/// Answers `script` over `history` as Traffic Sentinel would, reading the
/// script's interval strings on the server's clock (`server_time_zone`: a
/// [`ServerTimeZone`], or a fixed [`UtcOffset`](time::UtcOffset)), a
/// repeated local hour as its earlier instant.
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
/// (address, zone, date, tag, `N` above [`MAX_TOP_N`](crate::MAX_TOP_N), an interval whose start
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
    server_time_zone: impl Into<ServerTimeZone>,
) -> Result<String, Error> {
    let script = parse_script(script)?;
    evaluate(history, &script, &server_time_zone.into())
}

/// Runs a parsed script.
///
/// # Errors
///
/// [`Error::Model`] when an interval's local time cannot be an instant.
pub(crate) fn evaluate(
    history: &impl TopNSource,
    script: &Script,
    zone: &ServerTimeZone,
) -> Result<String, Error> {
    let run = |q: &TopN| -> Result<Vec<(IpAddr, u64)>, Error> {
        let (start, end) = (zone.from_local(q.start)?, zone.from_local(q.end)?);
        Ok(history.top_n(&q.ips, q.side, &q.zones, start, end, q.n))
    };
    // Only ASCII and `Display` output is written, so this is UTF-8.
    let mut out: Vec<u8> = Vec::new();
    match script {
        Script::Client(queries) => {
            let answers: Vec<(Vec<(IpAddr, u64)>, &str)> = queries
                .iter()
                .map(|(query, prefix)| Ok((run(query)?, prefix.as_str())))
                .collect::<Result<_, Error>>()?;
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
            let mut received = run(received)?;
            received.sort_unstable_by_key(|&(ip, _)| ip);
            let sent = run(sent)?;
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
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}
