//! Health probes and the settings table: the reachability and write probes behind `/readyz`,
//! settings written once (the operator's first-run values), planner statistics, and the
//! figures the operator's metrics read at each scrape.

use chrono::{DateTime, Utc};
use oytel_core::ports::{Figures, StoreError};

use super::sql::begin_write;
use super::Store;
use crate::errors::db_error;

pub(super) async fn ping(store: &Store) -> Result<(), StoreError> {
    sqlx::query("SELECT 1")
        .execute(&store.reader)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn probe_write(store: &Store, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut tx = begin_write(store).await?;
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ('write_probe', $1) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(now.to_rfc3339())
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn set_setting_once(
    store: &Store,
    name: &str,
    value: &str,
) -> Result<bool, StoreError> {
    let result =
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&store.writer)
            .await
            .map_err(db_error)?;
    Ok(result.rows_affected() == 1)
}

impl Store {
    /// Refreshes the planner's statistics, as autovacuum does on a live database: after
    /// a bulk load (`seed`), PostgreSQL would otherwise plan an eSIM lookup by id over
    /// the partner's whole index.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE")
            .execute(&self.writer)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

pub(super) async fn figures(store: &Store, now: DateTime<Utc>) -> Result<Figures, StoreError> {
    let (pending, oldest): (i64, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending'")
            .fetch_one(&store.reader)
            .await
            .map_err(db_error)?;
    let low: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM balances \
         WHERE low_balance_cents IS NOT NULL AND balance_cents < low_balance_cents",
    )
    .fetch_one(&store.reader)
    .await
    .map_err(db_error)?;
    let disabled: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE enabled = $1")
            .bind(false)
            .fetch_one(&store.reader)
            .await
            .map_err(db_error)?;
    Ok(Figures {
        pending_deliveries: u64::try_from(pending).unwrap_or(0),
        oldest_pending_seconds: oldest
            .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0),
        partners_below_low_balance: u64::try_from(low).unwrap_or(0),
        disabled_endpoints: u64::try_from(disabled).unwrap_or(0),
        pools: store.pools(),
    })
}
