//! The wire types against the two clients that define the wire shape:
//!
//! 1. Every JSON example of the public API documentation (copied verbatim below) parses into
//!    our types and serializes back with every one of its fields and values. The examples are
//!    partial (the documentation shows a few fields of each answer), so each is laid over a
//!    complete value of the type before parsing: what the example states must survive the
//!    round trip unchanged.
//! 2. Every field that the published Python SDK `oytel-esim-sdk` 1.0.0 reads (its README and
//!    `oytel/types.py`) is present in our answers.

#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use oytel_types::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

// ---- The examples of the API documentation, verbatim. ----

const DOC_PLANS: &str = r#"{ "plans": [ { "id": "uk-massive-650", "name": "UK Massive 650", "description": "650GB UK data with 35GB roaming", "pricing": { "1_month": 29.95, "3_months": 28.46, "6_months": 26.96, "12_months": 26.36 }, "features": { "uk_data": "650GB", "roaming_data": "35GB", "validity_days": 30 } } ] }"#;
const DOC_PROVISION_REQUEST: &str = r#"{ "plan_id": "uk-massive-650", "term_months": 1, "customer_email": "user@example.com", "customer_name": "John Doe" }"#;
const DOC_PROVISION_RESPONSE: &str = r#"{ "success": true, "esim_id": "esim_123456", "iccid": "8944123456789", "qr_code_url": "https://...", "mobile_number": "+447123456789", "expires_at": "2024-02-15T10:30:00Z" }"#;
const DOC_STATUS: &str = r#"{ "esim_id": "esim_123456", "status": "active", "usage": { "data_used_mb": 1024, "data_limit_mb": 650000, "calls_made": 45, "sms_sent": 12 }, "expires_at": "2024-02-15T10:30:00Z" }"#;
const DOC_WEBHOOK: &str = r#"{ "event": "esim.provisioned", "timestamp": "2024-01-15T10:30:00Z", "data": { "esim_id": "esim_123456", "customer_email": "user@example.com", "plan_id": "uk-massive-650" } }"#;

// ---- Complete values of each type. ----

fn when() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn plan() -> Plan {
    Plan {
        id: "eu-roam-50".into(),
        name: "EU Roam 50".into(),
        description: "50GB across Europe".into(),
        coverage: "Europe".into(),
        countries: vec!["FR".into(), "DE".into()],
        region: "europe".into(),
        data_allowance: "50GB".into(),
        data_allowance_mb: 50_000,
        validity_days: 30,
        pricing: PlanPricing {
            one_month: Amount::from_cents(2495),
            three_months: Amount::from_cents(2370),
            six_months: Amount::from_cents(2245),
            twelve_months: Amount::from_cents(2120),
            base_price: Amount::from_cents(2495),
            currency: "USD".into(),
        },
        features: PlanFeatures {
            uk_data: None,
            roaming_data: Some("50GB".into()),
            validity_days: 30,
            network: "5G".into(),
            hotspot: true,
            calls_and_sms: true,
        },
        popular: true,
        available: true,
        environment: Environment::Sandbox,
    }
}

fn plans() -> PlansResponse {
    PlansResponse {
        success: true,
        plans: vec![plan()],
        meta: PlansMeta {
            total: 1,
            currency: "USD".into(),
            environment: Environment::Sandbox,
        },
    }
}

fn esim_plan() -> EsimPlan {
    EsimPlan {
        id: "eu-roam-50".into(),
        name: "EU Roam 50".into(),
        data_allowance: "50GB".into(),
        validity_days: 30,
        term_months: 1,
    }
}

fn meta() -> ResponseMeta {
    ResponseMeta {
        request_id: "req_1".into(),
        environment: Environment::Sandbox,
        timestamp: when(),
    }
}

