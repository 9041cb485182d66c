//! Hostile input: injection strings as ids and zones, hostile durations,
//! times and offsets, and a wrong password never reach a script, a store
//! or the output.

use std::collections::BTreeSet;
use std::path::Path;

use time::Duration;
use time::macros::datetime;
use traffic_sentinel_client::{MonitorConfig, plan_requests};
use traffic_sentinel_emulator::{EmulatorOptions, FlowHistory, answer_script};
use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan, Schedule};
use usage_model::{AccountId, ZoneId, write_events};

use super::{ACCOUNTS, DAY_ONE_END, FROM, FROM_AT, Setup, ZONE, events_for, flows};
use crate::support::{assert_success, binary, emulator_with, engines, monitor, report, text};

/// Strings that would change a script's meaning if spliced into it.
const INJECTIONS: [&str; 8] = [
    "EXTERNAL\"); println(\"x",
    "a,b",
    "EXTERNAL & ipsource = 1.2.3.4",
    "EXTERNAL\"",
    "quote\"quote",
    "back\\slash",
    "ZÖNE☃",
    "x'); q.run(function(){}); //",
];

/// Injection strings as account ids and zone ids go into events, never into
/// a script: every script holds only addresses, validated zone names,
/// times and numbers, and is accepted by the emulator's parser.
#[test]
fn account_and_zone_ids_never_reach_a_script() {
    // Control characters are not ids at all.
    assert!(AccountId::new("acct\n\");println(\"x").is_err());
    assert!(ZoneId::new("zone\r1").is_err());

    let config = MonitorConfig::builder("http://127.0.0.1:9")
        .include_zones(["EXTERNAL", "PEERING"])
        .exclude_zones(["INTERNAL"])
        .build()
        .unwrap();
    let history = FlowHistory::new(usage_model::Grid::MINUTELY, flows()).unwrap();
    for zone_name in INJECTIONS {
        let events = events_for(zone_name, &INJECTIONS);
        let zone = ZoneId::new(zone_name).unwrap();
        let ledger = OwnershipLedger::from_events(LedgerOptions::new(), events);
        let windows = Schedule::new()
            .max_window(Duration::hours(12))
            .windows_between(FROM_AT, datetime!(2026-11-03 00:00 UTC))
            .unwrap();
        let mut scripts = 0;
        for window in windows {
            let plan = QueryPlan::new(&ledger, &zone, window, usage_model::Grid::HOURLY).unwrap();
            for request in plan_requests(&config, plan.queries()).unwrap() {
                let script = request.script();
                scripts += 1;
                for hostile in INJECTIONS {
                    assert!(
                        !script.contains(hostile),
                        "{hostile:?} reached a script:\n{script}"
                    );
                }
                assert!(
                    script
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || " \n\".,:;=&!()[]{}+_-".contains(c)),
                    "unexpected character in:\n{script}"
                );
                // Well formed: the server understands it.
                answer_script(&history, script, time::UtcOffset::UTC).unwrap();
            }
        }
        assert!(scripts >= 4, "{zone_name:?}: {scripts} scripts");
    }
}

#[test]
fn injected_ids_are_billed_as_plain_names_end_to_end() {
    let zone = INJECTIONS[0];
    let setup = Setup::with_events(&events_for(zone, &INJECTIONS));
    for engine in engines() {
        let name = engine.name();
        let store = engine.fresh();
        let output = setup
            .collect_command_for(zone, store.target(), DAY_ONE_END, &["--max-window", "12h"])
            .output()
            .unwrap();
        assert_success(&output);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&report(
            store.target(),
            &["--by", "account", "--format", "json"],
        ))
        .unwrap();
        let zones: BTreeSet<&str> = rows.iter().map(|r| r["zone"].as_str().unwrap()).collect();
        let accounts: BTreeSet<&str> = rows
            .iter()
            .map(|r| r["account"].as_str().unwrap())
            .collect();
        assert_eq!(zones, BTreeSet::from([zone]), "{name}");
        assert!(accounts.len() >= 3, "{name}: {accounts:?}");
        assert!(
            accounts.iter().all(|a| INJECTIONS.contains(a)),
            "{name}: {accounts:?}"
        );
    }
}

