//! The storage conformance suite: every port method, constraint, transaction and paging edge,
//! written once and run against every adapter (SQLite always; PostgreSQL when
//! `OYTEL_TEST_DATABASE_URL` is set, see `oytel_store::testing`).

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use oytel_core::numbers::{
    generate_iccid, generate_matching_id, generate_msisdn, new_id, new_url_token,
};
use oytel_core::ports::*;
use oytel_core::provision::now;
use oytel_core::{Environment, EsimStatus, Scope};
use oytel_types::{DeliveryStatus, EventType};

/// Instantiates each test for each backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = oytel_store::testing::fresh(oytel_store::testing::Backend::Sqlite).await.unwrap();
                    super::$name(db.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = oytel_store::testing::fresh(oytel_store::testing::Backend::Postgres).await {
                        super::$name(db.store.clone()).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    partners_and_keys,
    credits_and_the_ledger,
    a_live_provision_commits_order_esim_and_charge_together,
    insufficient_balance_writes_nothing,
    a_duplicate_number_rolls_back_the_whole_provision,
    idempotency_claims,
    idempotency_takeover_and_lost_claims,
    a_new_key_is_claimed_and_completed_in_the_provisioning_transaction,
    idempotency_keys_are_scoped_and_purged,
    reads_are_scoped_to_partner_and_environment,
    pagination_edges_and_filters,
    settings_are_set_once,
    concurrent_provisions_are_exact,
    transitions_follow_the_state_machine_and_write_events,
    usage_is_applied_once_and_thresholds_announced_once,
    events_fan_out_to_subscribed_enabled_endpoints_and_the_esim_url,
    due_deliveries_are_claimed_by_one_worker,
    claims_take_turns_between_partners_and_keep_destinations_apart,
    attempts_are_recorded_and_gone_endpoints_disabled,
    a_round_of_attempts_is_recorded_in_order,
    endpoints_and_signing_secrets,
    deleting_or_disabling_an_endpoint_cancels_its_pending_deliveries,
    expiries_are_found_and_applied_once,
    partner_limits_are_stored_and_returned_with_the_key,
    the_auth_epoch_moves_with_every_change_to_keys_and_partners,
    a_revocation_waits_for_every_leased_instance_and_no_longer,
    cancelled_writes_commit_whole_or_not_at_all_and_leave_no_transaction_open,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_quotas_admit_exactly_the_limit() {
    let db = oytel_store::testing::fresh(oytel_store::testing::Backend::Sqlite)
        .await
        .unwrap();
    quotas_admit_exactly_the_limit(db.quotas.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_quotas_admit_exactly_the_limit() {
    if let Some(db) = oytel_store::testing::fresh(oytel_store::testing::Backend::Postgres).await {
        quotas_admit_exactly_the_limit(db.quotas.clone()).await;
    }
}

/// Quota counts commit without waiting for the WAL flush; everything else the storage writes
/// (orders, charges, keys) waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_only_quota_counts_skip_the_wal_flush() {
    if let Some(db) = oytel_store::testing::fresh(oytel_store::testing::Backend::Postgres).await {
        let store = oytel_store::PgStore::open(&db.url, &oytel_store::PoolOptions::default())
            .await
            .unwrap();
        let [storage, counters] = store.synchronous_commit().await.unwrap();
        assert_eq!(counters, ("off".to_owned(), "client".to_owned()));
        // The test server runs without flushing at all; what matters is that the storage's
        // connections keep the server's setting, whatever the operator chose.
        assert_ne!(
            storage.1, "client",
            "the storage must not relax durability: {storage:?}"
        );
        store.close().await;
    }
}

async fn partner(store: &dyn Storage) -> String {
    let partner = Partner::new("P", None).unwrap();
    store.create_partner(&partner).await.unwrap();
    partner.id
}

fn scope(partner_id: &str, environment: Environment) -> Scope {
    Scope {
        partner_id: partner_id.to_owned(),
        environment,
    }
}

fn write(
    scope: &Scope,
    amount_cents: i64,
    charge: Charge,
    claim: Option<IdempotencyWrite>,
) -> ProvisionWrite {
    let (order_id, esim_id, matching_id) = (new_id("ord"), new_id("esim"), generate_matching_id());
    let created_at = now();
    ProvisionWrite {
        order: OrderRecord {
            id: order_id.clone(),
            partner_id: scope.partner_id.clone(),
            environment: scope.environment,
            esim_id: esim_id.clone(),
            plan_id: "uk-lite-10".into(),
            term_months: 1,
            amount_cents,
            currency: "USD".into(),
            customer_email: "Customer@Example.com".into(),
            customer_name: "C".into(),
            reference_id: Some("ref-1".into()),
            balance_after_cents: 0,
            request_id: new_id("req"),
            created_at,
        },
        esim: EsimRecord {
            id: esim_id,
            partner_id: scope.partner_id.clone(),
            environment: scope.environment,
            order_id,
            plan_id: "uk-lite-10".into(),
            plan_name: "UK Lite 10".into(),
            validity_days: 30,
            term_months: 1,
            iccid: generate_iccid(),
            msisdn: generate_msisdn(),
            activation_code: format!("LPA:1$smdp.test${matching_id}"),
            matching_id,
            qr_token: new_url_token(),
            status: EsimStatus::Provisioned,
            customer_email: "Customer@Example.com".into(),
            customer_name: "C".into(),
            reference_id: Some("ref-1".into()),
            webhook_url: Some("https://hooks.example/x".into()),
            data_limit_mb: 10_000,
            data_used_mb: 0,
            calls_made: 0,
            sms_sent: 0,
            activated_at: None,
            expires_at: created_at + Duration::days(30),
            created_at,
        },
        charge,
        idempotency: claim,
        event: EventRecord {
            id: new_id("evt"),
            partner_id: scope.partner_id.clone(),
            environment: scope.environment,
            esim_id: None,
            event_type: EventType::EsimProvisioned,
            payload: "{}".into(),
            created_at,
        },
    }
}

fn endpoint(scope: &Scope, url: &str, types: Vec<EventType>) -> EndpointRecord {
    let at = now();
    EndpointRecord {
        id: new_id("we"),
        partner_id: scope.partner_id.clone(),
        environment: scope.environment,
        url: url.into(),
        description: None,
        event_types: types,
        secret: oytel_core::webhooks::generate_secret(),
        previous_secret: None,
        previous_secret_expires_at: None,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: at,
        updated_at: at,
    }
}

/// Provisions an eSIM (with the event the core would write) and returns it.
async fn provisioned(store: &dyn Storage, scope: &Scope) -> EsimRecord {
    let mut w = write(scope, 100, SANDBOX, None);
    w.event = oytel_core::webhooks::esim_event(EventType::EsimProvisioned, &w.esim, None, now());
    store.provision(&w).await.unwrap();
    w.esim
}

/// Records one attempt through the batch method.
trait RecordOne {
    async fn record_one(
        &self,
        outcome: &AttemptOutcome,
        disable_after: Duration,
    ) -> Result<(), StoreError>;
}

impl RecordOne for Arc<dyn Storage> {
    async fn record_one(
        &self,
        outcome: &AttemptOutcome,
        disable_after: Duration,
    ) -> Result<(), StoreError> {
        self.record_attempts(std::slice::from_ref(outcome), disable_after)
            .await
    }
}

/// An endpoint's attempt log, newest first (up to 10).
async fn attempt_log(
    store: &dyn Storage,
    scope: &Scope,
    endpoint_id: &str,
) -> Vec<Sequenced<AttemptRecord>> {
    store
        .list_attempts(
            scope,
            Some(endpoint_id.to_owned()),
            PageRequest {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap()
}

/// Claims what is due and records it delivered, as a healthy receiver's worker would: the next
/// call sees only what became due since.
async fn drain_due(store: &dyn Storage) -> Vec<DueDelivery> {
    let due = claim_all(store).await;
    let delivered: Vec<AttemptOutcome> = due
        .iter()
        .map(|d| AttemptOutcome {
            delivery_id: d.id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            attempt: d.attempts + 1,
            status_code: Some(200),
            duration_ms: 1,
            error: None,
            result: AttemptResult::Delivered,
            at: now(),
        })
        .collect();
    store
        .record_attempts(&delivered, Duration::days(5))
        .await
        .unwrap();
    due
}

/// Limits that take up to `n` deliveries, destinations and per partner.
fn up_to(n: u32) -> ClaimLimits {
    ClaimLimits {
        destinations: n,
        per_destination: n,
        per_partner: n,
    }
}

async fn claim_all(store: &dyn Storage) -> Vec<DueDelivery> {
    let at = now() + Duration::seconds(1);
    store
        .claim_due_deliveries(at, at + Duration::seconds(60), up_to(100))
        .await
        .unwrap()
}

const SANDBOX: Charge = Charge::Sandbox {
    balance_cents: 10_000,
};
const LIVE: Charge = Charge::Live {
    minimum_balance_cents: 2_500,
};

fn claim_request(
    key: &str,
    token: &str,
    hash: &str,
    at: chrono::DateTime<Utc>,
) -> IdempotencyRequest {
    IdempotencyRequest {
        key: key.into(),
        token: token.into(),
        request_hash: hash.into(),
        now: at,
        lease_until: at + Duration::seconds(60),
        expires_at: at + Duration::hours(24),
    }
}

async fn partners_and_keys(store: Arc<dyn Storage>) {
    store.ping().await.unwrap();
    store.probe_write(now()).await.unwrap();
    store.probe_write(now()).await.unwrap();
    let a = partner(store.as_ref()).await;
    let b = partner(store.as_ref()).await;
    let listed: Vec<_> = store
        .list_partners()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, vec![a.clone(), b.clone()], "oldest first");
    assert_eq!(store.get_partner(&a).await.unwrap().unwrap().name, "P");
    assert!(store.get_partner("ptn_none").await.unwrap().is_none());
    let dup = store
        .create_partner(&Partner {
            id: a.clone(),
            name: "X".into(),
            email: None,
            created_at: now(),
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");

    let key = oytel_core::keys::generate_api_key(&a, Environment::Production);
    store.create_api_key(&key.record).await.unwrap();
    let owner = store.find_api_key(&key.record.hash).await.unwrap().unwrap();
    assert_eq!(
        (owner.partner_id.as_str(), owner.environment, owner.revoked),
        (a.as_str(), Environment::Production, false)
    );
    assert!(store
        .find_api_key("0".repeat(64).as_str())
        .await
        .unwrap()
        .is_none());
    let again = store.create_api_key(&key.record).await;
    assert!(matches!(again, Err(StoreError::Duplicate(_))), "{again:?}");
    let orphan = oytel_core::keys::generate_api_key("ptn_none", Environment::Sandbox);
    assert!(matches!(
        store.create_api_key(&orphan.record).await,
        Err(StoreError::NotFound(_))
    ));

    let keys = store.list_api_keys(&a).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].hint, key.record.hint);
    assert!(store.list_api_keys(&b).await.unwrap().is_empty());
    assert!(store.revoke_api_key(&key.record.id, now()).await.unwrap());
    assert!(
        !store.revoke_api_key(&key.record.id, now()).await.unwrap(),
        "revoked once"
    );
    assert!(!store.revoke_api_key("key_none", now()).await.unwrap());
    assert!(
        store
            .find_api_key(&key.record.hash)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(store.list_api_keys(&a).await.unwrap()[0]
        .revoked_at
        .is_some());
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
            .filter(|e| e.kind == "charge")
            .count(),
        1
    );
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
            order_id: w.order.id.clone()
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
            order_id: committed.order.id.clone()
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

async fn reads_are_scoped_to_partner_and_environment(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let b = partner(store.as_ref()).await;
    let mine = scope(&a, Environment::Sandbox);
    let w = write(&mine, 100, SANDBOX, None);
    store.provision(&w).await.unwrap();
    for other in [
        scope(&a, Environment::Production),
        scope(&b, Environment::Sandbox),
    ] {
        assert!(store.get_esim(&other, &w.esim.id).await.unwrap().is_none());
        assert!(store
            .get_esim_status(&other, &w.esim.id)
            .await
            .unwrap()
            .is_none());
        assert!(store
            .get_order(&other, &w.order.id)
            .await
            .unwrap()
            .is_none());
        let page = PageRequest {
            limit: 10,
            before: None,
        };
        assert!(store
            .list_esims(&other, &EsimFilter::default(), page)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .list_orders(&other, None, page)
            .await
            .unwrap()
            .is_empty());
    }
    let full = store.get_esim(&mine, &w.esim.id).await.unwrap().unwrap();
    // The status read is the same eSIM, narrower.
    assert_eq!(
        store.get_esim_status(&mine, &w.esim.id).await.unwrap(),
        Some(EsimStatusRecord::from(full))
    );
    assert!(store
        .get_esim_status(&mine, "esim_none")
        .await
        .unwrap()
        .is_none());
}

async fn pagination_edges_and_filters(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let page = |limit, before| PageRequest { limit, before };
    assert!(store
        .list_esims(&s, &EsimFilter::default(), page(5, None))
        .await
        .unwrap()
        .is_empty());
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut w = write(&s, 100, SANDBOX, None);
        if i == 2 {
            w.esim.reference_id = Some("special".into());
            w.order.reference_id = Some("special".into());
            w.esim.customer_email = "Other@Example.COM".into();
        }
        store.provision(&w).await.unwrap();
        ids.push(w.esim.id);
    }
    let all = store
        .list_esims(&s, &EsimFilter::default(), page(10, None))
        .await
        .unwrap();
    let listed: Vec<_> = all.iter().map(|r| r.row.id.clone()).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq));
    // Exactly the page size, then the rest after the cursor.
    let first = store
        .list_esims(&s, &EsimFilter::default(), page(2, None))
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let rest = store
        .list_esims(&s, &EsimFilter::default(), page(10, Some(first[1].seq)))
        .await
        .unwrap();
    assert_eq!(rest.len(), 3);
    assert!(rest
        .iter()
        .all(|r| !first.iter().any(|f| f.row.id == r.row.id)));
    let last = store
        .list_esims(&s, &EsimFilter::default(), page(10, Some(all[4].seq)))
        .await
        .unwrap();
    assert!(last.is_empty(), "nothing before the oldest");
    // Filters.
    let by_ref = EsimFilter {
        reference_id: Some("special".into()),
        ..EsimFilter::default()
    };
    assert_eq!(
        store
            .list_esims(&s, &by_ref, page(10, None))
            .await
            .unwrap()
            .len(),
        1
    );
    let by_email = EsimFilter {
        customer_email: Some("other@example.com".into()),
        ..EsimFilter::default()
    };
    assert_eq!(
        store
            .list_esims(&s, &by_email, page(10, None))
            .await
            .unwrap()[0]
            .row
            .id,
        ids[2]
    );
    let active = EsimFilter {
        status: Some(EsimStatus::Active),
        ..EsimFilter::default()
    };
    assert!(store
        .list_esims(&s, &active, page(10, None))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .list_orders(&s, Some("special".into()), page(10, None))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_orders(&s, None, page(3, None))
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn settings_are_set_once(store: Arc<dyn Storage>) {
    assert!(store.set_setting_once("demo_seeded", "1").await.unwrap());
    assert!(!store.set_setting_once("demo_seeded", "2").await.unwrap());
    assert!(store.set_setting_once("other", "1").await.unwrap());
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

/// Asserts that the partner's ledger adds up to its live balance, and returns the balance.
async fn ledger_adds_up(store: &dyn Storage, partner_id: &str) -> i64 {
    let balance = store.live_balance(partner_id).await.unwrap();
    let ledger = store.ledger(partner_id).await.unwrap();
    let sum: i64 = ledger.iter().map(|e| e.amount_cents).sum();
    assert_eq!(sum, balance, "the ledger adds up to the balance");
    balance
}

async fn transitions_follow_the_state_machine_and_write_events(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let esim = provisioned(store.as_ref(), &s).await;
    assert_eq!(
        store
            .transition_esim("esim_none", EsimStatus::Active, now())
            .await
            .unwrap(),
        TransitionResult::NotFound
    );
    let TransitionResult::Done(active) = store
        .transition_esim(&esim.id, EsimStatus::Active, now())
        .await
        .unwrap()
    else {
        panic!("activation refused")
    };
    assert_eq!(active.status, EsimStatus::Active);
    assert!(active.activated_at.is_some());
    assert_eq!(
        store.get_esim(&s, &esim.id).await.unwrap().unwrap(),
        *active
    );
    assert_eq!(
        store
            .transition_esim(&esim.id, EsimStatus::Active, now())
            .await
            .unwrap(),
        TransitionResult::Invalid(EsimStatus::Active)
    );
    assert!(matches!(
        store
            .transition_esim(&esim.id, EsimStatus::Expired, now())
            .await
            .unwrap(),
        TransitionResult::Done(_)
    ));
    assert_eq!(
        store
            .transition_esim(&esim.id, EsimStatus::Active, now())
            .await
            .unwrap(),
        TransitionResult::Invalid(EsimStatus::Expired)
    );
    // provisioned, activated, expired: three events went to the eSIM's webhook_url.
    let due = claim_all(store.as_ref()).await;
    let mut types: Vec<String> = due
        .iter()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(&d.payload).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["esim.activated", "esim.expired", "esim.provisioned"]
    );
    assert!(due
        .iter()
        .all(|d| d.url == "https://hooks.example/x" && d.endpoint_id.is_none()));
}

async fn usage_is_applied_once_and_thresholds_announced_once(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let esim = provisioned(store.as_ref(), &s).await;
    let usage = |id: &str, mb| UsageInput {
        record_id: id.into(),
        data_mb: mb,
        calls: 1,
        sms: 2,
        recorded_at: now(),
    };
    assert_eq!(
        store
            .record_usage("esim_none", &usage("r0", 1), now())
            .await
            .unwrap(),
        UsageResult::NotFound
    );
    assert_eq!(
        store
            .record_usage(&esim.id, &usage("r0", 1), now())
            .await
            .unwrap(),
        UsageResult::NotActive(EsimStatus::Provisioned)
    );
    store
        .transition_esim(&esim.id, EsimStatus::Active, now())
        .await
        .unwrap();
    drain_due(store.as_ref()).await;
    // 10,000 MB allowance: 4,000 (40 %), then 5,000 (90 %: crosses 50 and 80), then 2,000.
    let UsageResult::Applied(after) = store
        .record_usage(&esim.id, &usage("r1", 4_000), now())
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (after.data_used_mb, after.calls_made, after.sms_sent),
        (4_000, 1, 2)
    );
    assert!(drain_due(store.as_ref()).await.is_empty());
    store
        .record_usage(&esim.id, &usage("r2", 5_000), now())
        .await
        .unwrap();
    assert_eq!(
        store
            .record_usage(&esim.id, &usage("r2", 5_000), now())
            .await
            .unwrap(),
        UsageResult::Duplicate
    );
    let thresholds: Vec<u64> = drain_due(store.as_ref())
        .await
        .iter()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(&d.payload).unwrap()["data"]
                ["threshold_percent"]
                .as_u64()
                .unwrap()
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(thresholds, [50, 80]);
    store
        .record_usage(&esim.id, &usage("r3", 2_000), now())
        .await
        .unwrap();
    let due = drain_due(store.as_ref()).await;
    assert_eq!(due.len(), 1);
    let event: serde_json::Value = serde_json::from_str(&due[0].payload).unwrap();
    assert_eq!(event["data"]["threshold_percent"], 100);
    assert_eq!(event["data"]["data_used_mb"], 11_000);
    assert_eq!(
        store
            .get_esim(&s, &esim.id)
            .await
            .unwrap()
            .unwrap()
            .data_used_mb,
        11_000
    );
}

async fn events_fan_out_to_subscribed_enabled_endpoints_and_the_esim_url(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Production);
    let all = endpoint(&s, "https://all.example/", vec![]);
    let activations = endpoint(&s, "https://act.example/", vec![EventType::EsimActivated]);
    let mut disabled = endpoint(&s, "https://off.example/", vec![]);
    disabled.enabled = false;
    let other_env = endpoint(
        &scope(&a, Environment::Sandbox),
        "https://sandbox.example/",
        vec![],
    );
    for e in [&all, &activations, &disabled, &other_env] {
        store.create_endpoint(e).await.unwrap();
    }
    store.credit(&a, 10_000, "t", now()).await.unwrap();
    let mut w = write(&s, 100, LIVE, None);
    w.event = oytel_core::webhooks::esim_event(EventType::EsimProvisioned, &w.esim, None, now());
    store.provision(&w).await.unwrap();
    let mut urls: Vec<String> = drain_due(store.as_ref())
        .await
        .into_iter()
        .map(|d| d.url)
        .collect();
    urls.sort();
    assert_eq!(urls, ["https://all.example/", "https://hooks.example/x"]);
    store
        .transition_esim(&w.esim.id, EsimStatus::Active, now())
        .await
        .unwrap();
    let due = drain_due(store.as_ref()).await;
    let mut urls: Vec<&str> = due.iter().map(|d| d.url.as_str()).collect();
    urls.sort();
    assert_eq!(
        urls,
        [
            "https://act.example/",
            "https://all.example/",
            "https://hooks.example/x"
        ]
    );
    let signed_by_endpoint = due
        .iter()
        .find(|d| d.url == "https://act.example/")
        .unwrap();
    assert_eq!(signed_by_endpoint.secrets.secret, activations.secret);
    let signed_for_esim = due.iter().find(|d| d.endpoint_id.is_none()).unwrap();
    let esim_secret = store.esim_signing_secret(&s, "whsec_unused").await.unwrap();
    assert_eq!(
        signed_for_esim.secrets, esim_secret,
        "the eSIM URL's secret was created with the event"
    );
    // Redelivery schedules the event again for the current destinations.
    let event_id = due[0].event_id.clone();
    assert_eq!(
        store.redeliver_event(&s, &event_id, now()).await.unwrap(),
        Some(3)
    );
    assert_eq!(
        store
            .redeliver_event(&scope(&a, Environment::Sandbox), &event_id, now())
            .await
            .unwrap(),
        None
    );
    assert!(store.get_event(&s, &event_id).await.unwrap().is_some());
    assert!(store
        .get_event(&scope(&a, Environment::Sandbox), &event_id)
        .await
        .unwrap()
        .is_none());
}

async fn due_deliveries_are_claimed_by_one_worker(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    // Thirty events for one destination (every eSIM's `webhook_url`).
    for _ in 0..30 {
        provisioned(store.as_ref(), &s).await;
    }
    let at = now() + Duration::seconds(1);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_due_deliveries(at, at + Duration::seconds(60), up_to(10))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut claims = Vec::new();
    for worker in workers {
        claims.push(worker.await.unwrap());
    }
    let ids: Vec<&str> = claims.iter().flatten().map(|d| d.id.as_str()).collect();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "no delivery claimed twice");
    assert_eq!(
        claims.iter().filter(|c| !c.is_empty()).count(),
        1,
        "one worker holds the destination"
    );
    assert_eq!(ids.len(), 10, "up to `per_destination` of it");
    assert!(
        store
            .claim_due_deliveries(at, at, up_to(100))
            .await
            .unwrap()
            .is_empty(),
        "the other twenty wait while the destination is leased"
    );
    let after_lease = at + Duration::seconds(61);
    assert_eq!(
        store
            .claim_due_deliveries(after_lease, after_lease + Duration::seconds(60), up_to(100))
            .await
            .unwrap()
            .len(),
        30
    );
}

/// Sends `count` test events to each endpoint, oldest first, endpoint by endpoint.
async fn test_events(store: &dyn Storage, hooks: &[&EndpointRecord], count: usize) {
    for hook in hooks {
        for _ in 0..count {
            let test = oytel_core::webhooks::test_event(&hook.partner_id, hook.environment, now());
            store.send_test_event(&test, &hook.id).await.unwrap();
        }
    }
}

async fn claims_take_turns_between_partners_and_keep_destinations_apart(store: Arc<dyn Storage>) {
    let (a, b) = (partner(store.as_ref()).await, partner(store.as_ref()).await);
    let (sa, sb) = (
        scope(&a, Environment::Sandbox),
        scope(&b, Environment::Sandbox),
    );
    let a_hooks: Vec<EndpointRecord> = (0..3)
        .map(|i| endpoint(&sa, &format!("https://a{i}.example/"), vec![]))
        .collect();
    let b_hook = endpoint(&sb, "https://b.example/", vec![]);
    for hook in a_hooks.iter().chain([&b_hook]) {
        store.create_endpoint(hook).await.unwrap();
    }
    // Partner A's backlog is older than partner B's single event.
    test_events(store.as_ref(), &a_hooks.iter().collect::<Vec<_>>(), 5).await;
    test_events(store.as_ref(), &[&b_hook], 1).await;
    let at = now() + Duration::seconds(1);
    let lease_until = at + Duration::seconds(60);
    let claim = |destinations, per_destination, per_partner| {
        let store = store.clone();
        async move {
            let limits = ClaimLimits {
                destinations,
                per_destination,
                per_partner,
            };
            let due = store
                .claim_due_deliveries(at, lease_until, limits)
                .await
                .unwrap();
            let mut urls: Vec<String> = due.iter().map(|d| d.url.clone()).collect();
            urls.dedup();
            (due, urls)
        }
    };

    let (due, urls) = claim(2, 2, 10).await;
    assert_eq!(
        urls,
        vec!["https://a0.example/", "https://b.example/"],
        "each partner's oldest destination first, B's single event beside A's backlog"
    );
    assert_eq!(due.len(), 3, "two of a0's five, and B's one");
    let a0_ids: Vec<String> = due
        .iter()
        .filter(|d| d.url.contains("a0"))
        .map(|d| d.id.clone())
        .collect();

    let (_, urls) = claim(10, 10, 2).await;
    assert_eq!(
        urls,
        vec!["https://a1.example/"],
        "a0 is leased (skipped) and counts towards A's two destinations"
    );
    let (due, _) = claim(10, 10, 10).await;
    assert_eq!(
        due.iter().map(|d| d.url.as_str()).collect::<Vec<_>>(),
        vec!["https://a2.example/"; 5],
        "a0's other three wait for its lease: one worker per destination"
    );

    // What a worker gives back is due again at once, and only under its own lease.
    store
        .release_deliveries(&a0_ids, at + Duration::seconds(1))
        .await
        .unwrap();
    assert!(
        claim(10, 10, 10).await.0.is_empty(),
        "a release under another lease changes nothing"
    );
    store
        .release_deliveries(&a0_ids, lease_until)
        .await
        .unwrap();
    let (due, urls) = claim(10, 10, 10).await;
    assert_eq!(urls, vec!["https://a0.example/"]);
    assert_eq!(due.len(), 5, "the two given back and the three that waited");
    assert_eq!(due[0].id, a0_ids[0], "oldest first");
    assert!(
        due.iter().all(|d| d.attempts == 0),
        "a release records no attempt"
    );
}

async fn a_round_of_attempts_is_recorded_in_order(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let (hook_a, hook_b) = (
        endpoint(&s, "https://a.example/", vec![]),
        endpoint(&s, "https://b.example/", vec![]),
    );
    store.create_endpoint(&hook_a).await.unwrap();
    store.create_endpoint(&hook_b).await.unwrap();
    let mut to_a = Vec::new();
    for _ in 0..4 {
        let test = oytel_core::webhooks::test_event(&a, Environment::Sandbox, now());
        to_a.push(store.send_test_event(&test, &hook_a.id).await.unwrap());
    }
    let test = oytel_core::webhooks::test_event(&a, Environment::Sandbox, now());
    let to_b = store.send_test_event(&test, &hook_b.id).await.unwrap();
    let t0 = now();
    let outcome = |delivery: &str, hook: &EndpointRecord, result, at| AttemptOutcome {
        delivery_id: delivery.to_owned(),
        endpoint_id: Some(hook.id.clone()),
        attempt: 1,
        status_code: Some(if result == AttemptResult::Delivered {
            200
        } else {
            500
        }),
        duration_ms: 3,
        error: None,
        result,
        at,
    };
    let retry = |at| AttemptResult::Retry {
        next_attempt_at: at + Duration::seconds(30),
    };
    let failing_since = |hook: &EndpointRecord| {
        let (store, s, id) = (store.clone(), s.clone(), hook.id.clone());
        async move {
            let hook = store.get_endpoint(&s, &id).await.unwrap().unwrap();
            hook.failing_since
        }
    };
    // One round, as a worker records it: a failure, a success, a failure again. The streak
    // starts at the last failure, as if recorded one by one.
    let t1 = t0 + Duration::seconds(1);
    let t3 = t0 + Duration::seconds(3);
    store
        .record_attempts(
            &[
                outcome(&to_a[0], &hook_a, retry(t1), t1),
                outcome(
                    &to_a[1],
                    &hook_a,
                    AttemptResult::Delivered,
                    t0 + Duration::seconds(2),
                ),
                outcome(&to_a[2], &hook_a, retry(t3), t3),
                outcome(&to_b, &hook_b, AttemptResult::Delivered, t3),
            ],
            Duration::days(5),
        )
        .await
        .unwrap();
    assert_eq!(failing_since(&hook_a).await, Some(t3));
    assert_eq!(failing_since(&hook_b).await, None);
    // A failure, then a success: the streak ends.
    let t4 = t0 + Duration::seconds(4);
    store
        .record_attempts(
            &[
                outcome(&to_a[3], &hook_a, retry(t4), t4),
                AttemptOutcome {
                    attempt: 2,
                    ..outcome(&to_a[0], &hook_a, AttemptResult::Delivered, t4)
                },
            ],
            Duration::days(5),
        )
        .await
        .unwrap();
    assert_eq!(failing_since(&hook_a).await, None);
    // Every attempt is logged, and each delivery holds its last state.
    let log = attempt_log(store.as_ref(), &s, &hook_a.id).await;
    assert_eq!(
        log.iter()
            .map(|a| (
                a.row.delivery_id.clone(),
                a.row.attempt,
                a.row.delivery_status
            ))
            .collect::<Vec<_>>(),
        vec![
            (to_a[0].clone(), 2, DeliveryStatus::Delivered),
            (to_a[3].clone(), 1, DeliveryStatus::Pending),
            (to_a[2].clone(), 1, DeliveryStatus::Pending),
            (to_a[1].clone(), 1, DeliveryStatus::Delivered),
            (to_a[0].clone(), 1, DeliveryStatus::Pending),
        ]
    );
    let due: Vec<String> = store
        .claim_due_deliveries(t4 + Duration::hours(1), t4 + Duration::hours(2), up_to(10))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        due.len(),
        2,
        "the two retried deliveries, not the delivered ones"
    );
    assert!(due.contains(&to_a[2]) && due.contains(&to_a[3]));
    // Two attempts at one delivery in one call: the later stands.
    let t5 = t0 + Duration::seconds(5);
    store
        .record_attempts(
            &[
                AttemptOutcome {
                    attempt: 2,
                    ..outcome(&to_a[3], &hook_a, retry(t5), t5)
                },
                AttemptOutcome {
                    attempt: 3,
                    ..outcome(&to_a[3], &hook_a, AttemptResult::Delivered, t5)
                },
            ],
            Duration::days(5),
        )
        .await
        .unwrap();
    let log = attempt_log(store.as_ref(), &s, &hook_a.id).await;
    assert_eq!(
        (log[0].row.attempt, log[0].row.delivery_status),
        (3, DeliveryStatus::Delivered)
    );
    assert_eq!(failing_since(&hook_a).await, None);
    // After the leases taken above run out, only the retried delivery is due.
    let later = t5 + Duration::hours(3);
    let due = store
        .claim_due_deliveries(later, later + Duration::hours(1), up_to(10))
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        vec![to_a[2].as_str()],
        "the delivered one is no longer due"
    );
}

