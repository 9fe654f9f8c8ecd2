//! Cancellations: the eSIM ended, its packages ended and refunded as
//! `oytel_core::billing::package_refund` says (a ledger row and the balance per purchase, for
//! live ones), its SM-DP+ profile marked to be retired where
//! `oytel_core::profiles::retired_on_cancel` says, the event and the idempotency key, in one
//! transaction. A cancelled eSIM keeps
//! when and why; each package keeps its refund (one refund per order or purchase, a unique
//! index).

use oytel_core::billing::{self, Refunded};
use oytel_core::idempotency::{IdempotencyWrite, ResourceKind, ResourceRef};
use oytel_core::lifecycle;
use oytel_core::ports::{CancelResult, CancelWrite, Cancellation, EsimRecord, StoreError};
use oytel_core::{Environment, EsimStatus, Scope};
use oytel_types::PackageState;
use sqlx::QueryBuilder;

use super::billing::{move_balance, push_ledger_line, Moved};
use super::esims::{lock_esim, Locked};
use super::idempotency::{claim_first, complete_claim};
use super::orders::ORDER_COLUMNS;
use super::outbox::{fan_out, insert_event_row};
use super::packages::{read_packages, read_topups, save_package, start_next};
use super::sql::{begin_write, Tx};
use super::Store;
use crate::errors::db_error;
use crate::rows::OrderRow;

pub(super) async fn cancel_esim(
    store: &Store,
    write: &CancelWrite,
) -> Result<CancelResult, StoreError> {
    let mut tx = begin_write(store).await?;
    let Some(Locked { mut esim, .. }) = lock_esim(&mut tx, &write.esim_id).await? else {
        return Ok(CancelResult::NotFound);
    };
    if !in_scope(&esim, &write.scope) {
        return Ok(CancelResult::NotFound);
    }
    let resource = ResourceRef {
        kind: ResourceKind::Cancellation,
        id: esim.id.clone(),
    };
    if !claim_first(&mut tx, &write.scope, write.idempotency.as_ref(), &resource).await? {
        return Ok(CancelResult::KeyTaken);
    }
    // Cancelled before: that cancellation is the answer (a new key now names it too).
    if esim.status != EsimStatus::Cancelled {
        let from = esim.status;
        if let Err(invalid) = lifecycle::check_transition(from, EsimStatus::Cancelled) {
            return Ok(CancelResult::Invalid(invalid));
        }
        // Past the end of its package, though the expiry worker has not come by yet: the
        // next package starts then, as the worker would start it; with none queued, the eSIM
        // is as good as expired.
        if esim.expires_at <= write.now {
            let ended_at = esim.expires_at;
            start_next(&mut tx, &mut esim, PackageState::Expired, ended_at).await?;
        }
        if esim.expires_at <= write.now {
            return Ok(CancelResult::Invalid(lifecycle::InvalidTransition {
                from: EsimStatus::Expired,
                to: EsimStatus::Cancelled,
            }));
        }
        end_and_refund(&mut tx, &mut esim, write, from).await?;
    }
    if let Some(IdempotencyWrite::Complete(claim)) = &write.idempotency {
        if !complete_claim(&mut tx, &write.scope, claim, &resource).await? {
            return Ok(CancelResult::ClaimLost);
        }
    }
    let cancellation = read(&mut tx, esim).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(CancelResult::Done(Box::new(cancellation)))
}

