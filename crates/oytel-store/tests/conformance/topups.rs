//! Packages and top-ups: one charge per key under concurrency, usage thresholds announced
//! once per package, and the queued package taking over when the one in force ends.

use std::sync::Arc;

use chrono::Duration;
use oytel_core::catalog::Catalog;
use oytel_core::clock::now;
use oytel_core::idempotency::{IdempotencyRequest, Operation};
use oytel_core::packages::{find_offer, TopUpRecord};
use oytel_core::ports::*;
use oytel_core::{Environment, EsimStatus, Scope};
use oytel_types::{EventType, PackageState};

use crate::support::*;

conformance!(
    concurrent_top_ups_with_one_key_charge_once,
    usage_thresholds_are_announced_once_per_package,
    the_queued_package_takes_over_when_the_one_in_force_ends,
    a_cancelled_top_up_commits_whole_or_not_at_all_and_leaves_no_transaction_open,
);

/// A top-up of `topup_id` for `esim`, charged as `charge`.
fn topup(
    scope: &Scope,
    esim: &EsimRecord,
    topup_id: &str,
    charge: Charge,
    idempotency: Option<IdempotencyWrite>,
) -> TopUpWrite {
    let offer = find_offer(&Catalog::default_catalog(), &esim.plan_id, topup_id).unwrap();
    TopUpWrite {
        scope: scope.clone(),
        purchase: TopUpRecord::new(scope, &esim.id, &offer, "USD", "req_1", now()),
        offer,
        charge,
        idempotency,
    }
}

fn bought(result: TopUpResult) -> ToppedUp {
    match result {
        TopUpResult::Done(done) => *done,
        other => panic!("not bought: {other:?}"),
    }
}

async fn states(store: &dyn Storage, esim_id: &str) -> Vec<PackageState> {
    let packages = store.list_packages(esim_id).await.unwrap();
    packages.iter().map(|p| p.state).collect()
}

