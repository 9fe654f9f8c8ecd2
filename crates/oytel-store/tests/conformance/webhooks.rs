//! Webhook endpoints, signing secrets, and the fan-out of events to deliveries.

use std::sync::Arc;

use chrono::Duration;
use oytel_core::clock::now;
use oytel_core::ports::*;
use oytel_core::{Environment, EsimStatus};
use oytel_types::EventType;

use crate::support::*;

conformance!(
    events_fan_out_to_subscribed_enabled_endpoints_and_the_esim_url,
    endpoints_and_signing_secrets,
    deleting_or_disabling_an_endpoint_cancels_its_pending_deliveries,
);

/// How many deliveries are due `minutes` from now (claiming them for 30 s).
async fn due_in(store: &dyn Storage, minutes: i64) -> usize {
    let at = now() + Duration::minutes(minutes);
    store
        .claim_due_deliveries(at, at + Duration::seconds(30), up_to(100))
        .await
        .unwrap()
        .len()
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
