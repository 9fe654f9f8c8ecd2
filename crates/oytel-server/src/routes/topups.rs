//! After the sale: an eSIM's packages, the top-ups on offer for it, and buying one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use oytel_core::limits::QuotaKind;
use oytel_core::packages::offers;
use oytel_core::paid::QuotaDraw;
use oytel_core::topup::{self, TopUpCommand};
use oytel_types::{
    Amount, Billing, ErrorBody, PackagesResponse, ResponseMeta, TopUpOffersResponse, TopUpRequest,
    TopUpResponse,
};

use super::esims::{find_esim, with_quota};
use crate::context::current_request_id;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller, IdempotencyKeyHeader};
use crate::routes::mark_replayed;
use crate::state::AppState;

/// An eSIM's packages, the first first: the plan it was provisioned with, then the renewals
/// bought, each with its state, allowance (with its data add-ons), usage, validity and price.
/// The eSIM's status and usage are those of the package in force.
#[utoipa::path(get, path = "/api/v1/esim/{esim_id}/packages", tag = "topups",
    params(("esim_id" = String, Path, description = "eSIM id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The packages", body = PackagesResponse),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 404, description = "No such eSIM for this key (`ESIM_NOT_FOUND`)", body = ErrorBody),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn list_packages(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(esim_id): ApiPath,
) -> Result<Json<PackagesResponse>, ApiError> {
    let esim = find_esim(&state, &caller, &esim_id).await?;
    let currency = &state.catalog.currency;
    let packages = state.store.list_packages(&esim.id).await?;
    Ok(Json(PackagesResponse {
        success: true,
        esim_id: esim.id,
        status: esim.status,
        packages: packages.iter().map(|p| p.to_wire(currency)).collect(),
    }))
}

/// The top-ups that may be bought for this eSIM: the data add-ons of its plan's region and a
/// renewal of its plan for each term, with prices. A cancelled eSIM, or an expired one that
/// was never installed, is offered nothing.
#[utoipa::path(get, path = "/api/v1/esim/{esim_id}/topups", tag = "topups",
    params(("esim_id" = String, Path, description = "eSIM id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The top-ups on offer", body = TopUpOffersResponse),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 404, description = "No such eSIM for this key (`ESIM_NOT_FOUND`)", body = ErrorBody),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn list_topups(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(esim_id): ApiPath,
) -> Result<Json<TopUpOffersResponse>, ApiError> {
    let esim = find_esim(&state, &caller, &esim_id).await?;
    let currency = &state.catalog.currency;
    let topups = offers(&state.catalog, &esim.plan_id)
        .into_iter()
        // What `packages::place_topup` would refuse whatever the queue holds.
        .filter(|o| oytel_core::packages::place_topup(&esim, 0, o.kind).is_ok())
        .map(|o| o.to_wire(currency))
        .collect();
    Ok(Json(TopUpOffersResponse {
        success: true,
        esim_id: esim.id,
        topups,
    }))
}

/// Buy a top-up for an eSIM: a data add-on is added to the package in force; a renewal is
/// queued and starts when that package ends (at once if the eSIM has expired after being
/// installed). Charged like a provisioning (a live balance must keep its minimum; sandbox is
/// never depleted) and counted by the provisioning quota. Sends `esim.topped_up` to endpoints
/// that list it. Send an `Idempotency-Key` to retry safely: a repeat with the same key and
/// body answers the first purchase (`Idempotent-Replayed: true`) and never charges twice.
#[utoipa::path(post, path = "/api/v1/esim/{esim_id}/topups", tag = "topups",
    params(("esim_id" = String, Path, description = "eSIM id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "1-255 printable ASCII characters; successful answers are replayed for 24 hours")),
    request_body = TopUpRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Bought (or replayed)", body = TopUpResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "Invalid body or header (`VALIDATION_ERROR`, `INVALID_JSON`, `INVALID_IDEMPOTENCY_KEY`)", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 402, description = "The live balance would fall below the minimum (`INSUFFICIENT_BALANCE`)", body = ErrorBody),
        (status = 404, description = "No such eSIM for this key (`ESIM_NOT_FOUND`)", body = ErrorBody),
        (status = 408, response = crate::responses::BodyTimeout),
        (status = 409, description = "No such top-up for this eSIM (`TOPUP_NOT_AVAILABLE`: unknown, another region's add-on, a plan no longer sold), the eSIM takes no such top-up now (`TOPUP_NOT_ALLOWED`: cancelled, expired without being installed, an add-on with nothing in force, 12 renewals queued), or a request with this key is in progress", body = ErrorBody),
        (status = 413, response = crate::responses::BodyTooLarge),
        (status = 415, response = crate::responses::NotJson),
        (status = 422, response = crate::responses::KeyReused),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn buy_topup(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiPath(esim_id): ApiPath,
    ApiJson(request): ApiJson<TopUpRequest>,
) -> Result<Response, ApiError> {
    let request_id = current_request_id().unwrap_or_default();
    let scope = caller.scope();
    let command = TopUpCommand {
        scope: &scope,
        esim_id: &esim_id,
        topup_id: &request.topup_id,
        request_id: &request_id,
        minimum_balance: state.settings.provision.minimum_balance,
    };
    let done = topup::top_up(
        state.store.as_ref(),
        &state.catalog,
        command,
        key.as_ref(),
        Some(QuotaDraw {
            quotas: state.quotas.as_ref(),
            key: caller.quota_key(QuotaKind::Provision),
            limit: caller.limits.provision_per_hour,
        }),
    )
    .await;
    let done = with_quota(&caller, QuotaKind::Provision, done, |d| d.quota)?;
    let (purchase, package) = (&done.value.purchase, &done.value.package);
    if done.replayed {
        crate::metrics::replay("topup");
    }
    if !done.replayed {
        tracing::info!(esim_id = %purchase.esim_id, purchase_id = %purchase.id,
            topup_id = %purchase.topup_id, amount_cents = purchase.amount_cents, "top-up bought");
    }
    let body = TopUpResponse {
        success: true,
        purchase: purchase.to_wire(),
        package: package.to_wire(&purchase.currency),
        billing: Billing {
            cost_usd: Amount::from_cents(purchase.amount_cents),
            cost_cents: purchase.amount_cents,
            currency: purchase.currency.clone(),
            remaining_balance: Amount::from_cents(purchase.balance_after_cents),
            remaining_balance_cents: purchase.balance_after_cents,
            environment: purchase.environment,
        },
        meta: ResponseMeta {
            request_id: purchase.request_id.clone(),
            environment: purchase.environment,
            timestamp: purchase.created_at,
        },
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    mark_replayed(&mut response, done.replayed);
    Ok(response)
}
