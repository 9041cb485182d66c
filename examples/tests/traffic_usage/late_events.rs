//! Late events (DESIGN §4) and restatement (§10), on every engine: events
//! that arrive after their day was billed are reported once and rebill
//! nothing; `collect --restate` then rebills the day from the current log,
//! as a first collection would, and stores what changed as signed
//! adjustments; a restatement killed midway leaves each window old or new.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use traffic_sentinel_emulator::{Fault, Times};

use crate::end_to_end::{REPORT_BY_IP, emulator_in_process, story};
use crate::support::{
    Contents, Engine, Scratch, TestStore, assert_refused, assert_same, assert_success, binary,
    checkpoint, engines, monitor, report, sleep_into_the_next_second, stderr,
};

const DAY_START: &str = "2026-11-01T00:00:00Z";
const DAY_END: &str = "2026-11-02T00:00:00Z";

/// Two events logged after the day was billed: acct-a released
/// 198.51.100.20 at 02:00, not at 04:00 (event 6), and acct-b held it from
/// 03:00, until event 6, logged under acct-a, closed acct-b's holding at
/// 04:00 (a release by another account).
const LATE_EVENTS: &str = r#"{"id":9,"type":"NET.IPRELEASE","at":"2026-11-01T02:00:00Z","zone":"zone-1","account":"acct-a","ip":"198.51.100.20"}
{"id":10,"type":"NET.IPASSIGN","at":"2026-11-01T03:00:00Z","zone":"zone-1","account":"acct-b","ip":"198.51.100.20"}
"#;

/// The day as first billed: the story's records (see `end_to_end`), and
/// the 7777 bytes 203.0.113.10 sends at 06:00, still held by acct-b.
pub(crate) fn first_records() -> String {
    let last_of_10 = "zone-1,acct-b,203.0.113.10,2026-11-01T03:00:00Z,2026-11-01T06:00:00Z,0,30\n";
    REPORT_BY_IP.replacen(
        last_of_10,
        &format!(
            "{last_of_10}zone-1,acct-b,203.0.113.10,2026-11-01T06:00:00Z,2026-11-01T09:00:00Z,7777,0\n"
        ),
        1,
    )
}

/// The day as the log with the late events bills it: 198.51.100.20 is
/// acct-a's until 02:00 (its 300 bytes at 01:00 stay acct-a's) and
/// acct-b's from 03:00 to 04:00, so the 5 bytes at 03:59 move from acct-a
/// to acct-b.
const RESTATED_RECORDS: &str = "\
zone,account,ip,start,end,bytes_sent,bytes_received
zone-1,acct-a,198.51.100.20,2026-11-01T00:00:00Z,2026-11-01T02:00:00Z,0,300
zone-1,acct-a,203.0.113.10,2026-11-01T00:00:00Z,2026-11-01T02:00:00Z,1000,200
zone-1,acct-b,198.51.100.20,2026-11-01T03:00:00Z,2026-11-01T04:00:00Z,0,5
zone-1,acct-b,203.0.113.10,2026-11-01T02:00:00Z,2026-11-01T03:00:00Z,4000,0
zone-1,acct-b,203.0.113.10,2026-11-01T03:00:00Z,2026-11-01T06:00:00Z,0,30
zone-1,acct-b,203.0.113.10,2026-11-01T06:00:00Z,2026-11-01T09:00:00Z,7777,0
zone-1,acct-b,2001:db8::7,2026-11-01T01:00:00Z,2026-11-01T03:00:00Z,600,0
zone-1,acct-b,2001:db8::7,2026-11-01T03:00:00Z,2026-11-01T06:00:00Z,0,70
";

/// What the restatement changed, per account of the window it changed:
/// acct-a −5 bytes received, acct-b +5 (the totals of the window before
/// it are the same, though its holdings changed).
const ADJUSTMENTS: &str = "\
zone,account,window_start,window_end,bytes_sent_delta,bytes_received_delta
zone-1,acct-a,2026-11-01T03:00:00Z,2026-11-01T06:00:00Z,0,-5
zone-1,acct-b,2026-11-01T03:00:00Z,2026-11-01T06:00:00Z,0,5
";

/// `collect` of zone-1 as the end-to-end story does (windows of 3 h,
/// account 1 excluded) with `extra` flags.
fn collect(scratch: &Scratch, monitor: &str, db: &str, extra: &[&str]) -> Output {
    collect_command(scratch, monitor, db, extra)
        .output()
        .expect("the binary runs")
}

/// The command [`collect`] runs.
fn collect_command(scratch: &Scratch, monitor: &str, db: &str, extra: &[&str]) -> Command {
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
        "--max-window",
        "3h",
        "--exclude-account",
        "1",
        "--timeout",
        "5s",
        "--retries",
        "1",
    ];
    args.extend_from_slice(extra);
    let mut command = binary();
    command.args(&args);
    command
}

