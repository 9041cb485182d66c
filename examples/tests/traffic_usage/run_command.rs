//! `traffic-usage run` through the built binary: a pass over two zones with
//! one monitor failing, a background collector billing new windows as time
//! moves and following events appended to its log, its metrics against the
//! store, a stop by SIGTERM (also while Traffic Sentinel is slow to answer),
//! and a changed setting refused.

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

/// Flows of two guests: 192.0.2.7 sends 100 bytes, 192.0.2.8 50, in the
/// hour from 01:00 on 2026-11-01.
const TWO_ZONES_FLOWS: [&str; 2] = [
    "2026-11-01T01:00:00Z,192.0.2.7,198.51.100.1,,EXTERNAL,100",
    "2026-11-01T01:00:00Z,192.0.2.8,198.51.100.1,,EXTERNAL,50",
];

/// `events.jsonl` in `dir`: 192.0.2.7 to account `a` in zone `z1`,
/// 192.0.2.8 to `b` in `z2`, from 2026-11-01.
fn write_two_zones_events(dir: &Path) {
    std::fs::write(
        dir.join("events.jsonl"),
        [
            event(1, "2026-11-01T00:00:00Z", "z1", "a", "192.0.2.7"),
            event(2, "2026-11-01T00:00:00Z", "z2", "b", "192.0.2.8"),
        ]
        .join("\n"),
    )
    .unwrap();
}

