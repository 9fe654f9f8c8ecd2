//! The one idempotent, paid-write path: what every POST that charges or changes state does
//! around its own write, so that a retry never charges twice and a quota is drawn once per
//! request that writes. Provisioning uses it; top-ups, suspensions and cancellations will.
//!
//! | the request | what happens |
//! |---|---|
//! | has no `Idempotency-Key` | draw a unit of the quota; write |
//! | has a key never seen (the common case) | draw; write, the claim of the key being the transaction's first row, completed with what the write created: one transaction |
//! | … and the key turns out to be stored | give the unit back; then claim it apart (below) |
//! | has a key completed before | replay: the first answer, rebuilt from the resource the key names; no quota drawn, even from a spent one |
//! | has a key in use by a running request, or used for another request | refused: in progress, or reused |
//! | has a key claimed apart | draw; write, completing the claim in the write's transaction |
//! | fails after claiming | the claim is released, so that a corrected retry can run |
//!
//! An operation brings three things: its [`Operation`] and request (hashed with
//! [`request_hash`](crate::idempotency::request_hash)), a `write` that does the whole change
//! in one transaction with the [`IdempotencyWrite`] it is given, and a `replay` that rebuilds
//! its answer from the [`ResourceRef`] a completed key names.

use std::future::Future;

use chrono::{DateTime, Duration, Utc};

use crate::idempotency::{
    ClaimRef, IdempotencyClaim, IdempotencyKey, IdempotencyRequest, IdempotencyWrite, Operation,
    ResourceRef, IDEMPOTENCY_LEASE_SECONDS, IDEMPOTENCY_TTL_HOURS,
};
use crate::limits::{QuotaKey, QuotaUse, Quotas};
use crate::ports::{Storage, StoreError};
use crate::{CoreError, Scope};

/// The quota a request draws from.
pub struct QuotaDraw<'a> {
    /// Where it is counted.
    pub quotas: &'a dyn Quotas,
    /// Whose it is.
    pub key: QuotaKey,
    /// How many requests an hour.
    pub limit: u32,
}

impl std::fmt::Debug for QuotaDraw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaDraw")
            .field("key", &self.key)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// A paid request, as the path sees it.
#[derive(Debug)]
pub struct PaidRequest<'a> {
    /// Who asks.
    pub scope: &'a Scope,
    /// What for.
    pub operation: Operation,
    /// The request's `Idempotency-Key`, if it sent one.
    pub key: Option<&'a IdempotencyKey>,
    /// The fingerprint of the request.
    pub request_hash: String,
    /// The quota it draws from, if any.
    pub quota: Option<QuotaDraw<'a>>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What one attempt at an operation's write did.
#[derive(Debug)]
pub enum Written<T> {
    /// Committed.
    Done(T),
    /// Nothing written: the key the write was to claim is stored already.
    KeyTaken,
    /// Nothing written: another request took the claim over after this one's lease ran out.
    ClaimLost,
}

/// The outcome of a paid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid<T> {
    /// What the write made, or what the replay rebuilt.
    pub value: T,
    /// Whether this is a replay of an earlier request with the same key.
    pub replayed: bool,
    /// The quota after this request (none for a replay, which is free).
    pub quota: Option<QuotaUse>,
}

/// Runs a paid request through the path of the module's table.
pub async fn run<T, W, WF, R, RF>(
    store: &dyn Storage,
    request: PaidRequest<'_>,
    write: W,
    replay: R,
) -> Result<Paid<T>, CoreError>
where
    W: Fn(Option<IdempotencyWrite>) -> WF,
    WF: Future<Output = Result<Written<T>, CoreError>>,
    R: FnOnce(ResourceRef) -> RF,
    RF: Future<Output = Result<T, CoreError>>,
{
    let PaidRequest {
        scope,
        operation,
        key,
        request_hash,
        quota,
        now,
    } = request;
    let quota = quota.as_ref();
    let written = |value| Paid {
        value,
        replayed: false,
        quota: None,
    };
    let Some(key) = key else {
        let used = draw(quota, now).await?;
        return match write(None).await? {
            Written::Done(value) => Ok(Paid {
                quota: used,
                ..written(value)
            }),
            Written::KeyTaken | Written::ClaimLost => Err(StoreError::Other(
                "the store reported an idempotency key for a request without one".into(),
            )
            .into()),
        };
    };
    let claim = IdempotencyRequest {
        key: key.as_str().to_owned(),
        operation,
        token: crate::numbers::random_base62(24),
        request_hash,
        now,
        lease_until: now + Duration::seconds(IDEMPOTENCY_LEASE_SECONDS),
        expires_at: now + Duration::hours(IDEMPOTENCY_TTL_HOURS),
    };

    match draw(quota, now).await {
        Ok(used) => match write(Some(IdempotencyWrite::ClaimNew(claim.clone()))).await? {
            Written::Done(value) => {
                return Ok(Paid {
                    quota: used,
                    ..written(value)
                })
            }
            Written::ClaimLost => return Err(CoreError::IdempotencyInProgress),
            Written::KeyTaken => {
                if let (Some(q), Some(_)) = (quota, used) {
                    // A replay draws nothing. Should this fail, the hour's count is one too
                    // high; no money or order is affected.
                    let _ = q.quotas.refund(&q.key, now).await;
                }
            }
        },
        // A spent quota does not refuse a replay: the claim decides.
        Err(CoreError::QuotaExceeded { .. }) => {}
        Err(e) => return Err(e),
    }

    match store.claim_idempotency_key(scope, &claim).await? {
        IdempotencyClaim::Claimed => {}
        IdempotencyClaim::Completed { resource } => {
            return Ok(Paid {
                value: replay(resource).await?,
                replayed: true,
                quota: None,
            });
        }
        IdempotencyClaim::InProgress => return Err(CoreError::IdempotencyInProgress),
        IdempotencyClaim::Mismatch => return Err(CoreError::IdempotencyKeyReused),
    }
    let claim = ClaimRef {
        key: claim.key,
        token: claim.token,
    };
    let result = async {
        let used = draw(quota, now).await?;
        match write(Some(IdempotencyWrite::Complete(claim.clone()))).await? {
            Written::Done(value) => Ok(Paid {
                quota: used,
                ..written(value)
            }),
            Written::KeyTaken | Written::ClaimLost => Err(CoreError::IdempotencyInProgress),
        }
    }
    .await;
    if result.is_err() {
        // Only successes are remembered: free the key for a corrected retry. If this fails
        // too, the claim's lease runs out and the key is freed then.
        let _ = store.release_idempotency_key(scope, &claim).await;
    }
    result
}

/// Draws one unit of `quota`, if there is one to draw from; refuses when it is spent.
async fn draw(
    quota: Option<&QuotaDraw<'_>>,
    now: DateTime<Utc>,
) -> Result<Option<QuotaUse>, CoreError> {
    let Some(q) = quota else {
        return Ok(None);
    };
    let used = q.quotas.consume(&q.key, q.limit, now).await?;
    if used.allowed {
        Ok(Some(used))
    } else {
        Err(CoreError::QuotaExceeded {
            kind: q.key.kind,
            used,
        })
    }
}
