//! The SDK's error: one enum a caller can match on, which says whether trying again may
//! help ([`Error::is_retryable`]) and, for a paid call, which idempotency key to try again
//! with ([`Error::idempotency_key`]).
//!
//! | error | the API may have acted | retryable |
//! |---|---|---|
//! | [`Error::Timeout`], [`Error::Network`] | yes | yes: with the same idempotency key for a paid call |
//! | [`Error::RateLimited`] | no | yes, after `retry_after` |
//! | [`Error::Api`] with 408, 500, 502, 503, 504 or `IDEMPOTENCY_REQUEST_IN_PROGRESS` | maybe (a 5xx) | yes, with the same key |
//! | [`Error::Api`] otherwise, [`Error::Unauthorized`] | no | no: change the request, the key or the account |
//! | [`Error::Decode`] | yes (the answer came, unreadable) | no |
//! | [`Error::Config`] | nothing was sent | no |
//!
//! Variants are `#[non_exhaustive]` so that they may carry more later; build them in your
//! tests with the constructors ([`Error::api`], [`Error::timeout`], …).

use std::time::Duration;

use oytel_types::{ErrorCode, ErrorDetails};

use crate::request::RateLimit;

/// Everything that can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an error (4xx or 5xx) other than an authentication failure or a
    /// rate limit. Match on `code`, which is stable; `message` is for people.
    #[error("{message} (HTTP {status}, {code})")]
    #[non_exhaustive]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code (`ErrorCode::Other` for codes newer than this SDK).
        code: ErrorCode,
        /// The server's message.
        message: String,
        /// More about the error (e.g. the field at fault).
        details: Option<Box<ErrorDetails>>,
        /// The request id, for support.
        request_id: Option<String>,
        /// The idempotency key the call was sent with (paid calls).
        idempotency_key: Option<String>,
    },
    /// The API key is missing, unknown or revoked (HTTP 401), or may not do this (403).
    #[error("unauthorized: {message} (HTTP {status}, {code})")]
    #[non_exhaustive]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// `MISSING_API_KEY`, `INVALID_API_KEY`, `API_KEY_REVOKED` or `FORBIDDEN`.
        code: ErrorCode,
        /// The server's message.
        message: String,
        /// The request id.
        request_id: Option<String>,
    },
    /// Too many requests (HTTP 429), still so after the retries allowed.
    #[error("rate limited{}", .retry_after.map(|d| format!("; retry after {}s", d.as_secs())).unwrap_or_default())]
    #[non_exhaustive]
    RateLimited {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
        /// The limit that refused it, as the server's headers gave it.
        limit: Option<Box<RateLimit>>,
        /// The server's message.
        message: String,
        /// The request id.
        request_id: Option<String>,
        /// The idempotency key the call was sent with (paid calls).
        idempotency_key: Option<String>,
    },
    /// The request did not reach the server, or the connection broke: the API may have acted.
    #[error("network error: {source}")]
    #[non_exhaustive]
    Network {
        /// What broke.
        source: Box<dyn std::error::Error + Send + Sync>,
        /// The idempotency key the call was sent with (paid calls): retry with it.
        idempotency_key: Option<String>,
    },
    /// No answer in time (an attempt's timeout, or the call's deadline): the API may have
    /// acted.
    #[error("the request timed out")]
    #[non_exhaustive]
    Timeout {
        /// The idempotency key the call was sent with (paid calls): retry with it.
        idempotency_key: Option<String>,
    },
    /// The answer could not be read as the expected type. The status is kept.
    #[error("could not decode the answer (HTTP {status}): {message}")]
    #[non_exhaustive]
    Decode {
        /// HTTP status.
        status: u16,
        /// What failed.
        message: String,
        /// The request id.
        request_id: Option<String>,
    },
    /// The client was configured wrongly (e.g. a key for the other environment).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// An [`Error::Api`] (for tests of code that handles errors).
    pub fn api(status: u16, code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Api {
            status,
            code,
            message: message.into(),
            details: None,
            request_id: None,
            idempotency_key: None,
        }
    }

    /// An [`Error::Unauthorized`] (for tests).
    pub fn unauthorized(status: u16, code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Unauthorized {
            status,
            code,
            message: message.into(),
            request_id: None,
        }
    }

    /// An [`Error::RateLimited`] (for tests).
    pub fn rate_limited(retry_after: Option<Duration>) -> Error {
        Error::RateLimited {
            retry_after,
            limit: None,
            message: "rate limited".into(),
            request_id: None,
            idempotency_key: None,
        }
    }

    /// An [`Error::Timeout`] of a call sent with `idempotency_key` (for tests).
    pub fn timeout(idempotency_key: Option<String>) -> Error {
        Error::Timeout { idempotency_key }
    }

    /// An [`Error::Network`] (for tests).
    pub fn network(
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
        idempotency_key: Option<String>,
    ) -> Error {
        Error::Network {
            source: source.into(),
            idempotency_key,
        }
    }

    /// The stable error code, for API errors.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Api { code, .. } | Error::Unauthorized { code, .. } => Some(code),
            Error::RateLimited { .. } => Some(&ErrorCode::RateLimited),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. }
            | Error::Unauthorized { status, .. }
            | Error::Decode { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// The request id the server gave, for support.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api { request_id, .. }
            | Error::Unauthorized { request_id, .. }
            | Error::RateLimited { request_id, .. }
            | Error::Decode { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The idempotency key a paid call (an order, a top-up, a cancellation) was sent with:
    /// send the call again with it (`.idempotency_key(key)`) and the server answers the first
    /// outcome instead of acting twice.
    pub fn idempotency_key(&self) -> Option<&str> {
        match self {
            Error::Api {
                idempotency_key, ..
            }
            | Error::RateLimited {
                idempotency_key, ..
            }
            | Error::Network {
                idempotency_key, ..
            }
            | Error::Timeout { idempotency_key } => idempotency_key.as_deref(),
            _ => None,
        }
    }

    /// Whether the same call may succeed later, unchanged (see the module's table). The
    /// client has already retried as its policy allows; this is for your own, later retry.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Network { .. } | Error::RateLimited { .. } => true,
            Error::Api { status, code, .. } => {
                matches!(status, 408 | 500 | 502 | 503 | 504)
                    || *code == ErrorCode::IdempotencyRequestInProgress
            }
            _ => false,
        }
    }
}

