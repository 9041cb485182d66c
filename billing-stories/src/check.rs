//! What a billing run produced for one window, the check of it against a
//! story's expectations, and a Traffic Sentinel that answers from the
//! story's buckets.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use usage_model::{ByteCounts, TrafficAnswer, TrafficQuery, ZoneId};

use crate::{ExpectedRecord, Section, Story};

/// A mismatch or a malformed line: the story's line number and a message.
pub type Failure = (usize, String);

/// What a billing run produced for one window of a story, however it got
/// there (straight from the billing core, or read back from a store).
#[derive(Debug, Default)]
pub struct Billed {
    /// The records, in any order.
    pub records: Vec<ExpectedRecord>,
    /// The anomalies: event id and kind name, in any order.
    pub anomalies: Vec<(u64, String)>,
    /// Bytes per account.
    pub totals: BTreeMap<String, ByteCounts>,
    /// The plan's pieces, queries and addresses, when the run knows them.
    pub plan: Option<[usize; 3]>,
    /// The zone and time of the checkpoint after the window.
    pub checkpoint: Option<(ZoneId, OffsetDateTime)>,
}

impl Story {
    /// Answers `queries` like Traffic Sentinel from the story's buckets:
    /// each query interval covers the buckets whose start lies in it.
    ///
    /// # Errors
    ///
    /// A sum passes `u64`.
    pub fn answer(&self, queries: &[TrafficQuery]) -> Result<TrafficAnswer, usage_model::Error> {
        let mut answer = TrafficAnswer::new();
        for q in queries {
            for &ip in &q.ips {
                let mut bytes = ByteCounts::ZERO;
                for (_, (_, counts)) in self
                    .traffic
                    .range((ip, q.interval.start())..(ip, q.interval.end()))
                {
                    bytes = bytes.checked_add(*counts)?;
                }
                if !bytes.is_zero() {
                    answer.insert(q.tag, ip, bytes)?;
                }
            }
        }
        Ok(answer)
    }

    /// Traffic buckets whose start is off the story's grid.
    pub fn check_traffic(&self) -> Vec<Failure> {
        self.traffic
            .iter()
            .filter(|((_, at), _)| !self.grid.holds(*at))
            .map(|(_, (line, _))| (*line, "traffic bucket start is not on the grid".to_owned()))
            .collect()
    }
}

impl Section {
    /// Compares what a run billed for this window with what the story
    /// expects; returns every mismatch with its line. The plan size is
    /// checked only when `billed.plan` is known.
    pub fn check(&self, zone: &ZoneId, billed: &Billed) -> Vec<Failure> {
        let mut failures = Vec::new();
        // Exactly one of the two must be given.
        if self.no_records != self.records.is_empty() {
            failures.push((
                self.line,
                "a window needs either `expect record` lines or `expect no records`".to_owned(),
            ));
        }
        let mut actual = billed.records.clone();
        for (line, expected) in &self.records {
            match actual.iter().position(|r| r == expected) {
                Some(i) => {
                    actual.remove(i);
                }
                None => failures.push((*line, format!("missing {}", show(expected)))),
            }
        }
        for unexpected in actual {
            failures.push((self.line, format!("unexpected {}", show(&unexpected))));
        }

        let mut actual = billed.anomalies.clone();
        for (line, id, kind) in &self.anomalies {
            match actual.iter().position(|(i, k)| i == id && k == kind) {
                Some(i) => {
                    actual.remove(i);
                }
                None => failures.push((*line, format!("missing anomaly {id} {kind}"))),
            }
        }
        for (id, kind) in actual {
            failures.push((self.line, format!("unexpected anomaly {id} {kind}")));
        }

        if !self.totals.is_empty() {
            let mut actual = billed.totals.clone();
            for (line, account, bytes) in &self.totals {
                let got = actual.remove(account);
                if got != Some(*bytes) {
                    failures.push((*line, format!("total of {account} is {got:?}")));
                }
            }
            for (account, bytes) in actual {
                failures.push((
                    self.line,
                    format!("unexpected total of {account}: {bytes:?}"),
                ));
            }
        }

        if let (Some((line, expected)), Some(got)) = (self.plan, billed.plan)
            && got != expected
        {
            failures.push((
                line,
                format!("plan has pieces/queries/ips {got:?}, expected {expected:?}"),
            ));
        }

        match self.checkpoint {
            None => failures.push((self.line, "a window needs `expect checkpoint`".to_owned())),
            Some((line, at)) => {
                if billed.checkpoint.as_ref() != Some(&(zone.clone(), at)) {
                    failures.push((line, format!("checkpoint is {:?}", billed.checkpoint)));
                }
            }
        }
        failures
    }
}

/// A record as a story writes it.
fn show(r: &ExpectedRecord) -> String {
    let t = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_else(|_| at.to_string());
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
