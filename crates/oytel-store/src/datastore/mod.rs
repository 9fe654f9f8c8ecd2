//! The storage, written once for both backends and compiled once per backend.
//!
//! SQLite and PostgreSQL accept the same SQL for everything we do (`$N` placeholders,
//! `ON CONFLICT`, `RETURNING`, expression indexes), so each resource's queries live in one
//! file here, named after the resource:
//!
//! | file | holds |
//! |---|---|
//! | `partners.rs` | partners and their raised limits |
//! | `keys.rs` | API keys (hashes) and the auth epoch that revocations bump |
//! | `billing.rs` | the ledger: credits and charges of live balances |
//! | `idempotency.rs` | idempotency keys: claims, completions, expiry |
//! | `orders.rs` | orders and the provisioning transaction |
//! | `esims.rs` | eSIM reads, lists, state changes, suspensions and usage |
//! | `cancellations.rs` | cancellations and their refunds, package by package |
//! | `packages.rs` | packages, top-ups bought, the start of a queued package |
//! | `inventory.rs` | the builtin profile stock: batches, counts, allocation |
//! | `reservations.rs` | profiles reserved at an SM-DP+: the saga's journal |
//! | `downloads.rs` | the SM-DP+'s reports on downloads, applied to their eSIMs |
//! | `outbox.rs` | events and their fan-out to deliveries |
//! | `endpoints.rs` | webhook endpoints and signing secrets |
//! | `deliveries.rs` | the dispatcher's claims, attempts, disabling failing endpoints |
//! | `settings.rs` | health probes, settings, planner statistics |
//! | `sql.rs` | what they share: transactions, chained statements, scoped pages |
//! | `batch.rs` | SQLite's group commit: paid writes in one transaction, a savepoint each |
//!
//! Hourly quotas are the one resource outside: SQLite counts them in memory
//! (`oytel_core::limits::MemoryQuotas`), PostgreSQL in its own table (`postgres.rs`).
//!
//! Each backend file (`sqlite.rs`, `postgres.rs`) includes this module with
//! `#[path = "datastore/mod.rs"]` after naming three things: `Db` (its sqlx database),
//! `Store` (its store type, with `writer` and `reader` pools) and `DIALECT` (the few pieces
//! of SQL that differ, [`Dialect`](crate::dialect::Dialect)). Every instance is a plain,
//! concrete sqlx program; there are no generic bounds over sqlx's traits to read through.
//!
//! The [`Storage`] implementation below is the map: each method says which file does it.
//! Domain rules (which transitions exist, which event a change emits, what a claim decides)
//! come from `oytel-core`; these files only read and write.

use chrono::{DateTime, Utc};
use oytel_core::lifecycle::SuspensionChange;
use oytel_core::limits::LimitOverrides;
use oytel_core::ports::{
    ApiKeyInfo, AttemptOutcome, AttemptRecord, CancelResult, CancelWrite, Cancellation,
    ClaimLimits, ClaimRef, DueDelivery, EndpointRecord, EsimFilter, EsimRecord, EventRecord,
    IdempotencyClaim, IdempotencyRequest, KeyOwner, LedgerEntry, LedgerFilter, NewApiKey,
    OrderRecord, PackageRecord, PageRequest, Partner, PartnerSummary, ProvisionResult,
    ProvisionWrite, Sequenced, SigningSecret, Storage, StoreError, SuspensionResult, TopUpResult,
    TopUpWrite, ToppedUp, TransitionResult, UsageInput, UsageResult,
};
use oytel_core::profiles::{Reservation, ReservationState};
use oytel_core::{EsimStatus, Scope};

use super::{Db, Store, DIALECT};

mod batch;
mod billing;
mod cancellations;
mod deliveries;
mod downloads;
mod endpoints;
mod esims;
mod idempotency;
mod inventory;
mod keys;
mod orders;
mod outbox;
mod packages;
mod partners;
mod reservations;
mod sessions;
mod settings;
mod sql;

#[allow(
    unused_imports,
    reason = "SQLite's group commit calls it; PostgreSQL commits each write on its own"
)]
pub(super) use batch::write_batch;

