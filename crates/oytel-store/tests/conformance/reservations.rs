//! SM-DP+ reservations: every change is conditional on the state it moves from, the
//! provisioning transaction sells one or commits nothing, and the reconciler finds what is
//! stale or due.

use std::sync::Arc;

use chrono::Duration;
use oytel_core::clock::now;
use oytel_core::ports::*;
use oytel_core::profiles::{Reservation, ReservationState};
use oytel_core::Environment;

use crate::support::*;

conformance!(
    a_reservation_moves_only_from_the_state_it_is_in,
    a_provisioning_sells_its_reservation_or_commits_nothing,
    the_reconciler_finds_stale_and_due_reservations_only,
);

async fn reservation(store: &dyn Storage, scope: &oytel_core::Scope) -> Reservation {
    let r = Reservation::new(scope, "uk-5g", now());
    store.create_reservation(&r).await.unwrap();
    r
}

async fn a_reservation_moves_only_from_the_state_it_is_in(store: Arc<dyn Storage>) {
    let scope = scope(&partner(store.as_ref()).await, Environment::Production);
    let mut r = reservation(store.as_ref(), &scope).await;
    r.state = ReservationState::Ordered;
    r.iccid = Some("8944000000000000017".into());
    assert!(store
        .advance_reservation(&r, ReservationState::Ordering)
        .await
        .unwrap());
    // A second move from `ordering` (the reconciler, late) finds it moved.
    r.state = ReservationState::Cancelling;
    assert!(!store
        .advance_reservation(&r, ReservationState::Ordering)
        .await
        .unwrap());
    assert_eq!(
        store.reservation_counts().await.unwrap(),
        [(ReservationState::Ordered, 1)]
    );
}

async fn a_provisioning_sells_its_reservation_or_commits_nothing(store: Arc<dyn Storage>) {
    let scope = scope(&partner(store.as_ref()).await, Environment::Sandbox);
    let mut r = reservation(store.as_ref(), &scope).await;
    r.state = ReservationState::Released;
    assert!(store
        .advance_reservation(&r, ReservationState::Ordering)
        .await
        .unwrap());
    let mut w = write(&scope, 100, SANDBOX, None);
    w.reservation = Some(r.id.clone());
    assert!(matches!(
        store.provision(&w).await.unwrap(),
        ProvisionResult::Committed { .. }
    ));
    assert_eq!(
        store.reservation_counts().await.unwrap(),
        [(ReservationState::Sold, 1)]
    );

    // Taken over before the transaction: nothing of the order is written.
    let mut taken = reservation(store.as_ref(), &scope).await;
    taken.state = ReservationState::Cancelling;
    assert!(store
        .advance_reservation(&taken, ReservationState::Ordering)
        .await
        .unwrap());
    let mut w = write(&scope, 100, SANDBOX, None);
    w.reservation = Some(taken.id.clone());
    assert_eq!(
        store.provision(&w).await.unwrap(),
        ProvisionResult::ReservationLost
    );
    assert!(store
        .get_order(&scope, &w.order.id)
        .await
        .unwrap()
        .is_none());
    assert!(store.get_esim(&scope, &w.esim.id).await.unwrap().is_none());
}

async fn the_reconciler_finds_stale_and_due_reservations_only(store: Arc<dyn Storage>) {
    let scope = scope(&partner(store.as_ref()).await, Environment::Production);
    let fresh = reservation(store.as_ref(), &scope).await;
    let mut due = reservation(store.as_ref(), &scope).await;
    due.state = ReservationState::Cancelling;
    due.next_attempt_at = Some(now() - Duration::seconds(1));
    assert!(store
        .advance_reservation(&due, ReservationState::Ordering)
        .await
        .unwrap());
    let mut later = reservation(store.as_ref(), &scope).await;
    later.state = ReservationState::Cancelling;
    later.next_attempt_at = Some(now() + Duration::hours(1));
    assert!(store
        .advance_reservation(&later, ReservationState::Ordering)
        .await
        .unwrap());

    let ids = |found: Vec<Reservation>| found.into_iter().map(|r| r.id).collect::<Vec<_>>();
    // Nothing is stale yet: only the one due.
    let found = store
        .due_reservations(now(), now() - Duration::minutes(2), 10)
        .await
        .unwrap();
    assert_eq!(ids(found), [due.id.clone()]);
    // Seen from two minutes on, the one in flight is stale too; it reads back whole.
    let found = store
        .due_reservations(now(), now() + Duration::minutes(2), 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    let stale = found.iter().find(|r| r.id == fresh.id).unwrap();
    assert_eq!(stale.state, ReservationState::Ordering);
    assert_eq!(stale.scope, scope);
    assert_eq!(stale.profile_type, "uk-5g");
}
