//! Per-request context: a request id for every request (in the `x-request-id` response header,
//! in error bodies and on every log line), and one structured log line per request.
//!
//! The request's span joins the caller's trace (see [`crate::traces`]) and its work runs with
//! the trace context it passes on.
//!
//! Logs name the route template (`/qr/{file}`), never the raw path, so secrets carried in
//! URLs (QR tokens) never reach the logs; headers are never logged.

use std::time::Instant;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use tracing::Instrument;

use crate::state::AppState;

tokio::task_local! {
    static REQUEST_ID: String;
    static RATE_LIMIT: std::cell::RefCell<Option<RateLimitState>>;
}

/// The limit that applies to a request and what is left of it, for the rate-limit headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitState {
    /// The policy's name: `hourly` or `burst`.
    pub policy: &'static str,
    /// Its quota.
    pub limit: u32,
    /// Its window, seconds.
    pub window: u64,
    /// What is left.
    pub remaining: u32,
    /// When it is whole again (Unix seconds).
    pub reset_at: i64,
    /// The burst limit, when the policy above is another.
    pub burst: Option<u32>,
}

/// Records the limit state of the request being served (the last call wins).
pub fn set_rate_limit(state: RateLimitState) {
    let _ = RATE_LIMIT.try_with(|cell| *cell.borrow_mut() = Some(state));
}

fn rate_limit_headers(state: &RateLimitState, headers: &mut axum::http::HeaderMap) {
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
    const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
    let reset_in = (state.reset_at - chrono::Utc::now().timestamp()).max(0);
    let mut policy = format!("\"{}\";q={};w={}", state.policy, state.limit, state.window);
    if let Some(burst) = state.burst {
        policy.push_str(&format!(", \"burst\";q={burst};w=1"));
    }
    let ratelimit = format!("\"{}\";r={};t={reset_in}", state.policy, state.remaining);
    headers.insert(LIMIT, HeaderValue::from(state.limit));
    headers.insert(REMAINING, HeaderValue::from(state.remaining));
    headers.insert(RESET, HeaderValue::from(state.reset_at));
    for (name, value) in [(POLICY, policy), (RATELIMIT, ratelimit)] {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    }
}

/// The client's address (see [`crate::client_addr`]), in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A fresh request id: `req_` and 20 random letters and digits.
pub fn new_request_id() -> String {
    oytel_core::numbers::new_id("req")
}

/// Middleware: assigns the request id, runs the request as [`crate::completion::Completion`] says, logs it, sets
/// `x-request-id`.
pub async fn request_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = new_request_id();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|peer| {
            ClientAddr(
                state
                    .settings
                    .trusted_proxies
                    .client(peer.0.ip(), request.headers()),
            )
        });
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        %method,
        %route,
        partner_id = tracing::field::Empty,
        client = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        otel.status_code = tracing::field::Empty
    );
    crate::traces::name_request_span(&span, &method, route);
    let traceparent =
        crate::traces::join(&span, crate::traces::caller(request.headers()).as_deref());
    if let Some(client) = client {
        span.record("client", tracing::field::display(client.0));
        request.extensions_mut().insert(client);
    }
    let started = Instant::now();
    let (metric_route, metric_method) = (matched.clone(), method.clone());
    let header = HeaderValue::from_str(&request_id).ok();
    // The log line is written where the work ends, so that a write whose client left (or
    // timed out) is logged with what it did.
    let work = REQUEST_ID
        .scope(
            request_id.clone(),
            RATE_LIMIT.scope(std::cell::RefCell::new(None), async move {
                let response =
                    oytel_core::tracecontext::scope(traceparent, next.run(request)).await;
                let rate = RATE_LIMIT.with(|cell| cell.borrow_mut().take());
                let status = response.status().as_u16();
                crate::traces::answered(&tracing::Span::current(), status);
                // Milliseconds to the microsecond: `1.285`, not `1.2853249999999998`.
                let elapsed = started.elapsed();
                let elapsed_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
                let route = metric_route
                    .as_ref()
                    .map_or("<unmatched>", MatchedPath::as_str);
                crate::metrics::http_request(route, &metric_method, status, elapsed);
                if status >= 500 {
                    tracing::error!(status, elapsed_ms, "request failed");
                } else {
                    tracing::info!(status, elapsed_ms, "request");
                }
                (response, rate)
            }),
        )
        .instrument(span.clone());
    let completion = &state.completion;
    let (mut response, rate) = match completion.run(&method, work).await {
        Some(answer) => answer,
        None => {
            span.in_scope(|| {
                tracing::warn!(
                    status = 503,
                    timeout_ms = completion.timeout.as_millis() as u64,
                    "request timed out: answered REQUEST_TIMEOUT; a write goes on to completion"
                );
            });
            let timed_out =
                async { crate::completion::timed_out(completion.timeout).into_response() };
            let error = REQUEST_ID.scope(request_id, timed_out).await;
            (error, None)
        }
    };
    if let Some(rate) = rate {
        rate_limit_headers(&rate, response.headers_mut());
    }
    if let Some(header) = header {
        response.headers_mut().insert("x-request-id", header);
    }
    response
}
