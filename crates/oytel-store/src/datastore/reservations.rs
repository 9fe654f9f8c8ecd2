//! Profile reservations at an SM-DP+: the saga's journal (`oytel_core::profiles`). Every
//! change is conditional on the state it moves from, so the request and the reconciler never
//! both act on one reservation; the provisioning transaction sells one (`sell`).

use chrono::{DateTime, Utc};
use oytel_core::ports::StoreError;
use oytel_core::profiles::{Reservation, ReservationState};

use super::sql::Tx;
use super::Store;
use crate::errors::db_error;
use crate::rows::{reservation_state, ReservationRow};

const COLUMNS: &str = "id, partner_id, environment, profile_type, state, iccid, matching_id, \
    smdp_address, esim_id, attempts, last_error, created_at, updated_at, next_attempt_at, retire";

/// The columns a reservation's progress changes, bound first (`$1` to `$10`) by both writes.
const PROGRESS: &str = "state, iccid, matching_id, smdp_address, esim_id, attempts, \
    last_error, updated_at, next_attempt_at, retire";

type Query<'q> = sqlx::query::Query<'q, super::Db, <super::Db as sqlx::Database>::Arguments<'q>>;

fn bind_progress<'q>(query: Query<'q>, r: &'q Reservation) -> Query<'q> {
    query
        .bind(r.state.as_str())
        .bind(&r.iccid)
        .bind(&r.matching_id)
        .bind(&r.smdp_address)
        .bind(&r.esim_id)
        .bind(i64::from(r.attempts))
        .bind(&r.last_error)
        .bind(r.updated_at)
        .bind(r.next_attempt_at)
        .bind(r.retire)
}

pub(super) async fn create_reservation(store: &Store, r: &Reservation) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO profile_reservations ({PROGRESS}, id, partner_id, environment, \
         profile_type, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    bind_progress(sqlx::query(&sql), r)
        .bind(&r.id)
        .bind(&r.scope.partner_id)
        .bind(r.scope.environment.as_str())
        .bind(&r.profile_type)
        .bind(r.created_at)
        .execute(&store.writer)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn advance_reservation(
    store: &Store,
    r: &Reservation,
    from: ReservationState,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE profile_reservations \
         SET ({PROGRESS}) = ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         WHERE id = $11 AND state = $12"
    );
    let done = bind_progress(sqlx::query(&sql), r)
        .bind(&r.id)
        .bind(from.as_str())
        .execute(&store.writer)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Marks a `released` reservation sold with `esim_id`, inside the provisioning transaction;
/// whether it was still `released`.
pub(super) async fn sell(
    tx: &mut Tx<'_>,
    reservation_id: &str,
    esim_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE profile_reservations SET state = $1, esim_id = $2, updated_at = $3 \
         WHERE id = $4 AND state = $5",
    )
    .bind(ReservationState::Sold.as_str())
    .bind(esim_id)
    .bind(now)
    .bind(reservation_id)
    .bind(ReservationState::Released.as_str())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

/// Marks the sold reservation of a cancelled eSIM to be retired at the SM-DP+ by the
/// reconciler, inside the cancellation's transaction.
pub(super) async fn retire_sold(
    tx: &mut Tx<'_>,
    esim_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE profile_reservations SET state = $1, retire = $2, updated_at = $3, \
         next_attempt_at = $3 WHERE esim_id = $4 AND state = $5",
    )
    .bind(ReservationState::Cancelling.as_str())
    .bind(true)
    .bind(now)
    .bind(esim_id)
    .bind(ReservationState::Sold.as_str())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn due_reservations(
    store: &Store,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Reservation>, StoreError> {
    let rows: Vec<ReservationRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM profile_reservations \
         WHERE (state IN ($1, $2, $3) AND updated_at < $4) \
            OR (state = $5 AND (next_attempt_at IS NULL OR next_attempt_at <= $6)) \
         ORDER BY updated_at LIMIT $7"
    ))
    .bind(ReservationState::Ordering.as_str())
    .bind(ReservationState::Ordered.as_str())
    .bind(ReservationState::Released.as_str())
    .bind(stale_before)
    .bind(ReservationState::Cancelling.as_str())
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&store.reader)
    .await
    .map_err(db_error)?;
    rows.into_iter().map(Reservation::try_from).collect()
}

pub(super) async fn reservation_counts(
    store: &Store,
) -> Result<Vec<(ReservationState, u64)>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, COUNT(*) FROM profile_reservations GROUP BY state ORDER BY state",
    )
    .fetch_all(&store.reader)
    .await
    .map_err(db_error)?;
    rows.into_iter()
        .map(|(state, n)| Ok((reservation_state(&state)?, u64::try_from(n).unwrap_or(0))))
        .collect()
}
