//! The emulator over loopback HTTP: answers, error statuses and every fault.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration as StdDuration;
use usage_model::Grid;

use time::macros::{datetime, offset};
use time::{Duration, OffsetDateTime};
use traffic_sentinel_emulator::{
    Emulator, EmulatorOptions, Fault, Flow, FlowHistory, GARBAGE_LINE, HTML_ERROR_PAGE, Times,
};

pub(crate) const A: &str = "203.0.113.7";
pub(crate) const B: &str = "2001:db8::1";
pub(crate) const C: &str = "198.51.100.9";
const PEER: &str = "192.0.2.1";
const HOUR: &str = "20261101 10:00:00, 20261101 11:00:00";

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

pub(crate) fn history() -> FlowHistory {
    let t = datetime!(2026-11-01 10:00 UTC);
    FlowHistory::new(
        Grid::MINUTELY,
        [
            flow(t, A, PEER, "INTERNAL", "EXTERNAL", 100),
            flow(
                t + Duration::minutes(59),
                A,
                PEER,
                "INTERNAL",
                "EXTERNAL",
                10,
            ),
            flow(t, PEER, A, "EXTERNAL", "INTERNAL", 40),
            flow(t, B, PEER, "INTERNAL", "EXTERNAL", 300),
            flow(t, PEER, B, "EXTERNAL", "INTERNAL", 3),
            flow(t, PEER, C, "EXTERNAL", "INTERNAL", 70),
            flow(
                t + Duration::hours(1),
                A,
                PEER,
                "INTERNAL",
                "EXTERNAL",
                5000,
            ),
        ],
    )
    .unwrap()
}

fn client_script(ips: &str, interval: &str) -> String {
    format!(
        "var n = 0;\nvar q;\n\
         q = Query.topN(\"historytrmx\", \"ipsource,bytes\", \"ipsource = {ips} & destinationzone = EXTERNAL\", \"{interval}\", \"bytes\", 3);\n\
         q.run(function(row, table) {{ if (row[0]) {{ println(\"s,7,\" + row[0] + \",\" + row[1]); n++; }} }});\n\
         q = Query.topN(\"historytrmx\", \"ipdestination,bytes\", \"ipdestination = {ips} & sourcezone = EXTERNAL\", \"{interval}\", \"bytes\", 3);\n\
         q.run(function(row, table) {{ if (row[0]) {{ println(\"r,7,\" + row[0] + \",\" + row[1]); n++; }} }});\n\
         println(\"end,\" + n);\n"
    )
}

fn expected_answer() -> String {
    format!("s,7,{B},300\ns,7,{A},110\nr,7,{C},70\nr,7,{A},40\nr,7,{B},3\nend,5\n")
}

/// Form-urlencodes like Java's `URLEncoder` (space as `+`), or with `%20`.
fn form_encode(value: &str, plus_for_space: bool) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' if plus_for_space => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn form(script: &str) -> String {
    format!(
        "script={}&authenticate=basic&resultFormat=txt",
        form_encode(script, true)
    )
}

async fn start() -> Emulator {
    start_with(EmulatorOptions::new()).await
}

pub(crate) async fn start_with(options: EmulatorOptions) -> Emulator {
    Emulator::start("127.0.0.1:0".parse().unwrap(), history(), options)
        .await
        .unwrap()
}

fn query_url(emulator: &Emulator) -> String {
    emulator.url().join("inmsf/Query").unwrap().to_string()
}

