use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Environment, EsimStatus};

/// The kinds of webhook events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    /// An eSIM was created.
    #[serde(rename = "esim.provisioned")]
    EsimProvisioned,
    /// The customer installed and activated an eSIM.
    #[serde(rename = "esim.activated")]
    EsimActivated,
    /// An eSIM reached its expiry date.
    #[serde(rename = "esim.expired")]
    EsimExpired,
    /// An eSIM's data usage crossed 50 %, 80 % or 100 % of its allowance.
    #[serde(rename = "usage.threshold")]
    UsageThreshold,
    /// A test sent from `POST /api/v1/webhooks/endpoints/{id}/test`.
    #[serde(rename = "webhook.test")]
    WebhookTest,
    /// An eSIM was suspended, by you or by the operator (sent only to endpoints that list it).
    #[serde(rename = "esim.suspended")]
    EsimSuspended,
    /// A suspended eSIM was resumed (sent only to endpoints that list it).
    #[serde(rename = "esim.resumed")]
    EsimResumed,
    /// An eSIM was cancelled, with or without a refund (sent only to endpoints that list it).
    #[serde(rename = "esim.cancelled")]
    EsimCancelled,
    /// Your live balance fell below the threshold you set (sent only to endpoints that list
    /// it; `data` is an [`AccountEventData`]).
    #[serde(rename = "account.balance_low")]
    AccountBalanceLow,
    /// A top-up was bought for an eSIM (sent only to endpoints that list it; `data` names the
    /// purchase, the top-up and the package).
    #[serde(rename = "esim.topped_up")]
    EsimToppedUp,
    /// The customer's phone downloaded the eSIM's profile from the SM-DP+ (sent only to
    /// endpoints that list it; `data.profile` names the EID).
    #[serde(rename = "esim.profile_downloaded")]
    EsimProfileDownloaded,
    /// The download or installation of the eSIM's profile failed (sent only to endpoints
    /// that list it; `data.profile.last_result` gives the reason).
    #[serde(rename = "esim.installation_failed")]
    EsimInstallationFailed,
    /// A type this version does not know, from a newer server: read the payload's `event`
    /// to see which. Never sent, and refused in requests.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl EventType {
    /// Every type this version knows.
    pub const ALL: [EventType; 12] = [
        EventType::EsimProvisioned,
        EventType::EsimActivated,
        EventType::EsimExpired,
        EventType::UsageThreshold,
        EventType::WebhookTest,
        EventType::EsimSuspended,
        EventType::EsimResumed,
        EventType::EsimCancelled,
        EventType::AccountBalanceLow,
        EventType::EsimToppedUp,
        EventType::EsimProfileDownloaded,
        EventType::EsimInstallationFailed,
    ];

    /// Their wire names, in the order of [`EventType::ALL`].
    pub const NAMES: [&'static str; 12] = {
        let mut names = [""; 12];
        let mut i = 0;
        while i < 12 {
            names[i] = EventType::ALL[i].as_str();
            i += 1;
        }
        names
    };

    /// The wire name, e.g. `esim.provisioned` (`unknown` for [`EventType::Unknown`]).
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::EsimProvisioned => "esim.provisioned",
            EventType::EsimActivated => "esim.activated",
            EventType::EsimExpired => "esim.expired",
            EventType::UsageThreshold => "usage.threshold",
            EventType::WebhookTest => "webhook.test",
            EventType::EsimSuspended => "esim.suspended",
            EventType::EsimResumed => "esim.resumed",
            EventType::EsimCancelled => "esim.cancelled",
            EventType::AccountBalanceLow => "account.balance_low",
            EventType::EsimToppedUp => "esim.topped_up",
            EventType::EsimProfileDownloaded => "esim.profile_downloaded",
            EventType::EsimInstallationFailed => "esim.installation_failed",
            EventType::Unknown => "unknown",
        }
    }

    /// The event type of a wire name this version knows.
    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// A webhook event as delivered to a partner's endpoint.
///
/// ```json
/// {"id": "evt_…", "event": "esim.provisioned", "timestamp": "2024-01-15T10:30:00Z",
///  "data": {"esim_id": "esim_123456", "customer_email": "user@example.com",
///           "plan_id": "uk-massive-650"}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEvent {
    /// Unique event id; also sent as the `webhook-id` header. Use it to drop duplicates.
    pub id: String,
    /// The event type.
    pub event: EventType,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
    /// What it is about.
    pub data: WebhookEventData,
}

