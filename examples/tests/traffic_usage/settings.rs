//! A zone's billing settings (DESIGN §12), on every engine: `collect` with
//! settings other than those the zone was billed with is refused, naming
//! the setting, the stored and the new value, and stores nothing; with
//! `--accept-changed-settings` it goes on with the new ones.

use std::io::Write as _;

use crate::end_to_end::{collect, emulator_in_process, story};
use crate::late_events::first_records;
use crate::support::{
    Contents, assert_refused, assert_same, assert_success, engines, monitor, report, stderr,
};

/// Each change: the flags, and the setting they change with its stored and
/// its new value (the story is billed hourly, for EXTERNAL, at UTC, without
/// account 1).
const CHANGES: [(&[&str], &str, &str, &str); 8] = [
    (
        &["--granularity", "60"],
        "granularity (--granularity)",
        "3600",
        "60",
    ),
    (
        &["--granularity", "1m"],
        "granularity (--granularity)",
        "3600",
        "60",
    ),
    (
        &["--include-zones", "EXTERNAL,DMZ"],
        "include_zones (--include-zones)",
        "EXTERNAL",
        "EXTERNAL,DMZ",
    ),
    (
        &["--exclude-zones", "INTERNAL"],
        "exclude_zones (--exclude-zones)",
        "",
        "INTERNAL",
    ),
    (
        &["--server-time-zone", "Europe/Berlin"],
        "server_time_zone (--server-time-zone or --server-utc-offset)",
        "+00:00",
        "Europe/Berlin",
    ),
    (
        &["--server-utc-offset", "+01:00"],
        "server_time_zone (--server-time-zone or --server-utc-offset)",
        "+00:00",
        "+01:00",
    ),
    (
        &["--exclude-account", "acct-x"],
        "exclude_accounts (--exclude-account)",
        "1",
        "1,acct-x",
    ),
    (
        &["--exclude-account", "acct-x,1"],
        "exclude_accounts (--exclude-account)",
        "1",
        "1,acct-x",
    ),
];

#[test]
fn changed_settings_are_refused_naming_the_setting_until_accepted() {
    let scratch = story();
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    for engine in engines() {
        let name = engine.name();
        let store = engine.fresh();
        let db = store.target();
        assert_success(&collect(&scratch, &url, db, &[]));
        let before = Contents::of(db);
        let served = emulator.requests_served();

        for (flags, setting, stored, new) in CHANGES {
            let extra = [flags, &["--until", "2026-11-01T09:00:00Z"]].concat();
            let output = collect(&scratch, &url, db, &extra);
            // An empty value (no zone, no account) reads `none`.
            let show = |v: &str| {
                if v.is_empty() {
                    "none".to_owned()
                } else {
                    format!("{v:?}")
                }
            };
            assert_refused(
                &output,
                &format!(
                    "zone zone-1 was billed with {setting} = {}, not {}",
                    show(stored),
                    show(new)
                ),
            );
            assert!(
                stderr(&output).contains("--accept-changed-settings"),
                "{name}: {}",
                stderr(&output)
            );
            assert_same(&Contents::of(db), &before, &format!("{name}: {flags:?}"));
        }
        assert_eq!(emulator.requests_served(), served, "{name}: a request");

        // Accepted, the change applies from the next window on.
        let output = collect(
            &scratch,
            &url,
            db,
            &[
                "--granularity",
                "60",
                "--accept-changed-settings",
                "--until",
                "2026-11-01T09:00:00Z",
            ],
        );
        assert_success(&output);
        assert_eq!(
            report(db, &["--by", "ip", "--format", "csv"]),
            first_records(),
            "{name}"
        );
        // From then on the zone is billed with the new setting: the old one
        // is the change now.
        let later = ["--until", "2026-11-01T12:00:00Z"];
        let output = collect(&scratch, &url, db, &later);
        assert_refused(
            &output,
            "zone zone-1 was billed with granularity (--granularity) = \"60\", not \"3600\"",
        );
        let output = collect(
            &scratch,
            &url,
            db,
            &[&["--granularity", "60"][..], &later].concat(),
        );
        assert_success(&output);
        assert!(
            stderr(&output).contains("collected 1 window(s) of zone zone-1"),
            "{name}: {}",
            stderr(&output)
        );
    }
}

/// After an accepted change of the grid, an event that changes no billed
/// holding (a stray release) must not be reported as a late event of the
/// windows billed on the old grid.
#[test]
fn an_accepted_grid_change_raises_no_false_late_event() {
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    for engine in engines() {
        let name = engine.name();
        let scratch = story();
        let store = engine.fresh();
        let db = store.target();
        assert_success(&collect(&scratch, &url, db, &[]));
        let minutes = ["--granularity", "60"];
        assert_success(&collect(
            &scratch,
            &url,
            db,
            &[
                &minutes[..],
                &[
                    "--accept-changed-settings",
                    "--until",
                    "2026-11-01T09:00:00Z",
                ],
            ]
            .concat(),
        ));
        let mut events = std::fs::OpenOptions::new()
            .append(true)
            .open(scratch.path("events.jsonl"))
            .unwrap();
        writeln!(
            events,
            r#"{{"id":90,"type":"NET.IPRELEASE","at":"2026-11-01T07:00:00Z","zone":"zone-1","account":"acct-z","ip":"203.0.113.99"}}"#
        )
        .unwrap();
        let output = collect(
            &scratch,
            &url,
            db,
            &[&minutes[..], &["--until", "2026-11-01T12:00:00Z"]].concat(),
        );
        assert_success(&output);
        assert!(
            !stderr(&output).contains("late-event"),
            "{name}: {}",
            stderr(&output)
        );
        assert!(
            !report(db, &["--by", "anomaly", "--format", "csv"]).contains("late-event"),
            "{name}"
        );
    }
}

/// Another spelling of the same settings is no change (DESIGN §12): the
/// story is billed at `+00:00` for `EXTERNAL`; `UTC`, `Etc/UTC` and a zone
/// list with a repeat bill the same and are not refused, and the stored
/// spelling stays.
#[test]
fn another_spelling_of_the_same_settings_is_no_change() {
    let scratch = story();
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    let store = crate::support::Engine::Sqlite.fresh();
    let db = store.target();
    assert_success(&collect(&scratch, &url, db, &[]));
    for flags in [
        &["--server-time-zone", "UTC"][..],
        &["--server-time-zone", "Etc/UTC"],
        &["--include-zones", "EXTERNAL,EXTERNAL"],
        &["--server-utc-offset", "-00:00"],
    ] {
        let output = collect(&scratch, &url, db, flags);
        assert_success(&output);
        assert!(
            stderr(&output).contains("caught up"),
            "{flags:?}: {}",
            stderr(&output)
        );
    }
    // A real change still is one.
    let output = collect(&scratch, &url, db, &["--server-time-zone", "Europe/London"]);
    assert_refused(&output, "server_time_zone");
    assert!(
        stderr(&output).contains("\"+00:00\""),
        "{}",
        stderr(&output)
    );
}
