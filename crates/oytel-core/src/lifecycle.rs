//! The eSIM state machine.
//!
//! ```text
//! provisioned ──activate──▶ active ◀──resume── suspended
//!      │                      │ ──suspend──────▶ │
//!      └────────── expire / cancel (from any live state) ──▶ expired | cancelled
//! ```

use crate::ports::{EsimRecord, TransitionResult};
use crate::{CoreError, EsimStatus};

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
    matches!(status, EsimStatus::Expired | EsimStatus::Cancelled)
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
}