/// A fresh store on `engine` with the story's day billed.
fn billed_day(engine: Engine, scratch: &Scratch, monitor: &str) -> TestStore {
    let store = engine.fresh();
    let output = collect(
        scratch,
        monitor,
        store.target(),
        &["--from", DAY_START, "--until", DAY_END],
    );
    assert_success(&output);
    assert_eq!(
        report(store.target(), &["--by", "ip", "--format", "csv"]),
        first_records(),
        "{}",
        engine.name()
    );
    store
}

/// Appends the late events to the story's events file.
fn log_late_events(scratch: &Scratch) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(scratch.path("events.jsonl"))
        .unwrap();
    file.write_all(LATE_EVENTS.as_bytes()).unwrap();
}

/// The `warning: late-event: …` lines of a run's standard error.
fn late_event_warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("warning: late-event: "))
        .collect()
}

/// The first five cells (zone, window, kind, event id) of each anomaly row,
/// and its detail.
fn anomaly_rows(csv: &str) -> Vec<(String, String)> {
    csv.lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.splitn(6, ',').collect();
            (cells[..5].join(","), cells[5].to_owned())
        })
        .collect()
}

/// An event logged late, before a window, is the one named for that window
/// when it decides who holds an address there: acct-b hands 2001:db8::7 to
/// acct-a at 02:00 (events 9 and 10), which changes every window from then
/// on, 03:00–06:00 included, where the release at 04:00 (event 6, known
/// when the day was billed) changed nothing.
#[test]
fn a_late_event_before_a_window_is_the_one_named_for_it() {
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    let scratch = story();
    let store = billed_day(Engine::Sqlite, &scratch, &url);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(scratch.path("events.jsonl"))
        .unwrap();
    file.write_all(
        br#"{"id":9,"type":"NET.IPRELEASE","at":"2026-11-01T02:00:00Z","zone":"zone-1","account":"acct-b","ip":"2001:db8::7"}
{"id":10,"type":"NET.IPASSIGN","at":"2026-11-01T02:00:00Z","zone":"zone-1","account":"acct-a","ip":"2001:db8::7"}
"#,
    )
    .unwrap();
    drop(file);
    let output = collect(&scratch, &url, store.target(), &["--until", DAY_END]);
    assert_success(&output);
    let err = stderr(&output);
    let warnings = late_event_warnings(&err);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("window 2026-11-01T03:00:00Z..2026-11-01T06:00:00Z")),
        "{err}"
    );
    for warning in &warnings {
        assert!(
            warning.contains(" event 10 at 2026-11-01T02:00:00Z "),
            "{warning}"
        );
    }
}

#[test]
fn a_late_event_is_reported_once_and_rebills_nothing() {
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    for engine in engines() {
        let name = engine.name();
        let scratch = story();
        let store = billed_day(engine, &scratch, &url);
        let db = store.target();
        let before = Contents::of(db);

        log_late_events(&scratch);
        let served = emulator.requests_served();
        let output = collect(&scratch, &url, db, &["--until", DAY_END]);
        assert_success(&output);
        let err = stderr(&output);
        let warnings = late_event_warnings(&err);
        assert_eq!(warnings.len(), 2, "{name}: {err}");
        assert!(
            warnings[0].contains("window 2026-11-01T00:00:00Z..2026-11-01T03:00:00Z")
                && warnings[0].contains("event 9 "),
            "{name}: {err}"
        );
        assert!(
            warnings[1].contains("window 2026-11-01T03:00:00Z..2026-11-01T06:00:00Z")
                && warnings[1].contains("event 10 "),
            "{name}: {err}"
        );
        assert!(err.contains("caught up"), "{name}: {err}");
        // A billed window is never rebilled by a plain collect.
        assert_eq!(emulator.requests_served(), served, "{name}: a request");
        let after = Contents::of(db);
        assert_eq!(after.records, before.records, "{name}");
        assert_eq!(after.adjustments, before.adjustments, "{name}");
        let anomalies = anomaly_rows(&after.anomalies);
        let keys: Vec<&str> = anomalies.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "zone-1,2026-11-01T00:00:00Z,2026-11-01T03:00:00Z,late-event,9",
                "zone-1,2026-11-01T00:00:00Z,2026-11-01T03:00:00Z,release-of-free-ip,7",
                "zone-1,2026-11-01T03:00:00Z,2026-11-01T06:00:00Z,late-event,10",
            ],
            "{name}"
        );
        for ((_, detail), warning) in [&anomalies[0], &anomalies[2]].into_iter().zip(&warnings) {
            assert!(detail.starts_with("late-event: "), "{name}: {detail}");
            assert_eq!(Some(detail.as_str()), warning.strip_prefix("warning: "));
        }
        assert_eq!(checkpoint(db, "zone-1").as_deref(), Some(DAY_END));

        // The same log again: nothing new to report, nothing stored.
        let output = collect(&scratch, &url, db, &["--until", DAY_END]);
        assert_success(&output);
        assert!(!stderr(&output).contains("late-event"), "{name}");
        assert_same(&Contents::of(db), &after, name);
    }
}

