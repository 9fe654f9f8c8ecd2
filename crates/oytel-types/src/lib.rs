//! Wire types of the Oytel eSIM API v1.
//!
//! Every request and response body, every webhook payload and the error envelope that the
//! server sends and the SDKs read lives here, so that the server and `oytel-client` share one
//! definition. This crate holds **no business logic** and depends only on serde and chrono;
//! it must never depend on axum, sqlx, reqwest, tokio or hyper (a partner may depend on it
//! alone). With the `openapi` feature every type also derives `utoipa::ToSchema`.
//!
//! Conventions:
//! - Money is carried as [`Amount`]: integer minor units (cents) inside, a decimal number of
//!   major units on the wire (`29.95`), because the published clients expect decimals.
//! - Every successful response body carries `"success": true`; every error body is an
//!   [`ErrorBody`] with `"success": false` and a stable [`ErrorCode`].
//! - Request bodies reject unknown fields (a typo in a paid request must not be ignored).
//! - Timestamps are RFC 3339 in UTC.

mod account;
pub mod builders;
mod error;
mod esim;
mod health;
mod money;
mod orders;
mod packages;
mod plans;
mod strict;
mod webhooks;
mod whole;

pub use account::*;
pub use error::*;
pub use esim::*;
pub use health::*;
pub use money::*;
pub use orders::*;
pub use packages::*;
pub use plans::*;
pub use webhooks::*;

use serde::{Deserialize, Serialize};

/// The environment an API key belongs to. Data of one environment is never visible to the
/// other. `sk_sandbox_…` keys are `sandbox`, `sk_live_…` keys are `production`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Free testing: a $100 balance that is never depleted, non-functional eSIMs.
    Sandbox,
    /// Real billing from the partner's balance.
    Production,
}

impl Environment {
    /// The wire name: `sandbox` or `production`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }

    /// The prefix of API keys of this environment.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Environment::Sandbox => "sk_sandbox_",
            Environment::Production => "sk_live_",
        }
    }

    /// The environment an API key belongs to, from its prefix.
    pub fn of_key(key: &str) -> Option<Environment> {
        if key.starts_with("sk_sandbox_") {
            Some(Environment::Sandbox)
        } else if key.starts_with("sk_live_") {
            Some(Environment::Production)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sandbox" => Ok(Environment::Sandbox),
            "production" | "live" => Ok(Environment::Production),
            other => Err(format!(
                "unknown environment `{other}` (expected `sandbox` or `live`)"
            )),
        }
    }
}

/// Request metadata echoed in successful responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseMeta {
    /// The id of this request (also in the `x-request-id` header).
    pub request_id: String,
    /// The environment of the key that made the request.
    pub environment: Environment,
    /// When the response was produced.
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

/// One page of a list, newest first. Pass `next_cursor` as `cursor` to get the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// Always `true`.
    pub success: bool,
    /// The items of this page.
    pub data: Vec<T>,
    /// Whether another page follows.
    pub has_more: bool,
    /// The cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
}

/// Page size and position, for lists without other filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 20).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 18, pattern = "^[0-9]{0,18}$"))]
    pub cursor: Option<String>,
}
