use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Amount, Environment, ResponseMeta};

/// The state of an eSIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EsimStatus {
    /// Created and released for download; the customer has not installed it yet.
    Provisioned,
    /// Installed and attached to the network.
    Active,
    /// Temporarily barred.
    Suspended,
    /// Past `expires_at`.
    Expired,
    /// Cancelled before expiry.
    Cancelled,
    /// A state this version does not know, from a newer server. Never sent, and refused in
    /// requests.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl EsimStatus {
    /// Every state this version knows.
    pub const ALL: [EsimStatus; 5] = [
        EsimStatus::Provisioned,
        EsimStatus::Active,
        EsimStatus::Suspended,
        EsimStatus::Expired,
        EsimStatus::Cancelled,
    ];

    /// Their wire names, in the order of [`EsimStatus::ALL`].
    pub const NAMES: [&'static str; 5] =
        ["provisioned", "active", "suspended", "expired", "cancelled"];

    /// The wire name (`unknown` for [`EsimStatus::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            EsimStatus::Provisioned => "provisioned",
            EsimStatus::Active => "active",
            EsimStatus::Suspended => "suspended",
            EsimStatus::Expired => "expired",
            EsimStatus::Cancelled => "cancelled",
            EsimStatus::Unknown => "unknown",
        }
    }
}

impl std::str::FromStr for EsimStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "provisioned" => EsimStatus::Provisioned,
            "active" => EsimStatus::Active,
            "suspended" => EsimStatus::Suspended,
            "expired" => EsimStatus::Expired,
            "cancelled" => EsimStatus::Cancelled,
            other => return Err(format!("unknown eSIM status `{other}`")),
        })
    }
}

/// The spec's schema of `term_months`: the term lengths that can be ordered.
#[cfg(feature = "openapi")]
#[derive(Debug)]
pub struct TermMonths;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for TermMonths {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .enum_values(Some([1, 3, 6, 12]))
            .description(Some("Term length in months: 1, 3, 6 or 12."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for TermMonths {}

/// `POST /api/v1/esim/provision`: order a plan for a customer. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "plan_id": "uk-massive-650", "term_months": 1,
    "customer_email": "user@example.com", "customer_name": "John Doe"
})))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProvisionRequest {
    /// A plan id from `GET /api/v1/plans` (not blank).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = "\\S"))]
    pub plan_id: String,
    /// Term length in months: 1, 3, 6 or 12.
    #[serde(
        default = "default_term_months",
        deserialize_with = "crate::whole::u32"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = TermMonths, default = 1))]
    pub term_months: u32,
    /// The customer's email address: at most 254 characters; the part before the `@` 1 to 64
    /// characters without spaces or control characters; the domain ASCII labels of letters,
    /// digits and `-` (an internationalised domain in its `xn--` form), at least two.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 254,
            pattern = "^[^\\s@\\u0000-\\u001F\\u007F-\\u009F]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
        )
    )]
    pub customer_email: String,
    /// The customer's full name (at most 200 characters, no control characters).
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 200,
            pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
        )
    )]
    pub customer_name: String,
    /// Your own reference for the order (at most 128 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 128,
            pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
        )
    )]
    pub reference_id: Option<String>,
    /// An `https` URL that receives this eSIM's webhook events, at most 2048 characters,
    /// without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            format = "uri",
            max_length = 2048,
            pattern = "^https?://[^\\s/@?#]+([/?#][^\\s]*)?$"
        )
    )]
    pub webhook_url: Option<String>,
}

fn default_term_months() -> u32 {
    1
}

/// The plan an eSIM was ordered on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EsimPlan {
    /// Plan id.
    pub id: String,
    /// Plan name.
    pub name: String,
    /// Data allowance for people.
    pub data_allowance: String,
    /// Days one month of the plan is valid for.
    pub validity_days: u32,
    /// Term length ordered, in months.
    pub term_months: u32,
}

/// The network a provisioned eSIM attaches to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkInfo {
    /// Home network operator.
    pub operator: String,
    /// Access point name to configure if the device asks.
    pub apn: String,
    /// Fastest network generation.
    pub network: String,
}

/// Steps to install an eSIM, per platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivationInstructions {
    /// iPhone and iPad.
    pub ios: Vec<String>,
    /// Android devices.
    pub android: Vec<String>,
    /// Entering the code by hand.
    pub manual: Vec<String>,
}

/// The eSIM in a provisioning response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvisionedEsim {
    /// eSIM id.
    pub esim_id: String,
    /// ICCID (E.118, 19 digits with a Luhn check digit).
    pub iccid: String,
    /// A public URL of the QR code image (PNG). It reveals the activation code: share it only
    /// with the customer.
    pub qr_code_url: String,
    /// The GSMA SGP.22 activation code `LPA:1$<SM-DP+>$<matching id>`, for manual entry.
    /// Secret: anyone holding it can download the profile.
    pub activation_code: String,
    /// The customer's UK mobile number (E.164).
    pub mobile_number: String,
    /// The eSIM's state.
    pub status: EsimStatus,
    /// When the eSIM's term ends.
    pub expires_at: DateTime<Utc>,
    /// The plan ordered.
    pub plan: EsimPlan,
    /// The network it attaches to.
    pub network_info: NetworkInfo,
    /// How to install it.
    pub activation_instructions: ActivationInstructions,
}

