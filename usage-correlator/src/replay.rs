//! The replay of one address's events: the rules of DESIGN §4 as a state
//! machine over events in replay order.

use usage_model::IpEventKind;

use crate::anomaly::AnomalyKind;
use crate::ledger::Nanos;

/// The state of one address during a replay: free, or held since an
/// instant by an account, opened by an event.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Replay {
    /// `(since, account slot, index of the opening event)`.
    held: Option<(Nanos, u32, u32)>,
}

/// What one event did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// A holding it closed: `(start, end, account slot)`.
    pub(crate) closed: Option<(Nanos, Nanos, u32)>,
    /// A rule it broke: `(kind, index of the event, index of the event it
    /// conflicts with)`.
    pub(crate) anomaly: Option<(AnomalyKind, u32, Option<u32>)>,
}

impl Replay {
    /// A free address.
    pub(crate) fn new() -> Replay {
        Replay::default()
    }

    /// Applies the event at `index` (`at`, by `account`, of `kind`). Events
    /// must come in replay order: by instant, releases before assigns, by id.
    pub(crate) fn apply(
        &mut self,
        at: Nanos,
        account: u32,
        kind: IpEventKind,
        index: u32,
    ) -> Replayed {
        let mut step = Replayed::default();
        match (kind, self.held) {
            (IpEventKind::Assign, None) => self.held = Some((at, account, index)),
            (IpEventKind::Assign, Some((_, holder, opener))) if holder == account => {
                step.anomaly = Some((AnomalyKind::AssignWhileHeldBySame, index, Some(opener)));
            }
            (IpEventKind::Assign, Some((since, holder, opener))) => {
                step.closed = Some((since, at, holder));
                step.anomaly = Some((AnomalyKind::AssignWhileHeldByOther, index, Some(opener)));
                self.held = Some((at, account, index));
            }
            (IpEventKind::Release, None) => {
                step.anomaly = Some((AnomalyKind::ReleaseOfFreeIp, index, None));
            }
            (IpEventKind::Release, Some((since, holder, opener))) => {
                step.closed = Some((since, at, holder));
                if holder != account {
                    step.anomaly = Some((AnomalyKind::ReleaseByOtherAccount, index, Some(opener)));
                }
                self.held = None;
            }
        }
        step
    }

    /// The holding still open after the last event: `(since, account slot)`.
    pub(crate) fn open(&self) -> Option<(Nanos, u32)> {
        self.held.map(|(since, account, _)| (since, account))
    }
}

#[cfg(test)]
mod tests {
    use usage_model::IpEventKind::{Assign, Release};

    use super::{Replay, Replayed};
    use crate::anomaly::AnomalyKind::*;

    /// Each row: the events `(at, account, kind)` of one address, and per
    /// event what it closed and which rule it broke (by event index).
    #[test]
    fn every_rule_of_the_replay() {
        type Step = (
            Option<(i128, i128, u32)>,
            Option<(crate::AnomalyKind, u32, Option<u32>)>,
        );
        type Event = (i128, u32, usage_model::IpEventKind);
        type Case<'a> = (&'a [Event], &'a [Step], Option<(i128, u32)>);
        let cases: &[Case<'_>] = &[
            (
                &[(1, 7, Assign), (5, 7, Release)],
                &[(None, None), (Some((1, 5, 7)), None)],
                None,
            ),
            (
                &[(1, 7, Assign), (3, 8, Assign)],
                &[
                    (None, None),
                    (Some((1, 3, 7)), Some((AssignWhileHeldByOther, 1, Some(0)))),
                ],
                Some((3, 8)),
            ),
            (
                &[(1, 7, Assign), (3, 7, Assign)],
                &[
                    (None, None),
                    (None, Some((AssignWhileHeldBySame, 1, Some(0)))),
                ],
                Some((1, 7)),
            ),
            (
                &[(1, 7, Release)],
                &[(None, Some((ReleaseOfFreeIp, 0, None)))],
                None,
            ),
            (
                &[(1, 7, Assign), (4, 8, Release)],
                &[
                    (None, None),
                    (Some((1, 4, 7)), Some((ReleaseByOtherAccount, 1, Some(0)))),
                ],
                None,
            ),
            // A same-instant handover in replay order: release, then assign.
            (
                &[(1, 7, Assign), (4, 7, Release), (4, 8, Assign)],
                &[(None, None), (Some((1, 4, 7)), None), (None, None)],
                Some((4, 8)),
            ),
        ];
        for (events, steps, open) in cases {
            let mut replay = Replay::new();
            for (index, (&(at, account, kind), &(closed, anomaly))) in
                events.iter().zip(steps.iter()).enumerate()
            {
                let step = replay.apply(at, account, kind, index as u32);
                assert_eq!(
                    step,
                    Replayed { closed, anomaly },
                    "{events:?} event {index}"
                );
            }
            assert_eq!(replay.open(), *open, "{events:?}");
        }
    }
}
