//! The `traffic-usage` binary driven as a user or script would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use rusqlite::{Connection, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use usage_model::{AccountId, RecordId, ZoneId};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_traffic-usage"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

const COLLECT: [&str; 9] = [
    "collect",
    "--monitor",
    "http://127.0.0.1:9",
    "--events",
    "events.jsonl",
    "--db",
    "usage.db",
    "--zone",
    "zone-1",
];

/// The schema documented for the store (version 1).
const SCHEMA: &str = "
CREATE TABLE usage_records (
    id TEXT PRIMARY KEY,
    zone TEXT NOT NULL,
    account TEXT NOT NULL,
    ip TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT NOT NULL,
    bytes_sent INTEGER NOT NULL CHECK (bytes_sent >= 0),
    bytes_received INTEGER NOT NULL CHECK (bytes_received >= 0)
);
CREATE TABLE checkpoints (zone TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE anomalies (
    id INTEGER PRIMARY KEY,
    zone TEXT NOT NULL, window_start TEXT NOT NULL, window_end TEXT NOT NULL,
    kind TEXT NOT NULL, event_id INTEGER NOT NULL, other_event_id INTEGER,
    detail TEXT NOT NULL,
    UNIQUE (zone, window_start, kind, event_id)
);
CREATE TABLE windows (
    zone TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL,
    ips INTEGER NOT NULL, requests INTEGER NOT NULL,
    bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL,
    records INTEGER NOT NULL, anomalies INTEGER NOT NULL,
    collected_at TEXT NOT NULL,
    PRIMARY KEY (zone, start)
);
PRAGMA user_version = 1;
";

/// A database holding these records: (zone, account, ip, start, end, sent, received).
fn prefilled_db(path: &Path, records: &[(&str, &str, &str, &str, &str, i64, i64)]) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    for &(zone, account, ip, start, end, sent, received) in records {
        let id = RecordId::of(
            &ZoneId::new(zone).unwrap(),
            &AccountId::new(account).unwrap(),
            ip.parse().unwrap(),
            OffsetDateTime::parse(start, &Rfc3339).unwrap(),
            OffsetDateTime::parse(end, &Rfc3339).unwrap(),
        );
        conn.execute(
            "INSERT INTO usage_records VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id.to_string(),
                zone,
                account,
                ip,
                start,
                end,
                sent,
                received
            ],
        )
        .unwrap();
    }
}

const RECORDS: [(&str, &str, &str, &str, &str, i64, i64); 5] = [
    (
        "zone-1",
        "acct-42",
        "203.0.113.7",
        "2026-11-01T00:00:00Z",
        "2026-11-01T10:00:00Z",
        2_000,
        700,
    ),
    (
        "zone-1",
        "acct-7",
        "203.0.113.7",
        "2026-11-01T10:00:00Z",
        "2026-11-02T03:00:00Z",
        0,
        40,
    ),
    (
        "zone-1",
        "acct-42",
        "2001:db8::1",
        "2026-11-01T22:00:00Z",
        "2026-11-02T02:00:00Z",
        5,
        6,
    ),
    (
        "zone-1",
        "acct-42",
        "203.0.113.7",
        "2026-11-02T05:00:00Z",
        "2026-11-02T06:00:00Z",
        100,
        0,
    ),
    (
        "zone-2",
        "acct-7",
        "198.51.100.1",
        "2026-11-01T00:00:00Z",
        "2026-11-01T01:00:00Z",
        9,
        9,
    ),
];

