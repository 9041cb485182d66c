//! Every fault the client must survive, in one table: faults injected into
//! the real emulator and faults a scripted server plays (statuses,
//! redirects, delays, stalled or dropped bodies, truncated, empty, HTML and
//! garbage answers), and a port nobody listens on. For each: what `fetch`
//! returns, how many requests the server saw, and, on the emulator, that
//! the same client gets the whole answer in one attempt once the fault is
//! cleared.

use std::time::Duration;

use traffic_sentinel_client::{Error, FetchOutcome, MonitorConfig, MonitorConfigBuilder, QueryTag};
use traffic_sentinel_emulator::{EmulatorOptions, Fault, GARBAGE_LINE, Times};

use crate::emulator::{GUEST4, GUEST6, client, counts, fast, hour_query, ip, start};
use crate::support::{ANSWER, Reply, TestServer, closed_port_url, fast_config, query};

/// Where a case's requests go.
enum Server {
    /// The emulator, with this fault set.
    Emulator(Fault, Times),
    /// The scripted server, playing these replies in order (the last repeats).
    Scripted(Vec<Reply>),
    /// A loopback port nobody listens on.
    Closed,
}

/// One fault and what must come of it.
struct Case {
    name: &'static str,
    server: Server,
    /// The client's settings, over the server's base ones (`fast`,
    /// `fast_config`, or the closed port with defaults).
    config: fn(MonitorConfigBuilder) -> MonitorConfigBuilder,
    /// Checks what `fetch` returned.
    check: fn(&Result<FetchOutcome, Error>),
    /// The requests the server must have answered, when it is counted.
    requests: Option<u64>,
}

/// The emulator cases' client: one retry, a total timeout of 400 ms.
fn one_retry(builder: MonitorConfigBuilder) -> MonitorConfigBuilder {
    builder.retries(1).total_timeout(Duration::from_millis(400))
}

fn as_configured(builder: MonitorConfigBuilder) -> MonitorConfigBuilder {
    builder
}

/// The emulator's answer for the hour query, whole.
fn emulator_answer(outcome: &FetchOutcome) {
    assert_eq!(
        outcome.answer.get(QueryTag(7), ip(GUEST4)),
        Some(counts(1_024, 300))
    );
    assert_eq!(
        outcome.answer.get(QueryTag(7), ip(GUEST6)),
        Some(counts(0, 80))
    );
}

fn outcome(result: &Result<FetchOutcome, Error>) -> &FetchOutcome {
    match result {
        Ok(outcome) => outcome,
        Err(err) => panic!("expected an answer, got {err:?}"),
    }
}

fn error(result: &Result<FetchOutcome, Error>) -> &Error {
    match result {
        Ok(outcome) => panic!("expected an error, got {outcome:?}"),
        Err(err) => err,
    }
}

fn client_error(result: &Result<FetchOutcome, Error>, want: u16) {
    match error(result) {
        Error::HttpStatus {
            status,
            body_prefix,
            attempts,
        } => {
            assert_eq!((*status, *attempts), (want, 1));
            assert_eq!(body_prefix, "no such thing");
        }
        other => panic!("expected an http status error, got {other:?}"),
    }
}

