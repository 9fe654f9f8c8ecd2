//! The listener the SM-DP+ calls: `handleDownloadProgressInfo` (ES2+), on its own port and
//! never on the partners', over TLS that accepts only client certificates signed by the
//! configured CA (`OYTEL_ES2PLUS_*`). Each report is kept once per call identifier and
//! applied to its eSIM by the rules of `oytel_core::downloads`.
//!
//! | the report | answer |
//! |---|---|
//! | applied, kept (a point that changes nothing), repeated, or about an unknown ICCID | `204` (as SGP.22 expects: the SM-DP+ has nothing to do again) |
//! | not a `handleDownloadProgressInfo` body | `400` |
//! | our database cannot take it now | `503`: the SM-DP+ sends it again |
//! | any other path | `404` |

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use oytel_core::downloads::{self, NoticeOutcome, ProfileNotice};
use oytel_core::ports::{Storage, StoreError};
use oytel_es2plus::{DownloadProgressInfo, ExecutionStatus, Function};
use tokio::net::TcpListener;

use crate::config::Es2PlusListenArgs;

/// What the listener's handler needs.
#[derive(Clone)]
struct Listener {
    store: Arc<dyn Storage>,
    deletion_point: u32,
}

/// The listener, bound: its address, and the TLS it serves with (none: plain HTTP, in
/// development only).
pub struct Bound {
    /// Where the SM-DP+ calls.
    pub address: SocketAddr,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Binds the listener of `args`, if one is configured. Refuses half a TLS setting, and plain
/// HTTP outside development.
pub async fn bind(args: &Es2PlusListenArgs, development: bool) -> anyhow::Result<Option<Bound>> {
    let Some(address) = args.es2plus_listen else {
        return Ok(None);
    };
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
    };
    let tls = match (&args.es2plus_tls_cert, &args.es2plus_tls_key, &args.es2plus_client_ca) {
        (Some(cert), Some(key), Some(ca)) => Some(oytel_es2plus::tls::server_config(
            &read(cert, "ES2+ certificate (OYTEL_ES2PLUS_TLS_CERT)")?,
            &read(key, "ES2+ key (OYTEL_ES2PLUS_TLS_KEY)")?,
            Some(&read(ca, "ES2+ client CA (OYTEL_ES2PLUS_CLIENT_CA)")?),
        )?),
        (None, None, None) if development => None,
        (None, None, None) => bail!(
            "OYTEL_ES2PLUS_LISTEN needs OYTEL_ES2PLUS_TLS_CERT, OYTEL_ES2PLUS_TLS_KEY and \
             OYTEL_ES2PLUS_CLIENT_CA: ES2+ runs over mutual TLS (plain HTTP only in development mode)"
        ),
        _ => bail!(
            "OYTEL_ES2PLUS_TLS_CERT, OYTEL_ES2PLUS_TLS_KEY and OYTEL_ES2PLUS_CLIENT_CA go together"
        ),
    };
    let listener = crate::listener::bind(address, 1024)
        .with_context(|| format!("listening for the SM-DP+ on {address}"))?;
    Ok(Some(Bound {
        address: listener.local_addr()?,
        listener,
        tls,
    }))
}

/// Serves the SM-DP+'s calls on `bound` until the task is dropped.
pub async fn serve(bound: Bound, store: Arc<dyn Storage>, deletion_point: u32) {
    let app = Router::new()
        .route(
            &format!(
                "/gsma/rsp2/es2plus/{}",
                Function::HandleDownloadProgressInfo.name()
            ),
            post(handle_download_progress_info),
        )
        .with_state(Listener {
            store,
            deletion_point,
        });
    if let Err(e) = oytel_es2plus::tls::serve(bound.listener, app, bound.tls).await {
        tracing::error!(error = %e, "the ES2+ listener stopped");
    }
}

/// The report as the core reads it.
pub fn notice(info: DownloadProgressInfo, deletion_point: u32) -> ProfileNotice {
    let status = &info.notification_point_status;
    let success = matches!(
        status.status,
        ExecutionStatus::Success | ExecutionStatus::WithWarning
    );
    let result = match (&status.status, &status.status_code_data) {
        (ExecutionStatus::Success, _) => "success".to_owned(),
        (_, Some(codes)) => codes.describe(),
        (other, None) => other.as_str().to_owned(),
    };
    let point = info.notification_point_id;
    ProfileNotice {
        requester_id: info.header.function_requester_identifier,
        call_id: info.header.function_call_identifier,
        iccid: info.iccid.as_str().to_owned(),
        eid: info.eid,
        point,
        success,
        result,
        happened_at: info.timestamp,
        received_at: oytel_core::clock::now(),
        effect: downloads::effect(point, success, deletion_point),
    }
}

async fn handle_download_progress_info(
    State(listener): State<Listener>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let info: DownloadProgressInfo = match serde_json::from_slice(&body) {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(error = %e, "a handleDownloadProgressInfo that could not be read");
            return (
                StatusCode::BAD_REQUEST,
                "not a handleDownloadProgressInfo request",
            );
        }
    };
    let notice = notice(info, listener.deletion_point);
    let (iccid, point, call_id) = (notice.iccid.clone(), notice.point, notice.call_id.clone());
    match listener.store.record_profile_notice(&notice).await {
        Ok(outcome) => {
            match &outcome {
                NoticeOutcome::Applied { esim_id } => {
                    tracing::info!(%esim_id, point, call_id, result = %notice.result, "SM-DP+ report applied");
                }
                NoticeOutcome::UnknownIccid => {
                    tracing::warn!(%iccid, point, call_id, "SM-DP+ report about an ICCID no eSIM has (kept)");
                }
                other => {
                    tracing::info!(%iccid, point, call_id, outcome = ?other, "SM-DP+ report kept")
                }
            }
            (StatusCode::NO_CONTENT, "")
        }
        Err(StoreError::Unavailable(e)) => {
            tracing::warn!(error = %e, "an SM-DP+ report could not be kept now; it will be sent again");
            (StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
        Err(e) => {
            tracing::error!(error = %e, %iccid, point, "an SM-DP+ report could not be kept");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
