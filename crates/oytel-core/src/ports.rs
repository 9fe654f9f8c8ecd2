//! The ports: what the domain needs from the outside, as async traits. The storage adapters
//! (`oytel-store`) implement [`Storage`]; unit tests use the `mockall` mock
//! ([`MockStorage`], under `cfg(test)` or the `mock` feature).
//!
//! Every method that touches partner data takes a [`Scope`] and must filter by both its
//! partner and its environment.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use oytel_types::{DeliveryStatus, EventType};

use crate::{CoreError, Environment, EsimStatus, Scope};

/// A unique column that a write collided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    /// Two eSIMs may not share an ICCID.
    Iccid,
    /// Two eSIMs may not share a mobile number.
    Msisdn,
    /// Two eSIMs may not share a matching id.
    MatchingId,
    /// Two eSIMs may not share a QR URL token.
    QrToken,
    /// An idempotency key, per partner and environment.
    IdempotencyKey,
    /// Any other unique column (an id).
    Other,
}

/// A storage failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated; nothing was written.
    #[error("duplicate value for a unique field ({0:?})")]
    Duplicate(UniqueField),
    /// The row the write refers to does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The database cannot be reached or is overloaded; retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("storage error: {0}")]
    Other(String),
}

/// A partner: a wholesale customer with keys in both environments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// `ptn_…`
    pub id: String,
    /// Display name.
    pub name: String,
    /// Contact email.
    pub email: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl Partner {
    /// A new partner with a fresh id: `name` is trimmed and must be 1 to 200 characters without
    /// control characters; `email`, when given, must be a valid address.
    ///
    /// # Errors
    /// [`CoreError::Validation`] naming the field that is wrong.
    pub fn new(name: &str, email: Option<&str>) -> Result<Self, CoreError> {
        let name = crate::provision::validate_text("name", name, 200)?;
        let email = email
            .map(|e| crate::provision::validate_email(e).map_err(|m| CoreError::field("email", m)))
            .transpose()?;
        Ok(Self {
            id: crate::numbers::new_id("ptn"),
            name,
            email,
            created_at: crate::provision::now(),
        })
    }
}

/// A key to store. Only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// `key_…`
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// The key's prefix and first four random characters, for recognising it in lists.
    pub hint: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A stored key, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// `key_…`
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// Recognisable prefix.
    pub hint: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Whose a presented key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// The key's id.
    pub key_id: String,
    /// Its partner.
    pub partner_id: String,
    /// Its environment.
    pub environment: Environment,
    /// Whether it was revoked.
    pub revoked: bool,
    /// The partner's own limits, where they differ from the server's defaults.
    pub limits: crate::limits::LimitOverrides,
}

/// An order row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// `ord_…`
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// The eSIM it paid for.
    pub esim_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Term, months.
    pub term_months: u32,
    /// Price of the whole term, cents.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// Customer email.
    pub customer_email: String,
    /// Customer name.
    pub customer_name: String,
    /// Partner's reference.
    pub reference_id: Option<String>,
    /// The balance of the environment right after the charge, cents.
    pub balance_after_cents: i64,
    /// The request that placed it.
    pub request_id: String,
    /// Placed.
    pub created_at: DateTime<Utc>,
}

/// What the status route shows of an eSIM: half the columns of [`EsimRecord`], for the read
/// partners make most often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsimStatusRecord {
    /// `esim_…`
    pub id: String,
    /// ICCID.
    pub iccid: String,
    /// State.
    pub status: EsimStatus,
    /// Plan id.
    pub plan_id: String,
    /// Plan name when ordered.
    pub plan_name: String,
    /// Validity days of the plan when ordered.
    pub validity_days: u32,
    /// Term, months.
    pub term_months: u32,
    /// Data allowance, MB.
    pub data_limit_mb: u64,
    /// Data used, MB.
    pub data_used_mb: u64,
    /// Calls made.
    pub calls_made: u64,
    /// SMS sent.
    pub sms_sent: u64,
    /// First activation.
    pub activated_at: Option<DateTime<Utc>>,
    /// End of the term.
    pub expires_at: DateTime<Utc>,
}

