use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::EsimStatus;

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
}

impl EventType {
    /// The wire name, e.g. `esim.provisioned`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::EsimProvisioned => "esim.provisioned",
            EventType::EsimActivated => "esim.activated",
            EventType::EsimExpired => "esim.expired",
            EventType::UsageThreshold => "usage.threshold",
        }
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
}
