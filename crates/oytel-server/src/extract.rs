//! Extractors that turn every malformed input into an [`ApiError`] with a stable code:
//! the caller's key ([`Caller`]), JSON bodies ([`ApiJson`]), query strings ([`ApiQuery`]),
//! path segments ([`ApiPath`]) and the `Idempotency-Key` of paid writes ([`IdempotencyKeyHeader`]).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use oytel_core::idempotency::IdempotencyKey;
use oytel_core::limits::{QuotaKey, QuotaKind, QuotaUse};
use oytel_core::ports::KeyOwner;
use oytel_core::{CoreError, Scope};
use oytel_types::{ErrorCode, Limits};
use serde::de::DeserializeOwned;

use crate::context::{set_rate_limit, ClientAddr, RateLimitState};
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller: a partner's key in one environment, within its burst limit.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Whose key it is.
    pub owner: KeyOwner,
    /// The limits that apply to it.
    pub limits: Limits,
}

impl Caller {
    /// The scope every read and write of this caller is limited to.
    pub fn scope(&self) -> Scope {
        Scope {
            partner_id: self.owner.partner_id.clone(),
            environment: self.owner.environment,
        }
    }

    /// The key of this caller's quota of `kind`.
    pub fn quota_key(&self, kind: QuotaKind) -> QuotaKey {
        QuotaKey {
            partner_id: self.owner.partner_id.clone(),
            environment: self.owner.environment,
            kind,
        }
    }

    /// Records a quota's state for the rate-limit headers; refuses when it is used up.
    pub fn quota_state(&self, kind: QuotaKind, used: QuotaUse) -> Result<(), ApiError> {
        let reset_in =
            u64::try_from((used.reset_at - chrono::Utc::now()).num_seconds().max(1)).unwrap_or(1);
        set_rate_limit(RateLimitState {
            policy: "hourly",
            limit: used.limit,
            window: 3600,
            remaining: used.remaining,
            reset_at: used.reset_at.timestamp(),
            burst: Some(self.limits.burst_per_second),
        });
        if used.allowed {
            Ok(())
        } else {
            Err(rate_limited(kind.as_str(), Duration::from_secs(reset_in)))
        }
    }

    /// Draws one unit of the caller's quota of `kind` (eSIM and order reads use `Status`).
    pub async fn consume(&self, state: &AppState, kind: QuotaKind) -> Result<(), ApiError> {
        let used = state
            .quotas
            .consume(
                &self.quota_key(kind),
                kind.limit(&self.limits),
                oytel_core::clock::now(),
            )
            .await?;
        self.quota_state(kind, used)
    }
}

/// A `429 RATE_LIMITED` naming the limit, with `Retry-After`.
pub fn rate_limited(limit: &str, retry_after: Duration) -> ApiError {
    crate::metrics::rate_limited(limit);
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!("rate limit `{limit}` exceeded; retry after {seconds} s"),
    )
    .with_details(oytel_types::ErrorDetails {
        limit: Some(limit.to_owned()),
        retry_after_seconds: Some(seconds),
        ..oytel_types::ErrorDetails::default()
    })
    .with_retry_after(seconds)
}

/// The key presented (see [`oytel_core::keys::presented_key`]).
fn presented_key(parts: &Parts) -> Result<Option<String>, ApiError> {
    let raw = |name| {
        parts
            .headers
            .get(name)
            .map(|v: &header::HeaderValue| v.as_bytes())
    };
    oytel_core::keys::presented_key(raw("x-api-key"), raw(header::AUTHORIZATION.as_str()))
        .map_err(ApiError::from)
}

