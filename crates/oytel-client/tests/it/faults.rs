//! Retries against a server that misbehaves on purpose: the number of attempts, the delays'
//! bounds, and that a retried order carries one `Idempotency-Key` and creates one eSIM.

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
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn a_post_whose_answer_is_lost_is_retried_with_the_same_key_and_creates_one_esim() {
    let real = TestServer::spawn().await;
    let key = real.partner.live_key.clone();
    let proxy = FaultServer::start(vec![
        // The order reaches the server and is created, but the answer never comes back.
        Action::ForwardThenDrop(real.base.clone()),
        Action::Forward(real.base.clone()),
    ])
    .await;
    let client = OytelClient::builder(&key)
        .base_url(&proxy.base)
        .retry_policy(policy())
        .build()
        .unwrap();
    let order = client
        .orders()
        .create(&ProvisionRequest {
            plan_id: "uk-lite-10".into(),
            term_months: 1,
            customer_email: "a@example.com".into(),
            customer_name: "A".into(),
            reference_id: None,
            webhook_url: None,
        })
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
