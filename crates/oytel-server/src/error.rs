//! The one error type of the HTTP layer. Every failure becomes an [`ErrorBody`] with a stable
//! code and the request id; the details of a 500 are logged, never returned.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use oytel_core::body::BodyError;
use oytel_core::keys::AuthFailure;
use oytel_core::ports::StoreError;
use oytel_core::CoreError;
use oytel_types::{ErrorBody, ErrorCode, ErrorDetails};

use crate::context::current_request_id;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    details: Option<Box<ErrorDetails>>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// The message a client reads.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// A 400 naming the field at fault.
    pub fn field(
        code: ErrorCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message).with_details(ErrorDetails {
            field: Some(field.into()),
            ..ErrorDetails::default()
        })
    }

    /// Adds details.
    pub fn with_details(mut self, details: ErrorDetails) -> ApiError {
        self.details = Some(Box::new(details));
        self
    }

    /// Adds a `Retry-After` of `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// A 500; `cause` is logged with the request id and not shown to the client.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal server error; quote the request id to support",
        )
    }

    /// The stable code.
    pub fn code(&self) -> &ErrorCode {
        &self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 404 for an unknown route.
    pub fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such resource",
        )
    }
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> ApiError {
        let (code, message) = match failure {
            AuthFailure::Missing => (
                ErrorCode::MissingApiKey,
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            ),
            AuthFailure::Invalid => (ErrorCode::InvalidApiKey, "invalid API key"),
            AuthFailure::Revoked => (ErrorCode::ApiKeyRevoked, "this API key was revoked"),
        };
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::ServiceUnavailable,
                    "the service is temporarily unavailable; retry shortly",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        match error.field {
            Some(field) => ApiError::field(error.code, field, error.message),
            None => ApiError::new(StatusCode::BAD_REQUEST, error.code, error.message),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> ApiError {
        let message = error.to_string();
        match error {
            CoreError::Validation(field) => {
                ApiError::field(ErrorCode::ValidationError, field.field, message)
            }
            CoreError::PlanNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::PlanNotFound, message).with_details(
                    ErrorDetails {
                        field: Some("plan_id".into()),
                        ..ErrorDetails::default()
                    },
                )
            }
            CoreError::PlanUnavailable(_) => {
                ApiError::field(ErrorCode::ValidationError, "plan_id", message)
            }
            CoreError::EsimNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::EsimNotFound, message)
            }
            CoreError::OrderNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::OrderNotFound, message)
            }
            CoreError::InsufficientBalance {
                balance,
                required,
                minimum,
            } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                ErrorCode::InsufficientBalance,
                message,
            )
            .with_details(ErrorDetails {
                balance: Some(balance),
                required: Some(required),
                minimum_balance: Some(minimum),
                ..ErrorDetails::default()
            }),
            CoreError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyKeyReused,
                message,
            ),
            CoreError::IdempotencyInProgress => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::IdempotencyRequestInProgress,
                message,
            )
            .with_retry_after(1),
            CoreError::EndpointNotFound(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::WebhookEndpointNotFound,
                message,
            ),
            CoreError::EventNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::EventNotFound, message)
            }
            CoreError::InvalidTransition(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidStateTransition,
                message,
            ),
            CoreError::SuspendedByOperator(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SuspendedByOperator,
                message,
            ),
            CoreError::TopUpNotAvailable(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::TopupNotAvailable, message)
            }
            CoreError::TopUpNotAllowed(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::TopupNotAllowed, message)
            }
            CoreError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
            }
            CoreError::QuotaExceeded { kind, used } => {
                let wait = (used.reset_at - chrono::Utc::now()).num_seconds().max(1);
                crate::extract::rate_limited(
                    kind.as_str(),
                    std::time::Duration::from_secs(u64::try_from(wait).unwrap_or(1)),
                )
            }
            CoreError::InvalidIdempotencyKey(_) => {
                ApiError::field(ErrorCode::InvalidIdempotencyKey, "Idempotency-Key", message)
            }
            CoreError::InvalidCursor => {
                ApiError::field(ErrorCode::InvalidCursor, "cursor", message)
            }
            CoreError::OutOfStock(profile_type) => {
                tracing::warn!(profile_type, "a live order found no profile in stock");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::ProfileStockExhausted,
                    message,
                )
            }
            CoreError::Smdp(smdp) => {
                use oytel_core::profiles::ProfileError;
                tracing::warn!(error = %smdp.detail(), "the SM-DP+ did not provide a profile");
                let (status, code) = match smdp {
                    ProfileError::Unreachable(_) => {
                        (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::SmdpUnavailable)
                    }
                    ProfileError::Timeout(_) => {
                        (StatusCode::GATEWAY_TIMEOUT, ErrorCode::SmdpTimeout)
                    }
                    ProfileError::Rejected(_) => (StatusCode::BAD_GATEWAY, ErrorCode::SmdpRejected),
                    ProfileError::Protocol(_) => {
                        (StatusCode::BAD_GATEWAY, ErrorCode::SmdpProtocolError)
                    }
                };
                ApiError::new(status, code, message)
            }
            CoreError::Store(store) => store.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            success: false,
            error: self.message,
            code: self.code,
            request_id: current_request_id(),
            details: self.details.map(|d| *d),
        };
        let retry_after = self
            .retry_after
            .or((self.status == StatusCode::SERVICE_UNAVAILABLE).then_some(5));
        if self.status.is_server_error() {
            crate::recent_errors::record(crate::recent_errors::ServerError {
                at: chrono::Utc::now(),
                status: self.status.as_u16(),
                code: body.code.clone(),
                request_id: body.request_id.clone(),
            });
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
        {
            response.headers_mut().insert("retry-after", seconds);
        }
        response
    }
}