async fn attempts_are_recorded_and_gone_endpoints_disabled(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let hook = endpoint(&s, "https://h.example/", vec![]);
    store.create_endpoint(&hook).await.unwrap();
    let test = oytel_core::webhooks::test_event(&a, Environment::Sandbox, now());
    let delivery = store.send_test_event(&test, &hook.id).await.unwrap();
    assert!(matches!(
        store.send_test_event(&test, "we_none").await,
        Err(StoreError::NotFound(_))
    ));
    let due = claim_all(store.as_ref()).await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, delivery);
    let outcome = |attempt, result, code| AttemptOutcome {
        delivery_id: delivery.clone(),
        endpoint_id: Some(hook.id.clone()),
        attempt,
        status_code: code,
        duration_ms: 12,
        error: Some("HTTP 500".into()),
        result,
        at: now(),
    };
    let retry_at = now() + Duration::seconds(5);
    store
        .record_one(
            &outcome(
                1,
                AttemptResult::Retry {
                    next_attempt_at: retry_at,
                },
                Some(500),
            ),
            Duration::days(5),
        )
        .await
        .unwrap();
    let failing = store.get_endpoint(&s, &hook.id).await.unwrap().unwrap();
    assert!(failing.failing_since.is_some() && failing.enabled);
    assert!(
        claim_all(store.as_ref()).await.is_empty(),
        "not due before its next attempt"
    );
    let later = retry_at + Duration::seconds(1);
    assert_eq!(
        store
            .claim_due_deliveries(later, later + Duration::seconds(60), up_to(10))
            .await
            .unwrap()[0]
            .attempts,
        1
    );
    store
        .record_one(
            &outcome(2, AttemptResult::Delivered, Some(200)),
            Duration::days(5),
        )
        .await
        .unwrap();
    assert!(store
        .get_endpoint(&s, &hook.id)
        .await
        .unwrap()
        .unwrap()
        .failing_since
        .is_none());
    let log = attempt_log(store.as_ref(), &s, &hook.id).await;
    assert_eq!(
        log.iter()
            .map(|a| (a.row.attempt, a.row.delivery_status))
            .collect::<Vec<_>>(),
        vec![(2, DeliveryStatus::Delivered), (1, DeliveryStatus::Pending)]
    );
    assert_eq!(log[1].row.next_attempt_at, Some(retry_at));
    assert_eq!(log[0].row.event_type, EventType::WebhookTest);
    assert!(store
        .list_attempts(
            &scope(&a, Environment::Production),
            None,
            PageRequest {
                limit: 10,
                before: None
            }
        )
        .await
        .unwrap()
        .is_empty());

    // 410: the endpoint is disabled and its other pending deliveries cancelled.
    let d1 = store
        .send_test_event(
            &oytel_core::webhooks::test_event(&a, Environment::Sandbox, now()),
            &hook.id,
        )
        .await
        .unwrap();
    store
        .send_test_event(
            &oytel_core::webhooks::test_event(&a, Environment::Sandbox, now()),
            &hook.id,
        )
        .await
        .unwrap();
    store
        .record_one(
            &AttemptOutcome {
                delivery_id: d1,
                ..outcome(1, AttemptResult::Gone, Some(410))
            },
            Duration::days(5),
        )
        .await
        .unwrap();
    let gone = store.get_endpoint(&s, &hook.id).await.unwrap().unwrap();
    assert!(!gone.enabled);
    assert!(gone.disabled_reason.unwrap().contains("410"));
    assert!(
        claim_all(store.as_ref()).await.is_empty(),
        "pending deliveries cancelled"
    );

    // Failing for longer than allowed disables too.
    let slow = endpoint(&s, "https://slow.example/", vec![]);
    store.create_endpoint(&slow).await.unwrap();
    let d = store
        .send_test_event(
            &oytel_core::webhooks::test_event(&a, Environment::Sandbox, now()),
            &slow.id,
        )
        .await
        .unwrap();
    let mut o = AttemptOutcome {
        delivery_id: d,
        endpoint_id: Some(slow.id.clone()),
        ..outcome(
            1,
            AttemptResult::Retry {
                next_attempt_at: now(),
            },
            None,
        )
    };
    store.record_one(&o, Duration::days(5)).await.unwrap();
    o.at = now() + Duration::days(6);
    o.attempt = 2;
    store.record_one(&o, Duration::days(5)).await.unwrap();
    let off = store.get_endpoint(&s, &slow.id).await.unwrap().unwrap();
    assert!(!off.enabled && off.disabled_reason.unwrap().contains("failed since"));
}

