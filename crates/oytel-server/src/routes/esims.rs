//! Provisioning and reading eSIMs.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use oytel_core::cancel;
use oytel_core::clock::now;
use oytel_core::lifecycle::{Suspender, SuspensionChange};
use oytel_core::limits::QuotaKind;
use oytel_core::paging::{finish_page, page_request};
use oytel_core::paid::QuotaDraw;
use oytel_core::ports::{EsimFilter, SuspensionResult};
use oytel_core::provision;
use oytel_core::validation::{email_filter, reference_filter};
use oytel_core::CoreError;
use oytel_types::{
    CancelRequest, CancelResponse, ErrorBody, Esim, EsimResponse, ListEsimsQuery, Page,
    ProvisionRequest, ProvisionResponse, StatusResponse,
};

use crate::context::current_request_id;
use crate::convert;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, IdempotencyKeyHeader};
use crate::routes::{mark_replayed, meta};
use crate::state::AppState;

/// Provision an eSIM for a customer: one transaction creates the order, the eSIM and the
/// charge. Send an `Idempotency-Key` to retry safely: a repeat with the same key and body
/// returns the first answer (with `Idempotent-Replayed: true`) and never charges twice.
/// Where the operator's profiles come from an SM-DP+, it is reserved there first; a fault
/// there is a 502, 503 or 504 with nothing charged.
#[utoipa::path(post, path = "/api/v1/esim/provision", tag = "esims",
    request_body = ProvisionRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 printable ASCII characters; successful answers are replayed for 24 hours")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Provisioned (or replayed)", body = ProvisionResponse,
            headers(("Location" = String, description = "The eSIM's URL"),
                    ("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "Invalid body or header (`VALIDATION_ERROR`, `INVALID_JSON`, `INVALID_IDEMPOTENCY_KEY`)", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 402, description = "The live balance would fall below the minimum (`INSUFFICIENT_BALANCE`)", body = ErrorBody),
        (status = 404, description = "Unknown plan (`PLAN_NOT_FOUND`)", body = ErrorBody),
        (status = 409, description = "A request with this key is in progress", body = ErrorBody),
        (status = 413, response = crate::responses::BodyTooLarge),
        (status = 408, response = crate::responses::BodyTimeout),
        (status = 415, response = crate::responses::NotJson),
        (status = 422, response = crate::responses::KeyReused),
        (status = 429, response = crate::responses::RateLimited),
        (status = 502, description = "The SM-DP+ refused (`SMDP_REJECTED`, its reason in the message) or answered outside ES2+ (`SMDP_PROTOCOL_ERROR`); nothing was charged", body = ErrorBody),
        (status = 503, description = "The SM-DP+ could not be reached (`SMDP_UNAVAILABLE`), no profile of the plan's type is in stock (`PROFILE_STOCK_EXHAUSTED`), or the service is unavailable; nothing was charged", body = ErrorBody),
        (status = 504, description = "The SM-DP+ did not answer in time (`SMDP_TIMEOUT`); nothing was charged and anything reserved is put back: retry with the same key", body = ErrorBody)))]
