//! Events, webhook endpoints and secrets, and deliveries with their attempts, as stored.

use chrono::{DateTime, Utc};
use oytel_types::{DeliveryStatus, EventType};

use crate::Environment;

/// An event in the outbox. Written in the same transaction as the change it reports; the
/// store fans it out to a delivery per destination in that transaction too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// `evt_…`, also the `webhook-id` of every delivery.
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// The eSIM it is about (none for test events).
    pub esim_id: Option<String>,
    /// Its type.
    pub event_type: EventType,
    /// The JSON body delivered (a `WebhookEvent`).
    pub payload: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// The W3C `traceparent` of the work that caused it (see [`crate::tracecontext`]): its
    /// deliveries join that trace.
    pub traceparent: Option<String>,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    /// `we_…`
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// Destination.
    pub url: String,
    /// Partner's note.
    pub description: Option<String>,
    /// Subscribed event types; empty means all.
    pub event_types: Vec<EventType>,
    /// The signing secret, `whsec_…`.
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    /// When the previous secret stops signing.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Whether it receives events.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
}

/// The signing secret of deliveries to per-eSIM `webhook_url`s of one partner and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSecret {
    /// `whsec_…`
    pub secret: String,
    /// The secret before the last rotation.
    pub previous_secret: Option<String>,
    /// When the previous secret stops signing.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl SigningSecret {
    /// The secrets that sign at `now`: the current one, and the previous one during its
    /// overlap.
    pub fn signing_at(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut secrets = vec![self.secret.clone()];
        if let (Some(previous), Some(until)) =
            (&self.previous_secret, self.previous_secret_expires_at)
        {
            if now < until {
                secrets.push(previous.clone());
            }
        }
        secrets
    }
}

/// How much one claim of due deliveries may take (see [`Storage::claim_due_deliveries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Destinations (distinct URLs) at most: the worker's free lanes.
    pub destinations: u32,
    /// Deliveries of one destination at most.
    pub per_destination: u32,
    /// Destinations of one partner at most, counting those already leased (by any worker).
    pub per_partner: u32,
}

/// A delivery due now, claimed by one worker until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// `dlv_…`
    pub id: String,
    /// The event (`webhook-id`).
    pub event_id: String,
    /// The endpoint, or none for a per-eSIM `webhook_url`.
    pub endpoint_id: Option<String>,
    /// Destination.
    pub url: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The JSON body.
    pub payload: String,
    /// The secrets to sign with.
    pub secrets: SigningSecret,
    /// The trace context its event was written under, if any.
    pub traceparent: Option<String>,
}

/// What an attempt achieved and what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// 2xx: done.
    Delivered,
    /// Failed; try again then.
    Retry {
        /// When.
        next_attempt_at: DateTime<Utc>,
    },
    /// Failed and the schedule is exhausted.
    GiveUp,
    /// `410 Gone`: the endpoint is disabled, its deliveries cancelled.
    Gone,
}

/// One finished attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The delivery.
    pub delivery_id: String,
    /// The endpoint, if any.
    pub endpoint_id: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The status answered, if any.
    pub status_code: Option<u16>,
    /// Duration, ms.
    pub duration_ms: u64,
    /// What went wrong.
    pub error: Option<String>,
    /// What follows.
    pub result: AttemptResult,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
}

/// A recorded attempt, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// `att_…`
    pub id: String,
    /// The delivery.
    pub delivery_id: String,
    /// The event.
    pub event_id: String,
    /// Its type.
    pub event_type: EventType,
    /// The URL tried.
    pub url: String,
    /// 1 for the first.
    pub attempt: u32,
    /// Status answered.
    pub status_code: Option<u16>,
    /// Duration, ms.
    pub duration_ms: u64,
    /// What went wrong.
    pub error: Option<String>,
    /// When the delivery is tried next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The delivery's state after the attempt.
    pub delivery_status: DeliveryStatus,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What the operator's metrics read from the database when scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Webhook deliveries not yet delivered, failed for good or cancelled.
    pub pending_deliveries: u64,
    /// The age of the oldest of them, seconds (0 when there is none).
    pub oldest_pending_seconds: f64,
    /// Partners whose live balance is below the low-balance threshold they set.
    pub partners_below_low_balance: u64,
    /// Webhook endpoints disabled (by their partner, after a `410 Gone`, or after failing
    /// for days).
    pub disabled_endpoints: u64,
    /// The connection pools: name, connections open, of which idle.
    pub pools: Vec<(&'static str, u32, u32)>,
}
