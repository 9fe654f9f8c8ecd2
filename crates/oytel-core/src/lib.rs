//! The Oytel domain: what an eSIM order is and what it costs, independent of HTTP and SQL.
//!
//! - [`catalog`]: the plan catalog and its pricing, in integer cents.
//! - [`numbers`]: ICCIDs (E.118 with a Luhn check digit), UK mobile numbers, SGP.22
//!   activation codes and the random ids and secrets of the API.
//! - [`provision`]: validating an order and provisioning it through the storage port, with
//!   retries on number collisions.
//! - [`idempotency`]: the rules of idempotency keys, for every paid or state-changing write.
//! - [`paid`]: the one idempotent, paid-write path those writes go through.
//! - [`inventory`]: the builtin profile stock: ICCID batches, their checks, stock counts.
//! - [`downloads`]: what the SM-DP+'s reports on a profile's download change.
//! - [`profiles`]: where a profile comes from (builtin, or an SM-DP+ behind a port) and the
//!   saga that reserves one at an SM-DP+, with its reconciler.
//! - [`validation`], [`paging`], [`clock`]: checks of partners' text, pages and cursors of
//!   lists, and the time the domain reads.
//! - [`billing`]: the charging rules (sandbox never depletes, live keeps a minimum balance)
//!   and the refund rules.
//! - [`cancel`]: cancelling an eSIM, with its refund.
//! - [`lifecycle`]: the eSIM state machine.
//! - [`limits`]: hourly quotas and per-partner limits.
//! - [`keys`]: API key generation, hashing and authentication.
//! - [`webhooks`]: events, usage thresholds, the retry schedule, the SSRF guard's rules.
//! - [`sessions`]: web console sessions: expiry, tokens kept as hashes, CSRF tokens.
//! - [`tracecontext`]: the W3C trace context of the work under way, kept by the events it
//!   writes.
//! - [`records`]: the rows the domain reads and writes.
//! - [`ports`]: the async traits to the outside (storage; the SM-DP+'s is in [`profiles`]),
//!   with `mockall` mocks under the `mock` feature.
//!
//! This crate must not depend on axum, sqlx, reqwest or any HTTP or SQL crate: the server
//! and the storage adapters depend on it, never the other way round. Money is only ever
//! computed here.

pub mod billing;
pub mod body;
pub mod cancel;
pub mod catalog;
pub mod clock;
pub mod downloads;
mod error;
pub mod idempotency;
pub mod inventory;
pub mod keys;
pub mod lifecycle;
pub mod limits;
pub mod numbers;
pub mod packages;
pub mod paging;
pub mod paid;
pub mod ports;
pub mod profiles;
pub mod provision;
pub mod records;
pub mod sessions;
pub mod topup;
pub mod tracecontext;
pub mod validation;
pub mod webhooks;

pub use error::{CoreError, FieldError};
pub use oytel_types::{Amount, Environment, EsimStatus};

/// Who is asking: a partner in one environment. Every read and write of partner data is
/// scoped by it, so one partner never sees another's data and sandbox never sees production.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The partner's id.
    pub partner_id: String,
    /// The environment of the key in use.
    pub environment: Environment,
}

/// Records built as the code under test builds them, for unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use chrono::{DateTime, Utc};

    use crate::ports::{EsimRecord, OrderRecord};

    /// A fresh production order of `plan_id` for one month and its eSIM, made at `now`.
    pub(crate) fn provisioned(plan_id: &str, now: DateTime<Utc>) -> (OrderRecord, EsimRecord) {
        let request = oytel_types::ProvisionRequest::new(plan_id, "user@example.com", "A");
        let command =
            crate::provision::validate(&request, &crate::catalog::Catalog::default_catalog())
                .expect("a plan of the shipped catalog");
        let settings = crate::provision::ProvisionSettings {
            smdp_address: "smdp.test".into(),
            minimum_balance: crate::billing::DEFAULT_MINIMUM_BALANCE,
            smdp: None,
            stock: Default::default(),
        };
        let scope = crate::Scope {
            partner_id: "ptn_1".into(),
            environment: crate::Environment::Production,
        };
        crate::provision::new_rows(&command, &scope, &settings, "USD", "req_1", now)
    }

    /// The eSIM of [`provisioned`], made now.
    pub(crate) fn sample_esim(plan_id: &str) -> EsimRecord {
        provisioned(plan_id, Utc::now()).1
    }
}
