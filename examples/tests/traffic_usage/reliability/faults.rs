//! Every fault Traffic Sentinel can show gives either all records (after
//! retries) or an unchanged store, on every engine; a fault after some
//! windows keeps exactly the windows before it.

use std::time::Duration as StdDuration;

use traffic_sentinel_emulator::{Fault, Times};

use super::{DAY_ONE_END, DAY_TWO_END, Setup, ZONE, reference};
use crate::support::{
    Contents, Engine, assert_same, assert_success, checkpoint, engines, rows_ending_by, status,
    text,
};

/// What a fault must lead to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// All windows collected after retries.
    Recovered,
    /// An error exit naming the failure, nothing written.
    Refused(&'static str),
}

/// Each engine runs the whole matrix in a thread of its own, against an
/// emulator of its own (faults are set per emulator).
#[test]
fn every_fault_gives_all_records_or_an_unchanged_database() {
    let window = ["--max-window", "6h"];
    let want = reference(&Setup::new(), Engine::Sqlite, DAY_TWO_END, &window);
    std::thread::scope(|scope| {
        for engine in engines() {
            let want = &want;
            scope.spawn(move || every_fault_on(engine, want));
        }
    });
}

/// The fault matrix on `engine`: `want` is what a fault-free collection up
/// to the end of day two stores.
fn every_fault_on(engine: Engine, want: &Contents) {
    let setup = Setup::new();
    let window = ["--max-window", "6h"];
    let matrix: [(&str, Fault, Times, Expect); 10] = [
        (
            "delay past the timeout",
            Fault::Delay(StdDuration::from_secs(3)),
            Times::Always,
            Expect::Refused("request timed out after 2 attempt(s)"),
        ),
        (
            "5xx once",
            Fault::SERVICE_UNAVAILABLE,
            Times::Next(1),
            Expect::Recovered,
        ),
        (
            "5xx always",
            Fault::HttpStatus(500),
            Times::Always,
            Expect::Refused("http status 500 after 2 attempt(s)"),
        ),
        (
            "drop mid-body once",
            Fault::DropMidBody,
            Times::Next(1),
            Expect::Recovered,
        ),
        (
            "drop mid-body always",
            Fault::DropMidBody,
            Times::Always,
            Expect::Refused("transport error after 2 attempt(s)"),
        ),
        (
            "truncated before the sentinel",
            Fault::TruncateBeforeSentinel,
            Times::Always,
            Expect::Refused("answer truncated"),
        ),
        (
            "truncated once",
            Fault::TruncateBeforeSentinel,
            Times::Next(1),
            Expect::Refused("answer truncated"),
        ),
        (
            "garbage line",
            Fault::GarbageLine,
            Times::Always,
            Expect::Refused("malformed answer at line"),
        ),
        (
            "html page with 200",
            Fault::HtmlErrorPage,
            Times::Always,
            Expect::Refused("answer is html"),
        ),
        (
            "empty body",
            Fault::EmptyBody,
            Times::Always,
            Expect::Refused("answer is empty"),
        ),
    ];
    for (name, fault, times, expect) in matrix {
        let context = format!("{}: {name}", engine.name());
        // Day one collected without fault; day two hits the fault from
        // its first request on.
        let store = engine.fresh();
        let db = store.target();
        assert_success(&setup.collect(db, DAY_ONE_END, &window));
        let before = Contents::of(db);
        let faults = setup.emulator.faults();
        faults.set(fault, times).unwrap();
        let output = setup.collect(db, DAY_TWO_END, &window);
        faults.clear();
        let stderr = text(&output.stderr);
        match expect {
            Expect::Recovered => {
                assert_success(&output);
                assert_same(&Contents::of(db).without_clock(), want, &context);
            }
            Expect::Refused(message) => {
                assert_eq!(output.status.code(), Some(1), "{context}: {stderr}");
                assert!(stderr.contains(message), "{context}: {stderr}");
                assert!(stderr.contains("stored nothing"), "{context}: {stderr}");
                let last = stderr.trim_end().lines().last().unwrap_or("");
                assert!(last.starts_with("error: "), "{context}: {stderr}");
                assert_same(&Contents::of(db), &before, &context);
                assert_eq!(
                    checkpoint(db, ZONE).as_deref(),
                    Some(DAY_ONE_END),
                    "{context}: the checkpoint moved"
                );
            }
        }
        // With the fault gone, collecting again gives the fault-free
        // store.
        assert_success(&setup.collect(db, DAY_TWO_END, &window));
        assert_same(
            &Contents::of(db).without_clock(),
            want,
            &format!("{context}, then cleared"),
        );
    }
}

#[test]
fn a_fault_after_some_windows_keeps_exactly_the_windows_before_it() {
    let setup = Setup::new();
    let window = ["--max-window", "6h"];
    let want = reference(&setup, Engine::Sqlite, DAY_TWO_END, &window);
    for engine in engines() {
        let name = engine.name();
        let store = engine.fresh();
        let db = store.target();
        // Every request takes 100 ms; once two have been answered, every
        // request not yet begun gets a garbage line: the third or fourth
        // window fails.
        let faults = setup.emulator.faults();
        faults
            .set(Fault::Delay(StdDuration::from_millis(100)), Times::Always)
            .unwrap();
        let served = setup.emulator.requests_served();
        let output = std::thread::scope(|scope| {
            let run = scope.spawn(|| setup.collect(db, DAY_TWO_END, &window));
            while setup.emulator.requests_served() < served + 2 && !run.is_finished() {
                std::thread::sleep(StdDuration::from_micros(200));
            }
            faults.set(Fault::GarbageLine, Times::Always).unwrap();
            run.join().unwrap()
        });
        faults.clear();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("malformed answer"), "{name}: {stderr}");
        // The committed windows are the reference's first ones, record for
        // record; nothing of the failed window or after it is stored.
        let checkpoint = checkpoint(db, ZONE).unwrap();
        let windows = match checkpoint.as_str() {
            "2026-11-01T12:00:00Z" => 2,
            "2026-11-01T18:00:00Z" => 3,
            other => panic!("{name}: checkpoint {other}"),
        };
        let got = Contents::of(db).without_clock();
        // A record's end is column 4 of `report --by ip`, an anomaly's
        // window end column 2 of `report --by anomaly`.
        assert_eq!(
            got.records,
            rows_ending_by(&want.records, 4, &checkpoint),
            "{name}"
        );
        assert_eq!(
            got.anomalies,
            rows_ending_by(&want.anomalies, 2, &checkpoint),
            "{name}"
        );
        let zone = &status(db)[0];
        assert_eq!(zone["windows"], windows, "{name}: {zone:?}");
        assert_eq!(
            zone["records"],
            got.records.lines().count() - 1,
            "{name}: {zone:?}"
        );
        assert!(got.records.lines().count() < want.records.lines().count());
        assert_success(&setup.collect(db, DAY_TWO_END, &window));
        assert_same(
            &Contents::of(db).without_clock(),
            &want,
            &format!("{name}: after the fault was cleared"),
        );
    }
}
