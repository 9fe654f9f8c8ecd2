//! The handlers, one module per resource. Each carries its `#[utoipa::path]`, and
//! [`crate::openapi::api_router`] registers them once for both the router and the spec.

pub mod account;
pub mod esims;
pub mod health;
pub mod operator;
pub mod orders;
pub mod plans;
pub mod qr;
pub mod sandbox;
pub mod topups;
pub mod webhooks;

use oytel_types::ResponseMeta;

use crate::context::current_request_id;
use crate::extract::Caller;

/// The `meta` of a response to `caller`.
pub(crate) fn meta(caller: &Caller) -> ResponseMeta {
    ResponseMeta {
        request_id: current_request_id().unwrap_or_default(),
        environment: caller.owner.environment,
        timestamp: oytel_core::clock::now(),
    }
}

/// Marks `response` as the replay of an earlier request with the same `Idempotency-Key`.
pub(crate) fn mark_replayed(response: &mut axum::response::Response, replayed: bool) {
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
}
