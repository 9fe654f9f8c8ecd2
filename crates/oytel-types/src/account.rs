use serde::{Deserialize, Serialize};

use crate::{Amount, Environment};

/// The balance of the key's environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Balance {
    /// Available balance, USD (sandbox: always 100.00).
    pub available: Amount,
    /// Available balance, cents.
    pub available_cents: i64,
    /// The balance that must remain after any charge, USD (sandbox: 0).
    pub minimum: Amount,
    /// The minimum balance, cents.
    pub minimum_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// The request limits that apply to the partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// Provisioning requests per hour.
    pub provision_per_hour: u32,
    /// Status and other eSIM reads per hour.
    pub status_per_hour: u32,
    /// Requests per second on any authenticated route.
    pub burst_per_second: u32,
}

/// `GET /api/v1/account`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountResponse {
    /// Always `true`.
    pub success: bool,
    /// Partner id.
    pub partner_id: String,
    /// Partner name.
    pub name: String,
    /// Partner contact email.
    pub email: Option<String>,
    /// The key's environment.
    pub environment: Environment,
    /// The id of the key used.
    pub key_id: String,
    /// The balance of this environment.
    pub balance: Balance,
    /// The limits that apply.
    pub limits: Limits,
}
