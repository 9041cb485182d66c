//! Irregularities of the event log, reported and never silently absorbed.

use std::fmt;

use time::OffsetDateTime;
use usage_model::IpEvent;

use crate::display::Instant;

/// Which rule of the event log an [`Anomaly`] broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AnomalyKind {
    /// An assign for an address another account holds. The other account's
    /// interval is closed at the assign instant and the new one opens there.
    /// [`Anomaly::other`] is the assign that opened the closed interval.
    AssignWhileHeldByOther,
    /// An assign for an address the same account already holds. It is
    /// ignored; the interval keeps its original start. [`Anomaly::other`] is
    /// the assign that opened the interval.
    AssignWhileHeldBySame,
    /// A release of an address nobody holds. It is ignored.
    /// [`Anomaly::other`] is `None`.
    ReleaseOfFreeIp,
    /// A release naming a different account than the holder. The holder's
    /// interval is closed anyway. [`Anomaly::other`] is the assign that
    /// opened it.
    ReleaseByOtherAccount,
    /// Two events with the same id but different content. The first line
    /// (the first event given) is kept; the other is dropped.
    /// [`Anomaly::event`] is the dropped copy, [`Anomaly::other`] the kept one.
    ConflictingDuplicate,
    /// An event that arrived after its window was billed and changes who
    /// held an address in it (DESIGN §4). The window is not rebilled until
    /// the operator restates it. [`Anomaly::event`] is an event that changed
    /// it; [`Anomaly::other`] is `None`.
    LateEvent,
}

impl AnomalyKind {
    /// Every kind, in declaration order.
    pub const ALL: [AnomalyKind; 6] = [
        AnomalyKind::AssignWhileHeldByOther,
        AnomalyKind::AssignWhileHeldBySame,
        AnomalyKind::ReleaseOfFreeIp,
        AnomalyKind::ReleaseByOtherAccount,
        AnomalyKind::ConflictingDuplicate,
        AnomalyKind::LateEvent,
    ];

    /// A short kebab-case name, stable for reports and test data:
    /// `assign-while-held-by-other`, `assign-while-held-by-same`,
    /// `release-of-free-ip`, `release-by-other-account`,
    /// `conflicting-duplicate`, `late-event`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::AssignWhileHeldByOther => "assign-while-held-by-other",
            AnomalyKind::AssignWhileHeldBySame => "assign-while-held-by-same",
            AnomalyKind::ReleaseOfFreeIp => "release-of-free-ip",
            AnomalyKind::ReleaseByOtherAccount => "release-by-other-account",
            AnomalyKind::ConflictingDuplicate => "conflicting-duplicate",
            AnomalyKind::LateEvent => "late-event",
        }
    }

    /// The kind named `name` (see [`AnomalyKind::as_str`]), or `None`.
    pub fn from_name(name: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event that broke a rule of the log, with what the ledger did about it.
///
/// Anomalies are never silently absorbed: every one is listed by
/// [`OwnershipLedger::anomalies`](crate::OwnershipLedger::anomalies), and a [`QueryPlan`](crate::QueryPlan) lists
/// those whose event lies in its window.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Anomaly {
    /// The rule broken.
    pub kind: AnomalyKind,
    /// The event that broke it.
    pub event: IpEvent,
    /// The event it conflicts with, when there is one (see [`AnomalyKind`]).
    pub other: Option<IpEvent>,
}

impl Anomaly {
    /// When the triggering event happened.
    pub fn at(&self) -> OffsetDateTime {
        self.event.at
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.event;
        write!(
            f,
            "{}: event {} at {} ({} {} {} in zone {})",
            self.kind,
            e.id,
            Instant(e.at),
            e.kind.cloudstack_type(),
            e.ip,
            e.account,
            e.zone
        )?;
        if let Some(o) = &self.other {
            let relation = match self.kind {
                AnomalyKind::ConflictingDuplicate => "kept",
                _ => "held since",
            };
            write!(
                f,
                "; {relation} event {} at {} ({} {} {})",
                o.id,
                Instant(o.at),
                o.kind.cloudstack_type(),
                o.ip,
                o.account
            )?;
        }
        Ok(())
    }
}
