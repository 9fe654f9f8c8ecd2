//! Provisioning and reading eSIMs.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use oytel_core::limits::QuotaKind;
use oytel_core::paging::{finish_page, page_request};
use oytel_core::paid::QuotaDraw;
use oytel_core::ports::EsimFilter;
use oytel_core::provision;
use oytel_core::validation::{email_filter, reference_filter};
use oytel_core::CoreError;
use oytel_types::{
    ErrorBody, Esim, EsimResponse, ListEsimsQuery, Page, ProvisionRequest, ProvisionResponse,
    StatusResponse,
};

use crate::context::current_request_id;
use crate::convert;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, IdempotencyKeyHeader};
use crate::routes::meta;
use crate::state::AppState;

/// Provision an eSIM for a customer: one transaction creates the order, the eSIM and the
/// charge. Send an `Idempotency-Key` to retry safely: a repeat with the same key and body
/// returns the first answer (with `Idempotent-Replayed: true`) and never charges twice.
#[utoipa::path(post, path = "/api/v1/esim/provision", tag = "esims",
    request_body = ProvisionRequest,
    params(("Idempotency-Key" = Option<String>, Header,
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
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the server's body timeout (`REQUEST_BODY_TIMEOUT`)", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Key reused with another body (`IDEMPOTENCY_KEY_REUSED`)", body = ErrorBody),
        (status = 429, response = crate::responses::RateLimited)))]
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
    let done = match done {
        Ok(done) => done,
        Err(CoreError::QuotaExceeded { kind, used }) => {
            caller.quota_state(kind, used)?;
            return Err(CoreError::QuotaExceeded { kind, used }.into());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(used) = done.quota {
        caller.quota_state(QuotaKind::Provision, used)?;
    }
    if !done.replayed {
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
    if done.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
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
    let (store, id) = (&state.store, esim_id.as_str());
    let record = find(&state, &caller, id, |scope| async move {
        store.get_esim(&scope, id).await
    })
    .await?;
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
