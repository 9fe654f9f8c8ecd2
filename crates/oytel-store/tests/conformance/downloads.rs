//! The SM-DP+'s reports on downloads: kept once per call identifier, applied to the eSIM of
//! their ICCID with their event and any activation, in one transaction.

use std::sync::Arc;

use chrono::Duration;
use oytel_core::clock::now;
use oytel_core::downloads::{self, NoticeOutcome, ProfileNotice};
use oytel_core::ports::*;
use oytel_core::{Environment, EsimStatus, Scope};
use oytel_types::{EventType, ProfileState};

use crate::support::*;

conformance!(
    reports_move_the_profile_activate_the_esim_and_send_their_events,
    a_repeated_late_or_unknown_report_changes_nothing,
);

fn report(iccid: &str, call_id: &str, point: u32, success: bool, ago_s: i64) -> ProfileNotice {
    ProfileNotice {
        requester_id: "smdp.test".into(),
        call_id: call_id.into(),
        iccid: iccid.into(),
        eid: Some("89049032000000000000000000000042".into()),
        point,
        success,
        result: if success {
            "success".into()
        } else {
            "8.1/6.4".into()
        },
        happened_at: now() - Duration::seconds(ago_s),
        received_at: now(),
        effect: downloads::effect(point, success, downloads::DEFAULT_DELETION_POINT),
    }
}

/// An eSIM whose profile an SM-DP+ released, with an endpoint listening to its events.
async fn released_esim(store: &dyn Storage) -> (Scope, EsimRecord) {
    let scope = scope(&partner(store).await, Environment::Production);
    store
        .create_endpoint(&endpoint(
            &scope,
            "https://hooks.example/profile",
            vec![
                EventType::EsimProfileDownloaded,
                EventType::EsimInstallationFailed,
                EventType::EsimActivated,
            ],
        ))
        .await
        .unwrap();
    let mut w = write(&scope, 100, SANDBOX, None);
    w.esim.environment = scope.environment;
    w.order.environment = scope.environment;
    w.esim.profile = Some(downloads::released());
    w.esim.webhook_url = None;
    store.provision(&w).await.unwrap();
    (scope, w.esim)
}

async fn events(store: &dyn Storage) -> Vec<String> {
    drain_due(store)
        .await
        .into_iter()
        .map(|d| {
            let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
            payload["event"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn reports_move_the_profile_activate_the_esim_and_send_their_events(store: Arc<dyn Storage>) {
    let (scope, esim) = released_esim(store.as_ref()).await;
    let read = || async { store.get_esim(&scope, &esim.id).await.unwrap().unwrap() };
    assert_eq!(read().await.profile.unwrap().state, ProfileState::Released);

    let applied = NoticeOutcome::Applied {
        esim_id: esim.id.clone(),
    };
    let downloaded = report(&esim.iccid, "n-3", 3, true, 10);
    assert_eq!(
        store.record_profile_notice(&downloaded).await.unwrap(),
        applied
    );
    let profile = read().await.profile.unwrap();
    assert_eq!(profile.state, ProfileState::Downloaded);
    assert_eq!(profile.eid, downloaded.eid);
    assert_eq!(events(store.as_ref()).await, ["esim.profile_downloaded"]);

    let installed = report(&esim.iccid, "n-4", 4, true, 5);
    assert_eq!(
        store.record_profile_notice(&installed).await.unwrap(),
        applied
    );
    let now_active = read().await;
    assert_eq!(now_active.status, EsimStatus::Active);
    assert_eq!(now_active.profile.unwrap().state, ProfileState::Installed);
    assert_eq!(events(store.as_ref()).await, ["esim.activated"]);

    let deleted = report(&esim.iccid, "n-5", 5, true, 1);
    assert_eq!(
        store.record_profile_notice(&deleted).await.unwrap(),
        applied
    );
    assert_eq!(read().await.profile.unwrap().state, ProfileState::Deleted);
    assert!(
        events(store.as_ref()).await.is_empty(),
        "a deletion sends nothing"
    );
}

async fn a_repeated_late_or_unknown_report_changes_nothing(store: Arc<dyn Storage>) {
    let (scope, esim) = released_esim(store.as_ref()).await;
    let failed = report(&esim.iccid, "n-1", 3, false, 10);
    assert!(matches!(
        store.record_profile_notice(&failed).await.unwrap(),
        NoticeOutcome::Applied { .. }
    ));
    assert_eq!(events(store.as_ref()).await, ["esim.installation_failed"]);
    let profile = store
        .get_esim(&scope, &esim.id)
        .await
        .unwrap()
        .unwrap()
        .profile;
    assert_eq!(
        profile
            .as_ref()
            .map(|p| (p.state, p.last_result.as_deref())),
        Some((ProfileState::Error, Some("8.1/6.4")))
    );
    // The same call again: not applied twice.
    assert_eq!(
        store.record_profile_notice(&failed).await.unwrap(),
        NoticeOutcome::Repeated
    );
    // Older than the last applied: kept, not applied.
    let late = report(&esim.iccid, "n-0", 3, true, 60);
    assert_eq!(
        store.record_profile_notice(&late).await.unwrap(),
        NoticeOutcome::Kept
    );
    // A point that changes nothing, and an ICCID no eSIM has.
    let other = report(&esim.iccid, "n-9", 9, true, 0);
    assert_eq!(
        store.record_profile_notice(&other).await.unwrap(),
        NoticeOutcome::Kept
    );
    let stranger = report("8999000000000000999", "n-x", 3, true, 0);
    assert_eq!(
        store.record_profile_notice(&stranger).await.unwrap(),
        NoticeOutcome::UnknownIccid
    );
    assert!(events(store.as_ref()).await.is_empty());
    let after = store.get_esim(&scope, &esim.id).await.unwrap().unwrap();
    assert_eq!(
        (after.status, after.profile),
        (EsimStatus::Provisioned, profile)
    );
}