#[test]
fn restating_a_day_equals_a_fresh_collection_with_signed_adjustments() {
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    let mut per_engine: Vec<(Engine, Contents)> = Vec::new();
    for engine in engines() {
        let name = engine.name();
        let scratch = story();
        let store = billed_day(engine, &scratch, &url);
        let db = store.target();
        log_late_events(&scratch);
        assert_success(&collect(&scratch, &url, db, &["--until", DAY_END]));

        let started = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let restate = ["--restate", "--from", DAY_START, "--until", DAY_END];
        let output = collect(&scratch, &url, db, &restate);
        assert_success(&output);
        let finished = OffsetDateTime::now_utc();
        assert!(
            stderr(&output).contains("restated 8 window(s) of zone zone-1"),
            "{name}: {}",
            stderr(&output)
        );

        // What a first collection over the current log stores.
        let fresh = engine.fresh();
        assert_success(&collect(
            &scratch,
            &url,
            fresh.target(),
            &["--from", DAY_START, "--until", DAY_END],
        ));
        let want = Contents::of(fresh.target()).without_clock();
        let got = Contents::of(db);
        let got_without_clock = got.without_clock();
        assert_eq!(got_without_clock.records, RESTATED_RECORDS, "{name}");
        assert_eq!(want.records, RESTATED_RECORDS, "{name}");
        // The late-event anomalies are resolved; the anomalies are those of
        // the current log.
        assert_eq!(got_without_clock.anomalies, want.anomalies, "{name}");
        assert!(!got.anomalies.contains("late-event"), "{name}");
        assert_eq!(got_without_clock.status, want.status, "{name}");
        assert_eq!(got_without_clock.adjustments, ADJUSTMENTS, "{name}");
        for line in got.adjustments.lines().skip(1) {
            let restated_at = line.rsplit(',').next().unwrap();
            let at = OffsetDateTime::parse(restated_at, &Rfc3339).unwrap();
            assert!(started <= at && at <= finished, "{name}: {line}");
        }
        assert_eq!(
            report(db, &["--by", "account", "--format", "json"]),
            concat!(
                r#"[{"zone":"zone-1","account":"acct-a","bytes_sent":1000,"bytes_received":500},"#,
                r#"{"zone":"zone-1","account":"acct-b","bytes_sent":12377,"bytes_received":105}]"#,
                "\n"
            ),
            "{name}"
        );

        // Restating again changes nothing, so it stores nothing: not even a
        // new collection time.
        sleep_into_the_next_second();
        let output = collect(&scratch, &url, db, &restate);
        assert_success(&output);
        assert_same(&Contents::of(db), &got, &format!("{name}: restated again"));
        per_engine.push((engine, got_without_clock));
    }
    if let Some(((first, want), rest)) = per_engine.split_first() {
        for (engine, got) in rest {
            assert_same(
                got,
                want,
                &format!("{} against {}", engine.name(), first.name()),
            );
        }
    }
}

/// The record lines of `csv` (a `report --by ip` table) that start inside
/// the 3 h window starting at `hour` on the story's day.
fn window_lines(csv: &str, hour: u32) -> Vec<&str> {
    let hours: Vec<String> = (hour..hour + 3)
        .map(|h| format!("2026-11-01T{h:02}:"))
        .collect();
    csv.lines()
        .skip(1)
        .filter(|line| {
            let start = line.split(',').nth(3).unwrap_or_default();
            hours.iter().any(|h| start.starts_with(h.as_str()))
        })
        .collect()
}

/// `collect --restate` killed with SIGKILL while Traffic Sentinel is slow
/// to answer its first, second, third… window (each time on a freshly
/// billed day): after the kill each window holds either its old records or
/// its restated ones, never a mix, with adjustments only once restated; a
/// second run completes the restatement.
///
/// Each engine runs in a thread of its own, against an emulator of its own
/// (the delay is set per emulator).
#[test]
fn a_restatement_killed_midway_leaves_each_window_old_or_new() {
    std::thread::scope(|scope| {
        for engine in engines() {
            scope.spawn(move || restatement_killed_midway(engine));
        }
    });
}

