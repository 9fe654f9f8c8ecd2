//! Health probes and the settings table: the reachability and write probes behind `/readyz`,
//! settings written once (the operator's first-run values), and planner statistics.

use chrono::{DateTime, Utc};
use oytel_core::ports::StoreError;

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
