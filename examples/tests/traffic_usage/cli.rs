//! The `traffic-usage` binary driven as a user or script would: help,
//! flag errors, and `report` and `status` over stores billed by `collect`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use usage_model::{AccountId, RecordId, ZoneId};

use crate::support::{
    Engine, Scratch, TestStore, assert_success, binary, checkpoint, emulator_over_csv, engines,
    event, monitor, report, run, stderr, stdout,
};

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

/// Two zones, an address handed from acct-42 to acct-7 and back, IPv6, and
/// holdings across the UTC midnight (windows are cut there, so those are
/// two records each).
fn billed_events() -> String {
    [
        event(
            1,
            "ASSIGN",
            "2026-11-01T00:00:00Z",
            "zone-1",
            "acct-42",
            "203.0.113.7",
        ),
        event(
            2,
            "RELEASE",
            "2026-11-01T10:00:00Z",
            "zone-1",
            "acct-42",
            "203.0.113.7",
        ),
        event(
            3,
            "ASSIGN",
            "2026-11-01T10:00:00Z",
            "zone-1",
            "acct-7",
            "203.0.113.7",
        ),
        event(
            4,
            "RELEASE",
            "2026-11-02T03:00:00Z",
            "zone-1",
            "acct-7",
            "203.0.113.7",
        ),
        event(
            5,
            "ASSIGN",
            "2026-11-01T22:00:00Z",
            "zone-1",
            "acct-42",
            "2001:db8::1",
        ),
        event(
            6,
            "RELEASE",
            "2026-11-02T02:00:00Z",
            "zone-1",
            "acct-42",
            "2001:db8::1",
        ),
        event(
            7,
            "ASSIGN",
            "2026-11-02T05:00:00Z",
            "zone-1",
            "acct-42",
            "203.0.113.7",
        ),
        event(
            8,
            "RELEASE",
            "2026-11-02T06:00:00Z",
            "zone-1",
            "acct-42",
            "203.0.113.7",
        ),
        event(
            9,
            "ASSIGN",
            "2026-11-01T00:00:00Z",
            "zone-2",
            "acct-7",
            "198.51.100.1",
        ),
        event(
            10,
            "RELEASE",
            "2026-11-01T01:00:00Z",
            "zone-2",
            "acct-7",
            "198.51.100.1",
        ),
    ]
    .join("\n")
        + "\n"
}

/// The traffic of [`billed_events`]; who pays is in [`BY_IP`].
const BILLED_FLOWS: &str = "\
time,ipsource,ipdestination,sourcezone,destinationzone,bytes
2026-11-01T03:00:00Z,203.0.113.7,192.0.2.1,CLOUD,EXTERNAL,2000
2026-11-01T05:00:00Z,192.0.2.1,203.0.113.7,EXTERNAL,CLOUD,700
2026-11-01T15:00:00Z,192.0.2.1,203.0.113.7,EXTERNAL,CLOUD,30
2026-11-02T01:00:00Z,192.0.2.1,203.0.113.7,EXTERNAL,CLOUD,10
2026-11-01T23:00:00Z,2001:db8::1,2001:db8:ffff::1,CLOUD,EXTERNAL,5
2026-11-02T01:30:00Z,2001:db8:ffff::1,2001:db8::1,EXTERNAL,CLOUD,6
2026-11-02T05:30:00Z,203.0.113.7,192.0.2.1,CLOUD,EXTERNAL,100
2026-11-01T00:30:00Z,198.51.100.1,192.0.2.1,CLOUD,EXTERNAL,9
2026-11-01T00:40:00Z,192.0.2.1,198.51.100.1,EXTERNAL,CLOUD,9
";

/// The records of both zones, by hand: each holding clipped to the windows
/// (one per UTC day, the second ending at 06:00), with the bytes of its
/// hours.
const BY_IP: &str = "\
zone,account,ip,start,end,bytes_sent,bytes_received
zone-1,acct-42,203.0.113.7,2026-11-01T00:00:00Z,2026-11-01T10:00:00Z,2000,700
zone-1,acct-42,203.0.113.7,2026-11-02T05:00:00Z,2026-11-02T06:00:00Z,100,0
zone-1,acct-42,2001:db8::1,2026-11-01T22:00:00Z,2026-11-02T00:00:00Z,5,0
zone-1,acct-42,2001:db8::1,2026-11-02T00:00:00Z,2026-11-02T02:00:00Z,0,6
zone-1,acct-7,203.0.113.7,2026-11-01T10:00:00Z,2026-11-02T00:00:00Z,0,30
zone-1,acct-7,203.0.113.7,2026-11-02T00:00:00Z,2026-11-02T03:00:00Z,0,10
zone-2,acct-7,198.51.100.1,2026-11-01T00:00:00Z,2026-11-01T01:00:00Z,9,9
";

