//! Billing stories: every `testdata/*.story` file is one small, named case
//! (events, bucket traffic, expected records, anomalies and checkpoint), run
//! through ledger → plan → answer → join. The file format and the check are
//! in the `billing-stories` crate, which the store's tests share.

use std::fmt::Write as _;
use std::path::Path;

use billing_stories::{Billed, ExpectedRecord, Failure, Story};
use usage_correlator::{LedgerOptions, OwnershipLedger, QueryPlan, Schedule};

/// The ledger options of a story.
fn ledger_options(story: &Story) -> LedgerOptions {
    story
        .excluded_accounts
        .iter()
        .fold(LedgerOptions::new(), |options, account| {
            options.exclude_account(account.clone())
        })
}

/// Runs one story; returns its failures.
fn run_story(story: &Story) -> Vec<Failure> {
    let mut failures = story.check_traffic();
    let ledger = OwnershipLedger::from_events(ledger_options(story), story.events.clone());

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
        let outcome = match story
            .answer(plan.queries())
            .map_err(|e| e.to_string())
            .and_then(|answer| plan.join(&answer).map_err(|e| e.to_string()))
        {
            Ok(outcome) => outcome,
            Err(e) => {
                failures.push((section.line, format!("join failed: {e}")));
                continue;
            }
        };
        let billed = Billed {
            records: outcome.records.iter().map(ExpectedRecord::from).collect(),
            anomalies: outcome
                .anomalies
                .iter()
                .map(|a| (a.event.id, a.kind.to_string()))
                .collect(),
            totals: outcome
                .totals
                .iter()
                .map(|(account, bytes)| (account.to_string(), *bytes))
                .collect(),
            plan: Some([plan.piece_count(), plan.query_count(), plan.ip_count()]),
            checkpoint: Some((outcome.checkpoint.zone.clone(), outcome.checkpoint.at)),
        };
        failures.extend(section.check(&story.zone, &billed));
    }
    failures
}

fn parse_story(text: &str) -> Result<Story, Failure> {
    Story::parse(text)
}

fn story_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    billing_stories::story_files(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
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
    let story = parse_story(billing_stories::A_WRONG_STORY).unwrap();
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
