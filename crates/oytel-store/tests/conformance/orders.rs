//! Provisioning: the order, the eSIM and the charge commit together or not at all.

use std::collections::HashSet;
use std::sync::Arc;

use oytel_core::clock::now;
use oytel_core::ports::*;
use oytel_core::Environment;

use crate::support::*;

conformance!(
    a_live_provision_commits_order_esim_and_charge_together,
    insufficient_balance_writes_nothing,
    a_duplicate_number_rolls_back_the_whole_provision,
    concurrent_provisions_are_exact,
    in_a_crowd_each_provisioning_stands_or_falls_alone,
    cancelled_writes_commit_whole_or_not_at_all_and_leave_no_transaction_open,
);

async fn a_live_provision_commits_order_esim_and_charge_together(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    store.credit(&a, 10_000, "top-up", now()).await.unwrap();
    let live = scope(&a, Environment::Production);
    let w = write(&live, 3_000, LIVE, None);
    let result = store.provision(&w).await.unwrap();
    assert_eq!(
        result,
        ProvisionResult::Committed {
            balance_after_cents: 7_000
        }
    );
    let order = store.get_order(&live, &w.order.id).await.unwrap().unwrap();
    assert_eq!(order.balance_after_cents, 7_000);
    assert_eq!(order.amount_cents, 3_000);
    assert_eq!(order.created_at, w.order.created_at);
    let esim = store.get_esim(&live, &w.esim.id).await.unwrap().unwrap();
    assert_eq!(esim, w.esim, "an eSIM reads back exactly as written");
    assert_eq!(
        store
            .get_esim_by_qr_token(&w.esim.qr_token)
            .await
            .unwrap()
            .unwrap()
            .id,
        w.esim.id
    );
    assert!(store.get_esim_by_qr_token("nope").await.unwrap().is_none());
    let ledger = store.ledger(&a).await.unwrap();
    let charge = ledger.last().unwrap();
    assert_eq!(
        (
            charge.kind.as_str(),
            charge.amount_cents,
            charge.balance_after_cents
        ),
        ("charge", -3_000, 7_000)
    );
    assert_eq!(charge.order_id.as_deref(), Some(w.order.id.as_str()));
    assert_eq!(store.live_balance(&a).await.unwrap(), 7_000);

    // Sandbox: nothing is debited, no ledger row.
    let sandbox = scope(&a, Environment::Sandbox);
    let s = write(&sandbox, 3_000, SANDBOX, None);
    assert_eq!(
        store.provision(&s).await.unwrap(),
        ProvisionResult::Committed {
            balance_after_cents: 10_000
        }
    );
    assert_eq!(store.live_balance(&a).await.unwrap(), 7_000);
    assert_eq!(store.ledger(&a).await.unwrap().len(), ledger.len());
}

async fn insufficient_balance_writes_nothing(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    store.credit(&a, 5_000, "top-up", now()).await.unwrap();
    let live = scope(&a, Environment::Production);
    // 5000 - 2501 = 2499 < 2500.
    let w = write(&live, 2_501, LIVE, None);
    assert_eq!(
        store.provision(&w).await.unwrap(),
        ProvisionResult::InsufficientBalance {
            balance_cents: 5_000
        }
    );
    assert!(store.get_order(&live, &w.order.id).await.unwrap().is_none());
    assert!(store.get_esim(&live, &w.esim.id).await.unwrap().is_none());
    assert_eq!(store.live_balance(&a).await.unwrap(), 5_000);
    // Exactly the minimum left is allowed.
    let w = write(&live, 2_500, LIVE, None);
    assert_eq!(
        store.provision(&w).await.unwrap(),
        ProvisionResult::Committed {
            balance_after_cents: 2_500
        }
    );
}

