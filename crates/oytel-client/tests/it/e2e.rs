//! Every SDK call against the real server.

use futures_util::TryStreamExt;
use oytel_client::types::{
    Environment, ErrorCode, EsimStatus, ListEsimsQuery, ListOrdersQuery, PlansQuery,
    ProvisionRequest,
};
use oytel_client::{Error, OytelClient};
use oytel_server::testing::{TestServer, START_BALANCE_CENTS};

fn client(server: &TestServer, key: &str) -> OytelClient {
    OytelClient::builder(key)
        .base_url(&server.base)
        .build()
        .unwrap()
}

fn order(plan_id: &str, reference_id: Option<&str>) -> ProvisionRequest {
    let order = ProvisionRequest::new(plan_id, "customer@example.com", "John Doe").term_months(3);
    match reference_id {
        Some(reference) => order.reference_id(reference),
        None => order,
    }
}

#[tokio::test]
async fn plans() {
    let server = TestServer::spawn().await;
    let client = client(&server, &server.partner.sandbox_key);
    let all = client.plans().list().await.unwrap();
    assert!(all.plans.len() >= 12);
    let uk = all.plans.iter().find(|p| p.id == "uk-massive-650").unwrap();
    assert_eq!(uk.pricing.three_months.cents(), 2846);
    let europe = client
        .plans()
        .list_filtered(&PlansQuery::new().region("europe"))
        .await
        .unwrap();
    assert!(europe.plans.iter().all(|p| p.region == "europe"));
    assert_eq!(
        client.plans().get("eu-roam-50").await.unwrap().name,
        "EU Roam 50"
    );
    let missing = client.plans().get("nope").await.unwrap_err();
    assert!(
        matches!(
            &missing,
            Error::Api {
                status: 404,
                code: ErrorCode::PlanNotFound,
                request_id: Some(_),
                ..
            }
        ),
        "{missing:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_documented_flow_order_fetch_qr() {
    let server = TestServer::spawn().await;
    let client = client(&server, &server.partner.live_key);
    assert_eq!(client.environment(), Environment::Production);
    let created = client
        .orders()
        .create(&order("eu-roam-50", Some("po-1")))
        .await
        .unwrap();
    assert!(created.esim_id.starts_with("esim_"));
    assert_eq!(created.billing.cost_cents, 3 * 2370);
    assert_eq!(
        created.billing.remaining_balance_cents,
        START_BALANCE_CENTS - 3 * 2370
    );

    let esim = client.esims().get(&created.esim_id).await.unwrap();
    assert_eq!(esim.qr_code_url, created.qr_code_url);
    assert!(esim.qr_code_url.starts_with(&server.base));
    assert_eq!(esim.activation_code, created.activation_code);
    // With OYTEL_TEST_PROFILES=simulator the profile is the SM-DP+ simulator's, released
    // there with its matching ID.
    if let Some(smdp) = &server.smdp {
        let profile = smdp
            .sim
            .get(&format!("/control/profiles/{}", esim.iccid))
            .await;
        assert_eq!(profile["state"], "Released");
        let matching_id = profile["matching_id"].as_str().unwrap();
        assert_eq!(
            esim.activation_code,
            format!("LPA:1$smdp.sim.test${matching_id}")
        );
    }
    let status = client.esims().status(&created.esim_id).await.unwrap();
    assert_eq!(status.status, EsimStatus::Provisioned);
    assert_eq!(status.esim.usage.unwrap().total_mb, 50_000);

    let order = client.orders().get(&created.order_id).await.unwrap();
    assert_eq!(order.esim_id, created.esim_id);
    assert_eq!(order.amount_cents, 3 * 2370);
    let orders = client
        .orders()
        .list(&ListOrdersQuery::default())
        .await
        .unwrap();
    assert_eq!(orders.data.len(), 1);
    let esims = client
        .esims()
        .list(&ListEsimsQuery::default())
        .await
        .unwrap();
    assert_eq!(esims.data[0].esim_id, created.esim_id);

    let account = client.account().get().await.unwrap();
    assert_eq!(account.partner_id, server.partner.id);
    assert_eq!(
        account.balance.available_cents,
        START_BALANCE_CENTS - 3 * 2370
    );
    let changed = client
        .account()
        .update(
            &oytel_types::UpdateAccount::new()
                .low_balance_threshold(Some(oytel_types::Amount::from_cents(5_000))),
        )
        .await
        .unwrap();
    assert_eq!(
        changed.low_balance_threshold,
        Some(oytel_types::Amount::from_cents(5_000))
    );
    // The statement: the charge, then the opening credit.
    let statement = client
        .account()
        .transactions(&oytel_types::ListTransactionsQuery::default())
        .await
        .unwrap();
    let kinds: Vec<_> = statement.data.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [
            oytel_types::TransactionKind::Charge,
            oytel_types::TransactionKind::Credit
        ]
    );
    assert_eq!(
        statement.data[0].esim_id.as_deref(),
        Some(created.esim_id.as_str())
    );
    assert_eq!(
        statement.data[0].balance_after_cents,
        account.balance.available_cents
    );
    server.stop().await;
}

