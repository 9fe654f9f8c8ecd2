//! Credits, charges and the ledger that adds up to the balance.

use std::sync::Arc;

use chrono::Duration;
use oytel_core::clock::now;
use oytel_core::ports::*;
use oytel_core::{Environment, Scope};

use crate::support::*;

conformance!(
    credits_and_the_ledger,
    the_statement_pages_newest_first_within_dates,
    cancellations_refund_unused_live_orders_once,
    a_fall_below_the_low_balance_threshold_is_announced_once_per_fall,
    a_cancelled_credit_commits_whole_or_not_at_all_and_leaves_no_transaction_open,
);

/// A credit whose future is dropped at any await point (begin, the balance, the ledger row,
/// the commit) either stands whole or wrote nothing, and the writer connection goes back to
/// the pool outside any transaction: the next write neither fails nor waits for a lock
/// nobody releases (issue #24).
async fn a_cancelled_credit_commits_whole_or_not_at_all_and_leaves_no_transaction_open(
    store: Arc<dyn Storage>,
) {
    let a = partner(store.as_ref()).await;
    let (mut whole, mut nothing) = (0, 0);
    for polls in 1..=40 {
        for i in 0..3 {
            let description = format!("credit {polls}.{i}");
            let finished = dropped_after(store.credit(&a, 100, &description, now()), polls)
                .await
                .is_some();
            let after = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                store.credit(&a, 1, "after", now()),
            )
            .await
            .unwrap_or_else(|_| panic!("a write after a drop at poll {polls} hung"));
            assert!(
                after.is_ok(),
                "a write after a drop at poll {polls}: {after:?}"
            );
            let stood = store
                .ledger(&a)
                .await
                .unwrap()
                .iter()
                .any(|e| e.description == description);
            if stood {
                whole += 1;
            } else {
                nothing += 1;
            }
            assert!(!finished || stood, "a finished credit was lost");
        }
    }
    // A credit half-done would show here: the balance is the sum of the ledger's lines.
    ledger_adds_up(store.as_ref(), &a).await;
    eprintln!("dropped credits: {whole} stood whole, {nothing} wrote nothing, none half-done");
    assert!(
        whole > 0 && nothing > 0,
        "the drops spanned before and after the commit"
    );
}

async fn credits_and_the_ledger(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    assert_eq!(store.live_balance(&a).await.unwrap(), 0);
    assert_eq!(
        store.credit(&a, 20_000, "top-up", now()).await.unwrap(),
        20_000
    );
    assert_eq!(store.credit(&a, 55, "adjust", now()).await.unwrap(), 20_055);
    let ledger = store.ledger(&a).await.unwrap();
    assert_eq!(
        ledger
            .iter()
            .map(|e| (e.kind.as_str(), e.amount_cents, e.balance_after_cents))
            .collect::<Vec<_>>(),
        vec![("credit", 20_000, 20_000), ("credit", 55, 20_055)]
    );
    assert_eq!(ledger[1].description, "adjust");
    assert!(matches!(
        store.credit("ptn_none", 1, "x", now()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.live_balance("ptn_none").await,
        Err(StoreError::NotFound(_))
    ));
}

/// The statement: a partner's own ledger rows, newest first, in pages, between dates, each
/// charge with the eSIM its order paid for.
async fn the_statement_pages_newest_first_within_dates(store: Arc<dyn Storage>) {
    let (a, b) = (partner(store.as_ref()).await, partner(store.as_ref()).await);
    let at = now();
    let (t0, t1) = (at - Duration::hours(3), at - Duration::hours(2));
    store.credit(&a, 10_000, "first", t0).await.unwrap();
    store.credit(&a, 5_000, "second", t1).await.unwrap();
    store
        .credit(&b, 7_000, "another partner's", t1)
        .await
        .unwrap();
    let w = write(&scope(&a, Environment::Production), 600, LIVE, None);
    store.provision(&w).await.unwrap();

    let all = LedgerFilter::default();
    let page = |before| PageRequest { limit: 2, before };
    let first = store.list_ledger(&a, &all, page(None)).await.unwrap();
    let texts: Vec<&str> = first.iter().map(|r| r.row.description.as_str()).collect();
    assert_eq!(texts[1], "second");
    let charge = &first[0].row;
    assert_eq!(
        (charge.amount_cents, charge.balance_after_cents),
        (-600, 14_400)
    );
    assert_eq!(charge.order_id.as_deref(), Some(w.order.id.as_str()));
    assert_eq!(charge.esim_id.as_deref(), Some(w.esim.id.as_str()));
    assert_eq!(first[1].row.esim_id, None);
    let rest = store
        .list_ledger(&a, &all, page(Some(first[1].seq)))
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].row.description, "first");

    let between = |from: Option<_>, to: Option<_>| {
        let store = store.clone();
        let a = a.clone();
        async move {
            let filter = LedgerFilter { from, to };
            let rows = store.list_ledger(&a, &filter, page(None)).await.unwrap();
            rows.into_iter()
                .map(|r| r.row.amount_cents)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        between(Some(t1), None).await,
        [-600, 5_000],
        "from is inclusive"
    );
    assert_eq!(between(None, Some(t1)).await, [10_000], "to is exclusive");
    assert_eq!(
        between(Some(t1), Some(at - Duration::minutes(1))).await,
        [5_000]
    );
    assert!(store
        .list_ledger("ptn_none", &all, page(None))
        .await
        .unwrap()
        .is_empty());
}

