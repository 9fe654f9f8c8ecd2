//! A partner's application, written as a partner's engineer would from docs/sdk.md: a travel
//! app's checkout that orders an eSIM and survives a lost answer, its back office that pages
//! through eSIMs, orders and the statement, and its webhook handling.
//!
//! `cargo run` against a live server (`.ci/partner-app` starts one):
//!
//! ```sh
//! OYTEL_BASE_URL=http://127.0.0.1:8080 OYTEL_API_KEY=sk_live_… cargo run
//! ```
//!
//! Every step prints what it checked and fails loudly when the server or the SDK does not
//! do what the documentation says; `cargo test` runs the checkout logic against the mock.

use std::time::Duration;

use oytel_client::stream::TryStreamExt as _;
use oytel_client::transport::{Fault, Faults, ReqwestTransport};
use oytel_client::types::{
    CreateWebhookEndpoint, ErrorCode, EsimStatus, ListEsimsQuery, ListOrdersQuery,
    ListTransactionsQuery, ProvisionRequest, TransactionKind,
};
use oytel_client::{webhooks, Error, OytelApi, OytelClient, Paginated};

/// What the checkout shows the customer.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ready {
        esim_id: String,
        qr_code_url: String,
    },
    TryLater,
    ContactSupport(String),
}

/// The checkout, written against the trait so that it can be tested without a server. An
/// order whose answer was lost is sent again once, with the key its error names: the server
/// answers the first order instead of making a second eSIM.
async fn checkout(api: &dyn OytelApi, request: &ProvisionRequest) -> Outcome {
    let mut answer = api.create_order(request).await;
    if let Err(e) = &answer {
        if let (true, Some(key)) = (e.is_retryable(), e.idempotency_key()) {
            answer = api.create_order_with_key(request, key).await;
        }
    }
    match answer {
        Ok(order) => Outcome::Ready {
            esim_id: order.esim_id,
            qr_code_url: order.qr_code_url,
        },
        Err(e) if e.is_retryable() => Outcome::TryLater,
        Err(e) if e.code() == Some(&ErrorCode::InsufficientBalance) => {
            Outcome::ContactSupport("our eSIM balance is low".into())
        }
        Err(e) => Outcome::ContactSupport(e.to_string()),
    }
}

/// The back office's list of a customer's eSIMs: an owned stream, returned from a function
/// and consumed elsewhere (no pinning, no borrow of the client).
fn esims_of(client: &OytelClient, reference: &str) -> Paginated<oytel_client::types::Esim> {
    client
        .esims()
        .list_all(ListEsimsQuery::new().reference_id(reference).limit(2))
}