#[test]
fn version_and_help() {
    let version = run(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        stdout(&version),
        format!("traffic-usage {}\n", env!("CARGO_PKG_VERSION"))
    );

    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = stdout(&help);
    for command in ["demo", "emulate", "collect", "plan", "report"] {
        assert!(text.contains(command), "{command} missing from:\n{text}");
        let help = run(&[command, "--help"]);
        assert!(help.status.success(), "{command} --help");
        assert!(
            stdout(&help).contains("Usage: traffic-usage"),
            "{command} --help"
        );
    }
    let collect = stdout(&run(&["collect", "--help"]));
    for flag in [
        "--monitor <URL>",
        "--events <FILE>",
        "--db <FILE>",
        "--zone <ZONE>",
        "--from <T>",
        "--until <T>",
        "--lag <DUR>",
        "--granularity <G>",
        "--max-window <DUR>",
        "--include-zones <Z,..>",
        "--exclude-zones <Z,..>",
        "--server-utc-offset <±HH:MM>",
        "--exclude-account <ID[,ID..]>",
        "[default: 2h]",
        "[default: 3600]",
        "[default: 1d]",
        "[default: EXTERNAL]",
    ] {
        assert!(collect.contains(flag), "{flag} missing from:\n{collect}");
    }
}

#[test]
fn unknown_flag_is_a_clap_error() {
    let output = run(&["report", "--db", "x.db", "--bogus"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");
    assert!(stdout(&output).is_empty());
}

#[test]
fn bad_time_is_a_clap_error_naming_the_value() {
    let output = run(&[&COLLECT[..], &["--from", "2026-13-01"]].concat());
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("'2026-13-01'") && err.contains("--from"),
        "{err}"
    );
    assert!(err.contains("RFC 3339"), "{err}");
}

#[test]
fn bad_duration_is_a_clap_error() {
    let output = run(&[&COLLECT[..], &["--lag", "5x"]].concat());
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("'5x'") && err.contains("--lag"), "{err}");
    assert!(err.contains("unknown unit 'x'"), "{err}");
}

#[test]
fn bad_offset_and_zone_are_clap_errors() {
    let output = run(&[&COLLECT[..], &["--server-utc-offset", "+5"]].concat());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let output = run(&[&COLLECT[..], &["--include-zones", "EXTERNAL\");evil(\""]].concat());
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("is not allowed; use only [A-Za-z0-9_.-]"));
}

#[test]
fn report_by_account_as_table_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    prefilled_db(&db, &RECORDS);
    let db = db.to_str().unwrap();

    let table = run(&["report", "--db", db]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert_eq!(
        stdout(&table),
        "\
zone    account  bytes_sent  bytes_received
zone-1  acct-42        2105             706
zone-1  acct-7            0              40
zone-2  acct-7            9               9
TOTAL                  2114             755
"
    );
    assert_eq!(stderr(&table), "");

    let json = run(&["report", "--db", db, "--by", "account", "--format", "json"]);
    assert_eq!(
        stdout(&json),
        concat!(
            r#"[{"zone":"zone-1","account":"acct-42","bytes_sent":2105,"bytes_received":706},"#,
            r#"{"zone":"zone-1","account":"acct-7","bytes_sent":0,"bytes_received":40},"#,
            r#"{"zone":"zone-2","account":"acct-7","bytes_sent":9,"bytes_received":9}]"#,
            "\n"
        )
    );

    let csv = run(&["report", "--db", db, "--format", "csv", "--zone", "zone-2"]);
    assert_eq!(
        stdout(&csv),
        "zone,account,bytes_sent,bytes_received\nzone-2,acct-7,9,9\n"
    );
}

