//! Packages and top-ups: the packages of an eSIM, a top-up bought (the claim, the charge,
//! the purchase, its effect and `esim.topped_up` in one transaction), and the start of a
//! queued package when the one in force ends. The rules are `oytel_core::packages`'s; the
//! eSIM row keeps the figures of the package in force, written here with the package's.

use chrono::{DateTime, Utc};
use oytel_core::billing;
use oytel_core::idempotency::{IdempotencyWrite, ResourceKind, ResourceRef};
use oytel_core::packages::{self, PackageRecord, Placement, TopUpRecord};
use oytel_core::ports::{
    Charge, EsimRecord, StoreError, TopUpResult, TopUpWrite, ToppedUp, UniqueField,
};
use oytel_core::{EsimStatus, Scope};
use oytel_types::{PackageKind, PackageState};
use sqlx::QueryBuilder;

use super::billing::{announce_low_balance, move_balance, push_ledger_line, Moved};
use super::esims::{lock_esim, Locked};
use super::idempotency::{complete_claim, key_stored, push_claim};
use super::outbox::{fan_out_after, push_event};
use super::sql::{begin_write, push_insert, Chain, Tx};
use super::{Db, Store};
use crate::errors::db_error;
use crate::group_commit::{Done, Job};
use crate::rows::{topup_kind_text, PackageRow, TopUpRow};

/// The columns of a package row (`rows::PackageRow`).
const PACKAGE_COLUMNS: &str = "id, esim_id, position, kind, order_id, purchase_id, plan_id, \
    term_months, data_mb, data_used_mb, price_cents, state, activated_at, starts_at, ends_at, \
    ended_at, refund_reason, refunded_cents, created_at";

/// The columns of a top-up row (`rows::TopUpRow`).
const TOPUP_COLUMNS: &str = "id, partner_id, environment, esim_id, package_id, topup_id, kind, \
    data_mb, term_months, amount_cents, currency, balance_after_cents, request_id, created_at";

/// A connection of this backend, from a transaction or a pool.
type Conn = <Db as sqlx::Database>::Connection;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Pushes the insert of `package`.
pub(super) fn push_package<'a>(qb: &mut QueryBuilder<'a, Db>, package: &'a PackageRecord) {
    push_insert(
        qb,
        "packages (id, esim_id, position, kind, order_id, purchase_id, plan_id, term_months, \
         data_mb, data_used_mb, price_cents, state, activated_at, starts_at, ends_at, \
         ended_at, refund_reason, refunded_cents, created_at)",
        |v| {
            v.push_bind(&package.id)
                .push_bind(&package.esim_id)
                .push_bind(i64::from(package.position))
                .push_bind(match package.kind {
                    PackageKind::Plan => "plan",
                    PackageKind::Renewal => "renewal",
                })
                .push_bind(&package.order_id)
                .push_bind(&package.purchase_id)
                .push_bind(&package.plan_id)
                .push_bind(i64::from(package.term.months()))
                .push_bind(to_i64(package.data_mb))
                .push_bind(to_i64(package.data_used_mb))
                .push_bind(package.price_cents)
                .push_bind(package.state.as_str())
                .push_bind(package.activated_at)
                .push_bind(package.starts_at)
                .push_bind(package.ends_at)
                .push_bind(package.ended_at)
                .push_bind(package.refund_reason.map(|r| r.as_str()))
                .push_bind(package.refunded_cents)
                .push_bind(package.created_at);
        },
    );
}

/// Pushes the update of what changes of a package: its figures, state and dates.
fn push_save_package<'a>(qb: &mut QueryBuilder<'a, Db>, package: &'a PackageRecord) {
    qb.push("UPDATE packages SET data_mb = ")
        .push_bind(to_i64(package.data_mb))
        .push(", data_used_mb = ")
        .push_bind(to_i64(package.data_used_mb))
        .push(", price_cents = ")
        .push_bind(package.price_cents)
        .push(", state = ")
        .push_bind(package.state.as_str())
        .push(", activated_at = ")
        .push_bind(package.activated_at)
        .push(", starts_at = ")
        .push_bind(package.starts_at)
        .push(", ends_at = ")
        .push_bind(package.ends_at)
        .push(", ended_at = ")
        .push_bind(package.ended_at)
        .push(", refund_reason = ")
        .push_bind(package.refund_reason.map(|r| r.as_str()))
        .push(", refunded_cents = ")
        .push_bind(package.refunded_cents)
        .push(" WHERE id = ")
        .push_bind(&package.id);
}

