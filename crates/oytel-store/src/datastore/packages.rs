//! Packages and top-ups: the packages of an eSIM, a top-up bought (the claim, the charge,
//! the purchase, its effect and `esim.topped_up` in one transaction), and the start of a
//! queued package when the one in force ends. The rules are `oytel_core::packages`'s; the
//! eSIM row keeps the figures of the package in force, written here with the package's.

use chrono::{DateTime, Utc};
use oytel_core::billing;
use oytel_core::idempotency::{IdempotencyWrite, ResourceKind, ResourceRef};
use oytel_core::packages::{self, PackageRecord, Placement, TopUpRecord};
use oytel_core::ports::{Charge, EsimRecord, StoreError, TopUpResult, TopUpWrite, ToppedUp};
use oytel_core::{EsimStatus, Scope};
use oytel_types::{PackageKind, PackageState};
use sqlx::QueryBuilder;

use super::billing::{announce_low_balance, move_balance, push_ledger_line, Moved};
use super::esims::{lock_esim, Locked};
use super::idempotency::{claim_first, complete_claim};
use super::outbox::{fan_out, insert_event_row};
use super::sql::{begin_write, push_insert, Tx};
use super::{Db, Store};
use crate::errors::db_error;
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

/// Writes what changes of a package: its figures, state and dates.
pub(super) async fn save_package(
    tx: &mut Tx<'_>,
    package: &PackageRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE packages SET data_mb = $2, data_used_mb = $3, price_cents = $4, state = $5, \
         activated_at = $6, starts_at = $7, ends_at = $8, ended_at = $9, refund_reason = $10, \
         refunded_cents = $11 WHERE id = $1",
    )
    .bind(&package.id)
    .bind(to_i64(package.data_mb))
    .bind(to_i64(package.data_used_mb))
    .bind(package.price_cents)
    .bind(package.state.as_str())
    .bind(package.activated_at)
    .bind(package.starts_at)
    .bind(package.ends_at)
    .bind(package.ended_at)
    .bind(package.refund_reason.map(|r| r.as_str()))
    .bind(package.refunded_cents)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
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

/// Writes the eSIM row's copy of the package in force: its allowance, usage and end, the
/// usage thresholds announced, and the eSIM's state.
pub(super) async fn save_esim_figures(
    tx: &mut Tx<'_>,
    esim: &EsimRecord,
    thresholds_notified: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE esims SET status = $2, data_limit_mb = $3, data_used_mb = $4, expires_at = $5, \
         thresholds_notified = $6 WHERE id = $1",
    )
    .bind(&esim.id)
    .bind(esim.status.as_str())
    .bind(to_i64(esim.data_limit_mb))
    .bind(to_i64(esim.data_used_mb))
    .bind(esim.expires_at)
    .bind(thresholds_notified)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Puts `package` in force on `esim`: the eSIM row takes its figures, thresholds re-armed.
