//! Settings written once, and the figures the operator reads (metrics, the console).

use std::sync::Arc;

use oytel_core::clock::now;
use oytel_core::ports::*;
use oytel_core::Environment;

use crate::support::*;

conformance!(
    settings_are_set_once,
    the_figures_count_the_backlog_and_the_disabled_endpoints,
);

async fn settings_are_set_once(store: Arc<dyn Storage>) {
    assert!(store.set_setting_once("demo_seeded", "1").await.unwrap());
    assert!(!store.set_setting_once("demo_seeded", "2").await.unwrap());
    assert!(store.set_setting_once("other", "1").await.unwrap());
}

async fn the_figures_count_the_backlog_and_the_disabled_endpoints(store: Arc<dyn Storage>) {
    let empty = store.figures(now()).await.unwrap();
    assert_eq!((empty.pending_deliveries, empty.disabled_endpoints), (0, 0));
    let a = partner(store.as_ref()).await;
    let s = scope(&a, Environment::Sandbox);
    let live = endpoint(&s, "https://hooks.example/live", vec![]);
    let mut off = endpoint(&s, "https://hooks.example/off", vec![]);
    off.enabled = false;
    off.disabled_reason = Some("paused".into());
    store.create_endpoint(&live).await.unwrap();
    store.create_endpoint(&off).await.unwrap();
    let test = oytel_core::webhooks::test_event(&a, Environment::Sandbox, now());
    store.send_test_event(&test, &live.id).await.unwrap();
    let figures = store.figures(now()).await.unwrap();
    assert_eq!(
        (figures.pending_deliveries, figures.disabled_endpoints),
        (1, 1)
    );
}
