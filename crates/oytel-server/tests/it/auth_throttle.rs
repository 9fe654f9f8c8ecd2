//! The failed-authentication throttle behind a shared address (issue #27): a flood of bad
//! keys from one address never refuses a valid key from it, forwarding headers are believed
//! only from trusted proxies, and clients behind a trusted proxy are throttled apart. Real
//! server processes (two instances on one database) on the backend of `OYTEL_TEST_BACKEND`.

use std::time::Duration;

use oytel_server::ratelimit::AUTH_FAILURES_PER_MINUTE;
use oytel_server::testing::{fresh_database, OPERATOR_TOKEN};
use oytel_store::testing::Backend;

use crate::helpers::{make_partner, start_server_with, ServerProcess};

const BAD_KEY: &str = "sk_live_0000000000000000000000000000000000000000";

fn start(db: &str, env: &[(&str, &str)]) -> ServerProcess {
    let mut env = env.to_vec();
    env.push(("OYTEL_OPERATOR_TOKEN", OPERATOR_TOKEN));
    start_server_with(db, "production", "127.0.0.1:0", &env)
}

/// `GET path` with `key` (and `X-Forwarded-For: forwarded_for`): the status, and whether a
/// 429 carried `Retry-After`.
async fn get(
    client: &reqwest::Client,
    url: String,
    key: &str,
    forwarded_for: Option<&str>,
) -> (u16, bool) {
    let mut request = client.get(url).bearer_auth(key);
    if let Some(address) = forwarded_for {
        request = request.header("X-Forwarded-For", address);
    }
    let response = request.send().await.unwrap();
    let retry_after = response.headers().contains_key("retry-after");
    (response.status().as_u16(), retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_bad_keys_from_one_address_leave_its_valid_partners_unaffected() {
    let db = fresh_database(Backend::from_env()).await;
    let partners = [
        make_partner(db.store.as_ref(), "A").await,
        make_partner(db.store.as_ref(), "B").await,
        make_partner(db.store.as_ref(), "C").await,
    ];
    let instances = [start(&db.url, &[]), start(&db.url, &[])];
    let client = reqwest::Client::new();
    let (mut unauthorized, mut limited, mut valid_ok, mut valid_other) = (0, 0, 0, Vec::new());
    for round in 0..50 {
        let base = &instances[round % 2].base;
        // Twenty bad keys at once, then every partner's keys, all from 127.0.0.1.
        let bad: Vec<_> = (0..20)
            .map(|_| {
                tokio::spawn(get_owned(
                    client.clone(),
                    format!("{base}/api/v1/plans"),
                    BAD_KEY,
                ))
            })
            .collect();
        for task in bad {
            match task.await.unwrap() {
                (401, _) => unauthorized += 1,
                (429, true) => limited += 1,
                other => panic!("a bad key: {other:?}"),
            }
        }
        for partner in &partners {
            for key in [&partner.live_key, &partner.sandbox_key] {
                match get(&client, format!("{base}/api/v1/account"), key, None).await {
                    (200, _) => valid_ok += 1,
                    (status, _) => valid_other.push(status),
                }
            }
        }
    }
    let operator = client
        .post(format!("{}/api/v1/operator/activations", instances[0].base))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&serde_json::json!({"activations": []}))
        .send()
        .await
        .unwrap();
    println!(
        "1000 bad-key requests from one address over two instances: {unauthorized} answered 401, \
         {limited} answered 429 with Retry-After; 300 valid requests from the same address \
         meanwhile: {valid_ok} answered 200, {} refused; the operator token: {}",
        valid_other.len(),
        operator.status()
    );
    assert_eq!(valid_ok, 300, "refused valid requests: {valid_other:?}");
    assert_eq!(
        operator.status(),
        200,
        "a valid operator token is never refused either"
    );
    assert!(
        unauthorized as u32 <= 2 * (AUTH_FAILURES_PER_MINUTE + 1) && limited >= 900,
        "bad keys are throttled: {unauthorized} × 401, {limited} × 429"
    );
}

async fn get_owned(client: reqwest::Client, url: String, key: &'static str) -> (u16, bool) {
    get(&client, url, key, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_a_trusted_proxy_clients_are_throttled_apart_and_spoofing_is_ignored() {
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "A").await;
    // Loopback plays the load balancer.
    let behind_proxy = start(&db.url, &[("OYTEL_TRUSTED_PROXIES", "127.0.0.0/8, ::1")]);
    let direct = start(&db.url, &[]);
    let client = reqwest::Client::new();
    let plans = |base: &str| format!("{base}/api/v1/plans");

    // Behind the proxy: one client fails until it is throttled...
    let mut statuses = Vec::new();
    for _ in 0..AUTH_FAILURES_PER_MINUTE + 5 {
        statuses.push(
            get(
                &client,
                plans(&behind_proxy.base),
                BAD_KEY,
                Some("203.0.113.1"),
            )
            .await
            .0,
        );
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count() as u32,
        AUTH_FAILURES_PER_MINUTE
    );
    assert_eq!(statuses.last(), Some(&429));
    // ...while another client behind the same proxy is not, nor the first one's valid key.
    assert_eq!(
        get(
            &client,
            plans(&behind_proxy.base),
            BAD_KEY,
            Some("203.0.113.2")
        )
        .await
        .0,
        401
    );
    let valid = get(
        &client,
        plans(&behind_proxy.base),
        &partner.live_key,
        Some("203.0.113.1"),
    )
    .await;
    assert_eq!(valid.0, 200);
    // A client cannot escape by writing its own hops left of the proxy's.
    let spoofed = get(
        &client,
        plans(&behind_proxy.base),
        BAD_KEY,
        Some("198.51.100.9, 203.0.113.1"),
    )
    .await;
    assert_eq!(spoofed.0, 429, "the right-most untrusted hop is the client");

    // Not a trusted proxy: every forged address is the same peer.
    let mut spoofing = Vec::new();
    for i in 0..AUTH_FAILURES_PER_MINUTE + 5 {
        let forged = format!("192.0.2.{i}");
        spoofing.push(
            get(&client, plans(&direct.base), BAD_KEY, Some(&forged))
                .await
                .0,
        );
    }
    assert_eq!(
        spoofing.last(),
        Some(&429),
        "X-Forwarded-For from an untrusted peer is ignored: {spoofing:?}"
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, logs) = behind_proxy.terminate_with_logs();
    assert!(
        logs.contains("\"client\":\"203.0.113.1\""),
        "the request log names the client"
    );
    println!(
        "behind a trusted proxy: client 203.0.113.1 throttled after {AUTH_FAILURES_PER_MINUTE} \
         failures while 203.0.113.2 and a valid key from 203.0.113.1 went through; {} forged \
         X-Forwarded-For addresses from an untrusted peer were throttled as one",
        spoofing.len()
    );
    drop(direct);
}
