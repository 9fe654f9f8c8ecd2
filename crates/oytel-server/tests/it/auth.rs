use crate::helpers::{assert_error, split, TestApp};
use oytel_core::clock::now;

#[tokio::test]
async fn both_header_forms_authenticate() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    for request in [
        app.client.get(app.url("/api/v1/account")).bearer_auth(key),
        app.client
            .get(app.url("/api/v1/account"))
            .header("X-API-Key", key),
        app.client
            .get(app.url("/api/v1/account"))
            .header("Authorization", format!("bearer {key}")),
    ] {
        let (status, body) = split(request.send().await.unwrap()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["partner_id"], app.partner.id.as_str());
    }
    app.stop().await;
}

#[tokio::test]
async fn missing_malformed_unknown_and_conflicting_keys_are_401() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v1/esims");
    let cases = [
        (app.client.get(&url), "MISSING_API_KEY"),
        (
            app.client.get(&url).header("Authorization", "Bearer "),
            "MISSING_API_KEY",
        ),
        (
            app.client
                .get(&url)
                .header("Authorization", "Basic dXNlcjpwYXNz"),
            "INVALID_API_KEY",
        ),
        (
            app.client
                .get(&url)
                .bearer_auth("sk_live_0000000000000000000000000000000000000000"),
            "INVALID_API_KEY",
        ),
        (
            app.client.get(&url).bearer_auth("pk_test_123"),
            "INVALID_API_KEY",
        ),
        (
            app.client
                .get(&url)
                .bearer_auth(format!("sk_sandbox_{}", "a".repeat(500))),
            "INVALID_API_KEY",
        ),
        (
            app.client
                .get(&url)
                .header("X-API-Key", "sk_sandbox_'; DROP TABLE api_keys; --"),
            "INVALID_API_KEY",
        ),
        (
            app.client
                .get(&url)
                .header("X-API-Key", &app.partner.sandbox_key)
                .bearer_auth(&app.other.sandbox_key),
            "INVALID_API_KEY",
        ),
    ];
    for (request, code) in cases {
        let (status, body) = split(request.send().await.unwrap()).await;
        assert_error(status, &body, 401, code);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let key = &app.partner.sandbox_key;
    assert_eq!(app.get(key, "/api/v1/account").await.0, 200);
    let keys = app.store.list_api_keys(&app.partner.id).await.unwrap();
    let sandbox = keys
        .iter()
        .find(|k| k.environment == oytel_types::Environment::Sandbox)
        .unwrap();
    assert!(key.starts_with(&sandbox.hint));
    assert!(app.store.revoke_api_key(&sandbox.id, now()).await.unwrap());
    let (status, body) = app.get(key, "/api/v1/account").await;
    assert_error(status, &body, 401, "API_KEY_REVOKED");
    // The live key of the same partner still works.
    assert_eq!(
        app.get(&app.partner.live_key, "/api/v1/account").await.0,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_have_envelopes() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .get(&app.partner.sandbox_key, "/api/v1/nothing-here")
        .await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let response = app
        .client
        .delete(app.url("/api/v1/plans"))
        .send()
        .await
        .unwrap();
    let (status, body) = split(response).await;
    assert_error(status, &body, 405, "METHOD_NOT_ALLOWED");
    app.stop().await;
}
