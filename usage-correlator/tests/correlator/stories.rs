//! Billing stories: every `testdata/*.story` file is one small, named case
//! (events, bucket traffic, expected records, anomalies and checkpoint), run
//! through ledger → plan → answer → join.
//!
//! # Story format
//!
//! One statement per line; blank lines and lines starting with `#` are
//! ignored. Times are RFC 3339 (`2026-11-01T03:00:00Z`; the seconds may be
//! left out: `2026-11-01T03:00Z`). Durations are a number and a unit: `90s`,
//! `15m`, `1h`, `1d`.
//!
//! Setup, before the first window:
//!
//! ```text
//! zone zone-1                                   (default zone-1)
//! grid 1h                                       (default 1h)
//! exclude-account 1
//! event 17 2026-11-01T02:30Z assign acct-a 203.0.113.7 [zone Z]
//! traffic 203.0.113.7 2026-11-01T03:00Z sent 100 received 5
//! ```
//!
//! `traffic` gives the bytes of one bucket (its start must be on the grid);
//! `sent` or `received` may be left out (zero). Traffic Sentinel answers an
//! interval with the sum of the buckets whose start lies in it.
//!
//! Windows, each followed by its expectations:
//!
//! ```text
//! window 2026-11-01T00:00Z .. 2026-11-01T06:00Z
//! schedule checkpoint T now T [lag 2h] [max-window 1d]   (or: until T)
//! expect window START .. END        (after schedule: the next window it yields)
//! ```
//!
//! Expectations of a window (records and checkpoint are required):
//!
//! ```text
//! expect record acct-a 203.0.113.7 2026-11-01T03:00Z .. 2026-11-01T06:00Z sent 100 received 5
//! expect no records
//! expect anomaly 18 assign-while-held-by-other
//! expect total acct-a sent 100 received 5
//! expect plan pieces 3 queries 2 ips 3
//! expect checkpoint 2026-11-01T06:00Z
//! ```
//!
//! Records and anomalies must match exactly (no more, no fewer); totals, when
//! any is given, too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use usage_correlator::{AnomalyKind, LedgerOptions, OwnershipLedger, QueryPlan, Schedule};
use usage_model::{
    AccountId, ByteCounts, CollectionWindow, Grid, IpEvent, IpEventKind, TrafficAnswer,
    TrafficQuery, ZoneId,
};

/// A failure, with the line it concerns.
type Failure = (usize, String);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct ExpectedRecord {
    account: String,
    ip: IpAddr,
    start: OffsetDateTime,
    end: OffsetDateTime,
    sent: u64,
    received: u64,
}

#[derive(Debug, Default)]
struct Section {
    /// The line that opened the section (`window` or `expect window`).
    line: usize,
    window: Option<CollectionWindow>,
    records: Vec<(usize, ExpectedRecord)>,
    no_records: bool,
    anomalies: Vec<(usize, u64, AnomalyKind)>,
    totals: Vec<(usize, String, ByteCounts)>,
    plan: Option<(usize, [usize; 3])>,
    checkpoint: Option<(usize, OffsetDateTime)>,
}

#[derive(Debug)]
struct ScheduleLine {
    line: usize,
    checkpoint: OffsetDateTime,
    now: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    lag: Option<Duration>,
    max_window: Option<Duration>,
}

#[derive(Debug)]
struct Story {
    zone: ZoneId,
    grid: Grid,
    options: LedgerOptions,
    events: Vec<IpEvent>,
    traffic: BTreeMap<(IpAddr, OffsetDateTime), (usize, ByteCounts)>,
    schedule: Option<ScheduleLine>,
    sections: Vec<Section>,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    let full = match text.strip_suffix('Z') {
        Some(rest) if rest.len() == 16 => format!("{rest}:00Z"),
        _ => text.to_owned(),
    };
    OffsetDateTime::parse(&full, &Rfc3339).map_err(|e| format!("bad time {text:?}: {e}"))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    match unit {
        "s" => Ok(Duration::seconds(n)),
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        _ => Err(format!("bad duration unit in {text:?} (s, m, h or d)")),
    }
}

fn parse_u64(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("bad number {text:?}"))
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.parse().map_err(|_| format!("bad ip {text:?}"))
}

fn parse_account(text: &str) -> Result<AccountId, String> {
    AccountId::new(text).map_err(|e| e.to_string())
}

/// `START .. END` at `tokens`.
fn parse_range(tokens: &[&str]) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    match tokens {
        [start, "..", end, ..] => Ok((parse_time(start)?, parse_time(end)?)),
        _ => Err(format!(
            "expected `START .. END`, found {:?}",
            tokens.join(" ")
        )),
    }
}

