//! Prometheus metrics, served on a listener of their own (`OYTEL_METRICS_LISTEN`), never on
//! the partners' port. Every label takes few values (route templates, methods, status and
//! error codes, outcomes, profile types the operator names); none carries an id, a key, an
//! address or an email, so the number of series stays bounded.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `oytel_http_requests_total` | counter | `route` (template), `method`, `status` | answers given |
//! | `oytel_http_request_duration_seconds` | histogram | `route`, `method` | time to the answer |
//! | `oytel_provisionings_total` | counter | `environment`, `outcome` (`created`, `replayed`, `refused`), `code` (the error code; `""` otherwise) | `POST /api/v1/esim/provision` that reached the handler (a body refused before it, e.g. not JSON, shows only in `oytel_http_requests_total`) |
//! | `oytel_idempotent_replays_total` | counter | `operation` (`provision`, `topup`) | first answers given again |
//! | `oytel_rate_limited_total` | counter | `limit` (`burst_per_second`, `provision_per_hour`, `status_per_hour`, `auth_failures_per_minute`) | requests refused `429` |
//! | `oytel_usage_records_total` | counter | `result` (`applied`, `duplicate`, `rejected`) | usage records the network reported |
//! | `oytel_usage_record_lag_seconds` | histogram | — | from the network's `recorded_at` to their arrival |
//! | `oytel_webhook_attempts_total` | counter | `outcome` (`delivered`, `retry`, `gave_up`, `gone`) | delivery attempts |
//! | `oytel_webhook_attempt_duration_seconds` | histogram | — | one attempt, to its answer or failure |
//! | `oytel_webhook_pending` | gauge | — | deliveries not yet done (read at scrape) |
//! | `oytel_webhook_oldest_pending_seconds` | gauge | — | the age of the oldest of them (read at scrape) |
//! | `oytel_smdp_calls_total` | counter | `function` (ES2+), `outcome` (`success`, `unreachable`, `timeout`, `rejected`, `protocol`) | calls to the SM-DP+ |
//! | `oytel_smdp_call_duration_seconds` | histogram | `function` | one call, its retries included |
//! | `oytel_smdp_reservations` | gauge | `state` | the saga's journal (read at scrape) |
//! | `oytel_profile_stock_available` | gauge | `profile_type`, `environment` | the builtin stock (read at scrape) |
//! | `oytel_db_pool_connections` | gauge | `pool`, `state` (`in_use`, `idle`) | database connections (read at scrape) |
//! | `oytel_partners_below_low_balance` | gauge | — | partners under the threshold they set (read at scrape) |
//! | `oytel_webhook_endpoints_disabled` | gauge | — | endpoints disabled: by their partner, after a `410 Gone`, or after failing for days (read at scrape) |
//!
//! Without a listener no recorder is installed, and each recording function returns after
//! one atomic load, before building any label.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use oytel_core::ports::Storage;
use tokio::net::TcpListener;

/// Latency buckets, seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Whether a recorder is installed: without one, nothing below builds its labels.
static ON: AtomicBool = AtomicBool::new(false);

fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Installs the process's recorder: from now on the macros record.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("the metrics recorder: {e}"))?;
    ON.store(true, Ordering::Relaxed);
    Ok(handle)
}

/// An answer given.
pub fn http_request(route: &str, method: &axum::http::Method, status: u16, elapsed: Duration) {
    if !on() {
        return;
    }
    counter!("oytel_http_requests_total", "route" => route.to_owned(),
        "method" => method.as_str().to_owned(), "status" => status.to_string())
    .increment(1);
    histogram!("oytel_http_request_duration_seconds", "route" => route.to_owned(),
        "method" => method.as_str().to_owned())
    .record(elapsed.as_secs_f64());
}