#[test]
fn hostile_zone_names_on_the_command_line_are_refused() {
    for flag in ["--include-zones", "--exclude-zones"] {
        for hostile in INJECTIONS {
            let output = binary()
                .args(["plan", "--events", "events.jsonl", "--zone", ZONE])
                .args(["--from", FROM, "--until", DAY_ONE_END])
                .arg(format!("{flag}={hostile}"))
                .output()
                .unwrap();
            let stderr = text(&output.stderr);
            if hostile == "a,b" {
                // A comma separates two valid zone names: not an injection.
                assert!(
                    !stderr.contains("invalid zone"),
                    "{flag} {hostile:?}: {stderr}"
                );
                continue;
            }
            assert_eq!(
                output.status.code(),
                Some(2),
                "{flag} {hostile:?}: {stderr}"
            );
            assert!(stderr.contains(flag), "{stderr}");
            assert!(stderr.contains("invalid zone"), "{stderr}");
            assert!(output.stdout.is_empty());
        }
    }
}

/// Hostile durations, times and offsets on the command line: exit status 2
/// and a message naming the flag and the value.
#[test]
fn hostile_durations_times_and_offsets_are_refused_naming_the_value() {
    let cases: [(&str, &str); 20] = [
        ("--lag", ""),
        ("--lag", "5"),
        ("--lag", "-5m"),
        ("--lag", "1h1h"),
        ("--lag", "99999999999999999999s"),
        ("--lag", "1ħ"),
        ("--lag", "1h 30m"),
        ("--lag", "0x"),
        ("--max-window", "١h"),
        ("--max-window", "1d\u{202e}"),
        ("--max-window", "9223372036854775807w"),
        ("--timeout", "1e3s"),
        ("--from", "2026-11-01T25:00:00Z"),
        ("--from", "2026-11-01T10:00:00"),
        ("--from", "yesterday"),
        ("--until", "99999-01-01T00:00:00Z"),
        ("--until", "2026-11-01T10:00:00+99:00"),
        ("--until", "2026-02-30T00:00:00Z"),
        ("--server-utc-offset", "+24:00"),
        ("--server-utc-offset", "+5:30\u{0301}"),
    ];
    for (flag, value) in cases {
        let output = binary()
            .args([
                "collect",
                "--monitor",
                "http://127.0.0.1:9",
                "--events",
                "e.jsonl",
            ])
            .args(["--db", "never-created.db", "--zone", ZONE])
            .arg(format!("{flag}={value}"))
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag} {value:?}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value:?}: {stderr}");
        assert!(
            stderr.contains(&format!("'{value}'")),
            "{flag} {value:?}: {stderr}"
        );
        assert!(output.stdout.is_empty());
        assert!(!Path::new("never-created.db").exists());
    }
}

#[test]
fn a_wrong_password_never_appears_in_output() {
    const PASSWORD: &str = "s3cr3t-Pa55-never-shown";
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    write_events(
        std::fs::File::create(&events).unwrap(),
        &events_for(ZONE, &ACCOUNTS),
    )
    .unwrap();
    let emulator = emulator_with(
        flows(),
        EmulatorOptions::new().basic_auth("billing", "the-right-one"),
    );
    let monitor = monitor(&emulator);
    let db = dir.path().join("usage.db");
    let run = |password: &str, log: &str| {
        binary()
            .args(["collect", "--monitor", &monitor])
            .arg("--events")
            .arg(&events)
            .arg("--db")
            .arg(&db)
            .args(["--zone", ZONE, "--from", FROM, "--until", DAY_ONE_END])
            .args([
                "--user",
                "billing",
                "--password-env",
                "TS_PASSWORD",
                "--retries",
                "0",
            ])
            .env("TS_PASSWORD", password)
            .env("RUST_LOG", log)
            .output()
            .unwrap()
    };
    for log in ["", "trace"] {
        let output = run(PASSWORD, log);
        assert_eq!(output.status.code(), Some(1));
        let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(all.contains("401"), "{all}");
        assert!(!all.contains(PASSWORD), "the password leaked:\n{all}");
        assert!(!all.contains("s3cr3t"), "the password leaked:\n{all}");
    }
    let output = run("the-right-one", "trace");
    assert_success(&output);
    assert!(!text(&output.stderr).contains("the-right-one"));

    // Nor does a store's password, in the URL or in --db-password-env.
    for engine in engines().into_iter().filter(|e| e.is_server()) {
        let store = engine.fresh();
        let with_password = store.target().replacen("@", &format!(":{PASSWORD}@"), 1);
        for (db, env) in [
            (with_password.as_str(), None),
            (store.target(), Some(PASSWORD)),
        ] {
            for log in ["", "trace"] {
                let mut command = binary();
                command.args(["status", "--db", db]).env("RUST_LOG", log);
                if let Some(password) = env {
                    command
                        .args(["--db-password-env", "DB_PASSWORD"])
                        .env("DB_PASSWORD", password);
                }
                let output = command.output().unwrap();
                let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
                assert!(!output.status.success(), "{}: {all}", engine.name());
                assert!(!all.contains("s3cr3t"), "the password leaked:\n{all}");
            }
        }
    }
}