async fn endpoints_and_signing_secrets(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let b = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let e1 = endpoint(
        &s,
        "https://one.example/",
        vec![EventType::EsimExpired, EventType::UsageThreshold],
    );
    let e2 = endpoint(&s, "https://two.example/", vec![]);
    store.create_endpoint(&e1).await.unwrap();
    store.create_endpoint(&e2).await.unwrap();
    assert_eq!(
        store.list_endpoints(&s).await.unwrap(),
        vec![e1.clone(), e2.clone()]
    );
    assert!(store
        .list_endpoints(&scope(&b, Environment::Sandbox))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .get_endpoint(&scope(&b, Environment::Sandbox), &e1.id)
        .await
        .unwrap()
        .is_none());
    let mut changed = e1.clone();
    changed.url = "https://new.example/".into();
    changed.previous_secret = Some(e1.secret.clone());
    changed.secret = oytel_core::webhooks::generate_secret();
    assert!(store.update_endpoint(&changed).await.unwrap());
    assert_eq!(
        store.get_endpoint(&s, &e1.id).await.unwrap().unwrap(),
        changed
    );
    let mut theirs = changed.clone();
    theirs.partner_id = b.clone();
    assert!(
        !store.update_endpoint(&theirs).await.unwrap(),
        "scoped by partner"
    );
    assert!(!store
        .delete_endpoint(&scope(&b, Environment::Sandbox), &e1.id)
        .await
        .unwrap());
    assert!(store.delete_endpoint(&s, &e1.id).await.unwrap());
    assert!(store.get_endpoint(&s, &e1.id).await.unwrap().is_none());

    let first = store.esim_signing_secret(&s, "whsec_first").await.unwrap();
    assert_eq!(first.secret, "whsec_first");
    assert_eq!(
        store.esim_signing_secret(&s, "whsec_other").await.unwrap(),
        first,
        "created once"
    );
    let until = now() + Duration::hours(24);
    let rotated = store
        .rotate_esim_signing_secret(&s, "whsec_second", until)
        .await
        .unwrap();
    assert_eq!(
        (rotated.secret.as_str(), rotated.previous_secret.as_deref()),
        ("whsec_second", Some("whsec_first"))
    );
    assert_eq!(
        rotated.signing_at(now()),
        vec!["whsec_second".to_owned(), "whsec_first".to_owned()]
    );
    assert_eq!(
        rotated.signing_at(until + Duration::seconds(1)),
        vec!["whsec_second".to_owned()]
    );
}

