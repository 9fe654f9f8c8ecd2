//! The ports: what the domain needs from the outside, as async traits. The storage adapters
//! (`oytel-store`) implement [`Storage`]; unit tests use the `mockall` mock
//! ([`MockStorage`], under `cfg(test)` or the `mock` feature).
//!
//! Every method that touches partner data takes a [`Scope`] and must filter by both its
//! partner and its environment.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::lifecycle::{InvalidTransition, SuspensionChange};
use crate::profiles::{Reservation, ReservationState};
use crate::{EsimStatus, Scope};

pub use crate::idempotency::{ClaimRef, IdempotencyClaim, IdempotencyRequest, IdempotencyWrite};
pub use crate::packages::{PackageRecord, TopUpRecord};
pub use crate::paging::{PageRequest, Sequenced};
pub use crate::records::*;

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
    /// The SM-DP+ reservation of the eSIM's profile, marked sold in the same transaction
    /// (from `released`); none for a builtin profile.
    pub reservation: Option<String>,
    /// The profile type whose stock ([`crate::inventory`]) gives the eSIM its ICCID, in the
    /// same transaction; none: the eSIM's ICCID is the one written.
    pub from_stock: Option<String>,
}

/// The result of a provisioning write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisionResult {
    /// Committed; the balance after the charge.
    Committed {
        /// Balance after the charge, cents.
        balance_after_cents: i64,
    },
    /// Committed with an ICCID from the stock ([`ProvisionWrite::from_stock`]), which the
    /// eSIM and its event carry instead of the one written.
    CommittedFromStock {
        /// Balance after the charge, cents.
        balance_after_cents: i64,
        /// The ICCID allocated.
        iccid: String,
    },
    /// Nothing written: the stock of this profile type is empty.
    OutOfStock,
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
    /// Nothing written: the profile's reservation is no longer `released` (the reconciler
    /// took it over).
    ReservationLost,
}

impl ProvisionResult {
    /// Whether the provisioning was written: its transaction is to be committed (every
    /// other result wrote nothing, and its transaction is rolled back).
    pub fn committed(&self) -> bool {
        matches!(
            self,
            ProvisionResult::Committed { .. } | ProvisionResult::CommittedFromStock { .. }
        )
    }
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

/// A top-up to buy. The store decides where it goes (`packages::place_topup`) on the eSIM
/// it locks, then charges it like a provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUpWrite {
    /// Who buys.
    pub scope: Scope,
    /// The purchase, its `package_id` left empty for the store to fill.
    pub purchase: TopUpRecord,
    /// What is bought.
    pub offer: crate::packages::Offer,
    /// How it is paid for.
    pub charge: Charge,
    /// The request's idempotency key.
    pub idempotency: Option<IdempotencyWrite>,
}

/// A top-up bought: the purchase and its package as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToppedUp {
    /// The purchase.
    pub purchase: TopUpRecord,
    /// The package it made or added to.
    pub package: PackageRecord,
}

/// What buying a top-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopUpResult {
    /// Bought.
    Done(Box<ToppedUp>),
    /// No eSIM of the scope with that id.
    NotFound,
    /// The eSIM takes no such top-up now: why.
    NotAllowed(String),
    /// The live balance cannot pay it and keep the minimum: the balance now.
    InsufficientBalance {
        /// Cents.
        balance_cents: i64,
    },
    /// Nothing written: the key is stored already.
    KeyTaken,
    /// Nothing written: another request took the claim over.
    ClaimLost,
}

impl TopUpResult {
    /// Whether the top-up was bought: its transaction is to be committed (every other result
    /// wrote nothing, and its transaction is rolled back).
    pub fn committed(&self) -> bool {
        matches!(self, TopUpResult::Done(_))
    }
}

/// Everything one cancellation writes, in one transaction: the eSIM's new state, the refund
/// (ledger rows and the balance, for live purchases that qualify), the event, and the
/// request's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelWrite {
    /// Whose eSIM.
    pub scope: Scope,
    /// Which.
    pub esim_id: String,
    /// The partner's reason.
    pub reason: Option<String>,
    /// The request's idempotency key, claimed or completed in the same transaction.
    pub idempotency: Option<IdempotencyWrite>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The result of a cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelResult {
    /// Cancelled now, or before (then the first cancellation, unchanged).
    Done(Box<Cancellation>),
    /// No such eSIM in the scope.
    NotFound,
    /// Its state does not allow it (expired).
    Invalid(InvalidTransition),
    /// Nothing written: the key to claim is stored already.
    KeyTaken,
    /// Nothing written: the claim was taken over.
    ClaimLost,
}

