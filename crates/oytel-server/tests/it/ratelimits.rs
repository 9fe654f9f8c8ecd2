//! The documented limits: provisioning 100/hour, status 1000/hour, plans unlimited, a burst of
//! 10/second, per partner and environment, raised per partner; with headers on every limited
//! route and 429 + Retry-After past a limit.

use oytel_core::limits::LimitOverrides;
use oytel_server::testing::{make_partner_with_default_limits, TestPartner};
use serde_json::json;

use crate::helpers::{assert_error, order, send_all, split, TestApp};

async fn partner_with(app: &TestApp, limits: LimitOverrides) -> TestPartner {
    let partner = make_partner_with_default_limits(app.store.as_ref(), "Limited").await;
    app.store
        .set_partner_limits(&partner.id, &limits)
        .await
        .unwrap();
    partner
}

const NO_BURST: LimitOverrides = LimitOverrides {
    provision_per_hour: None,
    status_per_hour: None,
    burst_per_second: Some(100_000),
};

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_101st_provision_in_an_hour_is_refused_with_retry_after() {
    let app = TestApp::spawn().await;
    let partner = partner_with(&app, NO_BURST).await;
    let send = || {
        app.client
            .post(app.url("/api/v1/esim/provision"))
            .bearer_auth(&partner.sandbox_key)
            .json(&order("uk-lite-10"))
            .send()
    };
    for i in 1..=100u32 {
        let response = send().await.unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(header(&response, "x-ratelimit-limit"), "100");
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            (100 - i).to_string()
        );
        if i == 1 {
            let reset: i64 = header(&response, "x-ratelimit-reset").parse().unwrap();
            let now = chrono::Utc::now().timestamp();
            assert!(
                reset > now && reset <= now + 3600 && reset % 3600 == 0,
                "{reset}"
            );
            assert_eq!(
                header(&response, "ratelimit-policy"),
                "\"hourly\";q=100;w=3600, \"burst\";q=100000;w=1"
            );
            assert!(header(&response, "ratelimit").starts_with("\"hourly\";r=99;t="));
        }
    }
    let response = send().await.unwrap();
    let retry_after: u64 = header(&response, "retry-after").parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&response, "x-ratelimit-remaining"), "0");
    let (status, body) = split(response).await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    assert_eq!(body["details"]["limit"], "provision_per_hour");
    assert_eq!(body["details"]["retry_after_seconds"], retry_after);
    assert_eq!(
        app.esim_count(&partner.sandbox_key).await,
        100,
        "nothing written for the refused one"
    );
    // The quota is per environment: live is untouched.
    assert_eq!(
        app.post(
            &partner.live_key,
            "/api/v1/esim/provision",
            &order("uk-lite-10")
        )
        .await
        .0,
        201
    );
    app.stop().await;
}

