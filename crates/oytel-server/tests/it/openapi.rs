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
    fn parses<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> bool {
        serde_json::from_value::<T>(value.clone()).is_ok()
    }
    use oytel_types as t;
    type Parses = fn(&serde_json::Value) -> bool;
    let checks: [(&str, Parses); 9] = [
        ("ProvisionResponse", parses::<t::ProvisionResponse>),
        ("StatusResponse", parses::<t::StatusResponse>),
        ("ErrorBody", parses::<t::ErrorBody>),
        ("WebhookEvent", parses::<t::WebhookEvent>),
        ("PlansResponse", parses::<t::PlansResponse>),
        ("TopUpOffersResponse", parses::<t::TopUpOffersResponse>),
        ("PackagesResponse", parses::<t::PackagesResponse>),
        ("TopUpResponse", parses::<t::TopUpResponse>),
        ("CancelResponse", parses::<t::CancelResponse>),
    ];
    let names: Vec<&str> = examples.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, checks.map(|(name, _)| name));
    for ((name, value), (_, parses)) in examples.iter().zip(checks) {
        assert_eq!(
            &spec["components"]["schemas"][name]["examples"][0], value,
            "{name}"
        );
        assert!(parses(value), "{name}");
    }
}

/// Every route a partner key opens answers 401 and 429 with the one shared definition of
/// each, and every reference in the spec names something the spec defines.
#[test]
fn shared_error_answers_are_defined_once_and_every_reference_resolves() {
    let spec = oytel_server::openapi::to_json(&oytel_server::openapi::spec()).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let mut partner_routes = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let bearer = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if !bearer {
                continue;
            }
            partner_routes += 1;
            for (status, name) in [("401", "Unauthorized"), ("429", "RateLimited")] {
                assert_eq!(
                    op["responses"][status]["$ref"],
                    format!("#/components/responses/{name}"),
                    "{method} {path} {status}"
                );
            }
        }
    }
    assert!(partner_routes >= 20, "{partner_routes}");
    let mut refs = Vec::new();
    collect_refs(&spec, &mut refs);
    for reference in refs {
        let pointer = reference.trim_start_matches('#');
        assert!(spec.pointer(pointer).is_some(), "{reference} resolves");
    }
}

fn collect_refs(value: &serde_json::Value, refs: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", serde_json::Value::String(r)) => refs.push(r.clone()),
                    _ => collect_refs(v, refs),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
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

/// The spec states the bounds the server enforces, so that generated clients and
/// validators agree with it: page sizes, the `Idempotency-Key` header, webhook URLs.
#[test]
fn the_spec_states_the_bounds_the_server_enforces() {
    let spec = oytel_server::openapi::to_json(&oytel_server::openapi::spec()).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let (mut limits, mut keys) = (0, 0);
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for param in op["parameters"].as_array().into_iter().flatten() {
                let schema = &param["schema"];
                match param["name"].as_str() {
                    Some("limit") => {
                        assert_eq!(
                            (schema["minimum"].as_i64(), schema["maximum"].as_i64()),
                            (Some(1), Some(100)),
                            "{method} {path}"
                        );
                        limits += 1;
                    }
                    Some("Idempotency-Key") => {
                        assert_eq!(
                            (schema["minLength"].as_i64(), schema["maxLength"].as_i64()),
                            (Some(1), Some(255)),
                            "{method} {path}"
                        );
                        keys += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(limits >= 4 && keys >= 2, "{limits} limits, {keys} keys");
    for (schema, field) in [
        ("CreateWebhookEndpoint", "url"),
        ("UpdateWebhookEndpoint", "url"),
        ("ProvisionRequest", "webhook_url"),
    ] {
        let url = &spec["components"]["schemas"][schema]["properties"][field];
        assert_eq!(url["maxLength"], 2048, "{schema}.{field}");
        assert!(
            url["pattern"]
                .as_str()
                .is_some_and(|p| p.starts_with("^https?://")),
            "{schema}.{field}"
        );
    }
}
