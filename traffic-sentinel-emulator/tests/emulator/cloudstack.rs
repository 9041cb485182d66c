//! The requests Apache CloudStack's `TrafficSentinelResource` sends, byte for
//! byte, through Java's `HttpURLConnection` (Java 8, as CloudStack's
//! management server runs it):
//!
//! - 4.10 and later: `POST {url}/inmsf/Query` with the body
//!   `script=URLEncoder.encode(script, "UTF-8")&authenticate=basic&resultFormat=txt`;
//!   its `content-length` request property is one Java drops (a restricted
//!   header), so Java's own headers go out, `Content-type` last but one;
//! - 4.9 and older: `new URL(url + "/inmsf/Query?script=…&authenticate=basic&resultFormat=txt").openStream()`,
//!   a GET without a body.
//!
//! A monitor URL entered with a trailing `/` makes the path `//inmsf/Query`.
//! Neither version sends an `Authorization` header.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use time::UtcOffset;
use time::macros::datetime;
use traffic_sentinel_emulator::{Emulator, EmulatorOptions, answer_script, cloudstack_script};

use crate::server::{A, B, C, history, start_with};

/// Java 8's `HttpURLConnection` `User-Agent` and `Accept` headers.
const JAVA_USER_AGENT: &str = "Java/1.8.0_292";
const JAVA_ACCEPT: &str = "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2";

/// CloudStack's script for `A`, `B` and `C` over 10:00–11:00 UTC with
/// `EXTERNAL` included, as `getScript` builds it.
fn script() -> String {
    let ips = [A, B, C].map(|ip| ip.parse().unwrap());
    cloudstack_script(
        &ips,
        &["EXTERNAL"],
        &[],
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 11:00 UTC),
        UtcOffset::UTC,
    )
}

/// What CloudStack's script prints for that history: every address that
/// sent, largest first, with what it received; `C` only received.
fn expected() -> String {
    let expected = format!("{B},300,3\n{A},110,40\n");
    assert_eq!(
        answer_script(&history(), &script(), UtcOffset::UTC).unwrap(),
        expected
    );
    expected
}

/// `script=…&authenticate=basic&resultFormat=txt`, the script encoded as
/// Java's `URLEncoder.encode(script, "UTF-8")` does (`[A-Za-z0-9.*_-]` as
/// is, space as `+`, every other byte as `%XX`).
fn form() -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(script().as_bytes()).collect();
    format!("script={encoded}&authenticate=basic&resultFormat=txt")
}

/// CloudStack 4.10+'s request, to `path`, with `extra` header lines.
fn post_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    let body = form();
    format!(
        "POST {path} HTTP/1.1\r\n\
         User-Agent: {JAVA_USER_AGENT}\r\n\
         Host: {addr}\r\n\
         Accept: {JAVA_ACCEPT}\r\n\
         Connection: keep-alive\r\n\
         {extra}\
         Content-type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\
         \r\n\
         {body}",
        body.len()
    )
}

/// CloudStack 4.9's request, to `path`, with `extra` header lines.
fn get_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!(
        "GET {path}?{} HTTP/1.1\r\n\
         User-Agent: {JAVA_USER_AGENT}\r\n\
         Host: {addr}\r\n\
         Accept: {JAVA_ACCEPT}\r\n\
         Connection: keep-alive\r\n\
         {extra}\
         \r\n",
        form()
    )
}

/// A response as read off the wire.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as is on a new connection and reads one response (the
/// connection is kept alive, as Java keeps it: the body is read by its
/// `Content-Length`).
fn exchange(addr: SocketAddr, request: &str) -> Response {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before the response head");
        received.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(received[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    let mut body = received[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before the whole body");
        body.extend_from_slice(&buf[..n]);
    }
    Response {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

async fn exchange_async(emulator: &Emulator, request: String) -> Response {
    let addr = emulator.local_addr();
    tokio::task::spawn_blocking(move || exchange(addr, &request))
        .await
        .unwrap()
}

#[tokio::test]
async fn cloudstack_requests_old_and_new_are_answered_on_both_paths() {
    let emulator = start_with(EmulatorOptions::new()).await;
    let addr = emulator.local_addr();
    let expected = expected();
    for path in ["/inmsf/Query", "//inmsf/Query"] {
        for (version, request) in [
            ("4.10+ POST", post_request(addr, path, "")),
            ("4.9 GET", get_request(addr, path, "")),
        ] {
            let response = exchange_async(&emulator, request).await;
            assert_eq!(response.status, 200, "{version} {path}: {}", response.body);
            assert_eq!(response.body, expected, "{version} {path}");
            assert!(
                response
                    .header("content-type")
                    .is_some_and(|v| v.starts_with("text/plain")),
                "{version} {path}"
            );
        }
    }
    assert_eq!(emulator.requests_served(), 4);
}

#[tokio::test]
async fn with_credentials_cloudstack_requests_need_basic_auth() {
    let emulator = start_with(EmulatorOptions::new().basic_auth("reports", "s3cr:et")).await;
    let addr = emulator.local_addr();
    let basic = |user: &str, password: &str| {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Authorization: Basic {pair}\r\n")
    };
    let expected = expected();
    for path in ["/inmsf/Query", "//inmsf/Query"] {
        for build in [post_request, get_request] {
            // As CloudStack sends it: no credentials.
            let response = exchange_async(&emulator, build(addr, path, "")).await;
            assert_eq!(response.status, 401, "{path}");
            assert_eq!(
                response.header("www-authenticate"),
                Some("Basic realm=\"Traffic Sentinel\"")
            );
            let response =
                exchange_async(&emulator, build(addr, path, &basic("reports", "wrong"))).await;
            assert_eq!(response.status, 401, "{path}");
            assert!(response.header("www-authenticate").is_some());
            let response =
                exchange_async(&emulator, build(addr, path, &basic("reports", "s3cr:et"))).await;
            assert_eq!(
                (response.status, response.body.as_str()),
                (200, expected.as_str())
            );
        }
    }
}
