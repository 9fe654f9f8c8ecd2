//! The route registry and the OpenAPI document derived from it. Routes are registered once
//! ([`api_router`]), so the served spec, the committed spec (`openapi/`, written by
//! `cargo xtask openapi`) and the router cannot drift apart.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDoc, Server};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{
    account, esims, health, operator, orders, plans, qr, sandbox, topups, webhooks,
};
use crate::state::AppState;

/// The servers of the API documentation.
pub const DOCUMENTED_SERVERS: [(&str, &str); 2] = [
    (
        "https://api.oytel.online",
        "Production (the API documentation's base URL)",
    ),
    (
        "https://oytel.co.uk",
        "The default base URL of the Python SDK",
    ),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Oytel eSIM API",
        version = "1.0.0",
        description = "Provision and manage eSIMs for your customers.\n\n\
            Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys starting \
            `sk_sandbox_` use the sandbox (a $100 balance that is never depleted); keys starting \
            `sk_live_` bill your balance. Errors are `{\"success\": false, \"error\", \"code\", \
            \"request_id\"}` with a stable `code`.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&Security),
    components(
        schemas(
            oytel_types::ErrorBody,
            oytel_types::ErrorCode,
            oytel_types::WebhookEvent,
            oytel_types::AccountWebhookEvent
        ),
        responses(
            crate::responses::Unauthorized,
            crate::responses::RateLimited,
            crate::responses::NotSandbox,
            crate::responses::OperatorUnauthorized,
            crate::responses::OperatorDisabled,
            crate::responses::AuthThrottled,
            crate::responses::BodyTimeout,
            crate::responses::BodyTooLarge,
            crate::responses::NotJson,
            crate::responses::KeyReused,
        )
    ),
    tags(
        (name = "plans", description = "The plan catalog"),
        (name = "esims", description = "Provisioning eSIMs, their status and QR codes"),
        (name = "topups", description = "After the sale: packages, top-ups on offer, buying one"),
        (name = "orders", description = "Orders and what they cost"),
        (name = "account", description = "Your balance, limits and statement"),
        (name = "webhooks", description = "Webhook endpoints, secrets, redelivery and the delivery log"),
        (name = "sandbox", description = "Simulating activation, usage and expiry with sandbox keys"),
        (name = "operator", description = "Network-side reports (operator token, not partner keys)"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sk_sandbox_… or sk_live_…")
                    .description(Some("`Authorization: Bearer <API key>`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`Authorization: Bearer <OYTEL_OPERATOR_TOKEN>`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "`X-API-Key: <API key>` (as the Python SDK sends it)",
            ))),
        );
    }
}

/// Every route of the API with its OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(plans::list_plans))
        .routes(routes!(plans::get_plan))
        .routes(routes!(esims::provision_esim))
        .routes(routes!(esims::suspend_esim))
        .routes(routes!(esims::resume_esim))
        .routes(routes!(esims::cancel_esim))
        .routes(routes!(esims::get_esim))
        .routes(routes!(esims::esim_status))
        .routes(routes!(esims::list_esims))
        .routes(routes!(topups::list_packages))
        .routes(routes!(topups::list_topups, topups::buy_topup))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::list_orders))
        .routes(routes!(account::get_account, account::update_account))
        .routes(routes!(account::list_transactions))
        .routes(routes!(qr::qr_image))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(
            webhooks::get_endpoint,
            webhooks::update_endpoint,
            webhooks::delete_endpoint
        ))
        .routes(routes!(webhooks::rotate_endpoint_secret))
        .routes(routes!(webhooks::test_endpoint))
        .routes(routes!(webhooks::endpoint_attempts))
        .routes(routes!(webhooks::all_attempts))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(webhooks::esim_secret))
        .routes(routes!(webhooks::rotate_esim_secret))
        .routes(routes!(sandbox::simulate_activation))
        .routes(routes!(sandbox::simulate_usage))
        .routes(routes!(sandbox::simulate_expiry))
        .routes(routes!(operator::report_usage))
        .routes(routes!(operator::report_activations))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

