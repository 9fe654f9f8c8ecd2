//! Background work: one webhook attempt (signed, guarded, timed) and expiring eSIMs. Every
//! instance may run both; the database hands each due delivery to one worker at a time (a
//! lease, see [`crate::dispatch`] for which and when), and an expiry is a conditional state
//! change, so nothing happens twice.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::Utc;
use oytel_core::clock::now;
use oytel_core::ports::{AttemptOutcome, AttemptResult, DueDelivery};
use oytel_core::webhooks::is_internal_ip;
use oytel_core::EsimStatus;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::state::AppState;

/// Resolves destination names, refusing internal addresses unless allowed (the SSRF guard:
/// checking at resolution time also catches names that point inside).
struct GuardedResolver {
    allow_internal: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_internal;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow || !is_internal_ip(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err("the destination resolves only to internal addresses".into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of deliveries: the guard, the timeout, and no redirects (a redirect could
/// lead inside).
pub fn delivery_client(state: &AppState) -> reqwest::Client {
    let webhooks = &state.settings.webhooks;
    reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(GuardedResolver {
            allow_internal: webhooks.allow_internal,
        }))
        .timeout(webhooks.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Oytel-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Whether the URL names an internal address literally (names are checked by the resolver).
fn literal_internal(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(ip)) => is_internal_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_internal_ip(ip.into()),
        _ => false,
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Makes one attempt of a delivery and says what came of it (the caller records it). The
/// attempt is a span in its event's trace, whose context the receiver gets as `traceparent`
/// (see [`crate::traces`]).
pub async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    delivery: DueDelivery,
) -> AttemptOutcome {
    let span = tracing::info_span!(
        "webhook attempt",
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        otel.status_code = tracing::field::Empty
    );
    crate::traces::name_client_span(&span, format_args!("webhook POST"));
    let traceparent = crate::traces::join(&span, delivery.traceparent.as_deref());
    let outcome = attempt(state, client, delivery, traceparent)
        .instrument(span.clone())
        .await;
    if outcome.result != AttemptResult::Delivered {
        crate::traces::failed(&span);
    }
    outcome
}

async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    delivery: DueDelivery,
    traceparent: Option<String>,
) -> AttemptOutcome {
    let webhooks = &state.settings.webhooks;
    let attempt = delivery.attempts + 1;
    let started = Instant::now();
    let sent_at = now();
    let secrets: Vec<oytel_webhooks::Secret> = delivery
        .secrets
        .signing_at(sent_at)
        .iter()
        .filter_map(|s| oytel_webhooks::Secret::parse(s).ok())
        .collect();
    let timestamp = sent_at.timestamp();
    let signature = oytel_webhooks::signature_header(
        &secrets,
        &delivery.event_id,
        timestamp,
        delivery.payload.as_bytes(),
    );
    let blocked = !webhooks.allow_internal && literal_internal(&delivery.url);
    let (status_code, error, retry_hint) = if blocked {
        (
            None,
            Some("refused: the destination is an internal address".to_owned()),
            None,
        )
    } else {
        let mut request = client.post(&delivery.url);
        if let Some(traceparent) = &traceparent {
            request = request.header("traceparent", traceparent);
        }
        let sent = request
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                let hint = retry_after(&response);
                let error = (!status.is_success()).then(|| format!("HTTP {}", status.as_u16()));
                (Some(status.as_u16()), error, hint)
            }
            Err(e) if e.is_timeout() => (
                None,
                Some(format!("timed out after {:?}", webhooks.timeout)),
                None,
            ),
            Err(e) => (None, Some(format!("{}", e.without_url())), None),
        }
    };
    let at = now();
    let result = match status_code {
        _ if blocked => AttemptResult::GiveUp,
        Some(code) if (200..300).contains(&code) => AttemptResult::Delivered,
        Some(410) => AttemptResult::Gone,
        _ => match webhooks.schedule.next_delay(attempt, retry_hint) {
            Some(delay) => AttemptResult::Retry {
                next_attempt_at: at
                    + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(10)),
            },
            None => AttemptResult::GiveUp,
        },
    };
    let outcome = AttemptOutcome {
        delivery_id: delivery.id.clone(),
        endpoint_id: delivery.endpoint_id.clone(),
        attempt,
        status_code,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        error,
        result,
        at,
    };
    tracing::info!(delivery_id = %delivery.id, event_id = %delivery.event_id, attempt,
        status_code, result = ?outcome.result, "webhook attempt");
    crate::metrics::webhook_attempt(
        match outcome.result {
            AttemptResult::Delivered => "delivered",
            AttemptResult::Retry { .. } => "retry",
            AttemptResult::GiveUp => "gave_up",
            AttemptResult::Gone => "gone",
        },
        started.elapsed(),
    );
    outcome
}

/// Expires eSIMs whose term has ended, every `expiry_interval`, until `shutdown`.
pub async fn run_expiry(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        loop {
            let at = Utc::now();
            let due = match state.store.due_expiries(at, 500).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "could not look for expired eSIMs");
                    break;
                }
            };
            for esim_id in &due {
                // Another instance may win: then this one sees `Invalid` and moves on.
                if let Ok(oytel_core::ports::TransitionResult::Done(esim)) = state
                    .store
                    .transition_esim(esim_id, EsimStatus::Expired, now())
                    .await
                {
                    if esim.status == EsimStatus::Expired {
                        tracing::info!(esim_id = %esim_id, "eSIM expired");
                    } else {
                        tracing::info!(esim_id = %esim_id, "package ended; the next one started");
                    }
                }
            }
            if due.len() < 500 {
                break;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(state.settings.expiry_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}