/// The SDK's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_may_succeed_later_is_retryable_and_what_needs_a_change_is_not() {
        let key = Some("order-7".to_owned());
        assert!(Error::timeout(key.clone()).is_retryable());
        assert!(Error::network("connection reset", key.clone()).is_retryable());
        assert!(Error::rate_limited(Some(Duration::from_secs(3))).is_retryable());
        assert!(Error::api(503, ErrorCode::ServiceUnavailable, "down").is_retryable());
        assert!(Error::api(409, ErrorCode::IdempotencyRequestInProgress, "running").is_retryable());
        assert!(!Error::api(402, ErrorCode::InsufficientBalance, "low").is_retryable());
        assert!(!Error::api(400, ErrorCode::ValidationError, "bad").is_retryable());
        assert!(!Error::unauthorized(401, ErrorCode::InvalidApiKey, "no").is_retryable());
        assert!(!Error::Config("x".into()).is_retryable());
    }

    #[test]
    fn a_paid_calls_error_names_the_key_to_retry_with() {
        assert_eq!(
            Error::timeout(Some("order-7".into())).idempotency_key(),
            Some("order-7")
        );
        assert_eq!(Error::timeout(None).idempotency_key(), None);
        assert_eq!(
            Error::unauthorized(401, ErrorCode::InvalidApiKey, "no").idempotency_key(),
            None
        );
    }
}
