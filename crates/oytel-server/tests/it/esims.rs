use std::collections::HashSet;

use serde_json::json;

use crate::helpers::{assert_error, order, TestApp, START_BALANCE_CENTS};

#[tokio::test]
async fn details_and_status_show_the_documented_and_sdk_shapes() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let mut body = order("eu-roam-50");
    body["reference_id"] = json!("ref-9");
    let (_, p) = app.post(key, "/api/v1/esim/provision", &body).await;
    let id = p["esim_id"].as_str().unwrap();

    let (status, e) = app.get(key, &format!("/api/v1/esim/{id}")).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["success"], true);
    assert_eq!(e["esim_id"], id);
    assert_eq!(e["order_id"], p["order_id"]);
    assert_eq!(e["qr_code_url"], p["qr_code_url"]);
    assert!(e["qr_code_svg_url"].as_str().unwrap().ends_with(".svg"));
    assert_eq!(e["activation_code"], p["activation_code"]);
    assert_eq!(e["mobile_number"], p["mobile_number"]);
    assert_eq!(e["customer_email"], "customer@example.com");
    assert_eq!(e["reference_id"], "ref-9");
    assert_eq!(e["expires_at"], p["expires_at"]);
    assert_eq!(e["environment"], "sandbox");

    let (status, s) = app.get(key, &format!("/api/v1/esim/{id}/status")).await;
    assert_eq!(status, 200, "{s}");
    // Documented flat shape.
    assert_eq!(s["esim_id"], id);
    assert_eq!(s["status"], "provisioned");
    assert_eq!(s["usage"]["data_used_mb"], 0);
    assert_eq!(s["usage"]["data_limit_mb"], 50_000);
    assert_eq!(s["usage"]["calls_made"], 0);
    assert_eq!(s["usage"]["sms_sent"], 0);
    assert_eq!(s["expires_at"], p["expires_at"]);
    // Python SDK's nested shape.
    assert_eq!(s["esim"]["status"], "provisioned");
    assert_eq!(s["esim"]["activation"]["activated"], false);
    assert_eq!(s["esim"]["usage"]["used_mb"], 0);
    assert_eq!(s["esim"]["usage"]["total_mb"], 50_000);
    assert_eq!(s["esim"]["usage"]["remaining_mb"], 50_000);
    assert_eq!(s["esim"]["usage"]["usage_percentage"], 0.0);
    assert!(
        s["esim"]["connection"].is_null(),
        "not connected before activation"
    );
    app.stop().await;
}

#[tokio::test]
async fn other_partners_and_the_other_environment_get_404() {
    let app = TestApp::spawn().await;
    let (_, p) = app
        .post(
            &app.partner.sandbox_key,
            "/api/v1/esim/provision",
            &order("uk-lite-10"),
        )
        .await;
    let esim = p["esim_id"].as_str().unwrap();
    let order_id = p["order_id"].as_str().unwrap();
    for key in [
        &app.other.sandbox_key,
        &app.other.live_key,
        &app.partner.live_key,
    ] {
        for (path, code) in [
            (format!("/api/v1/esim/{esim}"), "ESIM_NOT_FOUND"),
            (format!("/api/v1/esim/{esim}/status"), "ESIM_NOT_FOUND"),
            (format!("/api/v1/orders/{order_id}"), "ORDER_NOT_FOUND"),
        ] {
            let (status, body) = app.get(key, &path).await;
            assert_error(status, &body, 404, code);
        }
        assert_eq!(app.esim_count(key).await, 0);
        let (_, orders) = app.get(key, "/api/v1/orders").await;
        assert_eq!(orders["data"].as_array().unwrap().len(), 0);
    }
    for path in [
        "/api/v1/esim/esim_doesnotexist",
        "/api/v1/esim/%27%20OR%201%3D1--",
        "/api/v1/esim/..%2F..%2Fetc%2Fpasswd/status",
    ] {
        let (status, body) = app.get(&app.partner.sandbox_key, path).await;
        assert_error(status, &body, 404, "ESIM_NOT_FOUND");
    }
    app.stop().await;
}

