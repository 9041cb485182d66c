//! Fault injection: what the emulator can be told to do wrong, and for how
//! many requests.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::Error;

/// The line [`Fault::GarbageLine`] inserts among the rows of an answer.
pub const GARBAGE_LINE: &str = "#!garbage: this is not a row";

/// The body [`Fault::HtmlErrorPage`] answers with (status 200, `text/html`).
pub const HTML_ERROR_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Error</title></head>\
<body><h1>Internal Server Error</h1><p>The query could not be run.</p></body></html>\n";

/// A misbehaviour the emulator can be told to show, through [`FaultControl`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Wait this long (after reading the request) before answering.
    Delay(Duration),
    /// Answer with this HTTP status (400..=599) and a short text body instead
    /// of running the script.
    HttpStatus(u16),
    /// Send the status and headers with the full answer's `Content-Length`,
    /// then only the first half of the body, then close the connection.
    DropMidBody,
    /// Answer `200` with a correct `Content-Length`, but without the last
    /// line (the `end,COUNT` sentinel of a client script) and, when two or
    /// more lines remain, without the last of those rows too.
    TruncateBeforeSentinel,
    /// Insert [`GARBAGE_LINE`] in the middle of the answer's lines.
    GarbageLine,
    /// Answer `200` with `text/html` [`HTML_ERROR_PAGE`] instead of running the script.
    HtmlErrorPage,
    /// Answer `200` with an empty `text/plain` body.
    EmptyBody,
}

impl Fault {
    /// `503 Service Unavailable`, the usual transient server error.
    pub const SERVICE_UNAVAILABLE: Fault = Fault::HttpStatus(503);
}

/// For how many query requests a fault applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// The next `K` requests to the query path, whatever their outcome;
    /// `Next(u32::MAX)` means [`Times::Always`] and `Next(0)` removes the fault.
    Next(u32),
    /// Every request until cleared.
    Always,
}

impl Times {
    fn normalized(self) -> Option<Times> {
        match self {
            Times::Next(0) => None,
            Times::Next(u32::MAX) | Times::Always => Some(Times::Always),
            other => Some(other),
        }
    }

    /// Uses up one request; returns whether the fault applies to it.
    fn consume(slot: &mut Option<(Fault, Times)>) -> Option<Fault> {
        let (fault, times) = (*slot)?;
        if let Times::Next(k) = times {
            *slot = (k > 1).then_some((fault, Times::Next(k - 1)));
        }
        Some(fault)
    }
}

#[derive(Debug, Default)]
struct FaultState {
    /// `Fault::Delay`, which combines with any response fault.
    delay: Option<(Fault, Times)>,
    /// Any other fault; one at a time.
    response: Option<(Fault, Times)>,
}

/// What faults are to be applied to one request.
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    pub(crate) delay: Option<Duration>,
    pub(crate) response: Option<Fault>,
}

impl FaultState {
    /// The slot `fault` goes in.
    fn slot(&mut self, fault: Fault) -> &mut Option<(Fault, Times)> {
        match fault {
            Fault::Delay(_) => &mut self.delay,
            _ => &mut self.response,
        }
    }
}

/// Refuses a [`Fault::HttpStatus`] outside `400..=599`.
fn check_status(fault: Fault) -> Result<(), Error> {
    match fault {
        Fault::HttpStatus(code) if !(400..=599).contains(&code) => Err(Error::FaultStatus(code)),
        _ => Ok(()),
    }
}

/// A handle to set and clear an emulator's faults at runtime; clones share
/// the same state.
///
/// There are two slots: a [`Fault::Delay`], and one response fault (any
/// other variant). A delay combines with a response fault: the answer is
/// delayed, then misbehaves. Two response faults do not combine:
/// [`FaultControl::set`] refuses a response fault while another one is in
/// force, and [`FaultControl::replace`] says that the new one is to take
/// its place. Faults apply only to requests to [`QUERY_PATH`](crate::QUERY_PATH).
///
/// ```
/// use traffic_sentinel_emulator::{Fault, FaultControl, Times};
///
/// let faults = FaultControl::default();
/// faults.set(Fault::SERVICE_UNAVAILABLE, Times::Next(2)).unwrap();
/// assert_eq!(faults.active(), vec![(Fault::HttpStatus(503), Times::Next(2))]);
/// // A second response fault is refused, not silently swapped in ...
/// assert!(faults.set(Fault::GarbageLine, Times::Always).is_err());
/// // ... unless it is meant to replace the first; a delay combines.
/// faults.replace(Fault::GarbageLine, Times::Always).unwrap();
/// faults.set(Fault::Delay(std::time::Duration::from_millis(5)), Times::Next(1)).unwrap();
/// assert_eq!(faults.active().len(), 2);
/// faults.clear();
/// assert!(faults.active().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct FaultControl {
    state: Arc<Mutex<FaultState>>,
}

impl FaultControl {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `fault` to the next requests as `times` says, beside a fault
    /// of the other slot (a delay and a response fault combine). Setting the
    /// fault already in force again sets its count anew; `Times::Next(0)`
    /// removes it.
    ///
    /// # Errors
    ///
    /// [`Error::FaultStatus`] when a [`Fault::HttpStatus`] is outside
    /// `400..=599`; [`Error::FaultConflict`] when another response fault (or
    /// another delay) is in force: use [`FaultControl::replace`] to swap it.
    pub fn set(&self, fault: Fault, times: Times) -> Result<(), Error> {
        check_status(fault)?;
        let mut state = self.lock();
        let slot = state.slot(fault);
        if let Some((active, _)) = *slot
            && active != fault
        {
            return Err(Error::FaultConflict {
                active,
                refused: fault,
            });
        }
        *slot = times.normalized().map(|times| (fault, times));
        Ok(())
    }

