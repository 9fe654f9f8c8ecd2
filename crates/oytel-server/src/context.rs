//! Per-request context: a request id for every request (in the `x-request-id` response header,
//! in error bodies and on every log line), and one structured log line per request.
//!
//! Logs name the route template (`/qr/{file}`), never the raw path, so secrets carried in
//! URLs (QR tokens) never reach the logs; headers are never logged.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A fresh request id: `req_` and 20 random letters and digits.
pub fn new_request_id() -> String {
    oytel_core::numbers::new_id("req")
}

/// Middleware: assigns the request id, logs the request, sets `x-request-id`.
pub async fn request_context(request: Request, next: Next) -> Response {
    let request_id = new_request_id();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        %method,
        %route,
        partner_id = tracing::field::Empty
    );
    let started = Instant::now();
    let header = HeaderValue::from_str(&request_id).ok();
    let mut response = REQUEST_ID
        .scope(request_id, next.run(request))
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request");
        }
    });
    if let Some(header) = header {
        response.headers_mut().insert("x-request-id", header);
    }
    response
}
