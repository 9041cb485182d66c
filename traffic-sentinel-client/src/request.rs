//! One HTTP request's worth of queries: its script, the chunks it asks, the
//! form body that carries it and the largest answer it can get.

use std::net::IpAddr;

use usage_model::{QueryTag, TimeInterval};

/// The longest answer row: `s,` + a `u32` tag + `,` + the longest IP text
/// (45, an IPv6 address with an embedded IPv4 one) + `,` + a `u64` + `\r\n`.
pub(crate) const MAX_ROW_BYTES: u64 = 2 + 10 + 1 + 45 + 1 + 20 + 2;
/// The longest sentinel line: `end,` + a `u64` + `\r\n`.
pub(crate) const MAX_SENTINEL_BYTES: u64 = 4 + 20 + 2;
/// Room for what the limit does not foresee (e.g. leading zeros).
pub(crate) const ANSWER_SLACK_BYTES: u64 = 4096;

/// Part of one query: up to `max_ips_per_query` of its addresses, asked with
/// one `topN` per side whose `N` is the number of addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryChunk {
    pub(crate) tag: QueryTag,
    pub(crate) interval: TimeInterval,
    pub(crate) ips: Vec<IpAddr>,
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
/// Made by [`plan_requests`](crate::plan_requests). The script is exactly the text sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRequest {
    pub(crate) script: String,
    pub(crate) chunks: Vec<QueryChunk>,
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
    /// body is refused with [`Error::AnswerTooLarge`](crate::Error::AnswerTooLarge) without being read whole.
    pub fn max_answer_bytes(&self) -> u64 {
        (self.max_rows() as u64)
            .saturating_mul(MAX_ROW_BYTES)
            .saturating_add(MAX_SENTINEL_BYTES + ANSWER_SLACK_BYTES)
    }

    /// The form body posted for this request, exactly what CloudStack's
    /// `TrafficSentinelResource` posts:
    /// `script=<form-encoded script>&authenticate=basic&resultFormat=txt`
    /// (`application/x-www-form-urlencoded`, as `url::form_urlencoded` and
    /// Java's `URLEncoder` write it).
    pub fn form_body(&self) -> String {
        url::form_urlencoded::Serializer::new(String::with_capacity(self.script.len() * 2))
            .append_pair("script", &self.script)
            .append_pair("authenticate", "basic")
            .append_pair("resultFormat", "txt")
            .finish()
    }
}
