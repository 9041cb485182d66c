//! Regression tests of operator paths that once lost or misdirected bytes
//! while exiting 0: each bills exactly or fails loudly, through the built
//! binary. Test names say which kind of fault they cover.

use std::path::PathBuf;
use std::process::Output;

use traffic_sentinel_emulator::Emulator;

use crate::support::{
    Scratch, assert_refused, assert_success, emulator_over_csv, event, monitor, run, text,
};

/// A scratch directory with an events file and an emulator serving `flows`
/// (CSV rows without the header) on a minute grid.
struct Story {
    scratch: Scratch,
    emulator: Emulator,
}

impl Story {
    fn new(events: &[String], flows: &[&str]) -> Story {
        let scratch = Scratch::new();
        scratch.write("events.jsonl", &(events.join("\n") + "\n"));
        let csv = format!(
            "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n{}\n",
            flows.join("\n")
        );
        let emulator = emulator_over_csv(&csv);
        Story { scratch, emulator }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path(name)
    }

    fn arg(&self, name: &str) -> String {
        self.scratch.arg(name)
    }

    fn monitor(&self) -> String {
        monitor(&self.emulator)
    }

    /// `collect` of zone `zone` into `db.sqlite` with `extra` flags.
    fn collect(&self, zone: &str, extra: &[&str]) -> Output {
        let (events, db, monitor) = (
            self.arg("events.jsonl"),
            self.arg("db.sqlite"),
            self.monitor(),
        );
        let mut args = vec![
            "collect",
            "--monitor",
            &monitor,
            "--events",
            &events,
            "--db",
            &db,
            "--zone",
            zone,
        ];
        args.extend_from_slice(extra);
        run(&args)
    }