/// Cancelling: an unused live eSIM's order comes back to the balance once, with its ledger
/// row; an activated one gives nothing back; a sandbox one moves no balance; a second
/// cancellation answers the first; an expired eSIM cannot be cancelled.
async fn cancellations_refund_unused_live_orders_once(store: Arc<dyn Storage>) {
    use oytel_core::billing::RefundReason;
    use oytel_core::idempotency::{Operation, ResourceKind};
    use oytel_core::EsimStatus;
    let a = partner(store.as_ref()).await;
    store.credit(&a, 10_000, "opening", now()).await.unwrap();
    let live = scope(&a, Environment::Production);
    let cancel = |scope: &Scope, esim_id: &str, idempotency| CancelWrite {
        scope: scope.clone(),
        esim_id: esim_id.to_owned(),
        reason: Some("customer changed plans".into()),
        idempotency,
        now: now(),
    };
    let done = |r: CancelResult| match r {
        CancelResult::Done(c) => *c,
        other => panic!("{other:?}"),
    };

    let unused = write(&live, 600, LIVE, None);
    store.provision(&unused).await.unwrap();
    assert_eq!(store.live_balance(&a).await.unwrap(), 9_400);
    let claim = IdempotencyRequest {
        key: "cancel-1".into(),
        operation: Operation::Cancel,
        token: "t".into(),
        request_hash: "h".into(),
        now: now(),
        lease_until: now() + Duration::seconds(10),
        expires_at: now() + Duration::hours(24),
    };
    let first = done(
        store
            .cancel_esim(&cancel(
                &live,
                &unused.esim.id,
                Some(IdempotencyWrite::ClaimNew(claim.clone())),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(first.esim.status, EsimStatus::Cancelled);
    assert_eq!(refund(&first), (600, Some(RefundReason::Unused), 1));
    assert_eq!(first.packages[0].state, oytel_types::PackageState::Refunded);
    assert_eq!(first.reason.as_deref(), Some("customer changed plans"));
    assert_eq!(ledger_adds_up(store.as_ref(), &a).await, 10_000);
    // Again, by key and without: the first cancellation, and no second refund.
    assert_eq!(
        store.claim_idempotency_key(&live, &claim).await.unwrap(),
        IdempotencyClaim::Completed {
            resource: oytel_core::idempotency::ResourceRef {
                kind: ResourceKind::Cancellation,
                id: unused.esim.id.clone()
            }
        }
    );
    let again = done(
        store
            .cancel_esim(&cancel(&live, &unused.esim.id, None))
            .await
            .unwrap(),
    );
    assert_eq!(again, first);
    assert_eq!(
        store
            .get_cancellation(&live, &unused.esim.id)
            .await
            .unwrap()
            .unwrap(),
        first
    );
    assert_eq!(ledger_adds_up(store.as_ref(), &a).await, 10_000);
    let refunds = store.ledger(&a).await.unwrap();
    assert_eq!(
        refunds
            .iter()
            .filter(|e| e.kind.as_str() == "refund")
            .count(),
        1
    );

    // Activated: nothing back.
    let used = write(&live, 600, LIVE, None);
    store.provision(&used).await.unwrap();
    store
        .transition_esim(&used.esim.id, EsimStatus::Active, now())
        .await
        .unwrap();
    let kept = done(
        store
            .cancel_esim(&cancel(&live, &used.esim.id, None))
            .await
            .unwrap(),
    );
    assert_eq!(refund(&kept), (0, Some(RefundReason::Activated), 0));
    assert_eq!(kept.packages[0].state, oytel_types::PackageState::Cancelled);
    assert_eq!(ledger_adds_up(store.as_ref(), &a).await, 9_400);

    // Sandbox: the refund it would be, and no balance moved.
    let sandbox = scope(&a, Environment::Sandbox);
    let trial = write(&sandbox, 600, SANDBOX, None);
    store.provision(&trial).await.unwrap();
    let trial = done(
        store
            .cancel_esim(&cancel(&sandbox, &trial.esim.id, None))
            .await
            .unwrap(),
    );
    assert_eq!(refund(&trial), (600, Some(RefundReason::Unused), 0));
    assert_eq!(ledger_adds_up(store.as_ref(), &a).await, 9_400);

    // Not in scope, or no longer cancellable.
    let other = write(&live, 600, LIVE, None);
    store.provision(&other).await.unwrap();
    assert_eq!(
        store
            .cancel_esim(&cancel(&sandbox, &other.esim.id, None))
            .await
            .unwrap(),
        CancelResult::NotFound
    );
    // Past its end before the expiry worker came by: as good as expired.
    let late = CancelWrite {
        now: other.esim.expires_at + Duration::seconds(1),
        ..cancel(&live, &other.esim.id, None)
    };
    assert!(matches!(
        store.cancel_esim(&late).await.unwrap(),
        CancelResult::Invalid(_)
    ));
    store
        .transition_esim(&other.esim.id, EsimStatus::Expired, now())
        .await
        .unwrap();
    assert!(matches!(
        store
            .cancel_esim(&cancel(&live, &other.esim.id, None))
            .await
            .unwrap(),
        CancelResult::Invalid(_)
    ));
}

/// `account.balance_low`: written by the charge that takes the live balance from at or above
/// the partner's threshold to below it, once per fall, to the endpoints that list it.
async fn a_fall_below_the_low_balance_threshold_is_announced_once_per_fall(
    store: Arc<dyn Storage>,
) {
    use oytel_types::EventType;
    let a = partner(store.as_ref()).await;
    let live = scope(&a, Environment::Production);
    store.credit(&a, 10_000, "opening", now()).await.unwrap();
    assert_eq!(store.low_balance_threshold(&a).await.unwrap(), None);
    store
        .set_low_balance_threshold(&a, Some(9_000))
        .await
        .unwrap();
    assert_eq!(store.low_balance_threshold(&a).await.unwrap(), Some(9_000));
    let listing = endpoint(
        &live,
        "https://hooks.example/low",
        vec![EventType::AccountBalanceLow],
    );
    store.create_endpoint(&listing).await.unwrap();
    store
        .create_endpoint(&endpoint(&live, "https://hooks.example/all", vec![]))
        .await
        .unwrap();
    let charge = || async {
        let w = write(&live, 600, LIVE, None);
        store.provision(&w).await.unwrap();
    };
    // 9,400 (above), 8,800 (fell), 8,200 (still below).
    for _ in 0..3 {
        charge().await;
    }
    store.credit(&a, 1_400, "top-up", now()).await.unwrap();
    // 9,600 → 9,000 (at the threshold is not below) → 8,400 (fell again).
    charge().await;
    charge().await;
    let announced: Vec<(String, i64, i64)> = drain_due(store.as_ref())
        .await
        .into_iter()
        .filter_map(|d| {
            let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
            (payload["event"] == "account.balance_low").then(|| {
                (
                    d.url.clone(),
                    payload["data"]["balance_cents"].as_i64().unwrap(),
                    payload["data"]["threshold_cents"].as_i64().unwrap(),
                )
            })
        })
        .collect();
    let low = |balance| ("https://hooks.example/low".to_owned(), balance, 9_000);
    assert_eq!(announced, [low(8_800), low(8_400)]);
    store.set_low_balance_threshold(&a, None).await.unwrap();
    assert_eq!(store.low_balance_threshold(&a).await.unwrap(), None);
    assert!(matches!(
        store.set_low_balance_threshold("ptn_none", Some(1)).await,
        Err(StoreError::NotFound(_))
    ));
}

/// What a one-package cancellation gave back: cents, why, and how many ledger lines.
fn refund(
    c: &oytel_core::ports::Cancellation,
) -> (i64, Option<oytel_core::billing::RefundReason>, usize) {
    let [package] = c.packages.as_slice() else {
        panic!("one package: {:?}", c.packages);
    };
    (
        package.refunded_cents,
        package.refund_reason,
        c.refund_entries.len(),
    )
}
