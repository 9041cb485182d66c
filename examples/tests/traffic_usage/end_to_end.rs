//! `emulate`, `collect`, `report`, `plan` and `demo` end to end: the built
//! binary against a Traffic Sentinel emulator over loopback HTTP, with totals
//! computed by hand, on every store engine, which must all give the same
//! reports byte for byte.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Output, Stdio};

use time::Duration;
use traffic_sentinel_client::{MonitorConfig, plan_requests};
use traffic_sentinel_emulator::{Emulator, Fault, Times};
use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan, Schedule};
use usage_model::{AccountId, ZoneId};

use crate::support::{
    Contents, Engine, Scratch, assert_same, binary, checkpoint, emulator_over_csv, engines,
    monitor, report, run, stderr, stdout,
};

/// The event log of the story, out of order, one time with an offset:
///
/// - 203.0.113.10: acct-a since the day before; released at 02:30 and assigned
///   to acct-b at the same instant (a reassignment in the middle of an hour);
/// - 2001:db8::7: acct-b from 01:15;
/// - 198.51.100.20: acct-a from 00:00 to 04:00; it only receives traffic;
/// - 203.0.113.11: never assigned; a stray release at 01:00 (an anomaly);
/// - 203.0.113.12: held by the system account 1, which is excluded.
pub(crate) const EVENTS: &str = r#"{"id":4,"type":"NET.IPASSIGN","at":"2026-11-01T01:15:00Z","zone":"zone-1","account":"acct-b","ip":"2001:db8::7"}
{"id":1,"type":"NET.IPASSIGN","at":"2026-10-31T22:00:00Z","zone":"zone-1","account":"acct-a","ip":"203.0.113.10"}
{"id":2,"type":"NET.IPRELEASE","at":"2026-11-01T03:30:00+01:00","zone":"zone-1","account":"acct-a","ip":"203.0.113.10"}

{"id":3,"type":"NET.IPASSIGN","at":"2026-11-01T02:30:00Z","zone":"zone-1","account":"acct-b","ip":"203.0.113.10"}
{"id":5,"type":"NET.IPASSIGN","at":"2026-11-01T00:00:00Z","zone":"zone-1","account":"acct-a","ip":"198.51.100.20"}
{"id":6,"type":"NET.IPRELEASE","at":"2026-11-01T04:00:00Z","zone":"zone-1","account":"acct-a","ip":"198.51.100.20"}
{"id":7,"type":"NET.IPRELEASE","at":"2026-11-01T01:00:00Z","zone":"zone-1","account":"acct-a","ip":"203.0.113.11"}
{"id":8,"type":"NET.IPASSIGN","at":"2026-11-01T00:00:00Z","zone":"zone-1","account":"1","ip":"203.0.113.12"}
"#;

/// The flows of the story, each with who pays for it on an hourly grid.
pub(crate) const FLOWS: &str = "\
time,ipsource,ipdestination,sourcezone,destinationzone,bytes
2026-10-31T23:30:00Z,203.0.113.10,192.0.2.1,CLOUD,EXTERNAL,42
2026-11-01T00:10:00Z,203.0.113.10,192.0.2.1,CLOUD,EXTERNAL,1000
2026-11-01T01:59:30Z,198.51.100.7,203.0.113.10,EXTERNAL,CLOUD,200
2026-11-01T02:10:00Z,203.0.113.10,192.0.2.1,CLOUD,EXTERNAL,4000
2026-11-01T03:00:00Z,203.0.113.10,192.0.2.9,CLOUD,INTERNAL,999999
2026-11-01T05:59:59Z,192.0.2.1,203.0.113.10,EXTERNAL,CLOUD,30
2026-11-01T06:00:00Z,203.0.113.10,192.0.2.1,CLOUD,EXTERNAL,7777
2026-11-01T00:30:00Z,2001:db8::7,2001:db8:ffff::1,CLOUD,EXTERNAL,500
2026-11-01T01:20:00Z,2001:db8::7,2001:db8:ffff::1,CLOUD,EXTERNAL,600
2026-11-01T04:00:00Z,2001:db8:ffff::1,2001:db8::7,EXTERNAL,CLOUD,70
2026-11-01T01:00:00Z,192.0.2.1,198.51.100.20,EXTERNAL,CLOUD,300
2026-11-01T03:59:00Z,192.0.2.1,198.51.100.20,EXTERNAL,CLOUD,5
2026-11-01T04:30:00Z,192.0.2.1,198.51.100.20,EXTERNAL,CLOUD,8000
2026-11-01T02:00:00Z,203.0.113.11,192.0.2.1,CLOUD,EXTERNAL,123
2026-11-01T00:05:00Z,203.0.113.12,192.0.2.1,CLOUD,EXTERNAL,55555
";