#[tokio::test]
async fn eleven_requests_within_a_second_trip_the_burst_limit() {
    let app = TestApp::spawn().await;
    let partner = partner_with(&app, LimitOverrides::default()).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..11 {
        let response = app
            .client
            .get(app.url("/api/v1/plans"))
            .bearer_auth(&partner.sandbox_key)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        last = Some(response);
    }
    assert_eq!(&statuses[..10], &[200; 10]);
    let refused = last.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(header(&refused, "x-ratelimit-limit"), "10");
    assert_eq!(header(&refused, "ratelimit-policy"), "\"burst\";q=10;w=1");
    let (status, body) = split(refused).await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    assert_eq!(body["details"]["limit"], "burst_per_second");
    // Another partner is not affected; after a second the partner may go on.
    assert_eq!(
        app.get(&app.other.sandbox_key, "/api/v1/plans").await.0,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(app.get(&partner.sandbox_key, "/api/v1/plans").await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn an_override_lifts_the_limits_and_the_account_shows_it() {
    let app = TestApp::spawn().await;
    let partner = partner_with(&app, LimitOverrides::default()).await;
    let (_, account) = app.get(&partner.live_key, "/api/v1/account").await;
    assert_eq!(
        account["limits"],
        json!({"provision_per_hour": 100, "status_per_hour": 1000, "burst_per_second": 10})
    );
    let raised = LimitOverrides {
        provision_per_hour: Some(5_000),
        status_per_hour: None,
        burst_per_second: Some(50),
    };
    app.store
        .set_partner_limits(&partner.id, &raised)
        .await
        .unwrap();
    let (_, account) = app.get(&partner.live_key, "/api/v1/account").await;
    assert_eq!(
        account["limits"],
        json!({"provision_per_hour": 5000, "status_per_hour": 1000, "burst_per_second": 50})
    );
    for _ in 0..30 {
        assert_eq!(app.get(&partner.live_key, "/api/v1/plans").await.0, 200);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_replayed_provision_does_not_count_against_the_quota() {
    let app = TestApp::spawn().await;
    let partner = partner_with(
        &app,
        LimitOverrides {
            provision_per_hour: Some(2),
            ..NO_BURST
        },
    )
    .await;
    let key = &partner.sandbox_key;
    let body = order("uk-lite-10");
    assert_eq!(
        app.post_with(key, "/api/v1/esim/provision", &body, Some("k-1"))
            .await
            .0,
        201
    );
    for _ in 0..3 {
        assert_eq!(
            app.post_with(key, "/api/v1/esim/provision", &body, Some("k-1"))
                .await
                .0,
            201,
            "replays are free"
        );
    }
    assert_eq!(
        app.post_with(key, "/api/v1/esim/provision", &body, Some("k-2"))
            .await
            .0,
        201
    );
    let (status, refused) = app
        .post_with(key, "/api/v1/esim/provision", &body, Some("k-3"))
        .await;
    assert_error(status, &refused, 429, "RATE_LIMITED");
    // The refused key was released: it works once the quota allows.
    assert_eq!(
        app.post_with(key, "/api/v1/esim/provision", &body, Some("k-1"))
            .await
            .0,
        201,
        "still replayable"
    );
    app.stop().await;
}

#[tokio::test]
async fn esim_and_order_reads_share_the_status_quota_and_plans_do_not() {
    let app = TestApp::spawn().await;
    let partner = partner_with(
        &app,
        LimitOverrides {
            status_per_hour: Some(4),
            ..NO_BURST
        },
    )
    .await;
    let key = &partner.sandbox_key;
    let p = app.provision(key, "uk-lite-10").await;
    let id = p["esim_id"].as_str().unwrap();
    for path in [
        format!("/api/v1/esim/{id}"),
        format!("/api/v1/esim/{id}/status"),
        "/api/v1/esims".to_owned(),
        format!("/api/v1/orders/{}", p["order_id"].as_str().unwrap()),
    ] {
        assert_eq!(app.get(key, &path).await.0, 200, "{path}");
    }
    let (status, body) = app.get(key, "/api/v1/orders").await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    assert_eq!(body["details"]["limit"], "status_per_hour");
    for _ in 0..5 {
        assert_eq!(
            app.get(key, "/api/v1/plans").await.0,
            200,
            "plans have no quota"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn failed_authentication_is_limited_per_client_address() {
    let app = TestApp::spawn().await;
    let bad = "sk_live_0000000000000000000000000000000000000000";
    for _ in 0..oytel_server::ratelimit::AUTH_FAILURES_PER_MINUTE {
        assert_eq!(app.get(bad, "/api/v1/plans").await.0, 401);
    }
    let (status, body) = app.get(bad, "/api/v1/plans").await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    assert_eq!(body["details"]["limit"], "auth_failures_per_minute");
    // The throttle refuses failed attempts only: a right key from this address goes through.
    let (status, _) = app.get(&app.partner.sandbox_key, "/api/v1/plans").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_concurrent_provisions_admit_exactly_the_hourly_quota() {
    let app = TestApp::spawn().await;
    let partner = partner_with(&app, NO_BURST).await;
    let responses = send_all((0..300).map(|_| {
        app.client
            .post(app.url("/api/v1/esim/provision"))
            .bearer_auth(&partner.live_key)
            .json(&order("uk-lite-10"))
    }))
    .await;
    let mut created = 0;
    let mut limited = 0;
    for response in responses {
        match response.unwrap().status().as_u16() {
            201 => created += 1,
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    println!("300 concurrent provisions: {created} admitted, {limited} refused with 429");
    assert_eq!((created, limited), (100, 200));
    assert_eq!(app.esim_count(&partner.live_key).await, 100);
    app.stop().await;
}
