use oytel_types::Amount;

use crate::ports::StoreError;

/// A request field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as on the wire.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// What can go wrong in the domain. The server maps each variant to an HTTP status and a
/// stable error code.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A field of the request is invalid.
    #[error("{}", .0.message)]
    Validation(FieldError),
    /// No such plan.
    #[error("plan `{0}` does not exist")]
    PlanNotFound(String),
    /// The plan exists but cannot be ordered now.
    #[error("plan `{0}` is not available")]
    PlanUnavailable(String),
    /// No such eSIM in this scope.
    #[error("eSIM `{0}` was not found")]
    EsimNotFound(String),
    /// No such order in this scope.
    #[error("order `{0}` was not found")]
    OrderNotFound(String),
    /// The live balance after the charge would fall below the minimum.
    #[error("insufficient balance: the order costs {required} and the balance of {balance} must stay at or above {minimum}")]
    InsufficientBalance {
        /// The balance now.
        balance: Amount,
        /// What the order costs.
        required: Amount,
        /// The minimum balance.
        minimum: Amount,
    },
    /// The idempotency key was used with another request body.
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    /// A request with this idempotency key is still running.
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    IdempotencyInProgress,
    /// The `Idempotency-Key` header is malformed.
    #[error("{0}")]
    InvalidIdempotencyKey(String),
    /// No such webhook endpoint in this scope.
    #[error("webhook endpoint `{0}` was not found")]
    EndpointNotFound(String),
    /// No such event in this scope.
    #[error("event `{0}` was not found")]
    EventNotFound(String),
    /// The eSIM's state does not allow the change.
    #[error(transparent)]
    InvalidTransition(#[from] crate::lifecycle::InvalidTransition),
    /// The operator suspended this eSIM; the partner cannot resume it.
    #[error("eSIM `{0}` was suspended by the operator; only the operator can resume it")]
    SuspendedByOperator(String),
    /// No such top-up for this eSIM (unknown, another coverage, a plan no longer sold).
    #[error("{0}")]
    TopUpNotAvailable(String),
    /// The eSIM takes no top-up of this kind now.
    #[error("{0}")]
    TopUpNotAllowed(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// An hourly quota is used up.
    #[error("the {} quota of {} requests is used up until {}", .kind.as_str(), .used.limit, .used.reset_at.to_rfc3339())]
    QuotaExceeded {
        /// Which quota.
        kind: crate::limits::QuotaKind,
        /// Its state.
        used: crate::limits::QuotaUse,
    },
    /// A cursor that this server did not issue.
    #[error("the cursor is not valid")]
    InvalidCursor,
    /// No profile of this type is in stock; nothing was charged.
    #[error("no eSIM profile of this plan's type is in stock; nothing was charged. Retry later")]
    OutOfStock(String),
    /// The SM-DP+ did not provide a profile; nothing was charged.
    #[error(transparent)]
    Smdp(#[from] crate::profiles::ProfileError),
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CoreError {
    pub(crate) fn field(field: &'static str, message: impl Into<String>) -> CoreError {
        CoreError::Validation(FieldError {
            field,
            message: message.into(),
        })
    }
}