    /// `report --by BY --format csv` of `db.sqlite`.
    fn report(&self, by: &str) -> String {
        let db = self.arg("db.sqlite");
        let output = run(&["report", "--db", &db, "--by", by, "--format", "csv"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    }
}

const DAY: [&str; 4] = [
    "--from",
    "2026-11-01T00:00:00Z",
    "--until",
    "2026-11-02T00:00:00Z",
];

#[test]
fn same_instant_handover_bills_the_new_owner_whatever_the_ids() {
    let story = Story::new(
        &[
            event(
                3,
                "ASSIGN",
                "2026-11-01T08:00:00Z",
                "z1",
                "acct-o",
                "198.51.100.5",
            ),
            event(
                10,
                "ASSIGN",
                "2026-11-01T09:00:00Z",
                "z1",
                "acct-n",
                "198.51.100.5",
            ),
            event(
                11,
                "RELEASE",
                "2026-11-01T09:00:00Z",
                "z1",
                "acct-o",
                "198.51.100.5",
            ),
        ],
        &[
            "2026-11-01T08:30:00Z,198.51.100.5,192.0.2.1,,EXTERNAL,7",
            "2026-11-01T09:30:00Z,198.51.100.5,192.0.2.1,,EXTERNAL,8",
            "2026-11-01T20:30:00Z,192.0.2.1,198.51.100.5,EXTERNAL,,9",
        ],
    );
    let output = story.collect("z1", &DAY);
    assert_success(&output);
    assert!(
        !text(&output.stderr).contains("anomaly in window"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        story.report("account"),
        "zone,account,bytes_sent,bytes_received\nz1,acct-n,8,9\nz1,acct-o,7,0\n"
    );
}

#[test]
fn until_after_now_minus_lag_is_refused_and_stores_nothing() {
    let story = Story::new(
        &[event(
            1,
            "ASSIGN",
            "2026-11-01T00:00:00Z",
            "z1",
            "a",
            "192.0.2.7",
        )],
        &[],
    );
    let future = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let output = story.collect(
        "z1",
        &["--from", "2026-11-01T00:00:00Z", "--until", &future],
    );
    assert_refused(&output, "settle lag");
    assert!(!story.path("db.sqlite").exists(), "nothing stored");
}

#[test]
fn a_zone_no_event_names_is_refused_naming_the_zones_of_the_log() {
    let story = Story::new(
        &[
            event(
                1,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "ams1",
                "a",
                "192.0.2.7",
            ),
            event(
                2,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "fra1",
                "a",
                "192.0.2.8",
            ),
        ],
        &[],
    );
    let output = story.collect("ams-1", &DAY);
    assert_refused(&output, "zone ams-1 appears in no event");
    assert!(
        text(&output.stderr).contains("ams1, fra1"),
        "{}",
        text(&output.stderr)
    );
    assert!(!story.path("db.sqlite").exists());

    // An empty events file names no zone at all.
    std::fs::write(story.path("events.jsonl"), "").unwrap();
    let output = story.collect("ams1", &DAY);
    assert_refused(&output, "the log is empty");

    // `plan` refuses it the same way.
    let events = story.arg("events.jsonl");
    let output = run(&[&["plan", "--events", &events, "--zone", "ams1"][..], &DAY].concat());
    assert_refused(&output, "appears in no event");
}

#[test]
fn a_zone_both_included_and_excluded_is_refused_before_any_request() {
    let story = Story::new(
        &[event(
            1,
            "ASSIGN",
            "2026-11-01T00:00:00Z",
            "z1",
            "a",
            "192.0.2.7",
        )],
        &[],
    );
    let output = story.collect(
        "z1",
        &[
            &DAY[..],
            &["--include-zones", "EXTERNAL,DMZ", "--exclude-zones", "DMZ"],
        ]
        .concat(),
    );
    assert_refused(&output, "zone DMZ is given in both");
    assert_eq!(story.emulator.requests_served(), 0);
    assert!(!story.path("db.sqlite").exists());
}

#[test]
fn exclude_account_takes_comma_lists() {
    let story = Story::new(
        &[
            event(1, "ASSIGN", "2026-11-01T00:00:00Z", "z1", "1", "192.0.2.1"),
            event(
                2,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "z1",
                "acct-x",
                "192.0.2.2",
            ),
            event(
                3,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "z1",
                "acct-y",
                "192.0.2.3",
            ),
        ],
        &[
            "2026-11-01T01:00:00Z,192.0.2.1,198.51.100.1,,EXTERNAL,100",
            "2026-11-01T01:00:00Z,192.0.2.2,198.51.100.1,,EXTERNAL,200",
            "2026-11-01T01:00:00Z,192.0.2.3,198.51.100.1,,EXTERNAL,300",
        ],
    );
    assert_success(&story.collect(
        "z1",
        &[&DAY[..], &["--exclude-account", "1,acct-x"]].concat(),
    ));
    assert_eq!(
        story.report("account"),
        "zone,account,bytes_sent,bytes_received\nz1,acct-y,300,0\n"
    );
}

#[test]
fn excluded_accounts_take_part_in_ownership() {
    let story = Story::new(
        &[
            event(1, "ASSIGN", "2026-10-31T00:00:00Z", "z1", "1", "192.0.2.1"),
            // A user takes account 1's address without a release.
            event(
                2,
                "ASSIGN",
                "2026-11-01T02:00:00Z",
                "z1",
                "acct-u",
                "192.0.2.1",
            ),
            event(3, "ASSIGN", "2026-10-31T00:00:00Z", "z1", "1", "192.0.2.2"),
            // A user releases account 1's address.
            event(
                4,
                "RELEASE",
                "2026-11-01T03:00:00Z",
                "z1",
                "acct-v",
                "192.0.2.2",
            ),
        ],
        &[
            "2026-11-01T01:00:00Z,192.0.2.1,198.51.100.1,,EXTERNAL,100",
            "2026-11-01T02:30:00Z,192.0.2.1,198.51.100.1,,EXTERNAL,20",
        ],
    );
    let output = story.collect("z1", &[&DAY[..], &["--exclude-account", "1"]].concat());
    assert_success(&output);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("assign-while-held-by-other: event 2"),
        "{stderr}"
    );
    assert!(
        stderr.contains("release-by-other-account: event 4"),
        "{stderr}"
    );
    assert!(!stderr.contains("release-of-free-ip"), "{stderr}");
    assert_eq!(
        story.report("account"),
        "zone,account,bytes_sent,bytes_received\nz1,acct-u,20,0\n"
    );
}

#[test]
fn ipv4_mapped_ipv6_is_the_ipv4_address_in_events_and_flows() {
    let story = Story::new(
        &[
            event(
                1,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "z1",
                "acct-a",
                "::ffff:203.0.113.10",
            ),
            event(
                2,
                "ASSIGN",
                "2026-11-01T03:00:00Z",
                "z1",
                "acct-b",
                "203.0.113.10",
            ),
        ],
        &[
            "2026-11-01T01:00:00Z,::ffff:203.0.113.10,198.51.100.1,,EXTERNAL,10",
            "2026-11-01T04:00:00Z,203.0.113.10,198.51.100.1,,EXTERNAL,30",
        ],
    );
    let output = story.collect("z1", &DAY);
    assert_success(&output);
    assert!(
        text(&output.stderr).contains("assign-while-held-by-other: event 2"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        story.report("account"),
        "zone,account,bytes_sent,bytes_received\nz1,acct-a,10,0\nz1,acct-b,30,0\n"
    );
}

#[test]
fn an_event_id_reused_with_other_content_is_reported_and_the_first_line_wins() {
    let story = Story::new(
        &[
            event(
                1,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "z1",
                "acct-a",
                "192.0.2.7",
            ),
            event(
                1,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "z1",
                "acct-b",
                "192.0.2.7",
            ),
        ],
        &["2026-11-01T01:00:00Z,192.0.2.7,198.51.100.1,,EXTERNAL,5"],
    );
    let output = story.collect("z1", &DAY);
    assert_success(&output);
    assert!(
        text(&output.stderr).contains("conflicting-duplicate: event 1"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        story.report("account"),
        "zone,account,bytes_sent,bytes_received\nz1,acct-a,5,0\n"
    );
}

#[test]
fn windows_are_cut_at_utc_midnight_so_days_are_exact() {
    let story = Story::new(
        &[event(
            1,
            "ASSIGN",
            "2026-11-01T00:00:00Z",
            "z1",
            "a",
            "192.0.2.7",
        )],
        &[
            "2026-11-01T23:30:00Z,192.0.2.7,198.51.100.1,,EXTERNAL,1",
            "2026-11-02T00:30:00Z,192.0.2.7,198.51.100.1,,EXTERNAL,2",
            "2026-11-02T13:30:00Z,192.0.2.7,198.51.100.1,,EXTERNAL,4",
            "2026-11-02T14:30:00Z,192.0.2.7,198.51.100.1,,EXTERNAL,8",
        ],
    );
    // A first run that stops mid-day, then one that catches up.
    assert_success(&story.collect(
        "z1",
        &[
            "--from",
            "2026-11-01T14:00:00Z",
            "--until",
            "2026-11-02T14:00:00Z",
        ],
    ));
    assert_success(&story.collect("z1", &["--until", "2026-11-03T14:00:00Z"]));
    let by_day = story.report("day");
    assert_eq!(
        by_day,
        "zone,account,day,bytes_sent,bytes_received\nz1,a,2026-11-01,1,0\nz1,a,2026-11-02,14,0\n"
    );
    let by_ip = story.report("ip");
    for line in by_ip.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let (start, end) = (fields[3], fields[4]);
        assert!(
            start[..10] == end[..10] || end.ends_with("T00:00:00Z"),
            "record crosses midnight: {line}"
        );
    }
}

#[test]
fn no_password_is_ever_echoed_in_an_error() {
    for monitor in [
        "HTTP//user:s3cret@ts:8080",
        "http:/user:s3cret@ts",
        "ftp://user:s3cret@ts",
        "user:s3cret@ts",
        "https://user:s3cret@",
    ] {
        let output = run(&[
            "collect",
            "--monitor",
            monitor,
            "--events",
            "e.jsonl",
            "--db",
            "d.sqlite",
            "--zone",
            "z1",
        ]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{monitor}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{monitor}: {stderr}");
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{stderr}"
        );
    }
}

#[test]
fn extreme_times_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("e.jsonl");
    std::fs::write(
        &events,
        event(1, "ASSIGN", "2026-11-01T00:00:00Z", "z", "a", "192.0.2.1") + "\n",
    )
    .unwrap();
    let events = events.to_str().unwrap();
    for (from, until) in [
        ("9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59Z"),
        ("0000-01-01T00:00:00+23:59", "0000-01-02T00:00:00Z"),
        ("0000-01-01T00:00:00Z", "0000-01-10T00:00:00Z"),
        ("9999-12-31T22:00:00Z", "9999-12-31T23:59:59.999999999Z"),
    ] {
        let output = run(&[
            "plan", "--events", events, "--zone", "z", "--from", from, "--until", until,
        ]);
        let code = output.status.code();
        assert!(
            matches!(code, Some(0 | 2)),
            "{from} {until}: {code:?} {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn small_things_a_user_hits_at_once() {
    let story = Story::new(
        &[event(
            1,
            "ASSIGN",
            "2026-11-01T00:00:00Z",
            "z1",
            "a",
            "192.0.2.7",
        )],
        &["2026-11-01T01:00:00Z,192.0.2.7,198.51.100.1,,EXTERNAL,5"],
    );
    // A zero lag and a granularity given as a duration are fine.
    let output = story.collect(
        "z1",
        &[&DAY[..], &["--lag", "0m", "--granularity", "1h"]].concat(),
    );
    assert_success(&output);
    // A time without an offset says to add one.
    let output = story.collect("z1", &["--from", "2026-11-01T00:00:00"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("add Z"),
        "{}",
        text(&output.stderr)
    );
    // --from after --until.
    let output = story.collect(
        "z1",
        &[
            "--from",
            "2026-11-03T00:00:00Z",
            "--until",
            "2026-11-02T00:00:00Z",
        ],
    );
    assert_refused(&output, "is not before --until");
    // An unaligned --from is floored, and the user is told.
    let events = story.arg("events.jsonl");
    let output = run(&[
        "plan",
        "--events",
        &events,
        "--zone",
        "z1",
        "--from",
        "2026-11-01T00:30:00Z",
        "--until",
        "2026-11-01T06:00:00Z",
    ]);
    assert_success(&output);
    assert!(
        text(&output.stderr).contains("not on the 3600 s grid"),
        "{}",
        text(&output.stderr)
    );
    // --user without --password-env would send an empty password.
    let output = story.collect("z1", &["--user", "guest"]);
    assert_eq!(output.status.code(), Some(2));
    // Retries are capped.
    let output = story.collect("z1", &["--retries", "4294967295"]);
    assert_eq!(output.status.code(), Some(2));
    // A second fault of the same kind is refused, not silently dropped.
    let flows = story.path("flows.csv");
    std::fs::write(
        &flows,
        "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n",
    )
    .unwrap();
    let output = run(&[
        "emulate",
        "--flows",
        flows.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--fault",
        "5xx",
        "--fault",
        "drop",
    ]);
    assert_refused(&output, "--fault given 2 times");
}

#[test]
fn a_demo_too_large_for_memory_is_refused_with_a_clear_message() {
    let output = run(&["demo", "--ips", "1000000"]);
    assert_refused(&output, "keep --ips × --days at most");
}

#[test]
fn report_cells_cannot_start_formulas_or_hide_characters() {
    let story = Story::new(
        &[
            event(
                1,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "z1",
                "=HYPERLINK(1)",
                "192.0.2.1",
            ),
            event(
                2,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "z1",
                "acct",
                "192.0.2.2",
            ),
            event(
                3,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "z1",
                "acct\u{200b}",
                "192.0.2.3",
            ),
        ],
        &[
            "2026-11-01T01:00:00Z,192.0.2.1,198.51.100.1,,EXTERNAL,1",
            "2026-11-01T01:00:00Z,192.0.2.2,198.51.100.1,,EXTERNAL,2",
            "2026-11-01T01:00:00Z,192.0.2.3,198.51.100.1,,EXTERNAL,3",
        ],
    );
    assert_success(&story.collect("z1", &DAY));
    let csv = story.report("account");
    assert!(
        csv.contains("\n\"z1\",\"'=HYPERLINK(1)\"") || csv.contains("\nz1,'=HYPERLINK(1),1,0\n"),
        "{csv}"
    );
    let db = story.arg("db.sqlite");
    let table = text(&run(&["report", "--db", &db]).stdout);
    assert!(table.contains("acct\\u{200b}"), "{table}");
}

/// `plan` prints the scripts `collect` would send: on the server's clock,
/// whether it is given as an IANA zone or as a fixed offset.
#[test]
fn plan_writes_the_intervals_on_the_servers_clock() {
    let events = [event(
        1,
        "ASSIGN",
        "2026-10-31T00:00:00Z",
        "zone-1",
        "acct-1",
        "203.0.113.5",
    )];
    let story = Story::new(&events, &[]);
    let events = story.arg("events.jsonl");
    let span = [
        "--from",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-11-01T03:00:00Z",
    ];
    for zone in [
        ["--server-time-zone", "Asia/Tokyo"],
        ["--server-utc-offset", "+09:00"],
    ] {
        let args = [
            &["plan", "--events", &events, "--zone", "zone-1"][..],
            &span,
            &zone,
        ]
        .concat();
        let output = run(&args);
        assert_success(&output);
        let script = text(&output.stdout);
        assert!(
            script.contains("\"20261101 09:00:00, 20261101 12:00:00\""),
            "{zone:?}: {script}"
        );
    }
}

/// Berlin's autumn fold (2026-10-25: local 02:00–03:00 is read at
/// 00:00–01:00 UTC and again at 01:00–02:00 UTC), hourly grid, a handover
/// from `a` to `b` at 01:00 UTC: the boundary is written as the earlier of
/// its two readings (DESIGN §3), local 02:00, which the server reads as
/// 00:00 UTC, so both buckets of the repeated hour go to `b`. Every byte is
/// billed once, whatever the windows.
#[test]
fn the_autumn_fold_writes_a_handover_as_its_earlier_reading() {
    use traffic_sentinel_emulator::{EmulatorOptions, read_flows};
    let berlin = usage_model::ServerTimeZone::named("Europe/Berlin").unwrap();
    let csv = "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n\
               2026-10-24T23:30:00Z,203.0.113.10,198.51.100.1,,EXTERNAL,1\n\
               2026-10-25T00:30:00Z,203.0.113.10,198.51.100.1,,EXTERNAL,10\n\
               2026-10-25T01:30:00Z,203.0.113.10,198.51.100.1,,EXTERNAL,100\n\
               2026-10-25T02:30:00Z,203.0.113.10,198.51.100.1,,EXTERNAL,1000\n";
    let emulator = crate::support::emulator_with(
        read_flows(csv.as_bytes()).unwrap(),
        EmulatorOptions::new().server_time_zone(berlin),
    );
    let events = [
        event(
            1,
            "ASSIGN",
            "2026-10-24T20:00:00Z",
            "zone-1",
            "a",
            "203.0.113.10",
        ),
        event(
            2,
            "RELEASE",
            "2026-10-25T01:00:00Z",
            "zone-1",
            "a",
            "203.0.113.10",
        ),
        event(
            3,
            "ASSIGN",
            "2026-10-25T01:00:00Z",
            "zone-1",
            "b",
            "203.0.113.10",
        ),
    ];
    let scratch = Scratch::new();
    scratch.write("events.jsonl", &(events.join("\n") + "\n"));
    let (events, url) = (scratch.arg("events.jsonl"), monitor(&emulator));
    for (n, window) in ["1d", "1h"].into_iter().enumerate() {
        let db = scratch.arg(&format!("fold-{n}.sqlite"));
        let output = run(&[
            "collect",
            "--monitor",
            &url,
            "--events",
            &events,
            "--db",
            &db,
            "--zone",
            "zone-1",
            "--from",
            "2026-10-24T23:00:00Z",
            "--until",
            "2026-10-25T04:00:00Z",
            "--server-time-zone",
            "Europe/Berlin",
            "--max-window",
            window,
        ]);
        assert_success(&output);
        let report = run(&["report", "--db", &db, "--format", "csv"]);
        assert_eq!(
            text(&report.stdout),
            "zone,account,bytes_sent,bytes_received\nzone-1,a,1,0\nzone-1,b,1110,0\n",
            "--max-window {window}"
        );
    }
}

/// Anomalies of events before the zone's first window (DESIGN §4: reported,
/// never silently absorbed): a conflicting duplicate and an assign while
/// held, both of the day before `--from`, decide who is billed; the first
/// window reports them, later windows do not again.
#[test]
fn anomalies_before_the_first_window_are_reported_with_it() {
    let conflicting = event(
        3,
        "ASSIGN",
        "2026-10-31T00:00:00Z",
        "z1",
        "acct-x",
        "198.51.100.2",
    );
    let story = Story::new(
        &[
            event(
                1,
                "ASSIGN",
                "2026-10-31T00:00:00Z",
                "z1",
                "acct-a",
                "198.51.100.1",
            ),
            event(
                2,
                "ASSIGN",
                "2026-10-31T12:00:00Z",
                "z1",
                "acct-b",
                "198.51.100.1",
            ),
            event(
                3,
                "ASSIGN",
                "2026-10-31T00:00:00Z",
                "z1",
                "acct-c",
                "198.51.100.2",
            ),
            conflicting,
        ],
        &[
            "2026-11-01T00:30:00Z,198.51.100.1,192.0.2.1,,EXTERNAL,7",
            "2026-11-01T01:30:00Z,198.51.100.2,192.0.2.1,,EXTERNAL,8",
        ],
    );
    let first = story.collect(
        "z1",
        &[
            "--from",
            "2026-11-01T00:00:00Z",
            "--until",
            "2026-11-01T01:00:00Z",
        ],
    );
    assert_success(&first);
    let log = text(&first.stderr);
    assert!(
        log.contains("1 record(s), bytes sent 7 received 0, 1 request(s), 2 anomaly(ies)"),
        "{log}"
    );
    let later = story.collect("z1", &["--until", "2026-11-01T03:00:00Z"]);
    assert_success(&later);
    assert!(
        text(&later.stderr).contains(", 0 anomaly(ies)"),
        "{}",
        text(&later.stderr)
    );
    let anomalies = story.report("anomaly");
    let rows: Vec<&str> = anomalies.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{anomalies}");
    for (kind, id) in [
        ("assign-while-held", ",2,"),
        ("conflicting-duplicate", ",3,"),
    ] {
        assert!(
            rows.iter().any(
                |row| row.starts_with("z1,2026-11-01T00:00:00Z,2026-11-01T01:00:00Z,")
                    && row.contains(kind)
                    && row.contains(id)
            ),
            "{kind}: {anomalies}"
        );
    }
    assert_eq!(
        story.report("account"),
        "zone,account,bytes_sent,bytes_received\nz1,acct-b,7,0\nz1,acct-c,8,0\n"
    );
}

/// An event edited in place (same id, another account) after its window
/// was billed: the `late-event` warning names that event, found through
/// the address whose stored records the log no longer gives, not the
/// window's latest event, which changed nothing (DESIGN §4: "an event that
/// changed it").
#[test]
fn an_edited_event_is_the_one_a_late_event_names() {
    let events = |first_holder: &str| {
        [
            event(
                1,
                "ASSIGN",
                "2026-11-01T00:00:00Z",
                "z1",
                first_holder,
                "198.51.100.1",
            ),
            event(
                2,
                "ASSIGN",
                "2026-11-01T05:00:00Z",
                "z1",
                "acct-b",
                "198.51.100.2",
            ),
        ]
    };
    let story = Story::new(
        &events("acct-a"),
        &[
            "2026-11-01T08:30:00Z,198.51.100.1,192.0.2.1,,EXTERNAL,7",
            "2026-11-01T09:30:00Z,198.51.100.2,192.0.2.1,,EXTERNAL,8",
        ],
    );
    assert_success(&story.collect("z1", &DAY));
    story
        .scratch
        .write("events.jsonl", &(events("acct-z").join("\n") + "\n"));
    let again = story.collect("z1", &DAY);
    assert_success(&again);
    let log = text(&again.stderr);
    let warning: Vec<&str> = log.lines().filter(|l| l.contains("late-event:")).collect();
    assert_eq!(warning.len(), 1, "{log}");
    assert!(
        warning[0].contains("event 1 at 2026-11-01T00:00:00Z (NET.IPASSIGN 198.51.100.1 acct-z)"),
        "{log}"
    );
}
