//! The Oytel API server: axum handlers over `oytel-core`, with storage from `oytel-store`.
//!
//! HTTP lives here and only here (and in `oytel-client`): handlers parse and authenticate,
//! call the core, and convert records to the wire types of `oytel-types`. No SQL and no money
//! arithmetic happen in this crate.
//!
//! - [`app`] builds the router with its middleware; [`openapi`] is the route registry and the
//!   spec derived from it.
//! - [`config`] reads settings from flags and `OYTEL_*` environment variables.
//! - [`serve`] runs the server until SIGTERM or Ctrl-C, letting in-flight requests finish;
//!   [`completion`] keeps state-changing requests whole when their client goes away.

pub mod client_addr;
pub mod completion;
pub mod compression;
pub mod config;
pub mod context;
pub mod convert;
pub mod dashboard;
pub mod demo;
pub mod dispatch;
pub mod error;
pub mod es2plus_listener;
pub mod examples;
pub mod extract;
pub mod keycache;
pub mod listener;
pub mod logfmt;
pub mod logwriter;
pub mod metrics;
pub mod openapi;
pub mod qr;
pub mod ratelimit;
pub mod recent_errors;
pub mod responses;
pub mod routes;
pub mod smdp;
pub mod state;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod traces;
pub mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use oytel_types::ErrorCode;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::state::AppState;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this route does not support this method",
    )
}

async fn openapi_json(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        state.spec.json.clone(),
    )
        .into_response()
}

async fn openapi_yaml(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/yaml")],
        state.spec.yaml.clone(),
    )
        .into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("handler panicked").into_response()
}

/// The whole application: every route, the error fallbacks, and the middleware.
///
/// The API documentation gives the base URL as `…/v1`, so `/v1/…` is the same API as
/// `/api/v1/…` (`/v1/plans` is `/api/v1/plans`): a path no route matches is tried again
/// with `/api` in front when it starts with `/v1/`, before it is a 404.
pub fn app(state: AppState) -> Router {
    let (api, _) = openapi::api_router().split_for_parts();
    let api = api
        .route("/openapi.json", get(openapi_json))
        .route("/openapi.yaml", get(openapi_yaml))
        .merge(dashboard::router(&state.settings.public_url))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let routes = api.clone().with_state(state.clone());
    let versioned = tower::service_fn(move |mut request: axum::extract::Request| {
        let routes = routes.clone();
        if let Some(rest) = request.uri().path().strip_prefix("/v1/") {
            let query = request
                .uri()
                .query()
                .map_or_else(String::new, |q| format!("?{q}"));
            if let Ok(uri) = format!("/api/v1/{rest}{query}").parse() {
                *request.uri_mut() = uri;
            }
        }
        tower::ServiceExt::oneshot(routes, request)
    });
    api.fallback_service(versioned)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(compression::layer())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        .with_state(state)
}

/// Housekeeping until `shutdown` resolves: every minute, forgets idle rate-limit keys; every
/// hour (and at start), deletes expired idempotency keys, ended quota windows and ended console
/// sessions, and warns of low profile stock.
async fn housekeeping(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut minute = tokio::time::interval(Duration::from_secs(60));
    let mut hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = minute.tick() => state.limiter.sweep(),
            _ = hour.tick() => {
                let now = oytel_core::clock::now();
                match state.store.purge_idempotency_keys(now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired idempotency keys deleted"),
                    Err(e) => tracing::warn!(error = %e, "could not purge idempotency keys"),
                }
                if let Err(e) = state.quotas.purge(now).await {
                    tracing::warn!(error = %e, "could not purge quota windows");
                }
                if let Err(e) = state.store.delete_ended_sessions(now).await {
                    tracing::warn!(error = %e, "could not delete ended console sessions");
                }
                warn_of_low_stock(&state).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Warns, at start and every hour, of each profile type live orders draw from the stock
/// (`OYTEL_PROFILE_STOCK=inventory`, no SM-DP+) whose stock is low or empty.
async fn warn_of_low_stock(state: &AppState) {
    let provision = &state.settings.provision;
    if provision.stock != oytel_core::provision::ProfileStock::Inventory
        || provision
            .smdp_for(oytel_types::Environment::Production)
            .is_some()
    {
        return;
    }
    let stock = match state.store.stock().await {
        Ok(stock) => stock,
        Err(e) => return tracing::warn!(error = %e, "could not read the profile stock"),
    };
    let mut types: Vec<&str> = state
        .catalog
        .plans
        .iter()
        .filter(|p| p.available)
        .map(|p| p.profile_type())
        .collect();
    types.sort_unstable();
    types.dedup();
    for profile_type in types {
        let available = stock
            .iter()
            .find(|s| {
                s.profile_type == profile_type
                    && s.environment == oytel_types::Environment::Production
            })
            .map_or(0, |s| s.available);
        if available < oytel_core::inventory::LOW_STOCK {
            tracing::warn!(profile_type, available,
                "profile stock low: import a batch (oytel-server inventory import); live orders of its plans are refused when it is empty");
        }
    }
}

/// Serves `state` on `listener` (within the connection limits of [`listener`]) until
/// `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut background = vec![
        tokio::spawn(housekeeping(state.clone(), stop_rx.clone())),
        tokio::spawn(state.keys.clone().hold_lease(stop_rx.clone())),
    ];
    if state.settings.workers {
        background.push(tokio::spawn(dispatch::run_deliveries(
            state.clone(),
            stop_rx.clone(),
        )));
        background.push(tokio::spawn(smdp::run_reconciler(
            state.clone(),
            stop_rx.clone(),
        )));
        background.push(tokio::spawn(worker::run_expiry(state.clone(), stop_rx)));
    }
    let in_flight = state.completion.in_flight.clone();
    let limits = state.settings.connections;
    listener::serve(
        listener,
        app(state),
        limits,
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
        },
        completion::SHUTDOWN_GRACE,
    )
    .await;
    // Writes whose clients left (or timed out) are not waited for by the HTTP server.
    if tokio::time::timeout(completion::SHUTDOWN_GRACE, in_flight.idle())
        .await
        .is_err()
    {
        tracing::warn!(
            running = in_flight.running(),
            "shutting down with requests still running (clients stalled mid-request)"
        );
    }
    let _ = stop_tx.send(true);
    for task in background {
        let _ = task.await;
    }
    Ok(())
}

/// A future that resolves on SIGTERM or Ctrl-C. The signal handlers are installed when this
/// is called, not when it is first polled, so a signal that arrives between start-up and
/// serving is not lost (and does not kill the process abruptly).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Builds the shared state of a server.
pub fn state(
    store: Arc<dyn oytel_core::ports::Storage>,
    quotas: Arc<dyn oytel_core::limits::Quotas>,
    catalog: oytel_core::catalog::Catalog,
    settings: state::Settings,
) -> Result<AppState, String> {
    let spec = openapi::ServedSpec::for_instance(&settings.public_url)?;
    let timeout = settings.request_timeout;
    Ok(AppState {
        keys: Arc::new(keycache::KeyCache::new(store.clone())),
        store,
        quotas,
        limiter: Arc::new(ratelimit::RateLimits::new(
            settings.auth_failures_per_minute,
        )),
        plans_cache: Arc::default(),
        catalog: Arc::new(catalog),
        settings: Arc::new(settings),
        spec: Arc::new(spec),
        completion: completion::Completion {
            in_flight: completion::InFlight::default(),
            timeout,
        },
        readiness: Arc::default(),
    })
}