impl From<EsimRecord> for EsimStatusRecord {
    fn from(e: EsimRecord) -> EsimStatusRecord {
        EsimStatusRecord {
            id: e.id,
            iccid: e.iccid,
            status: e.status,
            plan_id: e.plan_id,
            plan_name: e.plan_name,
            validity_days: e.validity_days,
            term_months: e.term_months,
            data_limit_mb: e.data_limit_mb,
            data_used_mb: e.data_used_mb,
            calls_made: e.calls_made,
            sms_sent: e.sms_sent,
            activated_at: e.activated_at,
            expires_at: e.expires_at,
        }
    }
}

/// An eSIM row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsimRecord {
    /// `esim_…`
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// The order that paid for it.
    pub order_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Plan name when ordered.
    pub plan_name: String,
    /// Validity days of the plan when ordered.
    pub validity_days: u32,
    /// Term, months.
    pub term_months: u32,
    /// ICCID.
    pub iccid: String,
    /// Mobile number, E.164.
    pub msisdn: String,
    /// SGP.22 matching id.
    pub matching_id: String,
    /// `LPA:1$…` activation code.
    pub activation_code: String,
    /// The secret token in the public QR URL.
    pub qr_token: String,
    /// State.
    pub status: EsimStatus,
    /// Customer email.
    pub customer_email: String,
    /// Customer name.
    pub customer_name: String,
    /// Partner's reference.
    pub reference_id: Option<String>,
    /// Per-eSIM webhook URL.
    pub webhook_url: Option<String>,
    /// Allowance, MB.
    pub data_limit_mb: u64,
    /// Used, MB.
    pub data_used_mb: u64,
    /// Calls made.
    pub calls_made: u64,
    /// SMS sent.
    pub sms_sent: u64,
    /// Activated.
    pub activated_at: Option<DateTime<Utc>>,
    /// Term ends.
    pub expires_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// How an order is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Sandbox: nothing is debited; the balance shown is this constant.
    Sandbox {
        /// The sandbox balance, cents.
        balance_cents: i64,
    },
    /// Production: debit the partner's balance, in the same transaction, unless the balance
    /// after the charge would be below `minimum_balance_cents`.
    Live {
        /// The balance that must remain after the charge, cents.
        minimum_balance_cents: i64,
    },
}

/// Everything one provisioning writes, in one transaction: the order, the eSIM, the charge
/// (a ledger row and the balance), and the completion of its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionWrite {
    /// The order; `balance_after_cents` is set by the store.
    pub order: OrderRecord,
    /// The eSIM.
    pub esim: EsimRecord,
    /// How to pay.
    pub charge: Charge,
    /// The request's idempotency key, claimed or completed in the same transaction.
    pub idempotency: Option<IdempotencyWrite>,
    /// The `esim.provisioned` event, written to the outbox in the same transaction.
    pub event: EventRecord,
}

/// What a provisioning write does with its request's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyWrite {
    /// Claims a key nobody holds, completed with this order, as the transaction's first
    /// write. If the key exists (or is being claimed by a transaction that then commits),
    /// nothing is written: [`ProvisionResult::KeyTaken`].
    ClaimNew(IdempotencyRequest),
    /// Completes a claim taken before with [`Storage::claim_idempotency_key`]; if another
    /// request took it over meanwhile, nothing is written: [`ProvisionResult::ClaimLost`].
    Complete(ClaimRef),
}

/// A claim held on an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRef {
    /// The key.
    pub key: String,
    /// The claim's token.
    pub token: String,
}

/// The result of a provisioning write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionResult {
    /// Committed; the balance after the charge.
    Committed {
        /// Balance after the charge, cents.
        balance_after_cents: i64,
    },
    /// Nothing written: the live balance would drop below the minimum.
    InsufficientBalance {
        /// The balance now, cents.
        balance_cents: i64,
    },
    /// Nothing written: the idempotency claim of this request was taken over by another
    /// request after its lease ran out.
    ClaimLost,
    /// Nothing written: [`IdempotencyWrite::ClaimNew`] found the key already stored.
    KeyTaken,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is ours to process (new, expired, or abandoned by a crashed request).
    Claimed,
    /// The key completed earlier with this order: replay it.
    Completed {
        /// The order created by the first request.
        order_id: String,
    },
    /// Another request holds the key now.
    InProgress,
    /// The key was used with a different request body.
    Mismatch,
}

