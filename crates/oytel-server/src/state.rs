//! What every handler shares.

use std::sync::Arc;

use oytel_core::catalog::Catalog;
use oytel_core::ports::Storage;
use std::time::Duration;

use oytel_core::provision::ProvisionSettings;
use oytel_core::webhooks::RetrySchedule;
use oytel_types::Limits;

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Delays between attempts.
    pub schedule: RetrySchedule,
    /// Whether private, loopback and link-local destinations are allowed (development and
    /// tests); never by default in production.
    pub allow_internal: bool,
    /// The time allowed for one delivery attempt.
    pub timeout: Duration,
    /// How long an endpoint may fail every delivery before it is disabled.
    pub disable_after: Duration,
    /// How often an idle worker looks for due deliveries.
    pub poll_interval: Duration,
    /// Destinations this instance delivers to at once (lanes, see [`crate::dispatch`]).
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            schedule: RetrySchedule::default(),
            allow_internal: false,
            timeout: Duration::from_secs(15),
            disable_after: oytel_core::webhooks::DISABLE_AFTER,
            poll_interval: Duration::from_millis(500),
            concurrency: 64,
        }
    }
}

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The base of absolute URLs in responses (`qr_code_url`), without a trailing slash.
    pub public_url: String,
    /// Provisioning settings (SM-DP+ address, minimum balance).
    pub provision: ProvisionSettings,
    /// The default limits (a partner's own limits replace them).
    pub limits: Limits,
    /// Webhook delivery.
    pub webhooks: WebhookSettings,
    /// The token of the operator API (network usage and activation notices); `None`
    /// disables that API.
    pub operator_token: Option<String>,
    /// How often expired eSIMs are looked for.
    pub expiry_interval: Duration,
    /// Whether this instance runs the background workers (deliveries, expiry).
    pub workers: bool,
    /// Failed authentications allowed per client address per minute.
    pub auth_failures_per_minute: u32,
    /// The proxies whose `Forwarded` / `X-Forwarded-For` headers are believed.
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// How long a client waits for an answer (see [`crate::completion`]).
    pub request_timeout: Duration,
    /// The listener's connection limits and timeouts (see [`crate::listener`]).
    pub connections: crate::listener::ConnectionLimits,
    /// The phone the sandbox's activation plays, when the SM-DP+ is the simulator.
    pub sandbox_phone: Option<Arc<crate::smdp::SimulatorPhone>>,
}

/// The state shared by handlers. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Storage>,
    /// API key lookups, cached while no key or partner changes.
    pub keys: Arc<crate::keycache::KeyCache>,
    /// Where hourly quotas are counted.
    pub quotas: Arc<dyn oytel_core::limits::Quotas>,
    /// The in-process limiters (burst, failed authentication).
    pub limiter: Arc<crate::ratelimit::RateLimits>,
    /// The plan catalog.
    pub catalog: Arc<Catalog>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Plan answers rendered once.
    pub plans_cache: Arc<crate::routes::plans::PlansCache>,
    /// The OpenAPI document served at `/openapi.json` and `/openapi.yaml`.
    pub spec: Arc<crate::openapi::ServedSpec>,
    /// How requests run: state-changing ones to completion, each within the timeout.
    pub completion: crate::completion::Completion,
    /// The last readiness probe.
    pub readiness: Arc<crate::routes::health::Readiness>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .field("plans", &self.catalog.plans.len())
            .finish_non_exhaustive()
    }
}
