//! Reliability and security of the whole tool: faults, crashes, concurrent
//! runs and hostile input lose or double no byte.
//!
//! The `traffic-usage` binary is driven as a user would, against an
//! in-process Traffic Sentinel emulator on loopback, with its SQLite database
//! compared table by table, row by row, against the database of an
//! uninterrupted, fault-free run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{self, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use traffic_sentinel_client::{MonitorConfig, plan_requests};
use traffic_sentinel_emulator::{
    Emulator, EmulatorOptions, Fault, Flow, FlowHistory, Times, answer_script,
};
use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan, Schedule};
use usage_model::{AccountId, EventReader, IpEvent, IpEventKind, ZoneId, write_events};

const BIN: &str = env!("CARGO_BIN_EXE_traffic-usage");

/// The zone collected.
const ZONE: &str = "zone-1";
/// The first instant billed.
const FROM: &str = "2026-11-01T00:00:00Z";
const FROM_AT: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);
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

// ---------------------------------------------------------------------------
// Data: events and flows
// ---------------------------------------------------------------------------

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A small deterministic random stream (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An assign/release log for `zone` over 2026-10-31 to 2026-11-04 with
/// handovers at times off the grid, an address held throughout (so every
/// window asks Traffic Sentinel), IPv6, and the anomalies DESIGN §4 names.
fn events_for(zone: &str, accounts: &[&str]) -> Vec<IpEvent> {
    let zone = ZoneId::new(zone).unwrap();
    let account = |i: usize| AccountId::new(accounts[i % accounts.len()]).unwrap();
    let mut events = Vec::new();
    let mut push = |at: OffsetDateTime, who: AccountId, address: &str, kind| {
        let id = events.len() as u64 + 1;
        events.push(IpEvent {
            id,
            at,
            zone: zone.clone(),
            account: who,
            ip: ip(address),
            kind,
        });
    };
    use IpEventKind::{Assign, Release};
    // Held throughout, and re-assigned to its holder (an anomaly).
    push(
        datetime!(2026-10-31 00:00 UTC),
        account(0),
        "203.0.113.10",
        Assign,
    );
    push(
        datetime!(2026-11-01 12:00 UTC),
        account(0),
        "203.0.113.10",
        Assign,
    );
    // Released without being held (an anomaly).
    push(
        datetime!(2026-11-01 09:00 UTC),
        account(1),
        "203.0.113.13",
        Release,
    );
    // IPv6, taken over by another account without a release (an anomaly).
    push(
        datetime!(2026-11-01 03:00 UTC),
        account(2),
        "2001:db8::11",
        Assign,
    );
    push(
        datetime!(2026-11-02 02:30 UTC),
        account(3),
        "2001:db8::11",
        Assign,
    );
    // Only ever receives.
    push(
        datetime!(2026-11-01 05:30 UTC),
        account(3),
        "203.0.113.12",
        Assign,
    );
    push(
        datetime!(2026-11-02 20:00 UTC),
        account(3),
        "203.0.113.12",
        Release,
    );
    // Released by another account than its holder (an anomaly).
    push(
        datetime!(2026-11-01 00:20 UTC),
        account(1),
        "203.0.113.11",
        Assign,
    );
    push(
        datetime!(2026-11-01 07:45 UTC),
        account(2),
        "203.0.113.11",
        Release,
    );
    push(
        datetime!(2026-11-01 07:45 UTC),
        account(2),
        "203.0.113.11",
        Assign,
    );
    // A pool handed from account to account at odd minutes.
    let mut rng = Rng(0x5eed_0001);
    for i in 0..8u8 {
        let address = format!("100.64.0.{i}");
        let mut at = datetime!(2026-10-31 22:00 UTC) + Duration::minutes(rng.below(600) as i64);
        let mut holder = i as usize;
        while at < datetime!(2026-11-04 00:00 UTC) {
            push(at, account(holder), &address, Assign);
            at += Duration::minutes(30 + rng.below(400) as i64);
            push(at, account(holder), &address, Release);
            at += Duration::minutes(rng.below(3) as i64 * 25);
            holder += 1 + rng.below(2) as usize;
        }
    }
    events
}

const ACCOUNTS: [&str; 4] = ["acct-1", "acct-2", "acct-3", "acct-4"];

fn events() -> Vec<IpEvent> {
    events_for(ZONE, &ACCOUNTS)
}

/// Every 15 minutes from 2026-10-31 22:00 to 2026-11-04 02:00, each
/// address sends to and receives from EXTERNAL, and sends to INTERNAL (never
/// billed); `203.0.113.12` only receives.
fn flows() -> Vec<Flow> {
    let mut addresses: Vec<String> = (0..8).map(|i| format!("100.64.0.{i}")).collect();
    for a in [
        "203.0.113.10",
        "203.0.113.11",
        "203.0.113.12",
        "203.0.113.13",
        "2001:db8::11",
    ] {
        addresses.push(a.to_owned());
    }
    let peer = ip("198.51.100.1");
    let mut rng = Rng(0xf10_0002);
    let mut flows = Vec::new();
    let mut at = datetime!(2026-10-31 22:00 UTC);
    while at < datetime!(2026-11-04 02:00 UTC) {
        for address in &addresses {
            let guest = ip(address);
            let jitter = Duration::seconds(rng.below(900) as i64);
            let flow = |src, dst, sz: &str, dz: &str, bytes| Flow {
                time: at + jitter,
                ipsource: src,
                ipdestination: dst,
                sourcezone: sz.to_owned(),
                destinationzone: dz.to_owned(),
                bytes,
            };
            if address != "203.0.113.12" {
                flows.push(flow(
                    guest,
                    peer,
                    "CLOUD",
                    "EXTERNAL",
                    1 + rng.below(50_000),
                ));
                flows.push(flow(guest, peer, "CLOUD", "INTERNAL", 1 + rng.below(9_000)));
            }
            flows.push(flow(
                peer,
                guest,
                "EXTERNAL",
                "CLOUD",
                1 + rng.below(70_000),
            ));
        }
        at += Duration::minutes(15);
    }
    flows
}

fn emulator() -> Emulator {
    let history = FlowHistory::new(usage_model::Grid::MINUTELY, flows()).unwrap();
    Emulator::start_in_background(
        "127.0.0.1:0".parse().unwrap(),
        history,
        EmulatorOptions::new(),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------
// Running the binary and reading its database
// ---------------------------------------------------------------------------

/// A temporary directory with an events file, and an emulator.
struct Setup {
    dir: tempfile::TempDir,
    events: PathBuf,
    emulator: Emulator,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_events(&events())
    }

    fn with_events(events: &[IpEvent]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        write_events(&mut file, events).unwrap();
        Setup {
            dir,
            events: path,
            emulator: emulator(),
        }
    }

    fn db(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `collect` command line for `db` up to `until`.
    fn collect_command(&self, db: &Path, until: &str, extra: &[&str]) -> Command {
        self.collect_command_for(ZONE, db, until, extra)
    }

    fn collect_command_for(&self, zone: &str, db: &Path, until: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("collect")
            .arg("--monitor")
            .arg(self.emulator.url().as_str().trim_end_matches('/'))
            .arg("--events")
            .arg(&self.events)
            .arg("--db")
            .arg(db)
            .args(["--zone", zone, "--from", FROM, "--until", until])
            .args(["--granularity", "3600", "--timeout", "1s", "--retries", "1"])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }

    fn collect(&self, db: &Path, until: &str, extra: &[&str]) -> Output {
        self.collect_command(db, until, extra).output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// One table: its name and its rows, each row as typed text, sorted.
type Table = (String, Vec<Vec<String>>);

/// Every table of the database (and its schema version), every row, every
/// column — except `windows.collected_at` (the wall clock of the commit)
/// when `with_clock` is false. A missing file dumps as nothing.
fn dump(db: &Path, with_clock: bool) -> Vec<Table> {
    if !db.exists() {
        return Vec::new();
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    let mut tables = vec![("user_version".to_owned(), vec![vec![version.to_string()]])];
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for name in names {
        let mut statement = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
        let keep: Vec<usize> = statement
            .column_names()
            .iter()
            .enumerate()
            .filter(|(_, column)| with_clock || **column != "collected_at")
            .map(|(i, _)| i)
            .collect();
        let mut rows: Vec<Vec<String>> = statement
            .query_map([], |row| {
                Ok(keep
                    .iter()
                    .map(|&i| match row.get_ref(i).unwrap() {
                        ValueRef::Null => "NULL".to_owned(),
                        ValueRef::Integer(v) => format!("i:{v}"),
                        ValueRef::Real(v) => format!("r:{v}"),
                        ValueRef::Text(v) => format!("t:{}", String::from_utf8_lossy(v)),
                        ValueRef::Blob(v) => format!("b:{v:?}"),
                    })
                    .collect())
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        tables.push((name, rows));
    }
    tables
}

fn rows<'a>(tables: &'a [Table], name: &str) -> &'a [Vec<String>] {
    tables
        .iter()
        .find(|(table, _)| table == name)
        .map_or(&[][..], |(_, rows)| rows)
}

/// Explains the first difference between two dumps.
fn assert_same_db(got: &[Table], want: &[Table], context: &str) {
    if got == want {
        return;
    }
    let got_names: Vec<&String> = got.iter().map(|(n, _)| n).collect();
    let want_names: Vec<&String> = want.iter().map(|(n, _)| n).collect();
    assert_eq!(got_names, want_names, "{context}: tables differ");
    for ((name, got_rows), (_, want_rows)) in got.iter().zip(want) {
        if got_rows != want_rows {
            let missing: Vec<_> = want_rows
                .iter()
                .filter(|r| !got_rows.contains(r))
                .take(3)
                .collect();
            let extra: Vec<_> = got_rows
                .iter()
                .filter(|r| !want_rows.contains(r))
                .take(3)
                .collect();
            panic!(
                "{context}: table {name} differs: {} rows, expected {}; missing {missing:?}; unexpected {extra:?}",
                got_rows.len(),
                want_rows.len()
            );
        }
    }
}

fn checkpoint_of(tables: &[Table]) -> Vec<Vec<String>> {
    rows(tables, "checkpoints").to_vec()
}

/// A fault-free run of `collect` into a fresh database; its dump without clock.
fn reference(setup: &Setup, name: &str, until: &str, extra: &[&str]) -> Vec<Table> {
    let db = setup.db(name);
    let output = setup.collect(&db, until, extra);
    assert_success(&output);
    let tables = dump(&db, false);
    assert!(!rows(&tables, "usage_records").is_empty());
    assert!(!rows(&tables, "anomalies").is_empty());
    assert_eq!(rows(&tables, "checkpoints").len(), 1);
    tables
}

// ---------------------------------------------------------------------------
// Fault matrix
// ---------------------------------------------------------------------------

const DAY_ONE_END: &str = "2026-11-02T00:00:00Z";
const DAY_TWO_END: &str = "2026-11-03T00:00:00Z";
const DAY_THREE_END: &str = "2026-11-04T00:00:00Z";

/// What a fault must lead to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// All windows collected after retries.
    Recovered,
    /// An error exit naming the failure, nothing written.
    Refused(&'static str),
}

#[test]
fn every_fault_gives_all_records_or_an_unchanged_database() {
    let setup = Setup::new();
    let window = ["--max-window", "6h"];
    let want = reference(&setup, "reference.db", DAY_TWO_END, &window);

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
    for (i, (name, fault, times, expect)) in matrix.into_iter().enumerate() {
        // Day one collected without fault; day two hits the fault from its
        // first request on.
        let db = setup.db(&format!("fault-{i}.db"));
        assert_success(&setup.collect(&db, DAY_ONE_END, &window));
        let before = dump(&db, true);
        let faults = setup.emulator.faults();
        faults.set(fault, times).unwrap();
        let output = setup.collect(&db, DAY_TWO_END, &window);
        faults.clear();
        let stderr = text(&output.stderr);
        match expect {
            Expect::Recovered => {
                assert_success(&output);
                assert_same_db(&dump(&db, false), &want, name);
            }
            Expect::Refused(message) => {
                assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
                assert!(stderr.contains(message), "{name}: {stderr}");
                assert!(stderr.contains("stored nothing"), "{name}: {stderr}");
                let last = stderr.trim_end().lines().last().unwrap_or("");
                assert!(last.starts_with("error: "), "{name}: {stderr}");
                assert_same_db(&dump(&db, true), &before, name);
                assert_eq!(
                    checkpoint_of(&dump(&db, true)),
                    checkpoint_of(&before),
                    "{name}: the checkpoint moved"
                );
            }
        }
        // With the fault gone, collecting again gives the fault-free database.
        assert_success(&setup.collect(&db, DAY_TWO_END, &window));
        assert_same_db(&dump(&db, false), &want, &format!("{name}, then cleared"));
    }
}

#[test]
fn a_fault_after_some_windows_keeps_exactly_the_windows_before_it() {
    let setup = Setup::new();
    let window = ["--max-window", "6h"];
    let want = reference(&setup, "reference.db", DAY_TWO_END, &window);
    let db = setup.db("partial.db");
    // Every request takes 100 ms; once two have been answered, every request
    // not yet begun gets a garbage line: the third or fourth window fails.
    let faults = setup.emulator.faults();
    faults
        .set(Fault::Delay(StdDuration::from_millis(100)), Times::Always)
        .unwrap();
    let served = setup.emulator.requests_served();
    let output = std::thread::scope(|scope| {
        let run = scope.spawn(|| setup.collect(&db, DAY_TWO_END, &window));
        while setup.emulator.requests_served() < served + 2 && !run.is_finished() {
            std::thread::sleep(StdDuration::from_micros(200));
        }
        faults.set(Fault::GarbageLine, Times::Always).unwrap();
        run.join().unwrap()
    });
    faults.clear();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("malformed answer"), "{stderr}");
    // The committed windows are the reference's first ones, record for
    // record; nothing of the failed window or after it is stored.
    let got = dump(&db, false);
    let checkpoint = rows(&got, "checkpoints")[0][1].clone();
    assert!(
        ["t:2026-11-01T12:00:00Z", "t:2026-11-01T18:00:00Z"].contains(&checkpoint.as_str()),
        "{checkpoint}"
    );
    let before_checkpoint = |table: &str, end_column: usize| -> Vec<Vec<String>> {
        rows(&want, table)
            .iter()
            .filter(|row| row[end_column] <= checkpoint)
            .cloned()
            .collect()
    };
    // usage_records.end is column 5, windows.end column 2, anomalies.window_end column 3.
    assert_eq!(
        rows(&got, "usage_records"),
        before_checkpoint("usage_records", 5)
    );
    assert_eq!(rows(&got, "windows"), before_checkpoint("windows", 2));
    assert_eq!(rows(&got, "anomalies"), before_checkpoint("anomalies", 3));
    assert!(rows(&got, "usage_records").len() < rows(&want, "usage_records").len());
    assert_success(&setup.collect(&db, DAY_TWO_END, &window));
    assert_same_db(&dump(&db, false), &want, "after the fault was cleared");
}

// ---------------------------------------------------------------------------
// Crash consistency
// ---------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn sigkill_at_random_points_loses_and_doubles_nothing() {
    use std::os::unix::process::ExitStatusExt;
    const SIGKILL: i32 = 9;

    let setup = Setup::new();
    let window = ["--max-window", "1h"];
    let started = Instant::now();
    let want = reference(&setup, "reference.db", DAY_THREE_END, &window);
    // Kills land anywhere in a run: from start-up to the last commit.
    let run_micros = started.elapsed().as_micros() as u64 + 1;
    let final_checkpoint = checkpoint_of(&want);
    let deadline = Instant::now() + StdDuration::from_secs(60);
    let mut rng = Rng(0xdead_beef);
    let mut kills_mid_run = 0;
    let mut kills_between_windows = 0;
    let mut checkpoints_seen = BTreeSet::new();
    let mut rounds = 0;
    let mut round_db = setup.db("crash-0.db");
    while kills_mid_run < 60 && Instant::now() < deadline {
        let mut child: Child = setup
            .collect_command(&round_db, DAY_THREE_END, &window)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(StdDuration::from_micros(rng.below(run_micros)));
        let status = match child.try_wait().unwrap() {
            Some(status) => status,
            None => {
                child.kill().unwrap();
                child.wait().unwrap()
            }
        };
        if status.signal() == Some(SIGKILL) {
            kills_mid_run += 1;
            let checkpoint = checkpoint_of(&dump(&round_db, false));
            if !checkpoint.is_empty() && checkpoint != final_checkpoint {
                kills_between_windows += 1;
                checkpoints_seen.insert(checkpoint);
            }
            continue;
        }
        match status {
            status if status.success() => {
                // Caught up before the kill: this round's database is done.
                assert_same_db(
                    &dump(&round_db, false),
                    &want,
                    &format!("crash round {rounds}"),
                );
                rounds += 1;
                round_db = setup.db(&format!("crash-{rounds}.db"));
            }
            status => panic!("collect failed on its own: {status}"),
        }
    }
    eprintln!(
        "{kills_mid_run} runs killed mid-run, {kills_between_windows} after some windows \
         ({} distinct checkpoints); {rounds} rounds caught up between kills",
        checkpoints_seen.len()
    );
    assert!(
        kills_mid_run >= 50,
        "only {kills_mid_run} runs were killed mid-run"
    );
    assert!(
        kills_between_windows >= 10 && checkpoints_seen.len() >= 5,
        "too few kills after some windows: {kills_between_windows}, at {} checkpoints",
        checkpoints_seen.len()
    );
    // Restart until caught up.
    let mut restarts = 0;
    loop {
        let output = setup.collect(&round_db, DAY_THREE_END, &window);
        if output.status.success() {
            break;
        }
        restarts += 1;
        assert!(
            restarts < 5,
            "collect keeps failing: {}",
            text(&output.stderr)
        );
    }
    let output = setup.collect(&round_db, DAY_THREE_END, &window);
    assert_success(&output);
    assert!(
        text(&output.stderr).contains("caught up"),
        "{}",
        text(&output.stderr)
    );
    assert_same_db(&dump(&round_db, false), &want, "after the crash loop");
}

// ---------------------------------------------------------------------------
// Concurrent runs
// ---------------------------------------------------------------------------

#[test]
fn concurrent_runs_on_one_database_never_double_bill() {
    let setup = Setup::new();
    let window = ["--max-window", "2h"];
    let want = reference(&setup, "reference.db", DAY_TWO_END, &window);
    for round in 0..4 {
        let db = setup.db(&format!("concurrent-{round}.db"));
        let children: Vec<Child> = (0..2)
            .map(|_| {
                setup
                    .collect_command(&db, DAY_TWO_END, &window)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect();
        for output in &outputs {
            eprintln!(
                "round {round}: exit {:?}: {}",
                output.status.code(),
                text(&output.stderr).trim_end().lines().last().unwrap_or("")
            );
            if !output.status.success() {
                let stderr = text(&output.stderr);
                assert_eq!(output.status.code(), Some(1), "{stderr}");
                assert!(
                    stderr.contains("checkpoint") && stderr.contains("moved"),
                    "an unclear failure: {stderr}"
                );
            }
        }
        // The first commit always succeeds, and its run then goes on alone.
        assert!(
            outputs.iter().any(|o| o.status.success()),
            "round {round}: both failed"
        );
        // Whatever happened, the data is consistent: every committed window
        // is the reference's, and a later run completes it.
        let got = dump(&db, false);
        let checkpoint = rows(&got, "checkpoints")[0][1].clone();
        let records = rows(&got, "usage_records");
        let want_so_far: Vec<Vec<String>> = rows(&want, "usage_records")
            .iter()
            .filter(|row| row[5] <= checkpoint)
            .cloned()
            .collect();
        assert_eq!(records, want_so_far.as_slice(), "round {round}");
        assert_success(&setup.collect(&db, DAY_TWO_END, &window));
        assert_same_db(
            &dump(&db, false),
            &want,
            &format!("concurrent round {round}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

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
    let db = setup.db("injected.db");
    let output = setup
        .collect_command_for(zone, &db, DAY_ONE_END, &["--max-window", "12h"])
        .output()
        .unwrap();
    assert_success(&output);
    let tables = dump(&db, false);
    let accounts: BTreeSet<String> = rows(&tables, "usage_records")
        .iter()
        .map(|row| row[2].clone())
        .collect();
    let zones: BTreeSet<String> = rows(&tables, "usage_records")
        .iter()
        .map(|row| row[1].clone())
        .collect();
    assert_eq!(zones, BTreeSet::from([format!("t:{zone}")]));
    assert!(accounts.len() >= 3, "{accounts:?}");
    assert!(
        accounts
            .iter()
            .all(|a| INJECTIONS.iter().any(|i| *a == format!("t:{i}")))
    );
}

#[test]
fn hostile_zone_names_on_the_command_line_are_refused() {
    for flag in ["--include-zones", "--exclude-zones"] {
        for hostile in INJECTIONS {
            let output = Command::new(BIN)
                .args(["plan", "--events", "events.jsonl", "--zone", ZONE])
                .args(["--from", FROM, "--until", DAY_ONE_END])
                .arg(format!("{flag}={hostile}"))
                .env_remove("RUST_LOG")
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
        let output = Command::new(BIN)
            .args([
                "collect",
                "--monitor",
                "http://127.0.0.1:9",
                "--events",
                "e.jsonl",
            ])
            .args(["--db", "never-created.db", "--zone", ZONE])
            .arg(format!("{flag}={value}"))
            .env_remove("RUST_LOG")
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
    let history = FlowHistory::new(usage_model::Grid::MINUTELY, flows()).unwrap();
    let emulator = Emulator::start_in_background(
        "127.0.0.1:0".parse().unwrap(),
        history,
        EmulatorOptions::new().basic_auth("billing", "the-right-one"),
    )
    .unwrap();
    let db = dir.path().join("usage.db");
    let run = |password: &str, log: &str| {
        Command::new(BIN)
            .args([
                "collect",
                "--monitor",
                emulator.url().as_str().trim_end_matches('/'),
            ])
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
}

// ---------------------------------------------------------------------------
// Bounds
// ---------------------------------------------------------------------------

/// Two million event lines, made one at a time as they are read.
struct GeneratedLog {
    lines: u64,
    produced: u64,
    pending: Vec<u8>,
    offset: usize,
    bytes_served: Arc<AtomicU64>,
}

impl Read for GeneratedLog {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offset == self.pending.len() {
            if self.produced == self.lines {
                return Ok(0);
            }
            let n = self.produced;
            let kind = if n.is_multiple_of(2) {
                "NET.IPASSIGN"
            } else {
                "NET.IPRELEASE"
            };
            self.pending = format!(
                "{{\"id\":{},\"type\":\"{kind}\",\"at\":\"2026-11-01T{:02}:{:02}:00Z\",\"zone\":\"zone-1\",\"account\":\"acct-{}\",\"ip\":\"10.{}.{}.{}\"}}\n",
                n + 1,
                (n / 60) % 24,
                n % 60,
                n % 97,
                (n >> 16) & 0xff,
                (n >> 8) & 0xff,
                n & 0xff
            )
            .into_bytes();
            self.offset = 0;
            self.produced += 1;
        }
        let count = buf.len().min(self.pending.len() - self.offset);
        buf[..count].copy_from_slice(&self.pending[self.offset..self.offset + count]);
        self.offset += count;
        self.bytes_served.fetch_add(count as u64, Ordering::Relaxed);
        Ok(count)
    }
}

#[test]
fn millions_of_event_lines_stream_in_bounded_memory() {
    const LINES: u64 = 2_000_000;
    const BUFFER: usize = 8 * 1024;
    let served = Arc::new(AtomicU64::new(0));
    let log = GeneratedLog {
        lines: LINES,
        produced: 0,
        pending: Vec::new(),
        offset: 0,
        bytes_served: Arc::clone(&served),
    };
    let mut assigns = 0u64;
    let mut count = 0u64;
    let mut longest_line = 0u64;
    let mut previous_served = 0;
    for event in EventReader::new(BufReader::with_capacity(BUFFER, log)) {
        let event = event.unwrap();
        count += 1;
        assigns += u64::from(event.kind == IpEventKind::Assign);
        // The reader is never more than one buffer ahead of the events it
        // handed out: nothing is accumulated.
        let now = served.load(Ordering::Relaxed);
        longest_line = longest_line.max(now - previous_served);
        previous_served = now;
        if count.is_multiple_of(100_000) {
            assert_eq!(event.id, count);
        }
    }
    assert_eq!(count, LINES);
    assert_eq!(assigns, LINES / 2);
    assert!(
        longest_line <= BUFFER as u64,
        "read {longest_line} bytes for one event"
    );
}
