//! Traces: OpenTelemetry spans sent over OTLP/HTTP when the standard variables ask for them,
//! and the W3C trace context carried from a request to everything it causes, so that an
//! operator follows one provisioning from the partner's call through the SM-DP+ to the
//! webhook its receiver got, however much later that went out.
//!
//! | where | its span | the trace context it passes on |
//! |---|---|---|
//! | a request | `request` (`METHOD /route`, server), a child of the caller's `traceparent` when it sends a valid one | to the events it writes (`events.traceparent`), through [`oytel_core::tracecontext`] |
//! | an ES2+ call | `es2plus` (`ES2+ downloadOrder`, client), a child of the current span | the `traceparent` header to the SM-DP+ |
//! | a webhook attempt | `webhook attempt` (client), a child of its event's stored context | the `traceparent` header to the receiver |
//! | a JSON log line | — | `trace_id` among the span fields, wherever a trace context is known |
//!
//! Exporting is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! is set, unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. The SDK reads the
//! other standard variables: `OTEL_TRACES_SAMPLER`/`_ARG` (default `parentbased_always_on`),
//! `OTEL_SERVICE_NAME` (default `oytel-server`), `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`. Only `http/protobuf` is spoken; another
//! `OTEL_EXPORTER_OTLP_PROTOCOL` is refused at start, not ignored.
//!
//! When it is off, no span is recorded beyond the log's own and nothing is exported; a valid
//! `traceparent` from the caller is still logged (its trace id) and passed on as it came, so
//! receivers and the SM-DP+ can still join the caller's trace.
//!
//! The export is batched on the SDK's thread, through our own reqwest client on the server's
//! runtime; a collector that is down loses spans (counted by nothing, logged by the SDK at
//! debug), never slows a request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::body::Bytes;
use axum::http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Whether the environment (`var` reads a variable) asks for spans to be exported.
pub fn asked_for(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    let is =
        |name: &str, value: &str| var(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value));
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
}

/// The exporter, running: keep it to [`Exporter::shutdown`] it when the server stops.
#[derive(Debug)]
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Starts exporting if the environment asks for it (see the module's documentation);
    /// `runtime` is where the export requests run. An error names the variable at fault.
    pub fn start(runtime: tokio::runtime::Handle) -> anyhow::Result<Option<(Exporter, SdkTracer)>> {
        let var = |name: &str| std::env::var(name).ok();
        if !asked_for(var) {
            return Ok(None);
        }
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(protocol) = var(name).filter(|p| !p.trim().is_empty()) {
                if protocol.trim() != "http/protobuf" {
                    bail!("{name}={protocol}: this server sends traces over http/protobuf only (a collector's port 4318)");
                }
                break;
            }
        }
        let timeout = [
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]
        .iter()
        .find_map(|name| var(name)?.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("the HTTP client of the trace exporter")?;
        let exporter = {
            use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(timeout)
                .with_http_client(Transport { http, runtime })
                .build()
                .context("OTEL_EXPORTER_OTLP_ENDPOINT")?
        };
        let named = var("OTEL_SERVICE_NAME").is_some_and(|v| !v.trim().is_empty())
            || var("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|v| v.contains("service.name="));
        let mut resource = opentelemetry_sdk::Resource::builder().with_attribute(
            opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        );
        if !named {
            resource = resource.with_service_name("oytel-server");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("oytel-server");
        EXPORTING.store(true, Ordering::Relaxed);
        Ok(Some((Exporter { provider }, tracer)))
    }

    /// Sends what is still batched and stops; waits at most 5 seconds.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let stopped = tokio::task::spawn_blocking(move || {
            provider.shutdown_with_timeout(Duration::from_secs(5))
        })
        .await;
        if let Ok(Err(e)) = stopped {
            tracing::warn!(error = %e, "the last spans could not be sent");
        }
    }
}

/// The layer that turns our spans (and the log events in them) into OpenTelemetry spans: the
/// `oytel_*` crates' at INFO and above, whatever `OYTEL_LOG` says of the log.
pub fn layer<S>(tracer: SdkTracer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.target().starts_with("oytel") && *meta.level() <= tracing::Level::INFO
        }))
}

