//! What every handler shares.

use std::sync::Arc;

use oytel_core::catalog::Catalog;
use oytel_core::ports::Storage;
use oytel_core::provision::ProvisionSettings;
use oytel_types::Limits;

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The base of absolute URLs in responses (`qr_code_url`), without a trailing slash.
    pub public_url: String,
    /// Provisioning settings (SM-DP+ address, minimum balance).
    pub provision: ProvisionSettings,
    /// The request limits partners are told apply to them.
    pub limits: Limits,
}

/// The state shared by handlers. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Storage>,
    /// The plan catalog.
    pub catalog: Arc<Catalog>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// The OpenAPI document served at `/openapi.json` and `/openapi.yaml`.
    pub spec: Arc<crate::openapi::ServedSpec>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .field("plans", &self.catalog.plans.len())
            .finish_non_exhaustive()
    }
}
