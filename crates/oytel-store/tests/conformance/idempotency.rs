//! Idempotency keys: claims, take-overs, completion in the paid write, scope and expiry.

use std::sync::Arc;

use chrono::{Duration, Utc};
use oytel_core::clock::now;
use oytel_core::idempotency::{Operation, ResourceRef};
use oytel_core::ports::*;
use oytel_core::Environment;

use crate::support::*;

conformance!(
    idempotency_claims,
    a_new_key_is_claimed_and_completed_in_the_provisioning_transaction,
    idempotency_takeover_and_lost_claims,
    idempotency_keys_are_scoped_and_purged,
);

fn claim_request(
    key: &str,
    token: &str,
    hash: &str,
    at: chrono::DateTime<Utc>,
) -> IdempotencyRequest {
    IdempotencyRequest {
        key: key.into(),
        operation: Operation::Provision,
        token: token.into(),
        request_hash: hash.into(),
        now: at,
        lease_until: at + Duration::seconds(60),
        expires_at: at + Duration::hours(24),
    }
}

/// Runs `n` provisionings made by `make` at once; asserts that exactly one commits and the
/// others find their key taken and write nothing. Returns the one committed.
async fn race(
    store: &Arc<dyn Storage>,
    n: usize,
    make: impl Fn() -> ProvisionWrite,
) -> ProvisionWrite {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (store, w) = (store.clone(), make());
            tokio::spawn(async move { (store.provision(&w).await.unwrap(), w) })
        })
        .collect();
    let mut committed = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (ProvisionResult::Committed { .. }, w) => committed.push(w),
            (ProvisionResult::KeyTaken, w) => {
                let s = scope(&w.order.partner_id, w.order.environment);
                assert!(store.get_order(&s, &w.order.id).await.unwrap().is_none());
                assert!(store.get_esim(&s, &w.esim.id).await.unwrap().is_none());
            }
            (other, _) => panic!("{other:?}"),
        }
    }
    assert_eq!(committed.len(), 1, "exactly one commits");
    committed.remove(0)
}

async fn idempotency_claims(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let t0 = now();
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("k", "t1", "h", t0))
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("k", "t2", "h", t0))
            .await
            .unwrap(),
        IdempotencyClaim::InProgress
    );
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("k", "t2", "other", t0))
            .await
            .unwrap(),
        IdempotencyClaim::Mismatch
    );
    // Releasing with the wrong token does nothing.
    store
        .release_idempotency_key(
            &s,
            &ClaimRef {
                key: "k".into(),
                token: "t2".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("k", "t2", "h", t0))
            .await
            .unwrap(),
        IdempotencyClaim::InProgress
    );
    // The holder completes it by provisioning.
    let w = write(
        &s,
        100,
        SANDBOX,
        Some(IdempotencyWrite::Complete(ClaimRef {
            key: "k".into(),
            token: "t1".into(),
        })),
    );
    assert!(matches!(
        store.provision(&w).await.unwrap(),
        ProvisionResult::Committed { .. }
    ));
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("k", "t3", "h", t0))
            .await
            .unwrap(),
        IdempotencyClaim::Completed {
            resource: ResourceRef::order(&w.order.id)
        }
    );
    // A completed key cannot be released.
    store
        .release_idempotency_key(
            &s,
            &ClaimRef {
                key: "k".into(),
                token: "t1".into(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .claim_idempotency_key(&s, &claim_request("k", "t3", "h", t0))
            .await
            .unwrap(),
        IdempotencyClaim::Completed { .. }
    ));
    // A released claim frees the key.
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("j", "t1", "h", t0))
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    store
        .release_idempotency_key(
            &s,
            &ClaimRef {
                key: "j".into(),
                token: "t1".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("j", "t2", "other", t0))
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    // After expiry, a completed key starts afresh.
    let later = t0 + Duration::hours(25);
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("k", "t4", "new", later))
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
}