#[tokio::test]
async fn an_own_idempotency_key_replays_the_same_order() {
    let server = TestServer::spawn().await;
    let client = client(&server, &server.partner.live_key);
    let first = client
        .orders()
        .create_with_key(&order("uk-lite-10", None), "checkout-9")
        .await
        .unwrap();
    let again = client
        .orders()
        .create_with_key(&order("uk-lite-10", None), "checkout-9")
        .await
        .unwrap();
    assert_eq!(first.esim_id, again.esim_id);
    let mut other = order("uk-lite-10", None);
    other.term_months = 1;
    let reused = client
        .orders()
        .create_with_key(&other, "checkout-9")
        .await
        .unwrap_err();
    assert!(
        matches!(
            reused,
            Error::Api {
                status: 422,
                code: ErrorCode::IdempotencyKeyReused,
                ..
            }
        ),
        "{reused:?}"
    );
    assert_eq!(
        client
            .esims()
            .list(&ListEsimsQuery::default())
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn list_all_streams_every_page() {
    let server = TestServer::spawn().await;
    let client = client(&server, &server.partner.sandbox_key);
    for i in 0..7 {
        client
            .orders()
            .create(&order(
                "uk-lite-10",
                Some(if i < 5 { "batch" } else { "other" }),
            ))
            .await
            .unwrap();
    }
    let query = ListEsimsQuery::new().limit(2).reference_id("batch");
    let all: Vec<_> = client.esims().list_all(query).try_collect().await.unwrap();
    assert_eq!(all.len(), 5);
    let ids: std::collections::HashSet<_> = all.iter().map(|e| &e.esim_id).collect();
    assert_eq!(ids.len(), 5);
    server.stop().await;
}

#[tokio::test]
async fn errors_are_typed() {
    let server = TestServer::spawn().await;
    let unknown = client(&server, "sk_live_0000000000000000000000000000000000000000");
    let err = unknown.account().get().await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Unauthorized {
                status: 401,
                code: ErrorCode::InvalidApiKey,
                ..
            }
        ),
        "{err:?}"
    );

    let client = client(&server, &server.partner.sandbox_key);
    let mut bad = order("uk-lite-10", None);
    bad.customer_email = "not-an-email".into();
    let err = client.orders().create(&bad).await.unwrap_err();
    match &err {
        Error::Api {
            status: 400,
            code: ErrorCode::ValidationError,
            details: Some(details),
            ..
        } => {
            assert_eq!(details.field.as_deref(), Some("customer_email"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.request_id().unwrap().starts_with("req_"));
    // Another partner's eSIM does not exist for this key.
    let theirs = self::client(&server, &server.other.sandbox_key)
        .orders()
        .create(&order("uk-lite-10", None))
        .await
        .unwrap();
    let err = client.esims().get(&theirs.esim_id).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::EsimNotFound));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_and_sandbox_simulation() {
    use crate::fault_server::{Action, FaultServer};
    use oytel_client::types::{
        CreateWebhookEndpoint, EventType, PageQuery, SandboxUsageRequest, UpdateWebhookEndpoint,
    };

    let server = TestServer::spawn().await;
    let receiver = FaultServer::start(vec![Action::Respond(200, vec![], "{}".into()); 20]).await;
    let client = client(&server, &server.partner.sandbox_key);
    let created = client
        .webhooks()
        .create_endpoint(
            &CreateWebhookEndpoint::new(format!("{}/hooks", receiver.base)).description("main"),
        )
        .await
        .unwrap();
    assert_eq!(client.webhooks().list_endpoints().await.unwrap().len(), 1);
    let id = created.endpoint.id.clone();
    assert_eq!(
        client.webhooks().get_endpoint(&id).await.unwrap().url,
        created.endpoint.url
    );
    let narrowed = client
        .webhooks()
        .update_endpoint(
            &id,
            &UpdateWebhookEndpoint::new().events(vec![
                EventType::EsimActivated,
                EventType::UsageThreshold,
                EventType::WebhookTest,
            ]),
        )
        .await
        .unwrap();
    assert_eq!(narrowed.events.len(), 3);

    let esim = client
        .orders()
        .create(&order("uk-lite-10", None))
        .await
        .unwrap();
    let sandbox = client.sandbox();
    assert_eq!(
        sandbox.activate(&esim.esim_id).await.unwrap().status,
        EsimStatus::Active
    );
    let used = sandbox
        .add_usage(
            &esim.esim_id,
            &SandboxUsageRequest::new(5_000).calls(2).sms(3),
        )
        .await
        .unwrap();
    assert_eq!(used.usage.data_used_mb, 5_000);
    // Suspend and resume, each twice: a repeat changes nothing.
    for _ in 0..2 {
        let suspended = client.esims().suspend(&esim.esim_id).await.unwrap();
        assert_eq!(suspended.status, EsimStatus::Suspended);
    }
    for _ in 0..2 {
        let resumed = client.esims().resume(&esim.esim_id).await.unwrap();
        assert_eq!(resumed.status, EsimStatus::Active);
    }
    let spare = client
        .orders()
        .create(&order("uk-lite-10", None))
        .await
        .unwrap();
    let cancelled = client
        .esims()
        .cancel(
            &spare.esim_id,
            &oytel_client::types::CancelRequest::new().reason("not needed"),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.status, EsimStatus::Cancelled);
    assert!(cancelled.refund.refunded, "never activated, never used");
    assert_eq!(
        cancelled.refund.transaction_id, None,
        "a sandbox balance never moves"
    );
    // After the sale: a data add-on, bought once however often it is retried with its key.
    let offers = client.esims().topups(&esim.esim_id).await.unwrap();
    assert!(offers.topups.iter().any(|o| o.topup_id == "uk-boost-5"));
    let esims = client.esims();
    let bought = esims
        .buy_topup_with_key(&esim.esim_id, "uk-boost-5", "boost-1")
        .await
        .unwrap();
    let again = esims
        .buy_topup_with_key(&esim.esim_id, "uk-boost-5", "boost-1")
        .await
        .unwrap();
    assert_eq!(again.purchase, bought.purchase);
    let packages = esims.packages(&esim.esim_id).await.unwrap();
    assert_eq!(packages.packages.len(), 1);
    assert_eq!(packages.packages[0].data_allowance_mb, 15_000);
    assert_eq!(
        packages.packages[0].purchase_ids,
        [bought.purchase.purchase_id]
    );
    let test = client.webhooks().test_endpoint(&id).await.unwrap();
    // activated, usage.threshold 50 %, webhook.test (provisioned is not subscribed).
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = receiver.seen();
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let events: Vec<_> = seen
        .iter()
        .map(
            |s| match oytel_client::webhooks::verify(&created.secret, &s.header_map(), &s.body) {
                Ok(oytel_client::webhooks::Event::Esim(event)) => event,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(
        events.iter().map(|e| e.event).collect::<Vec<_>>(),
        [
            EventType::EsimActivated,
            EventType::UsageThreshold,
            EventType::WebhookTest
        ]
    );
    assert_eq!(events[1].data.threshold_percent, Some(50));
    assert_eq!(events[2].id, test.event_id);
    let wrong = client.webhooks().signing_secret().await.unwrap().secret;
    assert!(oytel_client::webhooks::verify(&wrong, &seen[0].header_map(), &seen[0].body).is_err());

    let mut log = client
        .webhooks()
        .attempts(Some(&id), &PageQuery::default())
        .await
        .unwrap();
    for _ in 0..50 {
        if log.data.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        log = client
            .webhooks()
            .attempts(Some(&id), &PageQuery::default())
            .await
            .unwrap();
    }
    assert_eq!(log.data.len(), 3);
    assert!(
        client
            .webhooks()
            .attempts(None, &PageQuery::default())
            .await
            .unwrap()
            .data
            .len()
            >= 3
    );
    assert_eq!(
        client
            .webhooks()
            .redeliver(&events[0].id)
            .await
            .unwrap()
            .deliveries,
        1
    );
    let rotated = client.webhooks().rotate_endpoint_secret(&id).await.unwrap();
    assert_ne!(rotated.secret, created.secret);
    let first = client.webhooks().signing_secret().await.unwrap();
    let second = client.webhooks().rotate_signing_secret().await.unwrap();
    assert_ne!(first.secret, second.secret);
    assert_eq!(
        sandbox.expire(&esim.esim_id).await.unwrap().status,
        EsimStatus::Expired
    );
    let again = sandbox.expire(&esim.esim_id).await.unwrap_err();
    assert_eq!(again.code(), Some(&ErrorCode::InvalidStateTransition));
    client.webhooks().delete_endpoint(&id).await.unwrap();
    let gone = client.webhooks().get_endpoint(&id).await.unwrap_err();
    assert_eq!(gone.code(), Some(&ErrorCode::WebhookEndpointNotFound));
    server.stop().await;
}
