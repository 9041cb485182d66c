//! Tests of the metrics and their HTTP server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use time::macros::datetime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use usage_model::ZoneId;

use super::{CONTENT_TYPE, Metrics, serve};

/// One sample of the exposition text: name, labels, value as written.
type Sample = (String, BTreeMap<String, String>, String);

/// Reads the sample lines of a Prometheus text exposition, and the `# TYPE`
/// line of each metric; fails on a line of any other shape.
fn parse_exposition(text: &str) -> (BTreeSet<Sample>, BTreeMap<String, String>) {
    let mut samples = BTreeSet::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .expect("a TYPE line has a name and a type");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment line {line:?}");
        let name_end = line.find(['{', ' ']).expect("a sample has a value");
        let name = line[..name_end].to_owned();
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(after) = rest.strip_prefix('{') {
            rest = after;
            loop {
                if let Some(after) = rest.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (key, after) = rest.split_once("=\"").expect("a label is key=\"value\"");
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().expect("a label value ends with a quote") {
                        (_, '\\') => match chars.next().expect("an escape has a character") {
                            (_, 'n') => value.push('\n'),
                            (_, c) => value.push(c),
                        },
                        (i, '"') => break i,
                        (_, c) => value.push(c),
                    }
                };
                labels.insert(key.to_owned(), value);
                rest = &after[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
        }
        let value = rest.strip_prefix(' ').expect("a space before the value");
        samples.insert((name, labels, value.to_owned()));
    }
    (samples, types)
}

fn sample(name: &str, labels: &[(&str, &str)], value: &str) -> Sample {
    (
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        value.to_owned(),
    )
}

fn zone(name: &str) -> ZoneId {
    ZoneId::new(name).unwrap()
}

#[test]
fn encoding_holds_exactly_the_expected_samples() {
    let (one, odd, late) = (zone("zone-1"), zone("we\"ird\\zone"), zone("zone-late"));
    let metrics = Metrics::new([&one, &odd]);
    // Above 2^53: an f64 would round this to 9007199254740992.
    let big = (1u128 << 53) + 1;
    metrics.window_committed(&one, big, 10, 2);
    metrics.window_committed(&one, 5, 20, 0);
    // Late events found in windows billed before: anomalies, no window.
    metrics.late_anomalies_found(&one, 3);
    metrics.set_checkpoint(&one, datetime!(2026-11-01 02:00 UTC));
    metrics.set_checkpoint(&one, datetime!(2026-11-01 03:00 +01:00));
    metrics.collect_failed(&odd);
    metrics.collect_failed(&odd);
    metrics.window_committed(&late, 0, u128::from(u64::MAX), 1);
    // A byte counter stops at 2^64 - 1 rather than wrapping.
    metrics.window_committed(&late, 0, 5, 0);

    let (samples, types) = parse_exposition(&metrics.encode());
    let expected: BTreeSet<Sample> = [
        // 2026-11-01T02:00:00Z, set twice to the same instant.
        sample(
            "traffic_usage_checkpoint_timestamp_seconds",
            &[("zone", "zone-1")],
            "1793498400",
        ),
        sample("traffic_usage_windows_total", &[("zone", "zone-1")], "2"),
        sample(
            "traffic_usage_windows_total",
            &[("zone", "we\"ird\\zone")],
            "0",
        ),
        sample("traffic_usage_windows_total", &[("zone", "zone-late")], "2"),
        sample(
            "traffic_usage_bytes_billed_total",
            &[("zone", "zone-1"), ("direction", "sent")],
            "9007199254740998",
        ),
        sample(
            "traffic_usage_bytes_billed_total",
            &[("zone", "zone-1"), ("direction", "received")],
            "30",
        ),
        sample(
            "traffic_usage_bytes_billed_total",
            &[("zone", "we\"ird\\zone"), ("direction", "sent")],
            "0",
        ),
        sample(
            "traffic_usage_bytes_billed_total",
            &[("zone", "we\"ird\\zone"), ("direction", "received")],
            "0",
        ),
        sample(
            "traffic_usage_bytes_billed_total",
            &[("zone", "zone-late"), ("direction", "sent")],
            "0",
        ),
        sample(
            "traffic_usage_bytes_billed_total",
            &[("zone", "zone-late"), ("direction", "received")],
            "18446744073709551615",
        ),
        sample(
            "traffic_usage_collect_failures_total",
            &[("zone", "zone-1")],
            "0",
        ),
        sample(
            "traffic_usage_collect_failures_total",
            &[("zone", "we\"ird\\zone")],
            "2",
        ),
        sample(
            "traffic_usage_collect_failures_total",
            &[("zone", "zone-late")],
            "0",
        ),
        sample("traffic_usage_anomalies_total", &[("zone", "zone-1")], "5"),
        sample(
            "traffic_usage_anomalies_total",
            &[("zone", "we\"ird\\zone")],
            "0",
        ),
        sample(
            "traffic_usage_anomalies_total",
            &[("zone", "zone-late")],
            "1",
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(samples, expected);
    let expected_types: BTreeMap<String, String> = [
        ("traffic_usage_checkpoint_timestamp_seconds", "gauge"),
        ("traffic_usage_windows_total", "counter"),
        ("traffic_usage_bytes_billed_total", "counter"),
        ("traffic_usage_collect_failures_total", "counter"),
        ("traffic_usage_anomalies_total", "counter"),
    ]
    .into_iter()
    .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
    .collect();
    assert_eq!(types, expected_types);
}

#[test]
fn a_zone_without_checkpoint_has_no_checkpoint_sample() {
    let metrics = Metrics::new([&zone("zone-1")]);
    let (samples, _) = parse_exposition(&metrics.encode());
    assert!(
        samples
            .iter()
            .all(|(name, _, _)| name != "traffic_usage_checkpoint_timestamp_seconds")
    );
    assert_eq!(samples.len(), 5, "{samples:?}");
}

/// Sends `request` over a new connection to `addr` and returns the whole answer.
async fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn serves_metrics_over_loopback_and_stops_on_shutdown() {
    let metrics = Arc::new(Metrics::new([&zone("zone-1")]));
    metrics.window_committed(&zone("zone-1"), 123, 456, 0);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = serve("127.0.0.1:0".parse().unwrap(), metrics.clone(), async {
        let _ = stop_rx.await;
    })
    .await
    .unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    let answer = exchange(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {CONTENT_TYPE}")),
        "{head}"
    );
    assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    let (samples, _) = parse_exposition(body);
    assert!(samples.contains(&sample(
        "traffic_usage_bytes_billed_total",
        &[("zone", "zone-1"), ("direction", "received")],
        "456"
    )));
    assert_eq!(body, metrics.encode());

    for (request, status) in [
        ("GET / HTTP/1.1", "404 Not Found"),
        ("GET /metrics/x HTTP/1.1", "404 Not Found"),
        ("POST /metrics HTTP/1.1", "405 Method Not Allowed"),
    ] {
        let answer = exchange(
            addr,
            &format!(
                "{request}\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{request}: {answer}"
        );
    }

    stop_tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), server.stopped())
        .await
        .expect("the server stops after the shutdown");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_busy_address_is_an_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let result = serve(addr, Arc::new(Metrics::new([])), std::future::pending()).await;
    assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
}
