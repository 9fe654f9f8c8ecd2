//! A webhook receiver that verifies every delivery before acting on it.
//!
//! ```sh
//! OYTEL_WEBHOOK_SECRET=whsec_... cargo run -p oytel-client --example webhook_receiver
//! ```
//!
//! It listens on 127.0.0.1:3000; register `http://127.0.0.1:3000/oytel` as an endpoint (a
//! development server allows loopback destinations).

// An example prints what it does.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use oytel_client::types::EventType;
use oytel_client::webhooks;

async fn receive(State(secret): State<Arc<String>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let event = match webhooks::verify(&secret, &headers, &body) {
        Ok(event) => event,
        Err(e) => {
            eprintln!("refused a delivery: {e}");
            return StatusCode::BAD_REQUEST;
        }
    };
    // Deliveries are at least once: use `event.id()` to drop duplicates.
    match event {
        webhooks::Event::Esim(e) if e.event == EventType::EsimActivated => {
            println!("{} activated", e.data.esim_id)
        }
        webhooks::Event::Esim(e) if e.event == EventType::UsageThreshold => println!(
            "{} used {}% of its data",
            e.data.esim_id,
            e.data.threshold_percent.unwrap_or_default()
        ),
        webhooks::Event::Esim(e) => {
            println!("{} for {} ({})", e.event.as_str(), e.data.esim_id, e.id)
        }
        webhooks::Event::Account(e) => println!("balance low: {}", e.data.balance),
        // A type newer than this SDK: take it (2xx) and look at it later.
        other => println!("{} ({}), not known to this SDK", other.name(), other.id()),
    }
    // Answer quickly with 2xx; do slow work after.
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let secret = std::env::var("OYTEL_WEBHOOK_SECRET").map_err(|_| {
        std::io::Error::other("set OYTEL_WEBHOOK_SECRET to the endpoint's whsec_ secret")
    })?;
    let app = Router::new()
        .route("/oytel", post(receive))
        .with_state(Arc::new(secret));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000/oytel");
    axum::serve(listener, app).await
}