/// A claim on an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRequest {
    /// The key, as sent.
    pub key: String,
    /// A random token of this request: only the holder of the claim may complete or
    /// release it.
    pub token: String,
    /// SHA-256 of the canonical request.
    pub request_hash: String,
    /// Now.
    pub now: DateTime<Utc>,
    /// Until when an unfinished claim blocks others (after that, a crashed request's key
    /// may be taken over).
    pub lease_until: DateTime<Utc>,
    /// When the stored result is forgotten.
    pub expires_at: DateTime<Utc>,
}

/// An idempotency key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIdempotencyKey {
    /// Fingerprint of the request that claimed it.
    pub request_hash: String,
    /// The order it created, once completed.
    pub order_id: Option<String>,
    /// Until when an unfinished claim blocks others.
    pub locked_until: DateTime<Utc>,
    /// When it is forgotten.
    pub expires_at: DateTime<Utc>,
}

/// What a store must do with a claim, given what it found (see [`decide_claim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Write a fresh claim (replacing an expired one, if any) and answer `Claimed`.
    Insert,
    /// Take over an abandoned claim: set its lease to the new one and answer `Claimed`.
    TakeOver,
    /// Change nothing; answer this.
    Answer(IdempotencyClaim),
}

/// The idempotency rules, in one place for every storage adapter. The adapter reads the
/// stored key under a lock (or in a serialised transaction) and applies the decision.
pub fn decide_claim(
    stored: Option<&StoredIdempotencyKey>,
    claim: &IdempotencyRequest,
) -> ClaimDecision {
    match stored {
        None => ClaimDecision::Insert,
        Some(s) if s.expires_at <= claim.now => ClaimDecision::Insert,
        Some(s) if s.request_hash != claim.request_hash => {
            ClaimDecision::Answer(IdempotencyClaim::Mismatch)
        }
        Some(StoredIdempotencyKey {
            order_id: Some(order_id),
            ..
        }) => ClaimDecision::Answer(IdempotencyClaim::Completed {
            order_id: order_id.clone(),
        }),
        Some(s) if s.locked_until > claim.now => {
            ClaimDecision::Answer(IdempotencyClaim::InProgress)
        }
        Some(_) => ClaimDecision::TakeOver,
    }
}

/// Filters of an eSIM list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EsimFilter {
    /// State.
    pub status: Option<EsimStatus>,
    /// Partner's reference.
    pub reference_id: Option<String>,
    /// Customer email, case-insensitive.
    pub customer_email: Option<String>,
}

/// One page of a list: at most `limit` rows older than `before` (a row's sequence number),
/// newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows to return.
    pub limit: u32,
    /// Only rows with a sequence number below this one.
    pub before: Option<i64>,
}

/// A row of a list with its sequence number (the position a cursor points at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequenced<T> {
    /// Insertion order, increasing.
    pub seq: i64,
    /// The row.
    pub row: T,
}

/// A ledger row: every credit and every debit of a live balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// `led_…`
    pub id: String,
    /// Partner.
    pub partner_id: String,
    /// Signed amount, cents: credits positive, charges negative.
    pub amount_cents: i64,
    /// The balance after this entry, cents.
    pub balance_after_cents: i64,
    /// `credit` or `charge`.
    pub kind: String,
    /// The order charged, for charges.
    pub order_id: Option<String>,
    /// Free text.
    pub description: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

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

/// The result of a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionResult {
    /// Done; the eSIM after the change.
    Done(Box<EsimRecord>),
    /// No such eSIM.
    NotFound,
    /// The state machine does not allow it from this state.
    Invalid(EsimStatus),
}

/// A usage record to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageInput {
    /// The network's unique id (applied once).
    pub record_id: String,
    /// Data, MB.
    pub data_mb: u64,
    /// Calls.
    pub calls: u64,
    /// SMS.
    pub sms: u64,
    /// When it happened.
    pub recorded_at: DateTime<Utc>,
}

/// The result of applying a usage record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageResult {
    /// Applied; the eSIM after it.
    Applied(Box<EsimRecord>),
    /// Applied before: nothing changed.
    Duplicate,
    /// No such eSIM.
    NotFound,
    /// The eSIM is not in use (provisioned, expired or cancelled).
    NotActive(EsimStatus),
}