/// Links from a provisioning answer to the eSIM, its status and its order: what a client
/// does next, declared so that tools (and stateful tests) can follow it.
fn add_links(spec: &mut OpenApiDoc) {
    use utoipa::openapi::link::LinkBuilder;
    use utoipa::openapi::RefOr;
    let Some(created) = spec
        .paths
        .paths
        .get_mut("/api/v1/esim/provision")
        .and_then(|item| item.post.as_mut())
        .and_then(|op| op.responses.responses.get_mut("201"))
    else {
        return;
    };
    let RefOr::T(response) = created else {
        return;
    };
    for (name, operation, parameter, value, description) in [
        (
            "GetEsim",
            "get_esim",
            "esim_id",
            "$response.body#/esim_id",
            "The eSIM just provisioned",
        ),
        (
            "GetEsimStatus",
            "esim_status",
            "esim_id",
            "$response.body#/esim_id",
            "Its status and usage",
        ),
        (
            "GetOrder",
            "get_order",
            "order_id",
            "$response.body#/order_id",
            "The order that paid for it",
        ),
    ] {
        let link = LinkBuilder::new()
            .operation_id(operation)
            .parameter(parameter, value)
            .description(description)
            .build();
        response.links.insert(name.to_owned(), RefOr::T(link));
    }
}

pub use crate::examples::examples;

/// Puts [`examples`] on their component schemas.
fn add_examples(spec: &mut OpenApiDoc) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let Some(components) = spec.components.as_mut() else {
        return;
    };
    for (name, value) in examples() {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
            object.examples = vec![value];
        }
    }
}

/// The OpenAPI document with the given servers first, then the documented ones.
pub fn spec_with_servers(extra: &[Server]) -> OpenApiDoc {
    let (_, mut spec) = api_router().split_for_parts();
    add_links(&mut spec);
    add_examples(&mut spec);
    let mut servers: Vec<Server> = extra.to_vec();
    servers.extend(DOCUMENTED_SERVERS.iter().map(|(url, description)| {
        let mut server = Server::new(*url);
        server.description = Some((*description).to_owned());
        server
    }));
    spec.servers = Some(servers);
    spec
}

/// The committed OpenAPI document (documented servers only).
pub fn spec() -> OpenApiDoc {
    spec_with_servers(&[])
}

/// The spec rendered as served by one instance.
#[derive(Debug)]
pub struct ServedSpec {
    /// `openapi.json`.
    pub json: String,
    /// `openapi.yaml`.
    pub yaml: String,
}

/// The document as a JSON value, with utoipa 5.5's link objects corrected: it writes
/// `operation_id`, `operation_ref` and `request_body` where OpenAPI says `operationId`,
/// `operationRef` and `requestBody` (the spec validator in CI refuses the former).
fn rendered(spec: &OpenApiDoc) -> Result<serde_json::Value, String> {
    fn fix(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(links)) = map.get_mut("links") {
                    for link in links.values_mut() {
                        if let serde_json::Value::Object(link) = link {
                            for (from, to) in [
                                ("operation_id", "operationId"),
                                ("operation_ref", "operationRef"),
                                ("request_body", "requestBody"),
                            ] {
                                if let Some(v) = link.remove(from) {
                                    link.insert(to.to_owned(), v);
                                }
                            }
                        }
                    }
                }
                map.values_mut().for_each(fix);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(fix),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    fix(&mut value);
    Ok(value)
}

/// JSON rendering: pretty, with a final newline.
pub fn to_json(spec: &OpenApiDoc) -> Result<String, String> {
    serde_json::to_string_pretty(&rendered(spec)?)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

/// YAML rendering.
pub fn to_yaml(spec: &OpenApiDoc) -> Result<String, String> {
    serde_norway::to_string(&rendered(spec)?).map_err(|e| e.to_string())
}

impl ServedSpec {
    /// The spec of an instance reachable at `public_url`.
    pub fn for_instance(public_url: &str) -> Result<ServedSpec, String> {
        let mut this = Server::new(public_url);
        this.description = Some("This server".to_owned());
        let spec = spec_with_servers(&[this]);
        Ok(ServedSpec {
            json: to_json(&spec)?,
            yaml: to_yaml(&spec)?,
        })
    }
}
