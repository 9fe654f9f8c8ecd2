//! The eSIM state machine, and the rules that follow from a state: which events partners
//! are told of, which states count usage, which states are still live. The storage adapters
//! call these functions inside their transactions; they hold no such rule themselves.
//!
//! ```text
//! provisioned ──activate──▶ active ◀──resume── suspended
//!      │                      │ ──suspend──────▶ │
//!      └────────── expire / cancel (from any live state) ──▶ expired | cancelled
//! ```
//!
//! Two moves happen outside [`check_transition`], in the packages' rules
//! (`crate::packages`): an expiry with a renewal queued starts that renewal instead (the
//! eSIM stays as it is), and a renewal bought for an expired eSIM that was activated makes it
//! active again.
//!
//! | rule | function |
//! |---|---|
//! | the moves above, and no others | [`check_transition`] |
//! | a live state (provisioned, active, suspended) can still expire or be cancelled | [`LIVE`], [`is_final`] |
//! | the first activation stamps `activated_at`; a resume keeps it | [`apply`] |
//! | provisioned → active tells partners `esim.activated`; any move to expired, `esim.expired`; active → suspended `esim.suspended`; suspended → active `esim.resumed`; to cancelled, `esim.cancelled` | [`event_for`] |
//! | usage is counted while active only: never before activation, while suspended, or after the end | [`accepts_usage`] |
//! | who may suspend and resume (table below) | [`decide_suspension`] |
//!
//! Suspensions: the partner and the operator may both suspend an active eSIM; what the operator
//! suspended, only the operator resumes. Asking for what already holds changes nothing (a
//! retry is safe). Validity keeps running while suspended.
//!
//! | the eSIM | asked | result |
//! |---|---|---|
//! | active | suspend (partner or operator) | suspended by the asker |
//! | suspended by the partner | the operator suspends | suspended by the operator |
//! | suspended (by anyone) | the partner suspends, or the operator suspends what it suspended | unchanged |
//! | suspended by the partner | resume (partner or operator) | active |
//! | suspended by the operator | the operator resumes | active |
//! | suspended by the operator | the partner resumes | refused: `SUSPENDED_BY_OPERATOR` |
//! | active | resume | unchanged |
//! | provisioned, expired or cancelled | suspend or resume | refused: `INVALID_STATE_TRANSITION` |

use chrono::{DateTime, Utc};
use oytel_types::EventType;

use crate::ports::{EsimRecord, TransitionResult};
use crate::{CoreError, EsimStatus};

/// The states an eSIM can still leave: it may still expire or be cancelled.
pub const LIVE: [EsimStatus; 3] = [
    EsimStatus::Provisioned,
    EsimStatus::Active,
    EsimStatus::Suspended,
];

/// A transition that the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an eSIM that is {} cannot become {}", from.as_str(), to.as_str())]
pub struct InvalidTransition {
    /// The current state.
    pub from: EsimStatus,
    /// The state asked for.
    pub to: EsimStatus,
}

/// Whether an eSIM in `from` may move to `to`.
pub fn check_transition(from: EsimStatus, to: EsimStatus) -> Result<(), InvalidTransition> {
    use EsimStatus::*;
    let allowed = matches!(
        (from, to),
        (Provisioned, Active)
            | (Active, Suspended)
            | (Suspended, Active)
            | (Provisioned | Active | Suspended, Expired)
            | (Provisioned | Active | Suspended, Cancelled)
    );
    if allowed {
        Ok(())
    } else {
        Err(InvalidTransition { from, to })
    }
}

/// Whether no transition leaves `status`.
pub fn is_final(status: EsimStatus) -> bool {
    !LIVE.contains(&status)
}

/// Moves `esim` to `to` at `now`, after [`check_transition`] allowed it: the first
/// activation stamps `activated_at`.
pub fn apply(esim: &mut EsimRecord, to: EsimStatus, now: DateTime<Utc>) {
    if to == EsimStatus::Active && esim.activated_at.is_none() {
        esim.activated_at = Some(now);
    }
    esim.status = to;
}

