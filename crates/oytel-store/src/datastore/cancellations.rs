//! Cancellations: the eSIM ended, its order refunded as `oytel_core::billing::refund_for`
//! says (a ledger row and the balance, for live orders), the event and the idempotency key,
//! in one transaction. A cancelled eSIM keeps when and why; its refund is found again by its
//! order (one refund per order, a unique index).

use oytel_core::billing::{self, Refund};
use oytel_core::idempotency::{IdempotencyWrite, ResourceKind, ResourceRef};
use oytel_core::lifecycle;
use oytel_core::ports::{
    CancelResult, CancelWrite, Cancellation, EsimRecord, StoreError, UniqueField,
};
use oytel_core::{Environment, EsimStatus, Scope};
use sqlx::QueryBuilder;

use super::billing::{move_balance, push_ledger_line, Moved};
use super::esims::{lock_esim, Locked};
use super::idempotency::{complete_claim, push_claim};
use super::orders::ORDER_COLUMNS;
use super::outbox::{fan_out, insert_event_row};
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
    if let Some(IdempotencyWrite::ClaimNew(claim)) = &write.idempotency {
        let mut query = QueryBuilder::new("");
        push_claim(&mut query, &write.scope, claim, Some(&resource));
        match query.build().execute(&mut *tx).await.map_err(db_error) {
            Ok(_) => {}
            Err(StoreError::Duplicate(UniqueField::IdempotencyKey)) => {
                return Ok(CancelResult::KeyTaken)
            }
            Err(e) => return Err(e),
        }
    }
    // Cancelled before: that cancellation is the answer (a new key now names it too).
    if esim.status != EsimStatus::Cancelled {
        let from = esim.status;
        if let Err(invalid) = lifecycle::check_transition(from, EsimStatus::Cancelled) {
            return Ok(CancelResult::Invalid(invalid));
        }
        // Past its end, though the expiry worker has not come by yet: as good as expired.
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

/// Refunds the eSIM's order if `billing::refund_for` says so, marks it cancelled, and writes
/// `esim.cancelled` with its deliveries.
async fn end_and_refund(
    tx: &mut Tx<'_>,
    esim: &mut EsimRecord,
    write: &CancelWrite,
    from: EsimStatus,
) -> Result<(), StoreError> {
    let order = read_order(tx, &esim.order_id).await?;
    let refund = billing::refund_for(&order, esim, write.now);
    if order.environment == Environment::Production && refund.amount_cents > 0 {
        let line = billing::refund_line(&order, refund.amount_cents, write.now);
        let Moved::Applied(balance, _) = move_balance(tx, &line, None).await? else {
            return Err(StoreError::Other("a refund met a floor".into()));
        };
        let mut query = QueryBuilder::new("");
        push_ledger_line(&mut query, &line, balance);
        query.build().execute(&mut **tx).await.map_err(db_error)?;
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

/// The cancellation of a cancelled eSIM: when and why from its row, its refund worked out
/// again from the same rows (nothing about a cancelled eSIM changes).
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
    let order = read_order(tx, &esim.order_id).await?;
    let refund: Refund = billing::refund_for(&order, &esim, cancelled_at);
    let refund_entry = refund_entry(tx, &order.id).await?;
    Ok(Cancellation {
        esim,
        order,
        cancelled_at,
        reason,
        refund,
        refund_entry,
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

/// The ledger row of the order's refund, if it was refunded from a live balance.
async fn refund_entry(tx: &mut Tx<'_>, order_id: &str) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT id FROM ledger_entries WHERE order_id = $1 AND kind = 'refund'")
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)
}
