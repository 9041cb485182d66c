//! The blocking client against an in-test HTTP server.

use std::time::Duration;

use crate::support::{ANSWER, Reply, TestServer, fast_config, ip, query};
use traffic_sentinel_client::blocking::TrafficSentinelClient;
use traffic_sentinel_client::{ByteCounts, Error, MonitorConfig, QueryTag};

fn client(config: MonitorConfig) -> TrafficSentinelClient {
    TrafficSentinelClient::new(config).unwrap()
}

#[test]
fn sends_the_exact_form_body_and_parses_the_answer() {
    let server = TestServer::start(vec![Reply::ok(ANSWER)]);
    let client = client(
        fast_config(&server)
            .credentials("billing", "pa55word")
            .build()
            .unwrap(),
    );
    let outcome = client.fetch(&[query()]).unwrap();
    assert_eq!((outcome.requests, outcome.attempts), (1, 1));
    assert_eq!(
        outcome.answer.get(QueryTag(7), ip("2001:db8::1")),
        Some(ByteCounts {
            sent: 0,
            received: 80
        })
    );
    let recorded = &server.requests()[0];
    assert_eq!(
        (recorded.method.as_str(), recorded.path.as_str()),
        ("POST", "/inmsf/Query")
    );
    assert_eq!(
        recorded.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        recorded.header("authorization"),
        Some("Basic YmlsbGluZzpwYTU1d29yZA==")
    );
    assert_eq!(
        recorded.body,
        client.plan(&[query()]).unwrap()[0].form_body()
    );
    assert!(!format!("{client:?}").contains("pa55word"));
}

#[test]
fn retries_5xx_then_succeeds() {
    let server = TestServer::start(vec![
        Reply::status(503, "busy"),
        Reply::status(503, "busy"),
        Reply::ok(ANSWER),
    ]);
    let outcome = client(fast_config(&server).build().unwrap())
        .fetch(&[query()])
        .unwrap();
    assert_eq!(outcome.attempts, 3);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn persistent_500_and_404() {
    let server = TestServer::start(vec![Reply::status(500, "boom")]);
    let err = client(fast_config(&server).build().unwrap())
        .fetch(&[query()])
        .unwrap_err();
    assert!(
        matches!(&err, Error::HttpStatus { status: 500, attempts: 3, body_prefix } if body_prefix == "boom"),
        "{err:?}"
    );
    let server = TestServer::start(vec![Reply::status(404, "")]);
    let err = client(fast_config(&server).build().unwrap())
        .fetch(&[query()])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::HttpStatus {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn timeouts_before_and_during_the_body() {
    let server = TestServer::start(vec![Reply::Delay(
        Duration::from_secs(10),
        Box::new(Reply::ok(ANSWER)),
    )]);
    let fast = |server: &TestServer| {
        client(
            fast_config(server)
                .total_timeout(Duration::from_millis(200))
                .retries(1)
                .build()
                .unwrap(),
        )
    };
    let err = fast(&server).fetch(&[query()]).unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err:?}");
    let server = TestServer::start(vec![Reply::Declared { length: 100 }]);
    let err = fast(&server).fetch(&[query()]).unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err:?}");
}

#[test]
fn connection_faults_are_transport_errors() {
    let server = TestServer::start(vec![Reply::DropMidBody {
        declared: 500,
        sent: b"s,7,203.0.113.7,12".to_vec(),
    }]);
    let err = client(fast_config(&server).build().unwrap())
        .fetch(&[query()])
        .unwrap_err();
    assert!(
        matches!(err, Error::Transport { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 3);

    let config = MonitorConfig::builder(&crate::support::closed_port_url())
        .retries(1)
        .retry_backoff(Duration::from_millis(5))
        .build()
        .unwrap();
    let err = client(config).fetch(&[query()]).unwrap_err();
    assert!(
        matches!(err, Error::Transport { attempts: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn bad_answers_are_refused() {
    let cases = [
        (Reply::ok("s,7,203.0.113.7,1200\n"), "truncated"),
        (Reply::ok("<html></html>"), "html"),
        (Reply::ok(""), "empty"),
    ];
    for (reply, kind) in cases {
        let server = TestServer::start(vec![reply]);
        let err = client(fast_config(&server).build().unwrap())
            .fetch(&[query()])
            .unwrap_err();
        let ok = match kind {
            "truncated" => matches!(err, Error::Truncated { rows_seen: 1 }),
            "html" => matches!(err, Error::Malformed { line: 1, .. }),
            _ => matches!(err, Error::EmptyAnswer),
        };
        assert!(ok, "{kind}: {err:?}");
        assert_eq!(server.requests().len(), 1);
    }
}

#[test]
fn an_endless_body_is_refused_without_reading_it_all() {
    let total = 256 * 1024 * 1024;
    let server = TestServer::start(vec![Reply::Endless {
        row: b"r,7,2001:db8::1,80\n".to_vec(),
        total,
    }]);
    let client = client(fast_config(&server).build().unwrap());
    let limit = client.plan(&[query()]).unwrap()[0].max_answer_bytes();
    let err = client.fetch(&[query()]).unwrap_err();
    assert!(
        matches!(err, Error::AnswerTooLarge { limit: got } if got == limit),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.bytes_written() < total / 4,
        "{}",
        server.bytes_written()
    );
}
