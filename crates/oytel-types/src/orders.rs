use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Amount, Environment};

/// An order: one paid provisioning of one eSIM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    /// Order id.
    pub order_id: String,
    /// The eSIM it created.
    pub esim_id: String,
    /// `completed` (an order exists only once paid and provisioned).
    pub status: String,
    /// Plan id.
    pub plan_id: String,
    /// Term length, months.
    pub term_months: u32,
    /// What it cost, USD.
    pub amount_usd: Amount,
    /// What it cost, cents.
    pub amount_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The customer's email address.
    pub customer_email: String,
    /// The customer's name.
    pub customer_name: String,
    /// Your reference.
    pub reference_id: Option<String>,
    /// Its environment.
    pub environment: Environment,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/orders/{order_id}`: the order's fields at the top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderResponse {
    /// Always `true`.
    pub success: bool,
    /// The order.
    #[serde(flatten)]
    pub order: Order,
}

/// Filters and paging of `GET /api/v1/orders`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListOrdersQuery {
    /// Items per page, 1 to 100 (default 20).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 18, pattern = "^[0-9]{0,18}$"))]
    pub cursor: Option<String>,
    /// Only orders with this reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 128,
            pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
        )
    )]
    pub reference_id: Option<String>,
}