async fn put_in_force(
    tx: &mut Tx<'_>,
    esim: &mut EsimRecord,
    package: &PackageRecord,
) -> Result<(), StoreError> {
    esim.data_limit_mb = package.data_mb;
    esim.data_used_mb = package.data_used_mb;
    if let Some(ends_at) = package.ends_at {
        esim.expires_at = ends_at;
    }
    save_package(tx, package).await?;
    save_esim_figures(tx, esim, 0).await
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

pub(super) async fn top_up(store: &Store, write: &TopUpWrite) -> Result<TopUpResult, StoreError> {
    let mut tx = begin_write(store).await?;
    let mut purchase = write.purchase.clone();
    let Some(Locked {
        mut esim,
        thresholds_notified,
        ..
    }) = lock_esim(&mut tx, &purchase.esim_id).await?
    else {
        return Ok(TopUpResult::NotFound);
    };
    if esim.partner_id != write.scope.partner_id || esim.environment != write.scope.environment {
        return Ok(TopUpResult::NotFound);
    }
    let resource = ResourceRef {
        kind: ResourceKind::TopUp,
        id: purchase.id.clone(),
    };
    if !claim_first(&mut tx, &write.scope, write.idempotency.as_ref(), &resource).await? {
        return Ok(TopUpResult::KeyTaken);
    }
    let mut all = read_packages(&mut tx, &esim.id).await?;
    let queued = all
        .iter()
        .filter(|p| p.state == PackageState::Queued)
        .count();
    let placement = match packages::place_topup(&esim, queued, write.offer.kind) {
        Ok(placement) => placement,
        Err(why) => return Ok(TopUpResult::NotAllowed(why)),
    };

    let now = purchase.created_at;
    let charge = match write.charge {
        Charge::Sandbox { balance_cents } => {
            purchase.balance_after_cents = balance_cents;
            None
        }
        Charge::Live {
            minimum_balance_cents,
        } => {
            let line = billing::topup_charge_line(&purchase);
            match move_balance(&mut tx, &line, Some(minimum_balance_cents)).await? {
                Moved::Applied(after, threshold) => {
                    announce_low_balance(&mut tx, &line, after, threshold, &purchase.currency)
                        .await?;
                    purchase.balance_after_cents = after;
                    Some(line)
                }
                Moved::BelowFloor(balance_cents) => {
                    return Ok(TopUpResult::InsufficientBalance { balance_cents })
                }
            }
        }
    };

    let mut package = match placement {
        Placement::AddToInForce => {
            let Some(current) = all.iter_mut().find(|p| packages::in_force(p)) else {
                return Ok(TopUpResult::NotAllowed(format!(
                    "eSIM `{}` has no package in force to add data to",
                    esim.id
                )));
            };
            packages::add_data(current, purchase.data_mb, purchase.amount_cents);
            esim.data_limit_mb = current.data_mb;
            save_package(&mut tx, current).await?;
            let mask = oytel_core::webhooks::rearmed_thresholds(
                esim.data_used_mb,
                esim.data_limit_mb,
                thresholds_notified,
            );
            save_esim_figures(&mut tx, &esim, mask).await?;
            current.clone()
        }
        Placement::Queue | Placement::StartNow => {
            let term = write
                .offer
                .term
                .ok_or_else(|| StoreError::Other("a renewal without a term".into()))?;
            let position = all.iter().map(|p| p.position).max().unwrap_or(0) + 1;
            let mut package = packages::renewal(&esim, &purchase, term, position);
            let mut query = QueryBuilder::new("");
            push_package(&mut query, &package);
            query.build().execute(&mut *tx).await.map_err(db_error)?;
            if placement == Placement::StartNow {
                // An expired eSIM whose profile is installed: in force again at once.
                packages::start(&mut package, now, true);
                esim.status = EsimStatus::Active;
                put_in_force(&mut tx, &mut esim, &package).await?;
            }
            package
        }
    };
    purchase.package_id = package.id.clone();
    package.purchase_ids.push(purchase.id.clone());

    let mut query = QueryBuilder::new("");
    push_topup(&mut query, &purchase);
    query.build().execute(&mut *tx).await.map_err(db_error)?;
    if let Some(line) = &charge {
        let mut query = QueryBuilder::new("");
        push_ledger_line(&mut query, line, purchase.balance_after_cents);
        query.build().execute(&mut *tx).await.map_err(db_error)?;
    }
    let event = oytel_core::webhooks::topped_up_event(&esim, purchase.to_wire(), now);
    insert_event_row(&mut tx, &event).await?;
    fan_out(&mut tx, &event, esim.webhook_url.as_deref(), now).await?;
    if let Some(IdempotencyWrite::Complete(claim)) = &write.idempotency {
        if !complete_claim(&mut tx, &write.scope, claim, &resource).await? {
            return Ok(TopUpResult::ClaimLost);
        }
    }
    tx.commit().await.map_err(db_error)?;
    Ok(TopUpResult::Done(Box::new(ToppedUp { purchase, package })))
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
