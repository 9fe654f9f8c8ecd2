use chrono::{DateTime, Months, Utc};
use serde_json::{json, Value};

use crate::helpers::{assert_error, order, send_all, split, TestApp, START_BALANCE_CENTS};

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn provisioning_returns_the_flat_and_nested_shapes() {
    let app = TestApp::spawn().await;
    let mut body = order("uk-massive-650");
    body["term_months"] = json!(3);
    body["reference_id"] = json!("order-123");
    body["webhook_url"] = json!("https://partner.example/hooks");
    let (status, r) = app
        .post(&app.partner.sandbox_key, "/api/v1/esim/provision", &body)
        .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["success"], true);
    // Documented flat fields.
    let esim_id = r["esim_id"].as_str().unwrap();
    assert!(esim_id.starts_with("esim_"));
    let iccid = r["iccid"].as_str().unwrap();
    assert!(
        iccid.starts_with("8944") && oytel_core::numbers::is_valid_iccid(iccid),
        "{iccid}"
    );
    assert!(oytel_core::numbers::is_uk_mobile(
        r["mobile_number"].as_str().unwrap()
    ));
    let code = r["activation_code"].as_str().unwrap();
    let matching_id = code.strip_prefix("LPA:1$smdp.test.oytel$").expect(code);
    assert_eq!(matching_id.len(), 23);
    let qr = r["qr_code_url"].as_str().unwrap();
    assert!(
        qr.starts_with(&format!("{}/qr/", app.base)) && qr.ends_with(".png"),
        "{qr}"
    );
    assert_eq!(r["status"], "provisioned");
    assert_eq!(r["reference_id"], "order-123");
    // Nested fields the Python SDK reads.
    let esim = &r["esim"];
    assert_eq!(esim["esim_id"], esim_id);
    assert_eq!(esim["iccid"], iccid);
    assert_eq!(esim["qr_code_url"], qr);
    assert_eq!(esim["activation_code"], code);
    assert_eq!(esim["plan"]["id"], "uk-massive-650");
    assert_eq!(esim["plan"]["term_months"], 3);
    assert!(
        esim["activation_instructions"]["ios"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    assert_eq!(r["billing"]["cost_usd"], 85.38);
    assert_eq!(r["billing"]["cost_cents"], 8538);
    assert_eq!(r["billing"]["remaining_balance"], 100.0);
    assert_eq!(r["billing"]["environment"], "sandbox");
    assert!(r["order_id"].as_str().unwrap().starts_with("ord_"));
    // The term decides the expiry.
    let created = time(&r["meta"]["timestamp"]);
    assert_eq!(
        time(&r["expires_at"]),
        created.checked_add_months(Months::new(3)).unwrap()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_term_defaults_to_one_month_and_location_points_at_the_esim() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/api/v1/esim/provision"))
        .header("X-API-Key", &app.partner.sandbox_key)
        .json(&json!({"plan_id": "eu-roam-50", "customer_email": "a@example.com", "customer_name": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let (_, r) = split(response).await;
    assert_eq!(
        location,
        format!("/api/v1/esim/{}", r["esim_id"].as_str().unwrap())
    );
    assert_eq!(r["esim"]["plan"]["term_months"], 1);
    assert_eq!(r["billing"]["cost_usd"], 24.95);
    app.stop().await;
}

#[tokio::test]
async fn invalid_requests_are_4xx_with_a_code_and_write_nothing() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let with = |field: &str, value: Value| {
        let mut body = order("uk-massive-650");
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = order("uk-massive-650");
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            with("plan_id", json!("no-such-plan")),
            404,
            "PLAN_NOT_FOUND",
            Some("plan_id"),
        ),
        (
            with("plan_id", json!("")),
            400,
            "VALIDATION_ERROR",
            Some("plan_id"),
        ),
        (
            with("plan_id", json!(42)),
            400,
            "VALIDATION_ERROR",
            Some("plan_id"),
        ),
        (
            with("term_months", json!(2)),
            400,
            "VALIDATION_ERROR",
            Some("term_months"),
        ),
        (
            with("term_months", json!(0)),
            400,
            "VALIDATION_ERROR",
            Some("term_months"),
        ),
        (
            with("term_months", json!(-3)),
            400,
            "VALIDATION_ERROR",
            Some("term_months"),
        ),
        (
            with("term_months", json!("3")),
            400,
            "VALIDATION_ERROR",
            Some("term_months"),
        ),
        (
            with("customer_email", json!("not-an-email")),
            400,
            "VALIDATION_ERROR",
            Some("customer_email"),
        ),
        (
            with("customer_email", json!("")),
            400,
            "VALIDATION_ERROR",
            Some("customer_email"),
        ),
        (
            with("customer_name", json!("")),
            400,
            "VALIDATION_ERROR",
            Some("customer_name"),
        ),
        (
            with("customer_name", json!("x".repeat(10_000))),
            400,
            "VALIDATION_ERROR",
            Some("customer_name"),
        ),
        (
            with("customer_name", json!("bad\u{7}bell")),
            400,
            "VALIDATION_ERROR",
            Some("customer_name"),
        ),
        (
            with("customer_name", json!(null)),
            400,
            "VALIDATION_ERROR",
            Some("customer_name"),
        ),
        (
            with("reference_id", json!("r".repeat(129))),
            400,
            "VALIDATION_ERROR",
            Some("reference_id"),
        ),
        (
            with("webhook_url", json!("javascript:alert(1)")),
            400,
            "VALIDATION_ERROR",
            Some("webhook_url"),
        ),
        (
            with("planSlug", json!("eu-roam-50")),
            400,
            "VALIDATION_ERROR",
            Some("planSlug"),
        ),
        (
            without("customer_email"),
            400,
            "VALIDATION_ERROR",
            Some("customer_email"),
        ),
        (json!([1, 2, 3]), 400, "VALIDATION_ERROR", None),
        (json!(null), 400, "VALIDATION_ERROR", None),
    ];
    for (body, expected_status, code, field) in cases {
        let (status, r) = app.post(key, "/api/v1/esim/provision", &body).await;
        assert_error(status, &r, expected_status, code);
        if let Some(field) = field {
            assert_eq!(r["details"]["field"], field, "{body} -> {r}");
        }
    }
    let raw = |content_type: &'static str, bytes: Vec<u8>| {
        app.client
            .post(app.url("/api/v1/esim/provision"))
            .bearer_auth(key)
            .header("Content-Type", content_type)
            .body(bytes)
            .send()
    };
    for (content_type, bytes, expected_status, code) in [
        (
            "application/json",
            b"{\"plan_id\": ".to_vec(),
            400,
            "INVALID_JSON",
        ),
        ("application/json", b"{} {}".to_vec(), 400, "INVALID_JSON"),
        (
            "application/json",
            vec![b'{', 0xff, 0xfe, b'}'],
            400,
            "INVALID_JSON",
        ),
        (
            "application/json",
            vec![b' '; 200 * 1024],
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        ("text/plain", b"{}".to_vec(), 415, "UNSUPPORTED_MEDIA_TYPE"),
    ] {
        let (status, r) = split(raw(content_type, bytes).await.unwrap()).await;
        assert_error(status, &r, expected_status, code);
    }
    assert_eq!(
        app.esim_count(key).await,
        0,
        "a rejected request wrote an eSIM"
    );
    app.stop().await;
}

#[tokio::test]
async fn unicode_names_and_sql_like_text_are_stored_as_given() {
    let app = TestApp::spawn().await;
    let mut body = order("uk-lite-10");
    body["customer_name"] = json!("Zoë O'Brien-Łukasz 王小明 🚀");
    body["reference_id"] = json!("x'); DELETE FROM esims; --");
    let (status, r) = app
        .post(&app.partner.sandbox_key, "/api/v1/esim/provision", &body)
        .await;
    assert_eq!(status, 201, "{r}");
    let (_, esim) = app
        .get(
            &app.partner.sandbox_key,
            &format!("/api/v1/esim/{}", r["esim_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(esim["customer_name"], "Zoë O'Brien-Łukasz 王小明 🚀");
    assert_eq!(esim["reference_id"], "x'); DELETE FROM esims; --");
    app.stop().await;
}

#[tokio::test]
async fn live_orders_debit_the_balance_in_the_ledger() {
    let app = TestApp::spawn().await;
    let key = &app.partner.live_key;
    let mut body = order("uk-massive-650");
    body["term_months"] = json!(12);
    let (status, r) = app.post(key, "/api/v1/esim/provision", &body).await;
    assert_eq!(status, 201, "{r}");
    let cost = 12 * 2636;
    assert_eq!(r["billing"]["cost_cents"], cost);
    assert_eq!(
        r["billing"]["remaining_balance_cents"],
        START_BALANCE_CENTS - cost
    );
    assert_eq!(r["billing"]["environment"], "production");
    let ledger = app.store.ledger(&app.partner.id).await.unwrap();
    let charge = ledger.last().unwrap();
    assert_eq!(charge.kind.as_str(), "charge");
    assert_eq!(charge.amount_cents, -cost);
    assert_eq!(charge.order_id.as_deref(), r["order_id"].as_str());
    assert_eq!(charge.balance_after_cents, START_BALANCE_CENTS - cost);
    let (_, account) = app.get(key, "/api/v1/account").await;
    assert_eq!(
        account["balance"]["available_cents"],
        START_BALANCE_CENTS - cost
    );
    // The sandbox balance is never depleted.
    let (_, sandbox) = app
        .post(&app.partner.sandbox_key, "/api/v1/esim/provision", &body)
        .await;
    assert_eq!(sandbox["billing"]["remaining_balance"], 100.0);
    assert_eq!(
        app.store.ledger(&app.partner.id).await.unwrap().len(),
        ledger.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_charge_that_would_break_the_minimum_balance_is_refused_with_402() {
    let app = TestApp::spawn().await;
    let key = &app.partner.live_key;
    let mut body = order("global-connect-10");
    body["term_months"] = json!(12);
    // 12 x 33.99 = 407.88 per order; $1,000 - 2 x 407.88 = 184.24 left; the third would
    // leave -223.64 < 25.
    for _ in 0..2 {
        assert_eq!(app.post(key, "/api/v1/esim/provision", &body).await.0, 201);
    }
    let before = app.store.live_balance(&app.partner.id).await.unwrap();
    assert_eq!(before, START_BALANCE_CENTS - 2 * 40_788);
    let (status, r) = app.post(key, "/api/v1/esim/provision", &body).await;
    assert_error(status, &r, 402, "INSUFFICIENT_BALANCE");
    assert_eq!(r["details"]["balance"], 184.24);
    assert_eq!(r["details"]["required"], 407.88);
    assert_eq!(r["details"]["minimum_balance"], 25.0);
    assert_eq!(
        app.store.live_balance(&app.partner.id).await.unwrap(),
        before
    );
    assert_eq!(app.esim_count(key).await, 2);
    // A cheaper order that keeps the minimum still goes through: 184.24 - 6.00 >= 25.
    assert_eq!(
        app.post(key, "/api/v1/esim/provision", &order("uk-lite-10"))
            .await
            .0,
        201
    );
    app.stop().await;
}

#[tokio::test]
async fn an_idempotent_retry_replays_without_a_second_esim_or_charge() {
    let app = TestApp::spawn().await;
    let key = &app.partner.live_key;
    let body = order("eu-roam-50");
    let send = || {
        app.client
            .post(app.url("/api/v1/esim/provision"))
            .bearer_auth(key)
            .header("Idempotency-Key", "checkout-42")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_text = first.text().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(
        second.text().await.unwrap(),
        first_text,
        "a replay is the same answer"
    );
    assert_eq!(app.esim_count(key).await, 1);
    let charges = app.store.ledger(&app.partner.id).await.unwrap();
    assert_eq!(
        charges
            .iter()
            .filter(|e| e.kind.as_str() == "charge")
            .count(),
        1
    );

    // Same key, different body: 422, nothing written.
    let mut other = order("eu-roam-50");
    other["customer_name"] = json!("Somebody Else");
    let (status, r) = app
        .post_with(key, "/api/v1/esim/provision", &other, Some("checkout-42"))
        .await;
    assert_error(status, &r, 422, "IDEMPOTENCY_KEY_REUSED");
    // Keys are per partner and environment: the same key elsewhere is a new request.
    let (status, _) = app
        .post_with(
            &app.partner.sandbox_key,
            "/api/v1/esim/provision",
            &body,
            Some("checkout-42"),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post_with(
            &app.other.live_key,
            "/api/v1/esim/provision",
            &body,
            Some("checkout-42"),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(app.esim_count(key).await, 1);
    // Malformed keys.
    for bad in ["", "has space", &"k".repeat(256)] {
        let (status, r) = app
            .post_with(key, "/api/v1/esim/provision", &body, Some(bad))
            .await;
        assert_error(status, &r, 400, "INVALID_IDEMPOTENCY_KEY");
    }
    app.stop().await;
}

/// A replay is the first answer, byte for byte, even after the eSIM was activated and used:
/// a retry learns what its first attempt did, not what happened since.
#[tokio::test]
async fn a_replay_after_activation_and_usage_is_still_the_first_answer() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let body = order("eu-roam-50");
    let send = || {
        app.client
            .post(app.url("/api/v1/esim/provision"))
            .bearer_auth(key)
            .header("Idempotency-Key", "checkout-activated")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first_text = first.text().await.unwrap();
    let first_json: Value = serde_json::from_str(&first_text).unwrap();
    let id = first_json["esim_id"].as_str().unwrap();
    let sandbox = |action: &str| format!("/api/v1/sandbox/esim/{id}/{action}");
    let (status, _) = app.post(key, &sandbox("activate"), &json!({})).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            key,
            &sandbox("usage"),
            &json!({"data_mb": 700, "calls": 1, "sms": 1}),
        )
        .await;
    assert_eq!(status, 200);

    let replay = send().await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.text().await.unwrap(), first_text);
    // The eSIM itself shows what happened since.
    let (code, status) = app.get(key, &format!("/api/v1/esim/{id}/status")).await;
    assert_eq!(code, 200);
    assert_eq!(status["status"], "active", "{status}");
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_sent_twice_is_refused_before_anything_is_written() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let response = app
        .client
        .post(app.url("/api/v1/esim/provision"))
        .bearer_auth(key)
        .header("Idempotency-Key", "one")
        .header("Idempotency-Key", "two")
        .json(&order("eu-roam-50"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let r: Value = response.json().await.unwrap();
    assert_error(status, &r, 400, "INVALID_IDEMPOTENCY_KEY");
    assert_eq!(app.esim_count(key).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_request_does_not_burn_its_idempotency_key() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let mut body = order("uk-massive-650");
    body["term_months"] = json!(5);
    let (status, _) = app
        .post_with(key, "/api/v1/esim/provision", &body, Some("k-1"))
        .await;
    assert_eq!(status, 400);
    body["term_months"] = json!(6);
    let (status, r) = app
        .post_with(key, "/api/v1/esim/provision", &body, Some("k-1"))
        .await;
    assert_eq!(status, 201, "{r}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_create_exactly_one_esim() {
    let app = TestApp::spawn().await;
    let key = app.partner.live_key.clone();
    let body = order("uk-essential-30");
    let responses = send_all((0..16).map(|_| {
        app.client
            .post(app.url("/api/v1/esim/provision"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "same-key")
            .json(&body)
    }))
    .await;
    let mut created = std::collections::HashSet::new();
    let mut conflicts = 0;
    for response in responses {
        let (status, r) = split(response.unwrap()).await;
        match status {
            201 => {
                created.insert(r["esim_id"].as_str().unwrap().to_owned());
            }
            409 => {
                assert_eq!(r["code"], "IDEMPOTENCY_REQUEST_IN_PROGRESS");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {r}"),
        }
    }
    assert_eq!(created.len(), 1, "every success names the same eSIM");
    assert!(conflicts < 16);
    assert_eq!(app.esim_count(&key).await, 1);
    let charges = app.store.ledger(&app.partner.id).await.unwrap();
    assert_eq!(
        charges
            .iter()
            .filter(|e| e.kind.as_str() == "charge")
            .count(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_distinct_orders_get_distinct_numbers_and_exact_charges() {
    let app = TestApp::spawn().await;
    let key = app.partner.live_key.clone();
    let body = order("uk-lite-10");
    let responses = send_all((0..40).map(|_| {
        app.client
            .post(app.url("/api/v1/esim/provision"))
            .bearer_auth(&key)
            .json(&body)
    }))
    .await;
    let mut iccids = std::collections::HashSet::new();
    let mut numbers = std::collections::HashSet::new();
    for response in responses {
        let (status, r) = split(response.unwrap()).await;
        assert_eq!(status, 201, "{r}");
        iccids.insert(r["iccid"].as_str().unwrap().to_owned());
        numbers.insert(r["mobile_number"].as_str().unwrap().to_owned());
    }
    assert_eq!((iccids.len(), numbers.len()), (40, 40));
    let balance = app.store.live_balance(&app.partner.id).await.unwrap();
    assert_eq!(balance, START_BALANCE_CENTS - 40 * 600);
    let ledger = app.store.ledger(&app.partner.id).await.unwrap();
    let sum: i64 = ledger.iter().map(|e| e.amount_cents).sum();
    assert_eq!(sum, balance, "the ledger adds up to the balance");
    app.stop().await;
}

/// A whole number is an integer however it is written (JSON Schema): `3.0` is 3 months;
/// `2.5` is refused in words.
#[tokio::test]
async fn a_whole_number_written_with_a_decimal_point_is_accepted() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let mut body = order("eu-roam-50");
    body["term_months"] = json!(3.0);
    let (status, p) = app.post(key, "/api/v1/esim/provision", &body).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["esim"]["plan"]["term_months"], 3, "{p}");
    body["term_months"] = json!(2.5);
    let (status, r) = app.post(key, "/api/v1/esim/provision", &body).await;
    assert_error(status, &r, 400, "VALIDATION_ERROR");
    assert_eq!(
        r["error"],
        "term_months must be a whole number of 0 or more, not 2.5"
    );
    app.stop().await;
}
