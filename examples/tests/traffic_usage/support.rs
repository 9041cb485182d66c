//! What the tests share: running the built binary, scratch directories, an
//! in-process Traffic Sentinel emulator, a small deterministic random
//! stream, and a store's contents as the binary itself reports them.
//!
//! The store engine matrix is in [`stores`].

pub(crate) mod stores;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use traffic_sentinel_emulator::{Emulator, EmulatorOptions, Flow, FlowHistory, read_flows};

pub(crate) use stores::{Engine, TestStore, engines};

/// The built `traffic-usage` binary.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_traffic-usage");

/// The binary, with no `RUST_LOG` from the environment and no standard input.
pub(crate) fn binary() -> Command {
    let mut command = Command::new(BIN);
    command.env_remove("RUST_LOG").stdin(Stdio::null());
    command
}

/// Runs the binary with `args` to its end.
pub(crate) fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

/// Bytes as text, invalid UTF-8 replaced.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output, which must be UTF-8.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("standard output is UTF-8")
}

/// Standard error, which must be UTF-8.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("standard error is UTF-8")
}

/// Exit status 0, or a panic showing both streams.
#[track_caller]
pub(crate) fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Exit status 2, and one line on standard error, an `error:` line holding
/// `needle`; nothing on standard output.
#[track_caller]
pub(crate) fn assert_refused(output: &Output, needle: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    // One line on standard error, the error (DESIGN §9).
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(needle), "{needle:?} not in: {stderr}");
    assert!(output.stdout.is_empty());
}

/// One line of an events file.
pub(crate) fn event(id: u64, kind: &str, at: &str, zone: &str, account: &str, ip: &str) -> String {
    format!(
        r#"{{"id":{id},"type":"NET.IP{kind}","at":"{at}","zone":"{zone}","account":"{account}","ip":"{ip}"}}"#
    )
}

/// A scratch directory, removed when dropped.
pub(crate) struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// `name` in the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `name` in the directory, as a command-line argument.
    pub(crate) fn arg(&self, name: &str) -> String {
        self.path(name).to_str().expect("a UTF-8 path").to_owned()
    }

    /// Writes `contents` to `name`; returns it as an argument.
    pub(crate) fn write(&self, name: &str, contents: &str) -> String {
        std::fs::write(self.path(name), contents).expect("the scratch file is written");
        self.arg(name)
    }
}

/// An emulator on a free loopback port serving `flows` in minute buckets.
pub(crate) fn emulator(flows: Vec<Flow>) -> Emulator {
    emulator_with(flows, EmulatorOptions::new())
}

/// As [`emulator`], with `options`.
pub(crate) fn emulator_with(flows: Vec<Flow>, options: EmulatorOptions) -> Emulator {
    let history = FlowHistory::new(usage_model::Grid::MINUTELY, flows).expect("a flow history");
    Emulator::start_in_background("127.0.0.1:0".parse().expect("an address"), history, options)
        .expect("the emulator starts")
}

/// An emulator over a flows CSV (with its header line).
pub(crate) fn emulator_over_csv(csv: &str) -> Emulator {
    emulator(read_flows(csv.as_bytes()).expect("a valid flows CSV"))
}

/// The URL of `emulator` as `--monitor` takes it.
pub(crate) fn monitor(emulator: &Emulator) -> String {
    emulator.url().as_str().trim_end_matches('/').to_owned()
}

/// A small deterministic random stream (xorshift64*).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------
// A store's contents, through the binary's read-only commands
// ---------------------------------------------------------------------------

/// `report --db TARGET ARGS…`, which must succeed; its standard output.
#[track_caller]
pub(crate) fn report(target: &str, args: &[&str]) -> String {
    let output = run(&[&["report", "--db", target][..], args].concat());
    assert_success(&output);
    stdout(&output)
}

/// `status --db TARGET --format json`, parsed.
#[track_caller]
pub(crate) fn status(target: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let output = run(&["status", "--db", target, "--format", "json"]);
    assert_success(&output);
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("status --format json is a JSON array");
    rows.into_iter()
        .map(|row| match row {
            serde_json::Value::Object(fields) => fields,
            other => panic!("a status row that is not an object: {other}"),
        })
        .collect()
}

