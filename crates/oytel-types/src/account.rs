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
    /// The live balance below which `account.balance_low` is sent, USD; `null`: none set.
    #[serde(default)]
    pub low_balance_threshold: Option<Amount>,
}

/// `PATCH /api/v1/account` (live keys): what to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpdateAccount {
    /// The live balance below which you are sent `account.balance_low`, USD (0 or more,
    /// rounded to the cent); `null` removes it; left out, it stays as it is.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<f64>, minimum = 0, maximum = 90_000_000_000_000_f64)
    )]
    pub low_balance_threshold: Option<Option<Amount>>,
}

/// A field that is present (`Some`), its value possibly `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<Amount>>, D::Error> {
    Option::<Amount>::deserialize(deserializer).map(Some)
}

/// What a line of the statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TransactionKind {
    /// Money added to the balance by the operator (a payment received).
    Credit,
    /// An order's or a top-up's price, taken from the balance when it was bought.
    Charge,
    /// A price given back: its eSIM was cancelled before the package was used.
    Refund,
    /// A value this version does not know, from a newer server. Never sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl TransactionKind {
    /// The wire name (`unknown` for [`TransactionKind::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Credit => "credit",
            TransactionKind::Charge => "charge",
            TransactionKind::Refund => "refund",
            TransactionKind::Unknown => "unknown",
        }
    }
}

/// One line of the statement: a movement of the live balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transaction {
    /// `led_…`
    pub transaction_id: String,
    /// What it is.
    pub kind: TransactionKind,
    /// Signed amount, USD: credits positive, charges negative.
    pub amount: Amount,
    /// The amount, cents.
    pub amount_cents: i64,
    /// The balance right after it, USD.
    pub balance_after: Amount,
    /// The balance after, cents.
    pub balance_after_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The order charged or refunded.
    pub order_id: Option<String>,
    /// The top-up purchase charged or refunded.
    #[serde(default)]
    pub purchase_id: Option<String>,
    /// The eSIM that order or purchase paid for.
    pub esim_id: Option<String>,
    /// What it was for.
    pub description: String,
    /// When.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Query of `GET /api/v1/account/transactions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListTransactionsQuery {
    /// Items per page, 1 to 100 (default 20).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 18, pattern = "^[0-9]{0,18}$"))]
    pub cursor: Option<String>,
    /// Only lines at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only lines before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}