/// The storage port. Implementations must make [`Storage::provision`] atomic and safe under
/// concurrency (two requests never get the same ICCID, mobile number or idempotency claim,
/// and a balance is never debited below its minimum).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Checks that a write can commit: a write transaction (stamping `now` on a heartbeat
    /// row) through the same connections as every other write.
    async fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Stores a partner.
    async fn create_partner(&self, partner: &Partner) -> Result<(), StoreError>;
    /// A partner by id.
    async fn get_partner(&self, partner_id: &str) -> Result<Option<Partner>, StoreError>;
    /// Every partner, oldest first.
    async fn list_partners(&self) -> Result<Vec<Partner>, StoreError>;
    /// A partner's own limits (`None` in a field: the server's default).
    async fn partner_limits(
        &self,
        partner_id: &str,
    ) -> Result<Option<crate::limits::LimitOverrides>, StoreError>;
    /// Sets a partner's own limits; `false` if there is no such partner. Like
    /// [`Storage::revoke_api_key`], returns once every leased instance serves the change.
    async fn set_partner_limits(
        &self,
        partner_id: &str,
        limits: &crate::limits::LimitOverrides,
    ) -> Result<bool, StoreError>;

    /// Stores a key (its hash).
    async fn create_api_key(&self, key: &NewApiKey) -> Result<(), StoreError>;
    /// The owner of the key with this hash.
    async fn find_api_key(&self, hash: &str) -> Result<Option<KeyOwner>, StoreError>;
    /// A partner's keys, oldest first.
    async fn list_api_keys(&self, partner_id: &str) -> Result<Vec<ApiKeyInfo>, StoreError>;
    /// Revokes a key; `false` if there is no such key or it was revoked already.
    ///
    /// Returns once every server instance holding a lease on the auth epoch
    /// ([`Storage::renew_epoch_lease`]) serves an epoch that includes the revocation, or its
    /// lease has run out: from then on no instance accepts the key.
    async fn revoke_api_key(&self, key_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Takes or renews `instance_id`'s lease on the auth epoch: until `lease` has passed on the
    /// database's clock, revocations and limit changes wait for this instance to report a
    /// `serving_epoch` at least theirs.
    async fn renew_epoch_lease(
        &self,
        instance_id: &str,
        serving_epoch: i64,
        lease: std::time::Duration,
    ) -> Result<(), StoreError>;
    /// Gives a lease up (an instance shutting down).
    async fn release_epoch_lease(&self, instance_id: &str) -> Result<(), StoreError>;
    /// A counter the database bumps (by trigger, in the same transaction) on every change to
    /// `api_keys` or `partners` other than an insert: anything that can revoke a key or alter
    /// what a key's lookup returns. An unchanged value means every earlier lookup still holds.
    async fn auth_epoch(&self) -> Result<i64, StoreError>;

    /// Adds to a partner's live balance, with a ledger row. Returns the new balance.
    async fn credit(
        &self,
        partner_id: &str,
        amount_cents: i64,
        description: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// A partner's live balance, cents.
    async fn live_balance(&self, partner_id: &str) -> Result<i64, StoreError>;
    /// A partner's ledger, oldest first.
    async fn ledger(&self, partner_id: &str) -> Result<Vec<LedgerEntry>, StoreError>;

    /// Claims an idempotency key for a request.
    async fn claim_idempotency_key(
        &self,
        scope: &Scope,
        claim: &IdempotencyRequest,
    ) -> Result<IdempotencyClaim, StoreError>;
    /// Gives up an unfinished claim held by `claim` (the request failed), so the key can be
    /// used again. A claim taken over by another request is left alone.
    async fn release_idempotency_key(
        &self,
        scope: &Scope,
        claim: &ClaimRef,
    ) -> Result<(), StoreError>;
    /// Forgets idempotency keys that expired before `now`; returns how many.
    async fn purge_idempotency_keys(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Writes an order, its eSIM and its charge in one transaction (see [`ProvisionWrite`]).
    async fn provision(&self, write: &ProvisionWrite) -> Result<ProvisionResult, StoreError>;

    /// An eSIM of this scope.
    async fn get_esim(
        &self,
        scope: &Scope,
        esim_id: &str,
    ) -> Result<Option<EsimRecord>, StoreError>;
    /// What the status route shows of an eSIM of this scope.
    async fn get_esim_status(
        &self,
        scope: &Scope,
        esim_id: &str,
    ) -> Result<Option<EsimStatusRecord>, StoreError>;
    /// An eSIM by its QR URL token (public: the token is the secret).
    async fn get_esim_by_qr_token(&self, token: &str) -> Result<Option<EsimRecord>, StoreError>;
    /// A page of this scope's eSIMs.
    async fn list_esims(
        &self,
        scope: &Scope,
        filter: &EsimFilter,
        page: PageRequest,
    ) -> Result<Vec<Sequenced<EsimRecord>>, StoreError>;
    /// An order of this scope.
    async fn get_order(
        &self,
        scope: &Scope,
        order_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError>;
    /// A page of this scope's orders.
    async fn list_orders(
        &self,
        scope: &Scope,
        reference_id: Option<String>,
        page: PageRequest,
    ) -> Result<Vec<Sequenced<OrderRecord>>, StoreError>;

    /// Sets a server setting unless it is set; `true` if this call set it.
    async fn set_setting_once(&self, name: &str, value: &str) -> Result<bool, StoreError>;

    /// An eSIM by ICCID (any partner: for the operator API).
    async fn get_esim_by_iccid(&self, iccid: &str) -> Result<Option<EsimRecord>, StoreError>;
    /// Moves an eSIM to `to` if the state machine allows it, writing `esim.activated` or
    /// `esim.expired` to the outbox in the same transaction. Safe across instances: of two
    /// concurrent identical transitions one wins, the other sees `Invalid`.
    async fn transition_esim(
        &self,
        esim_id: &str,
        to: EsimStatus,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult, StoreError>;
    /// Applies a usage record once (by `record_id`), with `usage.threshold` events for the
    /// thresholds it crosses, in one transaction.
    async fn record_usage(
        &self,
        esim_id: &str,
        usage: &UsageInput,
        now: DateTime<Utc>,
    ) -> Result<UsageResult, StoreError>;
    /// Ids of eSIMs past `expires_at` and not yet expired, at most `limit`.
    async fn due_expiries(&self, now: DateTime<Utc>, limit: u32)
        -> Result<Vec<String>, StoreError>;

    /// Stores an endpoint.
    async fn create_endpoint(&self, endpoint: &EndpointRecord) -> Result<(), StoreError>;
    /// A scope's endpoints, oldest first.
    async fn list_endpoints(&self, scope: &Scope) -> Result<Vec<EndpointRecord>, StoreError>;
    /// An endpoint of a scope.
    async fn get_endpoint(
        &self,
        scope: &Scope,
        endpoint_id: &str,
    ) -> Result<Option<EndpointRecord>, StoreError>;
    /// Replaces an endpoint (found by id within its partner and environment); a disabled
    /// endpoint's pending deliveries are cancelled. `false` if there is no such endpoint.
    async fn update_endpoint(&self, endpoint: &EndpointRecord) -> Result<bool, StoreError>;
    /// Deletes an endpoint and cancels its pending deliveries.
    async fn delete_endpoint(&self, scope: &Scope, endpoint_id: &str) -> Result<bool, StoreError>;
    /// The secret of per-eSIM `webhook_url` deliveries, created from `candidate` if none.
    async fn esim_signing_secret(
        &self,
        scope: &Scope,
        candidate: &str,
    ) -> Result<SigningSecret, StoreError>;
    /// Replaces that secret; the old one keeps signing until `previous_expires_at`.
    async fn rotate_esim_signing_secret(
        &self,
        scope: &Scope,
        new_secret: &str,
        previous_expires_at: DateTime<Utc>,
    ) -> Result<SigningSecret, StoreError>;
    /// Writes a test event with one delivery, to `endpoint_id`; returns the delivery id.
    async fn send_test_event(
        &self,
        event: &EventRecord,
        endpoint_id: &str,
    ) -> Result<String, StoreError>;
    /// An event of a scope.
    async fn get_event(
        &self,
        scope: &Scope,
        event_id: &str,
    ) -> Result<Option<EventRecord>, StoreError>;
    /// Schedules the event again for every current destination; `None` if no such event.
    async fn redeliver_event(
        &self,
        scope: &Scope,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError>;
    /// Claims deliveries due at `now` until `lease_until`, destination by destination: no
    /// other worker gets them meanwhile. The rules, which keep destinations apart and
    /// partners fair:
    ///
    /// | rule | so that |
    /// |---|---|
    /// | a destination (URL) with a leased delivery is skipped | one worker at a time sends to a destination, in order |
    /// | a destination's deliveries come oldest first, up to `per_destination` | its events arrive in the order they happened |
    /// | destinations are chosen in turns: each partner's oldest due destination, then each partner's second, … | a partner with a backlog does not starve one with a single event |
    /// | a partner holds at most `per_partner` destinations at once, leased ones included | a partner with many slow endpoints leaves lanes for others |
    /// | at most `destinations` destinations per claim | a worker takes only what it has lanes for |
    ///
    /// The deliveries come in the order they were created.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limits: ClaimLimits,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    /// Gives back claimed deliveries that were not attempted (a worker stopping before its
    /// lease ends): they are due again at once, their schedule unchanged. Only deliveries
    /// still under this lease (`lease_until` as claimed) are released.
    async fn release_deliveries(
        &self,
        delivery_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records attempts and their consequences (delivered, rescheduled, failed, endpoint
    /// disabled after a `410` or after failing since longer than `disable_after`), in one
    /// transaction, as if one by one in the order given.
    async fn record_attempts(
        &self,
        outcomes: &[AttemptOutcome],
        disable_after: chrono::Duration,
    ) -> Result<(), StoreError>;
    /// A page of a scope's delivery attempts, newest first, optionally of one endpoint.
    async fn list_attempts(
        &self,
        scope: &Scope,
        endpoint_id: Option<String>,
        page: PageRequest,
    ) -> Result<Vec<Sequenced<AttemptRecord>>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn request(now: DateTime<Utc>) -> IdempotencyRequest {
        IdempotencyRequest {
            key: "k".into(),
            token: "t".into(),
            request_hash: "h1".into(),
            now,
            lease_until: now + Duration::seconds(60),
            expires_at: now + Duration::hours(24),
        }
    }

    #[test]
    fn a_new_partner_has_a_trimmed_name_and_a_checked_email() {
        let partner = Partner::new("  Acme Travel ", Some("ops@acme.example")).unwrap();
        assert!(partner.id.starts_with("ptn_"), "{}", partner.id);
        assert_eq!(partner.name, "Acme Travel");
        assert_eq!(partner.email.as_deref(), Some("ops@acme.example"));
        assert_ne!(Partner::new("Acme", None).unwrap().id, partner.id);

        let long = "x".repeat(201);
        for (name, email, field) in [
            ("", None, "name"),
            ("   ", None, "name"),
            (long.as_str(), None, "name"),
            ("Ac\u{0}me", None, "name"),
            ("Acme", Some("nope"), "email"),
        ] {
            match Partner::new(name, email) {
                Err(CoreError::Validation(e)) => assert_eq!(e.field, field, "{name:?} {email:?}"),
                other => panic!("{name:?} {email:?} gave {other:?}"),
            }
        }
        assert!(Partner::new(&"x".repeat(200), None).is_ok());
    }

    #[test]
    fn claim_decisions() {
        let now = Utc::now();
        let req = request(now);
        let stored =
            |hash: &str, order: Option<&str>, lease: i64, expiry: i64| StoredIdempotencyKey {
                request_hash: hash.into(),
                order_id: order.map(str::to_owned),
                locked_until: now + Duration::seconds(lease),
                expires_at: now + Duration::seconds(expiry),
            };
        assert_eq!(decide_claim(None, &req), ClaimDecision::Insert);
        // Expired keys are forgotten, whatever they held.
        assert_eq!(
            decide_claim(Some(&stored("other", Some("o"), 0, -1)), &req),
            ClaimDecision::Insert
        );
        assert_eq!(
            decide_claim(Some(&stored("other", None, 30, 100)), &req),
            ClaimDecision::Answer(IdempotencyClaim::Mismatch)
        );
        assert_eq!(
            decide_claim(Some(&stored("h1", Some("ord_1"), -5, 100)), &req),
            ClaimDecision::Answer(IdempotencyClaim::Completed {
                order_id: "ord_1".into()
            })
        );
        assert_eq!(
            decide_claim(Some(&stored("h1", None, 30, 100)), &req),
            ClaimDecision::Answer(IdempotencyClaim::InProgress)
        );
        assert_eq!(
            decide_claim(Some(&stored("h1", None, -1, 100)), &req),
            ClaimDecision::TakeOver
        );
    }
}