/// Writes what changes of a package: its figures, state and dates.
pub(super) async fn save_package(
    tx: &mut Tx<'_>,
    package: &PackageRecord,
) -> Result<(), StoreError> {
    let mut query = QueryBuilder::new("");
    push_save_package(&mut query, package);
    query.build().execute(&mut **tx).await.map_err(db_error)?;
    Ok(())
}

/// The packages of an eSIM, the first first, each with the purchases that bought it or
/// added to it.
pub(super) async fn read_packages(
    conn: &mut Conn,
    esim_id: &str,
) -> Result<Vec<PackageRecord>, StoreError> {
    let rows: Vec<PackageRow> = sqlx::query_as(&format!(
        "SELECT {PACKAGE_COLUMNS} FROM packages WHERE esim_id = $1 ORDER BY position"
    ))
    .bind(esim_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut packages = rows
        .into_iter()
        .map(PackageRecord::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let purchases: Vec<(String, String)> =
        sqlx::query_as("SELECT id, package_id FROM topups WHERE esim_id = $1 ORDER BY seq")
            .bind(esim_id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
    for (purchase_id, package_id) in purchases {
        if let Some(p) = packages.iter_mut().find(|p| p.id == package_id) {
            p.purchase_ids.push(purchase_id);
        }
    }
    Ok(packages)
}

/// The top-up purchases of an eSIM, oldest first.
pub(super) async fn read_topups(
    tx: &mut Tx<'_>,
    esim_id: &str,
) -> Result<Vec<TopUpRecord>, StoreError> {
    let rows: Vec<TopUpRow> = sqlx::query_as(&format!(
        "SELECT {TOPUP_COLUMNS} FROM topups WHERE esim_id = $1 ORDER BY seq"
    ))
    .bind(esim_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    rows.into_iter().map(TopUpRecord::try_from).collect()
}

pub(super) async fn list_packages(
    store: &Store,
    esim_id: &str,
) -> Result<Vec<PackageRecord>, StoreError> {
    let mut conn = store.reader.acquire().await.map_err(db_error)?;
    read_packages(&mut conn, esim_id).await
}

/// Pushes the update of the eSIM row's copy of the package in force: its allowance, usage
/// and end, the usage thresholds announced, and the eSIM's state.
fn push_esim_figures<'a>(qb: &mut QueryBuilder<'a, Db>, esim: &'a EsimRecord, notified: i64) {
    qb.push("UPDATE esims SET status = ")
        .push_bind(esim.status.as_str())
        .push(", data_limit_mb = ")
        .push_bind(to_i64(esim.data_limit_mb))
        .push(", data_used_mb = ")
        .push_bind(to_i64(esim.data_used_mb))
        .push(", expires_at = ")
        .push_bind(esim.expires_at)
        .push(", thresholds_notified = ")
        .push_bind(notified)
        .push(" WHERE id = ")
        .push_bind(&esim.id);
}

/// Puts `package` in force on `esim`: the eSIM row takes its figures, thresholds re-armed.
async fn put_in_force(
    tx: &mut Tx<'_>,
    esim: &mut EsimRecord,
    package: &PackageRecord,
) -> Result<(), StoreError> {
    packages::put_in_force(esim, package);
    let mut query = QueryBuilder::new("");
    push_save_package(&mut query, package);
    query.build().execute(&mut **tx).await.map_err(db_error)?;
    let mut query = QueryBuilder::new("");
    push_esim_figures(&mut query, esim, 0);
    query.build().execute(&mut **tx).await.map_err(db_error)?;
    Ok(())
}

/// Ends the package in force of `esim` at `at` (expired, or depleted when followed early)
/// and starts the first queued package at `at`. Returns whether one started; when none is
/// queued, the package in force is left as it is.
pub(super) async fn start_next(
    tx: &mut Tx<'_>,
    esim: &mut EsimRecord,
    ended: PackageState,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut packages = read_packages(tx, &esim.id).await?;
    let Some(next) = packages
        .iter()
        .position(|p| p.state == PackageState::Queued)
    else {
        return Ok(false);
    };
    if let Some(current) = packages.iter_mut().find(|p| packages::in_force(p)) {
        packages::end(current, ended, at);
        save_package(tx, current).await?;
    }
    let next = &mut packages[next];
    packages::start(next, at, esim.activated_at.is_some());
    put_in_force(tx, esim, next).await?;
    Ok(true)
}

/// Ends the package in force of `esim` at `at` in `state`, if it has one.
pub(super) async fn end_in_force(
    tx: &mut Tx<'_>,
    esim_id: &str,
    state: PackageState,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE packages SET state = $2, ended_at = $3 WHERE esim_id = $1 \
         AND state IN ('active', 'depleted') AND ended_at IS NULL",
    )
    .bind(esim_id)
    .bind(state.as_str())
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Applies usage to the package in force of `esim` (whose row holds the new total) and, if
/// that depletes it while a package is queued, starts that one.
pub(super) async fn apply_usage(
    tx: &mut Tx<'_>,
    esim: &mut EsimRecord,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row: Option<PackageRow> = sqlx::query_as(&format!(
        "SELECT {PACKAGE_COLUMNS} FROM packages WHERE esim_id = $1 \
         AND state IN ('active', 'depleted') AND ended_at IS NULL"
    ))
    .bind(&esim.id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    let Some(mut package) = row.map(PackageRecord::try_from).transpose()? else {
        return Ok(());
    };
    package.data_used_mb = esim.data_used_mb;
    packages::after_usage(&mut package);
    save_package(tx, &package).await?;
    if package.state == PackageState::Depleted {
        start_next(tx, esim, PackageState::Depleted, now).await?;
    }
    Ok(())
}

/// A top-up: the eSIM locked and its packages read; then, worked out in memory, the charge
/// (live) and one chained statement with the claim, the package, the eSIM's figures, the
/// purchase, its ledger row and the event (as provisioning does), and the event's deliveries.
pub(super) async fn top_up(store: &Store, write: &TopUpWrite) -> Result<TopUpResult, StoreError> {
    if let Some(queue) = store.batched() {
        return match queue.submit(Job::TopUp(Box::new(write.clone()))).await {
            Some(Done::TopUp(result)) => result,
            _ => Err(crate::group_commit::not_written()),
        };
    }
    let mut tx = begin_write(store).await?;
    let result = top_up_in(&mut tx, write).await?;
    if result.committed() {
        tx.commit().await.map_err(db_error)?;
    }
    Ok(result)
}

/// A top-up's writes in `tx`, which the caller commits when the result says so
/// ([`TopUpResult::committed`]) and rolls back otherwise.
pub(super) async fn top_up_in(
    tx: &mut Tx<'_>,
    write: &TopUpWrite,
) -> Result<TopUpResult, StoreError> {
    let mut purchase = write.purchase.clone();
    let Some(Locked {
        mut esim,
        thresholds_notified,
        ..
    }) = lock_esim(tx, &purchase.esim_id).await?
    else {
        return Ok(TopUpResult::NotFound);
    };
    if esim.partner_id != write.scope.partner_id || esim.environment != write.scope.environment {
        return Ok(TopUpResult::NotFound);
    }
    let new_claim = match &write.idempotency {
        Some(IdempotencyWrite::ClaimNew(claim)) => Some(claim),
        _ => None,
    };
    let all = read_packages(tx, &esim.id).await?;
    let queued = all
        .iter()
        .filter(|p| p.state == PackageState::Queued)
        .count();
    let placement = match packages::place_topup(&esim, queued, write.offer.kind) {
        Ok(placement) => placement,
        Err(why) => return refused(tx, write, TopUpResult::NotAllowed(why)).await,
    };
    let now = purchase.created_at;
    let mut mask = thresholds_notified;
    let (mut package, new_package, figures_changed) = match placement {
        Placement::AddToInForce => {
            let Some(mut current) = all.into_iter().find(packages::in_force) else {
                let why = format!("eSIM `{}` has no package in force to add data to", esim.id);
                return refused(tx, write, TopUpResult::NotAllowed(why)).await;
            };
            packages::add_data(&mut current, purchase.data_mb, purchase.amount_cents);
            esim.data_limit_mb = current.data_mb;
            mask = oytel_core::webhooks::rearmed_thresholds(
                esim.data_used_mb,
                esim.data_limit_mb,
                thresholds_notified,
            );
            (current, false, true)
        }
        Placement::Queue | Placement::StartNow => {
            let term = write
                .offer
                .term
                .ok_or_else(|| StoreError::Other("a renewal without a term".into()))?;
            let position = all.iter().map(|p| p.position).max().unwrap_or(0) + 1;
            let mut package = packages::renewal(&esim, &purchase, term, position);
            let start_now = placement == Placement::StartNow;
            if start_now {
                // An expired eSIM whose profile is installed: in force again at once.
                packages::start(&mut package, now, true);
                esim.status = EsimStatus::Active;
                packages::put_in_force(&mut esim, &package);
                mask = 0;
            }
            (package, true, start_now)
        }
    };

    let charge = match write.charge {
        Charge::Sandbox { balance_cents } => {
            purchase.balance_after_cents = balance_cents;
            None
        }
        Charge::Live {
            minimum_balance_cents,
        } => {
            let line = billing::topup_charge_line(&purchase);
            match move_balance(tx, &line, Some(minimum_balance_cents)).await? {
                Moved::Applied(after, threshold) => {
                    announce_low_balance(tx, &line, after, threshold, &purchase.currency).await?;
                    purchase.balance_after_cents = after;
                    Some(line)
                }
                Moved::BelowFloor(balance_cents) => {
                    return refused(
                        tx,
                        write,
                        TopUpResult::InsufficientBalance { balance_cents },
                    )
                    .await
                }
            }
        }
    };

    purchase.package_id = package.id.clone();
    let resource = ResourceRef {
        kind: ResourceKind::TopUp,
        id: purchase.id.clone(),
    };
    let event = oytel_core::webhooks::topped_up_event(&esim, purchase.to_wire(), now);
    let mut chain = Chain::new();
    if let Some(claim) = new_claim {
        push_claim(chain.write(), &write.scope, claim, Some(&resource));
    }
    if new_package {
        push_package(chain.write(), &package);
    } else {
        push_save_package(chain.write(), &package);
    }
    if figures_changed {
        push_esim_figures(chain.write(), &esim, mask);
    }
    push_topup(chain.write(), &purchase);
    if let Some(line) = &charge {
        push_ledger_line(chain.write(), line, purchase.balance_after_cents);
    }
    push_event(chain.write(), &event);
    // A new claim's key already stored: a concurrent request with the same key committed
    // first (on PostgreSQL, this statement waited for it).
    match fan_out_after(tx, chain, &event, esim.webhook_url.as_deref(), now).await {
        Ok(_) => {}
        Err(StoreError::Duplicate(UniqueField::IdempotencyKey)) => {
            return Ok(TopUpResult::KeyTaken)
        }
        Err(e) => return Err(e),
    }
    if let Some(IdempotencyWrite::Complete(claim)) = &write.idempotency {
        if !complete_claim(tx, &write.scope, claim, &resource).await? {
            return Ok(TopUpResult::ClaimLost);
        }
    }
    package.purchase_ids.push(purchase.id.clone());
    Ok(TopUpResult::Done(Box::new(ToppedUp { purchase, package })))
}

/// `result`, a refusal, unless the request's new key is stored now: then it is a retry whose
/// first attempt committed (and changed what this one sees), to be answered by its replay.
async fn refused(
    tx: &mut Tx<'_>,
    write: &TopUpWrite,
    result: TopUpResult,
) -> Result<TopUpResult, StoreError> {
    if let Some(IdempotencyWrite::ClaimNew(claim)) = &write.idempotency {
        if key_stored(tx, &write.scope, &claim.key).await? {
            return Ok(TopUpResult::KeyTaken);
        }
    }
    Ok(result)
}

fn push_topup<'a>(qb: &mut QueryBuilder<'a, Db>, t: &'a TopUpRecord) {
    push_insert(
        qb,
        "topups (id, partner_id, environment, esim_id, package_id, topup_id, kind, data_mb, \
         term_months, amount_cents, currency, balance_after_cents, request_id, created_at)",
        |v| {
            v.push_bind(&t.id)
                .push_bind(&t.partner_id)
                .push_bind(t.environment.as_str())
                .push_bind(&t.esim_id)
                .push_bind(&t.package_id)
                .push_bind(&t.topup_id)
                .push_bind(topup_kind_text(t.kind))
                .push_bind(to_i64(t.data_mb))
                .push_bind(t.term.map(|term| i64::from(term.months())))
                .push_bind(t.amount_cents)
                .push_bind(&t.currency)
                .push_bind(t.balance_after_cents)
                .push_bind(&t.request_id)
                .push_bind(t.created_at);
        },
    );
}

/// The package `purchase` made or added to, as it is now.
async fn package_of(conn: &mut Conn, purchase: &TopUpRecord) -> Result<PackageRecord, StoreError> {
    read_packages(conn, &purchase.esim_id)
        .await?
        .into_iter()
        .find(|p| p.id == purchase.package_id)
        .ok_or_else(|| StoreError::Other(format!("package {} is missing", purchase.package_id)))
}

pub(super) async fn get_topup(
    store: &Store,
    scope: &Scope,
    purchase_id: &str,
) -> Result<Option<ToppedUp>, StoreError> {
    let mut conn = store.reader.acquire().await.map_err(db_error)?;
    let row: Option<TopUpRow> = sqlx::query_as(&format!(
        "SELECT {TOPUP_COLUMNS} FROM topups WHERE id = $1 AND partner_id = $2 AND environment = $3"
    ))
    .bind(purchase_id)
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let Some(purchase) = row.map(TopUpRecord::try_from).transpose()? else {
        return Ok(None);
    };
    let package = package_of(&mut conn, &purchase).await?;
    Ok(Some(ToppedUp { purchase, package }))
}