fn provision_response() -> ProvisionResponse {
    ProvisionResponse {
        success: true,
        order_id: "ord_1".into(),
        esim_id: "esim_1".into(),
        iccid: "8944700000000000001".into(),
        qr_code_url: "https://api.example/qr/t.png".into(),
        activation_code: "LPA:1$smdp.example$ABCDE".into(),
        mobile_number: "+447700900000".into(),
        expires_at: when(),
        status: EsimStatus::Provisioned,
        reference_id: Some("ref".into()),
        esim: ProvisionedEsim {
            esim_id: "esim_1".into(),
            iccid: "8944700000000000001".into(),
            qr_code_url: "https://api.example/qr/t.png".into(),
            activation_code: "LPA:1$smdp.example$ABCDE".into(),
            mobile_number: "+447700900000".into(),
            status: EsimStatus::Provisioned,
            expires_at: when(),
            plan: esim_plan(),
            network_info: NetworkInfo {
                operator: "Oytel Mobile".into(),
                apn: "oytel".into(),
                network: "5G".into(),
            },
            activation_instructions: ActivationInstructions {
                ios: vec!["scan".into()],
                android: vec!["scan".into()],
                manual: vec!["type".into()],
            },
        },
        billing: Billing {
            cost_usd: Amount::from_cents(2495),
            cost_cents: 2495,
            currency: "USD".into(),
            remaining_balance: Amount::from_cents(10_000),
            remaining_balance_cents: 10_000,
            environment: Environment::Sandbox,
        },
        meta: meta(),
    }
}

fn status_response() -> StatusResponse {
    StatusResponse {
        success: true,
        esim_id: "esim_1".into(),
        status: EsimStatus::Active,
        usage: Usage {
            data_used_mb: 10,
            data_limit_mb: 50_000,
            calls_made: 1,
            sms_sent: 2,
        },
        expires_at: when(),
        esim: EsimStatusDetails {
            esim_id: "esim_1".into(),
            iccid: "8944700000000000001".into(),
            status: EsimStatus::Active,
            plan: esim_plan(),
            activation: Activation {
                activated: true,
                activated_at: Some(when()),
            },
            usage: Some(UsageDetails {
                used_mb: 10,
                total_mb: 50_000,
                remaining_mb: 49_990,
                usage_percentage: 0.02,
                calls_made: 1,
                sms_sent: 2,
            }),
            connection: Some(Connection {
                status: "connected".into(),
                current_network: Some(CurrentNetwork {
                    operator: "Orange".into(),
                    country_name: "France".into(),
                    signal_strength: 4,
                }),
            }),
            expires_at: when(),
        },
        meta: meta(),
    }
}

fn event() -> WebhookEvent {
    WebhookEvent {
        id: "evt_1".into(),
        event: EventType::UsageThreshold,
        timestamp: when(),
        data: WebhookEventData {
            esim_id: "esim_1".into(),
            customer_email: "a@example.com".into(),
            plan_id: "eu-roam-50".into(),
            iccid: None,
            reference_id: None,
            status: None,
            threshold_percent: Some(80),
            data_used_mb: Some(40_000),
            data_limit_mb: Some(50_000),
            topup: None,
            profile: None,
        },
    }
}

// ---- Helpers. ----

