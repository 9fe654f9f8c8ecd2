//! The plan catalog. Answers carry an `ETag` and `Cache-Control`, and `If-None-Match` gets a
//! `304`, so clients can cache plans as the documentation recommends.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use oytel_types::{ErrorBody, PlanResponse, PlansMeta, PlansQuery, PlansResponse};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, Caller};
use crate::state::AppState;

/// How long clients may reuse a plan list without asking again.
const CACHE_CONTROL: &str = "private, max-age=300";

/// A rendered answer: its bytes and their weak `ETag` (the same compressed or not; see
/// [`crate::compression`]).
#[derive(Debug)]
pub struct Rendered {
    bytes: axum::body::Bytes,
    etag: String,
}

/// Renders a JSON answer once.
fn render<T: serde::Serialize>(body: &T) -> Result<Rendered, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    let digest = Sha256::digest(&bytes);
    let etag = oytel_core::numbers::hex(&digest[..16]);
    Ok(Rendered {
        bytes: bytes.into(),
        etag: format!("W/\"{etag}\""),
    })
}

/// Plan answers rendered once per environment and filter: the catalog does not change while
/// the server runs. Only filters naming a country or region of the catalog are kept, so the
/// cache cannot be grown by arbitrary input.
#[derive(Debug, Default)]
pub struct PlansCache(
    std::sync::RwLock<
        std::collections::HashMap<(oytel_types::Environment, String), std::sync::Arc<Rendered>>,
    >,
);

fn cached_plans(
    state: &AppState,
    environment: oytel_types::Environment,
    key: String,
    cacheable: bool,
    build: impl FnOnce() -> Result<Rendered, ApiError>,
) -> Result<std::sync::Arc<Rendered>, ApiError> {
    let cache = &state.plans_cache.0;
    if let Some(hit) = cache
        .read()
        .ok()
        .and_then(|c| c.get(&(environment, key.clone())).cloned())
    {
        return Ok(hit);
    }
    let rendered = std::sync::Arc::new(build()?);
    if cacheable {
        if let Ok(mut c) = cache.write() {
            c.insert((environment, key), rendered.clone());
        }
    }
    Ok(rendered)
}

/// A rendered answer, or `304` if the client has it.
fn cached_json(request: &HeaderMap, rendered: &Rendered) -> Result<Response, ApiError> {
    let etag = &rendered.etag;
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag.trim_start_matches("W/"));
    let etag = HeaderValue::from_str(etag).map_err(ApiError::internal)?;
    let headers = [
        (header::ETAG, etag),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (
            header::VARY,
            HeaderValue::from_static("Authorization, X-API-Key"),
        ),
    ];
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let json = HeaderValue::from_static("application/json");
    Ok((
        headers,
        [(header::CONTENT_TYPE, json)],
        rendered.bytes.clone(),
    )
        .into_response())
}

/// List plans with their prices per term, optionally only those working in a country or
/// belonging to a region. Not limited by quota.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans",
    params(PlansQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The plans", body = PlansResponse,
            headers(("ETag" = String, description = "Version of this answer"),
                    ("Cache-Control" = String, description = "How long to reuse it"))),
        (status = 304, description = "Unchanged since the ETag given"),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn list_plans(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PlansQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let environment = caller.owner.environment;
    let catalog = &state.catalog;
    let country = query.country.as_deref().map(str::to_ascii_uppercase);
    let region = query.region.as_deref().map(str::to_ascii_lowercase);
    let known = country
        .as_deref()
        .is_none_or(|c| catalog.plans.iter().any(|p| p.covers(c)))
        && region
            .as_deref()
            .is_none_or(|r| catalog.plans.iter().any(|p| p.region == r));
    let key = format!(
        "{}|{}",
        country.as_deref().unwrap_or(""),
        region.as_deref().unwrap_or("")
    );
    let rendered = cached_plans(&state, environment, key, known, || {
        let plans: Vec<_> = catalog
            .filter(country.as_deref(), region.as_deref())
            .map(|p| p.to_wire(&catalog.currency, environment))
            .collect();
        render(&PlansResponse {
            success: true,
            meta: PlansMeta {
                total: plans.len(),
                currency: catalog.currency.clone(),
                environment,
            },
            plans,
        })
    })?;
    cached_json(&headers, &rendered)
}

/// One plan.
#[utoipa::path(get, path = "/api/v1/plans/{plan_id}", tag = "plans",
    params(("plan_id" = String, Path, description = "Plan id, e.g. `uk-massive-650`"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The plan", body = PlanResponse),
        (status = 304, description = "Unchanged since the ETag given"),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 404, description = "No such plan (`PLAN_NOT_FOUND`)", body = ErrorBody),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn get_plan(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(plan_id): ApiPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let plan = state
        .catalog
        .get(&plan_id)
        .ok_or_else(|| oytel_core::CoreError::PlanNotFound(plan_id.chars().take(64).collect()))?;
    let environment = caller.owner.environment;
    let rendered = cached_plans(
        &state,
        environment,
        format!("plan:{}", plan.id),
        true,
        || {
            render(&PlanResponse {
                success: true,
                plan: plan.to_wire(&state.catalog.currency, environment),
            })
        },
    )?;
    cached_json(&headers, &rendered)
}
