//! Settings written once.

use std::sync::Arc;

use oytel_core::ports::*;

conformance!(settings_are_set_once,);

async fn settings_are_set_once(store: Arc<dyn Storage>) {
    assert!(store.set_setting_once("demo_seeded", "1").await.unwrap());
    assert!(!store.set_setting_once("demo_seeded", "2").await.unwrap());
    assert!(store.set_setting_once("other", "1").await.unwrap());
}