#[async_trait::async_trait]
impl Storage for Store {
    async fn ping(&self) -> Result<(), StoreError> {
        settings::ping(self).await
    }

    async fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        settings::probe_write(self, now).await
    }

    async fn create_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        partners::create_partner(self, partner).await
    }

    async fn get_partner(&self, partner_id: &str) -> Result<Option<Partner>, StoreError> {
        partners::get_partner(self, partner_id).await
    }

    async fn list_partners(&self) -> Result<Vec<Partner>, StoreError> {
        partners::list_partners(self).await
    }

    async fn create_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
        keys::create_api_key(self, key).await
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<KeyOwner>, StoreError> {
        keys::find_api_key(self, hash).await
    }

    async fn partner_limits(&self, partner_id: &str) -> Result<Option<LimitOverrides>, StoreError> {
        partners::partner_limits(self, partner_id).await
    }

    async fn set_partner_limits(
        &self,
        partner_id: &str,
        limits: &LimitOverrides,
    ) -> Result<bool, StoreError> {
        partners::set_partner_limits(self, partner_id, limits).await
    }

    async fn list_api_keys(&self, partner_id: &str) -> Result<Vec<ApiKeyInfo>, StoreError> {
        keys::list_api_keys(self, partner_id).await
    }

    async fn expire_api_key(&self, key_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        keys::expire_api_key(self, key_id, at).await
    }

    async fn revoke_api_key(&self, key_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        keys::revoke_api_key(self, key_id, now).await
    }

    async fn renew_epoch_lease(
        &self,
        instance_id: &str,
        serving_epoch: i64,
        lease: std::time::Duration,
    ) -> Result<(), StoreError> {
        keys::renew_epoch_lease(self, instance_id, serving_epoch, lease).await
    }

    async fn release_epoch_lease(&self, instance_id: &str) -> Result<(), StoreError> {
        keys::release_epoch_lease(self, instance_id).await
    }

    async fn auth_epoch(&self) -> Result<i64, StoreError> {
        keys::auth_epoch(self).await
    }

    async fn credit(
        &self,
        partner_id: &str,
        amount_cents: i64,
        description: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        billing::credit(self, partner_id, amount_cents, description, now).await
    }

    async fn live_balance(&self, partner_id: &str) -> Result<i64, StoreError> {
        billing::live_balance(self, partner_id).await
    }

    async fn low_balance_threshold(&self, partner_id: &str) -> Result<Option<i64>, StoreError> {
        billing::low_balance_threshold(self, partner_id).await
    }

    async fn set_low_balance_threshold(
        &self,
        partner_id: &str,
        threshold_cents: Option<i64>,
    ) -> Result<(), StoreError> {
        billing::set_low_balance_threshold(self, partner_id, threshold_cents).await
    }

    async fn ledger(&self, partner_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        billing::ledger(self, partner_id).await
    }

    async fn list_ledger(
        &self,
        partner_id: &str,
        filter: &LedgerFilter,
        page: PageRequest,
    ) -> Result<Vec<Sequenced<LedgerEntry>>, StoreError> {
        billing::list_ledger(self, partner_id, filter, page).await
    }

    async fn claim_idempotency_key(
        &self,
        scope: &Scope,
        claim: &IdempotencyRequest,
    ) -> Result<IdempotencyClaim, StoreError> {
        idempotency::claim_idempotency_key(self, scope, claim).await
    }

    async fn release_idempotency_key(
        &self,
        scope: &Scope,
        claim: &ClaimRef,
    ) -> Result<(), StoreError> {
        idempotency::release_idempotency_key(self, scope, claim).await
    }

    async fn purge_idempotency_keys(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        idempotency::purge_idempotency_keys(self, now).await
    }

    async fn provision(&self, write: &ProvisionWrite) -> Result<ProvisionResult, StoreError> {
        orders::provision(self, write).await
    }

    async fn get_esim(
        &self,
        scope: &Scope,
        esim_id: &str,
    ) -> Result<Option<EsimRecord>, StoreError> {
        esims::get_esim(self, scope, esim_id).await
    }

    async fn get_esim_status(
        &self,
        scope: &Scope,
        esim_id: &str,
    ) -> Result<Option<oytel_core::ports::EsimStatusRecord>, StoreError> {
        esims::get_esim_status(self, scope, esim_id).await
    }

    async fn get_esim_by_qr_token(&self, token: &str) -> Result<Option<EsimRecord>, StoreError> {
        esims::get_esim_by_qr_token(self, token).await
    }

    async fn list_esims(
        &self,
        scope: &Scope,
        filter: &EsimFilter,
        page: PageRequest,
    ) -> Result<Vec<Sequenced<EsimRecord>>, StoreError> {
        esims::list_esims(self, scope, filter, page).await
    }

    async fn get_order(
        &self,
        scope: &Scope,
        order_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        orders::get_order(self, scope, order_id).await
    }

    async fn list_orders(
        &self,
        scope: &Scope,
        reference_id: Option<String>,
        page: PageRequest,
    ) -> Result<Vec<Sequenced<OrderRecord>>, StoreError> {
        orders::list_orders(self, scope, reference_id, page).await
    }

    async fn set_setting_once(&self, name: &str, value: &str) -> Result<bool, StoreError> {
        settings::set_setting_once(self, name, value).await
    }

    async fn create_session(
        &self,
        session: &oytel_core::sessions::SessionRecord,
    ) -> Result<(), StoreError> {
        sessions::create_session(self, session).await
    }

    async fn find_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<oytel_core::sessions::SessionRecord>, StoreError> {
        sessions::find_session(self, token_hash).await
    }

    async fn touch_session(&self, token_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sessions::touch_session(self, token_hash, at).await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        sessions::delete_session(self, token_hash).await
    }

    async fn delete_ended_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        sessions::delete_ended_sessions(self, now).await
    }

    async fn get_esim_any(&self, esim_id: &str) -> Result<Option<EsimRecord>, StoreError> {
        esims::get_esim_any(self, esim_id).await
    }

    async fn partner_summary(&self, partner_id: &str) -> Result<PartnerSummary, StoreError> {
        esims::partner_summary(self, partner_id).await
    }

    async fn get_esim_by_iccid(&self, iccid: &str) -> Result<Option<EsimRecord>, StoreError> {
        esims::get_esim_by_iccid(self, iccid).await
    }

    async fn transition_esim(
        &self,
        esim_id: &str,
        to: EsimStatus,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult, StoreError> {
        esims::transition_esim(self, esim_id, to, now).await
    }

    async fn cancel_esim(&self, write: &CancelWrite) -> Result<CancelResult, StoreError> {
        cancellations::cancel_esim(self, write).await
    }

    async fn get_cancellation(
        &self,
        scope: &Scope,
        esim_id: &str,
    ) -> Result<Option<Cancellation>, StoreError> {
        cancellations::get_cancellation(self, scope, esim_id).await
    }

    async fn list_packages(&self, esim_id: &str) -> Result<Vec<PackageRecord>, StoreError> {
        packages::list_packages(self, esim_id).await
    }

    async fn top_up(&self, write: &TopUpWrite) -> Result<TopUpResult, StoreError> {
        packages::top_up(self, write).await
    }

    async fn get_topup(
        &self,
        scope: &Scope,
        purchase_id: &str,
    ) -> Result<Option<ToppedUp>, StoreError> {
        packages::get_topup(self, scope, purchase_id).await
    }

    async fn change_suspension(
        &self,
        scope: Option<Scope>,
        esim_id: &str,
        change: &SuspensionChange,
        now: DateTime<Utc>,
    ) -> Result<SuspensionResult, StoreError> {
        esims::change_suspension(self, scope, esim_id, change, now).await
    }

    async fn record_usage(
        &self,
        esim_id: &str,
        usage: &UsageInput,
        now: DateTime<Utc>,
    ) -> Result<UsageResult, StoreError> {
        esims::record_usage(self, esim_id, usage, now).await
    }

    async fn due_expiries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        esims::due_expiries(self, now, limit).await
    }

    async fn create_reservation(&self, r: &Reservation) -> Result<(), StoreError> {
        reservations::create_reservation(self, r).await
    }

    async fn advance_reservation(
        &self,
        r: &Reservation,
        from: ReservationState,
    ) -> Result<bool, StoreError> {
        reservations::advance_reservation(self, r, from).await
    }

    async fn due_reservations(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Reservation>, StoreError> {
        reservations::due_reservations(self, now, stale_before, limit).await
    }

    async fn record_profile_notice(
        &self,
        notice: &oytel_core::downloads::ProfileNotice,
    ) -> Result<oytel_core::downloads::NoticeOutcome, StoreError> {
        downloads::record_profile_notice(self, notice).await
    }

    async fn import_batch(
        &self,
        batch: &oytel_core::inventory::NewBatch,
    ) -> Result<oytel_core::inventory::Imported, StoreError> {
        inventory::import_batch(self, batch).await
    }

    async fn stock(&self) -> Result<Vec<oytel_core::inventory::Stock>, StoreError> {
        inventory::stock(self).await
    }

    async fn figures(&self, now: DateTime<Utc>) -> Result<oytel_core::ports::Figures, StoreError> {
        settings::figures(self, now).await
    }

    async fn reservation_counts(&self) -> Result<Vec<(ReservationState, u64)>, StoreError> {
        reservations::reservation_counts(self).await
    }

    async fn create_endpoint(&self, e: &EndpointRecord) -> Result<(), StoreError> {
        endpoints::create_endpoint(self, e).await
    }

    async fn list_endpoints(&self, scope: &Scope) -> Result<Vec<EndpointRecord>, StoreError> {
        endpoints::list_endpoints(self, scope).await
    }

    async fn get_endpoint(
        &self,
        scope: &Scope,
        endpoint_id: &str,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        endpoints::get_endpoint(self, scope, endpoint_id).await
    }

    async fn update_endpoint(&self, e: &EndpointRecord) -> Result<bool, StoreError> {
        endpoints::update_endpoint(self, e).await
    }

    async fn delete_endpoint(&self, scope: &Scope, endpoint_id: &str) -> Result<bool, StoreError> {
        endpoints::delete_endpoint(self, scope, endpoint_id).await
    }

    async fn esim_signing_secret(
        &self,
        scope: &Scope,
        candidate: &str,
    ) -> Result<SigningSecret, StoreError> {
        endpoints::esim_signing_secret(self, scope, candidate).await
    }

    async fn rotate_esim_signing_secret(
        &self,
        scope: &Scope,
        new_secret: &str,
        previous_expires_at: DateTime<Utc>,
    ) -> Result<SigningSecret, StoreError> {
        endpoints::rotate_esim_signing_secret(self, scope, new_secret, previous_expires_at).await
    }

    async fn send_test_event(
        &self,
        event: &EventRecord,
        endpoint_id: &str,
    ) -> Result<String, StoreError> {
        outbox::send_test_event(self, event, endpoint_id).await
    }

    async fn get_event(
        &self,
        scope: &Scope,
        event_id: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        outbox::get_event(self, scope, event_id).await
    }

    async fn redeliver_event(
        &self,
        scope: &Scope,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        outbox::redeliver_event(self, scope, event_id, now).await
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limits: ClaimLimits,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        deliveries::claim_due_deliveries(self, now, lease_until, limits).await
    }

    async fn release_deliveries(
        &self,
        delivery_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        deliveries::release_deliveries(self, delivery_ids, lease_until).await
    }

    async fn record_attempts(
        &self,
        outcomes: &[AttemptOutcome],
        disable_after: chrono::Duration,
    ) -> Result<(), StoreError> {
        deliveries::record_attempts(self, outcomes, disable_after).await
    }

    async fn list_attempts(
        &self,
        scope: &Scope,
        endpoint_id: Option<String>,
        page: PageRequest,
    ) -> Result<Vec<Sequenced<AttemptRecord>>, StoreError> {
        deliveries::list_attempts(self, scope, endpoint_id, page).await
    }
}