/// Lays `overlay` over `base`: objects key by key, arrays element by element.
fn overlay(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                overlay(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (Value::Array(base), Value::Array(over)) => {
            for (i, value) in over.iter().enumerate() {
                match base.get_mut(i) {
                    Some(slot) => overlay(slot, value),
                    None => base.push(value.clone()),
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// Asserts every field of `part`, at any depth, is in `whole` with the same value.
#[track_caller]
fn assert_contains(whole: &Value, part: &Value, path: &str) {
    match part {
        Value::Object(fields) => {
            for (key, value) in fields {
                let inner = whole
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key} is missing"));
                assert_contains(inner, value, &format!("{path}.{key}"));
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                assert_contains(&whole[i], value, &format!("{path}[{i}]"));
            }
        }
        leaf => assert_eq!(whole, leaf, "{path}"),
    }
}

#[track_caller]
fn round_trip<T: Serialize + DeserializeOwned>(complete: &T, example: &str) {
    let example: Value = serde_json::from_str(example).unwrap();
    let mut value = serde_json::to_value(complete).unwrap();
    overlay(&mut value, &example);
    let typed: T = serde_json::from_value(value).expect("the example parses into our type");
    let back = serde_json::to_value(&typed).unwrap();
    assert_contains(&back, &example, "$");
}

// ---- 1. The documentation's examples. ----

#[test]
fn documented_examples_round_trip() {
    round_trip(&plans(), DOC_PLANS);
    round_trip(&provision_response(), DOC_PROVISION_RESPONSE);
    round_trip(&status_response(), DOC_STATUS);
    round_trip(&event(), DOC_WEBHOOK);
}

#[test]
fn the_documented_provision_request_parses_as_it_is() {
    let request: ProvisionRequest = serde_json::from_str(DOC_PROVISION_REQUEST).unwrap();
    assert_eq!(request.plan_id, "uk-massive-650");
    assert_eq!(request.term_months, 1);
    let back = serde_json::to_value(&request).unwrap();
    assert_eq!(
        back,
        serde_json::from_str::<Value>(DOC_PROVISION_REQUEST).unwrap()
    );
}

#[test]
fn requests_reject_unknown_fields_and_default_the_term() {
    let typo =
        r#"{"plan_id": "p", "term_month": 3, "customer_email": "a@b.co", "customer_name": "A"}"#;
    let err = serde_json::from_str::<ProvisionRequest>(typo).unwrap_err();
    assert!(
        err.to_string().contains("unknown field `term_month`"),
        "{err}"
    );
    let minimal = r#"{"plan_id": "p", "customer_email": "a@b.co", "customer_name": "A"}"#;
    assert_eq!(
        serde_json::from_str::<ProvisionRequest>(minimal)
            .unwrap()
            .term_months,
        1
    );
}

// ---- 2. What the Python SDK reads. ----

#[track_caller]
fn assert_paths(value: &Value, paths: &[&str]) {
    for path in paths {
        assert!(
            value.pointer(path).is_some(),
            "{path} is missing from {value}"
        );
    }
}

#[test]
fn answers_carry_every_field_the_python_sdk_reads() {
    let plans = serde_json::to_value(plans()).unwrap();
    assert_paths(&plans, &["/plans", "/meta"]);
    assert_paths(
        &plans["plans"][0],
        &[
            "/id",
            "/name",
            "/description",
            "/coverage",
            "/data_allowance",
            "/validity_days",
            "/pricing/base_price",
            "/features",
            "/popular",
            "/available",
            "/environment",
        ],
    );

    let provision = serde_json::to_value(provision_response()).unwrap();
    assert_paths(
        &provision,
        &[
            "/success",
            "/order_id",
            "/meta",
            "/esim/esim_id",
            "/esim/iccid",
            "/esim/qr_code_url",
            "/esim/activation_code",
            "/esim/status",
            "/esim/expires_at",
            "/esim/plan",
            "/esim/network_info",
            "/esim/activation_instructions",
            "/billing/cost_usd",
            "/billing/remaining_balance",
        ],
    );
    assert!(provision["esim"]["activation_instructions"]["ios"].is_array());

    let status = serde_json::to_value(status_response()).unwrap();
    assert_paths(
        &status,
        &[
            "/success",
            "/meta",
            "/esim/esim_id",
            "/esim/iccid",
            "/esim/status",
            "/esim/plan",
            "/esim/activation/activated",
            "/esim/usage/used_mb",
            "/esim/usage/total_mb",
            "/esim/usage/remaining_mb",
            "/esim/usage/usage_percentage",
            "/esim/connection/status",
            "/esim/connection/current_network/operator",
            "/esim/connection/current_network/country_name",
            "/esim/connection/current_network/signal_strength",
        ],
    );

    let error = serde_json::to_value(ErrorBody {
        success: false,
        error: "plan `x` does not exist".into(),
        code: ErrorCode::PlanNotFound,
        request_id: Some("req_1".into()),
        details: None,
    })
    .unwrap();
    assert_eq!(error["error"], "plan `x` does not exist");
    assert_eq!(error["code"], "PLAN_NOT_FOUND");
}

#[test]
fn environments_and_statuses_use_the_wire_names() {
    assert_eq!(json!(Environment::Production), json!("production"));
    assert_eq!(
        Environment::of_key("sk_live_abc"),
        Some(Environment::Production)
    );
    assert_eq!(
        Environment::of_key("sk_sandbox_abc"),
        Some(Environment::Sandbox)
    );
    assert_eq!(Environment::of_key("sk_test_abc"), None);
    assert_eq!(json!(EsimStatus::Active), json!("active"));
    assert_eq!(json!(EventType::UsageThreshold), json!("usage.threshold"));
}
