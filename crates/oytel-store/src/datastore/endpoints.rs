//! Webhook endpoints and signing secrets (per endpoint, and one per partner and environment
//! for per-eSIM `webhook_url`s).

use chrono::{DateTime, Utc};
use oytel_core::ports::{EndpointRecord, SigningSecret, StoreError};
use oytel_core::Scope;

use super::deliveries::cancel_pending;
use super::sql::{begin_write, fetch_scoped_by_id};
use super::{Db, Store};
use crate::errors::db_error;
use crate::rows::{event_types_text, EndpointRow, SecretRow};

/// The columns of an endpoint row (`rows::EndpointRow`).
const ENDPOINT_COLUMNS: &str = "seq, id, partner_id, environment, url, description, \
    event_types, secret, previous_secret, previous_secret_expires_at, enabled, \
    disabled_reason, failing_since, created_at, updated_at";

/// Binds an endpoint's columns as `$1` to `$14`, in the order of `ENDPOINT_COLUMNS`
/// (without `seq`), for both writing statements.
pub(super) fn bind_endpoint<'q>(
    query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
    e: &'q EndpointRecord,
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>> {
    query
        .bind(&e.id)
        .bind(&e.partner_id)
        .bind(e.environment.as_str())
        .bind(&e.url)
        .bind(&e.description)
        .bind(event_types_text(&e.event_types))
        .bind(&e.secret)
        .bind(&e.previous_secret)
        .bind(e.previous_secret_expires_at)
        .bind(e.enabled)
        .bind(&e.disabled_reason)
        .bind(e.failing_since)
        .bind(e.created_at)
        .bind(e.updated_at)
}

pub(super) async fn create_endpoint(store: &Store, e: &EndpointRecord) -> Result<(), StoreError> {
    bind_endpoint(
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, partner_id, environment, url, description, \
             event_types, secret, previous_secret, previous_secret_expires_at, enabled, \
             disabled_reason, failing_since, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        ),
        e,
    )
    .execute(&store.writer)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn list_endpoints(
    store: &Store,
    scope: &Scope,
) -> Result<Vec<EndpointRecord>, StoreError> {
    let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
         WHERE partner_id = $1 AND environment = $2 ORDER BY seq"
    ))
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .fetch_all(&store.reader)
    .await
    .map_err(db_error)?;
    rows.into_iter().map(EndpointRecord::try_from).collect()
}

pub(super) async fn get_endpoint(
    store: &Store,
    scope: &Scope,
    endpoint_id: &str,
) -> Result<Option<EndpointRecord>, StoreError> {
    fetch_scoped_by_id::<EndpointRow, _>(
        ENDPOINT_COLUMNS,
        "webhook_endpoints",
        scope,
        endpoint_id,
        &store.reader,
    )
    .await
}

pub(super) async fn update_endpoint(store: &Store, e: &EndpointRecord) -> Result<bool, StoreError> {
    let mut tx = begin_write(store).await?;
    // Deliveries before the endpoint, in the order the delivery worker locks them:
    // the opposite order can deadlock with it on PostgreSQL.
    if !e.enabled {
        let owner = Scope {
            partner_id: e.partner_id.clone(),
            environment: e.environment,
        };
        cancel_pending(&mut tx, &e.id, Some(&owner)).await?;
    }
    let changed = bind_endpoint(
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $4, description = $5, event_types = $6, \
             secret = $7, previous_secret = $8, previous_secret_expires_at = $9, \
             enabled = $10, disabled_reason = $11, failing_since = $12, \
             created_at = $13, updated_at = $14 \
             WHERE id = $1 AND partner_id = $2 AND environment = $3",
        ),
        e,
    )
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    if changed.rows_affected() == 0 {
        return Ok(false);
    }
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

pub(super) async fn delete_endpoint(
    store: &Store,
    scope: &Scope,
    endpoint_id: &str,
) -> Result<bool, StoreError> {
    let mut tx = begin_write(store).await?;
    // Deliveries first, as in `update_endpoint`.
    cancel_pending(&mut tx, endpoint_id, Some(scope)).await?;
    let deleted = sqlx::query(
        "DELETE FROM webhook_endpoints WHERE id = $1 AND partner_id = $2 AND environment = $3",
    )
    .bind(endpoint_id)
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

pub(super) async fn esim_signing_secret(
    store: &Store,
    scope: &Scope,
    candidate: &str,
) -> Result<SigningSecret, StoreError> {
    sqlx::query(
        "INSERT INTO signing_secrets (partner_id, environment, secret) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .bind(candidate)
    .execute(&store.writer)
    .await
    .map_err(db_error)?;
    let row: SecretRow = sqlx::query_as(
        "SELECT secret, previous_secret, previous_secret_expires_at FROM signing_secrets \
         WHERE partner_id = $1 AND environment = $2",
    )
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .fetch_one(&store.writer)
    .await
    .map_err(db_error)?;
    Ok(row.into())
}

pub(super) async fn rotate_esim_signing_secret(
    store: &Store,
    scope: &Scope,
    new_secret: &str,
    previous_expires_at: DateTime<Utc>,
) -> Result<SigningSecret, StoreError> {
    let row: SecretRow = sqlx::query_as(
        "INSERT INTO signing_secrets (partner_id, environment, secret) VALUES ($1, $2, $3) \
         ON CONFLICT (partner_id, environment) DO UPDATE SET \
         previous_secret = signing_secrets.secret, \
         previous_secret_expires_at = $4, secret = excluded.secret \
         RETURNING secret, previous_secret, previous_secret_expires_at",
    )
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .bind(new_secret)
    .bind(previous_expires_at)
    .fetch_one(&store.writer)
    .await
    .map_err(db_error)?;
    Ok(row.into())
}
