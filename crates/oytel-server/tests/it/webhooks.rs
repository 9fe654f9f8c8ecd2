//! Webhooks end to end: from the state change to a delivery that the independent
//! `standardwebhooks` crate verifies on a real receiver.

use std::time::Duration;

use oytel_server::testing::{TestServer, OPERATOR_TOKEN};
use serde_json::{json, Value};

use crate::helpers::{assert_error, order, split, TestApp};
use crate::receiver::Receiver;

async fn create_endpoint(app: &TestApp, key: &str, url: &str, events: Value) -> (String, String) {
    let (status, body) = app
        .post(
            key,
            "/api/v1/webhooks/endpoints",
            &json!({"url": url, "events": events, "description": "main"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn attempts(app: &TestApp, key: &str, endpoint: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            key,
            &format!("/api/v1/webhooks/endpoints/{endpoint}/attempts"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn events(received: &[crate::receiver::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            let e = r.json();
            match e["data"]["threshold_percent"].as_u64() {
                Some(p) => format!("{}:{p}", e["event"].as_str().unwrap()),
                None => e["event"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_flow_delivers_every_event_signed_and_in_order() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let key = &app.partner.sandbox_key;
    let (endpoint, endpoint_secret) =
        create_endpoint(&app, key, &format!("{}/endpoint", receiver.base), json!([])).await;
    let mut body = order("eu-roam-50");
    body["webhook_url"] = json!(format!("{}/esim", receiver.base));
    body["reference_id"] = json!("ref-42");
    let (_, p) = app.post(key, "/api/v1/esim/provision", &body).await;
    let id = p["esim_id"].as_str().unwrap();

    let sandbox = |action: &str| format!("/api/v1/sandbox/esim/{id}/{action}");
    let (status, s) = app.post(key, &sandbox("activate"), &json!({})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["esim"]["activation"]["activated"], true);
    assert_eq!(s["esim"]["connection"]["status"], "connected");
    // 50,000 MB allowance: 40 %, 60 % (50 % crossed), 90 % (80 %), 100 %.
    for (mb, percent) in [
        (20_000, 40.0),
        (10_000, 60.0),
        (15_000, 90.0),
        (5_000, 100.0),
    ] {
        let (status, s) = app
            .post(
                key,
                &sandbox("usage"),
                &json!({"data_mb": mb, "calls": 1, "sms": 2}),
            )
            .await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["esim"]["usage"]["usage_percentage"], percent);
    }
    let (status, s) = app.post(key, &sandbox("expire"), &json!({})).await;
    assert_eq!((status, s["status"].as_str()), (200, Some("expired")));

    let expected = [
        "esim.provisioned",
        "esim.activated",
        "usage.threshold:50",
        "usage.threshold:80",
        "usage.threshold:100",
        "esim.expired",
    ];
    let at_endpoint = receiver.wait_for("/endpoint", 6).await;
    let at_esim = receiver.wait_for("/esim", 6).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        events(&receiver.received("/endpoint")),
        expected,
        "exactly these, in order"
    );
    assert_eq!(events(&receiver.received("/esim")), expected);

    let (_, secret) = app.get(key, "/api/v1/webhooks/secret").await;
    let esim_secret = secret["secret"].as_str().unwrap();
    assert_ne!(esim_secret, endpoint_secret);
    for r in &at_endpoint {
        assert!(
            r.verified_by(&endpoint_secret),
            "endpoint delivery verifies"
        );
        assert!(!r.verified_by(esim_secret));
        let e = r.json();
        assert_eq!(e["id"], r.webhook_id().as_str());
        assert_eq!(e["data"]["esim_id"], id);
        assert_eq!(e["data"]["customer_email"], "customer@example.com");
        assert_eq!(e["data"]["plan_id"], "eu-roam-50");
        assert_eq!(e["data"]["reference_id"], "ref-42");
        assert!(e["timestamp"].as_str().is_some());
        assert!(r.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .starts_with("v1,"));
    }
    for r in &at_esim {
        assert!(
            r.verified_by(esim_secret),
            "per-eSIM URL delivery verifies with the account secret"
        );
    }
    let threshold = at_endpoint[3].json();
    assert_eq!(threshold["data"]["data_used_mb"], 45_000);
    assert_eq!(threshold["data"]["data_limit_mb"], 50_000);

    let (status, t) = app
        .post(
            key,
            &format!("/api/v1/webhooks/endpoints/{endpoint}/test"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{t}");
    let test = receiver.wait_for("/endpoint", 7).await;
    assert_eq!(test[6].json()["event"], "webhook.test");
    assert_eq!(test[6].webhook_id(), t["event_id"].as_str().unwrap());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_retried_with_the_same_webhook_id() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.answer(&[500]);
    let key = &app.partner.sandbox_key;
    let (endpoint, secret) = create_endpoint(
        &app,
        key,
        &format!("{}/hook", receiver.base),
        json!(["esim.provisioned"]),
    )
    .await;
    app.provision(key, "uk-lite-10").await;
    let received = receiver.wait_for("/hook", 2).await;
    assert_eq!(
        received[0].webhook_id(),
        received[1].webhook_id(),
        "the same webhook-id on a retry"
    );
    assert!(received.iter().all(|r| r.verified_by(&secret)));
    let mut log = Vec::new();
    for _ in 0..50 {
        log = attempts(&app, key, &endpoint).await;
        if log.len() == 2 && log[0]["delivery_status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        (log[0]["attempt"].as_u64(), log[0]["status_code"].as_u64()),
        (Some(2), Some(200))
    );
    assert_eq!(
        (log[1]["attempt"].as_u64(), log[1]["status_code"].as_u64()),
        (Some(1), Some(500))
    );
    assert_eq!(log[1]["error"], "HTTP 500");
    assert_eq!(log[1]["delivery_status"], "pending");
    assert!(log[1]["next_attempt_at"].as_str().is_some());
    assert_eq!(log[0]["event"], "esim.provisioned");
    assert_eq!(log[0]["event_id"], received[0].webhook_id().as_str());

    // Redelivery sends the same event again.
    let (status, r) = app
        .post(
            key,
            &format!(
                "/api/v1/webhooks/events/{}/redeliver",
                received[0].webhook_id()
            ),
            &json!({}),
        )
        .await;
    assert_eq!((status, r["deliveries"].as_u64()), (202, Some(1)));
    let again = receiver.wait_for("/hook", 3).await;
    assert_eq!(again[2].webhook_id(), received[0].webhook_id());
    let (status, body) = app
        .post(
            key,
            "/api/v1/webhooks/events/evt_nope/redeliver",
            &json!({}),
        )
        .await;
    assert_error(status, &body, 404, "EVENT_NOT_FOUND");
    let (status, body) = app
        .post(
            &app.other.sandbox_key,
            &format!(
                "/api/v1/webhooks/events/{}/redeliver",
                received[0].webhook_id()
            ),
            &json!({}),
        )
        .await;
    assert_error(status, &body, 404, "EVENT_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_the_endpoint() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.answer(&[410]);
    let key = &app.partner.sandbox_key;
    let (endpoint, _) =
        create_endpoint(&app, key, &format!("{}/gone", receiver.base), json!([])).await;
    app.provision(key, "uk-lite-10").await;
    receiver.wait_for("/gone", 1).await;
    let mut body = Value::Null;
    for _ in 0..50 {
        body = app
            .get(key, &format!("/api/v1/webhooks/endpoints/{endpoint}"))
            .await
            .1;
        if body["status"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body["status"], "disabled", "{body}");
    assert!(body["disabled_reason"].as_str().unwrap().contains("410"));
    // Disabled endpoints receive nothing; re-enabling brings them back.
    app.provision(key, "uk-lite-10").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received("/gone").len(), 1);
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/webhooks/endpoints/{endpoint}")))
        .bearer_auth(key)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    let (status, body) = split(response).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("enabled")));
    assert!(body["disabled_reason"].is_null());
    app.provision(key, "uk-lite-10").await;
    receiver.wait_for("/gone", 2).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_when_the_receiver_is_down_across_a_restart() {
    let slow = |s: &mut oytel_server::state::Settings| {
        s.webhooks.schedule =
            oytel_core::webhooks::RetrySchedule(vec![Duration::from_millis(800); 6]);
    };
    let server = TestServer::spawn_with(slow).await;
    let address = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let client = reqwest::Client::new();
    let key = server.partner.sandbox_key.clone();
    let created: Value = client
        .post(format!("{}/api/v1/webhooks/endpoints", server.base))
        .bearer_auth(&key)
        .json(&json!({"url": format!("http://{address}/later")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let provisioned: Value = client
        .post(format!("{}/api/v1/esim/provision", server.base))
        .bearer_auth(&key)
        .json(&order("uk-lite-10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(provisioned["success"] == true);
    // The first attempt fails: nobody listens.
    let attempts_url = format!(
        "{}/api/v1/webhooks/endpoints/{endpoint}/attempts",
        server.base
    );
    let mut failed = false;
    for _ in 0..100 {
        let log: Value = client
            .get(&attempts_url)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if log["data"].as_array().is_some_and(|a| !a.is_empty()) {
            assert_eq!(log["data"][0]["delivery_status"], "pending");
            assert!(log["data"][0]["status_code"].is_null());
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed, "a failed attempt was recorded");
    // The server restarts; the receiver comes up; the event arrives.
    let server = server.restart(slow).await;
    let receiver = Receiver::start_on(&address).await;
    let received = receiver.wait_for("/later", 1).await;
    assert_eq!(received[0].json()["event"], "esim.provisioned");
    assert!(received[0].verified_by(&secret));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let key = &app.partner.live_key;
    let (endpoint, old) =
        create_endpoint(&app, key, &format!("{}/rot", receiver.base), json!([])).await;
    let (status, rotated) = app
        .post(
            key,
            &format!("/api/v1/webhooks/endpoints/{endpoint}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].as_str().is_some());
    app.post(
        key,
        &format!("/api/v1/webhooks/endpoints/{endpoint}/test"),
        &json!({}),
    )
    .await;
    let received = receiver.wait_for("/rot", 1).await;
    let signatures = received[0].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(
        received[0].verified_by(&old),
        "the old secret still verifies during the overlap"
    );
    assert!(received[0].verified_by(new), "the new secret verifies");

    // The per-eSIM URL secret rotates the same way.
    let (_, first) = app.get(key, "/api/v1/webhooks/secret").await;
    let (_, second) = app
        .post(key, "/api/v1/webhooks/secret/rotate", &json!({}))
        .await;
    assert_ne!(first["secret"], second["secret"]);
    assert!(second["previous_secret_expires_at"].as_str().is_some());
    app.stop().await;
}

#[tokio::test]
async fn endpoints_are_managed_and_scoped() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let (status, body) = app
        .post(
            key,
            "/api/v1/webhooks/endpoints",
            &json!({"url": "not a url"}),
        )
        .await;
    assert_error(status, &body, 400, "VALIDATION_ERROR");
    assert_eq!(body["details"]["field"], "url");
    let (status, body) = app
        .post(
            key,
            "/api/v1/webhooks/endpoints",
            &json!({"url": "https://a.example/", "events": ["esim.exploded"]}),
        )
        .await;
    assert_error(status, &body, 400, "VALIDATION_ERROR");
    let (id, secret) = create_endpoint(
        &app,
        key,
        "https://hooks.partner.example/oytel",
        json!(["esim.activated"]),
    )
    .await;
    assert!(secret.starts_with("whsec_"));
    let (_, list) = app.get(key, "/api/v1/webhooks/endpoints").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(
        list["data"][0].get("secret").is_none(),
        "secrets are never listed"
    );
    let (_, one) = app
        .get(key, &format!("/api/v1/webhooks/endpoints/{id}"))
        .await;
    assert_eq!(one["events"], json!(["esim.activated"]));
    assert_eq!(one["status"], "enabled");
    for other in [&app.other.sandbox_key, &app.partner.live_key] {
        let (status, body) = app
            .get(other, &format!("/api/v1/webhooks/endpoints/{id}"))
            .await;
        assert_error(status, &body, 404, "WEBHOOK_ENDPOINT_NOT_FOUND");
    }
    let patch = |body: Value| {
        app.client
            .patch(app.url(&format!("/api/v1/webhooks/endpoints/{id}")))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let (status, changed) = split(
        patch(json!({"url": "https://new.partner.example/", "events": []}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["url"], "https://new.partner.example/");
    assert_eq!(changed["events"], json!([]));
    let (status, body) = split(patch(json!({"colour": "red"})).await.unwrap()).await;
    assert_error(status, &body, 400, "VALIDATION_ERROR");
    let delete = || {
        app.client
            .delete(app.url(&format!("/api/v1/webhooks/endpoints/{id}")))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(delete().await.unwrap().status(), 204);
    let (status, body) = split(delete().await.unwrap()).await;
    assert_error(status, &body, 404, "WEBHOOK_ENDPOINT_NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_destinations_are_refused_unless_allowed() {
    let server = TestServer::spawn_with(|s| s.webhooks.allow_internal = false).await;
    let app = crate::helpers::TestApp::wrap(server);
    let receiver = Receiver::start().await;
    let key = &app.partner.sandbox_key;
    for url in [
        format!("{}/x", receiver.base),
        "http://169.254.169.254/latest".into(),
        "http://localhost:9/".into(),
    ] {
        let (status, body) = app
            .post(key, "/api/v1/webhooks/endpoints", &json!({"url": url}))
            .await;
        assert_error(status, &body, 400, "VALIDATION_ERROR");
    }
    // A per-eSIM URL pointing inside is accepted at provisioning but never called.
    let mut body = order("uk-lite-10");
    body["webhook_url"] = json!(format!("{}/inside", receiver.base));
    app.post(key, "/api/v1/esim/provision", &body).await;
    let mut log = Vec::new();
    for _ in 0..50 {
        let (_, page) = app.get(key, "/api/v1/webhooks/attempts").await;
        log = page["data"].as_array().unwrap().clone();
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["delivery_status"], "failed");
    assert!(log[0]["error"].as_str().unwrap().contains("internal"));
    assert!(receiver.received("/inside").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn sandbox_simulation_is_for_sandbox_keys_and_valid_transitions_only() {
    let app = TestApp::spawn().await;
    let simulate = |key: &str, id: &str, action: &str, body: serde_json::Value| {
        let (key, path) = (
            key.to_owned(),
            format!("/api/v1/sandbox/esim/{id}/{action}"),
        );
        let app = &app;
        async move { app.post(&key, &path, &body).await }
    };
    let live = app.provision(&app.partner.live_key, "uk-lite-10").await;
    let live_id = live["esim_id"].as_str().unwrap();
    let (status, body) = simulate(&app.partner.live_key, live_id, "activate", json!({})).await;
    assert_error(status, &body, 403, "FORBIDDEN");
    let (key, other) = (&app.partner.sandbox_key, &app.other.sandbox_key);
    let p = app.provision(key, "uk-lite-10").await;
    let id = p["esim_id"].as_str().unwrap();
    // In order: (key, action, body, expected status, expected code).
    let steps: [(&String, &str, serde_json::Value, u16, Option<&str>); 7] = [
        (
            key,
            "usage",
            json!({"data_mb": 5}),
            409,
            Some("INVALID_STATE_TRANSITION"),
        ),
        (key, "activate", json!({}), 200, None),
        (
            key,
            "activate",
            json!({}),
            409,
            Some("INVALID_STATE_TRANSITION"),
        ),
        (
            key,
            "usage",
            json!({"data_mb": -5}),
            400,
            Some("VALIDATION_ERROR"),
        ),
        (other, "expire", json!({}), 404, Some("ESIM_NOT_FOUND")),
        (key, "expire", json!({}), 200, None),
        (
            key,
            "expire",
            json!({}),
            409,
            Some("INVALID_STATE_TRANSITION"),
        ),
    ];
    for (key, action, request, expected, code) in steps {
        let (status, body) = simulate(key, id, action, request).await;
        match code {
            Some(code) => assert_error(status, &body, expected, code),
            None => assert_eq!(status, expected, "{action}: {body}"),
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_operator_api_applies_network_reports_once() {
    let app = TestApp::spawn().await;
    let p = app.provision(&app.partner.live_key, "uk-lite-10").await;
    let iccid = p["iccid"].as_str().unwrap();
    let operator = |path: &str, token: Option<&str>, body: Value| {
        let mut request = app.client.post(app.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let batch = json!({"activations": [{"iccid": iccid}, {"iccid": "8944700000000000000"}]});
    let (status, body) = split(
        operator("/api/v1/operator/activations", None, batch.clone())
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "MISSING_API_KEY");
    let (status, body) = split(
        operator("/api/v1/operator/activations", Some("wrong"), batch.clone())
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "INVALID_API_KEY");
    let (status, body) = split(
        operator(
            "/api/v1/operator/activations",
            Some(&app.partner.live_key),
            batch.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "INVALID_API_KEY");
    let (status, body) = split(
        operator(
            "/api/v1/operator/activations",
            Some(OPERATOR_TOKEN),
            batch.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["applied", "rejected"]);
    let (_, again) = split(
        operator("/api/v1/operator/activations", Some(OPERATOR_TOKEN), batch)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again["results"][0]["status"], "duplicate");

    let now = chrono::Utc::now().to_rfc3339();
    let usage = json!({"records": [
        {"record_id": "net-1", "iccid": iccid, "data_mb": 6_000, "calls": 3, "sms": 1, "recorded_at": now},
        {"record_id": "net-1", "iccid": iccid, "data_mb": 6_000, "recorded_at": now},
        {"record_id": "net-2", "iccid": "8944700000000000000", "data_mb": 1, "recorded_at": now},
    ]});
    let (status, body) = split(
        operator("/api/v1/operator/usage", Some(OPERATOR_TOKEN), usage)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["applied", "duplicate", "rejected"]);
    let (_, s) = app
        .get(
            &app.partner.live_key,
            &format!("/api/v1/esim/{}/status", p["esim_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(s["status"], "active");
    assert_eq!(s["usage"]["data_used_mb"], 6_000, "applied once");
    assert_eq!(s["usage"]["calls_made"], 3);

    let disabled = TestServer::spawn_with(|s| s.operator_token = None).await;
    let response = app
        .client
        .post(format!("{}/api/v1/operator/usage", disabled.base))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"records": []}))
        .send()
        .await
        .unwrap();
    let (status, body) = split(response).await;
    assert_error(status, &body, 403, "FORBIDDEN");
    // Without a token, the answer is to authenticate, enabled or not.
    let response = app
        .client
        .post(format!("{}/api/v1/operator/usage", disabled.base))
        .json(&json!({"records": []}))
        .send()
        .await
        .unwrap();
    let (status, body) = split(response).await;
    assert_error(status, &body, 401, "MISSING_API_KEY");
    disabled.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_expires_esims_whose_term_ended() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let key = &app.partner.sandbox_key;
    create_endpoint(
        &app,
        key,
        &format!("{}/expiry", receiver.base),
        json!(["esim.expired"]),
    )
    .await;
    // An eSIM ordered two months ago on a one-month term.
    let catalog = oytel_core::catalog::Catalog::default_catalog();
    let request: oytel_types::ProvisionRequest =
        serde_json::from_value(order("uk-lite-10")).unwrap();
    let command = oytel_core::provision::validate(&request, &catalog).unwrap();
    let scope = oytel_core::Scope {
        partner_id: app.partner.id.clone(),
        environment: oytel_types::Environment::Sandbox,
    };
    let settings = oytel_core::provision::ProvisionSettings {
        smdp_address: "smdp.test".into(),
        minimum_balance: oytel_types::Amount::from_cents(0),
        smdp: None,
        stock: Default::default(),
    };
    let then = oytel_core::clock::now() - chrono::Duration::days(62);
    let (order, esim) =
        oytel_core::provision::new_rows(&command, &scope, &settings, "USD", "req_old", then);
    let event = oytel_core::webhooks::esim_event(
        oytel_types::EventType::EsimProvisioned,
        &esim,
        None,
        then,
    );
    app.store
        .provision(&oytel_core::ports::ProvisionWrite {
            order,
            esim: esim.clone(),
            charge: oytel_core::ports::Charge::Sandbox {
                balance_cents: 10_000,
            },
            idempotency: None,
            event,
            reservation: None,
            from_stock: None,
        })
        .await
        .unwrap();
    let received = receiver.wait_for("/expiry", 1).await;
    assert_eq!(received[0].json()["data"]["esim_id"], esim.id.as_str());
    let (_, s) = app
        .get(key, &format!("/api/v1/esim/{}/status", esim.id))
        .await;
    assert_eq!(s["status"], "expired");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received("/expiry").len(), 1, "expired once");
    app.stop().await;
}
