//! The Rust SDK of the Oytel eSIM API.
//!
//! ```no_run
//! use oytel_client::{OytelClient, types::ProvisionRequest};
//!
//! # async fn run() -> oytel_client::Result<()> {
//! let client = OytelClient::new("sk_sandbox_...")?;
//! let order = client
//!     .orders()
//!     .create(&ProvisionRequest {
//!         plan_id: "eu-roam-50".into(),
//!         term_months: 1,
//!         customer_email: "customer@example.com".into(),
//!         customer_name: "John Doe".into(),
//!         reference_id: None,
//!         webhook_url: None,
//!     })
//!     .await?;
//! let esim = client.esims().get(&order.esim_id).await?;
//! println!("QR code: {}", esim.qr_code_url);
//! # Ok(()) }
//! ```
//!
//! - **Authentication** from the key; its prefix decides the environment (`sk_sandbox_…`,
//!   `sk_live_…`), and asking the builder for the other environment is an error.
//! - **Retries** with exponential backoff and full jitter on connection errors, timeouts, 408,
//!   429 (honouring `Retry-After`), 500, 502, 503 and 504. A POST is retried only with an
//!   `Idempotency-Key`; [`Orders::create`] makes one per call and reuses it for that call's
//!   retries, so an order is never charged twice.
//! - **Errors**: one [`Error`] enum to match on, keeping the HTTP status, the stable
//!   [`types::ErrorCode`] and the request id.
//! - **Plan caching** with `ETag` and `Cache-Control`.
//! - **Webhooks**: [`webhooks::verify`] checks a delivery's signature (Standard Webhooks, the
//!   server's own signing code) and returns the typed event; [`Webhooks`] manages endpoints,
//!   secrets, redelivery and the delivery log; [`Sandbox`] simulates activation, usage and
//!   expiry with sandbox keys.
//! - **Testability**: the [`OytelApi`] trait, with a `mockall` mock (`MockOytelApi`) under the
//!   `mock` feature.
//!
//! It speaks the wire types of `oytel-types` (re-exported as [`types`]), the same ones the
//! server uses, over reqwest with rustls. It never pulls in axum, sqlx or utoipa.

mod api;
mod client;
mod error;
mod resources;
pub mod webhooks;

#[cfg(feature = "mock")]
pub use api::MockOytelApi;
pub use api::OytelApi;
pub use client::{ClientBuilder, OytelClient, RetryPolicy, PRODUCTION_BASE_URL, SANDBOX_BASE_URL};
pub use error::{Error, Result};
pub use oytel_types as types;
pub use resources::{Account, Esims, Orders, Plans, Sandbox, Webhooks};
