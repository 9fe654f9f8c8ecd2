//! Webhook endpoints, signing secrets, redelivery and the delivery log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use oytel_core::clock::now;
use oytel_core::paging::{finish_page, page_request};
use oytel_core::webhooks::{new_endpoint, overlap, rotated_endpoint, test_event, updated_endpoint};
use oytel_core::CoreError;
use oytel_types::{
    CreateWebhookEndpoint, DeliveryAttempt, ErrorBody, Page, PageQuery, RedeliverResponse,
    TestEventResponse, UpdateWebhookEndpoint, WebhookEndpoint, WebhookEndpointCreated,
    WebhookEndpointResponse, WebhookSecretResponse,
};

use crate::convert;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::state::AppState;

async fn find(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<oytel_core::ports::EndpointRecord, ApiError> {
    state
        .store
        .get_endpoint(&caller.scope(), id)
        .await?
        .ok_or_else(|| CoreError::EndpointNotFound(id.chars().take(64).collect()).into())
}

fn endpoint_response(
    endpoint: &oytel_core::ports::EndpointRecord,
) -> Json<WebhookEndpointResponse> {
    Json(WebhookEndpointResponse {
        success: true,
        endpoint: convert::endpoint(endpoint),
    })
}

/// Creates an endpoint. Its signing secret is in this answer only (rotate to get a new one).
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints", tag = "webhooks",
    request_body = CreateWebhookEndpoint,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 413, response = crate::responses::BodyTooLarge),
        (status = 408, response = crate::responses::BodyTimeout),
        (status = 415, response = crate::responses::NotJson),
        (status = 201, description = "Created", body = WebhookEndpointCreated),
        (status = 400, description = "Invalid URL, events or description", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateWebhookEndpoint>,
) -> Result<Response, ApiError> {
    let endpoint = new_endpoint(
        &caller.scope(),
        &request,
        state.settings.webhooks.allow_internal,
        now(),
    )?;
    state.store.create_endpoint(&endpoint).await?;
    let body = WebhookEndpointCreated {
        success: true,
        endpoint: convert::endpoint(&endpoint),
        secret: endpoint.secret.clone(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The key's endpoints.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints", tag = "webhooks",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every endpoint (one page)", body = Page<WebhookEndpoint>),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Page<WebhookEndpoint>>, ApiError> {
    let endpoints = state.store.list_endpoints(&caller.scope()).await?;
    Ok(Json(Page {
        success: true,
        data: endpoints.iter().map(convert::endpoint).collect(),
        has_more: false,
        next_cursor: None,
    }))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path, description = "Endpoint id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpointResponse),
        (status = 404, description = "No such endpoint (`WEBHOOK_ENDPOINT_NOT_FOUND`)", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<WebhookEndpointResponse>, ApiError> {
    Ok(endpoint_response(&find(&state, &caller, &id).await?))
}

/// Changes an endpoint: URL, events, description; `enabled: true` re-enables a disabled one.
#[utoipa::path(patch, path = "/api/v1/webhooks/endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path, description = "Endpoint id")),
    request_body = UpdateWebhookEndpoint,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 413, response = crate::responses::BodyTooLarge),
        (status = 408, response = crate::responses::BodyTimeout),
        (status = 415, response = crate::responses::NotJson),
        (status = 200, description = "The endpoint after the change", body = WebhookEndpointResponse),
        (status = 400, description = "Invalid change", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(request): ApiJson<UpdateWebhookEndpoint>,
) -> Result<Json<WebhookEndpointResponse>, ApiError> {
    let current = find(&state, &caller, &id).await?;
    let changed = updated_endpoint(
        current,
        &request,
        state.settings.webhooks.allow_internal,
        now(),
    )?;
    if !state.store.update_endpoint(&changed).await? {
        return Err(CoreError::EndpointNotFound(id).into());
    }
    Ok(endpoint_response(&changed))
}

/// Deletes an endpoint; its pending deliveries are cancelled.
#[utoipa::path(delete, path = "/api/v1/webhooks/endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path, description = "Endpoint id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_endpoint(&caller.scope(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(CoreError::EndpointNotFound(id.chars().take(64).collect()).into())
    }
}

/// Gives an endpoint a new secret. The old one keeps signing beside it for 24 hours (two
/// signatures in `webhook-signature`), so receivers can switch without losing events.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret", tag = "webhooks",
    params(("endpoint_id" = String, Path, description = "Endpoint id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The new secret", body = WebhookSecretResponse),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn rotate_endpoint_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<WebhookSecretResponse>, ApiError> {
    let rotated = rotated_endpoint(find(&state, &caller, &id).await?, now());
    if !state.store.update_endpoint(&rotated).await? {
        return Err(CoreError::EndpointNotFound(id).into());
    }
    Ok(Json(WebhookSecretResponse {
        success: true,
        secret: rotated.secret,
        previous_secret_expires_at: rotated.previous_secret_expires_at,
    }))
}

/// Sends a `webhook.test` event to the endpoint.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{endpoint_id}/test", tag = "webhooks",
    params(("endpoint_id" = String, Path, description = "Endpoint id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Scheduled", body = TestEventResponse),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn test_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let endpoint = find(&state, &caller, &id).await?;
    let event = test_event(&endpoint.partner_id, endpoint.environment, now());
    let delivery_id = state.store.send_test_event(&event, &endpoint.id).await?;
    let body = TestEventResponse {
        success: true,
        event_id: event.id,
        delivery_id,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn attempts_page(
    state: &AppState,
    caller: &Caller,
    endpoint_id: Option<String>,
    query: &PageQuery,
) -> Result<Json<Page<DeliveryAttempt>>, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let rows = state
        .store
        .list_attempts(&caller.scope(), endpoint_id, page)
        .await?;
    let (rows, next_cursor) = finish_page(rows, page);
    Ok(Json(Page {
        success: true,
        data: rows.iter().map(convert::attempt).collect(),
        has_more: next_cursor.is_some(),
        next_cursor,
    }))
}

/// An endpoint's delivery attempts, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{endpoint_id}/attempts", tag = "webhooks",
    params(("endpoint_id" = String, Path, description = "Endpoint id"), PageQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 400, description = "Malformed body, field or query (`INVALID_JSON`, `VALIDATION_ERROR`, `INVALID_QUERY`, `INVALID_CURSOR`)", body = ErrorBody),
        (status = 200, description = "A page of attempts", body = Page<DeliveryAttempt>),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn endpoint_attempts(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<DeliveryAttempt>>, ApiError> {
    let endpoint = find(&state, &caller, &id).await?;
    attempts_page(&state, &caller, Some(endpoint.id), &query).await
}

/// Every delivery attempt of the key (endpoints and per-eSIM `webhook_url`s), newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/attempts", tag = "webhooks",
    params(PageQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 400, description = "Malformed body, field or query (`INVALID_JSON`, `VALIDATION_ERROR`, `INVALID_QUERY`, `INVALID_CURSOR`)", body = ErrorBody),(status = 200, description = "A page of attempts", body = Page<DeliveryAttempt>),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn all_attempts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<DeliveryAttempt>>, ApiError> {
    attempts_page(&state, &caller, None, &query).await
}

/// Sends an event again to its current destinations (with the same `webhook-id`).
#[utoipa::path(post, path = "/api/v1/webhooks/events/{event_id}/redeliver", tag = "webhooks",
    params(("event_id" = String, Path, description = "Event id (`webhook-id`)")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Scheduled", body = RedeliverResponse),
        (status = 404, description = "No such event (`EVENT_NOT_FOUND`)", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(event_id): ApiPath,
) -> Result<Response, ApiError> {
    let scheduled = state
        .store
        .redeliver_event(&caller.scope(), &event_id, now())
        .await?
        .ok_or_else(|| CoreError::EventNotFound(event_id.chars().take(64).collect()))?;
    let body = RedeliverResponse {
        success: true,
        event_id,
        deliveries: scheduled,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The secret that signs deliveries to the `webhook_url`s given when provisioning.
#[utoipa::path(get, path = "/api/v1/webhooks/secret", tag = "webhooks",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The secret", body = WebhookSecretResponse),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn esim_secret(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WebhookSecretResponse>, ApiError> {
    let secret = state
        .store
        .esim_signing_secret(&caller.scope(), &oytel_core::webhooks::generate_secret())
        .await?;
    Ok(Json(WebhookSecretResponse {
        success: true,
        secret: secret.secret,
        previous_secret_expires_at: secret.previous_secret_expires_at,
    }))
}

/// Rotates the secret of per-eSIM `webhook_url` deliveries; the old one signs beside the new
/// one for 24 hours.
#[utoipa::path(post, path = "/api/v1/webhooks/secret/rotate", tag = "webhooks",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The new secret", body = WebhookSecretResponse),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn rotate_esim_secret(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WebhookSecretResponse>, ApiError> {
    let secret = state
        .store
        .rotate_esim_signing_secret(
            &caller.scope(),
            &oytel_core::webhooks::generate_secret(),
            now() + overlap(),
        )
        .await?;
    Ok(Json(WebhookSecretResponse {
        success: true,
        secret: secret.secret,
        previous_secret_expires_at: secret.previous_secret_expires_at,
    }))
}
