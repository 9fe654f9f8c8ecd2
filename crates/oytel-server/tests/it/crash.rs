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
                    .create(
                        &ProvisionRequest::new(
                            "uk-lite-10",
                            format!("c{i}@example.com"),
                            "Crash Test",
                        )
                        .reference_id(format!("crash-{i}")),
                    )
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

/// A live partner with eSIMs of `uk-lite-10` provisioned through the SDK, and the server
/// that is about to be killed.
struct BeforeTheCrash {
    db: oytel_store::testing::TestDatabase,
    partner: oytel_server::testing::TestPartner,
    address: String,
    /// The server (`None` only while it is down).
    server: Option<crate::helpers::ServerProcess>,
    client: OytelClient,
    esims: Vec<String>,
    /// The live balance once the eSIMs are paid for.
    balance: i64,
}

impl BeforeTheCrash {
    async fn new(name: &str, n: usize) -> BeforeTheCrash {
        let db = fresh_database(Backend::from_env()).await;
        let partner = make_partner(db.store.as_ref(), name).await;
        let address = free_address();
        let server = start_server_on(&db.url, "production", &address);
        let client = patient_client(&server.base, &partner.live_key);
        let mut esims = Vec::new();
        for i in 0..n {
            let order =
                ProvisionRequest::new("uk-lite-10", format!("c{i}@example.com"), "Crash Test");
            esims.push(client.orders().create(&order).await.unwrap().esim_id);
        }
        let balance = db.store.live_balance(&partner.id).await.unwrap();
        BeforeTheCrash {
            db,
            partner,
            address,
            server: Some(server),
            client,
            esims,
            balance,
        }
    }

    /// Calls `call` for each eSIM, 10 ms apart, while the server is killed with SIGKILL
    /// after 150 ms and started again on the same database and address; the answers, in
    /// order.
    async fn through_a_kill<T, F, Fut>(&mut self, call: F) -> Vec<oytel_client::Result<T>>
    where
        F: Fn(OytelClient, String) -> Fut,
        Fut: std::future::Future<Output = oytel_client::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let calls: Vec<_> = self
            .esims
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let call = call(self.client.clone(), id.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(10 * i as u64)).await;
                    call.await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150)).await;
        if let Some(server) = self.server.take() {
            server.kill();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.server = Some(start_server_on(&self.db.url, "production", &self.address));
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.unwrap());
        }
        answers
    }

    /// Stops the server; whether it exited cleanly.
    fn stop(mut self) -> bool {
        self.server
            .take()
            .is_some_and(|server| server.terminate().success())
    }
}

/// Cancellations through the Rust SDK (each with its idempotency key) while the server is
/// killed: every eSIM ends cancelled, and every order is refunded exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_refunds_each_cancelled_order_once() {
    const CANCELS: usize = 40;
    let mut run = BeforeTheCrash::new("Crash cancels", CANCELS).await;
    let answers = run
        .through_a_kill(|client, id| async move {
            let request = oytel_client::types::CancelRequest::new();
            client.esims().cancel(&id, &request).await
        })
        .await;
    let mut refunded = 0;
    for answer in answers {
        let answer = answer.expect("the SDK carried the cancel through");
        assert!(answer.refund.refunded);
        refunded += answer.refund.amount_cents;
    }
    let (store, partner, after_orders) = (&run.db.store, &run.partner.id, run.balance);
    let ledger = store.ledger(partner).await.unwrap();
    let refunds: Vec<_> = ledger
        .iter()
        .filter(|e| e.kind.as_str() == "refund")
        .collect();
    let orders: HashSet<_> = refunds.iter().map(|e| e.order_id.clone()).collect();
    let balance = store.live_balance(partner).await.unwrap();
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
    assert!(run.stop());
}

/// Top-ups through the Rust SDK (each with its idempotency key) while the server is killed:
/// every eSIM gets its add-on once, and is charged for it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_charges_each_top_up_once() {
    const TOPUPS: usize = 40;
    let mut run = BeforeTheCrash::new("Crash top-ups", TOPUPS).await;
    let answers = run
        .through_a_kill(
            |client, id| async move { client.esims().buy_topup(&id, "uk-boost-5").await },
        )
        .await;
    let mut answered = 0;
    for answer in answers {
        let answer = answer.expect("the SDK carried the top-up through");
        assert_eq!(answer.package.data_allowance_mb, 15_000);
        answered += answer.billing.cost_cents;
    }
    let (store, partner, after_orders) = (&run.db.store, &run.partner.id, run.balance);
    let ledger = store.ledger(partner).await.unwrap();
    let charges: Vec<_> = ledger.iter().filter(|e| e.purchase_id.is_some()).collect();
    let topped: HashSet<_> = charges.iter().map(|e| e.esim_id.clone()).collect();
    let mut allowances = HashSet::new();
    for id in &run.esims {
        let packages = store.list_packages(id).await.unwrap();
        allowances.insert((
            packages.len(),
            packages[0].data_mb,
            packages[0].purchase_ids.len(),
        ));
    }
    let balance = store.live_balance(partner).await.unwrap();
    println!(
        "crash: {TOPUPS} top-ups, server killed mid-way; {} charges for {} eSIMs \
         ({answered} cents answered); balance {after_orders} -> {balance}",
        charges.len(),
        topped.len()
    );
    assert_eq!(charges.len(), TOPUPS, "one charge per top-up");
    assert_eq!(topped.len(), TOPUPS);
    assert_eq!(
        allowances,
        HashSet::from([(1, 15_000, 1)]),
        "each added once"
    );
    assert_eq!(
        after_orders - balance,
        answered,
        "charged what was answered, once"
    );
    assert!(run.stop());
}
