//! CloudStack's database as the source and the sink (DESIGN §11, issue
//! 14): `collect --events mysql://…/cloud` with `--cloudstack-host-id` or
//! `--monitor cloudstack`, against the MariaDB server at 127.0.0.1:3306.
//!
//! Each test makes a CloudStack-shaped `cloud` database and a usage store
//! on that server, both fresh and uniquely named and dropped afterwards
//! ([`fixture::CloudDatabase`], [`Engine::fresh`]); the traffic comes from
//! an in-process emulator. What CloudStack is to bill is worked out by the
//! test itself ([`fixture::owed`]). Without a reachable server the tests
//! say so in one line and do nothing, unless `CI` is set.

mod fixture;

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration as StdDuration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use traffic_sentinel_emulator::{Fault, Times};

use crate::support::{
    Contents, Engine, Rng, Scratch, assert_refused, assert_same, assert_success, binary,
    checkpoint, emulator, engines, monitor, report, status, stderr, text,
};
use fixture::{
    CloudDatabase, FROM, HOST_ID, Owed, SYSTEM_ACCOUNT, UNTIL, ZONE, flows, owed, statistics_after,
    usage_events,
};

/// Whether the MariaDB server answers; one line on stderr when it does
/// not (a failure under `CI`).
fn mysql_reachable() -> bool {
    engines().contains(&Engine::MySql)
}

/// The host id of the zone's monitor as a number.
fn host_id() -> u64 {
    HOST_ID.parse().unwrap()
}

/// `collect` of zone [`ZONE`] from `cloud`'s `usage_event` and `monitor`
/// into `db`, from [`FROM`], account 1 excluded, a 5 s timeout and one
/// retry, then `extra`; up to [`UNTIL`] unless `extra` gives `--until`.
fn collect_command(cloud: &CloudDatabase, monitor: &str, db: &str, extra: &[&str]) -> Command {
    let mut command = binary();
    command
        .args(["collect", "--monitor", monitor, "--events", cloud.url()])
        .args(["--db", db, "--from", FROM])
        .args(["--exclude-account", SYSTEM_ACCOUNT, "--timeout", "5s"])
        .args(["--retries", "1"]);
    for (flag, default) in [("--until", UNTIL), ("--zone", ZONE)] {
        if !extra.contains(&flag) {
            command.args([flag, default]);
        }
    }
    command.args(extra);
    command
}

fn collect(cloud: &CloudDatabase, monitor: &str, db: &str, extra: &[&str]) -> Output {
    collect_command(cloud, monitor, db, extra).output().unwrap()
}