fn check(ok: bool, what: &str) -> Result<(), Error> {
    if ok {
        println!("ok: {what}");
        Ok(())
    } else {
        Err(Error::Config(format!("FAILED: {what}")))
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let var = |name: &str| std::env::var(name).map_err(|_| Error::Config(format!("set {name}")));
    let (base, key) = (var("OYTEL_BASE_URL")?, var("OYTEL_API_KEY")?);
    let run = std::process::id();
    let client = OytelClient::builder(&key)
        .base_url(&base)
        .timeout(Duration::from_secs(10))
        .deadline(Duration::from_secs(60))
        .build()?;

    // 1. The checkout survives a lost answer: the application's own retry with the error's
    //    key gives one eSIM and one charge. The client's retries are off for this call's
    //    client, so the application sees the timeout.
    let flaky = OytelClient::builder(&key)
        .base_url(&base)
        .max_retries(0)
        // The first request reaches the server; its answer is lost, as a timeout would.
        .transport(Faults::new(
            ReqwestTransport::new(Duration::from_secs(5))?,
            [Fault::LoseAnswer],
        ))
        .build()?;
    let reference = format!("checkout-{run}");
    let order = ProvisionRequest::new("eu-roam-50", "traveller@example.com", "Jane Traveller")
        .reference_id(&reference);
    let outcome = checkout(&flaky, &order).await;
    let Outcome::Ready { esim_id, .. } = &outcome else {
        return Err(Error::Config(format!("FAILED: checkout gave {outcome:?}")));
    };
    let esims = esims_of(&client, &reference).collect_all().await?;
    check(
        esims.len() == 1,
        "one eSIM after the lost answer and the retry",
    )?;
    let charges: Vec<_> = client
        .account()
        .transactions_all(ListTransactionsQuery::new())
        .try_filter(|t| {
            std::future::ready(
                t.kind == TransactionKind::Charge && t.esim_id.as_deref() == Some(esim_id.as_str()),
            )
        })
        .try_collect()
        .await?;
    check(charges.len() == 1, "one charge for it in the statement")?;

    // 2. Per-call options and the answer's metadata: a replay of the same key is marked.
    let key_of_order = format!("order-{run}");
    let first = client
        .orders()
        .create(&ProvisionRequest::new("uk-lite-10", "b@example.com", "B"))
        .idempotency_key(&key_of_order)
        .timeout(Duration::from_secs(5))
        .max_retries(2)
        .send_with_metadata()
        .await?;
    let again = client
        .orders()
        .create(&ProvisionRequest::new("uk-lite-10", "b@example.com", "B"))
        .idempotency_key(&key_of_order)
        .send_with_metadata()
        .await?;
    check(
        !first.metadata().replayed && again.metadata().replayed && again.esim_id == first.esim_id,
        "the same key answers the first order again, marked as a replay",
    )?;
    let limit = again.metadata().rate_limit.clone();
    check(
        limit.is_some_and(|l| l.limit >= l.remaining)
            && again
                .metadata()
                .request_id
                .as_deref()
                .is_some_and(|id| id.starts_with("req_")),
        "the request id and the rate-limit figures come with the answer",
    )?;

    // 3. A deadline bounds the whole call; its error still names the key to retry with.
    let late = client
        .orders()
        .create(&ProvisionRequest::new("uk-lite-10", "c@example.com", "C"))
        .deadline(Duration::from_nanos(1))
        .await;
    check(
        matches!(&late, Err(e @ Error::Timeout { .. }) if e.idempotency_key().is_some()),
        "a call past its deadline is a timeout that names its key",
    )?;

    // 4. Every list as an owned stream; statuses read whatever the server sends.
    let mut orders = client.orders().list_all(ListOrdersQuery::new().limit(1));
    let mut count = 0;
    while let Some(order) = orders.try_next().await? {
        count += usize::from(order.order_id.starts_with("ord_"));
    }
    check(count >= 2, "orders paged one by one")?;
    for esim in esims_of(&client, &reference).collect_all().await? {
        let label = match esim.status {
            EsimStatus::Provisioned => "waiting for the customer",
            EsimStatus::Active => "in use",
            EsimStatus::Unknown => "a state newer than this app",
            _ => "ended or paused",
        };
        println!("{}: {label}", esim.esim_id);
    }

    // 5. Webhook endpoints, and their delivery log, as streams too.
    let hook = client
        .webhooks()
        .create_endpoint(
            &CreateWebhookEndpoint::new("https://partner.example/oytel").description("travel app"),
        )
        .await?;
    let endpoints = client.webhooks().list_all_endpoints().collect_all().await?;
    check(
        endpoints.iter().any(|e| e.id == hook.endpoint.id),
        "the endpoint is listed",
    )?;
    let attempts = client
        .webhooks()
        .attempts_all(Some(&hook.endpoint.id))
        .collect_all()
        .await?;
    println!("{} delivery attempts so far", attempts.len());
    // A delivery of an event type newer than this app verifies, and the app decides.
    let body = br#"{"id":"evt_new","event":"esim.teleported","timestamp":"2027-01-01T00:00:00Z","data":{}}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let secret = webhooks::Secret::parse(&hook.secret).map_err(|e| Error::Config(e.to_string()))?;
    let mut headers = webhooks::HeaderMap::new();
    for (name, value) in [
        ("webhook-id", "evt_new".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", secret.sign("evt_new", now, body)),
    ] {
        headers.insert(
            name,
            value.parse().map_err(|_| Error::Config("header".into()))?,
        );
    }
    let verified = webhooks::verify(&hook.secret, &headers, body);
    check(
        matches!(&verified, Ok(webhooks::Event::Unknown { event, .. }) if event == "esim.teleported"),
        "an event type newer than the SDK verifies and is left to the app",
    )?;
    client.webhooks().delete_endpoint(&hook.endpoint.id).await?;

    // 6. A refusal is not retryable and says why.
    let refused = client.plans().get("no-such-plan").await;
    check(
        matches!(&refused, Err(e) if !e.is_retryable() && e.code() == Some(&ErrorCode::PlanNotFound)),
        "an unknown plan is refused, not retryable",
    )?;
    println!("partner-app: every check passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oytel_client::MockOytelApi;

    fn order() -> ProvisionRequest {
        ProvisionRequest::new("eu-roam-50", "a@example.com", "A")
    }

    #[tokio::test]
    async fn a_low_balance_sends_the_customer_to_support() {
        let mut api = MockOytelApi::new();
        api.expect_create_order().returning(|_| {
            Err(Error::api(
                402,
                ErrorCode::InsufficientBalance,
                "insufficient balance",
            ))
        });
        api.expect_create_order_with_key().never();
        assert_eq!(
            checkout(&api, &order()).await,
            Outcome::ContactSupport("our eSIM balance is low".into())
        );
    }

    #[tokio::test]
    async fn a_lost_answer_is_retried_once_with_its_key() {
        let mut api = MockOytelApi::new();
        api.expect_create_order()
            .returning(|_| Err(Error::timeout(Some("oytel-rs-first".into()))));
        api.expect_create_order_with_key()
            .withf(|_, key| key == "oytel-rs-first")
            .times(1)
            .returning(|_, _| Err(Error::timeout(Some("oytel-rs-first".into()))));
        assert_eq!(checkout(&api, &order()).await, Outcome::TryLater);
    }
}