/// Per account, by hand:
///
/// - acct-a sends 1000 (00:10 on .10); receives 200 (01:59:30 on .10, its
///   bucket 01:00 ends before the 02:30 handover), 300 and 5 (.20 until
///   04:00). Not the 42 before the span, not the 8000 after the release.
/// - acct-b sends 4000 (02:10 on .10: the bucket 02:00–03:00 belongs to whoever
///   holds the address at its end) and 600 (01:20 on ::7, whose 01:15 assign
///   floors to 01:00); receives 30 and 70. Not the 500 before 01:00, not the
///   999999 to INTERNAL, not the 7777 at the span's end.
/// - Nobody pays the 123 of the never-assigned .11 or the 55555 of the
///   excluded account 1.
pub(crate) const REPORT_BY_ACCOUNT: &str = concat!(
    r#"[{"zone":"zone-1","account":"acct-a","bytes_sent":1000,"bytes_received":505},"#,
    r#"{"zone":"zone-1","account":"acct-b","bytes_sent":4600,"bytes_received":100}]"#,
    "\n"
);

/// The records, with windows of 3 h: [00:00, 03:00) and [03:00, 06:00).
pub(crate) const REPORT_BY_IP: &str = "\
zone,account,ip,start,end,bytes_sent,bytes_received
zone-1,acct-a,198.51.100.20,2026-11-01T00:00:00Z,2026-11-01T03:00:00Z,0,300
zone-1,acct-a,198.51.100.20,2026-11-01T03:00:00Z,2026-11-01T04:00:00Z,0,5
zone-1,acct-a,203.0.113.10,2026-11-01T00:00:00Z,2026-11-01T02:00:00Z,1000,200
zone-1,acct-b,203.0.113.10,2026-11-01T02:00:00Z,2026-11-01T03:00:00Z,4000,0
zone-1,acct-b,203.0.113.10,2026-11-01T03:00:00Z,2026-11-01T06:00:00Z,0,30
zone-1,acct-b,2001:db8::7,2026-11-01T01:00:00Z,2026-11-01T03:00:00Z,600,0
zone-1,acct-b,2001:db8::7,2026-11-01T03:00:00Z,2026-11-01T06:00:00Z,0,70
";

pub(crate) const FROM: &str = "2026-11-01T00:00:00Z";
pub(crate) const UNTIL: &str = "2026-11-01T06:00:00Z";

/// A scratch directory holding the story's `events.jsonl` and `flows.csv`.
pub(crate) fn story() -> Scratch {
    let scratch = Scratch::new();
    scratch.write("events.jsonl", EVENTS);
    scratch.write("flows.csv", FLOWS);
    scratch
}

/// `collect` of the story's span from `monitor` into `db`, with windows of
/// 3 h, account 1 excluded, a short timeout and (unless `extra` says
/// otherwise) one retry, up to 06:00, with the events of `events.jsonl`.
pub(crate) fn collect(scratch: &Scratch, monitor: &str, db: &str, extra: &[&str]) -> Output {
    let events = scratch.arg("events.jsonl");
    let mut args = vec![
        "collect",
        "--monitor",
        monitor,
        "--events",
        &events,
        "--db",
        db,
        "--zone",
        "zone-1",
        "--from",
        FROM,
        "--max-window",
        "3h",
        "--exclude-account",
        "1",
        "--timeout",
        "5s",
    ];
    args.extend_from_slice(extra);
    for (flag, default) in [("--until", UNTIL), ("--retries", "1")] {
        if !extra.contains(&flag) {
            args.extend_from_slice(&[flag, default]);
        }
    }
    run(&args)
}

