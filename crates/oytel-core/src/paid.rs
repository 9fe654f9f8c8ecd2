//! The one idempotent, paid-write path: what every POST that charges or changes state does
//! around its own write, so that a retry never charges twice and a quota is drawn once per
//! request that writes. Provisioning uses it; top-ups, suspensions and cancellations will.
//!
//! | the request | what happens |
//! |---|---|
//! | has no `Idempotency-Key` | draw a unit of the quota; write |
//! | has a key never seen (the common case) | draw; write, the claim of the key being the transaction's first row, completed with what the write created: one transaction |
//! | has a key, and the write calls the outside first (`hold`) | claim it apart (below), held for the call's length |
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
    /// For a write that calls the outside before its transaction (an SM-DP+): a request
    /// with a key claims it first, apart, and holds it this long, so that a retry during the
    /// call is told it is in progress instead of calling again. None: the common path.
    pub hold: Option<Duration>,
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
        hold,
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
        lease_until: now + hold.unwrap_or(Duration::seconds(IDEMPOTENCY_LEASE_SECONDS)),
        expires_at: now + Duration::hours(IDEMPOTENCY_TTL_HOURS),
    };

    // Held: nothing is drawn or written before the claim apart.
    if hold.is_none() {
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
                        // A replay draws nothing. Should this fail, the hour's count is one
                        // too high; no money or order is affected.
                        let _ = q.quotas.refund(&q.key, now).await;
                    }
                }
            },
            // A spent quota does not refuse a replay: the claim decides.
            Err(CoreError::QuotaExceeded { .. }) => {}
            Err(e) => return Err(e),
        }
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

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::limits::{quota_use, MockQuotas, QuotaKind};
    use crate::ports::MockStorage;
    use crate::Environment;

    fn scope() -> Scope {
        Scope {
            partner_id: "ptn_1".into(),
            environment: Environment::Production,
        }
    }

    fn quota_key() -> QuotaKey {
        QuotaKey {
            partner_id: "ptn_1".into(),
            environment: Environment::Production,
            kind: QuotaKind::Provision,
        }
    }

    /// Runs a request with `key` through the path. Its write answers `answers` in turn (a
    /// write beyond them fails the test) and records what it was given in `writes`; its
    /// replay answers `replayed <id>`.
    async fn run_with(
        store: &MockStorage,
        key: Option<&str>,
        quota: Option<QuotaDraw<'_>>,
        answers: Vec<Result<Written<String>, CoreError>>,
        writes: &Mutex<Vec<Option<IdempotencyWrite>>>,
    ) -> Result<Paid<String>, CoreError> {
        let key = key.map(|k| IdempotencyKey::parse(k).unwrap());
        let answers = Mutex::new(answers.into_iter());
        let scope = scope();
        let request = PaidRequest {
            scope: &scope,
            operation: Operation::Provision,
            key: key.as_ref(),
            request_hash: "h".into(),
            quota,
            now: Utc::now(),
            hold: None,
        };
        run(
            store,
            request,
            |idempotency| {
                writes.lock().unwrap().push(idempotency);
                let answer = answers.lock().unwrap().next().expect("no further write");
                async move { answer }
            },
            |resource| async move { Ok(format!("replayed {}", resource.id)) },
        )
        .await
    }

    /// A store that finds the key stored when asked apart, answering `claim`.
    pub(crate) fn stored(claim: IdempotencyClaim) -> MockStorage {
        let mut store = MockStorage::new();
        store
            .expect_claim_idempotency_key()
            .times(1)
            .returning(move |_, _| Ok(claim.clone()));
        store
    }

    #[tokio::test]
    async fn without_a_key_the_write_runs_once_with_nothing_to_claim() {
        let writes = Mutex::default();
        let done = run_with(
            &MockStorage::new(),
            None,
            None,
            vec![Ok(Written::Done("ord_1".into()))],
            &writes,
        )
        .await
        .unwrap();
        assert_eq!((done.value.as_str(), done.replayed), ("ord_1", false));
        assert_eq!(*writes.lock().unwrap(), [None]);
    }

    #[tokio::test]
    async fn a_new_key_is_claimed_in_the_write_itself() {
        let writes = Mutex::default();
        // No claim apart: the mock refuses any call it was not told to expect.
        let done = run_with(
            &MockStorage::new(),
            Some("k"),
            None,
            vec![Ok(Written::Done("ord_1".into()))],
            &writes,
        )
        .await
        .unwrap();
        assert!(!done.replayed);
        let writes = writes.lock().unwrap();
        let [Some(IdempotencyWrite::ClaimNew(claim))] = writes.as_slice() else {
            panic!("{writes:?}");
        };
        assert_eq!(
            (claim.key.as_str(), claim.operation),
            ("k", Operation::Provision)
        );
        assert_eq!(claim.lease_until - claim.now, Duration::seconds(10));
        assert_eq!(claim.expires_at - claim.now, Duration::hours(24));
    }

    #[tokio::test]
    async fn a_completed_key_replays_what_it_names_without_a_second_write() {
        let store = stored(IdempotencyClaim::Completed {
            resource: ResourceRef::order("ord_1"),
        });
        let writes = Mutex::default();
        let done = run_with(
            &store,
            Some("k"),
            None,
            vec![Ok(Written::KeyTaken)],
            &writes,
        )
        .await
        .unwrap();
        assert_eq!(done.value, "replayed ord_1");
        assert!(done.replayed && done.quota.is_none());
        assert_eq!(writes.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn keys_in_progress_or_reused_are_refused_without_a_second_write() {
        for (claim, expected) in [
            (IdempotencyClaim::InProgress, "still being processed"),
            (IdempotencyClaim::Mismatch, "different request body"),
        ] {
            let writes = Mutex::default();
            let err = run_with(
                &stored(claim),
                Some("k"),
                None,
                vec![Ok(Written::KeyTaken)],
                &writes,
            )
            .await
            .unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
            assert_eq!(writes.lock().unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn a_key_claimed_apart_is_completed_by_the_write_or_released_when_it_fails() {
        let writes = Mutex::default();
        let done = run_with(
            &stored(IdempotencyClaim::Claimed),
            Some("k"),
            None,
            vec![Ok(Written::KeyTaken), Ok(Written::Done("ord_2".into()))],
            &writes,
        )
        .await
        .unwrap();
        assert_eq!(done.value, "ord_2");
        assert!(matches!(
            &writes.lock().unwrap()[1],
            Some(IdempotencyWrite::Complete(claim)) if claim.key == "k" && claim.token.len() == 24
        ));

        for failure in [
            Err(CoreError::PlanNotFound("x".into())),
            Ok(Written::ClaimLost),
        ] {
            let mut store = stored(IdempotencyClaim::Claimed);
            store
                .expect_release_idempotency_key()
                .withf(|_, claim| claim.key == "k")
                .times(1)
                .returning(|_, _| Ok(()));
            let answers = vec![Ok(Written::KeyTaken), failure];
            assert!(
                run_with(&store, Some("k"), None, answers, &Mutex::default())
                    .await
                    .is_err()
            );
        }
    }

    #[tokio::test]
    async fn a_held_request_claims_its_key_for_the_hold_before_it_writes() {
        let mut store = MockStorage::new();
        store
            .expect_claim_idempotency_key()
            .withf(|_, claim| claim.lease_until - claim.now == Duration::seconds(90))
            .times(1)
            .returning(|_, _| Ok(IdempotencyClaim::Claimed));
        let key = IdempotencyKey::parse("k").unwrap();
        let scope = scope();
        let writes = Mutex::new(Vec::new());
        let request = PaidRequest {
            scope: &scope,
            operation: Operation::Provision,
            key: Some(&key),
            request_hash: "h".into(),
            quota: None,
            now: Utc::now(),
            hold: Some(Duration::seconds(90)),
        };
        let done = run(
            &store,
            request,
            |idempotency| {
                writes.lock().unwrap().push(idempotency);
                async { Ok(Written::Done("ord_1".to_owned())) }
            },
            |_| async { unreachable!("nothing to replay") },
        )
        .await
        .unwrap();
        assert_eq!(done.value, "ord_1");
        // One write, completing the claim made apart: never a claim inside the write.
        let writes = writes.lock().unwrap();
        assert!(
            matches!(writes.as_slice(), [Some(IdempotencyWrite::Complete(_))]),
            "{writes:?}"
        );
    }

    #[tokio::test]
    async fn a_claim_lost_in_the_write_itself_is_in_progress() {
        let err = run_with(
            &MockStorage::new(),
            Some("k"),
            None,
            vec![Ok(Written::ClaimLost)],
            &Mutex::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CoreError::IdempotencyInProgress), "{err:?}");
    }

    #[tokio::test]
    async fn a_replay_draws_no_quota_and_a_spent_quota_writes_nothing() {
        // Spent: nothing is written, and the key claimed to look for a replay is freed.
        let mut store = stored(IdempotencyClaim::Claimed);
        store
            .expect_release_idempotency_key()
            .times(1)
            .returning(|_, _| Ok(()));
        let mut quotas = MockQuotas::new();
        quotas
            .expect_consume()
            .returning(|_, limit, now| Ok(quota_use(None, limit, now)));
        quotas.expect_refund().never();
        let quota = QuotaDraw {
            quotas: &quotas,
            key: quota_key(),
            limit: 100,
        };
        let writes = Mutex::default();
        let err = run_with(&store, Some("k"), Some(quota), vec![], &writes)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::QuotaExceeded {
                    kind: QuotaKind::Provision,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(writes.lock().unwrap().is_empty());

        // A replay: the unit drawn for the attempt that found the key stored is given back.
        let store = stored(IdempotencyClaim::Completed {
            resource: ResourceRef::order("ord_1"),
        });
        let mut quotas = MockQuotas::new();
        quotas
            .expect_consume()
            .times(1)
            .returning(|_, limit, now| Ok(quota_use(Some(1), limit, now)));
        quotas
            .expect_refund()
            .withf(|k, _| *k == quota_key())
            .times(1)
            .returning(|_, _| Ok(()));
        let quota = QuotaDraw {
            quotas: &quotas,
            key: quota_key(),
            limit: 100,
        };
        let done = run_with(
            &store,
            Some("k"),
            Some(quota),
            vec![Ok(Written::KeyTaken)],
            &writes,
        )
        .await
        .unwrap();
        assert!(done.replayed && done.quota.is_none());
    }
}