fn cases() -> Vec<Case> {
    vec![
        // Injected into the emulator.
        Case {
            name: "a_delay_past_the_timeout_is_a_timeout_after_the_retries",
            server: Server::Emulator(Fault::Delay(Duration::from_secs(3)), Times::Always),
            config: one_retry,
            check: |result| {
                let err = error(result);
                assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err:?}");
                assert!(err.is_timeout());
            },
            requests: None,
        },
        Case {
            name: "a_5xx_once_is_retried_and_recovers",
            server: Server::Emulator(Fault::SERVICE_UNAVAILABLE, Times::Next(1)),
            config: one_retry,
            check: |result| {
                let outcome = outcome(result);
                assert_eq!((outcome.requests, outcome.attempts), (1, 2));
                emulator_answer(outcome);
            },
            requests: Some(2),
        },
        Case {
            name: "transient_5xx_within_the_retries_recover",
            // Three retries, three failures: the fourth attempt answers.
            server: Server::Emulator(Fault::HttpStatus(500), Times::Next(3)),
            config: |builder| builder.retries(3),
            check: |result| {
                let outcome = outcome(result);
                assert_eq!((outcome.requests, outcome.attempts), (1, 4));
                emulator_answer(outcome);
            },
            requests: Some(4),
        },
        Case {
            name: "a_5xx_always_is_an_http_status_error_after_the_retries",
            server: Server::Emulator(Fault::SERVICE_UNAVAILABLE, Times::Always),
            config: one_retry,
            check: |result| match error(result) {
                Error::HttpStatus {
                    status,
                    body_prefix,
                    attempts,
                } => {
                    assert_eq!((*status, *attempts), (503, 2));
                    assert!(body_prefix.contains("503"), "{body_prefix:?}");
                }
                other => panic!("expected an http status error, got {other:?}"),
            },
            requests: Some(2),
        },
        Case {
            name: "a_connection_dropped_mid_body_is_a_transport_error",
            server: Server::Emulator(Fault::DropMidBody, Times::Always),
            config: one_retry,
            check: |result| {
                let err = error(result);
                assert!(
                    matches!(err, Error::Transport { attempts: 2, .. }),
                    "{err:?}"
                );
            },
            requests: Some(2),
        },
        Case {
            name: "a_connection_dropped_once_gets_the_whole_answer_on_the_retry",
            server: Server::Emulator(Fault::DropMidBody, Times::Next(1)),
            config: one_retry,
            check: |result| {
                let outcome = outcome(result);
                assert_eq!(outcome.attempts, 2);
                emulator_answer(outcome);
            },
            requests: Some(2),
        },
        Case {
            name: "a_truncated_answer_is_refused_and_not_retried",
            server: Server::Emulator(Fault::TruncateBeforeSentinel, Times::Always),
            config: one_retry,
            check: |result| {
                // The answer has 3 rows; the emulator cuts the sentinel and the last row.
                let err = error(result);
                assert!(matches!(err, Error::Truncated { rows_seen: 2 }), "{err:?}");
            },
            requests: Some(1),
        },
        Case {
            name: "a_garbage_line_is_malformed_naming_the_line",
            server: Server::Emulator(Fault::GarbageLine, Times::Always),
            config: one_retry,
            check: |result| {
                let err = error(result);
                match err {
                    // 3 rows and the sentinel: the garbage goes in the middle, line 3.
                    Error::Malformed { line, content, .. } => {
                        assert_eq!(*line, 3);
                        assert_eq!(content, GARBAGE_LINE);
                    }
                    other => panic!("expected a malformed answer, got {other:?}"),
                }
                let message = err.to_string();
                assert!(message.contains("line 3"), "{message}");
                assert!(message.contains(GARBAGE_LINE), "{message}");
            },
            requests: Some(1),
        },
        Case {
            name: "an_html_page_with_200_is_malformed_html",
            server: Server::Emulator(Fault::HtmlErrorPage, Times::Always),
            config: one_retry,
            check: |result| match error(result) {
                Error::Malformed {
                    line,
                    content,
                    reason,
                } => {
                    assert_eq!(*line, 1);
                    assert!(reason.contains("html"), "{reason}");
                    assert!(content.starts_with("<!DOCTYPE html>"), "{content}");
                }
                other => panic!("expected a malformed answer, got {other:?}"),
            },
            requests: Some(1),
        },
        Case {
            name: "an_empty_body_is_an_empty_answer",
            server: Server::Emulator(Fault::EmptyBody, Times::Always),
            config: one_retry,
            check: |result| {
                let err = error(result);
                assert!(matches!(err, Error::EmptyAnswer), "{err:?}");
            },
            requests: Some(1),
        },
        // Played by the scripted server.
        Case {
            name: "two_503_then_200_succeeds_on_the_third_attempt",
            server: Server::Scripted(vec![
                Reply::status(503, "busy"),
                Reply::status(503, "busy"),
                Reply::ok(ANSWER),
            ]),
            config: as_configured,
            check: |result| {
                let outcome = outcome(result);
                assert_eq!((outcome.requests, outcome.attempts), (1, 3));
                assert_eq!(outcome.answer.len(), 2);
            },
            requests: Some(3),
        },
        Case {
            name: "persistent_500_is_an_http_status_error_after_all_retries",
            server: Server::Scripted(vec![Reply::status(500, &"internal error ".repeat(40))]),
            config: |builder| builder.retries(3),
            check: |result| {
                let err = error(result);
                match err {
                    Error::HttpStatus {
                        status,
                        body_prefix,
                        attempts,
                    } => {
                        assert_eq!((*status, *attempts), (500, 4));
                        assert_eq!(body_prefix.chars().count(), 200);
                        assert!(body_prefix.starts_with("internal error internal"));
                    }
                    other => panic!("expected an http status error, got {other:?}"),
                }
                assert_eq!(err.attempts(), Some(4));
                assert!(
                    err.to_string()
                        .starts_with("http status 500 after 4 attempt(s): ")
                );
            },
            requests: Some(4),
        },
        Case {
            name: "client_errors_are_not_retried_400",
            server: Server::Scripted(vec![Reply::status(400, "no such thing")]),
            config: as_configured,
            check: |result| client_error(result, 400),
            requests: Some(1),
        },
        Case {
            name: "client_errors_are_not_retried_401",
            server: Server::Scripted(vec![Reply::status(401, "no such thing")]),
            config: as_configured,
            check: |result| client_error(result, 401),
            requests: Some(1),
        },
        Case {
            name: "client_errors_are_not_retried_404",
            server: Server::Scripted(vec![Reply::status(404, "no such thing")]),
            config: as_configured,
            check: |result| client_error(result, 404),
            requests: Some(1),
        },
        Case {
            name: "redirects_are_not_followed",
            server: Server::Scripted(vec![Reply::Redirect]),
            config: as_configured,
            check: |result| {
                let err = error(result);
                assert!(
                    matches!(
                        err,
                        Error::HttpStatus {
                            status: 302,
                            attempts: 1,
                            ..
                        }
                    ),
                    "{err:?}"
                );
            },
            requests: Some(1),
        },
        Case {
            name: "a_delay_past_the_total_timeout_is_a_timeout_error",
            server: Server::Scripted(vec![Reply::Delay(
                Duration::from_secs(10),
                Box::new(Reply::ok(ANSWER)),
            )]),
            config: |builder| builder.total_timeout(Duration::from_millis(200)).retries(1),
            check: |result| {
                let err = error(result);
                assert!(err.is_timeout(), "{err:?}");
                assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err:?}");
                assert!(
                    err.to_string()
                        .starts_with("request timed out after 2 attempt(s): ")
                );
            },
            requests: Some(2),
        },
        Case {
            name: "a_slow_body_counts_against_the_total_timeout",
            // Headers at once, then the body stalls: the total timeout still applies.
            server: Server::Scripted(vec![Reply::Declared { length: 100 }]),
            config: |builder| builder.total_timeout(Duration::from_millis(300)).retries(0),
            check: |result| {
                let err = error(result);
                assert!(err.is_timeout(), "{err:?}");
            },
            requests: None,
        },
        Case {
            name: "delay_then_success_recovers",
            server: Server::Scripted(vec![
                Reply::Delay(Duration::from_secs(10), Box::new(Reply::ok(ANSWER))),
                Reply::ok(ANSWER),
            ]),
            config: |builder| builder.total_timeout(Duration::from_millis(300)),
            check: |result| assert_eq!(outcome(result).attempts, 2),
            requests: None,
        },
        Case {
            name: "connection_dropped_mid_body_is_a_retried_transport_error",
            server: Server::Scripted(vec![Reply::DropMidBody {
                declared: 1000,
                sent: b"s,7,203.0.113.7,1200\nr,7,".to_vec(),
            }]),
            config: as_configured,
            check: |result| {
                let err = error(result);
                assert!(
                    matches!(err, Error::Transport { attempts: 3, .. }),
                    "{err:?}"
                );
            },
            requests: Some(3),
        },
        Case {
            name: "connection_dropped_once_then_success_recovers",
            server: Server::Scripted(vec![
                Reply::DropMidBody {
                    declared: 1000,
                    sent: b"s,7,203.0.113.7,1200\n".to_vec(),
                },
                Reply::ok(ANSWER),
            ]),
            config: as_configured,
            check: |result| {
                let outcome = outcome(result);
                assert_eq!((outcome.requests, outcome.attempts), (1, 2));
                assert_eq!(outcome.answer.len(), 2);
            },
            requests: None,
        },
        Case {
            name: "a_body_without_sentinel_is_truncated_and_not_retried",
            server: Server::Scripted(vec![Reply::ok(
                "s,7,203.0.113.7,1200\nr,7,203.0.113.7,300\n",
            )]),
            config: as_configured,
            check: |result| {
                let err = error(result);
                assert!(matches!(err, Error::Truncated { rows_seen: 2 }), "{err:?}");
            },
            requests: Some(1),
        },
        Case {
            name: "an_empty_body_is_refused",
            server: Server::Scripted(vec![Reply::ok("")]),
            config: as_configured,
            check: |result| {
                let err = error(result);
                assert!(matches!(err, Error::EmptyAnswer), "{err:?}");
            },
            requests: None,
        },
        Case {
            name: "an_html_page_with_200_is_malformed",
            server: Server::Scripted(vec![Reply::ok(
                "<html><head><title>Login</title></head></html>\n",
            )]),
            config: as_configured,
            check: |result| match error(result) {
                Error::Malformed {
                    line,
                    content,
                    reason,
                } => {
                    assert_eq!(*line, 1);
                    assert_eq!(reason, "answer is html, not txt");
                    assert!(content.starts_with("<html>"));
                }
                other => panic!("expected malformed, got {other:?}"),
            },
            requests: Some(1),
        },
        Case {
            name: "a_garbage_line_is_malformed_naming_it",
            server: Server::Scripted(vec![Reply::ok(
                "s,7,203.0.113.7,1200\n#garbage#\nr,7,2001:db8::1,80\nend,2\n",
            )]),
            config: as_configured,
            check: |result| {
                let err = error(result);
                assert!(
                    matches!(err, Error::Malformed { line: 2, content, .. } if content == "#garbage#"),
                    "{err:?}"
                );
            },
            requests: None,
        },
        // Nobody listens.
        Case {
            name: "connection_refused_is_a_transport_error_after_retries",
            server: Server::Closed,
            config: |builder| builder.retries(2).retry_backoff(Duration::from_millis(5)),
            check: |result| {
                let err = error(result);
                assert!(
                    matches!(err, Error::Transport { attempts: 3, .. }),
                    "{err:?}"
                );
                assert!(!err.is_timeout());
                assert!(
                    err.to_string()
                        .starts_with("transport error after 3 attempt(s): "),
                    "{err}"
                );
            },
            requests: None,
        },
    ]
}

