//! The Rust SDK of the Oytel eSIM API.
//!
//! It speaks the wire types of `oytel-types`, the same ones the server uses, over reqwest with
//! rustls. A partner depends on this crate alone: it must never pull in axum, sqlx or utoipa.
//!
//! The client itself (authentication, retries with idempotency keys, typed errors, webhook
//! verification) is built by the SDK issue; until then the wire types are re-exported here so
//! that a partner can already depend on one crate.

pub use oytel_types as types;