/// Eight requests with one new key at once: one purchase, one charge, the others told the
/// key is taken (and would replay it).
async fn concurrent_top_ups_with_one_key_charge_once(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    store.credit(&a, 100_000, "opening", now()).await.unwrap();
    let live = scope(&a, Environment::Production);
    let w = write(&live, 600, LIVE, None);
    store.provision(&w).await.unwrap();
    let at = now();
    let claim = IdempotencyRequest {
        key: "boost-once".into(),
        operation: Operation::TopUp,
        token: "t".into(),
        request_hash: "h".into(),
        now: at,
        lease_until: at + Duration::seconds(10),
        expires_at: at + Duration::hours(24),
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let write = topup(
                &live,
                &w.esim,
                "uk-boost-5",
                LIVE,
                Some(IdempotencyWrite::ClaimNew(claim.clone())),
            );
            tokio::spawn(async move { store.top_up(&write).await.unwrap() })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        match task.await.unwrap() {
            TopUpResult::Done(_) => done += 1,
            TopUpResult::KeyTaken => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(done, 1);
    let charges = store
        .ledger(&a)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.purchase_id.is_some())
        .count();
    assert_eq!(charges, 1);
    assert_eq!(
        ledger_adds_up(store.as_ref(), &a).await,
        100_000 - 600 - 600
    );
    let packages = store.list_packages(&w.esim.id).await.unwrap();
    assert_eq!(packages[0].data_mb, 15_000);
    assert_eq!(packages[0].purchase_ids.len(), 1);
}

/// 50 / 80 / 100 % are announced once per package: a renewal that takes over starts with
/// none announced, and a data add-on re-arms those its allowance puts out of reach.
async fn usage_thresholds_are_announced_once_per_package(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let sandbox = scope(&a, Environment::Sandbox);
    store
        .create_endpoint(&endpoint(
            &sandbox,
            "https://hooks.example/usage",
            vec![EventType::UsageThreshold, EventType::EsimToppedUp],
        ))
        .await
        .unwrap();
    let esim = provisioned(store.as_ref(), &sandbox).await;
    store
        .transition_esim(&esim.id, EsimStatus::Active, now())
        .await
        .unwrap();
    let mut n = 0;
    let mut use_mb = |mb: u64| {
        n += 1;
        let (store, id) = (store.clone(), esim.id.clone());
        async move {
            let usage = UsageInput {
                record_id: format!("r{n}"),
                data_mb: mb,
                calls: 0,
                sms: 0,
                recorded_at: now(),
            };
            match store.record_usage(&id, &usage, now()).await.unwrap() {
                UsageResult::Applied(esim) => *esim,
                other => panic!("{other:?}"),
            }
        }
    };
    use_mb(5_000).await; // 50 % of 10,000
                         // 5,000 of 15,000 is 33 %: 50 % is announced again when reached.
    bought(
        store
            .top_up(&topup(&sandbox, &esim, "uk-boost-5", SANDBOX, None))
            .await
            .unwrap(),
    );
    use_mb(2_500).await; // 7,500 of 15,000: 50 % again
    bought(
        store
            .top_up(&topup(&sandbox, &esim, "renewal-1m", SANDBOX, None))
            .await
            .unwrap(),
    );
    let after = use_mb(7_500).await; // 15,000: 80 and 100 %, used up; the renewal takes over
    assert_eq!((after.data_used_mb, after.data_limit_mb), (0, 10_000));
    assert_eq!(
        states(store.as_ref(), &esim.id).await,
        [PackageState::Depleted, PackageState::Active]
    );
    use_mb(5_000).await; // 50 % of the renewal
    let seen: Vec<String> = drain_due(store.as_ref())
        .await
        .into_iter()
        .filter(|d| d.url == "https://hooks.example/usage")
        .map(|d| {
            let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
            match payload["data"]["threshold_percent"].as_u64() {
                Some(t) => format!("{t}%"),
                None => payload["data"]["topup"]["topup_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            }
        })
        .collect();
    assert_eq!(
        seen,
        [
            "50%",
            "uk-boost-5",
            "50%",
            "renewal-1m",
            "80%",
            "100%",
            "50%"
        ]
    );
}

/// An expiry with a renewal queued starts the renewal (the eSIM lives on, its `expires_at`
/// the renewal's end); the next expiry, with nothing queued, expires the eSIM.
async fn the_queued_package_takes_over_when_the_one_in_force_ends(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let sandbox = scope(&a, Environment::Sandbox);
    let esim = provisioned(store.as_ref(), &sandbox).await;
    let renewal = bought(
        store
            .top_up(&topup(&sandbox, &esim, "renewal-3m", SANDBOX, None))
            .await
            .unwrap(),
    );
    assert_eq!(renewal.package.state, PackageState::Queued);
    let TransitionResult::Done(after) = store
        .transition_esim(&esim.id, EsimStatus::Expired, now())
        .await
        .unwrap()
    else {
        panic!("not done");
    };
    assert_eq!(after.status, EsimStatus::Provisioned, "it lives on");
    let packages = store.list_packages(&esim.id).await.unwrap();
    assert_eq!(
        packages.iter().map(|p| p.state).collect::<Vec<_>>(),
        [PackageState::Expired, PackageState::Active]
    );
    assert_eq!(packages[1].ends_at, Some(after.expires_at));
    assert_eq!(
        packages[1].activated_at, None,
        "the eSIM was never activated"
    );
    assert_eq!(
        store.get_esim(&sandbox, &esim.id).await.unwrap().unwrap(),
        *after
    );
    let TransitionResult::Done(last) = store
        .transition_esim(&esim.id, EsimStatus::Expired, now())
        .await
        .unwrap()
    else {
        panic!("not done");
    };
    assert_eq!(last.status, EsimStatus::Expired);
    assert_eq!(
        states(store.as_ref(), &esim.id).await,
        [PackageState::Expired, PackageState::Expired]
    );
}

/// A top-up whose future is dropped at any await point, from taking the writer to after the
/// commit, either bought whole (charged and on the package) or wrote nothing, and the
/// connection goes back to the pool outside any transaction: the next write neither fails
/// nor waits for a lock nobody releases (issue #24). (On SQLite a queued top-up is finished
/// by the group commit's task, so it is always bought whole; `billing.rs` drops a credit,
/// which holds the pool's connection itself.)
async fn a_cancelled_top_up_commits_whole_or_not_at_all_and_leaves_no_transaction_open(
    store: Arc<dyn Storage>,
) {
    let a = partner(store.as_ref()).await;
    store.credit(&a, 1_000_000, "opening", now()).await.unwrap();
    let live = scope(&a, Environment::Production);
    let esim = write(&live, 600, LIVE, None);
    store.provision(&esim).await.unwrap();
    let (mut whole, mut nothing) = (0, 0);
    for polls in 1..=40 {
        for _ in 0..3 {
            let w = topup(&live, &esim.esim, "uk-boost-5", LIVE, None);
            let finished = dropped_after(store.top_up(&w), polls).await.is_some();
            let next = topup(&live, &esim.esim, "uk-boost-5", LIVE, None);
            let after =
                tokio::time::timeout(std::time::Duration::from_secs(10), store.top_up(&next))
                    .await
                    .unwrap_or_else(|_| panic!("a write after a drop at poll {polls} hung"));
            assert!(
                matches!(after, Ok(TopUpResult::Done(_))),
                "a write after a drop at poll {polls}: {after:?}"
            );
            let charged = store
                .ledger(&a)
                .await
                .unwrap()
                .iter()
                .any(|e| e.purchase_id.as_deref() == Some(w.purchase.id.as_str()));
            let on_a_package = store
                .list_packages(&esim.esim.id)
                .await
                .unwrap()
                .iter()
                .any(|p| p.purchase_ids.contains(&w.purchase.id));
            match (charged, on_a_package) {
                (true, true) => whole += 1,
                (false, false) => nothing += 1,
                parts => panic!("a top-up dropped at poll {polls} is half-done: {parts:?}"),
            }
            assert!(!finished || charged, "a finished top-up was lost");
        }
    }
    ledger_adds_up(store.as_ref(), &a).await;
    eprintln!("dropped top-ups: {whole} bought whole, {nothing} wrote nothing, none half-done");
    assert!(whole > 0, "some dropped top-ups had committed");
}