/// The bytes the store billed per account of [`ZONE`], as `report --by
/// account --format json` shows them (accounts with no bytes left out).
fn billed(db: &str) -> Owed {
    let json = report(db, &["--by", "account", "--format", "json", "--zone", ZONE]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    rows.iter()
        .map(|row| {
            let account: u64 = row["account"].as_str().unwrap().parse().unwrap();
            let bytes = |field: &str| row[field].as_u64().unwrap();
            (account, (bytes("bytes_sent"), bytes("bytes_received")))
        })
        .filter(|(_, bytes)| *bytes != (0, 0))
        .collect()
}

#[test]
fn user_statistics_get_each_accounts_bytes_once() {
    if !mysql_reachable() {
        return;
    }
    let events = usage_events();
    let flows = flows();
    let want = owed(&events, &flows, &["EXTERNAL"]);
    assert!(want.len() >= 4, "{want:?}");
    let cloud = CloudDatabase::create(&events, None);
    let store = Engine::MySql.fresh();
    let emulator = emulator(flows);
    let url = monitor(&emulator);
    let args = ["--cloudstack-host-id", HOST_ID, "--max-window", "6h"];

    let output = collect(&cloud, &url, store.target(), &args);
    assert_success(&output);
    let log = stderr(&output);
    assert!(
        log.contains("collected 4 window(s) of zone 1 up to 2026-11-02T00:00:00Z"),
        "{log}"
    );
    // The rows whose resource_name is no address are reported, not read.
    for skipped in [
        r#"resource_name "eth0" is not an IP address (NET.IPASSIGN, account 4, zone 1); skipped"#,
        "resource_name NULL is not an IP address (NET.IPRELEASE, account 4, zone 1); skipped",
    ] {
        assert!(log.contains(skipped), "{skipped:?} not in: {log}");
    }
    // The pruned history: a release whose assign is gone.
    let anomalies = report(store.target(), &["--by", "anomaly", "--format", "csv"]);
    // The skipped rows are stored as anomalies with the windows of their
    // times (DESIGN §11).
    let not_an_address: Vec<&str> = anomalies
        .lines()
        .filter(|l| l.contains(",not-an-ip-address,"))
        .collect();
    assert_eq!(not_an_address.len(), 2, "{anomalies}");
    assert!(
        not_an_address.iter().any(|l| l.contains("\"eth0\""))
            && not_an_address
                .iter()
                .any(|l| l.contains("resource_name NULL")),
        "{anomalies}"
    );
    assert!(
        anomalies
            .lines()
            .any(|l| l.contains("release-of-free-ip") && l.contains("203.0.113.22")),
        "{anomalies}"
    );
    // Every stored anomaly, the skipped rows included, is counted by the
    // window lines, the run's summary and `status`.
    let stored = anomalies.lines().count() - 1;
    let counted: usize = log
        .lines()
        .filter(|line| line.starts_with("window "))
        .filter_map(|line| line.rsplit_once(", anomalies "))
        .map(|(_, n)| n.parse::<usize>().unwrap())
        .sum();
    assert_eq!(counted, stored, "{log}");
    assert!(log.contains(&format!(", {stored} anomaly(ies)")), "{log}");
    assert_eq!(status(store.target())[0]["anomalies"], stored);

    let statistics = cloud.statistics();
    assert_eq!(statistics, statistics_after(&want, host_id()));
    assert_eq!(cloud.posted(HOST_ID), want);
    assert_eq!(billed(store.target()), want);
    for row in statistics
        .iter()
        .filter(|row| row[3].as_deref() == Some("DirectNetwork"))
    {
        assert_eq!(row[5].as_deref(), Some("0"), "a NULL network_id: {row:?}");
    }

    // A second collect finds nothing due and changes nothing.
    let rows = cloud.statistics_with_ids();
    let contents = Contents::of(store.target());
    let again = collect(&cloud, &url, store.target(), &args);
    assert_success(&again);
    assert!(stderr(&again).contains("caught up"), "{}", stderr(&again));
    assert_eq!(cloud.statistics_with_ids(), rows);
    assert_same(
        &Contents::of(store.target()),
        &contents,
        "after a second collect",
    );
}

/// A `cloud` database and a store, the first window collected (so the
/// store's schema is complete before any kill).
struct KillRound {
    cloud: CloudDatabase,
    store: crate::support::TestStore,
}

const SIGKILL: i32 = 9;
/// One-hour windows in [`FROM`, `UNTIL`).
const WINDOWS: u64 = 24;
const UNTIL_AT: OffsetDateTime = time::macros::datetime!(2026-11-02 00:00 UTC);

/// Kills `collect` with SIGKILL at random moments of its run, over and over
/// (a round ends a few windows before the end, is run to completion and
/// checked, and the next round starts afresh): after every kill CloudStack
/// holds exactly what the store billed, and after each round both hold
/// what an uninterrupted run gives.
#[cfg(unix)]
#[test]
fn sigkill_mid_window_ends_as_an_uninterrupted_run() {
    use std::os::unix::process::ExitStatusExt as _;

    if !mysql_reachable() {
        return;
    }
    let events = usage_events();
    let flows = flows();
    let want = owed(&events, &flows, &["EXTERNAL"]);
    let emulator = emulator(flows);
    // Every answer waits: most kills land while a window's request is out.
    emulator
        .faults()
        .set(Fault::Delay(StdDuration::from_millis(25)), Times::Always)
        .unwrap();
    let url = monitor(&emulator);
    let hourly = ["--cloudstack-host-id", HOST_ID, "--max-window", "1h"];
    let first_window = [&hourly[..], &["--until", "2026-11-01T01:00:00Z"]].concat();
    let new_round = || {
        let round = KillRound {
            cloud: CloudDatabase::create(&events, None),
            store: Engine::MySql.fresh(),
        };
        assert_success(&collect(
            &round.cloud,
            &url,
            round.store.target(),
            &first_window,
        ));
        round
    };

    // The uninterrupted run, timed after its first window.
    let reference = new_round();
    let started = Instant::now();
    assert_success(&collect(
        &reference.cloud,
        &url,
        reference.store.target(),
        &hourly,
    ));
    let rest_micros = started.elapsed().as_micros() as u64 + 1;
    let want_statistics = reference.cloud.statistics();
    assert_eq!(want_statistics, statistics_after(&want, host_id()));
    let want_contents = Contents::of(reference.store.target()).without_clock();

    let complete = |round: &KillRound, context: &str| {
        let db = round.store.target();
        let mut restarts = 0;
        loop {
            let output = collect(&round.cloud, &url, db, &hourly);
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
        let output = collect(&round.cloud, &url, db, &hourly);
        assert_success(&output);
        assert!(stderr(&output).contains("caught up"), "{}", stderr(&output));
        assert_eq!(round.cloud.statistics(), want_statistics, "{context}");
        assert_same(&Contents::of(db).without_clock(), &want_contents, context);
    };

    let mut rng = Rng(0x5161_0014);
    let mut round = new_round();
    let mut left = WINDOWS - 1;
    let (mut kills, mut kills_before_a_commit, mut rounds) = (0, 0, 0);
    let mut checkpoints = BTreeSet::new();
    let deadline = Instant::now() + StdDuration::from_secs(180);
    // Until there are kills enough, after commits at three checkpoints or
    // more (how far a run gets depends on the machine's load).
    while (kills < 30 || checkpoints.len() < 3) && Instant::now() < deadline {
        let mut child = collect_command(&round.cloud, &url, round.store.target(), &hourly)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Anywhere from start-up to about the last commit.
        let span = rest_micros * left / (WINDOWS - 1);
        std::thread::sleep(StdDuration::from_micros(rng.below(span)));
        let status = match child.try_wait().unwrap() {
            Some(status) => status,
            None => {
                child.kill().unwrap();
                child.wait().unwrap()
            }
        };
        if status.signal() == Some(SIGKILL) {
            kills += 1;
            // Whenever it is killed, CloudStack holds exactly what the
            // store billed: each window posted with its records or not at
            // all.
            assert_eq!(
                round.cloud.posted(HOST_ID),
                billed(round.store.target()),
                "after kill {kills}"
            );
            let at = checkpoint(round.store.target(), ZONE).unwrap();
            let now_left =
                (UNTIL_AT - OffsetDateTime::parse(&at, &Rfc3339).unwrap()).whole_hours() as u64;
            if now_left == left {
                kills_before_a_commit += 1;
            }
            left = now_left;
            checkpoints.insert(at);
            if left > 2 {
                continue;
            }
        } else {
            assert!(status.success(), "collect failed on its own: {status}");
        }
        complete(&round, &format!("round {rounds}"));
        rounds += 1;
        round = new_round();
        left = WINDOWS - 1;
    }
    complete(&round, &format!("round {rounds}"));
    eprintln!(
        "cloudstack: {kills} collects killed ({kills_before_a_commit} before their first commit), \
         at {} checkpoints, in {} round(s)",
        checkpoints.len(),
        rounds + 1
    );
    // Where kills land depends on the machine's load: ask for kills after
    // commits at more than one checkpoint, not for a spread timing cannot
    // promise.
    assert!(kills >= 20, "only {kills} collects were killed");
    assert!(
        checkpoints.len() >= 3,
        "kills at {} checkpoints only",
        checkpoints.len()
    );
}

#[test]
fn monitor_cloudstack_collects_as_its_registered_url_and_zones() {
    if !mysql_reachable() {
        return;
    }
    let events = usage_events();
    let flows = flows();
    let want = owed(&events, &flows, &["EXTERNAL", "PEERING"]);
    // The registered zones matter: the default would bill less.
    assert_ne!(want, owed(&events, &flows, &["EXTERNAL"]));
    let emulator = emulator(flows);
    let url = monitor(&emulator);

    // Host 7's url, inclZones and exclZones, and its id as the host id.
    let registered = CloudDatabase::create(&events, Some(&url));
    let registered_store = Engine::MySql.fresh();
    let output = collect(
        &registered,
        "cloudstack",
        registered_store.target(),
        &["--max-window", "6h"],
    );
    assert_success(&output);
    assert!(emulator.requests_served() >= 4);
    assert_eq!(registered.statistics(), statistics_after(&want, host_id()));
    assert_eq!(billed(registered_store.target()), want);

    let explicit = CloudDatabase::create(&events, Some(&url));
    let explicit_store = Engine::MySql.fresh();
    let output = collect(
        &explicit,
        &url,
        explicit_store.target(),
        &[
            "--max-window",
            "6h",
            "--include-zones",
            "EXTERNAL,PEERING",
            "--exclude-zones",
            "INTERNAL",
            "--cloudstack-host-id",
            HOST_ID,
        ],
    );
    assert_success(&output);
    assert_eq!(registered.statistics(), explicit.statistics());
    assert_same(
        &Contents::of(registered_store.target()).without_clock(),
        &Contents::of(explicit_store.target()).without_clock(),
        "--monitor cloudstack against its URL and zones given by hand",
    );
}

#[test]
fn a_store_on_another_server_is_refused_before_any_request() {
    if !mysql_reachable() {
        return;
    }
    let events = usage_events();
    let emulator = emulator(flows());
    let url = monitor(&emulator);
    let cloud = CloudDatabase::create(&events, Some(&url));
    let statistics = cloud.statistics_with_ids();
    let scratch = Scratch::new();
    let sqlite = scratch.arg("usage.sqlite");
    let postgres = engines()
        .contains(&Engine::Postgres)
        .then(|| Engine::Postgres.fresh());
    let not_mysql = "--db must be a mysql:// database on CloudStack's server";
    let mut cases = vec![
        (url.as_str(), sqlite.as_str(), not_mysql),
        ("cloudstack", sqlite.as_str(), not_mysql),
        (
            url.as_str(),
            "mysql://root@127.0.0.1:3307/traffic_usage",
            "--db must be on the same MySQL server as --events",
        ),
    ];
    if let Some(postgres) = &postgres {
        cases.push((url.as_str(), postgres.target(), not_mysql));
    }
    for (monitor, db, needle) in cases {
        let output = collect(&cloud, monitor, db, &["--cloudstack-host-id", HOST_ID]);
        assert_refused(&output, needle);
        assert_eq!(
            emulator.requests_served(),
            0,
            "--monitor {monitor} --db {db}"
        );
        assert!(!scratch.path("usage.sqlite").exists());
        assert_eq!(cloud.statistics_with_ids(), statistics);
    }
    if let Some(postgres) = &postgres {
        assert_eq!(postgres.table_count(), 0);
    }

    // Without --cloudstack-host-id, the registered monitor's host id is the
    // default (DESIGN §11), with the same requirement: refused alike.
    let output = collect(&cloud, "cloudstack", &sqlite, &[]);
    assert_refused(
        &output,
        "--db must be a mysql:// database on CloudStack's server",
    );
    assert!(
        stderr(&output).contains("default --cloudstack-host-id"),
        "{}",
        stderr(&output)
    );
    assert_eq!(emulator.requests_served(), 0);
    assert!(!scratch.path("usage.sqlite").exists());
    assert_eq!(cloud.statistics_with_ids(), statistics);

    // Another name of CloudStack's server is that server: `localhost` for
    // the store while the events say 127.0.0.1 is accepted, and posts.
    let store = Engine::MySql.fresh();
    let by_name = store.target().replace("@127.0.0.1", "@localhost");
    assert_ne!(by_name, store.target());
    let output = collect(&cloud, &url, &by_name, &["--cloudstack-host-id", HOST_ID]);
    assert_success(&output);
    assert!(emulator.requests_served() > 0);
    let want = owed(&usage_events(), &flows(), &["EXTERNAL"]);
    assert_eq!(cloud.posted(HOST_ID), want);
    assert_eq!(billed(store.target()), want);
}

#[test]
fn monitor_cloudstack_without_a_registered_monitor_is_refused_naming_the_zone() {
    if !mysql_reachable() {
        return;
    }
    // Zone 1 has a removed monitor only; zone 2 has a live one.
    let cloud = CloudDatabase::create(&usage_events(), None);
    let store = Engine::MySql.fresh();
    let cases = [
        (
            ZONE,
            "zone 1 has no traffic monitor registered in CloudStack: no live host of type TrafficMonitor with data_center_id 1 (add one with addTrafficMonitor)",
        ),
        (
            "zone-1",
            "zone zone-1 has no traffic monitor registered in CloudStack: no live host of type TrafficMonitor with data_center_id zone-1 (CloudStack zones are numeric ids)",
        ),
    ];
    for (zone, message) in cases {
        let output = collect(&cloud, "cloudstack", store.target(), &["--zone", zone]);
        assert_refused(&output, message);
        assert_eq!(store.table_count(), 0, "zone {zone}");
    }
    // A zone no usage_event names, whatever the monitor: every zone the
    // table names is listed, though only the zone asked for is kept.
    let output = collect(
        &cloud,
        "http://127.0.0.1:9",
        store.target(),
        &["--zone", "9"],
    );
    assert_refused(&output, "zone 9 appears in no event");
    assert!(stderr(&output).contains("1, 2"), "{}", stderr(&output));
    assert_eq!(store.table_count(), 0);
}

/// A row whose `resource_name` is not an address, inserted after its
/// window was billed, is stored with that window as a `not-an-ip-address`
/// anomaly and said once (DESIGN §11, §4: never silently absorbed); a
/// rerun stores and says nothing again.
#[test]
fn a_non_address_row_found_after_its_window_was_billed_is_stored_with_it() {
    if !mysql_reachable() {
        return;
    }
    let emulator = emulator(flows());
    let url = monitor(&emulator);
    // Every engine: MySQL counts a duplicate key left as it was as a row
    // affected, which must not make an old row new.
    for engine in engines() {
        let cloud = CloudDatabase::create(&usage_events(), None);
        let store = engine.fresh();
        let db = store.target();
        let name = engine.name();
        let args = ["--max-window", "6h"];
        assert_success(&collect(&cloud, &url, db, &args));
        let anomalies = || report(db, &["--by", "anomaly", "--format", "csv"]);
        let before = anomalies();
        cloud.execute(
            "INSERT INTO usage_event (id, type, account_id, created, zone_id, resource_id,
                                      resource_name, resource_type, size)
             VALUES (900, 'NET.IPASSIGN', 4, '2026-11-01 13:00:00', 1, 1000, 'i-4-99-VM',
                     'DirectAttached', 0)",
        );
        let again = collect(&cloud, &url, db, &args);
        assert_success(&again);
        let log = stderr(&again);
        let said: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("found after its window was billed"))
            .collect();
        assert_eq!(said.len(), 1, "{name}: {log}");
        assert!(
            said[0].contains(r#"usage_event 900: resource_name "i-4-99-VM""#),
            "{name}: {log}"
        );
        let after = anomalies();
        let added: Vec<&str> = after.lines().filter(|l| !before.contains(*l)).collect();
        assert_eq!(added.len(), 1, "{name}: {after}");
        assert!(
            added[0]
                .starts_with("1,2026-11-01T12:00:00Z,2026-11-01T18:00:00Z,not-an-ip-address,900,"),
            "{name}: {after}"
        );
        let third = collect(&cloud, &url, db, &args);
        assert_success(&third);
        // Nothing is said again: neither this row nor the fixture's others.
        assert!(
            !stderr(&third).contains("is not an IP address"),
            "{name}: {}",
            stderr(&third)
        );
        assert_eq!(anomalies(), after, "{name}");
    }
}
