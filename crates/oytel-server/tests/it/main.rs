//! The server's integration tests: the real app on `127.0.0.1:0` with a fresh SQLite file.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod helpers;

mod account;
mod auth;
mod auth_throttle;
mod cli;
mod connections;
mod crash;
mod dashboard;
mod disconnects;
mod docs;
mod esims;
mod inventory;
mod metrics;
mod multi_instance;
mod openapi;
mod plans;
mod provision;
mod python_sdk;
mod qr;
mod ratelimits;
mod receiver;
mod robustness;
mod slow_peers;
mod smdp;
mod topups;
mod traces;
mod webhooks;