/// `sent N received N` in any order, either optional.
fn parse_bytes(tokens: &[&str]) -> Result<ByteCounts, String> {
    let mut bytes = ByteCounts::ZERO;
    let mut rest = tokens;
    while let [key, value, tail @ ..] = rest {
        match *key {
            "sent" => bytes.sent = parse_u64(value)?,
            "received" => bytes.received = parse_u64(value)?,
            other => return Err(format!("expected `sent` or `received`, found {other:?}")),
        }
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(format!("dangling {:?}", rest.join(" ")));
    }
    Ok(bytes)
}

fn parse_story(text: &str) -> Result<Story, Failure> {
    let mut story = Story {
        zone: ZoneId::new("zone-1").unwrap(),
        grid: Grid::HOURLY,
        options: LedgerOptions::new(),
        events: Vec::new(),
        traffic: BTreeMap::new(),
        schedule: None,
        sections: Vec::new(),
    };
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let tokens: Vec<&str> = content.split_whitespace().collect();
        parse_line(&mut story, line, &tokens).map_err(|msg| (line, msg))?;
    }
    if story.sections.is_empty() {
        return Err((0, "the story has no window".to_owned()));
    }
    Ok(story)
}

fn parse_line(story: &mut Story, line: usize, tokens: &[&str]) -> Result<(), String> {
    let in_section = !story.sections.is_empty();
    let section = || "this line belongs before the first window".to_owned();
    match tokens {
        ["zone", name] if !in_section => {
            story.zone = ZoneId::new(*name).map_err(|e| e.to_string())?;
        }
        ["grid", step] if !in_section => {
            story.grid = Grid::new(parse_duration(step)?).map_err(|e| e.to_string())?;
        }
        ["exclude-account", id] if !in_section => {
            story.options = story.options.clone().exclude_account(parse_account(id)?);
        }
        ["event", id, at, kind, account, ip, rest @ ..] if !in_section => {
            let zone = match rest {
                [] => story.zone.clone(),
                ["zone", z] => ZoneId::new(*z).map_err(|e| e.to_string())?,
                _ => return Err(format!("unexpected {:?} after the event", rest.join(" "))),
            };
            story.events.push(IpEvent {
                id: parse_u64(id)?,
                at: parse_time(at)?,
                zone,
                account: parse_account(account)?,
                ip: parse_ip(ip)?,
                kind: match *kind {
                    "assign" => IpEventKind::Assign,
                    "release" => IpEventKind::Release,
                    other => return Err(format!("event kind {other:?} is not assign or release")),
                },
            });
        }
        ["traffic", ip, at, rest @ ..] if !in_section => {
            let (ip, at, bytes) = (parse_ip(ip)?, parse_time(at)?, parse_bytes(rest)?);
            let slot = story
                .traffic
                .entry((ip, at))
                .or_insert((line, ByteCounts::ZERO));
            slot.1 = slot.1.checked_add(bytes).map_err(|e| e.to_string())?;
        }
        [
            "zone" | "grid" | "exclude-account" | "event" | "traffic",
            ..,
        ] if in_section => {
            return Err(section());
        }
        ["window", rest @ ..] => {
            let (start, end) = parse_range(rest)?;
            let window = CollectionWindow::new(start, end).map_err(|e| e.to_string())?;
            story.sections.push(Section {
                line,
                window: Some(window),
                ..Section::default()
            });
        }
        ["schedule", "checkpoint", checkpoint, rest @ ..] if story.schedule.is_none() => {
            let mut schedule = ScheduleLine {
                line,
                checkpoint: parse_time(checkpoint)?,
                now: None,
                until: None,
                lag: None,
                max_window: None,
            };
            let mut rest = rest;
            while let [key, value, tail @ ..] = rest {
                match *key {
                    "now" => schedule.now = Some(parse_time(value)?),
                    "until" => schedule.until = Some(parse_time(value)?),
                    "lag" => schedule.lag = Some(parse_duration(value)?),
                    "max-window" => schedule.max_window = Some(parse_duration(value)?),
                    other => return Err(format!("unknown schedule setting {other:?}")),
                }
                rest = tail;
            }
            if !rest.is_empty() || schedule.now.is_some() == schedule.until.is_some() {
                return Err("schedule needs exactly one of `now T` and `until T`".to_owned());
            }
            story.schedule = Some(schedule);
        }
        ["expect", "window", rest @ ..] if story.schedule.is_some() => {
            let (start, end) = parse_range(rest)?;
            let window = CollectionWindow::new(start, end).map_err(|e| e.to_string())?;
            story.sections.push(Section {
                line,
                window: Some(window),
                ..Section::default()
            });
        }
        ["expect", what, rest @ ..] => {
            let Some(current) = story.sections.last_mut() else {
                return Err("an expectation before any window".to_owned());
            };
            match (*what, rest) {
                ("record", [account, ip, tail @ ..]) => {
                    let (start, end) = parse_range(tail)?;
                    let bytes = parse_bytes(tail.get(3..).unwrap_or_default())?;
                    current.records.push((
                        line,
                        ExpectedRecord {
                            account: parse_account(account)?.to_string(),
                            ip: parse_ip(ip)?,
                            start,
                            end,
                            sent: bytes.sent,
                            received: bytes.received,
                        },
                    ));
                }
                ("no", ["records"]) => current.no_records = true,
                ("anomaly", [id, kind]) => {
                    let kind = AnomalyKind::from_name(kind)
                        .ok_or_else(|| format!("unknown anomaly kind {kind:?}"))?;
                    current.anomalies.push((line, parse_u64(id)?, kind));
                }
                ("total", [account, tail @ ..]) => {
                    current.totals.push((
                        line,
                        parse_account(account)?.to_string(),
                        parse_bytes(tail)?,
                    ));
                }
                ("plan", ["pieces", p, "queries", q, "ips", i]) => {
                    let n = |t: &str| t.parse::<usize>().map_err(|_| format!("bad count {t:?}"));
                    current.plan = Some((line, [n(p)?, n(q)?, n(i)?]));
                }
                ("checkpoint", [at]) => current.checkpoint = Some((line, parse_time(at)?)),
                _ => return Err(format!("unknown expectation {:?}", tokens.join(" "))),
            }
        }
        _ => {
            return Err(format!(
                "unknown or misplaced statement {:?}",
                tokens.join(" ")
            ));
        }
    }
    Ok(())
}