#[test]
fn report_by_ip_and_by_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    prefilled_db(&db, &RECORDS);
    let db = db.to_str().unwrap();

    let csv = run(&[
        "report", "--db", db, "--zone", "zone-1", "--by", "ip", "--format", "csv",
    ]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    assert_eq!(
        stdout(&csv),
        "\
zone,account,ip,start,end,bytes_sent,bytes_received
zone-1,acct-42,203.0.113.7,2026-11-01T00:00:00Z,2026-11-01T10:00:00Z,2000,700
zone-1,acct-42,203.0.113.7,2026-11-02T05:00:00Z,2026-11-02T06:00:00Z,100,0
zone-1,acct-42,2001:db8::1,2026-11-01T22:00:00Z,2026-11-02T02:00:00Z,5,6
zone-1,acct-7,203.0.113.7,2026-11-01T10:00:00Z,2026-11-02T03:00:00Z,0,40
"
    );

    let json = run(&[
        "report", "--db", db, "--zone", "zone-2", "--by", "ip", "--format", "json",
    ]);
    assert_eq!(
        stdout(&json),
        concat!(
            r#"[{"zone":"zone-2","account":"acct-7","ip":"198.51.100.1","#,
            r#""start":"2026-11-01T00:00:00Z","end":"2026-11-01T01:00:00Z","#,
            r#""bytes_sent":9,"bytes_received":9}]"#,
            "\n"
        )
    );

    let day = run(&[
        "report", "--db", db, "--by", "day", "--format", "json", "--zone", "zone-1",
    ]);
    assert_eq!(
        stdout(&day),
        concat!(
            r#"[{"zone":"zone-1","account":"acct-42","day":"2026-11-01","bytes_sent":2005,"bytes_received":706},"#,
            r#"{"zone":"zone-1","account":"acct-42","day":"2026-11-02","bytes_sent":100,"bytes_received":0},"#,
            r#"{"zone":"zone-1","account":"acct-7","day":"2026-11-01","bytes_sent":0,"bytes_received":40}]"#,
            "\n"
        )
    );

    let table = run(&["report", "--db", db, "--by", "day", "--zone", "zone-1"]);
    assert_eq!(
        stdout(&table),
        "\
zone    account  day         bytes_sent  bytes_received
zone-1  acct-42  2026-11-01        2005             706
zone-1  acct-42  2026-11-02         100               0
zone-1  acct-7   2026-11-01           0              40
TOTAL                              2105             746
"
    );
}

#[test]
fn report_of_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    prefilled_db(&db, &[]);
    let db = db.to_str().unwrap();
    assert_eq!(
        stdout(&run(&["report", "--db", db, "--format", "json"])),
        "[]\n"
    );
    assert_eq!(
        stdout(&run(&[
            "report", "--db", db, "--format", "csv", "--by", "ip"
        ])),
        "zone,account,ip,start,end,bytes_sent,bytes_received\n"
    );
    let table = run(&["report", "--db", db]);
    assert!(table.status.success());
    assert_eq!(
        stdout(&table),
        "zone   account  bytes_sent  bytes_received\nTOTAL                    0               0\n"
    );
}

#[test]
fn report_errors_are_one_line_with_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let output = run(&["report", "--db", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: database ") && err.contains("missing.db"),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(stdout(&output).is_empty());
    assert!(!missing.exists(), "report created the database");

    // A row whose ip column is not an address: named by record id and column.
    let db = dir.path().join("corrupt.db");
    prefilled_db(&db, &RECORDS);
    let conn = Connection::open(&db).unwrap();
    let id: String = conn
        .query_row(
            "SELECT id FROM usage_records WHERE zone = 'zone-2'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE usage_records SET ip = 'not-an-ip' WHERE id = ?1",
        [&id],
    )
    .unwrap();
    drop(conn);
    let output = run(&["report", "--db", db.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&id) && err.contains("column ip") && err.contains("not-an-ip"),
        "{err}"
    );
    assert!(stdout(&output).is_empty());

    // A file that is not a database.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "zone,account\n".repeat(100)).unwrap();
    let output = run(&["report", "--db", text.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: cannot open database") && err.contains("notes.txt"),
        "{err}"
    );
}

#[test]
fn a_bad_rust_log_is_reported_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    prefilled_db(&db, &RECORDS);
    let output = Command::new(env!("CARGO_BIN_EXE_traffic-usage"))
        .args([
            "report",
            "--db",
            db.to_str().unwrap(),
            "--format",
            "csv",
            "--zone",
            "zone-2",
        ])
        .env("RUST_LOG", "traffic_usage=loud")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        stdout(&output),
        "zone,account,bytes_sent,bytes_received\nzone-2,acct-7,9,9\n"
    );
    assert!(
        stderr(&output).contains("ignoring RUST_LOG"),
        "{}",
        stderr(&output)
    );
}
