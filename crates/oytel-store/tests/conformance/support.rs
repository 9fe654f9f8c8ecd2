//! What the conformance tests share: fresh partners and scopes, writes as the core would
//! make them, and helpers that drain or claim deliveries.

use std::sync::Arc;

use chrono::Duration;
use oytel_core::catalog::Term;
use oytel_core::clock::now;
use oytel_core::numbers::{
    generate_iccid, generate_matching_id, generate_msisdn, new_id, new_url_token,
};
use oytel_core::ports::*;
use oytel_core::{Environment, EsimStatus, Scope};
use oytel_types::EventType;

pub(crate) async fn partner(store: &dyn Storage) -> String {
    let partner = Partner::new("P", None).unwrap();
    store.create_partner(&partner).await.unwrap();
    partner.id
}

pub(crate) fn scope(partner_id: &str, environment: Environment) -> Scope {
    Scope {
        partner_id: partner_id.to_owned(),
        environment,
    }
}

pub(crate) fn write(
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
            term: Term::OneMonth,
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
            term: Term::OneMonth,
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
            profile: None,
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
            traceparent: None,
        },
        reservation: None,
        from_stock: None,
    }
}

pub(crate) fn endpoint(scope: &Scope, url: &str, types: Vec<EventType>) -> EndpointRecord {
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
pub(crate) async fn provisioned(store: &dyn Storage, scope: &Scope) -> EsimRecord {
    let mut w = write(scope, 100, SANDBOX, None);
    w.event = oytel_core::webhooks::esim_event(EventType::EsimProvisioned, &w.esim, None, now());
    store.provision(&w).await.unwrap();
    w.esim
}

/// Records one attempt through the batch method.
pub(crate) trait RecordOne {
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

/// Claims what is due and records it delivered, as a healthy receiver's worker would: the next
/// call sees only what became due since.
pub(crate) async fn drain_due(store: &dyn Storage) -> Vec<DueDelivery> {
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
pub(crate) fn up_to(n: u32) -> ClaimLimits {
    ClaimLimits {
        destinations: n,
        per_destination: n,
        per_partner: n,
    }
}

pub(crate) async fn claim_all(store: &dyn Storage) -> Vec<DueDelivery> {
    let at = now() + Duration::seconds(1);
    store
        .claim_due_deliveries(at, at + Duration::seconds(60), up_to(100))
        .await
        .unwrap()
}

pub(crate) const SANDBOX: Charge = Charge::Sandbox {
    balance_cents: 10_000,
};

pub(crate) const LIVE: Charge = Charge::Live {
    minimum_balance_cents: 2_500,
};

/// Asserts that the partner's ledger adds up to its live balance, and returns the balance.
pub(crate) async fn ledger_adds_up(store: &dyn Storage, partner_id: &str) -> i64 {
    let balance = store.live_balance(partner_id).await.unwrap();
    let ledger = store.ledger(partner_id).await.unwrap();
    let sum: i64 = ledger.iter().map(|e| e.amount_cents).sum();
    assert_eq!(sum, balance, "the ledger adds up to the balance");
    balance
}

/// Polls `future` until it has been pending `polls` times, then drops it (what a client
/// disconnect or a timeout does to a request's future at its `polls`-th await); its output
/// if it finished first.
pub(crate) async fn dropped_after<F: std::future::Future>(
    future: F,
    polls: usize,
) -> Option<F::Output> {
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