/// What an order cost and what is left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Billing {
    /// What the order cost, in USD.
    pub cost_usd: Amount,
    /// What the order cost, in cents.
    pub cost_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The balance after the charge, in USD (sandbox: always 100.00).
    pub remaining_balance: Amount,
    /// The balance after the charge, in cents.
    pub remaining_balance_cents: i64,
    /// Which balance was charged.
    pub environment: Environment,
}

/// `201` answer of `POST /api/v1/esim/provision`: the documented flat fields and, beside them,
/// the nested `esim` and `billing` objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvisionResponse {
    /// Always `true`.
    pub success: bool,
    /// The order that paid for the eSIM.
    pub order_id: String,
    /// eSIM id (same as `esim.esim_id`).
    pub esim_id: String,
    /// ICCID (same as `esim.iccid`).
    pub iccid: String,
    /// QR code image URL (same as `esim.qr_code_url`).
    pub qr_code_url: String,
    /// Activation code (same as `esim.activation_code`).
    pub activation_code: String,
    /// Mobile number (same as `esim.mobile_number`).
    pub mobile_number: String,
    /// Expiry (same as `esim.expires_at`).
    pub expires_at: DateTime<Utc>,
    /// State (same as `esim.status`).
    pub status: EsimStatus,
    /// Your reference, if you gave one.
    pub reference_id: Option<String>,
    /// The eSIM.
    pub esim: ProvisionedEsim,
    /// The charge.
    pub billing: Billing,
    /// About the request.
    pub meta: ResponseMeta,
}

/// Usage in the documented flat shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Data used, MB.
    pub data_used_mb: u64,
    /// Data allowance, MB.
    pub data_limit_mb: u64,
    /// Calls made.
    pub calls_made: u64,
    /// SMS sent.
    pub sms_sent: u64,
}

/// Activation details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activation {
    /// Whether the customer has installed and activated the eSIM.
    pub activated: bool,
    /// When it was activated.
    pub activated_at: Option<DateTime<Utc>>,
}

/// Usage in the nested shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageDetails {
    /// Data used, MB.
    pub used_mb: u64,
    /// Data allowance, MB.
    pub total_mb: u64,
    /// Data left, MB.
    pub remaining_mb: u64,
    /// Share of the allowance used, 0 to 100, two decimals.
    pub usage_percentage: f64,
    /// Calls made.
    pub calls_made: u64,
    /// SMS sent.
    pub sms_sent: u64,
}

/// The network an active eSIM was last seen on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrentNetwork {
    /// Operator name.
    pub operator: String,
    /// Country name.
    pub country_name: String,
    /// Signal strength, 0 to 5.
    pub signal_strength: u8,
}

/// Connection details, known once the eSIM is active.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Connection {
    /// `connected` or `disconnected`.
    pub status: String,
    /// The network last seen, if any.
    pub current_network: Option<CurrentNetwork>,
}