/// The export's HTTP client: the SDK sends from its own thread, with no runtime, so each
/// request runs on the server's.
#[derive(Debug)]
struct Transport {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Transport {
    async fn send_bytes(
        &self,
        request: axum::http::Request<Bytes>,
    ) -> Result<axum::http::Response<Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let response = http.execute(request).await?;
            let mut answer = axum::http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            // A collector's answer is small; a large one is not read whole.
            let body = response.bytes().await?;
            let body = body.slice(..body.len().min(64 * 1024));
            Ok::<_, opentelemetry_http::HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}

/// Joins `span` to the trace of `parent` (a `traceparent`, already checked), records the trace
/// id on its `trace_id` field, and says what trace context the work in it passes on: the
/// span's own when exporting, else `parent` as it came.
pub fn join(span: &Span, parent: Option<&str>) -> Option<String> {
    let passed_on = if exporting() {
        if let Some(parent) = parent {
            let carrier = HashMap::from([("traceparent".to_owned(), parent.to_owned())]);
            let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
        }
        traceparent_of(span)
    } else {
        parent.map(str::to_owned)
    };
    if let Some(trace_id) = passed_on
        .as_deref()
        .and_then(oytel_core::tracecontext::trace_id)
    {
        span.record("trace_id", trace_id);
    }
    passed_on
}

/// The caller's valid `traceparent` header, if it sent one.
pub fn caller(headers: &HeaderMap) -> Option<String> {
    headers
        .get("traceparent")?
        .to_str()
        .ok()
        .and_then(oytel_core::tracecontext::parse)
}

/// The `traceparent` that names `span`, when it is exported and has a valid context.
fn traceparent_of(span: &Span) -> Option<String> {
    let context = span.context();
    let span_ref = context.span();
    let ids = span_ref.span_context();
    ids.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            ids.trace_id(),
            ids.span_id(),
            ids.trace_flags().to_u8()
        )
    })
}

/// Puts the trace context of the work under way in `headers` as `traceparent`: the current
/// span's when exporting, else the caller's as it came.
pub fn add_traceparent(headers: &mut reqwest::header::HeaderMap) {
    let traceparent = if exporting() {
        traceparent_of(&Span::current())
    } else {
        oytel_core::tracecontext::current()
    };
    if let Some(value) = traceparent.and_then(|t| t.parse().ok()) {
        headers.insert("traceparent", value);
    }
}

/// Names a request's span `METHOD /route`, of kind server (when exporting).
pub fn name_request_span(span: &Span, method: &axum::http::Method, route: &str) {
    if exporting() {
        span.record("otel.name", format!("{method} {route}"));
        span.record("otel.kind", "server");
    }
}

/// Names a span of a call we make (`ES2+ downloadOrder`, `webhook POST`), of kind client.
pub fn name_client_span(span: &Span, what: std::fmt::Arguments<'_>) {
    if exporting() {
        span.record("otel.name", what.to_string());
        span.record("otel.kind", "client");
    }
}

/// Marks `span`'s work as failed.
pub fn failed(span: &Span) {
    if exporting() {
        span.record("otel.status_code", "error");
    }
}

/// Records a request's answer on its span: the status, and a failure for a 5xx.
pub fn answered(span: &Span, status: u16) {
    if exporting() {
        span.set_attribute("http.response.status_code", i64::from(status));
        if status >= 500 {
            failed(span);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn an_endpoint_turns_the_export_on_and_the_standard_switches_turn_it_off() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert!(!asked_for(env(&[])));
        assert!(!asked_for(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])));
        assert!(asked_for(env(&[endpoint])));
        assert!(asked_for(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:4318/v1/traces"
        )])));
        assert!(!asked_for(env(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")])));
        assert!(!asked_for(env(&[
            endpoint,
            ("OTEL_TRACES_EXPORTER", "none")
        ])));
        assert!(asked_for(env(&[endpoint, ("OTEL_SDK_DISABLED", "false")])));
    }

    #[test]
    fn without_an_export_the_callers_context_is_passed_on_as_it_came() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let span = Span::none();
        assert_eq!(join(&span, Some(parent)).as_deref(), Some(parent));
        assert_eq!(join(&span, None), None);
    }

    #[test]
    fn only_a_valid_traceparent_header_is_taken() {
        let mut headers = HeaderMap::new();
        assert_eq!(caller(&headers), None);
        headers.insert("traceparent", "not-a-trace".parse().unwrap());
        assert_eq!(caller(&headers), None);
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        headers.insert("traceparent", valid.parse().unwrap());
        assert_eq!(caller(&headers).as_deref(), Some(valid));
    }
}
