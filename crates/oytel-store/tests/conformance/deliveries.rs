//! The dispatcher's claims of due deliveries and the record of their attempts.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use oytel_core::clock::now;
use oytel_core::ports::*;
use oytel_core::{Environment, Scope};
use oytel_types::{DeliveryStatus, EventType};

use crate::support::*;

conformance!(
    due_deliveries_are_claimed_by_one_worker,
    claims_take_turns_between_partners_and_keep_destinations_apart,
    a_round_of_attempts_is_recorded_in_order,
    attempts_are_recorded_and_gone_endpoints_disabled,
    a_delivery_carries_the_trace_context_its_event_was_written_under,
);

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

/// Sends `count` test events to each endpoint, oldest first, endpoint by endpoint.
async fn test_events(store: &dyn Storage, hooks: &[&EndpointRecord], count: usize) {
    for hook in hooks {
        for _ in 0..count {
            let test = oytel_core::webhooks::test_event(&hook.partner_id, hook.environment, now());
            store.send_test_event(&test, &hook.id).await.unwrap();
        }
    }
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

async fn a_delivery_carries_the_trace_context_its_event_was_written_under(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let hook = endpoint(&s, "https://hooks.example/traced", vec![]);
    store.create_endpoint(&hook).await.unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traced = oytel_core::tracecontext::scope(Some(traceparent.to_owned()), async {
        oytel_core::webhooks::test_event(&a, Environment::Sandbox, now())
    })
    .await;
    store.send_test_event(&traced, &hook.id).await.unwrap();
    let untraced = oytel_core::webhooks::test_event(&a, Environment::Sandbox, now());
    store.send_test_event(&untraced, &hook.id).await.unwrap();

    let at = now() + Duration::seconds(1);
    let due = store
        .claim_due_deliveries(at, at + Duration::seconds(60), up_to(10))
        .await
        .unwrap();
    let carried: Vec<(&str, Option<&str>)> = due
        .iter()
        .map(|d| (d.event_id.as_str(), d.traceparent.as_deref()))
        .collect();
    assert_eq!(
        carried,
        [
            (traced.id.as_str(), Some(traceparent)),
            (untraced.id.as_str(), None)
        ]
    );
}
