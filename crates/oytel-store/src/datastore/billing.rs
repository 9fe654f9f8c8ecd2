//! The ledger: every credit and every charge of a live balance, each written in the
//! transaction of the change it pays for.

use chrono::{DateTime, Utc};
use oytel_core::billing::{self, LedgerLine};
use oytel_core::numbers::new_id;
use oytel_core::ports::{LedgerEntry, LedgerFilter, PageRequest, Sequenced, StoreError};
use sqlx::QueryBuilder;

use super::outbox::{fan_out, insert_event_row};
use super::sql::{begin_write, fetch_page, push_insert, Tx};
use super::{Db, Store};
use crate::errors::db_error;
use crate::rows::LedgerRow;

/// Pushes the ledger row of `line`; `balance_after` is the balance once it applied.
pub(super) fn push_ledger_line<'a>(
    qb: &mut QueryBuilder<'a, Db>,
    line: &'a LedgerLine,
    balance_after: i64,
) {
    push_insert(
        qb,
        "ledger_entries (id, partner_id, amount_cents, balance_after_cents, kind, \
         order_id, purchase_id, description, created_at)",
        |v| {
            v.push_bind(new_id("led"))
                .push_bind(&line.partner_id)
                .push_bind(line.amount_cents)
                .push_bind(balance_after)
                .push_bind(line.kind.as_str())
                .push_bind(&line.order_id)
                .push_bind(&line.purchase_id)
                .push_bind(&line.description)
                .push_bind(line.at);
        },
    );
}

/// What moving a balance by a line did.
pub(super) enum Moved {
    /// The balance moved: the balance after, and the partner's low-balance threshold.
    Applied(i64, Option<i64>),
    /// Nothing moved: the balance after would be below the floor. This is the balance now.
    BelowFloor(i64),
}

/// Moves the line's partner's balance by its amount, unless the balance after would be
/// below `floor` (charges keep the minimum balance; credits have no floor). Pair it with
/// [`push_ledger_line`] in the same transaction.
pub(super) async fn move_balance(
    tx: &mut Tx<'_>,
    line: &LedgerLine,
    floor: Option<i64>,
) -> Result<Moved, StoreError> {
    let mut query = QueryBuilder::new("UPDATE balances SET balance_cents = balance_cents + ");
    query.push_bind(line.amount_cents);
    query
        .push(" WHERE partner_id = ")
        .push_bind(&line.partner_id);
    if let Some(floor) = floor {
        query
            .push(" AND balance_cents + ")
            .push_bind(line.amount_cents);
        query.push(" >= ").push_bind(floor);
    }
    query.push(" RETURNING balance_cents, low_balance_cents");
    let moved: Option<(i64, Option<i64>)> = query
        .build_query_as()
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
    if let Some((balance, low_balance)) = moved {
        return Ok(Moved::Applied(balance, low_balance));
    }
    let balance: Option<i64> =
        sqlx::query_scalar("SELECT balance_cents FROM balances WHERE partner_id = $1")
            .bind(&line.partner_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
    match balance {
        Some(balance) => Ok(Moved::BelowFloor(balance)),
        None => Err(StoreError::NotFound("partner")),
    }
}

/// Writes `account.balance_low`, with its deliveries, if `line` took the balance from at or
/// above the partner's threshold to below it (`billing::fell_below`).
pub(super) async fn announce_low_balance(
    tx: &mut Tx<'_>,
    line: &LedgerLine,
    after: i64,
    threshold: Option<i64>,
    currency: &str,
) -> Result<(), StoreError> {
    if !billing::fell_below(after - line.amount_cents, after, threshold) {
        return Ok(());
    }
    let threshold = threshold.unwrap_or_default();
    let event = oytel_core::webhooks::balance_low_event(
        &line.partner_id,
        after,
        threshold,
        currency,
        line.at,
    );
    insert_event_row(tx, &event).await?;
    fan_out(tx, &event, None, line.at).await?;
    Ok(())
}

/// The partner's low-balance threshold, cents (`None`: none set).
pub(super) async fn low_balance_threshold(
    store: &Store,
    partner_id: &str,
) -> Result<Option<i64>, StoreError> {
    let row: Option<Option<i64>> =
        sqlx::query_scalar("SELECT low_balance_cents FROM balances WHERE partner_id = $1")
            .bind(partner_id)
            .fetch_optional(&store.reader)
            .await
            .map_err(db_error)?;
    row.ok_or(StoreError::NotFound("partner"))
}

/// Sets (or, with `None`, removes) the partner's low-balance threshold.
pub(super) async fn set_low_balance_threshold(
    store: &Store,
    partner_id: &str,
    threshold_cents: Option<i64>,
) -> Result<(), StoreError> {
    let changed = sqlx::query("UPDATE balances SET low_balance_cents = $2 WHERE partner_id = $1")
        .bind(partner_id)
        .bind(threshold_cents)
        .execute(&store.writer)
        .await
        .map_err(db_error)?;
    if changed.rows_affected() == 0 {
        return Err(StoreError::NotFound("partner"));
    }
    Ok(())
}

pub(super) async fn credit(
    store: &Store,
    partner_id: &str,
    amount_cents: i64,
    description: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let line = billing::credit_line(partner_id, amount_cents, description, now);
    let mut tx = begin_write(store).await?;
    let Moved::Applied(balance, _) = move_balance(&mut tx, &line, None).await? else {
        return Err(StoreError::Other("a credit met a floor".into()));
    };
    let mut query = QueryBuilder::new("");
    push_ledger_line(&mut query, &line, balance);
    query.build().execute(&mut *tx).await.map_err(db_error)?;
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

/// A partner's ledger rows with the eSIM each order or top-up paid for: the start of both
/// reads.
fn ledger_query(partner_id: &str) -> QueryBuilder<'_, Db> {
    let mut query = QueryBuilder::new(
        "SELECT l.seq, l.id, l.partner_id, l.amount_cents, l.balance_after_cents, l.kind, \
         l.order_id, l.purchase_id, COALESCE(o.esim_id, t.esim_id) AS esim_id, l.description, \
         l.created_at FROM ledger_entries l LEFT JOIN orders o ON o.id = l.order_id \
         LEFT JOIN topups t ON t.id = l.purchase_id WHERE l.partner_id = ",
    );
    query.push_bind(partner_id);
    query
}

pub(super) async fn ledger(
    store: &Store,
    partner_id: &str,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let mut query = ledger_query(partner_id);
    query.push(" ORDER BY l.seq");
    let rows: Vec<LedgerRow> = query
        .build_query_as()
        .fetch_all(&store.reader)
        .await
        .map_err(db_error)?;
    rows.into_iter().map(LedgerEntry::try_from).collect()
}

pub(super) async fn list_ledger(
    store: &Store,
    partner_id: &str,
    filter: &LedgerFilter,
    page: PageRequest,
) -> Result<Vec<Sequenced<LedgerEntry>>, StoreError> {
    let mut query = ledger_query(partner_id);
    if let Some(from) = filter.from {
        query.push(" AND l.created_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" AND l.created_at < ").push_bind(to);
    }
    fetch_page::<LedgerRow, _>(query, "l.seq", page, &store.reader).await
}