/// The subject of a webhook event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEventData {
    /// eSIM id.
    pub esim_id: String,
    /// The customer's email address.
    pub customer_email: String,
    /// Plan id.
    pub plan_id: String,
    /// ICCID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
    /// Your reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    /// The eSIM's state after the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EsimStatus>,
    /// For `usage.threshold`: the threshold crossed, percent (50, 80 or 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_percent: Option<u8>,
    /// For `usage.threshold`: data used, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_used_mb: Option<u64>,
    /// For `usage.threshold`: data allowance, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_limit_mb: Option<u64>,
    /// For `esim.topped_up`: what was bought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topup: Option<crate::TopUpPurchase>,
    /// For `esim.profile_downloaded`, `esim.installation_failed` and an `esim.activated`
    /// reported by the SM-DP+: the profile as it reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::EsimProfile>,
}

/// An account event as delivered (`account.balance_low`): the same envelope as
/// [`WebhookEvent`], with the account as `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountWebhookEvent {
    /// Unique event id; also sent as the `webhook-id` header.
    pub id: String,
    /// The event type.
    pub event: EventType,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
    /// The account.
    pub data: AccountEventData,
}

/// The subject of an account event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountEventData {
    /// Your partner id.
    pub partner_id: String,
    /// The live balance now, USD.
    pub balance: crate::Amount,
    /// The balance, cents.
    pub balance_cents: i64,
    /// The threshold it fell below, USD.
    pub threshold: crate::Amount,
    /// The threshold, cents.
    pub threshold_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// Whether an endpoint receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EndpointStatus {
    /// Receives events.
    Enabled,
    /// Receives nothing: disabled by you, after a `410 Gone`, or after failing for days
    /// (`disabled_reason` says which).
    Disabled,
    /// A value this version does not know, from a newer server. Never sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl EndpointStatus {
    /// The wire name (`unknown` for [`EndpointStatus::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Enabled => "enabled",
            EndpointStatus::Disabled => "disabled",
            EndpointStatus::Unknown => "unknown",
        }
    }
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEndpoint {
    /// `we_…`
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Your note.
    pub description: Option<String>,
    /// The event types it receives; empty means all.
    pub events: Vec<EventType>,
    /// Enabled or disabled.
    pub status: EndpointStatus,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// When the previous secret stops signing (after a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Its environment.
    pub environment: Environment,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/v1/webhooks/endpoints`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CreateWebhookEndpoint {
    /// An `https` URL (or `http`, where the operator allows it), at most 2048 characters,
    /// without credentials.
    #[cfg_attr(
        feature = "openapi",
        schema(
            format = "uri",
            max_length = 2048,
            pattern = "^https?://[^\\s/@?#]+([/?#][^\\s]*)?$"
        )
    )]
    pub url: String,
    /// The event types to receive; empty or absent means all.
    #[serde(default, deserialize_with = "crate::strict::event_types")]
    pub events: Vec<EventType>,
    /// Your note (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")
    )]
    pub description: Option<String>,
}

/// `PATCH /api/v1/webhooks/endpoints/{id}`: the fields to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpdateWebhookEndpoint {
    /// A new URL (as for creating one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            format = "uri",
            max_length = 2048,
            pattern = "^https?://[^\\s/@?#]+([/?#][^\\s]*)?$"
        )
    )]
    pub url: Option<String>,
    /// New event types (empty means all).
    #[serde(
        default,
        deserialize_with = "crate::strict::some_event_types",
        skip_serializing_if = "Option::is_none"
    )]
    pub events: Option<Vec<EventType>>,
    /// A new note (empty or blank removes it; at most 200 characters, no control characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")
    )]
    pub description: Option<String>,
    /// `true` re-enables a disabled endpoint, `false` disables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// An endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEndpointResponse {
    /// Always `true`.
    pub success: bool,
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
}

/// A new endpoint and its signing secret, shown only now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEndpointCreated {
    /// Always `true`.
    pub success: bool,
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verify signatures with it. Shown only here (and after a rotation).
    pub secret: String,
}

/// A signing secret: an endpoint's after a rotation, or the one signing deliveries to
/// per-eSIM `webhook_url`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookSecretResponse {
    /// Always `true`.
    pub success: bool,
    /// `whsec_…`
    pub secret: String,
    /// Until when the previous secret keeps signing beside this one, after a rotation.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// The state of one event's delivery to one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not delivered yet; `next_attempt_at` says when it is tried.
    Pending,
    /// The destination answered 2xx.
    Delivered,
    /// Every attempt of the retry schedule failed.
    Failed,
    /// Stopped: the endpoint was disabled or deleted.
    Cancelled,
    /// A value this version does not know, from a newer server. Never sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl DeliveryStatus {
    /// The wire name (`unknown` for [`DeliveryStatus::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
            DeliveryStatus::Unknown => "unknown",
        }
    }
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryAttempt {
    /// `att_…`
    pub id: String,
    /// The delivery (one event to one destination).
    pub delivery_id: String,
    /// The event (`webhook-id`).
    pub event_id: String,
    /// The event type.
    pub event: EventType,
    /// The URL tried.
    pub url: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The HTTP status answered, if any.
    pub status_code: Option<u16>,
    /// How long the attempt took, ms.
    pub duration_ms: u64,
    /// What went wrong (connection refused, timeout, non-2xx).
    pub error: Option<String>,
    /// When the delivery is tried next, if it is.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The delivery's state after this attempt.
    pub delivery_status: DeliveryStatus,
    /// When the attempt was made.
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/webhooks/events/{event_id}/redeliver`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedeliverResponse {
    /// Always `true`.
    pub success: bool,
    /// The event.
    pub event_id: String,
    /// New deliveries scheduled (one per current destination).
    pub deliveries: u32,
}

/// `POST /api/v1/webhooks/endpoints/{id}/test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestEventResponse {
    /// Always `true`.
    pub success: bool,
    /// The test event's id.
    pub event_id: String,
    /// Its delivery to the endpoint.
    pub delivery_id: String,
}

/// `POST /api/v1/sandbox/esim/{esim_id}/usage`: usage to add (sandbox only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SandboxUsageRequest {
    /// Data used, MB.
    #[serde(deserialize_with = "crate::whole::u64")]
    pub data_mb: u64,
    /// Calls made.
    #[serde(default, deserialize_with = "crate::whole::u64")]
    pub calls: u64,
    /// SMS sent.
    #[serde(default, deserialize_with = "crate::whole::u64")]
    pub sms: u64,
}

