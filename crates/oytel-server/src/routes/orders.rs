//! Reading orders.

use axum::extract::State;
use axum::Json;
use oytel_core::limits::QuotaKind;
use oytel_core::paging::{finish_page, page_request};
use oytel_core::validation::reference_filter;
use oytel_core::CoreError;
use oytel_types::{ErrorBody, ListOrdersQuery, Order, OrderResponse, Page};

use crate::convert;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, Caller};
use crate::state::AppState;

/// An order.
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = String, Path, description = "Order id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 404, description = "No such order for this key (`ORDER_NOT_FOUND`)", body = ErrorBody),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(order_id): ApiPath,
) -> Result<Json<OrderResponse>, ApiError> {
    caller.consume(&state, QuotaKind::Status).await?;
    let record = state
        .store
        .get_order(&caller.scope(), &order_id)
        .await?
        .ok_or_else(|| CoreError::OrderNotFound(order_id.chars().take(64).collect()))?;
    Ok(Json(OrderResponse {
        success: true,
        order: convert::order(&record),
    }))
}

/// The key's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders",
    params(ListOrdersQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of orders", body = Page<Order>),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, response = crate::responses::Unauthorized),
        (status = 429, response = crate::responses::RateLimited)))]
pub async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListOrdersQuery>,
) -> Result<Json<Page<Order>>, ApiError> {
    caller.consume(&state, QuotaKind::Status).await?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let reference_id = reference_filter(query.reference_id.as_deref())?;
    let rows = state
        .store
        .list_orders(&caller.scope(), reference_id, page)
        .await?;
    let (rows, next_cursor) = finish_page(rows, page);
    Ok(Json(Page {
        success: true,
        data: rows.iter().map(convert::order).collect(),
        has_more: next_cursor.is_some(),
        next_cursor,
    }))
}
