//! Orders and provisioning: the charge, the order, the eSIM (with an ICCID from the stock,
//! where asked) and its first package, the event, the sale of its SM-DP+ reservation and the
//! completion of the idempotency key, in one transaction.

use oytel_core::billing::{self, LedgerLine};
use oytel_core::idempotency::ResourceRef;
use oytel_core::ports::{
    Charge, IdempotencyWrite, OrderRecord, PageRequest, ProvisionResult, ProvisionWrite, Sequenced,
    StoreError, UniqueField,
};
use oytel_core::Scope;
use sqlx::QueryBuilder;

use super::billing::{announce_low_balance, move_balance, push_ledger_line, Moved};
use super::esims::push_esim;
use super::idempotency::{complete_claim, key_stored, push_claim};
use super::inventory::allocate;
use super::outbox::{fan_out_after, push_event};
use super::packages::push_package;
use super::reservations::sell;
use super::sql::{
    begin_write, fetch_page, fetch_scoped_by_id, push_insert, scoped_list, Chain, Tx,
};
use super::{Db, Store};
use crate::errors::db_error;
use crate::group_commit::{Done, Job};
use crate::rows::OrderRow;

/// The columns of an order row (`rows::OrderRow`).
pub(super) const ORDER_COLUMNS: &str =
    "seq, id, partner_id, environment, esim_id, plan_id, term_months, \
    amount_cents, currency, customer_email, customer_name, reference_id, balance_after_cents, \
    request_id, created_at";

/// The provisioning transaction: the charge (live), the order, the eSIM, its event and
/// deliveries, and the idempotency key (claimed in the same statement, or completed).
///
/// On SQLite it goes to the store's group commit ([`crate::group_commit`]): writes
/// waiting for the one writer share a transaction, each in a savepoint of its own.
pub(super) async fn provision(
    store: &Store,
    write: &ProvisionWrite,
) -> Result<ProvisionResult, StoreError> {
    if let Some(queue) = store.batched() {
        return match queue.submit(Job::Provision(Box::new(write.clone()))).await {
            Some(Done::Provision(result)) => result,
            _ => Err(crate::group_commit::not_written()),
        };
    }
    let mut tx = begin_write(store).await?;
    let result = provision_in(&mut tx, write).await?;
    if result.committed() {
        tx.commit().await.map_err(db_error)?;
    }
    Ok(result)
}