/// The failed-authentication throttle: counts a refused credential against the client's
/// address (see [`crate::client_addr`]) and answers it. Valid credentials are never refused
/// by it, so one client failing (a partner with a stale key, someone trying keys) cannot
/// lock out the others behind the same proxy.
///
/// | credentials | address within its allowance | address past it |
/// |---|---|---|
/// | valid | served | served (the partner's own limits apply) |
/// | missing, malformed, unknown or revoked | `401` with its code, counted | `429 RATE_LIMITED` (`auth_failures_per_minute`) with `Retry-After`, counted |
pub fn refuse_credentials(state: &AppState, parts: &Parts, refusal: ApiError) -> ApiError {
    let Some(ClientAddr(address)) = parts.extensions.get::<ClientAddr>().copied() else {
        return refusal;
    };
    state.limiter.auth_failed(address);
    match state.limiter.auth_blocked(address) {
        Some(blocked) => rate_limited("auth_failures_per_minute", blocked.retry_after),
        None => refusal,
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented =
            presented_key(parts).map_err(|refusal| refuse_credentials(state, parts, refusal))?;
        let owner = match state.keys.authenticate(presented.as_deref()).await? {
            Ok(owner) => owner,
            Err(failure) => return Err(refuse_credentials(state, parts, failure.into())),
        };
        tracing::Span::current().record("partner_id", owner.partner_id.as_str());
        let limits = owner.limits.apply(&state.settings.limits);
        match state.limiter.burst(
            &owner.partner_id,
            owner.environment,
            limits.burst_per_second,
        ) {
            Ok(remaining) => set_rate_limit(RateLimitState {
                policy: "burst",
                limit: limits.burst_per_second,
                window: 1,
                remaining,
                reset_at: chrono::Utc::now().timestamp() + 1,
                burst: None,
            }),
            Err(exceeded) => {
                set_rate_limit(RateLimitState {
                    policy: "burst",
                    limit: limits.burst_per_second,
                    window: 1,
                    remaining: 0,
                    reset_at: chrono::Utc::now().timestamp() + 1,
                    burst: None,
                });
                return Err(rate_limited("burst_per_second", exceeded.retry_after));
            }
        }
        Ok(Caller { owner, limits })
    }
}

/// A JSON body: `application/json`, at most the server's body limit, valid JSON of the right
/// shape. Errors name the field at fault.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "request bodies must be JSON with `Content-Type: application/json`",
            ));
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection: BytesRejection| {
                    if let Some(timed_out) = crate::listener::BodyTimedOut::caused(&rejection) {
                        ApiError::new(
                            StatusCode::REQUEST_TIMEOUT,
                            ErrorCode::RequestBodyTimeout,
                            timed_out.to_string(),
                        )
                    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            ErrorCode::PayloadTooLarge,
                            format!(
                                "the request body is larger than {} bytes",
                                crate::MAX_BODY_BYTES
                            ),
                        )
                    } else {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            ErrorCode::InvalidJson,
                            rejection.body_text(),
                        )
                    }
                })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body into `T` (see [`oytel_core::body`]): `400 INVALID_JSON` or
/// `400 VALIDATION_ERROR` naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    oytel_core::body::parse_json(bytes).map_err(ApiError::from)
}

/// A query string of the right shape; unknown, repeated or malformed parameters are refused
/// with `INVALID_QUERY`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidQuery,
                    format!("invalid query string: {e}"),
                )
            })
    }
}

/// One path parameter. Ids never hold control characters (PostgreSQL would refuse a NUL in
/// text): such a parameter names nothing, so it is a 404 before any query.
#[derive(Debug)]
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) if !value.chars().any(char::is_control) => Ok(ApiPath(value)),
            _ => Err(ApiError::not_found()),
        }
    }
}

/// The `Idempotency-Key` header of a paid or state-changing request, checked once, here: 1
/// to 255 printable ASCII characters, sent at most once. Its absence is `None`; anything
/// else wrong is `INVALID_IDEMPOTENCY_KEY`, before the body is read.
#[derive(Debug)]
pub struct IdempotencyKeyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all("idempotency-key").iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            if parts.headers.contains_key("idempotency-key") {
                return Err(CoreError::InvalidIdempotencyKey(
                    "send one Idempotency-Key header, not several".into(),
                )
                .into());
            }
            return Ok(IdempotencyKeyHeader(None));
        };
        let text = value.to_str().map_err(|_| {
            CoreError::InvalidIdempotencyKey("Idempotency-Key must be printable ASCII".into())
        })?;
        Ok(IdempotencyKeyHeader(Some(IdempotencyKey::parse(text)?)))
    }
}
