//! Webhook deliveries: the claim of due deliveries by the dispatcher's lanes, their attempts,
//! and the disabling of endpoints that keep failing.

use chrono::{DateTime, Utc};
use oytel_core::numbers::new_id;
use oytel_core::ports::{
    AttemptOutcome, AttemptRecord, AttemptResult, ClaimLimits, DueDelivery, PageRequest, Sequenced,
    SigningSecret, StoreError,
};
use oytel_core::Scope;
use sqlx::QueryBuilder;

use super::sql::{begin_write, fetch_page, Chain, Tx};
use super::{Db, Store, DIALECT};
use crate::errors::db_error;
use crate::rows::AttemptRow;

/// The state an attempt leaves its delivery in: status, and when to try next.
pub(super) fn after_attempt(outcome: &AttemptOutcome) -> (&'static str, Option<DateTime<Utc>>) {
    use oytel_types::DeliveryStatus;
    let (status, next_attempt_at) = match outcome.result {
        AttemptResult::Delivered => (DeliveryStatus::Delivered, None),
        AttemptResult::Retry { next_attempt_at } => {
            (DeliveryStatus::Pending, Some(next_attempt_at))
        }
        AttemptResult::GiveUp | AttemptResult::Gone => (DeliveryStatus::Failed, None),
    };
    (status.as_str(), next_attempt_at)
}

/// Writes a run of attempts in one statement: each delivery's new state, the attempts'
/// rows (in the order given, which is the log's order), and the end of the failure
/// streak of each endpoint a delivery succeeded to. Failures of endpoints are left to
/// the caller.
pub(super) async fn write_attempts(
    tx: &mut Tx<'_>,
    run: &[&AttemptOutcome],
) -> Result<(), StoreError> {
    if run.is_empty() {
        return Ok(());
    }
    let mut chain = Chain::new();
    for outcome in run {
        let (status, next_attempt_at) = after_attempt(outcome);
        chain
            .write()
            .push("UPDATE deliveries SET status = ")
            .push_bind(status)
            .push(", attempts = ")
            .push_bind(i64::from(outcome.attempt))
            .push(", next_attempt_at = ")
            .push_bind(next_attempt_at)
            .push(", locked_until = NULL, last_status_code = ")
            .push_bind(outcome.status_code.map(i64::from))
            // In SQL rather than chosen here, so that a round's statement has the same
            // text (and prepared statement) whatever its attempts' results.
            .push(", delivered_at = CASE WHEN ")
            .push_bind(status)
            .push(" = 'delivered' THEN ")
            .push_bind(outcome.at)
            .push(" ELSE delivered_at END")
            .push(" WHERE id = ")
            .push_bind(&outcome.delivery_id)
            .push(" AND status = 'pending'");
    }
    chain
        .write()
        .push(
            "INSERT INTO delivery_attempts (id, delivery_id, attempt, status_code, \
             duration_ms, error, next_attempt_at, delivery_status, created_at) ",
        )
        .push_values(run, |mut row, outcome| {
            let (status, next_attempt_at) = after_attempt(outcome);
            row.push_bind(new_id("att"))
                .push_bind(&outcome.delivery_id)
                .push_bind(i64::from(outcome.attempt))
                .push_bind(outcome.status_code.map(i64::from))
                .push_bind(i64::try_from(outcome.duration_ms).unwrap_or(i64::MAX))
                .push_bind(&outcome.error)
                .push_bind(next_attempt_at)
                .push_bind(status)
                .push_bind(outcome.at);
        });
    let mut cleared: Vec<&str> = Vec::new();
    for outcome in run {
        if let (AttemptResult::Delivered, Some(id)) = (&outcome.result, &outcome.endpoint_id) {
            if !cleared.contains(&id.as_str()) {
                cleared.push(id);
            }
        }
    }
    if !cleared.is_empty() {
        let update = chain.write();
        update.push("UPDATE webhook_endpoints SET failing_since = NULL WHERE id IN (");
        let mut ids = update.separated(", ");
        for id in cleared {
            ids.push_bind(id);
        }
        ids.push_unseparated(")");
    }
    chain.execute(tx).await
}

/// Disables an endpoint and cancels its pending deliveries.
pub(super) async fn disable_endpoint(
    tx: &mut Tx<'_>,
    endpoint_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, updated_at = $4 \
         WHERE id = $1 AND enabled = $5",
    )
    .bind(endpoint_id)
    .bind(false)
    .bind(reason)
    .bind(now)
    .bind(true)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    cancel_pending(tx, endpoint_id, None).await
}

