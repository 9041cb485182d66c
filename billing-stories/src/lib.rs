//! The billing stories of `usage-correlator/testdata/`: small, named billing
//! cases told in a line format, each with the records, anomalies, totals and
//! checkpoint that billing must produce. The billing core runs them through
//! ledger → plan → join (`usage-correlator`'s tests); the store runs them
//! through a commit and its reports on every engine (`usage-store`'s tests),
//! so that both are held to the same hand-computed answers.
//!
//! ```
//! let story = billing_stories::Story::parse(
//!     "# acct-a holds 10.0.0.1 all day.\n\
//!      event 1 2026-11-01T00:00Z assign acct-a 10.0.0.1\n\
//!      traffic 10.0.0.1 2026-11-01T01:00Z sent 5\n\
//!      window 2026-11-01T00:00Z .. 2026-11-01T02:00Z\n\
//!      expect record acct-a 10.0.0.1 2026-11-01T01:00Z .. 2026-11-01T02:00Z sent 5\n\
//!      expect checkpoint 2026-11-01T02:00Z\n",
//! )
//! .map_err(|(line, message)| format!("line {line}: {message}"))?;
//! assert_eq!(story.sections.len(), 1);
//! assert_eq!(story.events.len(), 1);
//! # Ok::<(), String>(())
//! ```
//!
//! # Story format
//!
//! One statement per line; blank lines and lines starting with `#` are
//! ignored; a story starts with a `#` header telling it in words. Times are
//! RFC 3339 (`2026-11-01T03:00:00Z`; the seconds may be left out:
//! `2026-11-01T03:00Z`). Durations are a number and a unit: `90s`, `15m`,
//! `1h`, `1d`.
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
//! interval with the sum of the buckets whose start lies in it
//! ([`Story::answer`]).
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
//! any is given, too ([`Section::check`]).

mod check;
mod story;

pub use check::{Billed, Failure};
pub use story::{ExpectedRecord, ScheduleLine, Section, Story};

use std::path::{Path, PathBuf};

/// A story whose expectation is wrong, for tests that show a run's check
/// can fail: line 5 expects 6 bytes sent where 5 are billed, so the check
/// reports line 5 (the record missing) and line 4 (the window's unexpected
/// record, `sent 5`).
pub const A_WRONG_STORY: &str = "# A deliberately wrong story.
event 1 2026-11-01T00:00Z assign acct-a 10.0.0.1
traffic 10.0.0.1 2026-11-01T01:00Z sent 5
window 2026-11-01T00:00Z .. 2026-11-01T02:00Z
expect record acct-a 10.0.0.1 2026-11-01T00:00Z .. 2026-11-01T02:00Z sent 6
expect checkpoint 2026-11-01T02:00Z
";

/// The `*.story` files of a directory, sorted by name.
///
/// # Errors
///
/// The directory cannot be read.
pub fn story_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "story") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