async fn expiries_are_found_and_applied_once(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let esim = provisioned(store.as_ref(), &s).await;
    assert!(store.due_expiries(now(), 10).await.unwrap().is_empty());
    let later = esim.expires_at + Duration::seconds(1);
    assert_eq!(
        store.due_expiries(later, 10).await.unwrap(),
        vec![esim.id.clone()]
    );
    let results: Vec<_> = futures_join(store.clone(), esim.id.clone(), later).await;
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, TransitionResult::Done(_)))
            .count(),
        1,
        "expired once"
    );
    assert!(store.due_expiries(later, 10).await.unwrap().is_empty());
}

async fn futures_join(
    store: Arc<dyn Storage>,
    id: String,
    at: chrono::DateTime<Utc>,
) -> Vec<TransitionResult> {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                store
                    .transition_esim(&id, EsimStatus::Expired, at)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn partner_limits_are_stored_and_returned_with_the_key(store: Arc<dyn Storage>) {
    use oytel_core::limits::LimitOverrides;
    let a = partner(store.as_ref()).await;
    assert_eq!(
        store.partner_limits(&a).await.unwrap(),
        Some(LimitOverrides::default())
    );
    assert_eq!(store.partner_limits("ptn_none").await.unwrap(), None);
    let key = oytel_core::keys::generate_api_key(&a, Environment::Sandbox);
    store.create_api_key(&key.record).await.unwrap();
    assert_eq!(
        store
            .find_api_key(&key.record.hash)
            .await
            .unwrap()
            .unwrap()
            .limits,
        LimitOverrides::default()
    );
    let raised = LimitOverrides {
        provision_per_hour: Some(5_000),
        status_per_hour: None,
        burst_per_second: Some(200),
    };
    assert!(store.set_partner_limits(&a, &raised).await.unwrap());
    assert!(!store.set_partner_limits("ptn_none", &raised).await.unwrap());
    assert_eq!(store.partner_limits(&a).await.unwrap(), Some(raised));
    assert_eq!(
        store
            .find_api_key(&key.record.hash)
            .await
            .unwrap()
            .unwrap()
            .limits,
        raised
    );
}

async fn the_auth_epoch_moves_with_every_change_to_keys_and_partners(store: Arc<dyn Storage>) {
    use oytel_core::limits::LimitOverrides;
    let start = store.auth_epoch().await.unwrap();
    // Inserts and the partner's money leave earlier key lookups valid.
    let a = partner(store.as_ref()).await;
    let key = oytel_core::keys::generate_api_key(&a, Environment::Production);
    store.create_api_key(&key.record).await.unwrap();
    store.credit(&a, 10_000, "top-up", now()).await.unwrap();
    assert_eq!(store.auth_epoch().await.unwrap(), start);
    // A revocation and a change of limits each invalidate them.
    assert!(store.revoke_api_key(&key.record.id, now()).await.unwrap());
    let revoked = store.auth_epoch().await.unwrap();
    assert!(revoked > start, "{revoked} after {start}");
    let raised = LimitOverrides {
        burst_per_second: Some(50),
        ..LimitOverrides::default()
    };
    assert!(store.set_partner_limits(&a, &raised).await.unwrap());
    let limited = store.auth_epoch().await.unwrap();
    assert!(limited > revoked, "{limited} after {revoked}");
}

async fn a_revocation_waits_for_every_leased_instance_and_no_longer(store: Arc<dyn Storage>) {
    use std::time::Duration as StdDuration;
    let long = StdDuration::from_secs(30);
    let a = partner(store.as_ref()).await;
    let key = oytel_core::keys::generate_api_key(&a, Environment::Production);
    store.create_api_key(&key.record).await.unwrap();
    let before = store.auth_epoch().await.unwrap();
    // Two instances serve the current epoch; one gave its lease up, one let it run out.
    store
        .renew_epoch_lease("ins_a", before, long)
        .await
        .unwrap();
    store
        .renew_epoch_lease("ins_b", before, long)
        .await
        .unwrap();
    store
        .renew_epoch_lease("ins_gone", before, long)
        .await
        .unwrap();
    store.release_epoch_lease("ins_gone").await.unwrap();
    store
        .renew_epoch_lease("ins_lapsed", before, StdDuration::from_millis(1))
        .await
        .unwrap();
    let revoking = tokio::spawn({
        let (store, id) = (store.clone(), key.record.id.clone());
        async move { store.revoke_api_key(&id, now()).await }
    });
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(!revoking.is_finished(), "waits for the live leases");
    let after = store.auth_epoch().await.unwrap();
    assert!(after > before);
    store.renew_epoch_lease("ins_a", after, long).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert!(!revoking.is_finished(), "ins_b still serves the old epoch");
    store.renew_epoch_lease("ins_b", after, long).await.unwrap();
    let revoked = tokio::time::timeout(StdDuration::from_secs(10), revoking)
        .await
        .expect("returns once every live lease serves the new epoch")
        .unwrap();
    assert!(revoked.unwrap());
    // With no lease held, a change of limits does not wait at all.
    let raised = oytel_core::limits::LimitOverrides {
        burst_per_second: Some(20),
        ..Default::default()
    };
    store.release_epoch_lease("ins_a").await.unwrap();
    store.release_epoch_lease("ins_b").await.unwrap();
    let limited = tokio::time::timeout(
        StdDuration::from_secs(10),
        store.set_partner_limits(&a, &raised),
    )
    .await
    .expect("no lease to wait for");
    assert!(limited.unwrap());
}

/// How many deliveries are due `minutes` from now (claiming them for 30 s).
async fn due_in(store: &dyn Storage, minutes: i64) -> usize {
    let at = now() + Duration::minutes(minutes);
    store
        .claim_due_deliveries(at, at + Duration::seconds(30), up_to(100))
        .await
        .unwrap()
        .len()
}

async fn deleting_or_disabling_an_endpoint_cancels_its_pending_deliveries(store: Arc<dyn Storage>) {
    let (a, b) = (partner(store.as_ref()).await, partner(store.as_ref()).await);
    let (s, other) = (
        scope(&a, Environment::Sandbox),
        scope(&b, Environment::Sandbox),
    );
    let hook = endpoint(&s, "https://hooks.example/cancel", vec![]);
    store.create_endpoint(&hook).await.unwrap();
    let test_event = || oytel_core::webhooks::test_event(&a, Environment::Sandbox, now());
    store
        .send_test_event(&test_event(), &hook.id)
        .await
        .unwrap();
    // Another partner can neither delete nor disable it, nor cancel its deliveries.
    assert!(!store.delete_endpoint(&other, &hook.id).await.unwrap());
    let foreign = EndpointRecord {
        partner_id: b.clone(),
        enabled: false,
        ..hook.clone()
    };
    assert!(!store.update_endpoint(&foreign).await.unwrap());
    assert_eq!(due_in(store.as_ref(), 1).await, 1);
    // Disabled by its owner: the pending delivery (even one leased to a worker) is cancelled.
    let off = EndpointRecord {
        enabled: false,
        ..hook.clone()
    };
    assert!(store.update_endpoint(&off).await.unwrap());
    assert_eq!(due_in(store.as_ref(), 2).await, 0);
    // Enabled again, then deleted: cancelled too.
    assert!(store.update_endpoint(&hook).await.unwrap());
    store
        .send_test_event(&test_event(), &hook.id)
        .await
        .unwrap();
    assert!(store.delete_endpoint(&s, &hook.id).await.unwrap());
    assert_eq!(due_in(store.as_ref(), 3).await, 0);
}

async fn quotas_admit_exactly_the_limit(quotas: Arc<dyn oytel_core::limits::Quotas>) {
    use oytel_core::limits::{QuotaKey, QuotaKind};
    let key = QuotaKey {
        partner_id: new_id("ptn"),
        environment: Environment::Production,
        kind: QuotaKind::Provision,
    };
    let at = now();
    let tasks: Vec<_> = (0..150)
        .map(|_| {
            let (quotas, key) = (quotas.clone(), key.clone());
            tokio::spawn(async move { quotas.consume(&key, 100, at).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    let mut remaining = HashSet::new();
    for task in tasks {
        let used = task.await.unwrap();
        if used.allowed {
            admitted += 1;
            assert!(
                remaining.insert(used.remaining),
                "each admission sees its own count"
            );
        }
        assert_eq!(used.limit, 100);
        assert!(used.reset_at > at && used.reset_at <= at + Duration::hours(1));
    }
    assert_eq!(admitted, 100);
    // A unit given back (a replay) admits exactly one more; one from an ended window, none.
    quotas.refund(&key, at - Duration::hours(1)).await.unwrap();
    assert!(!quotas.consume(&key, 100, at).await.unwrap().allowed);
    quotas.refund(&key, at).await.unwrap();
    let again = quotas.consume(&key, 100, at).await.unwrap();
    assert!(again.allowed && again.remaining == 0, "{again:?}");
    assert!(!quotas.consume(&key, 100, at).await.unwrap().allowed);
    let status = QuotaKey {
        kind: QuotaKind::Status,
        ..key.clone()
    };
    assert!(
        quotas.consume(&status, 100, at).await.unwrap().allowed,
        "kinds count apart"
    );
    // Several units at once, as many as are left.
    let block = QuotaKey {
        partner_id: new_id("ptn"),
        ..key.clone()
    };
    let mut grants = Vec::new();
    for _ in 0..4 {
        let (granted, used) = quotas.reserve(&block, 10, 4, at).await.unwrap();
        grants.push((granted, used.allowed, used.remaining));
    }
    assert_eq!(
        grants,
        [(4, true, 6), (4, true, 2), (2, true, 0), (0, false, 0)]
    );
    let next = at + Duration::hours(1);
    assert!(
        quotas.consume(&key, 100, next).await.unwrap().allowed,
        "a new window starts whole"
    );
    quotas.purge(next).await.unwrap();
    assert!(!quotas.consume(&key, 0, next).await.unwrap().allowed);
}

/// Polls `future` until it has been pending `polls` times, then drops it (what a client
/// disconnect or a timeout does to a request's future at its `polls`-th await); its output
/// if it finished first.
async fn dropped_after<F: std::future::Future>(future: F, polls: usize) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut pending = 0;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending if pending + 1 >= polls => std::task::Poll::Ready(None),
        std::task::Poll::Pending => {
            pending += 1;
            std::task::Poll::Pending
        }
    })
    .await
}

/// A write whose future is dropped at any await point, from the first to after the commit,
/// either committed whole or wrote nothing, and the connection it used goes back to the pool
/// outside any transaction: the next writes neither fail nor wait for a lock nobody releases.
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
    assert!(
        whole > 0 && nothing > 0,
        "the drops spanned before and after the commit"
    );
}
