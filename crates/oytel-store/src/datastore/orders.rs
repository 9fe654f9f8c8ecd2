//! Orders and provisioning: the charge, the order, the eSIM, the event and the completion of
//! the idempotency key, in one transaction.

use oytel_core::ports::{
    Charge, IdempotencyWrite, OrderRecord, PageRequest, ProvisionResult, ProvisionWrite, Sequenced,
    StoreError, UniqueField,
};
use oytel_core::Scope;
use sqlx::QueryBuilder;

use super::billing::push_charge;
use super::esims::push_esim;
use super::idempotency::push_claim;
use super::outbox::{fan_out_after, push_event};
use super::sql::{
    begin_write, fetch_page, fetch_scoped_by_id, push_insert, scoped_list, Chain, Tx,
};
use super::{Db, Store};
use crate::errors::db_error;
use crate::rows::OrderRow;

/// The columns of an order row (`rows::OrderRow`).
const ORDER_COLUMNS: &str = "seq, id, partner_id, environment, esim_id, plan_id, term_months, \
    amount_cents, currency, customer_email, customer_name, reference_id, balance_after_cents, \
    request_id, created_at";

pub(super) async fn provision(
    store: &Store,
    write: &ProvisionWrite,
) -> Result<ProvisionResult, StoreError> {
    let order = &write.order;
    let mut tx = begin_write(store).await?;

    let balance_after = match write.charge {
        Charge::Sandbox { balance_cents } => balance_cents,
        Charge::Live {
            minimum_balance_cents,
        } => {
            let debited: Option<i64> = sqlx::query_scalar(
                "UPDATE balances SET balance_cents = balance_cents - $2 \
                 WHERE partner_id = $1 AND balance_cents - $2 >= $3 RETURNING balance_cents",
            )
            .bind(&order.partner_id)
            .bind(order.amount_cents)
            .bind(minimum_balance_cents)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            let Some(balance_after) = debited else {
                if let Some(IdempotencyWrite::ClaimNew(claim)) = &write.idempotency {
                    // A retry that waited here for its first attempt, which spent
                    // the balance: that attempt's key is stored now, to replay.
                    let stored: Option<String> = sqlx::query_scalar(
                        "SELECT key FROM idempotency_keys WHERE partner_id = $1 \
                         AND environment = $2 AND key = $3",
                    )
                    .bind(&order.partner_id)
                    .bind(order.environment.as_str())
                    .bind(&claim.key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    if stored.is_some() {
                        return Ok(ProvisionResult::KeyTaken);
                    }
                }
                let balance: Option<i64> =
                    sqlx::query_scalar("SELECT balance_cents FROM balances WHERE partner_id = $1")
                        .bind(&order.partner_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_error)?;
                return Ok(ProvisionResult::InsufficientBalance {
                    balance_cents: balance.unwrap_or_default(),
                });
            };
            balance_after
        }
    };

    // A new key already stored: a concurrent request with the same key committed
    // first (on PostgreSQL, this statement waited for it).
    match insert_provision(&mut tx, write, balance_after).await {
        Ok(()) => {}
        Err(StoreError::Duplicate(UniqueField::IdempotencyKey)) => {
            return Ok(ProvisionResult::KeyTaken)
        }
        Err(e) => return Err(e),
    }

    if let Some(IdempotencyWrite::Complete(claim)) = &write.idempotency {
        let completed = sqlx::query(
            "UPDATE idempotency_keys SET order_id = $5 WHERE partner_id = $1 \
             AND environment = $2 AND key = $3 AND claim_token = $4 AND order_id IS NULL",
        )
        .bind(&order.partner_id)
        .bind(order.environment.as_str())
        .bind(&claim.key)
        .bind(&claim.token)
        .bind(&order.id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if completed.rows_affected() != 1 {
            // Dropping the transaction rolls back the charge, the order and the eSIM.
            return Ok(ProvisionResult::ClaimLost);
        }
    }

    tx.commit().await.map_err(db_error)?;
    Ok(ProvisionResult::Committed {
        balance_after_cents: balance_after,
    })
}

/// Writes a provisioning: the idempotency claim (when new), the charge's ledger entry
/// (when live), the order, the eSIM and the event, in one statement that also lists
/// the partner's endpoints; then the event's deliveries. A sandbox order takes three
/// round trips (begin, this, commit). A new claim's key already stored fails the
/// statement with [`UniqueField::IdempotencyKey`].
pub(super) async fn insert_provision(
    tx: &mut Tx<'_>,
    write: &ProvisionWrite,
    balance_after: i64,
) -> Result<(), StoreError> {
    let order = &write.order;
    let scope = Scope {
        partner_id: order.partner_id.clone(),
        environment: order.environment,
    };
    let mut chain = Chain::new();
    if let Some(IdempotencyWrite::ClaimNew(claim)) = &write.idempotency {
        push_claim(chain.write(), &scope, claim, Some(&order.id));
    }
    if let Charge::Live { .. } = write.charge {
        push_charge(chain.write(), order, balance_after);
    }
    push_order(chain.write(), order, balance_after);
    push_esim(chain.write(), &write.esim);
    push_event(chain.write(), &write.event);
    fan_out_after(
        tx,
        chain,
        &write.event,
        write.esim.webhook_url.as_deref(),
        write.esim.created_at,
    )
    .await?;
    Ok(())
}

pub(super) fn push_order<'a>(
    qb: &mut QueryBuilder<'a, Db>,
    order: &'a OrderRecord,
    balance_after: i64,
) {
    push_insert(
        qb,
        "orders (id, partner_id, environment, esim_id, plan_id, term_months, \
         amount_cents, currency, customer_email, customer_name, reference_id, \
         balance_after_cents, request_id, created_at)",
        |v| {
            v.push_bind(&order.id)
                .push_bind(&order.partner_id)
                .push_bind(order.environment.as_str())
                .push_bind(&order.esim_id)
                .push_bind(&order.plan_id)
                .push_bind(i64::from(order.term_months))
                .push_bind(order.amount_cents)
                .push_bind(&order.currency)
                .push_bind(&order.customer_email)
                .push_bind(&order.customer_name)
                .push_bind(&order.reference_id)
                .push_bind(balance_after)
                .push_bind(&order.request_id)
                .push_bind(order.created_at);
        },
    );
}

pub(super) async fn get_order(
    store: &Store,
    scope: &Scope,
    order_id: &str,
) -> Result<Option<OrderRecord>, StoreError> {
    fetch_scoped_by_id::<OrderRow, _>(ORDER_COLUMNS, "orders", scope, order_id, &store.reader).await
}

pub(super) async fn list_orders(
    store: &Store,
    scope: &Scope,
    reference_id: Option<String>,
    page: PageRequest,
) -> Result<Vec<Sequenced<OrderRecord>>, StoreError> {
    let mut query = scoped_list(ORDER_COLUMNS, "orders", scope);
    if let Some(reference_id) = &reference_id {
        query.push(" AND reference_id = ");
        query.push_bind(reference_id);
    }
    fetch_page::<OrderRow, _>(query, "seq", page, &store.reader).await
}

impl Store {
    /// Writes many sandbox provisionings in one transaction, without idempotency
    /// claims: for seeding benchmarks and load tests, not for serving requests.
    pub async fn seed(&self, writes: &[ProvisionWrite]) -> Result<(), StoreError> {
        let mut tx = begin_write(self).await?;
        for write in writes {
            let balance = match write.charge {
                Charge::Sandbox { balance_cents } => balance_cents,
                Charge::Live { .. } => {
                    return Err(StoreError::Other("seed writes sandbox orders only".into()));
                }
            };
            insert_provision(&mut tx, write, balance).await?;
        }
        tx.commit().await.map_err(db_error)
    }
}