/// One usage record from the network (operator API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UsageRecordInput {
    /// The network's unique id of the record: a record is applied once, however often sent.
    pub record_id: String,
    /// The eSIM's ICCID.
    pub iccid: String,
    /// Data used, MB.
    #[serde(deserialize_with = "crate::whole::u64")]
    pub data_mb: u64,
    /// Calls made.
    #[serde(default, deserialize_with = "crate::whole::u64")]
    pub calls: u64,
    /// SMS sent.
    #[serde(default, deserialize_with = "crate::whole::u64")]
    pub sms: u64,
    /// When the usage happened.
    pub recorded_at: DateTime<Utc>,
}

/// `POST /api/v1/operator/usage`: a batch of usage records (at most 1000).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UsageBatch {
    /// The records.
    pub records: Vec<UsageRecordInput>,
}

/// What happened to one record or notice of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BatchItemStatus {
    /// Applied now.
    Applied,
    /// Applied before (same `record_id`, or already active): nothing changed.
    Duplicate,
    /// Not applied; `reason` says why.
    Rejected,
}

/// The result of one item of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchItemResult {
    /// The record id (usage) or ICCID (activations).
    pub id: String,
    /// What happened.
    pub status: BatchItemStatus,
    /// Why it was rejected.
    pub reason: Option<String>,
}

/// The answer to a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResponse {
    /// Always `true` (see each result).
    pub success: bool,
    /// One result per item, in order.
    pub results: Vec<BatchItemResult>,
}

/// A profile installed and attached (operator API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivationNotice {
    /// The eSIM's ICCID.
    pub iccid: String,
    /// When it was activated (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/operator/activations`: activation notices (at most 1000).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivationBatch {
    /// The notices.
    pub activations: Vec<ActivationNotice>,
}
