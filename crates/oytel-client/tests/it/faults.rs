//! Retries against a server that misbehaves on purpose: the number of attempts, the delays'
//! bounds, that a retried order carries one `Idempotency-Key` and creates one eSIM, that an
//! application's own retry with the key of the error does too, and the per-call options
//! (timeout, deadline, retries) and the metadata of answers.

use std::time::Duration;

use oytel_client::types::{ErrorCode, ListEsimsQuery, ProvisionRequest};
use oytel_client::{Error, OytelClient, RetryPolicy};
use oytel_server::testing::TestServer;

use crate::fault_server::{Action, FaultServer};

const KEY: &str = "sk_sandbox_faulttestfaulttestfaulttest";
const PLANS: &str = r#"{"success": true, "plans": [], "meta": {"total": 0, "currency": "USD", "environment": "sandbox"}}"#;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    }
}

fn client(base: &str) -> OytelClient {
    OytelClient::builder(KEY)
        .base_url(base)
        .retry_policy(policy())
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn error(status: u16, code: &str) -> Action {
    Action::Respond(
        status,
        vec![],
        format!(r#"{{"success": false, "error": "x", "code": "{code}"}}"#),
    )
}

fn gaps(server: &FaultServer) -> Vec<Duration> {
    server
        .seen()
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .collect()
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let server = FaultServer::start(vec![
        Action::Respond(
            429,
            vec![("retry-after", "1".into())],
            r#"{"success": false, "error": "slow down", "code": "RATE_LIMITED"}"#.into(),
        ),
        Action::Respond(200, vec![], PLANS.into()),
    ])
    .await;
    let plans = client(&server.base).plans().list().await.unwrap();
    assert!(plans.plans.is_empty());
    assert_eq!(server.seen().len(), 2);
    let gap = gaps(&server)[0];
    assert!(
        gap >= Duration::from_secs(1),
        "waited {gap:?}, Retry-After said 1 s"
    );
    assert!(gap < Duration::from_millis(1900), "waited {gap:?}");
}

#[tokio::test]
async fn a_call_sent_once_is_sent_again_after_a_429_which_did_nothing_but_not_after_a_503() {
    use oytel_client::types::CreateWebhookEndpoint;
    let server = FaultServer::start(vec![
        Action::Respond(
            429,
            vec![("retry-after", "0".into())],
            r#"{"success": false, "error": "slow down", "code": "RATE_LIMITED"}"#.into(),
        ),
        // What the answer holds does not matter here: only whether the call was sent again.
        Action::Respond(201, vec![], "{}".into()),
        error(503, "SERVICE_UNAVAILABLE"),
    ])
    .await;
    let client = client(&server.base);
    let endpoint = CreateWebhookEndpoint::new("https://example.com/h");
    let first = client.webhooks().create_endpoint(&endpoint).await;
    assert!(
        matches!(first, Err(Error::Decode { status: 201, .. })),
        "{first:?}"
    );
    assert_eq!(server.seen().len(), 2, "the 429 was sent again");
    let err = client
        .webhooks()
        .create_endpoint(&endpoint)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        server.seen().len(),
        3,
        "a 503 may have acted: not sent again"
    );
}

#[tokio::test]
async fn two_503s_then_200_take_three_attempts_within_the_backoff_bounds() {
    let server = FaultServer::start(vec![
        error(503, "SERVICE_UNAVAILABLE"),
        error(503, "SERVICE_UNAVAILABLE"),
        Action::Respond(200, vec![], PLANS.into()),
    ])
    .await;
    client(&server.base).plans().list().await.unwrap();
    assert_eq!(server.seen().len(), 3);
    let slack = Duration::from_millis(150);
    for (attempt, gap) in gaps(&server).into_iter().enumerate() {
        let ceiling = policy().ceiling(attempt as u32);
        assert!(
            gap <= ceiling + slack,
            "retry {attempt}: {gap:?} > {ceiling:?}"
        );
    }
}

#[tokio::test]
async fn retries_stop_at_the_maximum_and_keep_the_status() {
    let server = FaultServer::start(vec![
        Action::Respond(
            502,
            vec![],
            "<html>bad gateway</html>".into()
        );
        10
    ])
    .await;
    let err = client(&server.base).plans().list().await.unwrap_err();
    assert_eq!(server.seen().len(), 4, "1 attempt + 3 retries");
    match err {
        Error::Api {
            status: 502,
            code: ErrorCode::Other(code),
            message,
            ..
        } => {
            assert_eq!(code, "HTTP_502");
            assert!(message.contains("bad gateway"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = FaultServer::start(vec![
        error(400, "VALIDATION_ERROR"),
        Action::Respond(200, vec![], PLANS.into()),
    ])
    .await;
    let err = client(&server.base).plans().list().await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::ValidationError));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_policy_allows_is_returned_not_waited() {
    let server = FaultServer::start(vec![Action::Respond(
        429,
        vec![("retry-after", "3600".into())],
        r#"{"success": false, "error": "quota", "code": "RATE_LIMITED"}"#.into(),
    )])
    .await;
    let err = client(&server.base).plans().list().await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3600)),
        "{err:?}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn timeouts_and_dropped_connections_are_retried() {
    let server = FaultServer::start(vec![
        Action::Stall(Duration::from_secs(2)),
        Action::Drop,
        Action::Respond(200, vec![], PLANS.into()),
    ])
    .await;
    client(&server.base).plans().list().await.unwrap();
    assert_eq!(server.seen().len(), 3);

    let server = FaultServer::start(vec![Action::Stall(Duration::from_secs(2)); 4]).await;
    let err = client(&server.base).plans().list().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(server.seen().len(), 4);
}

/// A real server behind a proxy that forwards the first request but loses its answer
/// (the order is created, the answer never comes back), then forwards the rest; a live key's
/// client through the proxy.
async fn losing_the_first_answer() -> (TestServer, String, FaultServer, OytelClient) {
    let real = TestServer::spawn().await;
    let key = real.partner.live_key.clone();
    let proxy = FaultServer::start(vec![
        Action::ForwardThenDrop(real.base.clone()),
        Action::Forward(real.base.clone()),
    ])
    .await;
    let client = OytelClient::builder(&key)
        .base_url(&proxy.base)
        .retry_policy(policy())
        .build()
        .unwrap();
    (real, key, proxy, client)
}

#[tokio::test]
async fn a_post_whose_answer_is_lost_is_retried_with_the_same_key_and_creates_one_esim() {
    let (real, key, proxy, client) = losing_the_first_answer().await;
    let order = client
        .orders()
        .create(&ProvisionRequest::new("uk-lite-10", "a@example.com", "A"))
        .await
        .unwrap();
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "one retry");
    assert!(seen
        .iter()
        .all(|s| s.method == "POST" && s.path == "/api/v1/esim/provision"));
    let keys: std::collections::HashSet<_> = seen
        .iter()
        .map(|s| s.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "one Idempotency-Key across the retries: {keys:?}"
    );
    let direct = OytelClient::builder(&key)
        .base_url(&real.base)
        .build()
        .unwrap();
    let esims = direct
        .esims()
        .list(&ListEsimsQuery::default())
        .await
        .unwrap();
    assert_eq!(esims.data.len(), 1, "one eSIM created");
    assert_eq!(esims.data[0].esim_id, order.esim_id);
    let charges = real.store.ledger(&real.partner.id).await.unwrap();
    assert_eq!(
        charges
            .iter()
            .filter(|e| e.kind.as_str() == "charge")
            .count(),
        1,
        "charged once"
    );
    real.stop().await;
}

#[tokio::test]
async fn plans_are_cached_by_max_age_and_revalidated_by_etag() {
    let server = FaultServer::start(vec![
        Action::Respond(
            200,
            vec![
                ("etag", "\"v1\"".into()),
                ("cache-control", "private, max-age=0".into()),
            ],
            PLANS.into(),
        ),
        Action::Respond(
            304,
            vec![
                ("etag", "\"v1\"".into()),
                ("cache-control", "private, max-age=60".into()),
            ],
            String::new(),
        ),
    ])
    .await;
    let client = client(&server.base);
    let first = client.plans().list().await.unwrap();
    let second = client.plans().list().await.unwrap();
    let third = client.plans().list().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(second, third);
    let seen = server.seen();
    assert_eq!(
        seen.len(),
        2,
        "the third call is served from the cache (max-age=60)"
    );
    assert_eq!(seen[0].header("if-none-match"), None);
    assert_eq!(seen[1].header("if-none-match"), Some("\"v1\""));
    let accepted = seen[0].header("accept-encoding").unwrap_or_default();
    assert!(
        accepted.contains("gzip") && accepted.contains("br"),
        "the SDK asks for compressed answers: {accepted:?}"
    );
}

/// The eSIMs of `key` on `real`, and the charges of its partner.
async fn esims_and_charges(real: &TestServer, key: &str) -> (usize, usize) {
    let direct = OytelClient::builder(key)
        .base_url(&real.base)
        .build()
        .unwrap();
    let esims = direct
        .esims()
        .list_all(Default::default())
        .collect_all()
        .await
        .unwrap();
    let charges = real.store.ledger(&real.partner.id).await.unwrap();
    let charged = charges
        .iter()
        .filter(|e| e.kind.as_str() == "charge")
        .count();
    (esims.len(), charged)
}

#[tokio::test]
async fn an_application_retry_with_the_errors_key_after_a_lost_answer_makes_one_esim() {
    let (real, key, proxy, client) = losing_the_first_answer().await;
    let order = ProvisionRequest::new("uk-lite-10", "a@example.com", "A");
    // No retries of its own: the answer is lost and the application gets the error.
    let err = client
        .orders()
        .create(&order)
        .max_retries(0)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let sent_with = err
        .idempotency_key()
        .expect("a paid call's error names its key")
        .to_owned();
    assert!(sent_with.starts_with("oytel-rs-"));
    // The application's retry, later, with that key: the server's first answer, replayed.
    let answer = client
        .orders()
        .create(&order)
        .idempotency_key(&sent_with)
        .send_with_metadata()
        .await
        .unwrap();
    assert!(answer.metadata().replayed, "{:?}", answer.metadata());
    assert_eq!(
        answer.metadata().idempotency_key.as_deref(),
        Some(sent_with.as_str())
    );
    assert!(answer
        .metadata()
        .request_id
        .as_deref()
        .unwrap_or_default()
        .starts_with("req_"));
    let limit = answer
        .metadata()
        .rate_limit
        .clone()
        .expect("rate-limit headers");
    assert!(limit.limit >= limit.remaining);
    let keys: Vec<_> = proxy
        .seen()
        .iter()
        .map(|s| s.header("idempotency-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys, [sent_with.clone(), sent_with]);
    assert_eq!(
        esims_and_charges(&real, &key).await,
        (1, 1),
        "one eSIM, one charge"
    );
    real.stop().await;
}

#[tokio::test]
async fn a_call_can_have_its_own_timeout_retries_and_deadline() {
    let server = FaultServer::start(vec![Action::Stall(Duration::from_secs(2)); 10]).await;
    let client = client(&server.base);

    // Its own timeout per attempt and its own number of retries.
    let started = std::time::Instant::now();
    let err = client
        .plans()
        .get("x")
        .timeout(Duration::from_millis(100))
        .max_retries(1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(server.seen().len(), 2, "one attempt and one retry");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A deadline ends the whole call, retries and waits included, with the call's key.
    let started = std::time::Instant::now();
    let request = client
        .orders()
        .create(&ProvisionRequest::new("uk-lite-10", "a@example.com", "A"))
        .deadline(Duration::from_millis(300));
    let key = request.key().unwrap().to_owned();
    let err = request.await.unwrap_err();
    // Without the deadline its four attempts of 500 ms each would take over 2 s: a bound far
    // from both, so that a loaded machine does not fail it.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(err.idempotency_key(), Some(key.as_str()));
}

#[tokio::test]
async fn a_scripted_fault_transport_plays_a_lost_answer_against_the_real_server() {
    use oytel_client::transport::{Fault, Faults, ReqwestTransport};

    let real = TestServer::spawn().await;
    let key = real.partner.live_key.clone();
    let client = OytelClient::builder(&key)
        .base_url(&real.base)
        .retry_policy(policy())
        .transport(Faults::new(
            ReqwestTransport::new(Duration::from_secs(5)).unwrap(),
            [Fault::LoseAnswer],
        ))
        .build()
        .unwrap();
    let answer = client
        .orders()
        .create(&ProvisionRequest::new("uk-lite-10", "a@example.com", "A"))
        .send_with_metadata()
        .await
        .unwrap();
    assert_eq!(answer.metadata().attempts, 2);
    assert!(answer.metadata().replayed, "the retry got the first answer");
    assert_eq!(esims_and_charges(&real, &key).await, (1, 1));
    real.stop().await;
}