#[test]
fn once_bills_the_healthy_zone_and_exits_1_when_another_fails() {
    let dir = tempfile::tempdir().unwrap();
    let flows = TWO_ZONES_FLOWS;
    let (good, bad) = (emulator(&flows), emulator(&flows));
    bad.faults()
        .set(Fault::HttpStatus(500), Times::Always)
        .unwrap();
    write_two_zones_events(dir.path());
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

/// `run --config CONFIG --metrics-listen 127.0.0.1:0` in the background,
/// and the address its metrics are served on (its first line of output).
fn run_with_metrics(config: &str, stderr: Stdio) -> (std::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["run", "--config", config])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap()
        .to_owned();
    (child, addr)
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
fn config_errors_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let top = "db = \"u.sqlite\"\nevents = \"e.jsonl\"\n";
    let monitor =
        |zone: &str, url: &str| format!("[[monitor]]\nzone = \"{zone}\"\nurl = \"{url}\"\n");
    // (what is wrong, the file, the line and key the message must name)
    let cases = [
        (
            "unknown key",
            format!("{top}intervall = \"1h\"\n{}", monitor("z", "http://ts")),
            "line 3",
            "intervall",
        ),
        (
            "bad duration",
            format!("{top}interval = \"5x\"\n{}", monitor("z", "http://ts")),
            "line 3",
            "interval",
        ),
        (
            "bad URL",
            format!("{top}{}", monitor("z", "ftp://ts")),
            "line 5",
            "url",
        ),
        (
            "duplicate zone",
            format!(
                "{top}{}{}",
                monitor("z", "http://a"),
                monitor("z", "http://b")
            ),
            "line 7",
            "zone",
        ),
    ];
    for (what, text, line, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let output = run(&["run", "--config", path.to_str().unwrap(), "--once"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains("bad.toml")
                && stderr.contains(line)
                && stderr.contains(&format!("\"{key}\"")),
            "{what}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    }
}

/// [`terminate`], then what `child` wrote on its piped standard error.
fn terminate_with_stderr(child: &mut std::process::Child) -> String {
    terminate(child);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

/// Sends SIGTERM to `child` and waits for it: exit status 0 within 10 s.
fn terminate(child: &mut std::process::Child) {
    let started = Instant::now();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped after {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(0));
}

/// SIGTERM while Traffic Sentinel is slow to answer the first window: the
/// process stops within 10 s with status 0, the window stores nothing, and
/// a later pass bills everything once.
#[test]
fn sigterm_during_a_slow_window_stores_nothing_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator(&[
        "2026-11-01T01:00:00Z,192.0.2.7,198.51.100.1,,EXTERNAL,100",
        "2026-11-02T05:00:00Z,198.51.100.1,192.0.2.7,EXTERNAL,,40",
    ]);
    // The first request waits a minute; taking it clears the fault, which
    // tells the test that the window is in flight.
    emulator
        .faults()
        .set(Fault::Delay(Duration::from_secs(60)), Times::Next(1))
        .unwrap();
    std::fs::write(
        dir.path().join("events.jsonl"),
        event(1, "2026-11-01T00:00:00Z", "z1", "a", "192.0.2.7") + "\n",
    )
    .unwrap();
    let config = config(
        dir.path(),
        "1h",
        "1h",
        &[("z1", emulator.url().to_string())],
    );
    let mut child = Command::new(BIN)
        .args(["run", "--config", &config])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !emulator.faults().active().is_empty() {
        assert!(Instant::now() < deadline, "no request within a minute");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(emulator.requests_served(), 0, "the first answer is delayed");
    terminate(&mut child);

    // Nothing was committed: no zone has a checkpoint, no record is stored.
    let db = dir.path().join("usage.sqlite");
    let db = db.to_str().unwrap();
    let status = run(&["status", "--db", db, "--format", "json"]);
    assert!(status.status.success());
    let zones: Vec<serde_json::Value> = serde_json::from_slice(&status.stdout).unwrap();
    assert!(zones.is_empty(), "{zones:?}");
    assert_eq!(
        report(dir.path()),
        "zone,account,bytes_sent,bytes_received\n"
    );

    // The next pass bills the whole history, once.
    let output = run(&["run", "--config", &config, "--once"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        report(dir.path()),
        "zone,account,bytes_sent,bytes_received\nz1,a,100,40\n"
    );
}

/// One scrape of the figures the test compares with the store: windows
/// committed, bytes sent billed and the checkpoint of zone `z1`.
fn scraped_figures(addr: &str) -> Option<(u64, u64, i64)> {
    let metrics = scrape(addr);
    let value = |prefix: &str, extra: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains("zone=\"z1\"") && l.contains(extra))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    Some((
        value("traffic_usage_windows_total{", "")?.parse().ok()?,
        value("traffic_usage_bytes_billed_total{", "sent")?
            .parse()
            .ok()?,
        value("traffic_usage_checkpoint_timestamp_seconds{", "")?
            .parse::<f64>()
            .ok()? as i64,
    ))
}

/// The same figures read from the store: windows, bytes sent and the
/// checkpoint of zone `z1` (`None` before its first window).
fn stored_figures(dir: &Path) -> Option<(u64, u64, i64)> {
    let db = dir.join("usage.sqlite");
    let status = run(&["status", "--db", db.to_str().unwrap(), "--format", "json"]);
    assert!(status.status.success());
    let zones: Vec<serde_json::Value> = serde_json::from_slice(&status.stdout).unwrap();
    let zone = zones.iter().find(|z| z["zone"] == "z1")?;
    let checkpoint = time::OffsetDateTime::parse(
        zone["checkpoint"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let sent: u64 = report(dir)
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    Some((
        zone["windows"].as_u64().unwrap(),
        sent,
        checkpoint.unix_timestamp(),
    ))
}

/// A background `run` on a 2 s grid while the test appends a handover to
/// the events file: windows before the handover bill the first owner,
/// windows after it the second, no late event is raised, and at a quiet
/// moment `/metrics` says what the store holds.
#[test]
fn a_background_collector_follows_appended_events_and_its_metrics_match_the_store() {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    let dir = tempfile::tempdir().unwrap();
    let grid = 2;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let from = now - now.rem_euclid(grid) - 60;
    // 10 bytes sent by the address in every 2 s bucket from `from` to half
    // a minute ahead.
    let flows: Vec<String> = (0..48)
        .map(|n| {
            let at = OffsetDateTime::from_unix_timestamp(from + n * grid).unwrap();
            format!(
                "{},192.0.2.7,198.51.100.1,,EXTERNAL,10",
                at.format(&Rfc3339).unwrap()
            )
        })
        .collect();
    let csv = format!(
        "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n{}\n",
        flows.join("\n")
    );
    let history = FlowHistory::new(
        Grid::from_seconds(grid as u64).unwrap(),
        read_flows(csv.as_bytes()).unwrap(),
    )
    .unwrap();
    let emulator = Emulator::start_in_background(
        "127.0.0.1:0".parse().unwrap(),
        history,
        EmulatorOptions::new(),
    )
    .unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        event(1, "2026-11-01T00:00:00Z", "z1", "a", "192.0.2.7") + "\n",
    )
    .unwrap();
    let from_text = OffsetDateTime::from_unix_timestamp(from)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "db = {:?}\nevents = {:?}\ninterval = \"1s\"\nlag = \"0\"\n\n[[monitor]]\nzone = \"z1\"\n\
             url = \"{}\"\ngranularity = \"2s\"\nfrom = \"{from_text}\"\nretries = 0\n",
            dir.path().join("usage.sqlite").to_str().unwrap(),
            events.to_str().unwrap(),
            emulator.url()
        ),
    )
    .unwrap();
    let (mut child, addr) = run_with_metrics(config.to_str().unwrap(), Stdio::piped());
    let wait_for_checkpoint = |at: i64| {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if scraped_figures(&addr).is_some_and(|(_, _, checkpoint)| checkpoint >= at) {
                return;
            }
            assert!(Instant::now() < deadline, "checkpoint never reached {at}");
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait_for_checkpoint(from + grid);

    // A handover two buckets after the next bucket boundary, ahead of the
    // checkpoint.
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let handover = now - now.rem_euclid(grid) + 3 * grid;
    let at = OffsetDateTime::from_unix_timestamp(handover)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&events)
        .unwrap();
    writeln!(
        file,
        r#"{{"id":2,"type":"NET.IPRELEASE","at":"{at}","zone":"z1","account":"a","ip":"192.0.2.7"}}"#
    )
    .unwrap();
    writeln!(file, "{}", event(3, &at, "z1", "b", "192.0.2.7")).unwrap();
    drop(file);
    let end = handover + 4 * grid;
    wait_for_checkpoint(end);

    // At a quiet moment (the same figures before and after reading the
    // store), the metrics equal the store.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = scraped_figures(&addr);
        let stored = stored_figures(dir.path());
        let after = scraped_figures(&addr);
        if before.is_some() && before == after && stored == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics {before:?} / {after:?}, store {stored:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stderr = terminate_with_stderr(&mut child);
    assert!(!stderr.contains("late-event"), "{stderr}");

    // Before the handover, `a`; from it to the checkpoint, `b`: 10 bytes a
    // bucket.
    let (_, _, checkpoint) = stored_figures(dir.path()).unwrap();
    let report = report(dir.path());
    let a = (handover - from) / grid * 10;
    let b = (checkpoint.min(from + 48 * grid) - handover) / grid * 10;
    assert_eq!(
        report,
        format!("zone,account,bytes_sent,bytes_received\nz1,a,{a},0\nz1,b,{b},0\n")
    );
}

/// Monitors whose windows go to CloudStack (`cloudstack_host_id`) while
/// the store is not on CloudStack's MySQL server are refused before any
/// pass, in one line with exit status 2: a SQLite store, and a store on
/// another MySQL server than the events. Nothing is connected to, nothing
/// created.
#[test]
fn posting_to_cloudstack_without_its_server_is_refused_before_any_pass() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("usage.sqlite");
    let sqlite = sqlite.to_str().unwrap();
    // No server listens on port 1: a connection attempt would fail, not
    // refuse.
    let cloud = "mysql://root@127.0.0.1:1/cloud";
    let cases = [
        (
            sqlite,
            "e.jsonl",
            "url = \"http://ts:8080\"\ncloudstack_host_id = 5",
            "cloudstack_host_id",
        ),
        (
            "mysql://root@127.0.0.1:2/traffic_usage",
            cloud,
            "url = \"http://ts:8080\"\ncloudstack_host_id = 5",
            "same MySQL server",
        ),
        // The registered monitor's host id is the default (DESIGN §11).
        (
            sqlite,
            cloud,
            "url = \"cloudstack\"",
            "default --cloudstack-host-id",
        ),
        // A zone that is not CloudStack's numeric zone id cannot be posted.
        (
            "mysql://root@127.0.0.1:1/traffic_usage",
            "e.jsonl",
            "zone = \"z1\"\nurl = \"http://ts:8080\"\ncloudstack_host_id = 5",
            "zone z1: --cloudstack-host-id posts to CloudStack's user_statistics in the \
             window's transaction, so the zone must be CloudStack's numeric zone id, not \"z1\"",
        ),
    ];
    for (db, events, monitor, needle) in cases {
        let path = dir.path().join("run.toml");
        let zone = if monitor.starts_with("zone") {
            ""
        } else {
            "zone = \"1\"\n"
        };
        std::fs::write(
            &path,
            format!("db = {db:?}\nevents = {events:?}\n\n[[monitor]]\n{zone}{monitor}\n"),
        )
        .unwrap();
        let output = run(&["run", "--config", path.to_str().unwrap(), "--once"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!dir.path().join("usage.sqlite").exists());
    }
}

/// A setting of a billed zone changed in the file while `run` runs (DESIGN
/// §12): that zone is refused at each pass (logged, counted as a failure)
/// and the other zones go on; the collector keeps running.
#[test]
fn a_setting_edited_while_running_refuses_that_zone_only() {
    let dir = tempfile::tempdir().unwrap();
    let flows = TWO_ZONES_FLOWS;
    let ts = emulator(&flows);
    write_two_zones_events(dir.path());
    let url = ts.url().to_string();
    let config = config(dir.path(), "1s", "1h", &[("z1", url.clone()), ("z2", url)]);
    let (mut child, addr) = run_with_metrics(&config, Stdio::piped());
    let figure = |name: &str, zone: &str| -> Option<u64> {
        scrape(&addr)
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("zone=\"{zone}\"")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while figure("traffic_usage_windows_total{", "z1").unwrap_or(0) == 0
        || figure("traffic_usage_windows_total{", "z2").unwrap_or(0) == 0
    {
        assert!(Instant::now() < deadline, "no window billed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // z1 on another grid from now on: refused, the collector goes on.
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "granularity = \"1h\"",
        "granularity = \"1m\"",
        1,
    );
    std::fs::write(&config, text).unwrap();
    while figure("traffic_usage_collect_failures_total{", "z1").unwrap_or(0) < 2 {
        assert!(Instant::now() < deadline, "z1 never refused");
        assert!(child.try_wait().unwrap().is_none(), "the collector stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        figure("traffic_usage_collect_failures_total{", "z2"),
        Some(0)
    );
    let stderr = terminate_with_stderr(&mut child);
    assert!(
        stderr.contains("zone z1 was billed with granularity = \"3600\", not \"60\"")
            && stderr.contains("retried next pass")
            && !stderr
                .lines()
                .any(|l| l.contains("ERROR") && l.contains("zone z2")),
        "{stderr}"
    );
    assert_eq!(
        report(dir.path()),
        "zone,account,bytes_sent,bytes_received\nz1,a,100,0\nz2,b,50,0\n"
    );
}

/// During a long catch-up the checkpoint metric is there, and follows
/// each committed window (DESIGN §12: per zone), not only the end of the
/// zone's pass.
#[test]
fn the_checkpoint_metric_follows_a_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let ts = emulator(&TWO_ZONES_FLOWS);
    // Each request waits: a pass of a month of daily windows takes seconds.
    ts.faults()
        .set(Fault::Delay(Duration::from_millis(300)), Times::Always)
        .unwrap();
    write_two_zones_events(dir.path());
    let config = config(dir.path(), "1h", "1h", &[("z1", ts.url().to_string())]);
    let (mut child, addr) = run_with_metrics(&config, Stdio::null());
    let from = 1_793_491_200_u64; // 2026-11-01T00:00:00Z
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no window committed");
        let metrics = scrape(&addr);
        let value = |name: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(name) && l.contains("zone=\"z1\""))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        };
        let windows = value("traffic_usage_windows_total{").unwrap_or(0.0) as u64;
        if windows >= 2 {
            let checkpoint = value("traffic_usage_checkpoint_timestamp_seconds{")
                .unwrap_or_else(|| panic!("no checkpoint after {windows} windows: {metrics}"))
                as u64;
            // Set as each window commits, just before it is counted.
            assert!(
                (from + windows * 86_400..=from + (windows + 1) * 86_400).contains(&checkpoint),
                "{windows} windows, checkpoint {checkpoint}"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(&mut child);
}