#[tokio::test]
async fn lists_page_through_everything_once_newest_first() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let mut created = Vec::new();
    for i in 0..7 {
        let mut body = order("uk-lite-10");
        body["reference_id"] = json!(if i % 2 == 0 { "even" } else { "odd" });
        if i == 3 {
            body["customer_email"] = json!("Special@Example.com");
        }
        let (_, r) = app.post(key, "/api/v1/esim/provision", &body).await;
        created.push(r["esim_id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/esims?limit=3&cursor={c}"),
            None => "/api/v1/esims?limit=3".to_owned(),
        };
        let (status, page) = app.get(key, &path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["esim_id"].as_str().unwrap().to_owned()),
        );
        if page["has_more"] == false {
            assert!(page["next_cursor"].is_null());
            break;
        }
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(pages, 3);
    created.reverse();
    assert_eq!(seen, created, "newest first, each once");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);

    let (_, even) = app.get(key, "/api/v1/esims?reference_id=even").await;
    assert_eq!(even["data"].as_array().unwrap().len(), 4);
    let (_, special) = app
        .get(key, "/api/v1/esims?customer_email=special@example.com")
        .await;
    assert_eq!(special["data"].as_array().unwrap().len(), 1);
    let (_, provisioned) = app
        .get(key, "/api/v1/esims?status=provisioned&limit=100")
        .await;
    assert_eq!(provisioned["data"].as_array().unwrap().len(), 7);
    let (_, active) = app.get(key, "/api/v1/esims?status=active").await;
    assert_eq!(active["data"].as_array().unwrap().len(), 0);
    let (_, orders) = app.get(key, "/api/v1/orders?limit=100").await;
    assert_eq!(orders["data"].as_array().unwrap().len(), 7);
    let (_, odd_orders) = app.get(key, "/api/v1/orders?reference_id=odd").await;
    assert_eq!(odd_orders["data"].as_array().unwrap().len(), 3);

    for (path, code) in [
        ("/api/v1/esims?limit=0", "VALIDATION_ERROR"),
        ("/api/v1/esims?limit=101", "VALIDATION_ERROR"),
        ("/api/v1/esims?limit=abc", "INVALID_QUERY"),
        ("/api/v1/esims?cursor=garbage", "INVALID_CURSOR"),
        ("/api/v1/esims?status=sleeping", "INVALID_QUERY"),
        ("/api/v1/esims?limit=2&limit=3", "INVALID_QUERY"),
        ("/api/v1/orders?cursor=djE6MA", "INVALID_CURSOR"),
    ] {
        let (status, body) = app.get(key, path).await;
        assert_error(status, &body, 400, code);
    }
    app.stop().await;
}

