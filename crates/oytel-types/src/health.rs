use serde::{Deserialize, Serialize};

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    /// `ok` when healthy.
    pub status: String,
    /// Server version.
    pub version: String,
}
