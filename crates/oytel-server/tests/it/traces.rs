//! Traces, on the real binary: with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP/HTTP
//! collector on port 0, one provisioning's spans (the request, its ES2+ calls, the webhook
//! attempt it caused) arrive in the caller's trace, the SM-DP+ and the webhook receiver get
//! that trace's `traceparent`, and the JSON log lines name the trace id. Without the
//! variable nothing is exported, and the caller's `traceparent` is passed on as it came.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use oytel_server::testing::{fresh_database, make_partner, TestSmdp};
use oytel_store::testing::Backend;
use prost::Message as _;
use serde_json::Value;

use crate::helpers::{order, start_server_with, subscribe, ServerProcess};
use crate::receiver::Receiver;

/// The caller's trace: its id and the id of the caller's span.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn caller_traceparent() -> String {
    format!("00-{TRACE_ID}-{CALLER_SPAN}-01")
}

/// A span as the collector got it.
#[derive(Debug, Clone)]
struct Got {
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    /// 2 server, 3 client (OTLP's `SpanKind`).
    kind: i32,
    service: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP collector (protobuf) on port 0 that keeps every span it is sent.
struct Collector {
    base: String,
    spans: Arc<Mutex<Vec<Got>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Collector {
        async fn export(State(spans): State<Arc<Mutex<Vec<Got>>>>, body: Bytes) -> StatusCode {
            let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                return StatusCode::BAD_REQUEST;
            };
            let mut kept = spans.lock().unwrap();
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .and_then(|a| a.value.as_ref()?.value.as_ref())
                    .map(|v| match v {
                        any_value::Value::StringValue(text) => text.clone(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        kept.push(Got {
                            name: span.name,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent: hex(&span.parent_span_id),
                            kind: span.kind,
                            service: service.clone(),
                        });
                    }
                }
            }
            StatusCode::OK
        }
        let spans = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .with_state(spans.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Collector { base, spans, task }
    }

    /// Waits (up to 10 s) for a span named `name`.
    async fn span(&self, name: &str) -> Got {
        for _ in 0..100 {
            if let Some(span) = self.spans.lock().unwrap().iter().find(|s| s.name == name) {
                return span.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let names: Vec<String> = self
            .spans
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        panic!("no span {name:?} arrived; got {names:?}");
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Provisions with this `traceparent` header; returns the `traceparent` header (if any) the
/// receiver got with the `esim.provisioned` that followed, the `nth` delivery it got.
async fn provision_with(
    server: &ServerProcess,
    key: &str,
    traceparent: &str,
    receiver: &Receiver,
    nth: usize,
) -> Option<String> {
    let provisioned = reqwest::Client::new()
        .post(format!("{}/api/v1/esim/provision", server.base))
        .bearer_auth(key)
        .header("traceparent", traceparent)
        .header("Idempotency-Key", format!("traced-{nth}"))
        .json(&order("uk-lite-10"))
        .send()
        .await
        .unwrap();
    assert_eq!(provisioned.status(), 201);
    let delivered = receiver.wait_for("/events", nth).await;
    delivered[nth - 1]
        .headers
        .get("traceparent")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Asserts that the request's and the webhook attempt's JSON log lines name `trace_id`.
#[track_caller]
fn assert_logged_in_trace(logs: &str, trace_id: &str) {
    let messages: Vec<String> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["span"]["trace_id"] == trace_id)
        .filter_map(|l| l["fields"]["message"].as_str().map(str::to_owned))
        .collect();
    for expected in ["request", "webhook attempt"] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected:?} not in {messages:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_provisioning_its_smdp_calls_and_its_webhook_share_the_callers_trace() {
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Traced").await;
    let smdp = TestSmdp::start().await;
    let collector = Collector::start().await;
    let receiver = Receiver::start().await;
    let mut env: Vec<(String, String)> = smdp.env();
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), collector.base.clone()));
    env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = start_server_with(&db.url, "production", "127.0.0.1:0", &env);

    subscribe(&server.base, &partner.sandbox_key, &receiver).await;
    let received = provision_with(
        &server,
        &partner.sandbox_key,
        &caller_traceparent(),
        &receiver,
        1,
    )
    .await
    .unwrap();

    let request = collector.span("POST /api/v1/esim/provision").await;
    assert_eq!(
        (
            request.trace_id.as_str(),
            request.parent.as_str(),
            request.kind
        ),
        (TRACE_ID, CALLER_SPAN, 2),
        "the request's span is the caller's child, of kind server"
    );
    assert_eq!(request.service, "oytel-server");
    for call in ["ES2+ downloadOrder", "ES2+ confirmOrder"] {
        let span = collector.span(call).await;
        assert_eq!(
            (span.trace_id.as_str(), span.parent.as_str(), span.kind),
            (TRACE_ID, request.span_id.as_str(), 3),
            "{call} is a client span in the request"
        );
    }
    let download = collector.span("ES2+ downloadOrder").await;
    assert_eq!(
        smdp.sim.traceparent("downloadOrder").await,
        Some(format!("00-{TRACE_ID}-{}-01", download.span_id)),
        "the SM-DP+ got the call's context"
    );
    let attempt = collector.span("webhook POST").await;
    assert_eq!(
        (
            attempt.trace_id.as_str(),
            attempt.parent.as_str(),
            attempt.kind
        ),
        (TRACE_ID, request.span_id.as_str(), 3),
        "the webhook attempt joins the request's trace, however much later it went out"
    );
    assert_eq!(received, format!("00-{TRACE_ID}-{}-01", attempt.span_id));

    // A request without a traceparent starts a trace of its own.
    let plans = reqwest::Client::new()
        .get(format!("{}/api/v1/plans", server.base))
        .bearer_auth(&partner.sandbox_key)
        .send()
        .await
        .unwrap();
    assert_eq!(plans.status(), 200);
    let own = collector.span("GET /api/v1/plans").await;
    assert_ne!(own.trace_id, TRACE_ID);
    assert_eq!(own.parent, "", "a root span");

    let (_, logs) = server.terminate_with_logs();
    assert_logged_in_trace(&logs, TRACE_ID);
    assert!(
        !logs.contains("otel."),
        "the exporter's fields stay out of the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_exporter_the_callers_traceparent_is_logged_and_passed_on_as_it_came() {
    let db = fresh_database(Backend::from_env()).await;
    let partner = make_partner(db.store.as_ref(), "Untraced").await;
    let receiver = Receiver::start().await;
    let server = start_server_with(&db.url, "production", "127.0.0.1:0", &[]);
    subscribe(&server.base, &partner.sandbox_key, &receiver).await;

    let key = &partner.sandbox_key;
    let passed_on = provision_with(&server, key, &caller_traceparent(), &receiver, 1).await;
    assert_eq!(passed_on, Some(caller_traceparent()));
    let malformed = "00-not-a-trace-01";
    assert_eq!(
        provision_with(&server, key, malformed, &receiver, 2).await,
        None,
        "a malformed traceparent is not passed on"
    );

    let (_, logs) = server.terminate_with_logs();
    assert_logged_in_trace(&logs, TRACE_ID);
    assert!(!logs.contains("not-a-trace"));
}
