//! Crash consistency: `collect` killed with SIGKILL at any point, on every
//! engine, loses and doubles nothing.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::{Duration as StdDuration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{DAY_ONE_END, DAY_THREE_END, Setup, ZONE, reference};
use crate::end_to_end::{collect, emulator_in_process, story};
use crate::support::{
    Contents, Engine, Rng, assert_same, assert_success, binary, checkpoint, engines, monitor, run,
    stderr, text,
};

const SIGKILL: i32 = 9;

/// The one-hour windows from the first instant billed to the end of day
/// three.
const WINDOWS: u64 = 72;
const DAY_THREE_END_AT: OffsetDateTime = time::macros::datetime!(2026-11-04 00:00 UTC);

/// Kills `collect` over 72 one-hour windows at random moments on `engine`,
/// at least 50 times while running; every run that finished, and the store
/// restarted until caught up, equals an uninterrupted run's.
fn sigkill_at_random_points(engine: Engine) {
    let name = engine.name();
    let setup = Setup::new();
    let window = ["--max-window", "1h"];
    let first_reference = reference(&setup, Engine::Sqlite, DAY_THREE_END, &window);
    let store = engine.fresh();
    let started = Instant::now();
    assert_success(&setup.collect(store.target(), DAY_THREE_END, &window));
    // Kills land anywhere in a run: from start-up to the last commit.
    let run_micros = started.elapsed().as_micros() as u64 + 1;
    let want = Contents::of(store.target()).without_clock();
    assert_same(&want, &first_reference, &format!("{name}: reference"));
    let deadline = Instant::now() + StdDuration::from_secs(120);
    let mut rng = Rng(0xdead_beef);
    let mut kills_mid_run = 0;
    let mut kills_between_windows = 0;
    let mut checkpoints_seen = BTreeSet::new();
    let mut rounds = 0;
    let mut round_store = engine.fresh();
    // Windows the next run has left to collect: a kill lands anywhere from
    // its start-up (a few windows' worth of time) to its last commit.
    let mut left = WINDOWS;
    // Kills go on until there are enough of both kinds (how far runs get
    // before a kill depends on the machine's load), within the deadline.
    let enough = |mid_run: usize, between: usize, checkpoints: usize| {
        mid_run >= 60 && between >= 10 && checkpoints >= 2
    };
    while !enough(kills_mid_run, kills_between_windows, checkpoints_seen.len())
        && Instant::now() < deadline
    {
        let run_micros = run_micros * (left + 4) / (WINDOWS + 4);
        let mut child: Child = setup
            .collect_command(round_store.target(), DAY_THREE_END, &window)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Half the kills anywhere in the run, half in its second half (past
        // the start-up, where commits happen).
        let at = match rng.below(2) {
            0 => rng.below(run_micros),
            _ => run_micros / 2 + rng.below(run_micros / 2 + 1),
        };
        std::thread::sleep(StdDuration::from_micros(at));
        let status = match child.try_wait().unwrap() {
            Some(status) => status,
            None => {
                child.kill().unwrap();
                child.wait().unwrap()
            }
        };
        if status.signal() == Some(SIGKILL) {
            kills_mid_run += 1;
            if let Some(checkpoint) = checkpoint(round_store.target(), ZONE) {
                let at = OffsetDateTime::parse(&checkpoint, &Rfc3339).unwrap();
                left = (DAY_THREE_END_AT - at).whole_hours() as u64;
                if left > 0 {
                    kills_between_windows += 1;
                    checkpoints_seen.insert(checkpoint);
                }
            }
            continue;
        }
        match status {
            status if status.success() => {
                // Caught up before the kill: this round's store is done.
                assert_same(
                    &Contents::of(round_store.target()).without_clock(),
                    &want,
                    &format!("{name}: crash round {rounds}"),
                );
                rounds += 1;
                round_store = engine.fresh();
                left = WINDOWS;
            }
            status => panic!("{name}: collect failed on its own: {status}"),
        }
    }
    eprintln!(
        "{name}: {kills_mid_run} runs killed mid-run, {kills_between_windows} after some \
         windows ({} distinct checkpoints); {rounds} rounds caught up between kills",
        checkpoints_seen.len()
    );
    assert!(
        kills_mid_run >= 50,
        "{name}: only {kills_mid_run} runs were killed mid-run"
    );
    // How far runs get before a kill depends on the machine's load (a
    // loaded machine commits fewer windows per run): ask for kills after
    // commits at more than one checkpoint, not for a spread that timing
    // cannot promise.
    assert!(
        kills_between_windows >= 10 && checkpoints_seen.len() >= 2,
        "{name}: too few kills after some windows: {kills_between_windows}, at {} checkpoints",
        checkpoints_seen.len()
    );
    // Restart until caught up.
    let db = round_store.target();
    let mut restarts = 0;
    loop {
        let output = setup.collect(db, DAY_THREE_END, &window);
        if output.status.success() {
            break;
        }
        restarts += 1;
        assert!(
            restarts < 5,
            "{name}: collect keeps failing: {}",
            text(&output.stderr)
        );
    }
    let output = setup.collect(db, DAY_THREE_END, &window);
    assert_success(&output);
    assert!(
        text(&output.stderr).contains("caught up"),
        "{name}: {}",
        text(&output.stderr)
    );
    assert_same(
        &Contents::of(db).without_clock(),
        &want,
        &format!("{name}: after the crash loop"),
    );
}

// One test per engine, so that the test harness runs them side by side.
#[test]
fn sigkill_at_random_points_loses_and_doubles_nothing() {
    sigkill_at_random_points(Engine::Sqlite);
}

#[test]
fn sigkill_at_random_points_loses_and_doubles_nothing_on_postgres() {
    if engines().contains(&Engine::Postgres) {
        sigkill_at_random_points(Engine::Postgres);
    }
}

#[test]
fn sigkill_at_random_points_loses_and_doubles_nothing_on_mysql() {
    if engines().contains(&Engine::MySql) {
        sigkill_at_random_points(Engine::MySql);
    }
}

/// Kills the first `collect` into an empty store at moments from its
/// start-up through the creation of the schema; a later `collect` always
/// completes the store.
fn killed_while_creating_the_schema(engine: Engine) {
    let name = engine.name();
    let scratch = story();
    let emulator = emulator_in_process();
    let url = monitor(&emulator);
    let reference = engine.fresh();
    assert_success(&collect(&scratch, &url, reference.target(), &[]));
    let want = Contents::of(reference.target()).without_clock();
    let events = scratch.arg("events.jsonl");
    for delay in (0..=400).step_by(40) {
        let store = engine.fresh();
        let db = store.target();
        let mut child = binary()
            .args([
                "collect",
                "--monitor",
                &url,
                "--events",
                &events,
                "--db",
                db,
            ])
            .args(["--zone", "zone-1", "--from", "2026-11-01T00:00:00Z"])
            .args(["--until", "2026-11-01T06:00:00Z", "--max-window", "3h"])
            .args(["--exclude-account", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(StdDuration::from_millis(delay));
        let _ = child.kill();
        child.wait().unwrap();
        // A server may still commit what the killed collector had sent
        // (its COMMIT was on the wire): a collect planned before that
        // commit loses the race, stores nothing and says so; the next one
        // resumes.
        let mut output = collect(&scratch, &url, db, &[]);
        for _ in 0..3 {
            if output.status.success()
                || !stderr(&output).contains("checkpoint of zone zone-1 moved")
            {
                break;
            }
            output = collect(&scratch, &url, db, &[]);
        }
        assert!(
            output.status.success(),
            "{name}: killed after {delay} ms: {}",
            stderr(&output)
        );
        assert_same(
            &Contents::of(db).without_clock(),
            &want,
            &format!("{name}: killed after {delay} ms"),
        );
    }
}

#[test]
fn a_collect_killed_while_creating_the_schema_leaves_a_usable_store() {
    killed_while_creating_the_schema(Engine::Sqlite);
}

#[test]
fn a_collect_killed_while_creating_the_schema_leaves_a_usable_store_on_postgres() {
    if engines().contains(&Engine::Postgres) {
        killed_while_creating_the_schema(Engine::Postgres);
    }
}

#[test]
fn a_collect_killed_while_creating_the_schema_leaves_a_usable_store_on_mysql() {
    if engines().contains(&Engine::MySql) {
        killed_while_creating_the_schema(Engine::MySql);
    }
}

/// `report` and `status` of a SQLite store whose collector was killed in
/// the middle of a commit (leaving its rollback journal beside the file)
/// show the last committed state, or say in one line what to do.
///
/// The kill is aimed: the test reads the journal's first bytes in a tight
/// loop while `collect` runs and kills it the moment they are SQLite's
/// journal magic, which a commit writes when it has synced the journal and
/// before it has written the database and deleted the journal (two fsyncs
/// on a disk, so one run of 72 commits nearly always gives a hit).
#[test]
fn report_and_status_after_a_collect_killed_mid_commit() {
    let setup = Setup::new();
    let window = ["--max-window", "1h"];
    for attempt in 0..40 {
        // Day one committed first, so that the kill lands in a window's
        // commit, not in the schema's (which the tests above cover).
        let store = Engine::Sqlite.fresh();
        assert_success(&setup.collect(store.target(), DAY_ONE_END, &window));
        let journal = format!("{}-journal", store.target());
        let mut child = setup
            .collect_command(store.target(), DAY_THREE_END, &window)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut header = [0u8; 8];
        loop {
            if is_hot(&journal, &mut header) {
                let _ = child.kill();
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }
        child.wait().unwrap();
        // The commit may have finished between the read and the kill.
        if !is_hot(&journal, &mut header) {
            continue;
        }
        for args in [
            &["status", "--db", store.target()][..],
            &["report", "--db", store.target(), "--by", "ip"][..],
        ] {
            let output = run(args);
            let err = stderr(&output);
            assert!(
                output.status.success() || (err.lines().count() == 1 && err.contains("journal")),
                "{args:?} after a kill mid-commit (attempt {attempt}): {err}"
            );
        }
        return;
    }
    panic!("no kill landed in the middle of a commit");
}

/// Whether the rollback journal at `path` begins with SQLite's journal
/// magic: the commit it belongs to has not finished
/// (<https://www.sqlite.org/fileformat2.html#the_rollback_journal>).
fn is_hot(path: &str, header: &mut [u8; 8]) -> bool {
    use std::io::Read as _;
    const MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    std::fs::File::open(path).is_ok_and(|mut file| file.read_exact(header).is_ok())
        && *header == MAGIC
}
