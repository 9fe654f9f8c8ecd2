//! Liveness and readiness.
//!
//! Readiness tells a load balancer whether this instance can do its job, which is to sell:
//! the database must answer a read and commit a write, each within [`PROBE_TIMEOUT`]. A
//! read alone was not enough: with the SQLite writer stuck (issue #24) reads went on
//! answering and `/readyz` said `ok` while no provisioning could commit. Probes are shared:
//! however many requests ask, at most one probe runs at a time, and an answer is reused for
//! [`PROBE_REUSE`].

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use oytel_types::{ErrorBody, HealthResponse};

use crate::error::ApiError;
use crate::state::AppState;

/// The longest a readiness probe waits for the database.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a probe's answer serves later readiness requests.
pub const PROBE_REUSE: Duration = Duration::from_secs(1);

/// The last readiness probe: when it ended and what it found (`Err`: what failed).
#[derive(Debug, Default)]
pub struct Readiness(tokio::sync::Mutex<Option<(Instant, Result<(), &'static str>)>>);

impl Readiness {
    /// The answer of a probe no older than [`PROBE_REUSE`], probing if there is none.
    async fn check(&self, state: &AppState) -> Result<(), &'static str> {
        let mut last = self.0.lock().await;
        if let Some((at, answer)) = *last {
            if at.elapsed() < PROBE_REUSE {
                return answer;
            }
        }
        let answer = probe(state).await;
        *last = Some((Instant::now(), answer));
        answer
    }
}

/// Reads, then writes; each bounded. The write runs in a task of its own, so that a probe
/// that times out never stops half-way through its transaction.
async fn probe(state: &AppState) -> Result<(), &'static str> {
    let bounded = |what: &'static str, r: Result<Result<(), _>, _>| match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database {what}");
            Err(what)
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = PROBE_TIMEOUT.as_millis() as u64,
                "readiness: the database {what}"
            );
            Err(what)
        }
    };
    bounded(
        "does not answer a read",
        tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await,
    )?;
    let store = state.store.clone();
    let write = state
        .completion
        .in_flight
        .spawn(async move { store.probe_write(oytel_core::clock::now()).await });
    let written = match tokio::time::timeout(PROBE_TIMEOUT, write).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(join)) => Ok(Err(oytel_core::ports::StoreError::Other(join.to_string()))),
        Err(elapsed) => Err(elapsed),
    };
    bounded("cannot commit a write", written)
}

fn ok() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The server is up", body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    ok()
}

/// Readiness: the database answers a read and commits a write, each within 2 s (one probe
/// at a time, its answer reused for 1 s).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = HealthResponse),
        (status = 503, description = "The database does not answer a read or cannot commit a write", body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<HealthResponse>, ApiError> {
    state.readiness.check(&state).await.map_err(|what| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            oytel_types::ErrorCode::ServiceUnavailable,
            format!("not ready: the database {what}"),
        )
    })?;
    Ok(ok())
}