pub async fn provision_esim(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(request): ApiJson<ProvisionRequest>,
) -> Result<Response, ApiError> {
    let request_id = current_request_id().unwrap_or_default();
    let done = provision::provision(
        state.store.as_ref(),
        &state.catalog,
        &state.settings.provision,
        &caller.scope(),
        &request,
        key.as_ref(),
        &request_id,
        Some(QuotaDraw {
            quotas: state.quotas.as_ref(),
            key: caller.quota_key(QuotaKind::Provision),
            limit: caller.limits.provision_per_hour,
        }),
    )
    .await;
    let environment = caller.owner.environment;
    let done = with_quota(&caller, QuotaKind::Provision, done, |d| d.quota).inspect_err(|e| {
        crate::metrics::provisioning(environment, "refused", e.code().as_str());
    })?;
    if done.replayed {
        crate::metrics::provisioning(environment, "replayed", "");
        crate::metrics::replay("provision");
    } else {
        crate::metrics::provisioning(environment, "created", "");
        tracing::info!(esim_id = %done.esim.id, order_id = %done.order.id, plan_id = %done.order.plan_id,
            amount_cents = done.order.amount_cents, "eSIM provisioned");
    }
    let body = convert::provisioned(&state.settings, &done);
    let location = HeaderValue::from_str(&format!("/api/v1/esim/{}", done.esim.id))
        .map_err(ApiError::internal)?;
    let mut response = (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response();
    mark_replayed(&mut response, done.replayed);
    Ok(response)
}

/// The outcome of a paid request, with the quota it drew (or found spent) recorded for the
/// rate-limit headers. A replay draws nothing.
pub(super) fn with_quota<T>(
    caller: &Caller,
    kind: QuotaKind,
    result: Result<T, CoreError>,
    drawn: impl Fn(&T) -> Option<oytel_core::limits::QuotaUse>,
) -> Result<T, ApiError> {
    match result {
        Ok(done) => {
            if let Some(used) = drawn(&done) {
                caller.quota_state(kind, used)?;
            }
            Ok(done)
        }
        Err(CoreError::QuotaExceeded { kind, used }) => {
            caller.quota_state(kind, used)?;
            Err(CoreError::QuotaExceeded { kind, used }.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads one of the caller's eSIMs with `read`, after drawing a unit of the status quota;
/// an eSIM the caller cannot see is not found.
async fn find<T, F>(
    state: &AppState,
    caller: &Caller,
    esim_id: &str,
    read: impl FnOnce(oytel_core::Scope) -> F,
) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<Option<T>, oytel_core::ports::StoreError>>,
{
    caller.consume(state, QuotaKind::Status).await?;
    read(caller.scope())
        .await?
        .ok_or_else(|| CoreError::EsimNotFound(esim_id.chars().take(64).collect()).into())
}

/// One of the caller's eSIMs, after drawing a unit of the status quota.
pub(super) async fn find_esim(
    state: &AppState,
    caller: &Caller,
    esim_id: &str,
) -> Result<oytel_core::ports::EsimRecord, ApiError> {
    let store = &state.store;
    find(state, caller, esim_id, |scope| async move {
        store.get_esim(&scope, esim_id).await
    })
    .await
}

/// An eSIM with its activation code and QR code URLs.
#[utoipa::path(get, path = "/api/v1/esim/{esim_id}", tag = "esims",
    params(("esim_id" = String, Path, description = "eSIM id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The eSIM", body = EsimResponse),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 404, description = "No such eSIM for this key (`ESIM_NOT_FOUND`)", body = ErrorBody),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn get_esim(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(esim_id): ApiPath,
) -> Result<Json<EsimResponse>, ApiError> {
    let record = find_esim(&state, &caller, &esim_id).await?;
    Ok(Json(EsimResponse {
        success: true,
        esim: convert::esim(&state.settings, record),
    }))
}

/// An eSIM's status, usage and expiry: the documented flat fields and the nested `esim`.
#[utoipa::path(get, path = "/api/v1/esim/{esim_id}/status", tag = "esims",
    params(("esim_id" = String, Path, description = "eSIM id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Status and usage", body = StatusResponse),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 404, description = "No such eSIM for this key (`ESIM_NOT_FOUND`)", body = ErrorBody),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn esim_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(esim_id): ApiPath,
) -> Result<Json<StatusResponse>, ApiError> {
    let (store, id) = (&state.store, esim_id.as_str());
    let record = find(&state, &caller, id, |scope| async move {
        store.get_esim_status(&scope, id).await
    })
    .await?;
    Ok(Json(convert::status(record, meta(&caller))))
}

/// The key's eSIMs, newest first, filtered by state, reference or customer.
#[utoipa::path(get, path = "/api/v1/esims", tag = "esims",
    params(ListEsimsQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of eSIMs", body = Page<Esim>),
        (status = 400, description = "Bad filter, limit or cursor", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn list_esims(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListEsimsQuery>,
) -> Result<Json<Page<Esim>>, ApiError> {
    caller.consume(&state, QuotaKind::Status).await?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let filter = esim_filter(&query)?;
    let rows = state
        .store
        .list_esims(&caller.scope(), &filter, page)
        .await?;
    let (rows, next_cursor) = finish_page(rows, page);
    Ok(Json(Page {
        success: true,
        data: rows
            .into_iter()
            .map(|r| convert::esim(&state.settings, r))
            .collect(),
        has_more: next_cursor.is_some(),
        next_cursor,
    }))
}

/// The filters of `GET /api/v1/esims`, each checked like the field it filters on.
fn esim_filter(query: &ListEsimsQuery) -> Result<EsimFilter, CoreError> {
    Ok(EsimFilter {
        status: query.status,
        reference_id: reference_filter(query.reference_id.as_deref())?,
        customer_email: email_filter(query.customer_email.as_deref())?,
    })
}

/// Changes an eSIM's suspension as its partner, after drawing a unit of the status quota.
async fn suspension(
    state: &AppState,
    caller: &Caller,
    esim_id: &str,
    change: SuspensionChange,
) -> Result<Json<StatusResponse>, ApiError> {
    caller.consume(state, QuotaKind::Status).await?;
    let not_found = || CoreError::EsimNotFound(esim_id.chars().take(64).collect());
    let result = state
        .store
        .change_suspension(Some(caller.scope()), esim_id, &change, now())
        .await?;
    let esim = match result {
        SuspensionResult::Done { esim, .. } => *esim,
        SuspensionResult::NotFound => return Err(not_found().into()),
        SuspensionResult::HeldByOperator => {
            return Err(CoreError::SuspendedByOperator(esim_id.to_owned()).into())
        }
        SuspensionResult::Invalid(invalid) => return Err(CoreError::from(invalid).into()),
    };
    Ok(Json(convert::status(esim.into(), meta(caller))))
}

/// Suspend an active eSIM: it carries no traffic and counts no usage until resumed; its
/// validity keeps running. Sends `esim.suspended` to endpoints that list it. Suspending a
/// suspended eSIM changes nothing, so a retry is safe.
#[utoipa::path(post, path = "/api/v1/esim/{esim_id}/suspend", tag = "esims",
    params(("esim_id" = String, Path, description = "eSIM id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The eSIM, suspended", body = StatusResponse),
        (status = 404, description = "No such eSIM (`ESIM_NOT_FOUND`)", body = ErrorBody),
        (status = 409, description = "Not active: provisioned, expired or cancelled (`INVALID_STATE_TRANSITION`)", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn suspend_esim(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<StatusResponse>, ApiError> {
    let change = SuspensionChange::Suspend {
        by: Suspender::Partner,
        reason: None,
    };
    suspension(&state, &caller, &id, change).await
}

/// Resume a suspended eSIM. Sends `esim.resumed` to endpoints that list it. Resuming an
/// active eSIM changes nothing. An eSIM the operator suspended cannot be resumed here.
#[utoipa::path(post, path = "/api/v1/esim/{esim_id}/resume", tag = "esims",
    params(("esim_id" = String, Path, description = "eSIM id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The eSIM, active", body = StatusResponse),
        (status = 404, description = "No such eSIM (`ESIM_NOT_FOUND`)", body = ErrorBody),
        (status = 409, description = "Not suspended or active (`INVALID_STATE_TRANSITION`), or suspended by the operator (`SUSPENDED_BY_OPERATOR`)", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn resume_esim(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<StatusResponse>, ApiError> {
    let change = SuspensionChange::Resume {
        by: Suspender::Partner,
    };
    suspension(&state, &caller, &id, change).await
}

/// Cancel an eSIM for good, with refunds by the documented rules, package by package: a
/// queued package comes back in full; the package in force comes back in full if it was
/// never activated, has no usage and was bought within 30 days; anything else gives nothing
/// back. The refund is a line of your statement. Sends `esim.cancelled` to
/// endpoints that list it. Cancelling a cancelled eSIM answers its cancellation again; with
/// an `Idempotency-Key`, a retry is the first answer, `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/api/v1/esim/{esim_id}/cancel", tag = "esims",
    params(("esim_id" = String, Path, description = "eSIM id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "1-255 printable ASCII characters; successful answers are replayed for 24 hours")),
    request_body = CancelRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Cancelled (now or before)", body = CancelResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "Invalid body or header (`VALIDATION_ERROR`, `INVALID_JSON`, `INVALID_IDEMPOTENCY_KEY`)", body = ErrorBody),
        (status = 404, description = "No such eSIM (`ESIM_NOT_FOUND`)", body = ErrorBody),
        (status = 408, response = crate::responses::BodyTimeout),
        (status = 409, description = "Expired (`INVALID_STATE_TRANSITION`), or a request with this key is in progress", body = ErrorBody),
        (status = 413, response = crate::responses::BodyTooLarge),
        (status = 415, response = crate::responses::NotJson),
        (status = 422, response = crate::responses::KeyReused),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn cancel_esim(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiPath(id): ApiPath,
    ApiJson(request): ApiJson<CancelRequest>,
) -> Result<Response, ApiError> {
    let done = cancel::cancel(
        state.store.as_ref(),
        &caller.scope(),
        &id,
        request.reason.as_deref(),
        key.as_ref(),
        Some(QuotaDraw {
            quotas: state.quotas.as_ref(),
            key: caller.quota_key(QuotaKind::Status),
            limit: caller.limits.status_per_hour,
        }),
    )
    .await;
    let done = with_quota(&caller, QuotaKind::Status, done, |d| d.quota)?;
    if !done.replayed {
        let c = &done.value;
        let refund_cents: i64 = c.packages.iter().map(|p| p.refunded_cents).sum();
        tracing::info!(esim_id = %c.esim.id, refund_cents, "eSIM cancelled");
    }
    let body = convert::cancellation(&done.value, &state.catalog.currency, meta(&caller));
    let mut response = Json(body).into_response();
    mark_replayed(&mut response, done.replayed);
    Ok(response)
}
