//! The billing stories of `usage-correlator/testdata/` through the store:
//! each story's windows collected by [`Collection`] from a Traffic Sentinel
//! that answers from the story's buckets, committed on every engine, then
//! read back through the store's reports and checked against the story's
//! hand-computed records, anomalies, totals and checkpoints. Every engine
//! must give the same reports, line for line.

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use billing_stories::{Billed, ExpectedRecord, Failure, Story};
use time::Duration;
use usage_correlator::{LedgerOptions, OwnershipLedger, Schedule};
use usage_model::{TrafficAnswer, TrafficQuery};
use usage_store::{Collection, ReportFilter, Store, TrafficSource};

use crate::engines::engines;

/// Traffic Sentinel over a story's buckets.
struct StorySource<'a>(&'a Story);

impl TrafficSource for StorySource<'_> {
    type Error = usage_model::Error;

    async fn fetch(&self, queries: &[TrafficQuery]) -> Result<(TrafficAnswer, u64), Self::Error> {
        Ok((self.0.answer(queries)?, 1))
    }
}

fn story_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../usage-correlator/testdata");
    billing_stories::story_files(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
}

/// Collects each window of `story` into `store` and checks what the store
/// reports for it; returns the failures and the store's whole report.
async fn bill(story: &Story, store: &Store) -> (Vec<Failure>, String) {
    let options = story
        .excluded_accounts
        .iter()
        .fold(LedgerOptions::new(), |options, account| {
            options.exclude_account(account.clone())
        });
    let ledger = OwnershipLedger::from_events(options, story.events.clone());
    let source = StorySource(story);
    let mut failures = Vec::new();
    for section in &story.sections {
        let Some(window) = section.window else {
            continue;
        };
        let schedule = Schedule::new()
            .grid(story.grid)
            .settle_lag(Duration::ZERO)
            .max_window(window.end() - window.start());
        let collection = Collection::new(store, &ledger, &source, &story.zone).schedule(schedule);
        let mut collected = Vec::new();
        let run = collection
            .collect(
                Some(window.start()),
                Some(window.end()),
                window.end() + Duration::DAY,
                |report| collected.push(report.window),
            )
            .await;
        if let Err(e) = run {
            failures.push((section.line, format!("collect failed: {e}")));
            continue;
        }
        if collected != [window] {
            failures.push((
                section.line,
                format!("collected windows {collected:?}, the story bills {window:?}"),
            ));
            continue;
        }
        let filter = ReportFilter::new()
            .zone(story.zone.clone())
            .from(window.start())
            .until(window.end());
        let mut billed = Billed::default();
        store
            .report_by_ip(&filter, |r| {
                billed.records.push(ExpectedRecord::from(&r));
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        store
            .report_anomalies(&filter, |a| {
                billed.anomalies.push((a.event_id, a.kind));
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        store
            .report_by_account(&filter, |a| {
                let bytes = usage_model::ByteCounts {
                    sent: a.bytes_sent,
                    received: a.bytes_received,
                };
                billed.totals.insert(a.account.to_string(), bytes);
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        billed.checkpoint = store
            .checkpoint(&story.zone)
            .await
            .unwrap()
            .map(|at| (story.zone.clone(), at));
        failures.extend(section.check(&story.zone, &billed));
    }
    (failures, whole_report(store).await)
}

/// Every record and anomaly of the store, a line each.
async fn whole_report(store: &Store) -> String {
    let mut text = String::new();
    store
        .report_by_ip(&ReportFilter::new(), |r| {
            writeln!(text, "{r:?}").unwrap();
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    store
        .report_anomalies(&ReportFilter::new(), |a| {
            writeln!(text, "{a:?}").unwrap();
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    text
}

#[tokio::test]
async fn every_story_bills_as_told_on_every_engine() {
    let files = story_files();
    assert!(files.len() >= 15, "found only {} stories", files.len());
    let mut report = String::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        let story = match Story::parse(&std::fs::read_to_string(path).unwrap()) {
            Ok(story) => story,
            Err((line, message)) => {
                writeln!(report, "{name}:{line}: {message}").unwrap();
                continue;
            }
        };
        let mut first: Option<(String, String)> = None;
        for db in engines().await {
            let store = db.open().await;
            let (failures, whole) = bill(&story, &store).await;
            store.close().await;
            for (line, message) in failures {
                writeln!(report, "{name}:{line}: {}: {message}", db.engine).unwrap();
            }
            match &first {
                None => first = Some((db.engine.to_string(), whole)),
                Some((engine, reference)) if *reference != whole => writeln!(
                    report,
                    "{name}: {} reports differ from {engine}'s:\n{whole}\nvs\n{reference}",
                    db.engine
                )
                .unwrap(),
                Some(_) => {}
            }
        }
    }
    assert!(report.is_empty(), "stories failed:\n{report}");
}

/// The check itself can fail: a story whose expectation is wrong is
/// reported with its line on the store too.
#[tokio::test]
async fn a_wrong_expectation_fails_through_the_store() {
    let story = Story::parse(billing_stories::A_WRONG_STORY).unwrap();
    let db = engines().await.remove(0);
    let store = db.open().await;
    let (failures, _) = bill(&story, &store).await;
    let lines: Vec<usize> = failures.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [5, 4], "{failures:?}");
    assert!(failures[1].1.contains("sent 5"), "{failures:?}");
}