/// The event partners are told of a move from `from` to `to`, if any.
pub fn event_for(from: EsimStatus, to: EsimStatus) -> Option<EventType> {
    match (from, to) {
        (EsimStatus::Provisioned, EsimStatus::Active) => Some(EventType::EsimActivated),
        (_, EsimStatus::Expired) => Some(EventType::EsimExpired),
        (EsimStatus::Active, EsimStatus::Suspended) => Some(EventType::EsimSuspended),
        (EsimStatus::Suspended, EsimStatus::Active) => Some(EventType::EsimResumed),
        (_, EsimStatus::Cancelled) => Some(EventType::EsimCancelled),
        _ => None,
    }
}

/// Whether usage reported for an eSIM in `status` is counted.
pub fn accepts_usage(status: EsimStatus) -> bool {
    status == EsimStatus::Active
}

/// Who suspended an eSIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspender {
    /// The partner, through the API.
    Partner,
    /// The operator, with the admin CLI.
    Operator,
}

impl Suspender {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Suspender::Partner => "partner",
            Suspender::Operator => "operator",
        }
    }

    /// The suspender named `name`.
    pub fn parse(name: &str) -> Option<Suspender> {
        [Suspender::Partner, Suspender::Operator]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A suspension asked for, or its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuspensionChange {
    /// Suspend, with a reason the operator keeps.
    Suspend {
        /// Who asks.
        by: Suspender,
        /// Why (the operator's; shown to nobody else).
        reason: Option<String>,
    },
    /// Resume.
    Resume {
        /// Who asks.
        by: Suspender,
    },
}

/// What a suspension change does (the module's second table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspensionDecision {
    /// Move to this state; a suspension is held by this suspender (none when resuming).
    Apply(EsimStatus, Option<Suspender>),
    /// Nothing to do: what was asked already holds.
    Unchanged,
    /// Refused: the operator's suspension, which the partner cannot lift.
    HeldByOperator,
    /// Refused: the state machine does not allow it.
    Invalid(InvalidTransition),
}

/// The rules of suspensions, for an eSIM in `status` whose suspension (if any) is held by
/// `held_by`.
pub fn decide_suspension(
    status: EsimStatus,
    held_by: Option<Suspender>,
    change: &SuspensionChange,
) -> SuspensionDecision {
    use EsimStatus::{Active, Suspended};
    use Suspender::{Operator, Partner};
    use SuspensionDecision::*;
    match (status, change) {
        (Active, SuspensionChange::Suspend { by, .. }) => Apply(Suspended, Some(*by)),
        (Suspended, SuspensionChange::Suspend { by: Operator, .. })
            if held_by != Some(Operator) =>
        {
            Apply(Suspended, Some(Operator))
        }
        (Suspended, SuspensionChange::Suspend { .. }) => Unchanged,
        (Suspended, SuspensionChange::Resume { by: Partner }) if held_by == Some(Operator) => {
            HeldByOperator
        }
        (Suspended, SuspensionChange::Resume { .. }) => Apply(Active, None),
        (Active, SuspensionChange::Resume { .. }) => Unchanged,
        (from, SuspensionChange::Suspend { .. }) => Invalid(InvalidTransition {
            from,
            to: Suspended,
        }),
        (from, SuspensionChange::Resume { .. }) => Invalid(InvalidTransition { from, to: Active }),
    }
}

