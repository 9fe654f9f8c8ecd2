use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Amount, Billing, EsimStatus, ResponseMeta};

/// The state of a package (`docs/lifecycle.md` has the diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    /// Bought, waiting for the package in force to end.
    Queued,
    /// In force: its validity runs and usage counts against it.
    Active,
    /// In force with its allowance used up (a data add-on makes it active again).
    Depleted,
    /// Its validity ended.
    Expired,
    /// Ended by the eSIM's cancellation, not refunded.
    Cancelled,
    /// Ended by the eSIM's cancellation and refunded in full.
    Refunded,
    /// A value this version does not know, from a newer server. Never sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl PackageState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageState::Queued => "queued",
            PackageState::Active => "active",
            PackageState::Depleted => "depleted",
            PackageState::Expired => "expired",
            PackageState::Cancelled => "cancelled",
            PackageState::Refunded => "refunded",
            PackageState::Unknown => "unknown",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<PackageState> {
        [
            PackageState::Queued,
            PackageState::Active,
            PackageState::Depleted,
            PackageState::Expired,
            PackageState::Cancelled,
            PackageState::Refunded,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// How a package was bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// The plan the eSIM was provisioned with (its order).
    Plan,
    /// A renewal of the plan, bought as a top-up.
    Renewal,
}

/// One package of an eSIM: an allowance for a validity, at a price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Package {
    /// `pkg_…`
    pub package_id: String,
    /// 1 for the package the eSIM was provisioned with, then in the order bought.
    pub position: u32,
    /// How it was bought.
    pub kind: PackageKind,
    /// Its state.
    pub state: PackageState,
    /// The plan.
    pub plan_id: String,
    /// Validity, months from its start.
    pub term_months: u32,
    /// Allowance, MB, with the data add-ons bought for it.
    pub data_allowance_mb: u64,
    /// The allowance for people (`20GB`).
    pub data_allowance: String,
    /// Data used while it was in force, MB.
    pub data_used_mb: u64,
    /// Allowance left, MB.
    pub data_remaining_mb: u64,
    /// What was paid for it (its purchase and its add-ons), USD.
    pub price: Amount,
    /// The same, cents.
    pub price_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The order that bought it (the first package).
    pub order_id: Option<String>,
    /// The top-up purchases that bought it (a renewal) or added data to it.
    pub purchase_ids: Vec<String>,
    /// When it came into force (`null` while queued).
    pub starts_at: Option<DateTime<Utc>>,
    /// When its validity ends (`null` while queued).
    pub ends_at: Option<DateTime<Utc>>,
    /// When the eSIM first used it on the network (`null`: never).
    pub activated_at: Option<DateTime<Utc>>,
    /// When it ended (expired, cancelled or refunded), if it did.
    pub ended_at: Option<DateTime<Utc>>,
    /// What its cancellation gave back, cents (0 unless refunded).
    pub refunded_cents: i64,
    /// When it was bought.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/esim/{esim_id}/packages`: every package, the first first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackagesResponse {
    /// Always `true`.
    pub success: bool,
    /// The eSIM.
    pub esim_id: String,
    /// Its state.
    pub status: EsimStatus,
    /// Its packages, in the order bought.
    pub packages: Vec<Package>,
}

/// What a top-up adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TopUpKind {
    /// Data added to the package in force, valid until it ends.
    Addon,
    /// A new package of the eSIM's plan, queued until the package in force ends.
    Renewal,
}

/// A top-up that may be bought for an eSIM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopUpOffer {
    /// What to send as `topup_id`: an add-on's catalog id, or `renewal-{1,3,6,12}m`.
    pub topup_id: String,
    /// What it adds.
    pub kind: TopUpKind,
    /// Its name.
    pub name: String,
    /// Data, MB.
    pub data_allowance_mb: u64,
    /// Data for people (`5GB`).
    pub data_allowance: String,
    /// A renewal's validity, months (`null` for an add-on: it ends with its package).
    pub term_months: Option<u32>,
    /// Price, USD.
    pub price: Amount,
    /// Price, cents.
    pub price_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// `GET /api/v1/esim/{esim_id}/topups`: what may be bought for this eSIM now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopUpOffersResponse {
    /// Always `true`.
    pub success: bool,
    /// The eSIM.
    pub esim_id: String,
    /// The top-ups on offer (empty when the eSIM takes none: cancelled, say).
    pub topups: Vec<TopUpOffer>,
}

/// `POST /api/v1/esim/{esim_id}/topups`: buy a top-up. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"topup_id": "eu-boost-5"})))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TopUpRequest {
    /// A `topup_id` from `GET /api/v1/esim/{esim_id}/topups`.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub topup_id: String,
}

/// A bought top-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopUpPurchase {
    /// `top_…`
    pub purchase_id: String,
    /// The eSIM.
    pub esim_id: String,
    /// What was bought.
    pub topup_id: String,
    /// Its kind.
    pub kind: TopUpKind,
    /// The package it made (a renewal) or added data to (an add-on).
    pub package_id: String,
    /// Data, MB.
    pub data_allowance_mb: u64,
    /// A renewal's validity, months.
    pub term_months: Option<u32>,
    /// When it was bought.
    pub created_at: DateTime<Utc>,
}

/// `201` answer of `POST /api/v1/esim/{esim_id}/topups` (a replay answers the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopUpResponse {
    /// Always `true`.
    pub success: bool,
    /// The purchase.
    pub purchase: TopUpPurchase,
    /// The package it made or added to, as it is now.
    pub package: Package,
    /// The charge.
    pub billing: Billing,
    /// About the request.
    pub meta: ResponseMeta,
}