/// Answers queries from the story's buckets like Traffic Sentinel: each query
/// interval covers the buckets whose start lies in it.
fn answer(story: &Story, queries: &[TrafficQuery]) -> TrafficAnswer {
    let mut answer = TrafficAnswer::new();
    for q in queries {
        for &ip in &q.ips {
            let bytes = story
                .traffic
                .range((ip, q.interval.start())..(ip, q.interval.end()))
                .fold(ByteCounts::ZERO, |sum, (_, (_, c))| {
                    sum.checked_add(*c).unwrap()
                });
            if !bytes.is_zero() {
                answer.insert(q.tag, ip, bytes).unwrap();
            }
        }
    }
    answer
}

fn show(r: &ExpectedRecord) -> String {
    let t = |at: OffsetDateTime| at.format(&Rfc3339).unwrap();
    format!(
        "record {} {} {} .. {} sent {} received {}",
        r.account,
        r.ip,
        t(r.start),
        t(r.end),
        r.sent,
        r.received
    )
}

/// Runs one story; returns its failures.
fn run_story(story: &Story) -> Vec<Failure> {
    let mut failures = Vec::new();
    let ledger = OwnershipLedger::from_events(story.options.clone(), story.events.clone());

    for (line, bytes) in story.traffic.iter().map(|((_, at), (line, _))| (line, at)) {
        if !story.grid.holds(*bytes) {
            failures.push((*line, "traffic bucket start is not on the grid".to_owned()));
        }
    }

    if let Some(s) = &story.schedule {
        let mut schedule = Schedule::new().grid(story.grid);
        if let Some(lag) = s.lag {
            schedule = schedule.settle_lag(lag);
        }
        if let Some(max) = s.max_window {
            schedule = schedule.max_window(max);
        }
        let due = match (s.now, s.until) {
            (Some(now), _) => schedule.due_windows(s.checkpoint, now),
            (None, Some(until)) => schedule.windows_between(s.checkpoint, until),
            (None, None) => unreachable!("checked when parsing"),
        };
        let due = match due {
            Ok(due) => due.collect::<Vec<_>>(),
            Err(e) => return vec![(s.line, format!("schedule failed: {e}"))],
        };
        let expected: Vec<_> = story.sections.iter().filter_map(|s| s.window).collect();
        if due != expected {
            failures.push((
                s.line,
                format!("schedule yields {due:?}, story expects {expected:?}"),
            ));
            return failures;
        }
    }

    for section in &story.sections {
        let Some(window) = section.window else {
            continue;
        };
        let plan = match QueryPlan::new(&ledger, &story.zone, window, story.grid) {
            Ok(plan) => plan,
            Err(e) => {
                failures.push((section.line, format!("planning failed: {e}")));
                continue;
            }
        };
        let outcome = match plan.join(&answer(story, plan.queries())) {
            Ok(outcome) => outcome,
            Err(e) => {
                failures.push((section.line, format!("join failed: {e}")));
                continue;
            }
        };

        // Records.
        // Exactly one of the two must be given.
        let has_records = !section.records.is_empty();
        if section.no_records == has_records {
            failures.push((
                section.line,
                "a window needs either `expect record` lines or `expect no records`".to_owned(),
            ));
        }
        let mut actual: Vec<ExpectedRecord> = outcome
            .records
            .iter()
            .map(|r| ExpectedRecord {
                account: r.account.to_string(),
                ip: r.ip,
                start: r.start,
                end: r.end,
                sent: r.bytes_sent,
                received: r.bytes_received,
            })
            .collect();
        for (line, expected) in &section.records {
            match actual.iter().position(|r| r == expected) {
                Some(i) => {
                    actual.remove(i);
                }
                None => failures.push((*line, format!("missing {}", show(expected)))),
            }
        }
        for unexpected in actual {
            failures.push((section.line, format!("unexpected {}", show(&unexpected))));
        }

        // Anomalies.
        let mut actual: Vec<(u64, AnomalyKind)> = outcome
            .anomalies
            .iter()
            .map(|a| (a.event.id, a.kind))
            .collect();
        for (line, id, kind) in &section.anomalies {
            match actual.iter().position(|a| *a == (*id, *kind)) {
                Some(i) => {
                    actual.remove(i);
                }
                None => failures.push((*line, format!("missing anomaly {id} {kind}"))),
            }
        }
        for (id, kind) in actual {
            failures.push((section.line, format!("unexpected anomaly {id} {kind}")));
        }

        // Totals.
        if !section.totals.is_empty() {
            let mut actual = outcome.totals.clone();
            for (line, account, bytes) in &section.totals {
                let got = actual.remove(&AccountId::new(account.as_str()).unwrap());
                if got != Some(*bytes) {
                    failures.push((*line, format!("total of {account} is {got:?}")));
                }
            }
            for (account, bytes) in actual {
                failures.push((
                    section.line,
                    format!("unexpected total of {account}: {bytes:?}"),
                ));
            }
        }

        // Plan size.
        if let Some((line, expected)) = section.plan {
            let got = [plan.piece_count(), plan.query_count(), plan.ip_count()];
            if got != expected {
                failures.push((
                    line,
                    format!("plan has pieces/queries/ips {got:?}, expected {expected:?}"),
                ));
            }
        }

        // Checkpoint.
        match section.checkpoint {
            None => failures.push((
                section.line,
                "a window needs `expect checkpoint`".to_owned(),
            )),
            Some((line, at)) => {
                if outcome.checkpoint.at != at || outcome.checkpoint.zone != story.zone {
                    failures.push((line, format!("checkpoint is {:?}", outcome.checkpoint)));
                }
            }
        }
    }
    failures
}