async fn a_new_key_is_claimed_and_completed_in_the_provisioning_transaction(
    store: Arc<dyn Storage>,
) {
    let a = partner(store.as_ref()).await;
    store.credit(&a, 5_000, "top-up", now()).await.unwrap();
    let live = scope(&a, Environment::Production);
    let t0 = now();
    let claim_new = |key: &str| Some(IdempotencyWrite::ClaimNew(claim_request(key, "t", "h", t0)));
    // Refused for the balance: the key is not kept either.
    let short = write(&live, 2_501, LIVE, claim_new("k-short"));
    assert!(matches!(
        store.provision(&short).await.unwrap(),
        ProvisionResult::InsufficientBalance { .. }
    ));
    assert_eq!(
        store
            .claim_idempotency_key(&live, &claim_request("k-short", "t2", "h", t0))
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    // Twenty requests with one new key at once: one commits, the others find it taken and
    // write nothing.
    let committed = race(&store, 20, || write(&live, 100, LIVE, claim_new("k-once"))).await;
    assert_eq!(store.live_balance(&a).await.unwrap(), 4_900, "charged once");
    // The key is stored completed with that order.
    assert_eq!(
        store
            .claim_idempotency_key(&live, &claim_request("k-once", "t3", "h", t0))
            .await
            .unwrap(),
        IdempotencyClaim::Completed {
            resource: ResourceRef::order(&committed.order.id)
        }
    );
    // When the first request spends all the balance there is to spend, the others still find the key taken
    // (to be answered with its replay), not the balance short.
    // (The minimum balance is 2,500.)
    race(&store, 8, || write(&live, 2_400, LIVE, claim_new("k-all"))).await;
    assert_eq!(store.live_balance(&a).await.unwrap(), 2_500);
    // Sandbox orders, which take no balance lock, likewise.
    let sandbox = scope(&a, Environment::Sandbox);
    race(&store, 8, || {
        write(&sandbox, 100, SANDBOX, claim_new("k-sandbox"))
    })
    .await;
}

async fn idempotency_takeover_and_lost_claims(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let t0 = now();
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("k", "crashed", "h", t0))
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    // The holder crashed; after its lease another request takes over.
    let after_lease = t0 + Duration::seconds(61);
    assert_eq!(
        store
            .claim_idempotency_key(&s, &claim_request("k", "new", "h", after_lease))
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    // The crashed holder, coming back, cannot complete: nothing is written.
    let stale = write(
        &s,
        100,
        SANDBOX,
        Some(IdempotencyWrite::Complete(ClaimRef {
            key: "k".into(),
            token: "crashed".into(),
        })),
    );
    assert_eq!(
        store.provision(&stale).await.unwrap(),
        ProvisionResult::ClaimLost
    );
    assert!(store.get_esim(&s, &stale.esim.id).await.unwrap().is_none());
    assert!(store
        .get_order(&s, &stale.order.id)
        .await
        .unwrap()
        .is_none());
    let fresh_write = write(
        &s,
        100,
        SANDBOX,
        Some(IdempotencyWrite::Complete(ClaimRef {
            key: "k".into(),
            token: "new".into(),
        })),
    );
    assert!(matches!(
        store.provision(&fresh_write).await.unwrap(),
        ProvisionResult::Committed { .. }
    ));
}

async fn idempotency_keys_are_scoped_and_purged(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let b = partner(store.as_ref()).await;
    let t0 = now();
    for s in [
        scope(&a, Environment::Sandbox),
        scope(&a, Environment::Production),
        scope(&b, Environment::Sandbox),
    ] {
        assert_eq!(
            store
                .claim_idempotency_key(&s, &claim_request("same", "t", "h", t0))
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
    }
    assert_eq!(store.purge_idempotency_keys(t0).await.unwrap(), 0);
    assert_eq!(
        store
            .purge_idempotency_keys(t0 + Duration::hours(24))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .claim_idempotency_key(
                &scope(&a, Environment::Sandbox),
                &claim_request("same", "t", "other", t0)
            )
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
}