/// A running `emulate` subprocess; killed when dropped.
struct EmulateProcess {
    child: Child,
    url: String,
}

impl EmulateProcess {
    fn start(flows: &str) -> EmulateProcess {
        let mut child = binary()
            .args(["emulate", "--flows", flows, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim_end()
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{line:?}");
        assert_eq!(line, format!("listening on {url}\n"));
        EmulateProcess { child, url }
    }
}

impl Drop for EmulateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An in-process emulator over the story's flows, minute buckets.
pub(crate) fn emulator_in_process() -> Emulator {
    emulator_over_csv(FLOWS)
}

/// The stray release of the story, stored with the window it was found in.
pub(crate) const ANOMALIES: &str = "\
zone,window_start,window_end,kind,event_id,detail
zone-1,2026-11-01T00:00:00Z,2026-11-01T03:00:00Z,release-of-free-ip,7,release-of-free-ip: event 7 at 2026-11-01T01:00:00Z (NET.IPRELEASE 203.0.113.11 acct-a in zone zone-1)
";

/// Every report of `db`: each grouping in each format.
fn every_report(db: &str) -> Vec<String> {
    let mut reports = Vec::new();
    for by in ["account", "ip", "day", "anomaly", "adjustment"] {
        for format in ["table", "json", "csv"] {
            reports.push(report(db, &["--by", by, "--format", format]));
        }
    }
    reports
}

/// The same reports from every engine, byte for byte.
#[track_caller]
fn assert_same_on_every_engine<T: PartialEq + std::fmt::Debug>(per_engine: &[(Engine, T)]) {
    let Some(((first, want), rest)) = per_engine.split_first() else {
        return;
    };
    for (engine, got) in rest {
        assert_eq!(
            got,
            want,
            "{} and {} give different reports",
            engine.name(),
            first.name()
        );
    }
}

#[test]
fn emulate_collect_report_with_totals_computed_by_hand() {
    let scratch = story();
    let mut emulator = EmulateProcess::start(&scratch.arg("flows.csv"));
    let mut per_engine = Vec::new();
    for engine in engines() {
        let store = engine.fresh();
        let db = store.target();
        let name = engine.name();

        let output = collect(&scratch, &emulator.url, db, &[]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        assert!(stdout(&output).is_empty(), "collect writes no data");
        let err = stderr(&output);
        assert!(
            err.contains(
                "window 2026-11-01T00:00:00Z..2026-11-01T03:00:00Z: ips 3, requests 1, \
                 bytes sent 5600 received 500, records 4, anomalies 1"
            ),
            "{name}: {err}"
        );
        assert!(
            err.contains(
                "window 2026-11-01T03:00:00Z..2026-11-01T06:00:00Z: ips 3, requests 1, \
                 bytes sent 0 received 105, records 3, anomalies 0"
            ),
            "{name}: {err}"
        );
        assert!(
            err.contains(
                "collected 2 window(s) of zone zone-1 up to 2026-11-01T06:00:00Z: 7 record(s), \
                 bytes sent 5600 received 605, 2 request(s), 1 anomaly(ies)"
            ),
            "{name}: {err}"
        );
        assert!(
            err.contains("WARN") && err.contains("release-of-free-ip: event 7"),
            "{name}: {err}"
        );

        assert_eq!(
            report(db, &["--by", "account", "--format", "json"]),
            REPORT_BY_ACCOUNT,
            "{name}"
        );
        assert_eq!(
            report(db, &["--by", "ip", "--format", "csv"]),
            REPORT_BY_IP,
            "{name}"
        );
        let by_ip_json = report(db, &["--by", "ip", "--format", "json"]);
        assert!(by_ip_json.contains(
            r#"{"zone":"zone-1","account":"acct-b","ip":"2001:db8::7","start":"2026-11-01T01:00:00Z","end":"2026-11-01T03:00:00Z","bytes_sent":600,"bytes_received":0}"#
        ), "{name}: {by_ip_json}");
        assert_eq!(
            report(db, &["--by", "account", "--format", "table"]),
            "\
zone    account  bytes_sent  bytes_received
zone-1  acct-a         1000             505
zone-1  acct-b         4600             100
TOTAL                  5600             605
",
            "{name}"
        );
        assert_eq!(checkpoint(db, "zone-1").as_deref(), Some(UNTIL), "{name}");

        // The stray release is stored with the window it was found in.
        assert_eq!(
            report(db, &["--by", "anomaly", "--format", "csv"]),
            ANOMALIES,
            "{name}"
        );
        per_engine.push((engine, (every_report(db), Contents::of(db).without_clock())));
    }
    assert_same_on_every_engine(&per_engine);

    // SIGTERM ends the emulator cleanly.
    #[cfg(unix)]
    {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &emulator.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = emulator.child.wait().unwrap();
        assert!(status.success(), "emulate exited with {status}");
    }
}

#[test]
fn a_second_collect_adds_nothing() {
    let scratch = story();
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    for engine in engines() {
        let store = engine.fresh();
        let db = store.target();
        let name = engine.name();
        let first = collect(&scratch, &url, db, &[]);
        assert!(first.status.success(), "{name}: {}", stderr(&first));
        let before = Contents::of(db);

        let again = collect(&scratch, &url, db, &[]);
        assert!(again.status.success(), "{name}: {}", stderr(&again));
        let err = stderr(&again);
        assert!(
            err.contains(
                "zone zone-1 is caught up: checkpoint 2026-11-01T06:00:00Z; nothing to collect"
            ),
            "{name}: {err}"
        );
        assert!(
            err.contains("--from 2026-11-01T00:00:00Z is ignored"),
            "{name}: {err}"
        );
        assert_same(&Contents::of(db), &before, name);
        assert_eq!(
            report(db, &["--by", "account", "--format", "json"]),
            REPORT_BY_ACCOUNT
        );

        // Without --from, the stored checkpoint is where collection resumes.
        let events = scratch.arg("events.jsonl");
        let resumed = run(&[
            "collect",
            "--monitor",
            &url,
            "--events",
            &events,
            "--db",
            db,
            "--zone",
            "zone-1",
            "--exclude-account",
            "1",
            "--until",
            "2026-11-01T05:00:00Z",
        ]);
        assert!(resumed.status.success(), "{name}: {}", stderr(&resumed));
        assert!(
            stderr(&resumed).contains("caught up"),
            "{name}: {}",
            stderr(&resumed)
        );
        assert_same(&Contents::of(db), &before, name);
    }
}

#[test]
fn a_failed_window_stores_nothing_and_a_later_run_completes_it() {
    let scratch = story();
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    let mut per_engine = Vec::new();
    for engine in engines() {
        let store = engine.fresh();
        let db = store.target();
        let name = engine.name();

        // The first window goes through.
        let first = collect(&scratch, &url, db, &["--until", "2026-11-01T03:00:00Z"]);
        assert!(first.status.success(), "{name}: {}", stderr(&first));
        assert_eq!(
            checkpoint(db, "zone-1").as_deref(),
            Some("2026-11-01T03:00:00Z")
        );
        let before = Contents::of(db);

        // 503 beyond the one retry: the second window fails and stores nothing.
        emulator
            .faults()
            .set(Fault::SERVICE_UNAVAILABLE, Times::Always)
            .unwrap();
        let served = emulator.requests_served();
        let failed = collect(&scratch, &url, db, &[]);
        assert_eq!(failed.status.code(), Some(1), "{name}: {}", stderr(&failed));
        assert_eq!(
            emulator.requests_served(),
            served + 2,
            "one attempt and one retry"
        );
        let err = stderr(&failed);
        let last = err.lines().last().unwrap();
        assert!(
            last.starts_with(
                "error: window 2026-11-01T03:00:00Z..2026-11-01T06:00:00Z of zone zone-1 \
                 failed and stored nothing"
            ) && last.contains("http status 503 after 2 attempt(s)"),
            "{name}: {err}"
        );
        assert_eq!(err.matches("error:").count(), 1, "{err}");
        assert_same(&Contents::of(db), &before, name);

        // Answers that cannot be trusted fail the window the same way.
        for fault in [
            Fault::TruncateBeforeSentinel,
            Fault::GarbageLine,
            Fault::HtmlErrorPage,
            Fault::EmptyBody,
            Fault::DropMidBody,
        ] {
            emulator.faults().replace(fault, Times::Always).unwrap();
            let failed = collect(&scratch, &url, db, &["--retries", "0"]);
            assert_eq!(
                failed.status.code(),
                Some(1),
                "{name}: {fault:?}: {}",
                stderr(&failed)
            );
            assert!(
                stderr(&failed).contains("failed and stored nothing"),
                "{fault:?}"
            );
            assert_same(&Contents::of(db), &before, &format!("{name}: {fault:?}"));
        }

        // Once the server behaves, collect resumes and completes the span.
        emulator.faults().clear();
        let resumed = collect(&scratch, &url, db, &[]);
        assert!(resumed.status.success(), "{name}: {}", stderr(&resumed));
        assert!(
            stderr(&resumed)
                .contains("collected 1 window(s) of zone zone-1 up to 2026-11-01T06:00:00Z"),
            "{name}: {}",
            stderr(&resumed)
        );

        // Exactly what a fault-free run writes into a fresh store.
        let fresh = engine.fresh();
        let clean = collect(&scratch, &url, fresh.target(), &[]);
        assert!(clean.status.success(), "{name}: {}", stderr(&clean));
        let contents = Contents::of(db).without_clock();
        assert_same(
            &contents,
            &Contents::of(fresh.target()).without_clock(),
            name,
        );
        assert_eq!(contents.records, REPORT_BY_IP, "{name}");
        per_engine.push((engine, (every_report(db), contents)));
    }
    assert_same_on_every_engine(&per_engine);
}

#[test]
fn bad_input_files_give_one_line_naming_the_line() {
    let scratch = story();
    let bad_events = scratch.path("bad-events.jsonl");
    let mut lines: Vec<&str> = EVENTS.lines().collect();
    lines[1] = r#"{"id":"one","type":"NET.IPASSIGN","at":"2026-10-31T22:00:00Z","zone":"zone-1","account":"acct-a","ip":"203.0.113.10"}"#;
    std::fs::write(&bad_events, lines.join("\n")).unwrap();
    let db = scratch.path("usage.db");
    let output = run(&[
        "collect",
        "--monitor",
        "http://127.0.0.1:9",
        "--events",
        bad_events.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--zone",
        "zone-1",
        "--from",
        FROM,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: events file ") && err.contains("line 2: field \"id\""),
        "{err}"
    );
    assert!(
        !db.exists(),
        "a bad events file must not create the database"
    );

    // An existing database is left as it was.
    let emulator = emulator_in_process();
    let monitor = emulator.url().to_string();
    let monitor = monitor.as_str();
    let good = collect(
        &scratch,
        monitor,
        db.to_str().unwrap(),
        &["--until", "2026-11-01T01:00:00Z"],
    );
    assert!(good.status.success(), "{}", stderr(&good));
    let before = Contents::of(db.to_str().unwrap());
    assert_eq!(
        before.records.lines().count(),
        2,
        "one record stored: {before:?}"
    );
    let output = run(&[
        "collect",
        "--monitor",
        monitor,
        "--events",
        bad_events.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--zone",
        "zone-1",
        "--from",
        FROM,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert_same(&Contents::of(db.to_str().unwrap()), &before, "bad events");

    // A missing events file.
    let output = run(&[
        "plan",
        "--events",
        scratch.path("none.jsonl").to_str().unwrap(),
        "--zone",
        "z",
        "--from",
        FROM,
        "--until",
        UNTIL,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: cannot open events file") && err.contains("none.jsonl"),
        "{err}"
    );

    // A bad flows file: emulate serves nothing.
    let bad_flows = scratch.path("bad-flows.csv");
    let flows = FLOWS.replacen(",1000\n", ",-5\n", 1);
    std::fs::write(&bad_flows, flows).unwrap();
    let output = run(&[
        "emulate",
        "--flows",
        bad_flows.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: flows file ")
            && err.contains("line 3: field \"bytes\"")
            && err.contains("-5"),
        "{err}"
    );
    assert!(stdout(&output).is_empty());

    // Flows whose byte total passes 2^64 - 1 (each one fits): named by the
    // line where it does.
    let huge = format!(
        "{FLOWS}2026-11-01T00:10:00Z,203.0.113.10,198.51.100.1,,EXTERNAL,{}\n\n\
         2026-11-01T00:11:00Z,203.0.113.10,198.51.100.1,,EXTERNAL,{}\n",
        u64::MAX / 2,
        u64::MAX / 2 + 2,
    );
    std::fs::write(&bad_flows, &huge).unwrap();
    let output = run(&[
        "emulate",
        "--flows",
        bad_flows.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    let line = huge.lines().count();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("line {line}: field \"bytes\"")),
        "{err}"
    );
}

#[test]
fn collect_without_checkpoint_or_from_says_so() {
    let scratch = story();
    let db = scratch.path("usage.db");
    let events = scratch.arg("events.jsonl");
    let output = run(&[
        "collect",
        "--monitor",
        "http://127.0.0.1:9",
        "--events",
        &events,
        "--db",
        db.to_str().unwrap(),
        "--zone",
        "zone-1",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: no checkpoint stored for zone zone-1 and no --from given"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!db.exists());
}

#[test]
fn plan_prints_the_exact_scripts_without_network() {
    let scratch = story();
    // A port that listens but is never served: any connection would queue.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let monitor = format!("http://{}", listener.local_addr().unwrap());
    let output = run(&[
        "plan",
        "--events",
        &scratch.arg("events.jsonl"),
        "--zone",
        "zone-1",
        "--from",
        FROM,
        "--until",
        UNTIL,
        "--max-window",
        "3h",
        "--exclude-account",
        "1",
        "--monitor",
        &monitor,
        "--server-utc-offset",
        "-08:00",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let url = format!("POST {monitor}/inmsf/Query");
    assert!(text.contains(&url), "{text}");
    assert!(text.contains("Query.topN"), "{text}");
    for ip in ["203.0.113.10", "2001:db8::7", "198.51.100.20"] {
        assert!(text.contains(ip), "{ip} missing from {text}");
    }
    assert!(
        !text.contains("203.0.113.12"),
        "excluded account planned: {text}"
    );
    assert!(
        text.contains(
            "window 2026-11-01T00:00:00Z..2026-11-01T03:00:00Z: 4 piece(s), 4 group(s), 3 ip(s), 1 anomaly(ies), 1 request(s)"
        ),
        "{text}"
    );
    assert!(
        text.contains("  anomaly release-of-free-ip: event 7"),
        "{text}"
    );
    // 00:00 UTC is 16:00 the day before for a server at -08:00.
    assert!(text.contains("20261031 16:00:00"), "{text}");

    // The scripts are exactly those the client builds for the plan.
    let events = usage_model::read_events(EVENTS.as_bytes()).unwrap();
    let ledger = OwnershipLedger::from_events(
        LedgerOptions::new().exclude_account(AccountId::new("1").unwrap()),
        events,
    );
    let config = MonitorConfig::builder(&monitor)
        .server_utc_offset(time::macros::offset!(-08:00))
        .build()
        .unwrap();
    let zone = ZoneId::new("zone-1").unwrap();
    let windows = Schedule::new()
        .max_window(Duration::hours(3))
        .windows_between(
            time::macros::datetime!(2026-11-01 00:00 UTC),
            time::macros::datetime!(2026-11-01 06:00 UTC),
        )
        .unwrap()
        .collect::<Vec<_>>();
    assert_eq!(windows.len(), 2);
    for window in windows {
        let plan = QueryPlan::new(&ledger, &zone, window, usage_model::Grid::HOURLY).unwrap();
        let requests = plan_requests(&config, plan.queries()).unwrap();
        assert_eq!(requests.len(), 1);
        let script = requests[0].script();
        assert!(
            text.contains(script),
            "missing script:\n{script}\nin:\n{text}"
        );
    }

    // Nothing connected to the monitor.
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "plan connected to the monitor: {accepted:?}"
    );
}

#[test]
fn demo_runs_and_checks_conservation() {
    let output = run(&["demo", "--ips", "12", "--days", "1", "--accounts", "3"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("demo, seed 1: 12 addresses"), "{text}");
    assert!(text.contains("zone    account"), "{text}");
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("conservation check passed: billed ")
            && last.contains("(12 ips, 1 windows, 1 requests)"),
        "{text}"
    );
    // The same seed gives the same bill.
    let again = run(&["demo", "--ips", "12", "--days", "1", "--accounts", "3"]);
    let table = |text: &str| -> String {
        text.lines()
            .skip_while(|l| !l.starts_with("zone "))
            .take_while(|l| !l.is_empty())
            .collect()
    };
    assert_eq!(table(&stdout(&again)), table(&text));
}

/// The number after `prefix` in `line`, e.g. `sent 12 datagrams` → 12.
fn number_after(line: &str, prefix: &str) -> u64 {
    let rest = &line[line
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in {line}"))
        + prefix.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{prefix:?} in {line}: {e}"))
}

#[test]
fn demo_over_sflow_aggregates_every_datagram_and_checks_conservation() {
    let output = run(&[
        "demo",
        "--sflow",
        "--ips",
        "12",
        "--accounts",
        "3",
        "--hours",
        "3",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("demo --sflow, seed 1: 12 addresses"),
        "{text}"
    );
    let sflow = text
        .lines()
        .find(|l| l.starts_with("sflow: sent "))
        .unwrap_or_else(|| panic!("{text}"));
    // Datagrams, flow samples and bytes: sent, then aggregated.
    let (sent, aggregated) = sflow.split_once("; aggregated ").unwrap();
    let sent = [
        number_after(sent, "sent "),
        number_after(sent, "datagrams ("),
        number_after(sent, "sampling rate 1, "),
    ];
    let aggregated = [
        number_after(aggregated, ""),
        number_after(aggregated, "datagrams ("),
        number_after(aggregated, "samples, "),
    ];
    assert!(sent.iter().all(|&n| n > 0), "{sflow}");
    assert_eq!(aggregated, sent, "{sflow}");
    assert!(sflow.ends_with(", 0 malformed, none lost"), "{sflow}");
    assert!(
        text.contains("per address, the emulator holds exactly the bytes sent (12 addresses"),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("conservation check passed: billed "),
        "{text}"
    );
    let billed = number_after(last, "billed ") + number_after(last, "bytes sent and ");
    assert!(billed > 0, "{last}");
}

#[test]
fn unknown_emulate_flags_and_faults_are_clap_errors() {
    let output = run(&["emulate", "--flows", "f.csv", "--fault", "teapot"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("'teapot'"), "{}", stderr(&output));
    let output = run(&[
        "plan",
        "--events",
        "e",
        "--zone",
        "z",
        "--from",
        "yesterday",
        "--until",
        UNTIL,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("RFC 3339"), "{}", stderr(&output));
    let output = run(&["demo", "--verbose"]);
    assert_eq!(output.status.code(), Some(2));
}
