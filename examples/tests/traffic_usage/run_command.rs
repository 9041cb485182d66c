//! `traffic-usage run` through the built binary: a pass over two zones with
//! one monitor failing, a background collector billing new windows as time
//! moves, its metrics against the store, a stop by SIGTERM, and a changed
//! setting refused.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use traffic_sentinel_emulator::{Emulator, EmulatorOptions, Fault, FlowHistory, Times, read_flows};
use usage_model::Grid;

const BIN: &str = env!("CARGO_BIN_EXE_traffic-usage");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// An emulator over `flows` (rows without the header) on a minute grid.
fn emulator(flows: &[&str]) -> Emulator {
    let csv = format!(
        "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n{}\n",
        flows.join("\n")
    );
    let history = FlowHistory::new(Grid::MINUTELY, read_flows(csv.as_bytes()).unwrap()).unwrap();
    Emulator::start_in_background(
        "127.0.0.1:0".parse().unwrap(),
        history,
        EmulatorOptions::new(),
    )
    .unwrap()
}

fn event(id: u64, at: &str, zone: &str, account: &str, ip: &str) -> String {
    format!(
        r#"{{"id":{id},"type":"NET.IPASSIGN","at":"{at}","zone":"{zone}","account":"{account}","ip":"{ip}"}}"#
    )
}

/// A configuration of zones `(zone, url)`, all from 2026-11-01, lag 0.
fn config(dir: &Path, interval: &str, granularity: &str, zones: &[(&str, String)]) -> String {
    let mut text = format!(
        "db = {:?}\nevents = {:?}\ninterval = {interval:?}\nlag = \"0\"\n",
        dir.join("usage.sqlite").to_str().unwrap(),
        dir.join("events.jsonl").to_str().unwrap(),
    );
    for (zone, url) in zones {
        text.push_str(&format!(
            "\n[[monitor]]\nzone = {zone:?}\nurl = {url:?}\ngranularity = {granularity:?}\nfrom = \"2026-11-01T00:00:00Z\"\nretries = 0\n"
        ));
    }
    let path = dir.join("run.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn report(dir: &Path) -> String {
    let db = dir.join("usage.sqlite");
    let output = run(&["report", "--db", db.to_str().unwrap(), "--format", "csv"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn once_bills_the_healthy_zone_and_exits_1_when_another_fails() {
    let dir = tempfile::tempdir().unwrap();
    let flows = [
        "2026-11-01T01:00:00Z,192.0.2.7,198.51.100.1,,EXTERNAL,100",
        "2026-11-01T01:00:00Z,192.0.2.8,198.51.100.1,,EXTERNAL,50",
    ];
    let (good, bad) = (emulator(&flows), emulator(&flows));
    bad.faults()
        .set(Fault::HttpStatus(500), Times::Always)
        .unwrap();
    std::fs::write(
        dir.path().join("events.jsonl"),
        [
            event(1, "2026-11-01T00:00:00Z", "z1", "a", "192.0.2.7"),
            event(2, "2026-11-01T00:00:00Z", "z2", "b", "192.0.2.8"),
        ]
        .join("\n"),
    )
    .unwrap();
    let config = config(
        dir.path(),
        "1h",
        "1h",
        &[
            ("z1", good.url().to_string()),
            ("z2", bad.url().to_string()),
        ],
    );
    let output = run(&["run", "--config", &config, "--once"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("zone z2"), "{stderr}");
    assert_eq!(
        report(dir.path()),
        "zone,account,bytes_sent,bytes_received\nz1,a,100,0\n"
    );

    // A changed setting for the billed zone is refused, naming it.
    let changed_path = dir.path().join("changed.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("granularity = \"1h\"", "granularity = \"1m\"");
    std::fs::write(&changed_path, text).unwrap();
    let output = run(&["run", "--config", changed_path.to_str().unwrap(), "--once"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("granularity") && stderr.contains("\"3600\"") && stderr.contains("\"60\""),
        "{stderr}"
    );
}

/// Reads `/metrics` at `addr`.
fn scrape(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn a_background_collector_bills_new_windows_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Traffic in every minute of the last hour, so each pass has something
    // to bill.
    let now = time::OffsetDateTime::now_utc();
    let flows: Vec<String> = (1..60)
        .map(|minutes| {
            let at = now - time::Duration::minutes(minutes);
            format!(
                "{},192.0.2.7,198.51.100.1,,EXTERNAL,10",
                at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            )
        })
        .collect();
    let flow_refs: Vec<&str> = flows.iter().map(String::as_str).collect();
    let emulator = emulator(&flow_refs);
    std::fs::write(
        dir.path().join("events.jsonl"),
        event(1, "2026-11-01T00:00:00Z", "z1", "a", "192.0.2.7") + "\n",
    )
    .unwrap();
    let config = config(
        dir.path(),
        "2s",
        "1m",
        &[("z1", emulator.url().to_string())],
    );
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--config",
            &config,
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap()
        .to_owned();
    // Wait for a pass to bill, then for the metrics to say so.
    let deadline = Instant::now() + Duration::from_secs(60);
    let billed = loop {
        let metrics = scrape(&addr);
        let sent = metrics
            .lines()
            .find(|l| l.starts_with("traffic_usage_bytes_billed_total{") && l.contains("sent"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if sent > 0 || Instant::now() > deadline {
            break sent;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(billed > 0, "nothing billed within a minute");
    // The metrics equal the store's report at a quiet moment: stop first.
    let pid = child.id().to_string();
    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let report = report(dir.path());
    let stored: u64 = report
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(stored >= billed, "stored {stored}, metrics said {billed}");
}

#[test]
fn config_errors_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "db = \"u.sqlite\"\nevents = \"e.jsonl\"\nintervall = \"1h\"\n",
    )
    .unwrap();
    let output = run(&["run", "--config", path.to_str().unwrap(), "--once"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 3") && stderr.contains("intervall"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
