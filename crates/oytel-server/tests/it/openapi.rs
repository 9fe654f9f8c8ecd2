use crate::helpers::TestApp;

#[tokio::test]
async fn the_spec_is_served_as_json_and_yaml_with_this_server_first() {
    let app = TestApp::spawn().await;
    let json: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(json["servers"][0]["url"], app.base.as_str());
    assert_eq!(json["servers"][1]["url"], "https://api.oytel.online");
    let committed = oytel_server::openapi::to_json(&oytel_server::openapi::spec()).unwrap();
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        json["paths"], committed["paths"],
        "served and committed paths agree"
    );
    for path in [
        "/api/v1/plans",
        "/api/v1/esim/provision",
        "/api/v1/esim/{esim_id}/status",
    ] {
        assert!(json["paths"].get(path).is_some(), "{path}");
    }
    let yaml = app
        .client
        .get(app.url("/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(yaml.headers()["content-type"], "application/yaml");
    let yaml = yaml.text().await.unwrap();
    assert!(yaml.starts_with("openapi: 3.1"), "{}", &yaml[..40]);
    app.stop().await;
}

#[test]
fn the_main_answers_have_examples_that_parse_as_their_types() {
    let spec = oytel_server::openapi::to_json(&oytel_server::openapi::spec()).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let examples = oytel_server::openapi::examples();
    assert_eq!(examples.len(), 5);
    for (name, value) in &examples {
        assert_eq!(
            &spec["components"]["schemas"][name]["examples"][0], value,
            "{name}"
        );
        let parsed = match *name {
            "ProvisionResponse" => {
                serde_json::from_value::<oytel_types::ProvisionResponse>(value.clone()).is_ok()
            }
            "StatusResponse" => {
                serde_json::from_value::<oytel_types::StatusResponse>(value.clone()).is_ok()
            }
            "ErrorBody" => serde_json::from_value::<oytel_types::ErrorBody>(value.clone()).is_ok(),
            "WebhookEvent" => {
                serde_json::from_value::<oytel_types::WebhookEvent>(value.clone()).is_ok()
            }
            "PlansResponse" => {
                serde_json::from_value::<oytel_types::PlansResponse>(value.clone()).is_ok()
            }
            other => panic!("no check for {other}"),
        };
        assert!(parsed, "{name}");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_"));
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
    app.stop().await;
}
