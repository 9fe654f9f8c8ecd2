//! Upgrades keep data: a database written by release 0.1 (its migrations, then rows its
//! storage wrote: `tests/fixtures/release-0.1.<backend>.sql`) is opened by this release,
//! which migrates it; every partner, key, order, eSIM, ledger row, idempotency record and
//! pending webhook is still there and still works, every eSIM holds the package it was
//! provisioned with, and the new schema takes what this release writes.

use chrono::Duration;
use oytel_core::clock::now;
use oytel_core::idempotency::{request_hash, Operation, ResourceRef};
use oytel_core::keys::hash_api_key;
use oytel_core::ports::*;
use oytel_core::{Environment, EsimStatus};
use oytel_store::testing::{at_release, Backend, TestDatabase, RELEASE_0_1};
use oytel_types::ProvisionRequest;

use crate::support::*;

const SQLITE_ROWS: &str = include_str!("../fixtures/release-0.1.sqlite.sql");
const POSTGRES_ROWS: &str = include_str!("../fixtures/release-0.1.postgres.sql");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_release_0_1_data_survives_the_upgrade() {
    let earlier = at_release(Backend::Sqlite, RELEASE_0_1, SQLITE_ROWS)
        .await
        .unwrap();
    release_0_1_data_survives_the_upgrade(earlier.upgrade().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(oytel_postgres),
    ignore = "needs PostgreSQL: build the tests with OYTEL_TEST_DATABASE_URL set (export OYTEL_TEST_DATABASE_URL=$(.ci/postgres start))"
)]
async fn postgres_release_0_1_data_survives_the_upgrade() {
    if let Some(earlier) = at_release(Backend::Postgres, RELEASE_0_1, POSTGRES_ROWS).await {
        release_0_1_data_survives_the_upgrade(earlier.upgrade().await).await;
    }
}

/// The request the fixture's idempotent provisionings were made with.
fn fixture_request() -> ProvisionRequest {
    ProvisionRequest::new("uk-lite-10", "Customer@Example.com", "C")
        .reference_id("ref-1")
        .webhook_url("https://hooks.example/x")
}

