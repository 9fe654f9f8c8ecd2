//! After the sale, over HTTP: packages, top-ups on offer, buying add-ons and renewals, the
//! queued package starting when the one in force ends, and refunds package by package.

use oytel_server::testing::OPERATOR_TOKEN;
use serde_json::{json, Value};

use crate::helpers::{assert_error, split, TestApp, START_BALANCE_CENTS};

/// Calls an operator route.
async fn operator(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body) = split(response).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Buys `topup_id` for `esim`, with `key` as the `Idempotency-Key`.
async fn buy(app: &TestApp, api_key: &str, esim: &str, topup_id: &str, key: &str) -> (u16, Value) {
    app.post_with(
        api_key,
        &format!("/api/v1/esim/{esim}/topups"),
        &json!({ "topup_id": topup_id }),
        Some(key),
    )
    .await
}

fn states(packages: &Value) -> Vec<(String, String)> {
    packages["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["package_id"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The whole life of one live eSIM, printed with its ledger: provision, a data add-on, a
/// renewal queued, usage across the thresholds, suspend and resume, the first package used up
/// and the queued one starting, another renewal queued, and a cancellation that refunds the
/// queued renewal only. The balance is the start minus the charges plus the refunds, to the
/// cent.
#[tokio::test]
async fn one_esims_whole_life_balances_to_the_cent() {
    let app = TestApp::spawn().await;
    let key = &app.partner.live_key;
    let p = app.provision(key, "eu-roam-20").await;
    let id = p["esim_id"].as_str().unwrap().to_owned();
    let iccid = p["iccid"].as_str().unwrap().to_owned();
    let plan_cost = p["billing"]["cost_cents"].as_i64().unwrap();
    let path = |tail: &str| format!("/api/v1/esim/{id}/{tail}");
    println!("provisioned {id}: eu-roam-20 for 1 month, {plan_cost} cents");

    let (status, offers) = app.get(key, &path("topups")).await;
    assert_eq!(status, 200, "{offers}");
    let price = |topup: &str| {
        offers["topups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["topup_id"] == topup)
            .unwrap_or_else(|| panic!("{topup} on offer: {offers}"))["price_cents"]
            .as_i64()
            .unwrap()
    };
    let (addon_cost, renewal_cost, long_cost) = (
        price("eu-boost-5"),
        price("renewal-1m"),
        price("renewal-3m"),
    );
    assert_eq!(
        renewal_cost, plan_cost,
        "a renewal costs what the plan does"
    );

    let (status, addon) = buy(&app, key, &id, "eu-boost-5", "life-addon").await;
    assert_eq!(status, 201, "{addon}");
    assert_eq!(addon["package"]["data_allowance_mb"], 25_000);
    assert_eq!(addon["package"]["state"], "active");
    let (status, again) = buy(&app, key, &id, "eu-boost-5", "life-addon").await;
    assert_eq!(status, 201);
    assert_eq!(
        again["purchase"], addon["purchase"],
        "a retry answers the first"
    );
    let (status, reused) = buy(&app, key, &id, "eu-boost-10", "life-addon").await;
    assert_error(status, &reused, 422, "IDEMPOTENCY_KEY_REUSED");
    println!("add-on eu-boost-5: {addon_cost} cents; allowance 25000 MB");

    let (status, renewal) = buy(&app, key, &id, "renewal-1m", "life-renewal").await;
    assert_eq!(status, 201, "{renewal}");
    assert_eq!(renewal["package"]["state"], "queued");
    assert_eq!(renewal["package"]["starts_at"], Value::Null);
    println!("renewal-1m queued: {renewal_cost} cents");

    operator(
        &app,
        "/api/v1/operator/activations",
        json!({"activations": [{"iccid": iccid}]}),
    )
    .await;
    let usage = |n: u32, mb: u64| {
        json!({"records": [{"record_id": format!("life-{n}"), "iccid": iccid, "data_mb": mb,
            "recorded_at": chrono::Utc::now().to_rfc3339()}]})
    };
    operator(&app, "/api/v1/operator/usage", usage(1, 12_500)).await;
    let (_, s) = app.get(key, &path("status")).await;
    assert_eq!(
        (&s["usage"]["data_used_mb"], &s["usage"]["data_limit_mb"]),
        (&json!(12_500), &json!(25_000))
    );

    for action in ["suspend", "resume"] {
        let (status, s) = app.post(key, &path(action), &json!({})).await;
        assert_eq!(status, 200, "{s}");
    }

    operator(&app, "/api/v1/operator/usage", usage(2, 12_600)).await;
    let (_, s) = app.get(key, &path("status")).await;
    assert_eq!(s["status"], "active");
    assert_eq!(
        (&s["usage"]["data_used_mb"], &s["usage"]["data_limit_mb"]),
        (&json!(0), &json!(20_000)),
        "the first package is used up and the queued renewal is in force: {s}"
    );
    let (_, packages) = app.get(key, &path("packages")).await;
    let first = &packages["packages"][0];
    assert_eq!(
        (&first["state"], &first["data_used_mb"]),
        (&json!("depleted"), &json!(25_100))
    );
    assert_eq!(packages["packages"][1]["state"], "active");
    assert!(packages["packages"][1]["activated_at"].is_string());
    assert_eq!(first["purchase_ids"][0], addon["purchase"]["purchase_id"]);

    let (status, long) = buy(&app, key, &id, "renewal-3m", "life-renewal-3").await;
    assert_eq!(status, 201, "{long}");

    let (status, cancel) = app
        .post_with(
            key,
            &path("cancel"),
            &json!({"reason": "trip over"}),
            Some("life-cancel"),
        )
        .await;
    assert_eq!(status, 200, "{cancel}");
    let refund = &cancel["refund"];
    assert_eq!(
        refund["amount_cents"], long_cost,
        "only the queued renewal: {refund}"
    );
    let parts: Vec<(&str, i64)> = refund["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["state"].as_str().unwrap(),
                p["amount_cents"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        parts,
        [("depleted", 0), ("cancelled", 0), ("refunded", long_cost)]
    );
    let (_, packages) = app.get(key, &path("packages")).await;
    println!("packages: {:?}", states(&packages));

    let (_, statement) = app.get(key, "/api/v1/account/transactions?limit=100").await;
    let mut lines: Vec<&Value> = statement["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] != "credit")
        .collect();
    lines.reverse();
    println!("ledger (after the opening credit of {START_BALANCE_CENTS}):");
    for l in &lines {
        println!(
            "  {:>7} {:>8} {:>8}  {}",
            l["kind"].as_str().unwrap(),
            l["amount_cents"],
            l["balance_after_cents"],
            l["description"].as_str().unwrap()
        );
        assert_eq!(l["esim_id"], id.as_str());
    }
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["charge", "charge", "charge", "charge", "refund"]);
    let expected =
        START_BALANCE_CENTS - plan_cost - addon_cost - renewal_cost - long_cost + long_cost;
    let (_, account) = app.get(key, "/api/v1/account").await;
    println!(
        "balance: {START_BALANCE_CENTS} - {plan_cost} - {addon_cost} - {renewal_cost} - {long_cost} + {long_cost} = {expected}; the account says {}",
        account["balance"]["available_cents"]
    );
    assert_eq!(account["balance"]["available_cents"], expected);
    assert_eq!(lines.last().unwrap()["balance_after_cents"], expected);
    assert_eq!(
        lines.last().unwrap()["purchase_id"],
        long["purchase"]["purchase_id"]
    );
}

/// What a top-up may not do, each with its code; and the queued package starting when the
/// one in force expires, or at once for an expired eSIM that was installed.
#[tokio::test]
async fn top_ups_are_refused_clearly_and_renewals_start_when_the_package_ends() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    let provision = || async {
        app.provision(key, "uk-lite-10").await["esim_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let id = provision().await;
    let path = |id: &str, tail: &str| format!("/api/v1/esim/{id}/{tail}");

    let (status, r) = buy(&app, key, &id, "eu-boost-5", "k1").await;
    assert_error(status, &r, 409, "TOPUP_NOT_AVAILABLE");
    assert!(r["error"].as_str().unwrap().contains("europe plans"), "{r}");
    let (status, r) = buy(&app, key, &id, "nope", "k2").await;
    assert_error(status, &r, 409, "TOPUP_NOT_AVAILABLE");
    let (status, r) = buy(&app, &app.other.sandbox_key, &id, "renewal-1m", "k3").await;
    assert_error(status, &r, 404, "ESIM_NOT_FOUND");
    let (status, r) = app
        .post(
            key,
            &path(&id, "topups"),
            &json!({"topup_id": "renewal-1m", "extra": 1}),
        )
        .await;
    assert_error(status, &r, 400, "VALIDATION_ERROR");

    // Queued on an eSIM never installed: it starts when the first package expires.
    let (status, _) = buy(&app, key, &id, "renewal-1m", "k4").await;
    assert_eq!(status, 201);
    let (status, s) = app
        .post(
            key,
            &format!("/api/v1/sandbox/esim/{id}/expire"),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, s["status"].as_str()),
        (200, Some("provisioned")),
        "{s}"
    );
    let (_, packages) = app.get(key, &path(&id, "packages")).await;
    let got: Vec<String> = states(&packages).into_iter().map(|(_, s)| s).collect();
    assert_eq!(got, ["expired", "active"]);
    assert_eq!(packages["packages"][1]["activated_at"], Value::Null);
    let (_, s) = app
        .post(
            key,
            &format!("/api/v1/sandbox/esim/{id}/expire"),
            &json!({}),
        )
        .await;
    assert_eq!(s["status"], "expired");
    let (status, r) = buy(&app, key, &id, "uk-boost-5", "k5").await;
    assert_error(status, &r, 409, "TOPUP_NOT_ALLOWED");
    let (status, r) = buy(&app, key, &id, "renewal-1m", "k6").await;
    assert_error(status, &r, 409, "TOPUP_NOT_ALLOWED");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("without being installed"),
        "{r}"
    );
    let (_, offers) = app.get(key, &path(&id, "topups")).await;
    assert_eq!(offers["topups"], json!([]));

    // Expired after being installed: a renewal brings it back at once.
    let id = provision().await;
    for step in ["activate", "expire"] {
        let (status, s) = app
            .post(
                key,
                &format!("/api/v1/sandbox/esim/{id}/{step}"),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{s}");
    }
    let (_, offers) = app.get(key, &path(&id, "topups")).await;
    let kinds: Vec<&str> = offers["topups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.iter().all(|k| *k == "renewal") && !kinds.is_empty(),
        "{offers}"
    );
    let (status, r) = buy(&app, key, &id, "renewal-3m", "k7").await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["package"]["state"], "active");
    let (_, s) = app.get(key, &path(&id, "status")).await;
    assert_eq!(s["status"], "active");
    assert_eq!(s["expires_at"], r["package"]["ends_at"]);

    // Cancelled: nothing on offer, nothing sold.
    let (status, _) = app.post(key, &path(&id, "cancel"), &json!({})).await;
    assert_eq!(status, 200);
    let (status, r) = buy(&app, key, &id, "renewal-1m", "k8").await;
    assert_error(status, &r, 409, "TOPUP_NOT_ALLOWED");
    let (_, offers) = app.get(key, &path(&id, "topups")).await;
    assert_eq!(offers["topups"], json!([]));
}

/// A live top-up the balance cannot pay is refused with 402 and charges nothing.
#[tokio::test]
async fn a_top_up_the_balance_cannot_pay_charges_nothing() {
    let app = TestApp::spawn().await;
    let key = &app.partner.live_key;
    let id = app.provision(key, "global-connect-10").await["esim_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bought = 0;
    let last = loop {
        let (status, r) = buy(&app, key, &id, "renewal-12m", &format!("r{bought}")).await;
        if status != 201 {
            break (status, r);
        }
        bought += 1;
    };
    assert_error(last.0, &last.1, 402, "INSUFFICIENT_BALANCE");
    // A retry of the last purchase that went through is its replay, not a 402.
    let (status, replay) = buy(&app, key, &id, "renewal-12m", &format!("r{}", bought - 1)).await;
    assert_eq!(status, 201, "{replay}");
    let (_, account) = app.get(key, "/api/v1/account").await;
    let (_, packages) = app.get(key, &format!("/api/v1/esim/{id}/packages")).await;
    assert_eq!(packages["packages"].as_array().unwrap().len(), 1 + bought);
    let (_, statement) = app.get(key, "/api/v1/account/transactions?limit=100").await;
    let lines = statement["data"].as_array().unwrap();
    let charged: i64 = lines
        .iter()
        .filter(|l| l["kind"] == "charge")
        .map(|l| l["amount_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(
        lines.iter().filter(|l| l["kind"] == "charge").count(),
        1 + bought
    );
    assert_eq!(
        account["balance"]["available_cents"].as_i64().unwrap(),
        START_BALANCE_CENTS + charged
    );
}