/// Runs one case; a failure names it.
async fn run(case: Case) {
    let Case {
        name,
        server,
        config,
        check,
        requests,
    } = case;
    eprintln!("fault case {name}");
    match server {
        Server::Emulator(fault, times) => {
            let emulator = start(EmulatorOptions::new()).await;
            let client = client(config(fast(&emulator)).build().unwrap());
            emulator.faults().set(fault, times).unwrap();
            check(&client.fetch(&[hour_query()]).await);
            if let Some(requests) = requests {
                assert_eq!(emulator.requests_served(), requests, "{name}");
            }
            // Once the fault is cleared, the same client gets the whole answer at once.
            emulator.faults().clear();
            let clean = client.fetch(&[hour_query()]).await.unwrap();
            emulator_answer(&clean);
            assert_eq!(clean.attempts, 1, "{name}");
        }
        Server::Scripted(replies) => {
            let server = TestServer::start(replies);
            let client = crate::emulator::client(config(fast_config(&server)).build().unwrap());
            check(&client.fetch(&[query()]).await);
            if let Some(requests) = requests {
                assert_eq!(server.requests().len() as u64, requests, "{name}");
            }
        }
        Server::Closed => {
            let builder = MonitorConfig::builder(&closed_port_url());
            let client = client(config(builder).build().unwrap());
            check(&client.fetch(&[query()]).await);
        }
    }
}

#[tokio::test]
async fn every_fault_gives_its_error_or_recovers() {
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|case| case.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    for case in cases {
        run(case).await;
    }
}
