//! Web console sessions: stored by the hash of their token, touched, ended one by one or
//! when their time is up.

use std::sync::Arc;

use chrono::Duration;
use oytel_core::clock::now;
use oytel_core::ports::*;
use oytel_core::sessions::{open, SessionKind, IDLE};

conformance!(
    a_session_is_found_by_its_hash_touched_and_ended,
    ended_sessions_are_swept_and_live_ones_kept,
);

async fn a_session_is_found_by_its_hash_touched_and_ended(store: Arc<dyn Storage>) {
    let at = now();
    let (token, session) = open(SessionKind::Partner, Some("keyhash".into()), at);
    store.create_session(&session).await.unwrap();
    let found = store.find_session(&session.token_hash).await.unwrap();
    assert_eq!(found.as_ref(), Some(&session));
    assert_eq!(
        store.find_session(&token).await.unwrap(),
        None,
        "the token itself finds nothing"
    );

    let later = at + Duration::minutes(5);
    store
        .touch_session(&session.token_hash, later)
        .await
        .unwrap();
    let touched = store
        .find_session(&session.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.last_seen_at, later);

    assert!(store.delete_session(&session.token_hash).await.unwrap());
    assert!(!store.delete_session(&session.token_hash).await.unwrap());
    assert_eq!(store.find_session(&session.token_hash).await.unwrap(), None);
}

async fn ended_sessions_are_swept_and_live_ones_kept(store: Arc<dyn Storage>) {
    let at = now();
    let (_, live) = open(SessionKind::Operator, None, at);
    let (_, idle) = open(
        SessionKind::Operator,
        None,
        at - IDLE - Duration::seconds(1),
    );
    let (_, mut over) = open(SessionKind::Partner, Some("k".into()), at);
    over.expires_at = at - Duration::seconds(1);
    for s in [&live, &idle, &over] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(store.delete_ended_sessions(at).await.unwrap(), 2);
    assert!(store
        .find_session(&live.token_hash)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_session(&idle.token_hash)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_session(&over.token_hash)
        .await
        .unwrap()
        .is_none());
}