/// The stored checkpoint of `zone`, as `status` shows it; `None` when the
/// zone has none, or the store is not there yet: no SQLite file, or an
/// empty one (a `collect` killed at its start), or no schema on a server.
pub(crate) fn checkpoint(target: &str, zone: &str) -> Option<String> {
    let output = run(&["status", "--db", target, "--format", "json"]);
    if output.status.code() == Some(2) {
        let stderr = text(&output.stderr);
        assert!(
            [
                "does not exist",
                "the file is empty",
                "holds no usage schema"
            ]
            .iter()
            .any(|reason| stderr.contains(reason)),
            "{stderr}"
        );
        return None;
    }
    assert_success(&output);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    rows.iter().find(|row| row["zone"] == zone).map(|row| {
        row["checkpoint"]
            .as_str()
            .expect("a text checkpoint")
            .to_owned()
    })
}

/// What a store holds, as the binary reports it: every record (`report --by
/// ip`), every anomaly, every adjustment (CSV) and the status of every zone
/// (JSON). Two stores with equal contents bill the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Contents {
    pub(crate) records: String,
    pub(crate) anomalies: String,
    pub(crate) adjustments: String,
    pub(crate) status: String,
}

impl Contents {
    /// The contents of the store `target`.
    #[track_caller]
    pub(crate) fn of(target: &str) -> Contents {
        let csv = |by: &str| report(target, &["--by", by, "--format", "csv"]);
        let status = status(target);
        Contents {
            records: csv("ip"),
            anomalies: csv("anomaly"),
            adjustments: csv("adjustment"),
            status: serde_json::to_string_pretty(&status).expect("JSON"),
        }
    }

    /// Without the wall-clock times of commits and restatements
    /// (`last_collected_at`, `restated_at`), for comparing runs made at
    /// different times.
    pub(crate) fn without_clock(&self) -> Contents {
        let mut status: Vec<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_str(&self.status).expect("JSON");
        for row in &mut status {
            assert!(row.remove("last_collected_at").is_some(), "{row:?}");
        }
        Contents {
            records: self.records.clone(),
            anomalies: self.anomalies.clone(),
            adjustments: without_column(&self.adjustments, "restated_at"),
            status: serde_json::to_string_pretty(&status).expect("JSON"),
        }
    }
}

/// `csv` without its column `name` (whose cells hold no comma or quote).
fn without_column(csv: &str, name: &str) -> String {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let index = header
        .iter()
        .position(|column| *column == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    let mut out = String::new();
    for line in csv.lines() {
        let mut cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), header.len(), "a quoted cell in {line:?}");
        cells.remove(index);
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Explains the first difference between two stores' contents: the lines
/// one has and the other lacks.
#[track_caller]
pub(crate) fn assert_same(got: &Contents, want: &Contents, context: &str) {
    for (what, got, want) in [
        ("records", &got.records, &want.records),
        ("anomalies", &got.anomalies, &want.anomalies),
        ("adjustments", &got.adjustments, &want.adjustments),
        ("status", &got.status, &want.status),
    ] {
        if got == want {
            continue;
        }
        let missing: Vec<&str> = want
            .lines()
            .filter(|line| !got.lines().any(|l| l == *line))
            .take(3)
            .collect();
        let unexpected: Vec<&str> = got
            .lines()
            .filter(|line| !want.lines().any(|l| l == *line))
            .take(3)
            .collect();
        panic!(
            "{context}: {what} differ: {} line(s), expected {}; missing {missing:?}; unexpected {unexpected:?}\ngot:\n{got}\nwant:\n{want}",
            got.lines().count(),
            want.lines().count()
        );
    }
}

/// The header and the rows of a report CSV whose column `column` (an
/// instant, before any cell that may hold a comma) is at or before `at`.
pub(crate) fn rows_ending_by(csv: &str, column: usize, at: &str) -> String {
    let mut out = String::new();
    for (number, line) in csv.lines().enumerate() {
        let cell = line.splitn(column + 2, ',').nth(column).unwrap_or_default();
        if number == 0 || cell <= at {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Waits until the wall clock is in a later second than now: a store that
/// rewrites a time stamp afterwards shows a different one.
pub(crate) fn sleep_into_the_next_second() {
    let now = time::OffsetDateTime::now_utc();
    let left = 1_000_000_000 - u64::from(now.nanosecond()) + 1_000_000;
    std::thread::sleep(std::time::Duration::from_nanos(left));
}