/// A provisioning's writes in `tx`, which the caller commits when the result says so
/// ([`ProvisionResult::committed`]) and rolls back otherwise.
pub(super) async fn provision_in(
    tx: &mut Tx<'_>,
    write: &ProvisionWrite,
) -> Result<ProvisionResult, StoreError> {
    let order = &write.order;
    let scope = Scope {
        partner_id: order.partner_id.clone(),
        environment: order.environment,
    };

    let charge = match write.charge {
        Charge::Sandbox { balance_cents } => Paid::Sandbox(balance_cents),
        Charge::Live {
            minimum_balance_cents,
        } => {
            let line = billing::charge_line(order);
            match move_balance(tx, &line, Some(minimum_balance_cents)).await? {
                Moved::Applied(balance_after, threshold) => {
                    announce_low_balance(tx, &line, balance_after, threshold, &order.currency)
                        .await?;
                    Paid::Live(line, balance_after)
                }
                Moved::BelowFloor(balance_cents) => {
                    // A retry that waited here for its first attempt, which spent the
                    // balance: that attempt's key is stored now, to replay.
                    if let Some(IdempotencyWrite::ClaimNew(claim)) = &write.idempotency {
                        if key_stored(tx, &scope, &claim.key).await? {
                            return Ok(ProvisionResult::KeyTaken);
                        }
                    }
                    return Ok(ProvisionResult::InsufficientBalance { balance_cents });
                }
            }
        }
    };

    // An ICCID from the stock: the eSIM and its event carry it instead.
    let stocked;
    let write = match &write.from_stock {
        None => write,
        Some(profile_type) => {
            let esim = &write.esim;
            let allocated = allocate(
                tx,
                esim.environment,
                profile_type,
                &esim.id,
                esim.created_at,
            )
            .await?;
            let Some(iccid) = allocated else {
                if let Some(IdempotencyWrite::ClaimNew(claim)) = &write.idempotency {
                    if key_stored(tx, &scope, &claim.key).await? {
                        return Ok(ProvisionResult::KeyTaken);
                    }
                }
                return Ok(ProvisionResult::OutOfStock);
            };
            let mut esim = write.esim.clone();
            esim.iccid = iccid;
            let event = oytel_core::webhooks::esim_event(
                oytel_types::EventType::EsimProvisioned,
                &esim,
                None,
                esim.created_at,
            );
            stocked = ProvisionWrite {
                esim,
                event,
                ..write.clone()
            };
            &stocked
        }
    };

    // A new key already stored: a concurrent request with the same key committed
    // first (on PostgreSQL, this statement waited for it).
    match insert_provision(tx, write, &charge).await {
        Ok(()) => {}
        Err(StoreError::Duplicate(UniqueField::IdempotencyKey)) => {
            return Ok(ProvisionResult::KeyTaken)
        }
        Err(e) => return Err(e),
    }

    if let Some(reservation) = &write.reservation {
        if !sell(tx, reservation, &write.esim.id, write.esim.created_at).await? {
            // Taken over by the reconciler: it puts the profile back; nothing is charged.
            return Ok(ProvisionResult::ReservationLost);
        }
    }

    if let Some(IdempotencyWrite::Complete(claim)) = &write.idempotency {
        let resource = ResourceRef::order(&order.id);
        if !complete_claim(tx, &scope, claim, &resource).await? {
            // Dropping the transaction rolls back the charge, the order and the eSIM.
            return Ok(ProvisionResult::ClaimLost);
        }
    }

    let balance_after_cents = charge.balance_after();
    Ok(match &write.from_stock {
        None => ProvisionResult::Committed {
            balance_after_cents,
        },
        Some(_) => ProvisionResult::CommittedFromStock {
            balance_after_cents,
            iccid: write.esim.iccid.clone(),
        },
    })
}

/// How a provisioning was paid for.
enum Paid {
    /// Sandbox: nothing moved; the balance shown.
    Sandbox(i64),
    /// Live: the charge's line, to write to the ledger, and the balance after it.
    Live(LedgerLine, i64),
}

impl Paid {
    fn balance_after(&self) -> i64 {
        match self {
            Paid::Sandbox(balance) | Paid::Live(_, balance) => *balance,
        }
    }
}

/// Writes a provisioning: the idempotency claim (when new), the charge's ledger row (when
/// live), the order, the eSIM and the event, in one statement that also lists the partner's
/// endpoints; then the event's deliveries. A sandbox order takes three round trips (begin,
/// this, commit) on its own, two in a batch (its savepoint, this). A new claim's key already
/// stored fails the statement with [`UniqueField::IdempotencyKey`].
async fn insert_provision(
    tx: &mut Tx<'_>,
    write: &ProvisionWrite,
    charge: &Paid,
) -> Result<(), StoreError> {
    let order = &write.order;
    let scope = Scope {
        partner_id: order.partner_id.clone(),
        environment: order.environment,
    };
    let resource = ResourceRef::order(&order.id);
    let package = &oytel_core::packages::first_package(order, &write.esim);
    let mut chain = Chain::new();
    if let Some(IdempotencyWrite::ClaimNew(claim)) = &write.idempotency {
        push_claim(chain.write(), &scope, claim, Some(&resource));
    }
    if let Paid::Live(line, balance_after) = charge {
        push_ledger_line(chain.write(), line, *balance_after);
    }
    push_order(chain.write(), order, charge.balance_after());
    push_esim(chain.write(), &write.esim);
    push_package(chain.write(), package);
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
                .push_bind(i64::from(order.term.months()))
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
            insert_provision(&mut tx, write, &Paid::Sandbox(balance)).await?;
        }
        tx.commit().await.map_err(db_error)
    }
}
