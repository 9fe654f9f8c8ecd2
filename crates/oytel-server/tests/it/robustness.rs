//! Hostile input, isolation and secrets: every malformed request gets a 4xx with a stable code
//! and writes nothing; every id of another partner or environment is a 404; no secret reaches
//! the logs.

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{order, split, start_server, TestApp};

/// The credentials a hostile request carries.
enum Auth {
    /// The partner's valid key.
    Key,
    /// No `Authorization` header at all.
    None,
    /// This `Authorization` header.
    Header(HeaderValue),
}

/// One hostile request.
struct Case {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    auth: Auth,
    status: u16,
    code: &'static str,
}

fn case(method: Method, path: &str, body: Option<&[u8]>, status: u16, code: &'static str) -> Case {
    Case {
        method,
        path: path.to_owned(),
        body: body.map(<[u8]>::to_vec),
        content_type: body.map(|_| "application/json"),
        auth: Auth::Key,
        status,
        code,
    }
}

fn provision(body: &[u8], status: u16, code: &'static str) -> Case {
    case(
        Method::POST,
        "/api/v1/esim/provision",
        Some(body),
        status,
        code,
    )
}

fn with_field(field: &str, value: Value) -> Vec<u8> {
    let mut body = order("uk-lite-10");
    body[field] = value;
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn hostile_input_gets_a_4xx_with_a_code_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let key = app.partner.live_key.clone();
    let balance = app.store.live_balance(&app.partner.id).await.unwrap();
    // Longer than any field allows, shorter than the body limit.
    let long = "x".repeat(10_000);
    let mut cases = vec![
        // Malformed JSON and wrong shapes.
        provision(b"{", 400, "INVALID_JSON"),
        provision(b"", 400, "INVALID_JSON"),
        provision(b"{\"plan_id\": \"uk-lite-10\",}", 400, "INVALID_JSON"),
        provision(b"[]", 400, "VALIDATION_ERROR"),
        provision(b"\"order\"", 400, "VALIDATION_ERROR"),
        provision(b"{}", 400, "VALIDATION_ERROR"),
        provision(&[0xc3, 0x28, b'{', b'}'], 400, "INVALID_JSON"),
        provision(br#"{"plan_id":"uk-lite-10","plan_id":"eu-roam-50","customer_email":"a@b.co","customer_name":"A"}"#, 400, "VALIDATION_ERROR"),
        // Wrong types, missing, empty, long, control characters, numbers out of range.
        provision(&with_field("plan_id", json!(["uk-lite-10"])), 400, "VALIDATION_ERROR"),
        provision(&with_field("term_months", json!(-1)), 400, "VALIDATION_ERROR"),
        provision(&with_field("term_months", json!(0)), 400, "VALIDATION_ERROR"),
        provision(&with_field("term_months", json!(1.5)), 400, "VALIDATION_ERROR"),
        provision(&with_field("term_months", json!(1e30)), 400, "VALIDATION_ERROR"),
        provision(&with_field("term_months", json!(18446744073709551616u128 as f64)), 400, "VALIDATION_ERROR"),
        provision(&with_field("customer_email", json!("")), 400, "VALIDATION_ERROR"),
        provision(&with_field("customer_email", json!(long.clone() + "@example.com")), 400, "VALIDATION_ERROR"),
        provision(&with_field("customer_name", json!(long.clone())), 400, "VALIDATION_ERROR"),
        provision(&with_field("customer_name", json!("Robert\u{0}'); DROP TABLE esims;--")), 400, "VALIDATION_ERROR"),
        provision(&with_field("customer_name", json!("\u{202e}\u{1b}[31m")), 400, "VALIDATION_ERROR"),
        provision(&with_field("reference_id", json!(long.clone())), 400, "VALIDATION_ERROR"),
        provision(&with_field("webhook_url", json!("file:///etc/passwd")), 400, "VALIDATION_ERROR"),
        provision(&with_field("webhook_url", json!("http://user:pass@example.com/")), 400, "VALIDATION_ERROR"),
        provision(&with_field("extra", json!(true)), 400, "VALIDATION_ERROR"),
        // SQL-, path- and Unicode-like ids.
        provision(&with_field("plan_id", json!("' OR 1=1 --")), 404, "PLAN_NOT_FOUND"),
        provision(&with_field("plan_id", json!("../../etc/passwd")), 404, "PLAN_NOT_FOUND"),
        provision(&with_field("plan_id", json!("計画")), 404, "PLAN_NOT_FOUND"),
        provision(&with_field("plan_id", json!(long.clone())), 404, "PLAN_NOT_FOUND"),
        // Huge bodies.
        provision(&vec![b' '; 2 * 1024 * 1024], 413, "PAYLOAD_TOO_LARGE"),
        // Ids in paths.
        case(Method::GET, "/api/v1/esim/'%20OR%20'1'='1", None, 404, "ESIM_NOT_FOUND"),
        // A control character names nothing: refused before any query (PostgreSQL would
        // refuse a NUL in text).
        case(Method::GET, "/api/v1/esim/%00/status", None, 404, "NOT_FOUND"),
        case(Method::GET, "/api/v1/webhooks/endpoints/we_%00", None, 404, "NOT_FOUND"),
        case(Method::GET, "/api/v1/esims?reference_id=%00", None, 400, "VALIDATION_ERROR"),
        case(Method::GET, "/api/v1/esims?customer_email=a%00@example.com", None, 400, "VALIDATION_ERROR"),
        case(Method::GET, "/api/v1/orders?reference_id=a%00b", None, 400, "VALIDATION_ERROR"),
        case(Method::GET, &format!("/api/v1/esim/{}", "a".repeat(5000)), None, 404, "ESIM_NOT_FOUND"),
        case(Method::GET, "/api/v1/orders/..%2F..%2Fetc%2Fpasswd", None, 404, "ORDER_NOT_FOUND"),
        case(Method::GET, "/api/v1/plans/%E8%A8%88%E7%94%BB", None, 404, "PLAN_NOT_FOUND"),
        case(Method::GET, "/api/v1/webhooks/endpoints/we_%27%3B--", None, 404, "WEBHOOK_ENDPOINT_NOT_FOUND"),
        // Query strings.
        case(Method::GET, "/api/v1/esims?limit=1&limit=2", None, 400, "INVALID_QUERY"),
        case(Method::GET, "/api/v1/esims?limit=-1", None, 400, "INVALID_QUERY"),
        case(Method::GET, "/api/v1/esims?limit=99999999999999999999", None, 400, "INVALID_QUERY"),
        case(Method::GET, "/api/v1/esims?cursor=%FF%FE", None, 400, "INVALID_CURSOR"),
        case(Method::GET, "/api/v1/orders?status=active", None, 400, "INVALID_QUERY"),
        case(Method::GET, "/api/v1/plans?country=GB&country=FR", None, 400, "INVALID_QUERY"),
        // Other bodies.
        case(Method::POST, "/api/v1/webhooks/endpoints", Some(br#"{"url": "javascript:alert(1)"}"#), 400, "VALIDATION_ERROR"),
        case(Method::POST, "/api/v1/webhooks/endpoints", Some(br#"{"url": "https://a.example/", "events": ["*"]}"#), 400, "VALIDATION_ERROR"),
        case(Method::POST, "/api/v1/webhooks/endpoints", Some(format!(r#"{{"url": "https://a.example/", "description": "{long}"}}"#).as_bytes()), 400, "VALIDATION_ERROR"),
    ];
    let mut wrong_type = provision(
        &with_field("plan_id", json!("uk-lite-10")),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    wrong_type.content_type = Some("application/x-www-form-urlencoded");
    cases.push(wrong_type);
    // Missing and malformed credentials.
    for (auth, code) in [
        (Auth::None, "MISSING_API_KEY"),
        (
            Auth::Header(HeaderValue::from_static("Bearer")),
            "MISSING_API_KEY",
        ),
        (
            Auth::Header(HeaderValue::from_static("Bearer ")),
            "MISSING_API_KEY",
        ),
        (
            Auth::Header(HeaderValue::from_static("Token sk_live_abc")),
            "INVALID_API_KEY",
        ),
        (
            Auth::Header(HeaderValue::from_bytes(b"Bearer sk_live_\xe9\xe9").unwrap()),
            "INVALID_API_KEY",
        ),
        (
            Auth::Header(HeaderValue::from_str(&format!("Bearer sk_live_{long}")).unwrap()),
            "INVALID_API_KEY",
        ),
        (
            Auth::Header(HeaderValue::from_static("Bearer sk_live_' OR '1'='1")),
            "INVALID_API_KEY",
        ),
    ] {
        let mut c = case(Method::GET, "/api/v1/account", None, 401, code);
        c.auth = auth;
        cases.push(c);
    }
    let total = cases.len();
    for c in cases {
        let mut request = app.client.request(c.method.clone(), app.url(&c.path));
        request = match &c.auth {
            Auth::Key => request.bearer_auth(&key),
            Auth::None => request,
            Auth::Header(value) => request.header(AUTHORIZATION, value.clone()),
        };
        if let Some(body) = c.body {
            request = request
                .header(CONTENT_TYPE, c.content_type.unwrap_or("application/json"))
                .body(body);
        }
        let (status, body) = split(request.send().await.unwrap()).await;
        assert!(status < 500, "{} {} -> {status}: {body}", c.method, c.path);
        assert_eq!(
            (status, body["code"].as_str()),
            (c.status, Some(c.code)),
            "{} {}: {body}",
            c.method,
            &c.path[..c.path.len().min(80)]
        );
        assert_eq!(body["success"], false);
    }
    println!("{total} hostile requests: each a 4xx with its stable code");
    assert_eq!(app.esim_count(&key).await, 0, "nothing was written");
    assert_eq!(
        app.store.live_balance(&app.partner.id).await.unwrap(),
        balance,
        "nothing was charged"
    );
    let (_, endpoints) = app.get(&key, "/api/v1/webhooks/endpoints").await;
    assert_eq!(endpoints["data"].as_array().unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn every_id_of_another_partner_or_environment_is_404() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let p = app.provision(key, "uk-lite-10").await;
    let (esim, order_id) = (
        p["esim_id"].as_str().unwrap(),
        p["order_id"].as_str().unwrap(),
    );
    let (_, endpoint) = app
        .post(
            key,
            "/api/v1/webhooks/endpoints",
            &json!({"url": "https://h.example/"}),
        )
        .await;
    let endpoint = endpoint["id"].as_str().unwrap();
    let (_, test) = app
        .post(
            key,
            &format!("/api/v1/webhooks/endpoints/{endpoint}/test"),
            &json!({}),
        )
        .await;
    let event = test["event_id"].as_str().unwrap();
    let routes = [
        (
            Method::GET,
            format!("/api/v1/esim/{esim}"),
            "ESIM_NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/api/v1/esim/{esim}/status"),
            "ESIM_NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/api/v1/orders/{order_id}"),
            "ORDER_NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/api/v1/webhooks/endpoints/{endpoint}"),
            "WEBHOOK_ENDPOINT_NOT_FOUND",
        ),
        (
            Method::PATCH,
            format!("/api/v1/webhooks/endpoints/{endpoint}"),
            "WEBHOOK_ENDPOINT_NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/v1/webhooks/endpoints/{endpoint}"),
            "WEBHOOK_ENDPOINT_NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/endpoints/{endpoint}/rotate-secret"),
            "WEBHOOK_ENDPOINT_NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/endpoints/{endpoint}/test"),
            "WEBHOOK_ENDPOINT_NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/api/v1/webhooks/endpoints/{endpoint}/attempts"),
            "WEBHOOK_ENDPOINT_NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/events/{event}/redeliver"),
            "EVENT_NOT_FOUND",
        ),
    ];
    let mut checked = 0;
    for other in [
        &app.other.sandbox_key,
        &app.other.live_key,
        &app.partner.live_key,
    ] {
        for (method, path, code) in &routes {
            let mut request = app
                .client
                .request(method.clone(), app.url(path))
                .bearer_auth(other);
            if *method == Method::PATCH {
                request = request.json(&json!({"description": "x"}));
            }
            let (status, body) = split(request.send().await.unwrap()).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (404, Some(*code)),
                "{method} {path}: {body}"
            );
            checked += 1;
        }
        // The sandbox simulation: another partner's sandbox key sees nothing; a live key may not
        // simulate at all (403, whatever the id: existence is not revealed).
        let (status, _) = app
            .post(
                other,
                &format!("/api/v1/sandbox/esim/{esim}/activate"),
                &json!({}),
            )
            .await;
        assert!(status == 404 || status == 403, "{status}");
    }
    println!("{checked} requests for another partner's or environment's ids: all 404");
    // Still all there for the owner.
    assert_eq!(
        app.get(key, &format!("/api/v1/webhooks/endpoints/{endpoint}"))
            .await
            .0,
        200
    );
    assert_eq!(app.get(key, &format!("/api/v1/esim/{esim}")).await.0, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_at_once_by_every_instance() {
    let db = oytel_server::testing::fresh_database(oytel_store::testing::Backend::from_env()).await;
    let partner = oytel_server::testing::make_partner(db.store.as_ref(), "Two").await;
    let (a, b, killed) = (
        start_server(&db.url, "production"),
        start_server(&db.url, "production"),
        start_server(&db.url, "production"),
    );
    let client = reqwest::Client::new();
    let get = |base: &str| {
        client
            .get(format!("{base}/api/v1/account"))
            .bearer_auth(&partner.live_key)
            .send()
    };
    assert_eq!(get(&a.base).await.unwrap().status(), 200);
    assert_eq!(get(&b.base).await.unwrap().status(), 200);
    assert_eq!(get(&killed.base).await.unwrap().status(), 200);
    // An instance that dies holding its lease on the auth epoch delays a revocation by at
    // most the lease (3 s), never for ever.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    killed.kill();
    let key = db
        .store
        .list_api_keys(&partner.id)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.environment == oytel_types::Environment::Production)
        .unwrap();
    let revoked = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        db.store.revoke_api_key(&key.id, oytel_core::clock::now()),
    )
    .await
    .expect("the revocation returns once the dead instance's lease has run out");
    assert!(revoked.unwrap());
    for base in [&a.base, &b.base] {
        let (status, body) = split(get(base).await.unwrap()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("API_KEY_REVOKED"))
        );
    }
    assert!(a.terminate().success() && b.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    let db = oytel_server::testing::fresh_database(oytel_store::testing::Backend::from_env()).await;
    let partner = oytel_server::testing::make_partner(db.store.as_ref(), "Logs").await;
    let server = start_server(&db.url, "production");
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let provisioned: Value = client
        .post(url("/api/v1/esim/provision"))
        .bearer_auth(&partner.live_key)
        .header("Idempotency-Key", "log-check-1")
        .json(&order("uk-lite-10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let activation = provisioned["activation_code"].as_str().unwrap().to_owned();
    let qr = provisioned["qr_code_url"].as_str().unwrap().to_owned();
    assert_eq!(client.get(&qr).send().await.unwrap().status(), 200);
    let created: Value = client
        .post(url("/api/v1/webhooks/endpoints"))
        .header("X-API-Key", &partner.sandbox_key)
        .json(&json!({"url": "https://hooks.example/x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint_secret = created["secret"].as_str().unwrap().to_owned();
    let rotated: Value = client
        .post(url(&format!(
            "/api/v1/webhooks/endpoints/{}/rotate-secret",
            created["id"].as_str().unwrap()
        )))
        .header("X-API-Key", &partner.sandbox_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let signing: Value = client
        .get(url("/api/v1/webhooks/secret"))
        .bearer_auth(&partner.live_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The live key with its last character changed (to one it is not).
    let (head, last) = partner.live_key.split_at(partner.live_key.len() - 1);
    let almost = format!("{head}{}", if last == "x" { "y" } else { "x" });
    assert_eq!(
        client
            .get(url("/api/v1/account"))
            .bearer_auth(&almost)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (status, logs) = server.terminate_with_logs();
    assert!(status.success());
    assert!(logs.lines().count() >= 6, "the flow was logged: {logs}");
    // Request durations are milliseconds to the microsecond, not a float's last digits.
    for line in logs.lines() {
        let Ok(log) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(ms) = log["fields"]["elapsed_ms"].as_f64() {
            assert!(
                ms.to_string()
                    .split('.')
                    .nth(1)
                    .is_none_or(|d| d.len() <= 3),
                "{line}"
            );
        }
    }
    let token = qr
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".png")
        .to_owned();
    let matching_id = activation.rsplit('$').next().unwrap().to_owned();
    for (what, secret) in [
        ("live key", partner.live_key.as_str()),
        ("sandbox key", partner.sandbox_key.as_str()),
        ("a wrong key", almost.as_str()),
        ("activation code", activation.as_str()),
        ("matching id", matching_id.as_str()),
        ("QR token", token.as_str()),
        ("endpoint secret", endpoint_secret.as_str()),
        ("rotated secret", rotated["secret"].as_str().unwrap()),
        ("signing secret", signing["secret"].as_str().unwrap()),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
        // Not even the random part of a key.
        if let Some(random) = secret
            .strip_prefix("sk_live_")
            .or(secret.strip_prefix("sk_sandbox_"))
        {
            assert!(
                !logs.contains(random),
                "part of the {what} appears in the logs"
            );
        }
    }
}