async fn post(emulator: &Emulator, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(query_url(emulator))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn post_text(emulator: &Emulator, body: String) -> (u16, String) {
    let response = post(emulator, body).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn answers_the_client_script_on_port_zero_with_ipv6() {
    let emulator = start().await;
    assert_ne!(emulator.local_addr().port(), 0);
    assert_eq!(
        emulator.url().as_str(),
        format!("http://{}/", emulator.local_addr())
    );
    let script = client_script(&format!("{A},{B},{C},{A}"), HOUR);
    let response = post(&emulator, form(&script)).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), expected_answer());
    // `%20` for spaces and fields in another order.
    let body = format!(
        "resultFormat=txt&script={}&authenticate=basic",
        form_encode(&script, false)
    );
    assert_eq!(post_text(&emulator, body).await, (200, expected_answer()));
    assert_eq!(emulator.requests_served(), 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn listens_on_ipv6_loopback_when_available() {
    let Ok(emulator) = Emulator::start(
        "[::1]:0".parse().unwrap(),
        history(),
        EmulatorOptions::new(),
    )
    .await
    else {
        return; // No IPv6 loopback on this machine.
    };
    assert!(emulator.url().as_str().starts_with("http://[::1]:"));
    let (status, text) = post_text(&emulator, form(&client_script(A, HOUR))).await;
    assert_eq!(
        (status, text.as_str()),
        (200, &*format!("s,7,{A},110\nr,7,{A},40\nend,2\n"))
    );
}

#[tokio::test]
async fn answers_cloudstacks_script_as_cloudstack_sent_it() {
    let emulator = start().await;
    let ips = format!("{A},{B},{C}");
    let mut sb = String::new();
    sb += "var q = Query.topN(\"historytrmx\",";
    sb += "                 \"ipsource,bytes\",";
    sb += &format!("                 \"ipsource = {ips} & destinationzone = EXTERNAL\",");
    sb += "                 \"20261101 10:00:00, 20261101 11:00:00\",";
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
    sb += &format!("                 \"ipdestination = {ips} & sourcezone = EXTERNAL\",");
    sb += "                 \"20261101 10:00:00, 20261101 11:00:00\",";
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
    // C only received: CloudStack's loop over totalsSent never prints it.
    assert_eq!(
        post_text(&emulator, form(&sb)).await,
        (200, format!("{B},300,3\n{A},110,40\n"))
    );
}

#[tokio::test]
async fn server_offset_shifts_the_interval() {
    let emulator = start_with(EmulatorOptions::new().server_utc_offset(offset!(+05:30))).await;
    // 10:00-11:00 UTC is 15:30-16:30 at +05:30.
    let local = "20261101 15:30:00, 20261101 16:30:00";
    assert_eq!(
        post_text(
            &emulator,
            form(&client_script(&format!("{A},{B},{C}"), local))
        )
        .await,
        (200, expected_answer())
    );
    assert_eq!(
        post_text(
            &emulator,
            form(&client_script(&format!("{A},{B},{C}"), HOUR))
        )
        .await,
        (200, "end,0\n".to_owned())
    );
}

#[tokio::test]
async fn refusals_have_the_right_status() {
    let emulator = start_with(EmulatorOptions::new().max_body_bytes(4096)).await;
    let client = reqwest::Client::new();

    let (status, text) = post_text(&emulator, form("var x = Query.topN();")).await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with("script not understood at line 1, column 5:"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);

    let body = format!(
        "script={}&resultFormat=json",
        form_encode(&client_script(A, HOUR), true)
    );
    let (status, text) = post_text(&emulator, body).await;
    assert_eq!(
        (status, text.as_str()),
        (400, "resultFormat must be \"txt\", found \"json\"\n")
    );

    let (status, text) = post_text(&emulator, "authenticate=basic&resultFormat=txt".into()).await;
    assert_eq!(
        (status, text.as_str()),
        (400, "missing form field \"script\"\n")
    );

    let (status, _) = post_text(&emulator, "script=%G0&resultFormat=txt".into()).await;
    assert_eq!(status, 400);

    let (status, text) = post_text(&emulator, form(&"x".repeat(5000))).await;
    assert_eq!(status, 413, "{text}");

    let response = client
        .post(query_url(&emulator))
        .header("Content-Type", "application/json")
        .body(form(&client_script(A, HOUR)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);

    let served = emulator.requests_served();
    assert_eq!(served, 6);

    let response = client.put(query_url(&emulator)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
    let response = client
        .post(emulator.url().join("inmsf/Other").unwrap())
        .body(form(&client_script(A, HOUR)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let response = client.get(emulator.url()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    // Only requests to the query path with POST or GET are counted.
    assert_eq!(emulator.requests_served(), served);
}

#[tokio::test]
async fn basic_auth_when_required() {
    let emulator = start_with(EmulatorOptions::new().basic_auth("guest", "pa:ss")).await;
    let (status, _) = post_text(&emulator, form(&client_script(A, HOUR))).await;
    assert_eq!(status, 401);
    let response = reqwest::Client::new()
        .post(query_url(&emulator))
        .basic_auth("guest", Some("pa:ss"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&client_script(A, HOUR)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = reqwest::Client::new()
        .post(query_url(&emulator))
        .basic_auth("guest", Some("wrong"))
        .body(form(&client_script(A, HOUR)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn status_faults_for_k_requests_then_always_then_cleared() {
    let emulator = start().await;
    let faults = emulator.faults();
    faults
        .set(Fault::SERVICE_UNAVAILABLE, Times::Next(2))
        .unwrap();
    let body = || form(&client_script(&format!("{A},{B},{C}"), HOUR));
    assert_eq!(post_text(&emulator, body()).await.0, 503);
    assert_eq!(post_text(&emulator, body()).await.0, 503);
    assert_eq!(post_text(&emulator, body()).await, (200, expected_answer()));

    faults.set(Fault::HttpStatus(500), Times::Always).unwrap();
    for _ in 0..3 {
        assert_eq!(post_text(&emulator, body()).await.0, 500);
    }
    faults.clear();
    assert_eq!(post_text(&emulator, body()).await, (200, expected_answer()));
    assert_eq!(emulator.requests_served(), 7);
}

#[tokio::test]
async fn truncated_garbage_html_and_empty_bodies() {
    let emulator = start().await;
    let faults = emulator.faults();
    let body = || form(&client_script(&format!("{A},{B},{C}"), HOUR));

    faults
        .set(Fault::TruncateBeforeSentinel, Times::Next(1))
        .unwrap();
    let response = post(&emulator, body()).await;
    assert_eq!(response.status().as_u16(), 200);
    let length: usize = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let text = response.text().await.unwrap();
    assert_eq!(text.len(), length);
    assert!(!text.contains("end,"), "{text}");
    assert!(
        expected_answer().starts_with(&text) && !text.is_empty(),
        "{text}"
    );

    faults.set(Fault::GarbageLine, Times::Next(1)).unwrap();
    let (status, text) = post_text(&emulator, body()).await;
    assert_eq!(status, 200);
    assert!(text.lines().any(|line| line == GARBAGE_LINE), "{text}");
    assert_eq!(
        text.replace(&format!("{GARBAGE_LINE}\n"), ""),
        expected_answer()
    );

    faults.set(Fault::HtmlErrorPage, Times::Next(1)).unwrap();
    let response = post(&emulator, body()).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(response.text().await.unwrap(), HTML_ERROR_PAGE);

    faults.set(Fault::EmptyBody, Times::Next(1)).unwrap();
    assert_eq!(post_text(&emulator, body()).await, (200, String::new()));

    // Every fault above was for one request only.
    assert_eq!(post_text(&emulator, body()).await, (200, expected_answer()));
    assert!(faults.active().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_mid_body_is_an_error_for_the_client() {
    let emulator = start().await;
    emulator
        .faults()
        .set(Fault::DropMidBody, Times::Always)
        .unwrap();
    let response = post(
        &emulator,
        form(&client_script(&format!("{A},{B},{C}"), HOUR)),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.bytes().await.is_err());

    // On the wire: the announced length is the full answer, part of it arrives.
    let raw = raw_exchange(
        emulator.local_addr(),
        &form(&client_script(&format!("{A},{B},{C}"), HOUR)),
    );
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let announced = content_length(head);
    assert_eq!(announced, expected_answer().len());
    assert!(!body.is_empty() && body.len() < announced, "{body:?}");
    assert!(expected_answer().starts_with(body));
    assert_eq!(emulator.requests_served(), 2);

    emulator.faults().clear();
    let (status, text) = post_text(
        &emulator,
        form(&client_script(&format!("{A},{B},{C}"), HOUR)),
    )
    .await;
    assert_eq!((status, text), (200, expected_answer()));
}

#[tokio::test]
async fn delay_makes_a_client_time_out_and_clears() {
    let emulator = start().await;
    emulator
        .faults()
        .set(Fault::Delay(StdDuration::from_secs(30)), Times::Next(1))
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(StdDuration::from_millis(300))
        .build()
        .unwrap();
    let error = client
        .post(query_url(&emulator))
        .body(form(&client_script(A, HOUR)))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    let response = client
        .post(query_url(&emulator))
        .body(form(&client_script(A, HOUR)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Shutdown cuts the pending delay short instead of waiting 30 s.
    emulator.shutdown().await;
}

#[tokio::test]
async fn shutdown_and_drop_stop_listening() {
    let emulator = start().await;
    let addr = emulator.local_addr();
    assert_eq!(
        post_text(&emulator, form(&client_script(A, HOUR))).await.0,
        200
    );
    emulator.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let emulator = start().await;
    let addr = emulator.local_addr();
    drop(emulator);
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert!(refused, "still listening on {addr} after drop");
}

#[test]
fn background_emulator_serves_sync_callers() {
    let emulator = Emulator::start_in_background(
        "127.0.0.1:0".parse().unwrap(),
        history(),
        EmulatorOptions::new(),
    )
    .unwrap();
    let raw = raw_exchange(
        emulator.local_addr(),
        &form(&client_script(&format!("{A},{B},{C}"), HOUR)),
    );
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, expected_answer());
    assert_eq!(emulator.requests_served(), 1);
    let addr = emulator.local_addr();
    drop(emulator); // Joins the server thread.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[tokio::test]
async fn many_addresses_in_one_request() {
    let start_time = datetime!(2026-11-01 00:00 UTC);
    let count: u32 = 20_000;
    let addrs: Vec<IpAddr> = (0..count)
        .map(|i| IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]))
        .collect();
    let flows = addrs.iter().enumerate().flat_map(|(i, &addr)| {
        (0..3).map(move |k| Flow {
            time: start_time + Duration::minutes(i as i64 % 1440 + k * 7),
            ipsource: addr,
            ipdestination: "192.0.2.1".parse().unwrap(),
            sourcezone: String::new(),
            destinationzone: "EXTERNAL".into(),
            bytes: 1 + i as u64,
        })
    });
    let history = FlowHistory::new(Grid::MINUTELY, flows).unwrap();
    let total = history.total_bytes();
    let emulator = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        history,
        EmulatorOptions::new(),
    )
    .await
    .unwrap();
    let list = addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let script = format!(
        "var n = 0;\nvar q;\n\
         q = Query.topN(\"historytrmx\", \"ipsource,bytes\", \"ipsource = {list}\", \"20261101 00:00:00, 20261103 00:00:00\", \"bytes\", {count});\n\
         q.run(function(row, table) {{ if (row[0]) {{ println(\"s,1,\" + row[0] + \",\" + row[1]); n++; }} }});\n\
         println(\"end,\" + n);\n"
    );
    let (status, text) = post_text(&emulator, form(&script)).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), count as usize + 1);
    assert_eq!(lines.last().copied(), Some(&*format!("end,{count}")));
    let sum: u64 = lines[..lines.len() - 1]
        .iter()
        .map(|line| line.rsplit(',').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sum, total);
    // Largest first.
    assert_eq!(
        lines[0],
        format!("s,1,{},{}", addrs[count as usize - 1], 3 * u64::from(count))
    );
}

/// Sends one raw HTTP/1.1 request and reads until the server closes.
fn raw_exchange(addr: SocketAddr, body: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /inmsf/Query HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    // A dropped connection may end in a reset rather than a clean close.
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8(response).unwrap()
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap()
}
