//! eSIM reads, lists and paging, state changes, usage and expiry.

use std::sync::Arc;

use chrono::{Duration, Utc};
use oytel_core::catalog::Term;
use oytel_core::clock::now;
use oytel_core::ports::*;
use oytel_core::{Environment, EsimStatus};

use crate::support::*;

conformance!(
    reads_are_scoped_to_partner_and_environment,
    pagination_edges_and_filters,
    transitions_follow_the_state_machine_and_write_events,
    usage_is_applied_once_and_thresholds_announced_once,
    expiries_are_found_and_applied_once,
    suspensions_are_held_by_who_made_them_and_announced_to_subscribers,
);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_corrupt_stored_number_is_an_error_never_a_default() {
    let db = oytel_store::testing::fresh(oytel_store::testing::Backend::Sqlite)
        .await
        .unwrap();
    a_corrupt_stored_number_is_an_error_never_a_default(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(oytel_postgres),
    ignore = "needs PostgreSQL: build the tests with OYTEL_TEST_DATABASE_URL set (export OYTEL_TEST_DATABASE_URL=$(.ci/postgres start))"
)]
async fn postgres_a_corrupt_stored_number_is_an_error_never_a_default() {
    if let Some(db) = oytel_store::testing::fresh(oytel_store::testing::Backend::Postgres).await {
        a_corrupt_stored_number_is_an_error_never_a_default(db).await;
    }
}

/// A stored value out of its field's range (a term of 2 months, a negative count), written
/// by hand or by a bug, makes the read fail with what is wrong; it is never read as 0.
async fn a_corrupt_stored_number_is_an_error_never_a_default(
    db: oytel_store::testing::TestDatabase,
) {
    let store = db.store.as_ref();
    let a = partner(store).await;
    let sandbox = scope(&a, Environment::Sandbox);
    let esim = provisioned(store, &sandbox).await;
    for (column, value, message) in [
        ("term_months", "2", "corrupt row: term_months = 2"),
        ("data_used_mb", "-5", "corrupt row: data_used_mb = -5"),
    ] {
        db.execute(&format!(
            "UPDATE esims SET {column} = {value} WHERE id = '{}'",
            esim.id
        ))
        .await;
        match store.get_esim(&sandbox, &esim.id).await {
            Err(StoreError::Other(m)) => assert_eq!(m, message),
            other => panic!("{column} = {value} read as {other:?}"),
        }
        assert!(store.get_esim_status(&sandbox, &esim.id).await.is_err());
        db.execute(&format!(
            "UPDATE esims SET term_months = 1, data_used_mb = 0 WHERE id = '{}'",
            esim.id
        ))
        .await;
    }
    assert_eq!(
        store
            .get_esim(&sandbox, &esim.id)
            .await
            .unwrap()
            .unwrap()
            .term,
        Term::OneMonth
    );
}

/// Suspensions follow `lifecycle::decide_suspension`, refuse usage, and are announced to the
/// endpoints that list `esim.suspended` / `esim.resumed` only.
async fn suspensions_are_held_by_who_made_them_and_announced_to_subscribers(
    store: Arc<dyn Storage>,
) {
    use oytel_core::lifecycle::{Suspender, SuspensionChange};
    use oytel_types::EventType;
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let listing = endpoint(
        &s,
        "https://hooks.example/suspensions",
        vec![EventType::EsimSuspended, EventType::EsimResumed],
    );
    store.create_endpoint(&listing).await.unwrap();
    store
        .create_endpoint(&endpoint(&s, "https://hooks.example/all", vec![]))
        .await
        .unwrap();
    let esim = provisioned(store.as_ref(), &s).await;
    let suspend = |by| SuspensionChange::Suspend {
        by,
        reason: Some("fraud check".into()),
    };
    let resume = |by| SuspensionChange::Resume { by };
    let change = |change: SuspensionChange| {
        let (store, s, id) = (store.clone(), s.clone(), esim.id.clone());
        async move {
            store
                .change_suspension(Some(s), &id, &change, now())
                .await
                .unwrap()
        }
    };
    assert!(matches!(
        change(suspend(Suspender::Partner)).await,
        SuspensionResult::Invalid(_)
    ));
    store
        .transition_esim(&esim.id, EsimStatus::Active, now())
        .await
        .unwrap();
    drain_due(store.as_ref()).await;

    let changed = |r: SuspensionResult| match r {
        SuspensionResult::Done { esim, changed } => (esim.status, changed),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        changed(change(suspend(Suspender::Partner)).await),
        (EsimStatus::Suspended, true)
    );
    let usage = UsageInput {
        record_id: "cdr-suspended".into(),
        data_mb: 5,
        calls: 0,
        sms: 0,
        recorded_at: now(),
    };
    assert_eq!(
        store.record_usage(&esim.id, &usage, now()).await.unwrap(),
        UsageResult::NotActive(EsimStatus::Suspended)
    );
    // The operator takes the suspension over; the partner can no longer lift it.
    let operator = store
        .change_suspension(None, &esim.id, &suspend(Suspender::Operator), now())
        .await
        .unwrap();
    assert_eq!(changed(operator), (EsimStatus::Suspended, true));
    assert_eq!(
        change(resume(Suspender::Partner)).await,
        SuspensionResult::HeldByOperator
    );
    let elsewhere = scope(&a, Environment::Production);
    assert_eq!(
        store
            .change_suspension(
                Some(elsewhere),
                &esim.id,
                &resume(Suspender::Operator),
                now()
            )
            .await
            .unwrap(),
        SuspensionResult::NotFound
    );
    assert_eq!(
        changed(change(resume(Suspender::Operator)).await),
        (EsimStatus::Active, true)
    );
    // Usage refused while suspended stays refused when sent again after the resume.
    assert_eq!(
        store.record_usage(&esim.id, &usage, now()).await.unwrap(),
        UsageResult::Duplicate
    );
    assert_eq!(
        changed(change(resume(Suspender::Partner)).await),
        (EsimStatus::Active, false),
        "a repeated resume changes nothing"
    );
    assert_eq!(
        changed(change(suspend(Suspender::Partner)).await),
        (EsimStatus::Suspended, true)
    );
    assert_eq!(
        changed(change(suspend(Suspender::Partner)).await),
        (EsimStatus::Suspended, false)
    );
    // Suspended, resumed, suspended: to the endpoint that lists them, and nowhere else.
    let due = drain_due(store.as_ref()).await;
    let sent: Vec<(String, String)> = due
        .iter()
        .map(|d| {
            let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
            (d.url.clone(), payload["event"].as_str().unwrap().to_owned())
        })
        .collect();
    let to = |event: &str| {
        (
            "https://hooks.example/suspensions".to_owned(),
            event.to_owned(),
        )
    };
    assert_eq!(
        sent,
        [
            to("esim.suspended"),
            to("esim.resumed"),
            to("esim.suspended")
        ]
    );
}
