use serde::{Deserialize, Serialize};

use crate::{Amount, Environment};

/// An eSIM plan of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    /// The plan id, used as `plan_id` when provisioning (e.g. `uk-massive-650`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Where the plan works, for people (e.g. `United Kingdom + 35GB EU roaming`).
    pub coverage: String,
    /// Where the plan works, as ISO 3166-1 alpha-2 country codes.
    pub countries: Vec<String>,
    /// The region the plan belongs to: `uk`, `europe`, `global`, `north-america`, `asia`, …
    pub region: String,
    /// The data allowance for people (e.g. `650GB`).
    pub data_allowance: String,
    /// The data allowance in megabytes (1 GB = 1000 MB).
    pub data_allowance_mb: u64,
    /// Days one month of the plan is valid for.
    pub validity_days: u32,
    /// Monthly price per term length.
    pub pricing: PlanPricing,
    /// What the plan includes.
    pub features: PlanFeatures,
    /// Whether the plan is featured.
    pub popular: bool,
    /// Whether the plan can be provisioned now.
    pub available: bool,
    /// The environment of the key that listed the plan.
    pub environment: Environment,
}

/// Monthly prices by term length: a 3-month term costs three times `3_months`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanPricing {
    /// Monthly price on a 1-month term.
    #[serde(rename = "1_month")]
    pub one_month: Amount,
    /// Monthly price on a 3-month term.
    #[serde(rename = "3_months")]
    pub three_months: Amount,
    /// Monthly price on a 6-month term.
    #[serde(rename = "6_months")]
    pub six_months: Amount,
    /// Monthly price on a 12-month term.
    #[serde(rename = "12_months")]
    pub twelve_months: Amount,
    /// The headline price: the 1-month price.
    pub base_price: Amount,
    /// ISO 4217 currency code of every price (`USD`).
    pub currency: String,
}

/// What a plan includes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanFeatures {
    /// Data in the UK, for UK plans (e.g. `650GB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uk_data: Option<String>,
    /// Data while roaming, where the plan roams (e.g. `35GB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roaming_data: Option<String>,
    /// Days one month of the plan is valid for.
    pub validity_days: u32,
    /// Fastest network generation (`4G`, `5G`).
    pub network: String,
    /// Whether tethering / hotspot use is allowed.
    pub hotspot: bool,
    /// Whether the plan includes a mobile number for calls and SMS.
    pub calls_and_sms: bool,
}

/// `GET /api/v1/plans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlansResponse {
    /// Always `true`.
    pub success: bool,
    /// The plans matching the filters, in catalog order.
    pub plans: Vec<Plan>,
    /// About the list.
    pub meta: PlansMeta,
}

/// About a list of plans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlansMeta {
    /// How many plans are listed.
    pub total: usize,
    /// The currency of every price.
    pub currency: String,
    /// The environment of the key.
    pub environment: Environment,
}

/// `GET /api/v1/plans/{plan_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanResponse {
    /// Always `true`.
    pub success: bool,
    /// The plan.
    pub plan: Plan,
}

/// Filters of `GET /api/v1/plans`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PlansQuery {
    /// Only plans that work in this country (ISO 3166-1 alpha-2, e.g. `GB`, case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Only plans of this region (e.g. `europe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}
