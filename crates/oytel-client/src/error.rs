//! The SDK's error: one enum a caller can match on.

use std::time::Duration;

use oytel_types::{ErrorCode, ErrorDetails};

/// Everything that can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an error (4xx or 5xx) other than an authentication failure or a
    /// rate limit. Match on `code`, which is stable; `message` is for people.
    #[error("{message} (HTTP {status}, {code})")]
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
    },
    /// The API key is missing, unknown or revoked (HTTP 401), or may not do this (403).
    #[error("unauthorized: {message} (HTTP {status}, {code})")]
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
    RateLimited {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
        /// The request id.
        request_id: Option<String>,
    },
    /// The request did not reach the server, or the connection broke.
    #[error("network error: {0}")]
    Network(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The server did not answer in time.
    #[error("the request timed out")]
    Timeout,
    /// The answer could not be read as the expected type. The status is kept.
    #[error("could not decode the answer (HTTP {status}): {message}")]
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
}

/// The SDK's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