#[tokio::test]
async fn orders_show_what_was_charged() {
    let app = TestApp::spawn().await;
    let key = &app.partner.live_key;
    let mut body = order("asia-pacific-20");
    body["term_months"] = json!(6);
    body["reference_id"] = json!("po-77");
    let (_, p) = app.post(key, "/api/v1/esim/provision", &body).await;
    let (status, o) = app
        .get(
            key,
            &format!("/api/v1/orders/{}", p["order_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["order_id"], p["order_id"]);
    assert_eq!(o["esim_id"], p["esim_id"]);
    assert_eq!(o["status"], "completed");
    assert_eq!(o["plan_id"], "asia-pacific-20");
    assert_eq!(o["term_months"], 6);
    assert_eq!(o["amount_cents"], 6 * 2249);
    assert_eq!(o["amount_usd"], 134.94);
    assert_eq!(o["currency"], "USD");
    assert_eq!(o["reference_id"], "po-77");
    assert_eq!(o["environment"], "production");
    app.stop().await;
}

/// Suspensions over HTTP and from the admin CLI: the partner suspends and resumes its own
/// eSIMs (a repeat changes nothing), usage is refused meanwhile, and what the operator
/// suspended, only the operator resumes.
#[tokio::test]
async fn suspend_and_resume_by_the_partner_and_by_the_operator() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let id = app.provision(key, "eu-roam-50").await["esim_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = |action: &str| format!("/api/v1/esim/{id}/{action}");
    let (status, r) = app.post(key, &at("suspend"), &json!({})).await;
    assert_error(status, &r, 409, "INVALID_STATE_TRANSITION");
    let (status, _) = app
        .post(
            key,
            &format!("/api/v1/sandbox/esim/{id}/activate"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);

    for _ in 0..2 {
        let (status, s) = app.post(key, &at("suspend"), &json!({})).await;
        assert_eq!(
            (status, s["status"].as_str()),
            (200, Some("suspended")),
            "{s}"
        );
    }
    let (status, r) = app
        .post(
            key,
            &format!("/api/v1/sandbox/esim/{id}/usage"),
            &json!({"data_mb": 10}),
        )
        .await;
    assert_error(status, &r, 409, "INVALID_STATE_TRANSITION");
    let (status, r) = app
        .post(&app.other.sandbox_key, &at("resume"), &json!({}))
        .await;
    assert_error(status, &r, 404, "ESIM_NOT_FOUND");
    let (status, s) = app.post(key, &at("resume"), &json!({})).await;
    assert_eq!((status, s["status"].as_str()), (200, Some("active")), "{s}");

    // The operator's suspension.
    let printed: serde_json::Value = serde_json::from_slice(
        &app.admin(&[
            "esim",
            "suspend",
            &id,
            "--reason",
            "chargeback under review",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(
        printed,
        json!({"esim_id": id, "status": "suspended", "changed": true})
    );
    let (status, r) = app.post(key, &at("resume"), &json!({})).await;
    assert_error(status, &r, 409, "SUSPENDED_BY_OPERATOR");
    let (status, s) = app.post(key, &at("suspend"), &json!({})).await;
    assert_eq!((status, s["status"].as_str()), (200, Some("suspended")));
    let resumed: serde_json::Value =
        serde_json::from_slice(&app.admin(&["esim", "resume", &id]).await).unwrap();
    assert_eq!(resumed["status"], "active");
    let (_, s) = app.get(key, &format!("/api/v1/esim/{id}/status")).await;
    assert_eq!(s["status"], "active");
    app.stop().await;
}

/// Cancelling: an unused live eSIM is refunded in full onto the statement, once; retries
/// with the key replay the first answer; an activated eSIM is cancelled without a refund.
#[tokio::test]
async fn cancelling_refunds_an_unused_order_once_and_replays() {
    let app = TestApp::spawn().await;
    let key = &app.partner.live_key;
    let p = app.provision(key, "eu-roam-50").await;
    let (id, cost) = (
        p["esim_id"].as_str().unwrap().to_owned(),
        p["billing"]["cost_cents"].as_i64().unwrap(),
    );
    let body = json!({"reason": "trip cancelled"});
    let cancel = |k: Option<&'static str>, body: serde_json::Value| {
        let id = id.clone();
        let app = &app;
        async move {
            app.post_with(key, &format!("/api/v1/esim/{id}/cancel"), &body, k)
                .await
        }
    };
    let (status, first) = cancel(Some("cancel-7"), body.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "cancelled");
    assert_eq!(first["reason"], "trip cancelled");
    assert_eq!(first["refund"]["refunded"], true);
    assert_eq!(first["refund"]["amount_cents"], cost);
    let transaction = first["refund"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, account) = app.get(key, "/api/v1/account").await;
    assert_eq!(account["balance"]["available_cents"], START_BALANCE_CENTS);
    let (_, statement) = app.get(key, "/api/v1/account/transactions?limit=1").await;
    assert_eq!(statement["data"][0]["kind"], "refund");
    assert_eq!(statement["data"][0]["transaction_id"], transaction.as_str());
    assert_eq!(statement["data"][0]["esim_id"], id.as_str());

    let replay = app
        .client
        .post(app.url(&format!("/api/v1/esim/{id}/cancel")))
        .bearer_auth(key)
        .header("Idempotency-Key", "cancel-7")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replayed: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(replayed["refund"], first["refund"]);
    let (status, r) = cancel(Some("cancel-7"), json!({"reason": "other"})).await;
    assert_error(status, &r, 422, "IDEMPOTENCY_KEY_REUSED");
    let (status, again) = cancel(None, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        again["refund"], first["refund"],
        "a repeat is the first cancellation"
    );
    let (_, account) = app.get(key, "/api/v1/account").await;
    assert_eq!(account["balance"]["available_cents"], START_BALANCE_CENTS);

    // Activated: cancelled, nothing back, and nothing more can happen to it.
    let sandbox = &app.partner.sandbox_key;
    let used = app.provision(sandbox, "eu-roam-50").await["esim_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .post(
            sandbox,
            &format!("/api/v1/sandbox/esim/{used}/activate"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, c) = app
        .post(sandbox, &format!("/api/v1/esim/{used}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["refund"]["refunded"], false);
    assert_eq!(
        c["refund"]["explanation"],
        "not refunded: the eSIM was activated"
    );
    let (status, r) = app
        .post(sandbox, &format!("/api/v1/esim/{used}/suspend"), &json!({}))
        .await;
    assert_error(status, &r, 409, "INVALID_STATE_TRANSITION");
    let (status, r) = app
        .post(
            sandbox,
            &format!("/api/v1/esim/{used}/cancel"),
            &json!({"why": "x"}),
        )
        .await;
    assert_error(status, &r, 400, "VALIDATION_ERROR");
    app.stop().await;
}

/// The operator's view: a partner at a glance, its eSIMs, one eSIM, and a key rotation that
/// the API honours at once.
#[tokio::test]
async fn operator_commands_show_a_partner_its_esims_and_rotate_a_key() {
    let app = TestApp::spawn().await;
    let live = &app.partner.live_key;
    let first = app.provision(live, "eu-roam-50").await;
    app.provision(live, "uk-lite-10").await;
    app.provision(&app.partner.sandbox_key, "eu-roam-50").await;
    let json = |bytes: Vec<u8>| -> Vec<serde_json::Value> {
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let shown = &json(app.admin(&["partner", "show", &app.partner.id]).await)[0];
    assert_eq!(shown["id"], app.partner.id.as_str());
    assert_eq!(
        shown["esims"],
        json!([
            {"environment": "production", "status": "provisioned", "count": 2},
            {"environment": "sandbox", "status": "provisioned", "count": 1},
        ])
    );
    assert_eq!(shown["keys"]["production"], 1);
    assert!(shown["last_order_at"].is_string());
    let (_, account) = app.get(live, "/api/v1/account").await;
    assert_eq!(
        shown["live_balance"].as_str().unwrap(),
        format!("{:.2}", account["balance"]["available"].as_f64().unwrap())
    );

    let listed = json(
        app.admin(&[
            "esim",
            "list",
            "--partner",
            &app.partner.id,
            "--env",
            "live",
        ])
        .await,
    );
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["id"], first["esim_id"]);
    let one = &json(
        app.admin(&["esim", "show", first["esim_id"].as_str().unwrap()])
            .await,
    )[0];
    assert_eq!(one["iccid"], first["iccid"]);
    assert!(
        one.get("activation_code").is_none(),
        "the customer's secret stays out"
    );

    let keys = json(
        app.admin(&["key", "list", "--partner", &app.partner.id])
            .await,
    );
    let old = keys
        .iter()
        .find(|k| k["environment"] == "production")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = String::from_utf8(app.admin(&["key", "rotate", &old]).await).unwrap();
    let rotated = rotated.trim();
    assert!(rotated.starts_with("sk_live_"), "{rotated}");
    let (status, _) = app.get(rotated, "/api/v1/account").await;
    assert_eq!(status, 200);
    let (status, r) = app.get(live, "/api/v1/account").await;
    assert_error(status, &r, 401, "API_KEY_REVOKED");

    // With a grace period, the replaced key keeps working meanwhile.
    let current = json(
        app.admin(&["key", "list", "--partner", &app.partner.id])
            .await,
    )
    .into_iter()
    .find(|k| k["environment"] == "production" && k["revoked_at"].is_null())
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = String::from_utf8(
        app.admin(&["key", "rotate", &current, "--grace-hours", "2"])
            .await,
    )
    .unwrap();
    for key in [rotated, next.trim()] {
        let (status, _) = app.get(key, "/api/v1/account").await;
        assert_eq!(status, 200, "both work during the grace period");
    }
    let listed = json(
        app.admin(&["key", "list", "--partner", &app.partner.id])
            .await,
    );
    let expiring = listed.iter().find(|k| k["id"] == current.as_str()).unwrap();
    assert!(expiring["expires_at"].is_string(), "{expiring}");
    app.stop().await;
}