/// The result of a suspension change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuspensionResult {
    /// No such eSIM (in the scope given).
    NotFound,
    /// Done, or nothing to do (`changed: false`); the eSIM as it is now.
    Done {
        /// The eSIM.
        esim: Box<EsimRecord>,
        /// Whether anything changed.
        changed: bool,
    },
    /// Refused: the operator holds the suspension.
    HeldByOperator,
    /// Refused: the state machine does not allow it.
    Invalid(InvalidTransition),
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
    /// Makes an active key stop working at `at` (a replaced key's grace period), never later
    /// than it already would: `false` if no key is active until then (revoked, or expiring
    /// sooner; an expired key is never revived). Like a revocation, it waits for every instance to see it.
    async fn expire_api_key(&self, key_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
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
    /// The live balance below which the partner is sent `account.balance_low`, cents.
    async fn low_balance_threshold(&self, partner_id: &str) -> Result<Option<i64>, StoreError>;
    /// Sets (or removes) that threshold. A charge that takes the live balance from at or
    /// above it to below it writes `account.balance_low` in its transaction.
    async fn set_low_balance_threshold(
        &self,
        partner_id: &str,
        threshold_cents: Option<i64>,
    ) -> Result<(), StoreError>;
    /// A partner's ledger, oldest first.
    async fn ledger(&self, partner_id: &str) -> Result<Vec<LedgerEntry>, StoreError>;
    /// A page of a partner's ledger, newest first, within `filter`'s dates: the statement.
    async fn list_ledger(
        &self,
        partner_id: &str,
        filter: &LedgerFilter,
        page: PageRequest,
    ) -> Result<Vec<Sequenced<LedgerEntry>>, StoreError>;

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

    /// Stores a web console session.
    async fn create_session(
        &self,
        session: &crate::sessions::SessionRecord,
    ) -> Result<(), StoreError>;
    /// The session with this token hash, live or not.
    async fn find_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<crate::sessions::SessionRecord>, StoreError>;
    /// Records a request of the session at `at`.
    async fn touch_session(&self, token_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Ends a session (sign-out, a revoked key); `false` if there was none.
    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError>;
    /// Deletes the sessions no longer live at `now` (idle for [`crate::sessions::IDLE`] or
    /// past their end); how many.
    async fn delete_ended_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// An eSIM by id (any partner: for the operator's commands).
    async fn get_esim_any(&self, esim_id: &str) -> Result<Option<EsimRecord>, StoreError>;
    /// A partner's eSIMs by environment and state, and its last order (the operator's view).
    async fn partner_summary(&self, partner_id: &str) -> Result<PartnerSummary, StoreError>;
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
    /// Cancels an eSIM, ending its packages and refunding them as
    /// `billing::package_refund` says, in one transaction with the event `esim.cancelled`.
    /// An eSIM cancelled before answers its first cancellation.
    async fn cancel_esim(&self, write: &CancelWrite) -> Result<CancelResult, StoreError>;
    /// The cancellation of a cancelled eSIM of the scope.
    async fn get_cancellation(
        &self,
        scope: &Scope,
        esim_id: &str,
    ) -> Result<Option<Cancellation>, StoreError>;
    /// Suspends or resumes an eSIM as [`lifecycle::decide_suspension`](crate::lifecycle::decide_suspension)
    /// says, writing `esim.suspended` or `esim.resumed` to the outbox in the same
    /// transaction. With `scope`, only an eSIM of that partner and environment is found.
    async fn change_suspension(
        &self,
        scope: Option<Scope>,
        esim_id: &str,
        change: &SuspensionChange,
        now: DateTime<Utc>,
    ) -> Result<SuspensionResult, StoreError>;
    /// Applies a usage record once (by `record_id`), with `usage.threshold` events for the
    /// thresholds it crosses, in one transaction.
    async fn record_usage(
        &self,
        esim_id: &str,
        usage: &UsageInput,
        now: DateTime<Utc>,
    ) -> Result<UsageResult, StoreError>;
    /// The packages of an eSIM (any scope: callers find the eSIM in theirs first), the first
    /// first, each with the purchases that bought it or added to it.
    async fn list_packages(&self, esim_id: &str) -> Result<Vec<PackageRecord>, StoreError>;
    /// Buys a top-up (see [`TopUpWrite`]): the charge, the purchase, its effect on the
    /// packages, `esim.topped_up` and the idempotency key, in one transaction.
    async fn top_up(&self, write: &TopUpWrite) -> Result<TopUpResult, StoreError>;
    /// A top-up purchase of the scope, with its package as it is now.
    async fn get_topup(
        &self,
        scope: &Scope,
        purchase_id: &str,
    ) -> Result<Option<ToppedUp>, StoreError>;
    /// Ids of eSIMs past `expires_at` and not yet expired, at most `limit`.
    async fn due_expiries(&self, now: DateTime<Utc>, limit: u32)
        -> Result<Vec<String>, StoreError>;

    /// Journals a new SM-DP+ reservation ([`crate::profiles`]).
    async fn create_reservation(&self, reservation: &Reservation) -> Result<(), StoreError>;
    /// Writes a reservation's fields if it is still in state `from`; whether it was.
    async fn advance_reservation(
        &self,
        reservation: &Reservation,
        from: ReservationState,
    ) -> Result<bool, StoreError>;
    /// Reservations the reconciler should look at, oldest first, at most `limit`: those in
    /// flight unchanged since `stale_before`, and those `cancelling` due by `now` (or with no
    /// time set: due at once).
    async fn due_reservations(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Reservation>, StoreError>;
    /// Keeps a report from the SM-DP+ (once per call identifier) and applies it to the eSIM
    /// of its ICCID, with its event and any activation, in one transaction
    /// ([`crate::downloads`]).
    async fn record_profile_notice(
        &self,
        notice: &crate::downloads::ProfileNotice,
    ) -> Result<crate::downloads::NoticeOutcome, StoreError>;
    /// Stores a batch of ICCIDs in stock, all or none ([`crate::inventory`]).
    async fn import_batch(
        &self,
        batch: &crate::inventory::NewBatch,
    ) -> Result<crate::inventory::Imported, StoreError>;
    /// The stock of every profile type and environment.
    async fn stock(&self) -> Result<Vec<crate::inventory::Stock>, StoreError>;
    /// The figures the operator's metrics read at each scrape (backlog, balances, pools).
    async fn figures(&self, now: DateTime<Utc>) -> Result<Figures, StoreError>;
    /// How many reservations are in each state.
    async fn reservation_counts(&self) -> Result<Vec<(ReservationState, u64)>, StoreError>;

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
