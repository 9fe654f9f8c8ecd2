//! Partners, API keys and their limits, and the auth epoch that a revocation waits on.

use std::sync::Arc;

use oytel_core::clock::now;
use oytel_core::ports::*;
use oytel_core::Environment;

use crate::support::*;

conformance!(
    partners_and_keys,
    partner_limits_are_stored_and_returned_with_the_key,
    the_auth_epoch_moves_with_every_change_to_keys_and_partners,
    a_revocation_waits_for_every_leased_instance_and_no_longer,
);

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
    // A grace period's end, set on a key, is returned with it and invalidates lookups too.
    let replaced = oytel_core::keys::generate_api_key(&a, Environment::Production);
    store.create_api_key(&replaced.record).await.unwrap();
    let until = now() + chrono::Duration::hours(2);
    assert!(store
        .expire_api_key(&replaced.record.id, until)
        .await
        .unwrap());
    assert!(store.auth_epoch().await.unwrap() > limited);
    let owner = store
        .find_api_key(&replaced.record.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((owner.expires_at, owner.revoked), (Some(until), false));
    assert!(
        !store.expire_api_key(&key.record.id, until).await.unwrap(),
        "a revoked key gets no grace"
    );
    assert!(
        !store
            .expire_api_key(&replaced.record.id, until + chrono::Duration::hours(1))
            .await
            .unwrap(),
        "a grace is never extended, so an expired key is never revived"
    );
    let sooner = now() + chrono::Duration::minutes(5);
    assert!(store
        .expire_api_key(&replaced.record.id, sooner)
        .await
        .unwrap());
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