/// Ends every package of the eSIM, refunding those `billing::package_refund` says (each
/// purchase that paid for them, a ledger line for live ones), marks the eSIM cancelled, and
/// writes `esim.cancelled` with its deliveries.
async fn end_and_refund(
    tx: &mut Tx<'_>,
    esim: &mut EsimRecord,
    write: &CancelWrite,
    from: EsimStatus,
) -> Result<(), StoreError> {
    let order = read_order(tx, &esim.order_id).await?;
    let topups = read_topups(tx, &esim.id).await?;
    for mut package in read_packages(tx, &esim.id).await? {
        let (reason, state) = billing::package_refund(&package, write.now);
        if state == package.state {
            continue;
        }
        if reason.refunds() {
            let purchases = package
                .order_id
                .iter()
                .filter(|id| **id == order.id)
                .map(|_| Refunded::Order(&order))
                .chain(
                    topups
                        .iter()
                        .filter(|t| t.package_id == package.id)
                        .map(Refunded::TopUp),
                );
            for refunded in purchases {
                let line = billing::refund_line(refunded, write.now);
                package.refunded_cents += line.amount_cents;
                if order.environment == Environment::Production && line.amount_cents > 0 {
                    let Moved::Applied(balance, _) = move_balance(tx, &line, None).await? else {
                        return Err(StoreError::Other("a refund met a floor".into()));
                    };
                    let mut query = QueryBuilder::new("");
                    push_ledger_line(&mut query, &line, balance);
                    query.build().execute(&mut **tx).await.map_err(db_error)?;
                }
            }
        }
        package.refund_reason = Some(reason);
        oytel_core::packages::end(&mut package, state, write.now);
        save_package(tx, &package).await?;
    }
    if oytel_core::profiles::retired_on_cancel(esim.profile.as_ref()) {
        super::reservations::retire_sold(tx, &esim.id, write.now).await?;
    }
    lifecycle::apply(esim, EsimStatus::Cancelled, write.now);
    sqlx::query(
        "UPDATE esims SET status = $2, cancelled_at = $3, cancel_reason = $4, \
         suspended_by = NULL WHERE id = $1",
    )
    .bind(&esim.id)
    .bind(EsimStatus::Cancelled.as_str())
    .bind(write.now)
    .bind(&write.reason)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    if let Some(event_type) = lifecycle::event_for(from, EsimStatus::Cancelled) {
        let event = oytel_core::webhooks::esim_event(event_type, esim, None, write.now);
        insert_event_row(tx, &event).await?;
        fan_out(tx, &event, esim.webhook_url.as_deref(), write.now).await?;
    }
    Ok(())
}

pub(super) async fn get_cancellation(
    store: &Store,
    scope: &Scope,
    esim_id: &str,
) -> Result<Option<Cancellation>, StoreError> {
    let mut tx = store.reader.begin().await.map_err(db_error)?;
    let row: Option<crate::rows::EsimRow> = sqlx::query_as(&format!(
        "SELECT {} FROM esims WHERE id = $1",
        super::esims::ESIM_COLUMNS
    ))
    .bind(esim_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let Some(esim) = row.map(EsimRecord::try_from).transpose()? else {
        return Ok(None);
    };
    if !in_scope(&esim, scope) || esim.status != EsimStatus::Cancelled {
        return Ok(None);
    }
    Ok(Some(read(&mut tx, esim).await?))
}

fn in_scope(esim: &EsimRecord, scope: &Scope) -> bool {
    esim.partner_id == scope.partner_id && esim.environment == scope.environment
}

/// The cancellation of a cancelled eSIM: when and why from its row, what each package gave
/// back from the packages (nothing about a cancelled eSIM changes).
async fn read(tx: &mut Tx<'_>, esim: EsimRecord) -> Result<Cancellation, StoreError> {
    let (cancelled_at, reason): (Option<chrono::DateTime<chrono::Utc>>, Option<String>) =
        sqlx::query_as("SELECT cancelled_at, cancel_reason FROM esims WHERE id = $1")
            .bind(&esim.id)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_error)?;
    let cancelled_at = cancelled_at.ok_or_else(|| {
        StoreError::Other(format!("corrupt row: {} has no cancelled_at", esim.id))
    })?;
    let packages = read_packages(tx, &esim.id).await?;
    let refund_entries: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.id, l.id FROM packages p JOIN ledger_entries l ON l.kind = 'refund' AND \
         (l.order_id = p.order_id OR l.purchase_id IN \
         (SELECT t.id FROM topups t WHERE t.package_id = p.id)) \
         WHERE p.esim_id = $1 ORDER BY p.position, l.seq",
    )
    .bind(&esim.id)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(Cancellation {
        esim,
        cancelled_at,
        reason,
        packages,
        refund_entries,
    })
}

async fn read_order(
    tx: &mut Tx<'_>,
    order_id: &str,
) -> Result<oytel_core::ports::OrderRecord, StoreError> {
    let row: OrderRow =
        sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(order_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_error)?;
    row.try_into()
}
