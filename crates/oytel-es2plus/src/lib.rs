//! GSMA ES2+ (SGP.22 §5.3): the interface between an operator and the SM-DP+ that holds its
//! eSIM profiles. The operator reserves a profile (`downloadOrder`), links and releases it
//! (`confirmOrder`), gives it back (`cancelOrder`) or releases it later (`releaseProfile`);
//! the SM-DP+ reports each step of the phone's download (`handleDownloadProgressInfo`).
//!
//! [`wire`] is the format, shared by our server, the SM-DP+ simulator
//! (`crates/oytel-smdp-sim`) and the fuzzer; [`client`] (feature `client`) calls a real
//! SM-DP+ over HTTPS with mutual TLS; [`tls`] (feature `server`) serves ES2+ over TLS with
//! client certificates (the simulator, and the operator's notification listener).
//! `docs/smdp.md` says how they fit together.

pub mod wire;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "server")]
pub mod tls;

pub use wire::*;
