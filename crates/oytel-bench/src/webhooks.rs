//! The webhook figures: deliveries from a server instance to a local receiver that verifies
//! every signature, alone and beside an endpoint that never answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::Proc;

/// One verified delivery: when it arrived, its `webhook-id` and its body.
#[derive(Clone)]
pub(crate) struct Delivery {
    pub at: Instant,
    pub id: String,
    pub body: axum::body::Bytes,
}

/// What the webhook receiver keeps: the endpoint's secret (set once the endpoint exists) and
/// every delivery whose signature it verified.
#[derive(Clone, Default)]
pub(crate) struct Received {
    secret: Arc<std::sync::Mutex<Option<oytel_webhooks::Secret>>>,
    deliveries: Arc<std::sync::Mutex<Vec<Delivery>>>,
}

impl Received {
    /// Verifies deliveries with `secret` from now on.
    pub fn set_secret(&self, secret: &str) -> Result<()> {
        let secret = oytel_webhooks::Secret::parse(secret)?;
        if let Ok(mut slot) = self.secret.lock() {
            *slot = Some(secret);
        }
        Ok(())
    }

    /// The verified deliveries so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// How many verified deliveries arrived.
    pub fn count(&self) -> u64 {
        self.deliveries
            .lock()
            .map(|d| d.len() as u64)
            .unwrap_or_default()
    }
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Received>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let Some(secret) = r.secret.lock().ok().and_then(|s| s.clone()) else {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    };
    let now = chrono::Utc::now().timestamp();
    let id = header("webhook-id");
    let verified = oytel_webhooks::verify(
        &secret,
        &id,
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &body,
        now,
    );
    if verified.is_err() {
        return axum::http::StatusCode::BAD_REQUEST;
    }
    if let Ok(mut deliveries) = r.deliveries.lock() {
        deliveries.push(Delivery {
            at: Instant::now(),
            id,
            body,
        });
    }
    axum::http::StatusCode::NO_CONTENT
}

/// A local receiver that verifies every signature: its URL, what it received, and its task.
pub(crate) async fn receiver() -> Result<(String, Received, tokio::task::JoinHandle<()>)> {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(received.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, received, task))
}

/// An endpoint that accepts connections, reads, and never answers: every attempt to it runs
/// into the worker's timeout.
async fn hanging_endpoint() -> Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok((url, task))
}

/// Provisions `events` eSIMs through `server` (which runs no workers, so their
/// `esim.provisioned` deliveries wait), then starts an instance that delivers them, and
/// measures how fast they reach a local receiver that verifies every signature: verified
/// deliveries per second, from the first to the last. With `beside_hanging`, a second
/// endpoint that never answers gets the same events: the figure is still the healthy
/// receiver's. The endpoints are deleted afterwards, so a later run starts clean.
pub(crate) async fn webhook_throughput(
    server: &str,
    key: &str,
    events: u64,
    beside_hanging: bool,
    start_worker: impl FnOnce() -> Result<Proc>,
) -> Result<(u64, f64)> {
    let (receiver_url, received, task) = receiver().await?;
    let client = reqwest::Client::new();
    let hanging = if beside_hanging {
        Some(hanging_endpoint().await?)
    } else {
        None
    };
    let mut endpoints = Vec::new();
    let urls = std::iter::once(receiver_url.clone()).chain(hanging.iter().map(|h| h.0.clone()));
    for url in urls {
        let created: serde_json::Value = client
            .post(format!("{server}/api/v1/webhooks/endpoints"))
            .bearer_auth(key)
            .json(&serde_json::json!({"url": url, "events": ["esim.provisioned"]}))
            .send()
            .await?
            .json()
            .await?;
        if url == receiver_url {
            received.set_secret(created["secret"].as_str().context("endpoint secret")?)?;
        }
        endpoints.push(created["id"].as_str().context("endpoint id")?.to_owned());
    }
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, server, key) = (client.clone(), server.to_owned(), key.to_owned());
        senders.spawn(async move {
            for _ in 0..events.div_ceil(16) {
                let _ = client
                    .post(format!("{server}/api/v1/esim/provision"))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({"plan_id": "uk-lite-10", "customer_email": "w@example.com", "customer_name": "W"}))
                    .send()
                    .await;
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let worker = start_worker()?;
    let expected = events.div_ceil(16) * 16;
    let deadline = Instant::now() + Duration::from_secs(180);
    while received.count() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    drop(worker);
    if let Some((_, hanging)) = hanging {
        hanging.abort();
    }
    for id in endpoints {
        client
            .delete(format!("{server}/api/v1/webhooks/endpoints/{id}"))
            .bearer_auth(key)
            .send()
            .await?
            .error_for_status()?;
    }
    let times: Vec<Instant> = received.deliveries().iter().map(|d| d.at).collect();
    let rate = match (times.first(), times.last()) {
        (Some(first), Some(last)) if last > first => {
            times.len() as f64 / (*last - *first).as_secs_f64()
        }
        _ => 0.0,
    };
    Ok((times.len() as u64, rate))
}
