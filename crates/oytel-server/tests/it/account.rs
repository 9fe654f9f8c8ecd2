use crate::helpers::{TestApp, START_BALANCE_CENTS};

#[tokio::test]
async fn account_shows_balance_minimum_and_limits_per_environment() {
    let app = TestApp::spawn().await;
    let (status, live) = app.get(&app.partner.live_key, "/api/v1/account").await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["partner_id"], app.partner.id.as_str());
    assert_eq!(live["name"], "Partner A");
    assert_eq!(live["environment"], "production");
    assert!(live["key_id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(live["balance"]["available_cents"], START_BALANCE_CENTS);
    assert_eq!(live["balance"]["available"], 1000.0);
    assert_eq!(live["balance"]["minimum"], 25.0);
    assert_eq!(live["balance"]["currency"], "USD");
    // Test partners have their own raised limits; the account shows what applies.
    let raised = oytel_server::testing::RAISED_LIMITS;
    assert_eq!(
        live["limits"]["provision_per_hour"],
        raised.provision_per_hour.unwrap()
    );
    assert_eq!(
        live["limits"]["status_per_hour"],
        raised.status_per_hour.unwrap()
    );
    assert_eq!(
        live["limits"]["burst_per_second"],
        raised.burst_per_second.unwrap()
    );

    let (_, sandbox) = app.get(&app.partner.sandbox_key, "/api/v1/account").await;
    assert_eq!(sandbox["environment"], "sandbox");
    assert_eq!(sandbox["balance"]["available"], 100.0);
    assert_eq!(sandbox["balance"]["minimum"], 0.0);
    assert_ne!(sandbox["key_id"], live["key_id"]);
    app.stop().await;
}

/// The statement: the live balance's credits and charges, newest first, paged, between dates,
/// as JSON or CSV; nothing for a sandbox key, nothing of another partner.
#[tokio::test]
async fn the_statement_lists_credits_and_charges_newest_first_as_json_or_csv() {
    use serde_json::json;
    let app = TestApp::spawn().await;
    let key = &app.partner.live_key;
    let (status, p) = app
        .post(
            key,
            "/api/v1/esim/provision",
            &crate::helpers::order("eu-roam-50"),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let cost = p["billing"]["cost_cents"].as_i64().unwrap();
    app.store
        .credit(
            &app.partner.id,
            2_500,
            "wire 2026-11-30, \"ref\" 7",
            oytel_core::clock::now(),
        )
        .await
        .unwrap();

    let (status, page) = app.get(key, "/api/v1/account/transactions?limit=2").await;
    assert_eq!(status, 200, "{page}");
    let lines = page["data"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "credit");
    assert_eq!(lines[0]["amount_cents"], 2_500);
    assert_eq!(lines[1]["kind"], "charge");
    assert_eq!(lines[1]["amount_cents"], -cost);
    assert_eq!(lines[1]["balance_after_cents"], START_BALANCE_CENTS - cost);
    assert_eq!(lines[1]["order_id"], p["order_id"]);
    assert_eq!(lines[1]["esim_id"], p["esim_id"]);
    assert_eq!(
        lines[0]["balance_after_cents"],
        START_BALANCE_CENTS - cost + 2_500
    );
    assert_eq!(
        page["has_more"], true,
        "the opening credit is on the next page"
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(
            key,
            &format!("/api/v1/account/transactions?limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(rest["data"][0]["amount_cents"], START_BALANCE_CENTS);
    assert_eq!(rest["has_more"], false);

    // Dates: nothing before the opening credit, everything until a minute from now.
    let later = (chrono::Utc::now() + chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, until) = app
        .get(key, &format!("/api/v1/account/transactions?to={later}"))
        .await;
    assert_eq!(until["data"].as_array().unwrap().len(), 3);
    let (_, after) = app
        .get(key, &format!("/api/v1/account/transactions?from={later}"))
        .await;
    assert_eq!(after["data"], json!([]));
    let (status, empty) = app
        .get(
            key,
            &format!("/api/v1/account/transactions?from={later}&to={later}"),
        )
        .await;
    assert_eq!(
        (status, &empty["data"]),
        (200, &json!([])),
        "an empty range holds nothing"
    );

    // CSV: the same page, the next one in `Link`.
    let csv = app
        .client
        .get(app.url("/api/v1/account/transactions?limit=2"))
        .bearer_auth(key)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let link = csv.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.starts_with("</api/v1/account/transactions?limit=2&cursor="),
        "{link}"
    );
    assert!(link.ends_with(">; rel=\"next\""), "{link}");
    let text = csv.text().await.unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[0].starts_with("transaction_id,created_at,kind,amount"));
    assert!(rows[1].contains(",credit,25.00,"), "{}", rows[1]);
    assert!(
        rows[1].ends_with(",\"wire 2026-11-30, \"\"ref\"\" 7\""),
        "{}",
        rows[1]
    );
    assert!(rows[2].contains(&format!(
        ",charge,-{},",
        oytel_types::Amount::from_cents(cost)
    )));

    // Sandbox keys and other partners see none of it.
    let (_, sandbox) = app
        .get(&app.partner.sandbox_key, "/api/v1/account/transactions")
        .await;
    assert_eq!(sandbox["data"], json!([]));
    let (_, other) = app
        .get(&app.other.live_key, "/api/v1/account/transactions")
        .await;
    assert!(other["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["order_id"].is_null() && t["kind"] == "credit"));
    app.stop().await;
}

/// The low-balance threshold: set, kept, removed with a live key; refused for sandbox keys
/// and below zero; shown by the account; set by the operator too.
#[tokio::test]
async fn the_low_balance_threshold_is_set_with_a_live_key_or_by_the_operator() {
    use serde_json::json;
    let app = TestApp::spawn().await;
    let key = &app.partner.live_key;
    let patch = |key: &str, body: serde_json::Value| {
        let request = app
            .client
            .patch(app.url("/api/v1/account"))
            .bearer_auth(key)
            .json(&body);
        async move { crate::helpers::split(request.send().await.unwrap()).await }
    };
    let (_, account) = app.get(key, "/api/v1/account").await;
    assert_eq!(account["low_balance_threshold"], serde_json::Value::Null);
    let (status, account) = patch(key, json!({"low_balance_threshold": 250.5})).await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["low_balance_threshold"], 250.5);
    let (_, account) = patch(key, json!({})).await;
    assert_eq!(
        account["low_balance_threshold"], 250.5,
        "left out, it stays"
    );
    let (status, r) = patch(key, json!({"low_balance_threshold": -1})).await;
    crate::helpers::assert_error(status, &r, 400, "VALIDATION_ERROR");
    let (status, r) = patch(
        &app.partner.sandbox_key,
        json!({"low_balance_threshold": 5}),
    )
    .await;
    crate::helpers::assert_error(status, &r, 403, "FORBIDDEN");
    let (_, account) = patch(key, json!({"low_balance_threshold": null})).await;
    assert_eq!(account["low_balance_threshold"], serde_json::Value::Null);

    app.admin(&[
        "partner",
        "low-balance",
        &app.partner.id,
        "--threshold",
        "99.90",
    ])
    .await;
    let (_, account) = app.get(key, "/api/v1/account").await;
    assert_eq!(account["low_balance_threshold"], 99.9);
    app.stop().await;
}