/// The eSIM after a transition to `to`, or why there is none.
pub fn transitioned(
    result: TransitionResult,
    esim_id: &str,
    to: EsimStatus,
) -> Result<EsimRecord, CoreError> {
    match result {
        TransitionResult::Done(esim) => Ok(*esim),
        TransitionResult::NotFound => Err(CoreError::EsimNotFound(esim_id.to_owned())),
        TransitionResult::Invalid(from) => Err(InvalidTransition { from, to }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EsimStatus::*;

    #[test]
    fn allowed_and_refused_transitions() {
        for (from, to) in [
            (Provisioned, Active),
            (Active, Suspended),
            (Suspended, Active),
            (Active, Expired),
            (Provisioned, Cancelled),
        ] {
            assert!(check_transition(from, to).is_ok(), "{from:?} -> {to:?}");
        }
        for (from, to) in [
            (Active, Provisioned),
            (Expired, Active),
            (Cancelled, Active),
            (Provisioned, Suspended),
            (Expired, Expired),
        ] {
            let err = check_transition(from, to).unwrap_err();
            assert_eq!((err.from, err.to), (from, to));
        }
        assert!(is_final(Expired) && is_final(Cancelled) && !is_final(Active));
    }

    #[test]
    fn each_announced_move_has_its_event() {
        assert_eq!(
            event_for(Provisioned, Active),
            Some(EventType::EsimActivated)
        );
        assert_eq!(
            event_for(Suspended, Active),
            Some(EventType::EsimResumed),
            "a resume is not a new activation"
        );
        for from in LIVE {
            assert_eq!(event_for(from, Expired), Some(EventType::EsimExpired));
            assert_eq!(event_for(from, Cancelled), Some(EventType::EsimCancelled));
        }
        assert_eq!(event_for(Active, Suspended), Some(EventType::EsimSuspended));
    }

    #[test]
    fn usage_counts_while_active_only() {
        assert!(accepts_usage(Active));
        for status in [Provisioned, Suspended, Expired, Cancelled] {
            assert!(!accepts_usage(status), "{status:?}");
        }
    }

    #[test]
    fn suspensions_follow_their_table() {
        use Suspender::{Operator, Partner};
        use SuspensionDecision::*;
        let suspend = |by| SuspensionChange::Suspend { by, reason: None };
        let resume = |by| SuspensionChange::Resume { by };
        for (status, held, change, expected) in [
            (
                Active,
                None,
                suspend(Partner),
                Apply(Suspended, Some(Partner)),
            ),
            (
                Active,
                None,
                suspend(Operator),
                Apply(Suspended, Some(Operator)),
            ),
            (
                Suspended,
                Some(Partner),
                suspend(Operator),
                Apply(Suspended, Some(Operator)),
            ),
            (Suspended, Some(Partner), suspend(Partner), Unchanged),
            (Suspended, Some(Operator), suspend(Partner), Unchanged),
            (Suspended, Some(Operator), suspend(Operator), Unchanged),
            (
                Suspended,
                Some(Partner),
                resume(Partner),
                Apply(Active, None),
            ),
            (
                Suspended,
                Some(Partner),
                resume(Operator),
                Apply(Active, None),
            ),
            (
                Suspended,
                Some(Operator),
                resume(Operator),
                Apply(Active, None),
            ),
            (Suspended, Some(Operator), resume(Partner), HeldByOperator),
            (Active, None, resume(Partner), Unchanged),
        ] {
            assert_eq!(
                decide_suspension(status, held, &change),
                expected,
                "{status:?} held by {held:?}, {change:?}"
            );
        }
        for status in [Provisioned, Expired, Cancelled] {
            for change in [suspend(Partner), resume(Operator)] {
                assert!(matches!(
                    decide_suspension(status, None, &change),
                    Invalid(InvalidTransition { from, .. }) if from == status
                ));
            }
        }
    }

    /// A freshly provisioned eSIM, as provisioning builds it.
    fn provisioned(now: DateTime<Utc>) -> EsimRecord {
        crate::test_support::provisioned("uk-massive-650", now).1
    }

    #[test]
    fn the_first_activation_is_stamped_and_a_resume_keeps_it() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let mut esim = provisioned(t0);
        apply(&mut esim, Active, t0);
        assert_eq!((esim.status, esim.activated_at), (Active, Some(t0)));
        apply(&mut esim, Suspended, t0 + chrono::Duration::days(1));
        apply(&mut esim, Active, t0 + chrono::Duration::days(2));
        assert_eq!((esim.status, esim.activated_at), (Active, Some(t0)));
    }
}