async fn a_duplicate_number_rolls_back_the_whole_provision(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    store.credit(&a, 100_000, "top-up", now()).await.unwrap();
    let live = scope(&a, Environment::Production);
    let first = write(&live, 1_000, LIVE, None);
    store.provision(&first).await.unwrap();
    for (field, mutate) in [
        (
            UniqueField::Iccid,
            (|w: &mut ProvisionWrite, f: &ProvisionWrite| w.esim.iccid = f.esim.iccid.clone())
                as fn(&mut ProvisionWrite, &ProvisionWrite),
        ),
        (UniqueField::Msisdn, |w, f| {
            w.esim.msisdn = f.esim.msisdn.clone()
        }),
        (UniqueField::MatchingId, |w, f| {
            w.esim.matching_id = f.esim.matching_id.clone()
        }),
        (UniqueField::QrToken, |w, f| {
            w.esim.qr_token = f.esim.qr_token.clone()
        }),
    ] {
        let mut second = write(&live, 1_000, LIVE, None);
        mutate(&mut second, &first);
        let err = store.provision(&second).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Duplicate(f) if f == field),
            "{field:?}: {err:?}"
        );
        assert!(
            store
                .get_order(&live, &second.order.id)
                .await
                .unwrap()
                .is_none(),
            "order rolled back"
        );
    }
    assert_eq!(
        store.live_balance(&a).await.unwrap(),
        99_000,
        "debited once"
    );
    assert_eq!(
        store
            .ledger(&a)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind.as_str() == "charge")
            .count(),
        1
    );
}

async fn concurrent_provisions_are_exact(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    // 60 orders of 10.00 against 500.00 with a 25.00 minimum: exactly 47 fit.
    store.credit(&a, 50_000, "top-up", now()).await.unwrap();
    let live = scope(&a, Environment::Production);
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let store = store.clone();
            let w = write(&live, 1_000, LIVE, None);
            tokio::spawn(async move { (store.provision(&w).await.unwrap(), w) })
        })
        .collect();
    let mut committed = 0;
    let mut iccids = HashSet::new();
    for task in tasks {
        let (result, w) = task.await.unwrap();
        if let ProvisionResult::Committed { .. } = result {
            committed += 1;
            assert!(iccids.insert(w.esim.iccid));
        }
    }
    assert_eq!(committed, 47);
    let balance = ledger_adds_up(store.as_ref(), &a).await;
    assert_eq!(balance, 50_000 - 47 * 1_000);
}

