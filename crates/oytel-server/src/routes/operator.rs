//! The operator API: what the network side reports (usage records, activations). It is
//! authenticated with the operator token of the server's configuration, never a partner key.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use oytel_core::clock::now;
use oytel_core::ports::{TransitionResult, UsageInput, UsageResult};
use oytel_core::EsimStatus;
use oytel_types::{
    ActivationBatch, BatchItemResult, BatchItemStatus, BatchResponse, ErrorBody, ErrorCode,
    UsageBatch,
};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// Most items in one batch.
const MAX_BATCH: usize = 1000;

/// The operator, authenticated by `Authorization: Bearer <OYTEL_OPERATOR_TOKEN>`.
#[derive(Debug)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    /// Credentials first: a request without a token is told to authenticate (401) whether or
    /// not the operator API is enabled; a token on a server without one is refused (403).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let refusal =
            match (presented, &state.settings.operator_token) {
                (None, _) => (ErrorCode::MissingApiKey, "missing operator token"),
                (Some(_), None) => return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Forbidden,
                    "the operator API is disabled on this server (OYTEL_OPERATOR_TOKEN is not set)",
                )),
                // Equal-length digests compared whole: the time taken says nothing of the token.
                (Some(p), Some(expected))
                    if Sha256::digest(p.as_bytes()) != Sha256::digest(expected.as_bytes()) =>
                {
                    (ErrorCode::InvalidApiKey, "invalid operator token")
                }
                (Some(_), Some(_)) => return Ok(Operator),
            };
        let (code, message) = refusal;
        let refusal = ApiError::new(StatusCode::UNAUTHORIZED, code, message);
        Err(crate::extract::refuse_credentials(state, parts, refusal))
    }
}

fn too_many(len: usize, field: &str) -> Result<(), ApiError> {
    if len > MAX_BATCH {
        return Err(ApiError::field(
            ErrorCode::ValidationError,
            field,
            format!("at most {MAX_BATCH} items per batch"),
        ));
    }
    Ok(())
}

fn result(id: &str, status: BatchItemStatus, reason: Option<String>) -> BatchItemResult {
    BatchItemResult {
        id: id.to_owned(),
        status,
        reason,
    }
}

/// Applies usage records, each once (by `record_id`), to active eSIMs found by ICCID.
#[utoipa::path(post, path = "/api/v1/operator/usage", tag = "operator",
    request_body = UsageBatch,
    security(("operator" = [])),
    responses(
        (status = 413, response = crate::responses::BodyTooLarge),
        (status = 408, response = crate::responses::BodyTimeout),
        (status = 415, response = crate::responses::NotJson),
        (status = 200, description = "One result per record", body = BatchResponse),
        (status = 400, description = "Malformed batch", body = ErrorBody),
        (status = 401, response = crate::responses::OperatorUnauthorized),
        (status = 429, response = crate::responses::AuthThrottled),
        (status = 403, response = crate::responses::OperatorDisabled)))]
pub async fn report_usage(
    State(state): State<AppState>,
    _operator: Operator,
    ApiJson(batch): ApiJson<UsageBatch>,
) -> Result<Json<BatchResponse>, ApiError> {
    too_many(batch.records.len(), "records")?;
    let mut results = Vec::with_capacity(batch.records.len());
    for record in &batch.records {
        if record.record_id.is_empty() || record.record_id.len() > 128 {
            results.push(result(
                &record.record_id,
                BatchItemStatus::Rejected,
                Some("record_id must be 1 to 128 characters".into()),
            ));
            continue;
        }
        let Some(esim) = state.store.get_esim_by_iccid(&record.iccid).await? else {
            results.push(result(
                &record.record_id,
                BatchItemStatus::Rejected,
                Some("unknown ICCID".into()),
            ));
            continue;
        };
        let input = UsageInput {
            record_id: record.record_id.clone(),
            data_mb: record.data_mb,
            calls: record.calls,
            sms: record.sms,
            recorded_at: record.recorded_at,
        };
        results.push(
            match state.store.record_usage(&esim.id, &input, now()).await? {
                UsageResult::Applied(_) => {
                    result(&record.record_id, BatchItemStatus::Applied, None)
                }
                UsageResult::Duplicate => {
                    result(&record.record_id, BatchItemStatus::Duplicate, None)
                }
                UsageResult::NotFound => result(
                    &record.record_id,
                    BatchItemStatus::Rejected,
                    Some("unknown ICCID".into()),
                ),
                UsageResult::NotActive(status) => result(
                    &record.record_id,
                    BatchItemStatus::Rejected,
                    Some(format!("the eSIM is {}", status.as_str())),
                ),
            },
        );
    }
    for item in &results {
        crate::metrics::usage_record(item.status);
    }
    for record in &batch.records {
        crate::metrics::usage_lag(now() - record.recorded_at);
    }
    Ok(Json(BatchResponse {
        success: true,
        results,
    }))
}

/// Marks eSIMs active (found by ICCID), each sending `esim.activated` once.
#[utoipa::path(post, path = "/api/v1/operator/activations", tag = "operator",
    request_body = ActivationBatch,
    security(("operator" = [])),
    responses(
        (status = 400, description = "Malformed body, field or query (`INVALID_JSON`, `VALIDATION_ERROR`, `INVALID_QUERY`, `INVALID_CURSOR`)", body = ErrorBody),
        (status = 413, response = crate::responses::BodyTooLarge),
        (status = 408, response = crate::responses::BodyTimeout),
        (status = 415, response = crate::responses::NotJson),
        (status = 200, description = "One result per notice", body = BatchResponse),
        (status = 401, response = crate::responses::OperatorUnauthorized),
        (status = 429, response = crate::responses::AuthThrottled),
        (status = 403, response = crate::responses::OperatorDisabled)))]
pub async fn report_activations(
    State(state): State<AppState>,
    _operator: Operator,
    ApiJson(batch): ApiJson<ActivationBatch>,
) -> Result<Json<BatchResponse>, ApiError> {
    too_many(batch.activations.len(), "activations")?;
    let mut results = Vec::with_capacity(batch.activations.len());
    for notice in &batch.activations {
        let Some(esim) = state.store.get_esim_by_iccid(&notice.iccid).await? else {
            results.push(result(
                &notice.iccid,
                BatchItemStatus::Rejected,
                Some("unknown ICCID".into()),
            ));
            continue;
        };
        let at = notice.activated_at.unwrap_or_else(now);
        results.push(
            match state
                .store
                .transition_esim(&esim.id, EsimStatus::Active, at)
                .await?
            {
                TransitionResult::Done(_) => result(&notice.iccid, BatchItemStatus::Applied, None),
                TransitionResult::Invalid(EsimStatus::Active) => {
                    result(&notice.iccid, BatchItemStatus::Duplicate, None)
                }
                TransitionResult::Invalid(status) => result(
                    &notice.iccid,
                    BatchItemStatus::Rejected,
                    Some(format!("the eSIM is {}", status.as_str())),
                ),
                TransitionResult::NotFound => result(
                    &notice.iccid,
                    BatchItemStatus::Rejected,
                    Some("unknown ICCID".into()),
                ),
            },
        );
    }
    Ok(Json(BatchResponse {
        success: true,
        results,
    }))
}
