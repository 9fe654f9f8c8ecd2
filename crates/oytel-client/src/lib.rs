//! The Rust SDK of the Oytel eSIM API.
//!
//! ```no_run
//! use oytel_client::{OytelClient, types::ProvisionRequest};
//!
//! # async fn run() -> oytel_client::Result<()> {
//! let client = OytelClient::new("sk_sandbox_...")?;
//! let order = ProvisionRequest::new("eu-roam-50", "customer@example.com", "John Doe");
//! let provisioned = client.orders().create(&order).await?;
//! let esim = client.esims().get(&provisioned.esim_id).await?;
//! println!("QR code: {}", esim.qr_code_url);
//! # Ok(()) }
//! ```
//!
//! - **Calls** return a [`Request`]: `.await` it, or set its options first: the idempotency
//!   key, a timeout per attempt, a deadline for the whole call, the retries
//!   ([`request`]). [`Request::send_with_metadata`] gives the request id, whether the answer
//!   was an idempotent replay, and the rate-limit figures.
//! - **Authentication** from the key; its prefix decides the environment (`sk_sandbox_…`,
//!   `sk_live_…`), and asking the builder for the other environment is an error.
//! - **Retries** with exponential backoff and full jitter on connection errors, timeouts, 408,
//!   429 (honouring `Retry-After`), 500, 502, 503 and 504. A paid call (an order, a top-up, a
//!   cancellation) is sent with an `Idempotency-Key` and retried with it; when it still
//!   fails, its error carries the key ([`Error::idempotency_key`]): send the call again with
//!   it and the server answers the first outcome, never a second eSIM or charge.
//! - **Errors**: one [`Error`] enum to match on, keeping the HTTP status, the stable
//!   [`types::ErrorCode`], the request id, and whether trying again may help
//!   ([`Error::is_retryable`]).
//! - **Lists** as owned streams ([`Paginated`]): `Unpin`, `'static`, nothing to add to your
//!   dependencies ([`stream`] re-exports the traits).
//! - **Plan caching** with `ETag` and `Cache-Control`.
//! - **Webhooks**: [`webhooks::verify`] checks a delivery's signature (Standard Webhooks, the
//!   server's own signing code) and returns the event, known or newer than this SDK;
//!   [`Webhooks`] manages endpoints, secrets, redelivery and the delivery log; [`Sandbox`]
//!   simulates activation, usage and expiry with sandbox keys.
//! - **Testability**: the [`OytelApi`] trait covers every call, with a `mockall` mock
//!   (`MockOytelApi`) under the `mock` feature; a [`transport`] of your own plays lost
//!   answers, timeouts and errors to test your retry handling against a real server.
//! - **Forward compatibility**: request types are built with constructors and setters
//!   ([`types::builders`]) and are `#[non_exhaustive]`; statuses and event types read names
//!   newer than the SDK as `Unknown`, error codes as `ErrorCode::Other`.
//!
//! It speaks the wire types of `oytel-types` (re-exported as [`types`]), the same ones the
//! server uses, over reqwest with rustls. It never pulls in axum, sqlx or utoipa.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod api;
mod client;
mod error;
mod paginate;
pub mod request;
mod resources;
pub mod transport;
pub mod webhooks;

#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
#[doc(inline)]
pub use api::MockOytelApi;
#[doc(inline)]
pub use api::OytelApi;
/// For implementing [`transport::Transport`] (and the trait's mock) without adding the crate.
pub use async_trait::async_trait;
#[doc(inline)]
pub use client::{ClientBuilder, OytelClient, RetryPolicy, PRODUCTION_BASE_URL, SANDBOX_BASE_URL};
#[doc(inline)]
pub use error::{Error, Result};
#[doc(inline)]
pub use paginate::Paginated;
#[doc(inline)]
pub use request::{Metadata, RateLimit, Request, Response};
#[doc(inline)]
pub use resources::{Account, Esims, Orders, Plans, Sandbox, Webhooks};

/// The wire types of the API (the `oytel-types` crate): requests, answers, events, errors.
#[doc(inline)]
pub use oytel_types as types;

/// What a caller needs to consume a [`Paginated`] list, without adding a dependency.
pub mod stream {
    pub use futures_util::stream::{Stream, StreamExt, TryStreamExt};
}

/// Every Rust snippet of `docs/sdk.md`, compiled as a doc test so that the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/sdk.md")]
struct SdkGuide;