/// The kills of [`a_restatement_killed_midway_leaves_each_window_old_or_new`]
/// on `engine`.
fn restatement_killed_midway(engine: Engine) {
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    let old = first_records();
    let restate = ["--restate", "--from", DAY_START, "--until", DAY_END];
    let name = engine.name();
    // How many kills left the changed windows half old, half new.
    let mut partly_restated = 0;
    for attempt in 0..4 {
        let scratch = story();
        let store = billed_day(engine, &scratch, &url);
        let db = store.target();
        log_late_events(&scratch);
        assert_success(&collect(&scratch, &url, db, &["--until", DAY_END]));
        // Every answer waits a second; the kill lands while the
        // request of window `attempt` waits, after the windows before
        // it were restated.
        emulator
            .faults()
            .replace(Fault::Delay(Duration::from_secs(1)), Times::Always)
            .unwrap();
        let served = emulator.requests_served();
        let mut child = collect_command(&scratch, &url, db, &restate)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while emulator.requests_served() < served + attempt {
            assert!(Instant::now() < deadline, "{name}: the restatement stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(400));
        let _ = child.kill();
        child.wait().unwrap();
        emulator.faults().clear();
        let records = report(db, &["--by", "ip", "--format", "csv"]);
        let adjustments = report(db, &["--by", "adjustment", "--format", "csv"]);
        let mut states = Vec::new();
        for hour in (0..8).map(|n| n * 3) {
            let got = window_lines(&records, hour);
            let was = window_lines(&old, hour);
            let will_be = window_lines(RESTATED_RECORDS, hour);
            assert!(
                got == was || got == will_be,
                "{name}: attempt {attempt}, window at {hour:02}:00 is mixed: {got:?}"
            );
            let start = format!(",2026-11-01T{hour:02}:00:00Z,");
            if was != will_be {
                // Adjustments once restated, where account totals moved.
                assert_eq!(
                    adjustments.contains(&start),
                    got == will_be && ADJUSTMENTS.contains(&start),
                    "{name}: attempt {attempt}, window at {hour:02}:00: {adjustments}"
                );
                states.push(got == will_be);
            }
        }
        partly_restated += usize::from(states.contains(&true) && states.contains(&false));
        assert_success(&collect(&scratch, &url, db, &restate));
        assert_eq!(
            report(db, &["--by", "ip", "--format", "csv"]),
            RESTATED_RECORDS,
            "{name}: attempt {attempt}, after the second run"
        );
        assert_eq!(
            Contents::of(db).without_clock().adjustments,
            ADJUSTMENTS,
            "{name}: attempt {attempt}"
        );
    }
    assert!(
        partly_restated >= 1,
        "{name}: no kill left the day partly restated"
    );
}

/// A restatement refused for its range (exit 2: a range that cuts a billed
/// window, a bound off the grid) stores nothing, not even the `late-event`
/// anomalies the changed log raises.
#[test]
fn a_refused_restatement_stores_nothing() {
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    let scratch = story();
    let store = billed_day(Engine::Sqlite, &scratch, &url);
    let db = store.target();
    log_late_events(&scratch);
    let before = Contents::of(db);
    for (from, until, why) in [
        (
            "2026-11-01T10:00:00Z",
            "2026-11-01T14:00:00Z",
            "is cut by the range",
        ),
        ("2026-11-01T00:30:00Z", DAY_END, "is not on the 3600 s grid"),
    ] {
        let output = collect(
            &scratch,
            &url,
            db,
            &["--restate", "--from", from, "--until", until],
        );
        assert_refused(&output, why);
        assert_same(&Contents::of(db), &before, &format!("{from}..{until}"));
    }
}

/// After an accepted change of granularity, a restatement bills the window
/// as a first collection with the current settings would: on the new grid,
/// and the zone is billed with the new settings from then on.
#[test]
fn a_restatement_after_a_grid_change_bills_on_the_new_grid() {
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    let scratch = story();
    let store = billed_day(Engine::Sqlite, &scratch, &url);
    let db = store.target();
    let minute = ["--granularity", "60"];
    let restate = [
        &minute[..],
        &["--restate", "--from", DAY_START, "--until", DAY_END],
    ]
    .concat();
    // The change must be accepted.
    assert_refused(&collect(&scratch, &url, db, &restate), "granularity");
    let accepted = [&restate[..], &["--accept-changed-settings"]].concat();
    assert_success(&collect(&scratch, &url, db, &accepted));
    // What a first collection on the minute grid stores.
    let fresh = Engine::Sqlite.fresh();
    assert_success(&collect(
        &scratch,
        &url,
        fresh.target(),
        &[&minute[..], &["--from", DAY_START, "--until", DAY_END]].concat(),
    ));
    let by_ip = ["--by", "ip", "--format", "csv"];
    assert_eq!(report(db, &by_ip), report(fresh.target(), &by_ip));
    // The minute grid is now the zone's: collecting on it needs no
    // acceptance, and restating again changes nothing.
    assert_success(&collect(&scratch, &url, db, &minute));
    let output = collect(&scratch, &url, db, &restate);
    assert_success(&output);
    assert!(stderr(&output).contains("restated"), "{}", stderr(&output));
}