/// A scratch directory with the events of [`billed_events`] and a store
/// on `engine` billed by `collect` of both zones up to 2026-11-02 06:00.
fn billed_store(engine: Engine) -> (Scratch, TestStore) {
    let scratch = Scratch::new();
    let events = scratch.write("events.jsonl", &billed_events());
    let emulator = emulator_over_csv(BILLED_FLOWS);
    let monitor = monitor(&emulator);
    let store = engine.fresh();
    for zone in ["zone-1", "zone-2"] {
        let output = run(&[
            "collect",
            "--monitor",
            &monitor,
            "--events",
            &events,
            "--db",
            store.target(),
            "--zone",
            zone,
            "--from",
            "2026-11-01T00:00:00Z",
            "--until",
            "2026-11-02T06:00:00Z",
        ]);
        assert_success(&output);
    }
    assert_eq!(
        report(store.target(), &["--by", "ip", "--format", "csv"]),
        BY_IP,
        "{}",
        engine.name()
    );
    (scratch, store)
}

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
    for command in [
        "demo",
        "emulate",
        "collect",
        "plan",
        "report",
        "status",
        "sflow-import",
    ] {
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
        "--events <SOURCE>",
        "--db <TARGET>",
        "--db-password-env <VAR>",
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
        "--server-time-zone <NAME>",
        "--restate",
        "--accept-changed-settings",
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
fn missing_arguments_are_named_on_the_one_error_line() {
    let output = run(&["collect", "--events", "e.jsonl", "--db", "u.db"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("were not provided: --monitor <URL>, --zone <ZONE> (see --help)"),
        "{err}"
    );
    let output = run(&["demo", "--hours", "3"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not provided: --sflow"),
        "{}",
        stderr(&output)
    );
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
    for engine in engines() {
        let (_scratch, store) = billed_store(engine);
        let db = store.target();

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
",
            "{}",
            engine.name()
        );
        assert_eq!(stderr(&table), "");

        assert_eq!(
            report(db, &["--by", "account", "--format", "json"]),
            concat!(
                r#"[{"zone":"zone-1","account":"acct-42","bytes_sent":2105,"bytes_received":706},"#,
                r#"{"zone":"zone-1","account":"acct-7","bytes_sent":0,"bytes_received":40},"#,
                r#"{"zone":"zone-2","account":"acct-7","bytes_sent":9,"bytes_received":9}]"#,
                "\n"
            ),
            "{}",
            engine.name()
        );

        assert_eq!(
            report(db, &["--format", "csv", "--zone", "zone-2"]),
            "zone,account,bytes_sent,bytes_received\nzone-2,acct-7,9,9\n",
            "{}",
            engine.name()
        );
    }
}

#[test]
fn report_by_ip_and_by_day() {
    for engine in engines() {
        let (_scratch, store) = billed_store(engine);
        let db = store.target();
        let name = engine.name();

        let csv = report(db, &["--zone", "zone-1", "--by", "ip", "--format", "csv"]);
        let zone_1: String = BY_IP
            .lines()
            .filter(|line| !line.starts_with("zone-2"))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(csv, zone_1, "{name}");

        assert_eq!(
            report(db, &["--zone", "zone-2", "--by", "ip", "--format", "json"]),
            concat!(
                r#"[{"zone":"zone-2","account":"acct-7","ip":"198.51.100.1","#,
                r#""start":"2026-11-01T00:00:00Z","end":"2026-11-01T01:00:00Z","#,
                r#""bytes_sent":9,"bytes_received":9}]"#,
                "\n"
            ),
            "{name}"
        );

        // Each record on the UTC day it starts on: acct-42 sends 2000 + 5 on
        // the first day and 100 on the second, and receives 700, then 6.
        assert_eq!(
            report(db, &["--by", "day", "--format", "json", "--zone", "zone-1"]),
            concat!(
                r#"[{"zone":"zone-1","account":"acct-42","day":"2026-11-01","bytes_sent":2005,"bytes_received":700},"#,
                r#"{"zone":"zone-1","account":"acct-42","day":"2026-11-02","bytes_sent":100,"bytes_received":6},"#,
                r#"{"zone":"zone-1","account":"acct-7","day":"2026-11-01","bytes_sent":0,"bytes_received":30},"#,
                r#"{"zone":"zone-1","account":"acct-7","day":"2026-11-02","bytes_sent":0,"bytes_received":10}]"#,
                "\n"
            ),
            "{name}"
        );

        assert_eq!(
            report(db, &["--by", "day", "--zone", "zone-1"]),
            "\
zone    account  day         bytes_sent  bytes_received
zone-1  acct-42  2026-11-01        2005             700
zone-1  acct-42  2026-11-02         100               6
zone-1  acct-7   2026-11-01           0              30
zone-1  acct-7   2026-11-02           0              10
TOTAL                              2105             746
",
            "{name}"
        );
    }
}

#[test]
fn report_of_a_store_without_records() {
    for engine in engines() {
        let scratch = Scratch::new();
        let events = scratch.write("events.jsonl", &billed_events());
        let store = engine.fresh();
        let db = store.target();
        // Nobody holds an address in this hour: no request, no record, and
        // the checkpoint still moves.
        let output = run(&[
            "collect",
            "--monitor",
            "http://127.0.0.1:9",
            "--events",
            &events,
            "--db",
            db,
            "--zone",
            "zone-1",
            "--from",
            "2026-10-30T00:00:00Z",
            "--until",
            "2026-10-30T01:00:00Z",
        ]);
        assert_success(&output);
        let name = engine.name();
        assert_eq!(
            checkpoint(db, "zone-1").as_deref(),
            Some("2026-10-30T01:00:00Z"),
            "{name}"
        );
        assert_eq!(report(db, &["--format", "json"]), "[]\n", "{name}");
        assert_eq!(
            report(db, &["--format", "csv", "--by", "ip"]),
            "zone,account,ip,start,end,bytes_sent,bytes_received\n",
            "{name}"
        );
        assert_eq!(
            report(db, &[]),
            "zone   account  bytes_sent  bytes_received\nTOTAL                    0               0\n",
            "{name}"
        );
    }
}

#[test]
fn report_errors_are_one_line() {
    let scratch = Scratch::new();
    let missing = scratch.path("missing.db");
    let output = run(&["report", "--db", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: database ") && err.contains("missing.db"),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(stdout(&output).is_empty());
    assert!(!missing.exists(), "report created the database");

    // A file that is not a database.
    let text = scratch.write("notes.txt", &"zone,account\n".repeat(100));
    let output = run(&["report", "--db", &text]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: store ")
            && err.contains("notes.txt")
            && err.contains("is not a usage store"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(stdout(&output).is_empty());
}

/// A stored record whose address column was damaged is named by its
/// record id and the column, in one line, with status 1.
#[test]
fn a_corrupt_record_is_named_by_its_id_and_column() {
    for engine in engines() {
        let (_scratch, store) = billed_store(engine);
        let changed =
            store.execute("UPDATE usage_records SET ip = 'not-an-ip' WHERE zone = 'zone-2'");
        assert_eq!(changed, 1);
        let id = RecordId::of(
            &ZoneId::new("zone-2").unwrap(),
            &AccountId::new("acct-7").unwrap(),
            "198.51.100.1".parse().unwrap(),
            OffsetDateTime::parse("2026-11-01T00:00:00Z", &Rfc3339).unwrap(),
            OffsetDateTime::parse("2026-11-01T01:00:00Z", &Rfc3339).unwrap(),
        );
        let output = run(&["report", "--db", store.target(), "--by", "ip"]);
        assert_eq!(output.status.code(), Some(1), "{}", engine.name());
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&id.to_string()) && err.contains("column ip") && err.contains("not-an-ip"),
            "{}: {err}",
            engine.name()
        );
        assert!(stdout(&output).is_empty());
    }
}

#[test]
fn a_bad_rust_log_is_reported_and_ignored() {
    let (_scratch, store) = billed_store(Engine::Sqlite);
    let output = binary()
        .args([
            "report",
            "--db",
            store.target(),
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

/// Every file of `dir` and its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

/// Every way of reading a store: each grouping in each format, and status.
fn every_read(db: &str) -> Vec<Output> {
    let mut outputs = Vec::new();
    for by in ["account", "ip", "day", "anomaly", "adjustment"] {
        for format in ["table", "json", "csv"] {
            outputs.push(run(&["report", "--db", db, "--by", by, "--format", format]));
        }
    }
    for format in ["table", "json"] {
        outputs.push(run(&["status", "--db", db, "--format", format]));
    }
    outputs
}

#[test]
fn report_and_status_change_no_byte_of_a_sqlite_store() {
    let (_scratch, store) = billed_store(Engine::Sqlite);
    let path = store.path().unwrap();
    let dir = path.parent().unwrap();
    let before = files(dir);
    assert_eq!(before.len(), 1, "{:?}", before.keys());
    for output in every_read(store.target()) {
        assert_success(&output);
        assert_eq!(files(dir), before, "{}", stderr(&output));
    }
}

#[test]
fn report_and_status_of_a_missing_file_fail_and_create_nothing() {
    let scratch = Scratch::new();
    for db in [
        scratch.path("usage.sqlite"),
        scratch.path("sub/usage.sqlite"),
    ] {
        for output in every_read(db.to_str().unwrap()) {
            assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
            let err = stderr(&output);
            assert!(err.contains("does not exist"), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(output.stdout.is_empty());
        }
        assert!(
            files(scratch.path("").as_path()).is_empty(),
            "report or status created {:?}",
            files(scratch.path("").as_path()).keys()
        );
    }
}

#[test]
fn report_and_status_create_no_schema_in_an_empty_server_database() {
    for engine in engines().into_iter().filter(|e| e.is_server()) {
        let store = engine.fresh();
        for output in every_read(store.target()) {
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{}: {err}", engine.name());
            assert!(err.contains("holds no usage schema"), "{err}");
            assert!(output.stdout.is_empty());
        }
        assert_eq!(store.table_count(), 0, "{}", engine.name());
    }
}

/// Sums past 64 bits fail before anything is written: a TOTAL line over
/// zones, and an account's sum over days (each window's bytes fit; two
/// emulators, since one holds at most 2^64 - 1 bytes). A report that fits
/// is printed whole.
#[test]
fn sums_past_64_bits_fail_before_any_output() {
    let scratch = Scratch::new();
    let near = u64::MAX - 10;
    let flows = |day: &str| {
        format!(
            "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n\
             2026-11-{day}T00:10:00Z,203.0.113.7,198.51.100.1,,EXTERNAL,{near}\n"
        )
    };
    let events = [
        event(
            1,
            "ASSIGN",
            "2026-10-31T00:00:00Z",
            "z1",
            "a",
            "203.0.113.7",
        ),
        event(
            2,
            "ASSIGN",
            "2026-10-31T00:00:00Z",
            "z2",
            "b",
            "203.0.113.7",
        ),
    ];
    scratch.write("events.jsonl", &(events.join("\n") + "\n"));
    let db = scratch.arg("usage.sqlite");
    let collect = |url: &str, zone: &str, from: &str, until: &str| {
        let events = scratch.arg("events.jsonl");
        assert_success(&run(&[
            "collect",
            "--monitor",
            url,
            "--events",
            &events,
            "--db",
            &db,
            "--zone",
            zone,
            "--from",
            from,
            "--until",
            until,
        ]));
    };
    let day_one = emulator_over_csv(&flows("01"));
    collect(
        &monitor(&day_one),
        "z1",
        "2026-11-01T00:00:00Z",
        "2026-11-02T00:00:00Z",
    );
    collect(
        &monitor(&day_one),
        "z2",
        "2026-11-01T00:00:00Z",
        "2026-11-02T00:00:00Z",
    );
    // Each account fits; the TOTAL over both does not.
    let output = run(&["report", "--db", &db]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("TOTAL"), "{}", stderr(&output));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    let json = report(&db, &["--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 2, "{json}");
    // Account a over two days passes 64 bits.
    let day_two = emulator_over_csv(&flows("02"));
    collect(
        &monitor(&day_two),
        "z1",
        "2026-11-02T00:00:00Z",
        "2026-11-03T00:00:00Z",
    );
    for format in ["json", "csv", "table"] {
        let output = run(&["report", "--db", &db, "--zone", "z1", "--format", format]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{format}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        assert!(err.contains("of zone z1, account a "), "{format}: {err}");
        assert_eq!(err.lines().count(), 1, "{format}: {err}");
        assert!(stdout(&output).is_empty(), "{format}: {}", stdout(&output));
    }
}

/// With `--monitor cloudstack` the zone lists are the registration's: the
/// flags are refused (as `run` refuses the keys), before any connection.
#[test]
fn zone_lists_with_monitor_cloudstack_are_refused() {
    let scratch = Scratch::new();
    let db = scratch.path("usage.db");
    for flags in [
        &["--include-zones", "PEERING"][..],
        &["--exclude-zones", "TRANSIT"],
        &["--include-zones", "EXTERNAL", "--exclude-zones", "TRANSIT"],
    ] {
        let mut args = vec![
            "collect",
            "--monitor",
            "cloudstack",
            // Nothing listens on port 1: a connection would fail, not refuse.
            "--events",
            "mysql://root@127.0.0.1:1/cloud",
            "--db",
            db.to_str().unwrap(),
            "--zone",
            "1",
            "--from",
            "2026-11-01T00:00:00Z",
        ];
        args.extend_from_slice(flags);
        crate::support::assert_refused(
            &run(&args),
            "--include-zones and --exclude-zones cannot be given with --monitor cloudstack",
        );
        assert!(!db.exists());
    }
}