async fn release_0_1_data_survives_the_upgrade(db: TestDatabase) {
    let store = db.store.as_ref();

    // Partners, with their limits.
    let partners = store.list_partners().await.unwrap();
    let names: Vec<&str> = partners.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Acme Travel", "Globe Roam"]);
    let (acme, globe) = (&partners[0], &partners[1]);
    assert_eq!(acme.email.as_deref(), Some("ops@acme.example"));
    let limits = store.partner_limits(&globe.id).await.unwrap().unwrap();
    assert_eq!(
        (
            limits.provision_per_hour,
            limits.status_per_hour,
            limits.burst_per_second
        ),
        (Some(500), None, Some(50))
    );

    // Keys: listed, one revoked; each still found by its hash (the fixture keeps only
    // hashes, so the lookup goes through the listed ids' rows).
    let keys = store.list_api_keys(&acme.id).await.unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys.iter().filter(|k| k.revoked_at.is_some()).count(), 1);
    assert!(store
        .find_api_key(&hash_api_key("sk_live_unknown"))
        .await
        .unwrap()
        .is_none());

    // Ledgers add up to the balances they led to.
    assert_eq!(ledger_adds_up(store, &acme.id).await, 99_400);
    assert_eq!(ledger_adds_up(store, &globe.id).await, 49_400);

    // Orders and eSIMs, in both environments, with the state they had.
    let acme_live = scope(&acme.id, Environment::Production);
    let page = PageRequest {
        limit: 10,
        before: None,
    };
    let orders = store.list_orders(&acme_live, None, page).await.unwrap();
    assert_eq!(orders.len(), 1);
    let order = &orders[0].row;
    assert_eq!(
        (order.amount_cents, order.balance_after_cents),
        (600, 99_400)
    );
    let esim = store
        .get_esim(&acme_live, &order.esim_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (esim.status, esim.data_used_mb),
        (EsimStatus::Active, 6_000)
    );
    assert_eq!(esim.order_id, order.id);
    // Each eSIM holds the package it was provisioned with, in force, with its usage.
    let packages = store.list_packages(&esim.id).await.unwrap();
    let [package] = packages.as_slice() else {
        panic!("one package: {packages:?}");
    };
    assert_eq!(
        (
            package.state,
            package.order_id.as_deref(),
            package.price_cents,
            package.data_mb,
            package.data_used_mb,
            package.activated_at,
            package.ends_at,
        ),
        (
            oytel_types::PackageState::Active,
            Some(order.id.as_str()),
            600,
            esim.data_limit_mb,
            6_000,
            esim.activated_at,
            Some(esim.expires_at),
        )
    );
    assert_eq!(package.id, format!("pkg_{}", &esim.id["esim_".len()..]));
    let sandbox = scope(&acme.id, Environment::Sandbox);
    assert_eq!(
        store
            .list_esims(&sandbox, &EsimFilter::default(), page)
            .await
            .unwrap()
            .len(),
        1
    );

    // Idempotency: a retry of the completed request still replays its order, another body
    // is still refused, and the abandoned claim can be taken over.
    let at = now();
    let claim = |key: &str, hash: String| IdempotencyRequest {
        key: key.into(),
        operation: Operation::Provision,
        token: "after-upgrade".into(),
        request_hash: hash,
        now: at,
        lease_until: at + Duration::seconds(10),
        expires_at: at + Duration::hours(24),
    };
    let retry = claim("order-1", request_hash(&fixture_request()));
    assert_eq!(
        store
            .claim_idempotency_key(&acme_live, &retry)
            .await
            .unwrap(),
        IdempotencyClaim::Completed {
            resource: ResourceRef::order(&order.id)
        }
    );
    let other = fixture_request().term_months(3);
    assert_eq!(
        store
            .claim_idempotency_key(&acme_live, &claim("order-1", request_hash(&other)))
            .await
            .unwrap(),
        IdempotencyClaim::Mismatch
    );
    let crashed = claim("crashed", request_hash(&fixture_request()));
    assert_eq!(
        store
            .claim_idempotency_key(&acme_live, &crashed)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );

    // A key completed by a release 0.1 instance still running beside this one (a rolling
    // upgrade) names only its order: it replays too.
    db.execute(
        "UPDATE idempotency_keys SET resource_kind = NULL, resource_id = NULL \
         WHERE key = 'b-1'",
    )
    .await;
    let globe_live = scope(&globe.id, Environment::Production);
    let globe_order = &store.list_orders(&globe_live, None, page).await.unwrap()[0].row;
    assert_eq!(
        store
            .claim_idempotency_key(&globe_live, &claim("b-1", request_hash(&fixture_request())))
            .await
            .unwrap(),
        IdempotencyClaim::Completed {
            resource: ResourceRef::order(&globe_order.id)
        }
    );

    // Such an instance re-claiming an expired key clears only `order_id`: the key is held
    // again, not completed by the order it named before.
    db.execute(
        "UPDATE idempotency_keys SET resource_kind = 'order', resource_id = 'ord_before', \
         order_id = NULL, locked_until = '2099-01-01T00:00:00+00:00' WHERE key = 'b-1'",
    )
    .await;
    assert_eq!(
        store
            .claim_idempotency_key(&globe_live, &claim("b-1", request_hash(&fixture_request())))
            .await
            .unwrap(),
        IdempotencyClaim::InProgress
    );

    // A key this release completed for a cancellation, re-claimed by a release 0.1 instance
    // for a provisioning and completed there: a provisioning of that order.
    db.execute(&format!(
        "UPDATE idempotency_keys SET operation = 'esim.cancel', resource_kind = 'cancellation', \
         resource_id = 'esim_other', order_id = '{}', locked_until = '2000-01-01T00:00:00+00:00' \
         WHERE key = 'b-1'",
        globe_order.id
    ))
    .await;
    assert_eq!(
        store
            .claim_idempotency_key(&globe_live, &claim("b-1", request_hash(&fixture_request())))
            .await
            .unwrap(),
        IdempotencyClaim::Completed {
            resource: ResourceRef::order(&globe_order.id)
        }
    );

    // Pending webhooks are still due, with what they need to be sent; the attempt log stays.
    let due = claim_all(store).await;
    assert_eq!(due.len(), 8, "{due:?}");
    assert!(due
        .iter()
        .all(|d| !d.payload.is_empty() && !d.secrets.secret.is_empty()));
    // Written before traces were kept, they start traces of their own.
    assert!(due.iter().all(|d| d.traceparent.is_none()));
    let log = store.list_attempts(&acme_live, None, page).await.unwrap();
    assert_eq!(log.len(), 1);

    // The schema takes this release's writes: a new provisioning, charged.
    let fresh = write(&acme_live, 600, LIVE, None);
    assert_eq!(
        store.provision(&fresh).await.unwrap(),
        ProvisionResult::Committed {
            balance_after_cents: 98_800
        }
    );
    assert_eq!(ledger_adds_up(store, &acme.id).await, 98_800);
    assert!(!store.set_setting_once("first_run", "again").await.unwrap());

    // An eSIM may now have a second order (a top-up's), which release 0.1 refused.
    db.execute(&format!(
        "INSERT INTO orders (id, partner_id, environment, esim_id, plan_id, term_months, \
         amount_cents, currency, customer_email, customer_name, reference_id, \
         balance_after_cents, request_id, created_at) SELECT 'ord_second', partner_id, \
         environment, esim_id, plan_id, term_months, amount_cents, currency, customer_email, \
         customer_name, reference_id, balance_after_cents, request_id, created_at \
         FROM orders WHERE id = '{}'",
        order.id
    ))
    .await;
    let second = store
        .get_order(&acme_live, "ord_second")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.esim_id, order.esim_id);
}