/// Provisionings sent together (on SQLite, one transaction of the group commit): those that
/// collide with a stored number fail and leave nothing (a live one's charge undone with
/// them), those without balance write nothing, and every other one is committed whole,
/// whatever its neighbours did.
async fn in_a_crowd_each_provisioning_stands_or_falls_alone(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    // 10.00 each against 165.00 (after the first) with a 25.00 minimum: 14 of the 20 live
    // ones that do not collide fit. 20 live and 20 sandbox ones reuse a stored ICCID.
    store.credit(&a, 17_500, "top-up", now()).await.unwrap();
    let (live, sandbox) = (
        scope(&a, Environment::Production),
        scope(&a, Environment::Sandbox),
    );
    let taken = write(&live, 1_000, LIVE, None);
    store.provision(&taken).await.unwrap();
    let tasks: Vec<_> = (0..60)
        .map(|n| {
            let store = store.clone();
            let mut w = match n % 3 {
                0 => write(&sandbox, 1_000, SANDBOX, None),
                _ => write(&live, 1_000, LIVE, None),
            };
            let collides = n % 3 != 2;
            if collides {
                w.esim.iccid = taken.esim.iccid.clone();
            }
            tokio::spawn(async move { (store.provision(&w).await, w, collides) })
        })
        .collect();
    let (mut committed, mut collided, mut refused) = (0, 0, 0);
    for task in tasks {
        let (result, w, collides) = task.await.unwrap();
        let at = scope(&a, w.order.environment);
        let order = store.get_order(&at, &w.order.id).await.unwrap();
        let esim = store.get_esim(&at, &w.esim.id).await.unwrap();
        match result {
            Ok(ProvisionResult::Committed { .. }) => {
                assert!(!collides, "a colliding one was committed");
                assert!(
                    order.is_some() && esim.is_some(),
                    "a committed one is whole"
                );
                committed += 1;
            }
            Err(StoreError::Duplicate(UniqueField::Iccid)) => {
                assert!(
                    order.is_none() && esim.is_none(),
                    "a collision leaves nothing"
                );
                collided += 1;
            }
            // A live collision met once the balance is spent is refused before it collides.
            Ok(ProvisionResult::InsufficientBalance { .. }) => {
                assert!(
                    order.is_none() && esim.is_none(),
                    "a refusal leaves nothing"
                );
                refused += 1;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(committed, 14);
    assert!(collided >= 20, "every sandbox collision is one: {collided}");
    assert_eq!(collided + refused, 46);
    let balance = ledger_adds_up(store.as_ref(), &a).await;
    assert_eq!(
        balance,
        17_500 - 15 * 1_000,
        "one charge per committed order; a collision's charge undone"
    );
}

/// A provisioning whose future is dropped at any await point, from the first to after the
/// commit, either committed whole or wrote nothing, and the connection it used goes back to
/// the pool outside any transaction: the next writes neither fail nor wait for a lock nobody
/// releases. (On SQLite a provisioning, once queued for the group commit, is finished by the
/// writer's own task, so it always commits whole; `billing.rs` drops a credit, which holds
/// the pool's connection itself.)
async fn cancelled_writes_commit_whole_or_not_at_all_and_leave_no_transaction_open(
    store: Arc<dyn Storage>,
) {
    let a = partner(store.as_ref()).await;
    store.credit(&a, 1_000_000, "top-up", now()).await.unwrap();
    let live = scope(&a, Environment::Production);
    let (mut whole, mut nothing) = (0, 0);
    for polls in 1..=40 {
        for _ in 0..3 {
            let w = write(&live, 100, LIVE, None);
            let finished = dropped_after(store.provision(&w), polls).await.is_some();
            // The next write on the same pool, bounded: a leaked transaction shows as an
            // error ("non-zero transaction depth") or as a wait for the write lock.
            let next = write(&live, 100, LIVE, None);
            let after =
                tokio::time::timeout(std::time::Duration::from_secs(10), store.provision(&next))
                    .await
                    .unwrap_or_else(|_| panic!("a write after a drop at poll {polls} hung"));
            assert!(
                matches!(after, Ok(ProvisionResult::Committed { .. })),
                "a write after a drop at poll {polls}: {after:?}"
            );
            let order = store.get_order(&live, &w.order.id).await.unwrap();
            let esim = store.get_esim(&live, &w.esim.id).await.unwrap();
            let charged = store
                .ledger(&a)
                .await
                .unwrap()
                .iter()
                .any(|e| e.order_id.as_deref() == Some(w.order.id.as_str()));
            match (order.is_some(), esim.is_some(), charged) {
                (true, true, true) => whole += 1,
                (false, false, false) => nothing += 1,
                parts => panic!("a write dropped at poll {polls} is half-done: {parts:?}"),
            }
            assert!(!finished || order.is_some(), "a finished write was lost");
        }
    }
    ledger_adds_up(store.as_ref(), &a).await;
    eprintln!("dropped writes: {whole} committed whole, {nothing} wrote nothing, none half-done");
    assert!(whole > 0, "some dropped writes had committed");
}

/// SQLite's group commit: a write whose error ends the whole transaction (a trigger that
/// raises `ROLLBACK` here; a full disk or an I/O error in production) fails every write of its
/// batch, none of them is reported stored, and the writer goes on with the next batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_that_ends_the_transaction_fails_its_batch_and_nothing_is_claimed_stored() {
    let db = oytel_store::testing::fresh(oytel_store::testing::Backend::Sqlite)
        .await
        .unwrap();
    let store = db.store.clone();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON orders WHEN NEW.customer_name = 'poison' \
         BEGIN SELECT RAISE(ROLLBACK, 'poisoned'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    let a = partner(store.as_ref()).await;
    let sandbox = scope(&a, Environment::Sandbox);
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let store = store.clone();
            let mut w = write(&sandbox, 1_000, SANDBOX, None);
            if n == 20 {
                w.order.customer_name = "poison".into();
            }
            tokio::spawn(async move { (store.provision(&w).await, w) })
        })
        .collect();
    let (mut stored, mut failed) = (0, 0);
    for task in tasks {
        let (result, w) = task.await.unwrap();
        let order = store.get_order(&sandbox, &w.order.id).await.unwrap();
        let esim = store.get_esim(&sandbox, &w.esim.id).await.unwrap();
        match result {
            Ok(ProvisionResult::Committed { .. }) => {
                assert!(
                    order.is_some() && esim.is_some(),
                    "reported stored, and it is"
                );
                stored += 1;
            }
            Err(_) => {
                assert!(
                    order.is_none() && esim.is_none(),
                    "a failed write left nothing"
                );
                failed += 1;
            }
            other => panic!("unexpected: {other:?}"),
        }
        if w.order.customer_name == "poison" {
            assert!(order.is_none(), "the poisoned write was not stored");
        }
    }
    eprintln!("{stored} stored, {failed} failed with the poisoned write's batch");
    assert!(failed >= 1 && stored + failed == 40);
    let after = write(&sandbox, 1_000, SANDBOX, None);
    assert!(
        matches!(
            store.provision(&after).await,
            Ok(ProvisionResult::Committed { .. })
        ),
        "the writer goes on"
    );
}