/// Cancels an endpoint's pending deliveries.
/// With `owner`, only if the endpoint is that partner's in that environment.
pub(super) async fn cancel_pending(
    tx: &mut Tx<'_>,
    endpoint_id: &str,
    owner: Option<&Scope>,
) -> Result<(), StoreError> {
    let query = match owner {
        None => sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', locked_until = NULL \
             WHERE endpoint_id = $1 AND status = 'pending'",
        )
        .bind(endpoint_id),
        Some(scope) => sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', locked_until = NULL \
             WHERE endpoint_id = $1 AND status = 'pending' AND partner_id = $2 \
             AND environment = $3",
        )
        .bind(endpoint_id)
        .bind(&scope.partner_id)
        .bind(scope.environment.as_str()),
    };
    query.execute(&mut **tx).await.map_err(db_error)?;
    Ok(())
}

pub(super) async fn claim_due_deliveries(
    store: &Store,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limits: ClaimLimits,
) -> Result<Vec<DueDelivery>, StoreError> {
    // One claim at a time: each must see the leases of the one before, or two
    // workers could both find a destination free (on PostgreSQL a statement's
    // snapshot predates a concurrent claim's commit; SQLite's write lock already
    // serialises).
    let mut tx = begin_write(store).await?;
    if !DIALECT.serialize_claims.is_empty() {
        sqlx::query(DIALECT.serialize_claims)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    // The rules are the port's table: `busy` destinations are skipped, `free`
    // numbers each other destination's deliveries oldest first, `heads` gives
    // each partner's destinations turns after the ones it `held` already, and
    // `chosen` takes destinations by turn. Joins rather than correlated
    // subqueries, so that the plan stays linear in the due deliveries.
    let mut claimed: Vec<(i64, String, String, Option<String>, String, i64)> = sqlx::query_as(
        &[
            "WITH due AS (SELECT seq, url, partner_id, next_attempt_at, locked_until \
           FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1), \
         busy AS (SELECT DISTINCT url, partner_id FROM due WHERE locked_until > $1), \
         held AS (SELECT partner_id, COUNT(*) AS n FROM busy GROUP BY partner_id), \
         free AS (SELECT seq, url, partner_id, next_attempt_at, \
           ROW_NUMBER() OVER (PARTITION BY url ORDER BY seq) AS place FROM due \
           WHERE NOT EXISTS (SELECT 1 FROM busy b WHERE b.url = due.url)), \
         heads AS (SELECT f.url, f.seq, f.next_attempt_at, \
           ROW_NUMBER() OVER (PARTITION BY f.partner_id ORDER BY f.next_attempt_at, f.seq) \
           + COALESCE(h.n, 0) AS turn \
           FROM free f LEFT JOIN held h ON h.partner_id = f.partner_id WHERE f.place = 1), \
         chosen AS (SELECT url FROM heads WHERE turn <= $5 \
           ORDER BY turn, next_attempt_at, seq LIMIT $3), \
         picked AS (SELECT d.seq FROM deliveries d JOIN free f ON f.seq = d.seq \
           JOIN chosen c ON c.url = f.url WHERE f.place <= $4 AND d.status = 'pending' \
           AND (d.locked_until IS NULL OR d.locked_until <= $1)",
            DIALECT.skip_locked,
            ") UPDATE deliveries SET locked_until = $2 WHERE seq IN (SELECT seq FROM picked) \
         AND status = 'pending' AND (locked_until IS NULL OR locked_until <= $1) \
         RETURNING seq, id, event_id, endpoint_id, url, attempts",
        ]
        .concat(),
    )
    .bind(now)
    .bind(lease_until)
    .bind(i64::from(limits.destinations))
    .bind(i64::from(limits.per_destination))
    .bind(i64::from(limits.per_partner))
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    // In the order the deliveries were created (RETURNING promises no order).
    claimed.sort_by_key(|row| row.0);
    let mut due = Vec::with_capacity(claimed.len());
    for (_, id, event_id, endpoint_id, url, attempts) in claimed {
        type Secrets = (
            String,
            Option<String>,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<String>,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<String>,
        );
        let row: Option<Secrets> = sqlx::query_as(
            "SELECT e.payload, w.secret, w.previous_secret, w.previous_secret_expires_at, \
             s.secret, s.previous_secret, s.previous_secret_expires_at, e.traceparent \
             FROM deliveries d JOIN events e ON e.id = d.event_id \
             LEFT JOIN webhook_endpoints w ON w.id = d.endpoint_id \
             LEFT JOIN signing_secrets s ON s.partner_id = d.partner_id \
             AND s.environment = d.environment WHERE d.id = $1",
        )
        .bind(&id)
        .fetch_optional(&store.reader)
        .await
        .map_err(db_error)?;
        let Some((payload, w_secret, w_prev, w_until, s_secret, s_prev, s_until, traceparent)) =
            row
        else {
            continue;
        };
        let secrets = match (&endpoint_id, w_secret, s_secret) {
            (Some(_), Some(secret), _) => SigningSecret {
                secret,
                previous_secret: w_prev,
                previous_secret_expires_at: w_until,
            },
            (None, _, Some(secret)) => SigningSecret {
                secret,
                previous_secret: s_prev,
                previous_secret_expires_at: s_until,
            },
            // The endpoint was deleted meanwhile: its deliveries are cancelled.
            _ => continue,
        };
        // A corrupt count is not read as 0 (that would restart its retry schedule); the
        // delivery is left out, loudly, and the others go out.
        let Ok(attempts) = u32::try_from(attempts) else {
            tracing::error!(delivery_id = %id, attempts, "corrupt row: a delivery's attempt count is out of range; it is not sent");
            continue;
        };
        due.push(DueDelivery {
            id,
            event_id,
            endpoint_id,
            url,
            attempts,
            payload,
            secrets,
            traceparent,
        });
    }
    Ok(due)
}

pub(super) async fn release_deliveries(
    store: &Store,
    delivery_ids: &[String],
    lease_until: DateTime<Utc>,
) -> Result<(), StoreError> {
    if delivery_ids.is_empty() {
        return Ok(());
    }
    let mut query: QueryBuilder<'_, Db> =
        QueryBuilder::new("UPDATE deliveries SET locked_until = NULL WHERE locked_until = ");
    query.push_bind(lease_until);
    query.push(" AND status = 'pending' AND id IN (");
    let mut ids = query.separated(", ");
    for id in delivery_ids {
        ids.push_bind(id);
    }
    query.push(")");
    query
        .build()
        .execute(&store.writer)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn record_attempts(
    store: &Store,
    outcomes: &[AttemptOutcome],
    disable_after: chrono::Duration,
) -> Result<(), StoreError> {
    let mut tx = begin_write(store).await?;
    // The writes go in chains: one round trip for a run of attempts, broken only
    // where an endpoint's failure must be read back to decide on disabling it.
    let mut run: Vec<&AttemptOutcome> = Vec::new();
    for outcome in outcomes {
        // A delivery's second attempt in one call goes after its first (on
        // PostgreSQL, one statement cannot update a row twice).
        if run.iter().any(|o| o.delivery_id == outcome.delivery_id) {
            write_attempts(&mut tx, &run).await?;
            run.clear();
        }
        run.push(outcome);
        let Some(endpoint_id) = &outcome.endpoint_id else {
            continue;
        };
        if let AttemptResult::Delivered = outcome.result {
            continue;
        }
        // The run so far first: a success before this failure ends the streak
        // this failure then starts.
        write_attempts(&mut tx, &run).await?;
        run.clear();
        if let AttemptResult::Gone = outcome.result {
            disable_endpoint(
                &mut tx,
                endpoint_id,
                "the endpoint answered 410 Gone",
                outcome.at,
            )
            .await?;
            continue;
        }
        let since: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) \
             WHERE id = $1 RETURNING failing_since",
        )
        .bind(endpoint_id)
        .bind(outcome.at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        if let Some(Some(since)) = since {
            if outcome.at - since >= disable_after {
                let reason = format!("every delivery has failed since {}", since.to_rfc3339());
                disable_endpoint(&mut tx, endpoint_id, &reason, outcome.at).await?;
            }
        }
    }
    write_attempts(&mut tx, &run).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(())
}

pub(super) async fn list_attempts(
    store: &Store,
    scope: &Scope,
    endpoint_id: Option<String>,
    page: PageRequest,
) -> Result<Vec<Sequenced<AttemptRecord>>, StoreError> {
    let mut query: QueryBuilder<'_, Db> = QueryBuilder::new(
        "SELECT a.seq, a.id, a.delivery_id, d.event_id, e.event_type, d.url, a.attempt, \
         a.status_code, a.duration_ms, a.error, a.next_attempt_at, a.delivery_status, \
         a.created_at FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
         JOIN events e ON e.id = d.event_id WHERE d.partner_id = ",
    );
    query.push_bind(&scope.partner_id);
    query.push(" AND d.environment = ");
    query.push_bind(scope.environment.as_str());
    if let Some(endpoint_id) = &endpoint_id {
        query.push(" AND d.endpoint_id = ");
        query.push_bind(endpoint_id);
    }
    fetch_page::<AttemptRow, _>(query, "a.seq", page, &store.reader).await
}
