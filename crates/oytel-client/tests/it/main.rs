//! The SDK against the real server on port 0 (`e2e`), and against a small server that
//! misbehaves on purpose (`faults`).

#![allow(clippy::unwrap_used)]

mod e2e;
mod fault_server;
mod faults;
