//! Many collectors, one store (DESIGN §10): whatever the interleaving, no
//! window is billed twice, a collector that loses the race stores nothing
//! and says so, and a later run completes the store.

use std::process::{Output, Stdio};
use std::time::Duration as StdDuration;

use traffic_sentinel_emulator::{Fault, Times};

use super::{ACCOUNTS, DAY_TWO_END, Setup, ZONE, events_for, reference};
use crate::support::{
    Contents, Engine, Rng, assert_same, assert_success, checkpoint, engines, report,
    rows_ending_by, text,
};

/// Whether `output` is a collector that lost the race: status 1 and the
/// store's "checkpoint … moved" message; any other failure panics.
#[track_caller]
fn lost_the_race(output: &Output, context: &str) -> bool {
    if output.status.success() {
        return false;
    }
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{context}: {stderr}");
    assert!(
        stderr.contains("checkpoint of zone") && stderr.contains("moved"),
        "{context}: an unclear failure: {stderr}"
    );
    true
}

#[test]
fn concurrent_runs_on_one_database_never_double_bill() {
    let setup = Setup::new();
    let window = ["--max-window", "2h"];
    let want = reference(&setup, Engine::Sqlite, DAY_TWO_END, &window);
    for engine in engines() {
        let name = engine.name();
        for round in 0..4 {
            let context = format!("{name}: round {round}");
            let store = engine.fresh();
            let db = store.target();
            let children: Vec<_> = (0..2)
                .map(|_| {
                    setup
                        .collect_command(db, DAY_TWO_END, &window)
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
                    "{context}: exit {:?}: {}",
                    output.status.code(),
                    text(&output.stderr).trim_end().lines().last().unwrap_or("")
                );
                lost_the_race(output, &context);
            }
            // The first commit always succeeds, and its run then goes on alone.
            assert!(
                outputs.iter().any(|o| o.status.success()),
                "{context}: both failed"
            );
            // Whatever happened, the data is consistent: every committed
            // window is the reference's, and a later run completes it.
            let checkpoint = checkpoint(db, ZONE).unwrap();
            assert_eq!(
                report(db, &["--by", "ip", "--format", "csv"]),
                rows_ending_by(&want.records, 4, &checkpoint),
                "{context}"
            );
            assert_success(&setup.collect(db, DAY_TWO_END, &window));
            assert_same(&Contents::of(db).without_clock(), &want, &context);
        }
    }
}

/// The two zones of the race.
#[cfg(unix)]
const ZONES: [&str; 2] = ["zone-1", "zone-2"];

/// One collector of a race: its zone, when it starts, and when (after its
/// start) it is killed, if it is.
#[cfg(unix)]
struct Racer {
    zone: &'static str,
    start: StdDuration,
    kill_after: Option<StdDuration>,
}

/// Runs `racers` against `db` at once; their outputs, and whether each was
/// killed by SIGKILL.
#[cfg(unix)]
fn race(setup: &Setup, db: &str, window: &[&str], racers: &[Racer]) -> Vec<(Output, bool)> {
    use std::os::unix::process::ExitStatusExt;
    std::thread::scope(|scope| {
        let runs: Vec<_> = racers
            .iter()
            .map(|racer| {
                scope.spawn(move || {
                    std::thread::sleep(racer.start);
                    let mut child = setup
                        .collect_command_for(racer.zone, db, DAY_TWO_END, window)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    if let Some(after) = racer.kill_after {
                        std::thread::sleep(after);
                        // It may have ended already: then there is nothing to kill.
                        let _ = child.kill();
                    }
                    let output = child.wait_with_output().unwrap();
                    let killed = output.status.signal() == Some(9);
                    (output, killed)
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    })
}

/// Eight collectors over two zones into one database on `engine`,
/// starting at random moments against a slow Traffic Sentinel, each killed
/// with SIGKILL at a random moment if it still runs. Then all eight run
/// again, to completion. Each zone's store is at every moment a prefix of an
/// uninterrupted collector's, and in the end equals it; every loser that
/// exits on its own says the checkpoint moved.
#[cfg(unix)]
fn eight_collectors_over_two_zones(engine: Engine) {
    let mut events = events_for(ZONES[0], &ACCOUNTS);
    let mut second = events_for(ZONES[1], &ACCOUNTS);
    for event in &mut second {
        event.id += 1_000_000;
    }
    events.extend(second);
    let setup = Setup::with_events(&events);
    let window = ["--max-window", "2h"];

    // One uninterrupted collector per zone.
    let reference = Engine::Sqlite.fresh();
    for zone in ZONES {
        let output = setup
            .collect_command_for(zone, reference.target(), DAY_TWO_END, &window)
            .output()
            .unwrap();
        assert_success(&output);
    }
    let want = Contents::of(reference.target()).without_clock();
    let want_records = |zone: &str| {
        report(
            reference.target(),
            &["--zone", zone, "--by", "ip", "--format", "csv"],
        )
    };

    // A slow Traffic Sentinel: every request waits, so windows take time
    // and collectors overlap.
    setup
        .emulator
        .faults()
        .set(Fault::Delay(StdDuration::from_millis(30)), Times::Always)
        .unwrap();
    let name = engine.name();
    let store = engine.fresh();
    let db = store.target();
    let mut rng = Rng(0x7ace_0001);
    // Round one: whoever still runs at its kill time (the winners; the
    // losers have given up by then) is killed.
    let mut racers: Vec<Racer> = (0..8)
        .map(|i| Racer {
            zone: ZONES[i % 2],
            start: StdDuration::from_millis(rng.below(400)),
            kill_after: Some(StdDuration::from_millis(200 + rng.below(1000))),
        })
        .collect();

    let mut killed = 0;
    let mut lost = 0;
    for round in 1..=2 {
        if round == 2 {
            for racer in &mut racers {
                racer.start = StdDuration::from_millis(rng.below(400));
                racer.kill_after = None;
            }
        }
        let outputs = race(&setup, db, &window, &racers);
        for (i, (output, was_killed)) in outputs.iter().enumerate() {
            let context = format!("{name}: round {round}, collector {i}");
            if *was_killed {
                assert!(racers[i].kill_after.is_some(), "{context}");
                killed += 1;
                continue;
            }
            lost += usize::from(lost_the_race(output, &context));
        }
        // At every moment, each zone holds exactly the reference's
        // records up to its checkpoint.
        for zone in ZONES {
            let checkpoint = checkpoint(db, zone);
            eprintln!("{name}: after round {round}, {zone} is at {checkpoint:?}");
            if let Some(checkpoint) = checkpoint {
                assert_eq!(
                    report(db, &["--zone", zone, "--by", "ip", "--format", "csv"]),
                    rows_ending_by(&want_records(zone), 4, &checkpoint),
                    "{name}: round {round}, {zone}"
                );
            }
        }
    }
    eprintln!("{name}: {killed} collector(s) killed, {lost} lost the race");
    assert_same(
        &Contents::of(db).without_clock(),
        &want,
        &format!("{name}: after the race"),
    );
    assert!(killed >= 1, "{name}: no collector was killed mid-run");
    assert!(lost >= 1, "{name}: no collector ever lost the race");
}

#[cfg(unix)]
#[test]
fn eight_collectors_over_two_zones_on_postgres_bill_each_window_once() {
    if engines().contains(&Engine::Postgres) {
        eight_collectors_over_two_zones(Engine::Postgres);
    }
}

#[cfg(unix)]
#[test]
fn eight_collectors_over_two_zones_on_mysql_bill_each_window_once() {
    if engines().contains(&Engine::MySql) {
        eight_collectors_over_two_zones(Engine::MySql);
    }
}
