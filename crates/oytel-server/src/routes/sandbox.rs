//! Sandbox simulation: what the network reports in production (activation, usage) and the
//! passing of time (expiry), on demand, for sandbox keys only.

use axum::extract::State;
use axum::Json;
use oytel_core::clock::now;
use oytel_core::lifecycle::transitioned;
use oytel_core::ports::{UsageInput, UsageResult};
use oytel_core::{CoreError, EsimStatus};
use oytel_types::{Environment, ErrorBody, SandboxUsageRequest, StatusResponse};

use crate::convert;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};
use crate::routes::meta;
use crate::state::AppState;

/// The caller's sandbox eSIM, or why not.
async fn sandbox_esim(
    state: &AppState,
    caller: &Caller,
    esim_id: &str,
) -> Result<oytel_core::ports::EsimRecord, ApiError> {
    if caller.owner.environment != Environment::Sandbox {
        return Err(CoreError::Forbidden(
            "sandbox simulation needs a sandbox key (sk_sandbox_…)".into(),
        )
        .into());
    }
    Ok(state
        .store
        .get_esim(&caller.scope(), esim_id)
        .await?
        .ok_or_else(|| CoreError::EsimNotFound(esim_id.chars().take(64).collect()))?)
}

async fn transition(
    state: &AppState,
    caller: &Caller,
    esim_id: &str,
    to: EsimStatus,
) -> Result<Json<StatusResponse>, ApiError> {
    sandbox_esim(state, caller, esim_id).await?;
    let result = state.store.transition_esim(esim_id, to, now()).await?;
    let esim = transitioned(result, esim_id, to)?;
    Ok(Json(convert::status(esim.into(), meta(caller))))
}

/// Plays the phone at the SM-DP+ simulator: downloads and installs the eSIM's profile there
/// and applies the simulator's reports, as the ES2+ listener would. `None` when the eSIM's
/// profile is not the simulator's (or it is not `provisioned`): activate it directly.
async fn play_phone(
    state: &AppState,
    caller: &Caller,
    esim_id: &str,
) -> Result<Option<Json<StatusResponse>>, ApiError> {
    use oytel_types::ProfileState;
    let Some(phone) = &state.settings.sandbox_phone else {
        return Ok(None);
    };
    let esim = sandbox_esim(state, caller, esim_id).await?;
    let steps: &[&str] = match esim.profile.as_ref().map(|p| p.state) {
        _ if esim.status != EsimStatus::Provisioned => return Ok(None),
        Some(ProfileState::Released) => &["download", "install"],
        Some(ProfileState::Downloaded) => &["install"],
        _ => return Ok(None),
    };
    for step in steps {
        let report = phone.play(&esim.iccid, step).await?;
        let notice = crate::es2plus_listener::notice(report, phone.deletion_point);
        state.store.record_profile_notice(&notice).await?;
    }
    let esim = sandbox_esim(state, caller, esim_id).await?;
    Ok(Some(Json(convert::status(esim.into(), meta(caller)))))
}

/// Simulates the customer installing the eSIM: `provisioned` → `active`, `esim.activated`.
/// Where the eSIM's profile comes from the SM-DP+ simulator, the phone is played there
/// (download, install) and its reports applied: the eSIM's `profile` follows, and
/// `esim.profile_downloaded` is sent too.
#[utoipa::path(post, path = "/api/v1/sandbox/esim/{esim_id}/activate", tag = "sandbox",
    params(("esim_id" = String, Path, description = "eSIM id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The eSIM after activation", body = StatusResponse),
        (status = 403, response = crate::responses::NotSandbox),
        (status = 404, description = "No such eSIM", body = ErrorBody),
        (status = 409, description = "Not `provisioned` (`INVALID_STATE_TRANSITION`)", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn simulate_activation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<StatusResponse>, ApiError> {
    if let Some(played) = play_phone(&state, &caller, &id).await? {
        return Ok(played);
    }
    transition(&state, &caller, &id, EsimStatus::Active).await
}

/// Simulates the end of the term: → `expired`, `esim.expired`.
#[utoipa::path(post, path = "/api/v1/sandbox/esim/{esim_id}/expire", tag = "sandbox",
    params(("esim_id" = String, Path, description = "eSIM id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The eSIM after expiry", body = StatusResponse),
        (status = 403, response = crate::responses::NotSandbox),
        (status = 404, description = "No such eSIM", body = ErrorBody),
        (status = 409, description = "Already expired or cancelled", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn simulate_expiry(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<StatusResponse>, ApiError> {
    transition(&state, &caller, &id, EsimStatus::Expired).await
}

/// Simulates usage on an active eSIM; crossing 50, 80 or 100 % of the allowance sends
/// `usage.threshold` (once per threshold).
#[utoipa::path(post, path = "/api/v1/sandbox/esim/{esim_id}/usage", tag = "sandbox",
    params(("esim_id" = String, Path, description = "eSIM id")),
    request_body = SandboxUsageRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 400, description = "Malformed body, field or query (`INVALID_JSON`, `VALIDATION_ERROR`, `INVALID_QUERY`, `INVALID_CURSOR`)", body = ErrorBody),
        (status = 413, response = crate::responses::BodyTooLarge),
        (status = 408, response = crate::responses::BodyTimeout),
        (status = 415, response = crate::responses::NotJson),
        (status = 200, description = "The eSIM after the usage", body = StatusResponse),
        (status = 403, response = crate::responses::NotSandbox),
        (status = 404, description = "No such eSIM", body = ErrorBody),
        (status = 409, description = "The eSIM is not active", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn simulate_usage(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(request): ApiJson<SandboxUsageRequest>,
) -> Result<Json<StatusResponse>, ApiError> {
    sandbox_esim(&state, &caller, &id).await?;
    let input = UsageInput {
        record_id: oytel_core::numbers::new_id("sbx"),
        data_mb: request.data_mb,
        calls: request.calls,
        sms: request.sms,
        recorded_at: now(),
    };
    match state.store.record_usage(&id, &input, now()).await? {
        UsageResult::Applied(esim) => Ok(Json(convert::status((*esim).into(), meta(&caller)))),
        UsageResult::NotFound | UsageResult::Duplicate => Err(CoreError::EsimNotFound(id).into()),
        UsageResult::NotActive(from) => Err(CoreError::InvalidTransition(
            oytel_core::lifecycle::InvalidTransition {
                from,
                to: EsimStatus::Active,
            },
        )
        .into()),
    }
}