fn story_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "story"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_story_bills_as_told() {
    let files = story_files();
    assert!(
        files.len() >= 15,
        "expected at least 15 stories, found {}",
        files.len()
    );
    let mut report = String::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        let text = std::fs::read_to_string(path).unwrap();
        if !text.starts_with('#') {
            writeln!(
                report,
                "{name}:1: a story starts with a `#` header telling it"
            )
            .unwrap();
        }
        let failures = match parse_story(&text) {
            Ok(story) => run_story(&story),
            Err(failure) => vec![failure],
        };
        for (line, message) in failures {
            writeln!(report, "{name}:{line}: {message}").unwrap();
        }
    }
    assert!(report.is_empty(), "stories failed:\n{report}");
}

#[test]
fn a_wrong_expectation_is_reported_with_its_line() {
    let story = parse_story(
        "# A deliberately wrong story.\n\
         event 1 2026-11-01T00:00Z assign acct-a 10.0.0.1\n\
         traffic 10.0.0.1 2026-11-01T01:00Z sent 5\n\
         window 2026-11-01T00:00Z .. 2026-11-01T02:00Z\n\
         expect record acct-a 10.0.0.1 2026-11-01T00:00Z .. 2026-11-01T02:00Z sent 6\n\
         expect checkpoint 2026-11-01T02:00Z\n",
    )
    .unwrap();
    let failures = run_story(&story);
    let lines: Vec<usize> = failures.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [5, 4], "{failures:?}");
    assert!(failures[1].1.contains("sent 5"), "{failures:?}");
}

#[test]
fn a_malformed_line_is_reported_with_its_line() {
    let err = parse_story("# Bad.\nevent 1 2026-11-01T00:00Z lend acct-a 10.0.0.1\n").unwrap_err();
    assert_eq!(err.0, 2);
    assert!(err.1.contains("lend"), "{err:?}");
}
