//! Crash safety: orders placed through the Rust SDK (with its idempotent retries) while the
//! server is killed with SIGKILL and started again on the same database.

use std::collections::HashSet;
use std::time::Duration;

use oytel_client::types::ProvisionRequest;
use oytel_client::{OytelClient, RetryPolicy};
use oytel_server::testing::{fresh_database, make_partner, START_BALANCE_CENTS};
use oytel_store::testing::Backend;
use serde_json::json;

use crate::helpers::start_server_on;
use crate::receiver::Receiver;

const ORDERS: usize = 80;

/// An address for a server that is started again on the same port.
fn free_address() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

/// The Rust SDK with retries long enough to outlast a restart.
fn patient_client(base: &str, key: &str) -> OytelClient {
    OytelClient::builder(key)
        .base_url(base)
        .retry_policy(RetryPolicy {
            max_retries: 40,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        })
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_nothing_and_charges_nothing_twice() {
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Crash").await;
    let address = free_address();
    let receiver = Receiver::start().await;
    let server = start_server_on(&db.url, "production", &address);
    let base = server.base.clone();
    let raw = reqwest::Client::new();
    let created = raw
        .post(format!("{base}/api/v1/webhooks/endpoints"))
        .bearer_auth(&partner.live_key)
        .json(&json!({"url": format!("{}/events", receiver.base), "events": ["esim.provisioned"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let client = patient_client(&base, &partner.live_key);
    let orders: Vec<_> = (0..ORDERS)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                // Spread over time, so that some are in flight when the server dies.
                tokio::time::sleep(Duration::from_millis(10 * i as u64)).await;
                client
                    .orders()
                    .create(&ProvisionRequest {
                        plan_id: "uk-lite-10".into(),
                        term_months: 1,
                        customer_email: format!("c{i}@example.com"),
                        customer_name: "Crash Test".into(),
                        reference_id: Some(format!("crash-{i}")),
                        webhook_url: None,
                    })
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(350)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = start_server_on(&db.url, "production", &address);

    let mut succeeded = Vec::new();
    let mut failed = 0;
    for order in orders {
        match order.await.unwrap() {
            Ok(provisioned) => succeeded.push(provisioned),
            Err(e) => {
                eprintln!("an order failed: {e}");
                failed += 1;
            }
        }
    }
    // Every success has its eSIM; no reference was provisioned twice.
    let scope = oytel_core::Scope {
        partner_id: partner.id.clone(),
        environment: oytel_types::Environment::Production,
    };
    let stored = db
        .store
        .list_esims(
            &scope,
            &Default::default(),
            oytel_core::ports::PageRequest {
                limit: 1000,
                before: None,
            },
        )
        .await
        .unwrap();
    let stored_ids: HashSet<&str> = stored.iter().map(|e| e.row.id.as_str()).collect();
    for p in &succeeded {
        assert!(
            stored_ids.contains(p.esim_id.as_str()),
            "{} was answered but not stored",
            p.esim_id
        );
    }
    let references: HashSet<_> = stored.iter().map(|e| e.row.reference_id.clone()).collect();
    let duplicates = stored.len() - references.len();
    // The balance is the start minus every charge in the ledger, one charge per eSIM.
    let ledger = db.store.ledger(&partner.id).await.unwrap();
    let charges: i64 = ledger
        .iter()
        .filter(|e| e.kind.as_str() == "charge")
        .map(|e| -e.amount_cents)
        .sum();
    let charge_count = ledger
        .iter()
        .filter(|e| e.kind.as_str() == "charge")
        .count();
    let balance = db.store.live_balance(&partner.id).await.unwrap();
    // Every esim.provisioned event reaches the receiver at least once.
    let mut delivered = HashSet::new();
    for _ in 0..300 {
        delivered = receiver
            .received("/events")
            .iter()
            .map(|r| r.json()["data"]["esim_id"].as_str().unwrap().to_owned())
            .collect();
        if stored.iter().all(|e| delivered.contains(&e.row.id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "crash: {ORDERS} orders, server killed mid-load; {} succeeded, {failed} failed; {} eSIMs stored, \
         {duplicates} duplicates, {charge_count} charges ({charges} cents), balance {balance} = {} - {charges}; \
         {} of {} eSIMs' events delivered",
        succeeded.len(),
        stored.len(),
        START_BALANCE_CENTS,
        stored.iter().filter(|e| delivered.contains(&e.row.id)).count(),
        stored.len()
    );
    assert_eq!(
        failed, 0,
        "the SDK's retries carried every order through the crash"
    );
    assert_eq!(succeeded.len(), ORDERS);
    assert_eq!(stored.len(), ORDERS, "one eSIM per order");
    assert_eq!(duplicates, 0);
    assert_eq!(charge_count, ORDERS, "one charge per eSIM");
    assert_eq!(balance, START_BALANCE_CENTS - charges);
    assert!(
        stored.iter().all(|e| delivered.contains(&e.row.id)),
        "every event delivered at least once"
    );
    assert!(server.terminate().success());
}

/// Cancellations through the Rust SDK (each with its idempotency key) while the server is
/// killed: every eSIM ends cancelled, and every order is refunded exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_refunds_each_cancelled_order_once() {
    const CANCELS: usize = 40;
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Crash cancels").await;
    let address = free_address();
    let server = start_server_on(&db.url, "production", &address);
    let client = patient_client(&server.base, &partner.live_key);
    let mut esims = Vec::new();
    for i in 0..CANCELS {
        let order = ProvisionRequest {
            plan_id: "uk-lite-10".into(),
            term_months: 1,
            customer_email: format!("c{i}@example.com"),
            customer_name: "Crash Test".into(),
            reference_id: None,
            webhook_url: None,
        };
        esims.push(client.orders().create(&order).await.unwrap().esim_id);
    }
    let after_orders = db.store.live_balance(&partner.id).await.unwrap();
    let cancels: Vec<_> = esims
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (client, id) = (client.clone(), id.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10 * i as u64)).await;
                let request = oytel_client::types::CancelRequest { reason: None };
                client.esims().cancel(&id, &request).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = start_server_on(&db.url, "production", &address);
    let mut refunded = 0;
    for cancel in cancels {
        let answer = cancel
            .await
            .unwrap()
            .expect("the SDK carried the cancel through");
        assert!(answer.refund.refunded);
        refunded += answer.refund.amount_cents;
    }
    let ledger = db.store.ledger(&partner.id).await.unwrap();
    let refunds: Vec<_> = ledger
        .iter()
        .filter(|e| e.kind.as_str() == "refund")
        .collect();
    let orders: HashSet<_> = refunds.iter().map(|e| e.order_id.clone()).collect();
    let balance = db.store.live_balance(&partner.id).await.unwrap();
    println!(
        "crash: {CANCELS} cancellations, server killed mid-way; {} refunds for {} orders \
         ({refunded} cents answered); balance {after_orders} -> {balance} = {START_BALANCE_CENTS}",
        refunds.len(),
        orders.len()
    );
    assert_eq!(refunds.len(), CANCELS, "one refund per cancelled order");
    assert_eq!(orders.len(), CANCELS);
    assert_eq!(balance, START_BALANCE_CENTS, "every charge came back once");
    assert_eq!(balance - after_orders, refunded);
    assert!(server.terminate().success());
}
