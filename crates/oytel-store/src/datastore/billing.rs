//! The ledger: every credit and every charge of a live balance, each written in the
//! transaction of the change it pays for.

use chrono::{DateTime, Utc};
use oytel_core::numbers::new_id;
use oytel_core::ports::{LedgerEntry, OrderRecord, StoreError};
use sqlx::QueryBuilder;

use super::sql::{begin_write, push_insert};
use super::{Db, Store};
use crate::errors::db_error;
use crate::rows::LedgerRow;

/// The ledger entry of a live order's charge.
pub(super) fn push_charge<'a>(
    qb: &mut QueryBuilder<'a, Db>,
    order: &'a OrderRecord,
    balance_after: i64,
) {
    push_insert(
        qb,
        "ledger_entries (id, partner_id, amount_cents, balance_after_cents, kind, \
         order_id, description, created_at)",
        |v| {
            v.push_bind(new_id("led"))
                .push_bind(&order.partner_id)
                .push_bind(-order.amount_cents)
                .push_bind(balance_after)
                .push_bind("charge")
                .push_bind(&order.id)
                .push_bind(format!(
                    "{} x{} month(s) for {}",
                    order.plan_id, order.term_months, order.esim_id
                ))
                .push_bind(order.created_at);
        },
    );
}

pub(super) async fn credit(
    store: &Store,
    partner_id: &str,
    amount_cents: i64,
    description: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let mut tx = begin_write(store).await?;
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE balances SET balance_cents = balance_cents + $2 WHERE partner_id = $1 \
         RETURNING balance_cents",
    )
    .bind(partner_id)
    .bind(amount_cents)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let Some(balance) = balance else {
        return Err(StoreError::NotFound("partner"));
    };
    sqlx::query(
        "INSERT INTO ledger_entries (id, partner_id, amount_cents, balance_after_cents, kind, \
         order_id, description, created_at) VALUES ($1, $2, $3, $4, 'credit', NULL, $5, $6)",
    )
    .bind(new_id("led"))
    .bind(partner_id)
    .bind(amount_cents)
    .bind(balance)
    .bind(description)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(balance)
}

pub(super) async fn live_balance(store: &Store, partner_id: &str) -> Result<i64, StoreError> {
    let balance: Option<i64> =
        sqlx::query_scalar("SELECT balance_cents FROM balances WHERE partner_id = $1")
            .bind(partner_id)
            .fetch_optional(&store.reader)
            .await
            .map_err(db_error)?;
    balance.ok_or(StoreError::NotFound("partner"))
}

pub(super) async fn ledger(
    store: &Store,
    partner_id: &str,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let rows: Vec<LedgerRow> = sqlx::query_as(
        "SELECT id, partner_id, amount_cents, balance_after_cents, kind, order_id, \
         description, created_at FROM ledger_entries WHERE partner_id = $1 ORDER BY seq",
    )
    .bind(partner_id)
    .fetch_all(&store.reader)
    .await
    .map_err(db_error)?;
    Ok(rows.into_iter().map(LedgerEntry::from).collect())
}
