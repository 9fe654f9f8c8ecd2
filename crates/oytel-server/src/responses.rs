//! The error responses many routes share, defined once: the spec lists each under
//! `components/responses` and every route refers to it, so that a change of wording or of a
//! header reaches every route at once and generated clients get one type per answer.
//!
//! | response | status | routes |
//! |---|---|---|
//! | [`Unauthorized`] | 401 | every route a partner key opens |
//! | [`RateLimited`] | 429 | every route a partner key opens |
//! | [`NotSandbox`] | 403 | the sandbox simulations |
//! | [`OperatorUnauthorized`] | 401 | the operator reports |
//! | [`OperatorDisabled`] | 403 | the operator reports |
//! | [`AuthThrottled`] | 429 | the operator reports |
//! | [`BodyTimeout`] | 408 | every route that reads a body |
//! | [`BodyTooLarge`] | 413 | every route that reads a body |
//! | [`NotJson`] | 415 | every route that reads a body |
//! | [`KeyReused`] | 422 | every route that takes an `Idempotency-Key` |

use oytel_types::ErrorBody;
use utoipa::ToResponse;

/// Missing, invalid or revoked key (`MISSING_API_KEY`, `INVALID_API_KEY`, `API_KEY_REVOKED`);
/// after 20 failures a minute from one client address, failed attempts get 429 instead.
#[derive(Debug, ToResponse)]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct Unauthorized(ErrorBody);

/// A rate limit was hit, or the client address failed to authenticate too often
/// (`RATE_LIMITED`, `details.limit`). A valid key is never refused for failures of others.
#[derive(Debug, ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct RateLimited(ErrorBody);

/// Not a sandbox key (`FORBIDDEN`): simulations are for sandbox eSIMs only.
#[derive(Debug, ToResponse)]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct NotSandbox(ErrorBody);

/// Missing or invalid operator token (a missing one is 401 even where the operator API is
/// disabled: authenticate first).
#[derive(Debug, ToResponse)]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct OperatorUnauthorized(ErrorBody);

/// A token was sent, but the operator API is disabled (no operator token is configured).
#[derive(Debug, ToResponse)]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct OperatorDisabled(ErrorBody);

/// The client address failed to authenticate too often (`RATE_LIMITED`).
#[derive(Debug, ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct AuthThrottled(ErrorBody);

/// The body did not arrive within the server's body timeout (`REQUEST_BODY_TIMEOUT`); nothing
/// was done.
#[derive(Debug, ToResponse)]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct BodyTimeout(ErrorBody);

/// The body is larger than the server accepts (`PAYLOAD_TOO_LARGE`).
#[derive(Debug, ToResponse)]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct BodyTooLarge(ErrorBody);

/// The body is not JSON (`UNSUPPORTED_MEDIA_TYPE`).
#[derive(Debug, ToResponse)]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct NotJson(ErrorBody);

/// The `Idempotency-Key` was used before for another request (`IDEMPOTENCY_KEY_REUSED`).
#[derive(Debug, ToResponse)]
#[allow(dead_code, reason = "a type for the spec only; never built")]
pub struct KeyReused(ErrorBody);