/// A provisioning's outcome: created, replayed, or refused with `code`.
pub fn provisioning(environment: oytel_types::Environment, outcome: &'static str, code: &str) {
    if !on() {
        return;
    }
    counter!("oytel_provisionings_total", "environment" => environment.as_str(),
        "outcome" => outcome, "code" => code.to_owned())
    .increment(1);
}

/// A first answer given again.
pub fn replay(operation: &'static str) {
    if !on() {
        return;
    }
    counter!("oytel_idempotent_replays_total", "operation" => operation).increment(1);
}

/// A request refused by the limit named.
pub fn rate_limited(limit: &str) {
    if !on() {
        return;
    }
    counter!("oytel_rate_limited_total", "limit" => limit.to_owned()).increment(1);
}

/// A usage record the network reported, by what came of it.
pub fn usage_record(status: oytel_types::BatchItemStatus) {
    if !on() {
        return;
    }
    let result = match status {
        oytel_types::BatchItemStatus::Applied => "applied",
        oytel_types::BatchItemStatus::Duplicate => "duplicate",
        oytel_types::BatchItemStatus::Rejected => "rejected",
    };
    counter!("oytel_usage_records_total", "result" => result).increment(1);
}

/// How long after it was recorded by the network a usage record reached us.
pub fn usage_lag(lag: chrono::Duration) {
    if !on() {
        return;
    }
    histogram!("oytel_usage_record_lag_seconds")
        .record(lag.num_milliseconds().max(0) as f64 / 1000.0);
}

/// A webhook delivery attempt.
pub fn webhook_attempt(outcome: &'static str, elapsed: Duration) {
    if !on() {
        return;
    }
    counter!("oytel_webhook_attempts_total", "outcome" => outcome).increment(1);
    histogram!("oytel_webhook_attempt_duration_seconds").record(elapsed.as_secs_f64());
}

/// A call to the SM-DP+.
pub fn smdp_call(function: &'static str, outcome: &'static str, elapsed: Duration) {
    if !on() {
        return;
    }
    counter!("oytel_smdp_calls_total", "function" => function, "outcome" => outcome).increment(1);
    histogram!("oytel_smdp_call_duration_seconds", "function" => function)
        .record(elapsed.as_secs_f64());
}

/// Reads the figures kept in the database into their gauges.
async fn read_figures(store: &dyn Storage) {
    match store.figures(oytel_core::clock::now()).await {
        Ok(figures) => {
            gauge!("oytel_webhook_pending").set(figures.pending_deliveries as f64);
            gauge!("oytel_webhook_oldest_pending_seconds").set(figures.oldest_pending_seconds);
            gauge!("oytel_partners_below_low_balance")
                .set(figures.partners_below_low_balance as f64);
            gauge!("oytel_webhook_endpoints_disabled").set(figures.disabled_endpoints as f64);
            for (pool, open, idle) in figures.pools {
                gauge!("oytel_db_pool_connections", "pool" => pool, "state" => "in_use")
                    .set(f64::from(open.saturating_sub(idle)));
                gauge!("oytel_db_pool_connections", "pool" => pool, "state" => "idle")
                    .set(f64::from(idle));
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not read the figures"),
    }
    if let Ok(counts) = store.reservation_counts().await {
        for state in oytel_core::profiles::ReservationState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            gauge!("oytel_smdp_reservations", "state" => state.as_str()).set(n as f64);
        }
    }
    if let Ok(stock) = store.stock().await {
        for s in stock {
            gauge!("oytel_profile_stock_available", "profile_type" => s.profile_type,
                "environment" => s.environment.as_str())
            .set(s.available as f64);
        }
    }
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    store: Arc<dyn Storage>,
}

async fn scrape(State(scrape): State<Scrape>) -> impl IntoResponse {
    read_figures(scrape.store.as_ref()).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        scrape.handle.render(),
    )
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, store: Arc<dyn Storage>) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape { handle, store });
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}

/// Binds the metrics listener.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    TcpListener::bind(address)
        .await
        .with_context(|| format!("listening for metrics on {address}"))
}
