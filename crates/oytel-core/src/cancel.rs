//! Cancelling an eSIM, through the paid path ([`paid::run`]): the store ends the eSIM, gives
//! back what `billing::refund_for` says in the same transaction, and tells partners; a retry
//! with the same `Idempotency-Key`, or a second cancellation of the same eSIM, answers the
//! first cancellation.

use serde::Serialize;

use crate::clock::now;
use crate::idempotency::{request_hash, IdempotencyKey, Operation, ResourceKind};
use crate::paid::{self, Paid, PaidRequest, QuotaDraw, Written};
use crate::ports::{CancelResult, CancelWrite, Cancellation, Storage, StoreError};
use crate::validation::validate_text;
use crate::{CoreError, Scope};

/// Longest reason kept.
pub const MAX_REASON_CHARS: usize = 500;

/// Cancels the scope's eSIM `esim_id`, giving `reason` (the partner's, kept with it),
/// drawing from `quota` unless it is a replay.
pub async fn cancel(
    store: &dyn Storage,
    scope: &Scope,
    esim_id: &str,
    reason: Option<&str>,
    key: Option<&IdempotencyKey>,
    quota: Option<QuotaDraw<'_>>,
) -> Result<Paid<Cancellation>, CoreError> {
    let reason = reason
        .map(|r| validate_text("reason", r, MAX_REASON_CHARS))
        .transpose()?;
    /// What a key's request is: the eSIM and the reason.
    #[derive(Serialize)]
    struct Request<'a> {
        esim_id: &'a str,
        reason: Option<&'a str>,
    }
    let hash = request_hash(&Request {
        esim_id,
        reason: reason.as_deref(),
    });
    let now = now();
    let request = PaidRequest {
        scope,
        operation: Operation::Cancel,
        key,
        request_hash: hash,
        quota,
        now,
        hold: None,
    };
    let not_found = || CoreError::EsimNotFound(esim_id.chars().take(64).collect());
    paid::run(
        store,
        request,
        |idempotency| {
            let write = CancelWrite {
                scope: scope.clone(),
                esim_id: esim_id.to_owned(),
                reason: reason.clone(),
                idempotency,
                now,
            };
            async move {
                match store.cancel_esim(&write).await? {
                    CancelResult::Done(cancellation) => Ok(Written::Done(*cancellation)),
                    CancelResult::NotFound => Err(not_found()),
                    CancelResult::Invalid(invalid) => Err(invalid.into()),
                    CancelResult::KeyTaken => Ok(Written::KeyTaken),
                    CancelResult::ClaimLost => Ok(Written::ClaimLost),
                }
            }
        },
        |resource| async move {
            if resource.kind != ResourceKind::Cancellation {
                return Err(StoreError::Other(format!(
                    "a cancellation's key names a {}",
                    resource.kind.as_str()
                ))
                .into());
            }
            store
                .get_cancellation(scope, &resource.id)
                .await?
                .ok_or_else(not_found)
        },
    )
    .await
}