/// The eSIM in a status response (nested shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EsimStatusDetails {
    /// eSIM id.
    pub esim_id: String,
    /// ICCID.
    pub iccid: String,
    /// State.
    pub status: EsimStatus,
    /// The plan ordered.
    pub plan: EsimPlan,
    /// Activation.
    pub activation: Activation,
    /// Usage.
    pub usage: Option<UsageDetails>,
    /// Connection, when known (only for active eSIMs).
    pub connection: Option<Connection>,
    /// When the eSIM's term ends.
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/v1/esim/{esim_id}/status`: the documented flat fields and the nested `esim`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusResponse {
    /// Always `true`.
    pub success: bool,
    /// eSIM id.
    pub esim_id: String,
    /// State.
    pub status: EsimStatus,
    /// Usage (flat shape).
    pub usage: Usage,
    /// When the eSIM's term ends.
    pub expires_at: DateTime<Utc>,
    /// The same in the nested shape.
    pub esim: EsimStatusDetails,
    /// About the request.
    pub meta: ResponseMeta,
}

/// An eSIM with everything a partner may need about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Esim {
    /// eSIM id.
    pub esim_id: String,
    /// The order that paid for it.
    pub order_id: String,
    /// ICCID.
    pub iccid: String,
    /// State.
    pub status: EsimStatus,
    /// Plan id.
    pub plan_id: String,
    /// The plan ordered.
    pub plan: EsimPlan,
    /// The customer's email address.
    pub customer_email: String,
    /// The customer's name.
    pub customer_name: String,
    /// Your reference.
    pub reference_id: Option<String>,
    /// Where this eSIM's events go, besides your webhook endpoints.
    pub webhook_url: Option<String>,
    /// Mobile number (E.164).
    pub mobile_number: String,
    /// Activation code (secret).
    pub activation_code: String,
    /// QR code image URL, PNG (secret).
    pub qr_code_url: String,
    /// The same QR code as SVG (secret).
    pub qr_code_svg_url: String,
    /// Usage.
    pub usage: Usage,
    /// When it was activated.
    pub activated_at: Option<DateTime<Utc>>,
    /// When its term ends.
    pub expires_at: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its environment.
    pub environment: Environment,
    /// Its profile at the SM-DP+, where it came from one (absent for profiles the server
    /// made itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<EsimProfile>,
}

/// Where an eSIM's profile stands at the SM-DP+ that holds it, as the SM-DP+ reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProfileState {
    /// Released for download; the phone has not fetched it yet.
    Released,
    /// Downloaded by the phone (its EID known).
    Downloaded,
    /// Installed on the phone's eUICC.
    Installed,
    /// The download or installation failed (`last_result` says why); the customer may try
    /// again with the same activation code where the SM-DP+ allows it.
    Error,
    /// Deleted from the phone.
    Deleted,
    /// A value this version does not know, from a newer server. Never sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl ProfileState {
    /// Every state.
    pub const ALL: [ProfileState; 5] = [
        ProfileState::Released,
        ProfileState::Downloaded,
        ProfileState::Installed,
        ProfileState::Error,
        ProfileState::Deleted,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileState::Released => "released",
            ProfileState::Downloaded => "downloaded",
            ProfileState::Installed => "installed",
            ProfileState::Error => "error",
            ProfileState::Deleted => "deleted",
            ProfileState::Unknown => "unknown",
        }
    }

    /// The state of a wire name.
    pub fn parse(text: &str) -> Option<ProfileState> {
        ProfileState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// An eSIM's profile at the SM-DP+ (only for eSIMs whose profile came from one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EsimProfile {
    /// Where it stands.
    pub state: ProfileState,
    /// The phone's eUICC, once the SM-DP+ named it.
    pub eid: Option<String>,
    /// When the SM-DP+ last reported on it (none before its first report).
    pub updated_at: Option<DateTime<Utc>>,
    /// The last report's result in words: `success`, or the failure's reason
    /// (`8.1/6.4 (EID: …)`).
    pub last_result: Option<String>,
}

/// `GET /api/v1/esim/{esim_id}`: the eSIM's fields at the top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EsimResponse {
    /// Always `true`.
    pub success: bool,
    /// The eSIM.
    #[serde(flatten)]
    pub esim: Esim,
}

/// Filters and paging of `GET /api/v1/esims`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListEsimsQuery {
    /// Items per page, 1 to 100 (default 20).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(max_length = 18, pattern = "^[0-9]{0,18}$"))]
    pub cursor: Option<String>,
    /// Only eSIMs in this state.
    #[serde(
        default,
        deserialize_with = "crate::strict::some_status",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<EsimStatus>,
    /// Only eSIMs with this reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 128,
            pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
        )
    )]
    pub reference_id: Option<String>,
    /// Only eSIMs of this customer (exact, case-insensitive; an email address as
    /// `customer_email` is when ordering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 254,
            pattern = "^[^\\s@\\u0000-\\u001F\\u007F-\\u009F]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
        )
    )]
    pub customer_email: Option<String>,
}

/// `POST /api/v1/esim/{esim_id}/cancel`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CancelRequest {
    /// Why (kept with the eSIM; at most 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 500,
            pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
        )
    )]
    pub reason: Option<String>,
}

/// What a cancellation gave back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundInfo {
    /// Whether the order was refunded.
    pub refunded: bool,
    /// The amount given back, USD (0 when not refunded).
    pub amount: crate::Amount,
    /// The amount, cents.
    pub amount_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The refund's line in your statement (live keys; a sandbox balance never moves).
    pub transaction_id: Option<String>,
    /// Why it was refunded or not, in words.
    pub explanation: String,
    /// Each package's part, the first first.
    #[serde(default)]
    pub packages: Vec<PackageRefund>,
}

/// What a cancellation gave back for one package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackageRefund {
    /// The package.
    pub package_id: String,
    /// Its state after the cancellation.
    pub state: crate::PackageState,
    /// Given back for it, USD.
    pub amount: crate::Amount,
    /// The same, cents.
    pub amount_cents: i64,
    /// Its refund lines in your statement (one per purchase refunded; live keys only).
    pub transaction_ids: Vec<String>,
    /// Why, in words.
    pub explanation: String,
}

/// The answer of `POST /api/v1/esim/{esim_id}/cancel` (the same for a repeat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CancelResponse {
    /// Always `true`.
    pub success: bool,
    /// The eSIM.
    pub esim_id: String,
    /// `cancelled`.
    pub status: EsimStatus,
    /// When it was cancelled.
    pub cancelled_at: DateTime<Utc>,
    /// Your reason, if you gave one.
    pub reason: Option<String>,
    /// What was given back.
    pub refund: RefundInfo,
    /// About the request.
    pub meta: crate::ResponseMeta,
}
