//! API keys, stored as hashes, and the auth epoch: a revocation or a limit change bumps the
//! epoch and waits until every live instance serves it (`await_leases`), so that no instance
//! keeps accepting a revoked key from its cache.

use chrono::{DateTime, Utc};
use oytel_core::ports::{ApiKeyInfo, KeyOwner, NewApiKey, StoreError};

use super::partners::overrides;
use super::{Store, DIALECT};
use crate::errors::db_error;
use crate::rows::{environment, ApiKeyRow};

pub(super) async fn create_api_key(store: &Store, key: &NewApiKey) -> Result<(), StoreError> {
    let result = sqlx::query(
        "INSERT INTO api_keys (id, partner_id, environment, key_hash, hint, created_at) \
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM partners WHERE id = $2)",
    )
    .bind(&key.id)
    .bind(&key.partner_id)
    .bind(key.environment.as_str())
    .bind(&key.hash)
    .bind(&key.hint)
    .bind(key.created_at)
    .execute(&store.writer)
    .await
    .map_err(db_error)?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound("partner"));
    }
    Ok(())
}

pub(super) async fn find_api_key(
    store: &Store,
    hash: &str,
) -> Result<Option<KeyOwner>, StoreError> {
    type Row = (
        String,
        String,
        String,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT k.id, k.partner_id, k.environment, k.revoked_at, k.expires_at, p.provision_per_hour, \
         p.status_per_hour, p.burst_per_second FROM api_keys k \
         JOIN partners p ON p.id = k.partner_id WHERE k.key_hash = $1",
    )
    .bind(hash)
    .fetch_optional(&store.reader)
    .await
    .map_err(db_error)?;
    row.map(
        |(key_id, partner_id, env, revoked_at, expires_at, provision, status, burst)| {
            Ok(KeyOwner {
                key_id,
                partner_id,
                environment: environment(&env)?,
                revoked: revoked_at.is_some(),
                expires_at,
                limits: overrides(provision, status, burst),
            })
        },
    )
    .transpose()
}

pub(super) async fn list_api_keys(
    store: &Store,
    partner_id: &str,
) -> Result<Vec<ApiKeyInfo>, StoreError> {
    let rows: Vec<ApiKeyRow> = sqlx::query_as(
        "SELECT id, partner_id, environment, hint, created_at, revoked_at, expires_at FROM api_keys \
         WHERE partner_id = $1 ORDER BY created_at, id",
    )
    .bind(partner_id)
    .fetch_all(&store.reader)
    .await
    .map_err(db_error)?;
    rows.into_iter().map(ApiKeyInfo::try_from).collect()
}

pub(super) async fn expire_api_key(
    store: &Store,
    key_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // Only ever earlier: a key whose grace has run out (or runs out sooner) is not revived.
    change_active_key(store, "expires_at", key_id, at).await
}

pub(super) async fn revoke_api_key(
    store: &Store,
    key_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    change_active_key(store, "revoked_at", key_id, now).await
}

/// Sets `column` (`revoked_at` or `expires_at`) to `at` on a key not revoked yet and not
/// expired by then, then waits until every instance serves the epoch the change bumped.
/// Whether there was such a key.
async fn change_active_key(
    store: &Store,
    column: &str,
    key_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(&format!(
        "UPDATE api_keys SET {column} = $2 WHERE id = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2)"
    ))
    .bind(key_id)
    .bind(at)
    .execute(&store.writer)
    .await
    .map_err(db_error)?;
    await_leases(store).await?;
    Ok(result.rows_affected() == 1)
}

pub(super) async fn renew_epoch_lease(
    store: &Store,
    instance_id: &str,
    serving_epoch: i64,
    lease: std::time::Duration,
) -> Result<(), StoreError> {
    sqlx::query(
        &[
            "INSERT INTO instance_leases (instance_id, serving_epoch, lease_until_ms) \
         VALUES ($1, $2, ",
            DIALECT.now_ms,
            " + $3) ON CONFLICT (instance_id) DO UPDATE SET \
         serving_epoch = excluded.serving_epoch, lease_until_ms = excluded.lease_until_ms",
        ]
        .concat(),
    )
    .bind(instance_id)
    .bind(serving_epoch)
    .bind(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .execute(&store.writer)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn release_epoch_lease(
    store: &Store,
    instance_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM instance_leases WHERE instance_id = $1")
        .bind(instance_id)
        .execute(&store.writer)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn auth_epoch(store: &Store) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT value FROM auth_epoch WHERE id = 1")
        .fetch_one(&store.reader)
        .await
        .map_err(db_error)
}

/// Waits until every instance holding a live lease on the auth epoch serves the
/// current epoch or later, or its lease has run out (a lease is a few seconds).
/// Called after a change that bumped the epoch has committed.
pub(super) async fn await_leases(store: &Store) -> Result<(), StoreError> {
    let epoch = auth_epoch(store).await?;
    loop {
        let behind: i64 = sqlx::query_scalar(
            &[
                "SELECT COUNT(*) FROM instance_leases WHERE serving_epoch < $1 \
             AND lease_until_ms > ",
                DIALECT.now_ms,
            ]
            .concat(),
        )
        .bind(epoch)
        .fetch_one(&store.reader)
        .await
        .map_err(db_error)?;
        if behind == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