    /// Applies `fault` to the next requests as `times` says, in place of
    /// the fault of its slot (response fault or delay) that is in force.
    ///
    /// # Errors
    ///
    /// [`Error::FaultStatus`] when a [`Fault::HttpStatus`] is outside `400..=599`.
    pub fn replace(&self, fault: Fault, times: Times) -> Result<(), Error> {
        check_status(fault)?;
        *self.lock().slot(fault) = times.normalized().map(|times| (fault, times));
        Ok(())
    }

    /// Removes every fault.
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
    }

    /// The faults still to be applied, delay first.
    pub fn active(&self) -> Vec<(Fault, Times)> {
        let state = self.lock();
        state.delay.into_iter().chain(state.response).collect()
    }

    pub(crate) fn take(&self) -> FaultPlan {
        let mut state = self.lock();
        let delay = match Times::consume(&mut state.delay) {
            Some(Fault::Delay(d)) => Some(d),
            _ => None,
        };
        FaultPlan {
            delay,
            response: Times::consume(&mut state.response),
        }
    }
}

/// The answer without its last line (the sentinel) and, when two or more
/// lines remain, without the last of those too.
pub(crate) fn truncate_before_sentinel(answer: &str) -> String {
    let mut lines: Vec<&str> = answer.split_inclusive('\n').collect();
    lines.pop();
    if lines.len() >= 2 {
        lines.pop();
    }
    lines.concat()
}

/// The answer with [`GARBAGE_LINE`] in the middle of its lines.
pub(crate) fn insert_garbage_line(answer: &str) -> String {
    let mut lines: Vec<&str> = answer.split_inclusive('\n').collect();
    let garbage = format!("{GARBAGE_LINE}\n");
    lines.insert(lines.len() / 2, &garbage);
    lines.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_and_garbage() {
        assert_eq!(truncate_before_sentinel("a\nb\nc\nend,3\n"), "a\nb\n");
        assert_eq!(truncate_before_sentinel("a\nend,1\n"), "a\n");
        assert_eq!(truncate_before_sentinel("end,0\n"), "");
        assert_eq!(
            insert_garbage_line("a\nb\nend,2\n"),
            format!("a\n{GARBAGE_LINE}\nb\nend,2\n")
        );
        assert_eq!(
            insert_garbage_line("end,0\n"),
            format!("{GARBAGE_LINE}\nend,0\n")
        );
    }

    #[test]
    fn fault_counts_run_down() {
        let faults = FaultControl::default();
        faults.set(Fault::GarbageLine, Times::Next(2)).unwrap();
        faults
            .set(Fault::Delay(Duration::from_millis(1)), Times::Always)
            .unwrap();
        for _ in 0..2 {
            let plan = faults.take();
            assert_eq!(plan.response, Some(Fault::GarbageLine));
            assert_eq!(plan.delay, Some(Duration::from_millis(1)));
        }
        let plan = faults.take();
        assert_eq!(plan.response, None);
        assert_eq!(plan.delay, Some(Duration::from_millis(1)));
        faults
            .replace(Fault::EmptyBody, Times::Next(u32::MAX))
            .unwrap();
        assert_eq!(faults.active()[1], (Fault::EmptyBody, Times::Always));
        faults.set(Fault::EmptyBody, Times::Next(0)).unwrap();
        assert_eq!(faults.active().len(), 1);
        assert!(matches!(
            faults.set(Fault::HttpStatus(200), Times::Always),
            Err(Error::FaultStatus(200))
        ));
        faults.clear();
        assert!(faults.active().is_empty());
    }

    #[test]
    fn a_second_response_fault_is_refused_unless_it_replaces_the_first() {
        let faults = FaultControl::default();
        faults.set(Fault::GarbageLine, Times::Always).unwrap();
        match faults.set(Fault::EmptyBody, Times::Next(1)) {
            Err(Error::FaultConflict { active, refused }) => {
                assert_eq!((active, refused), (Fault::GarbageLine, Fault::EmptyBody));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(faults.active(), vec![(Fault::GarbageLine, Times::Always)]);
        // The same fault again sets its count anew.
        faults.set(Fault::GarbageLine, Times::Next(2)).unwrap();
        assert_eq!(faults.active(), vec![(Fault::GarbageLine, Times::Next(2))]);
        // A delay combines with it; a second, different delay is refused.
        faults
            .set(Fault::Delay(Duration::from_millis(1)), Times::Always)
            .unwrap();
        assert!(
            faults
                .set(Fault::Delay(Duration::from_millis(2)), Times::Always)
                .is_err()
        );
        faults.replace(Fault::EmptyBody, Times::Next(1)).unwrap();
        assert_eq!(
            faults.active(),
            vec![
                (Fault::Delay(Duration::from_millis(1)), Times::Always),
                (Fault::EmptyBody, Times::Next(1))
            ]
        );
        let plan = faults.take();
        assert_eq!(plan.response, Some(Fault::EmptyBody));
        // Used up: another response fault may be set.
        faults.set(Fault::GarbageLine, Times::Always).unwrap();
    }
}
