//! The development mode's demo data: on the first start of an empty database, the demo
//! partner's sandbox gets a few eSIMs in different states, so that a newcomer who signs in to
//! the console (or lists eSIMs with the printed key) sees something. They are made through
//! the API's own handlers, with the demo key as the caller: sandbox eSIMs, never charged.
//!
//! | eSIM | state |
//! |---|---|
//! | `demo-trip-1` on `uk-massive-650` | active, 3 GB of data used |
//! | `demo-trip-2` on `eu-roam-50` | active |
//! | `demo-trip-3` on `uk-lite-10` | provisioned, waiting for the customer |

use axum::extract::State;
use oytel_core::idempotency::IdempotencyKey;
use oytel_types::{ProvisionRequest, SandboxUsageRequest};

use crate::extract::{ApiJson, ApiPath, Caller, IdempotencyKeyHeader};
use crate::routes;
use crate::state::AppState;

/// The demo eSIMs: reference, plan, and whether the customer installed it (and how many MB
/// it used).
const ESIMS: [(&str, &str, Option<u64>); 3] = [
    ("demo-trip-1", "uk-massive-650", Some(3_000)),
    ("demo-trip-2", "eu-roam-50", Some(0)),
    ("demo-trip-3", "uk-lite-10", None),
];

/// Gives the demo partner of `key` its demo eSIMs; a failure is logged, never fatal (the
/// server serves without them).
pub async fn populate(state: &AppState, key: &str) {
    if let Err(e) = try_populate(state, key).await {
        tracing::warn!(error = %e.message(), "could not make the demo eSIMs");
    }
}

async fn try_populate(state: &AppState, key: &str) -> Result<(), crate::error::ApiError> {
    let owner = match state.keys.authenticate(Some(key)).await? {
        Ok(owner) => owner,
        Err(refused) => return Err(refused.into()),
    };
    let caller = Caller {
        limits: owner.limits.apply(&state.settings.limits),
        owner,
    };
    for (reference, plan, used) in ESIMS {
        let order = ProvisionRequest::new(plan, "traveller@example.com", "Demo Traveller")
            .reference_id(reference);
        let idempotency = IdempotencyKeyHeader(Some(IdempotencyKey::parse(reference)?));
        let answer = routes::esims::provision_esim(
            State(state.clone()),
            caller.clone(),
            idempotency,
            ApiJson(order),
        )
        .await?;
        let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .map_err(crate::error::ApiError::internal)?;
        let esim: oytel_types::ProvisionResponse =
            serde_json::from_slice(&bytes).map_err(crate::error::ApiError::internal)?;
        if let Some(mb) = used {
            let id = ApiPath(esim.esim_id.clone());
            let _active =
                routes::sandbox::simulate_activation(State(state.clone()), caller.clone(), id)
                    .await?;
            if mb > 0 {
                let id = ApiPath(esim.esim_id.clone());
                let usage = ApiJson(SandboxUsageRequest::new(mb));
                let _used = routes::sandbox::simulate_usage(
                    State(state.clone()),
                    caller.clone(),
                    id,
                    usage,
                )
                .await?;
            }
        }
    }
    Ok(())
}
