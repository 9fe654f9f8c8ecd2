//! Partners: the wholesale customers, and the rate limits an operator raised for them.

use oytel_core::limits::LimitOverrides;
use oytel_core::ports::{Partner, StoreError};

use super::keys::await_leases;
use super::sql::begin_write;
use super::Store;
use crate::errors::db_error;
use crate::rows::PartnerRow;

/// Limits as stored (NULL: the default).
pub(super) fn overrides(
    provision: Option<i64>,
    status: Option<i64>,
    burst: Option<i64>,
) -> LimitOverrides {
    let limit = |v: Option<i64>| v.and_then(|n| u32::try_from(n).ok());
    LimitOverrides {
        provision_per_hour: limit(provision),
        status_per_hour: limit(status),
        burst_per_second: limit(burst),
    }
}

pub(super) async fn create_partner(store: &Store, partner: &Partner) -> Result<(), StoreError> {
    let mut tx = begin_write(store).await?;
    sqlx::query("INSERT INTO partners (id, name, email, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&partner.id)
        .bind(&partner.name)
        .bind(&partner.email)
        .bind(partner.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    sqlx::query("INSERT INTO balances (partner_id, balance_cents) VALUES ($1, 0)")
        .bind(&partner.id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

pub(super) async fn get_partner(
    store: &Store,
    partner_id: &str,
) -> Result<Option<Partner>, StoreError> {
    let row: Option<PartnerRow> =
        sqlx::query_as("SELECT id, name, email, created_at FROM partners WHERE id = $1")
            .bind(partner_id)
            .fetch_optional(&store.reader)
            .await
            .map_err(db_error)?;
    Ok(row.map(Partner::from))
}

pub(super) async fn list_partners(store: &Store) -> Result<Vec<Partner>, StoreError> {
    let rows: Vec<PartnerRow> =
        sqlx::query_as("SELECT id, name, email, created_at FROM partners ORDER BY seq")
            .fetch_all(&store.reader)
            .await
            .map_err(db_error)?;
    Ok(rows.into_iter().map(Partner::from).collect())
}

pub(super) async fn partner_limits(
    store: &Store,
    partner_id: &str,
) -> Result<Option<LimitOverrides>, StoreError> {
    let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT provision_per_hour, status_per_hour, burst_per_second FROM partners WHERE id = $1",
    )
    .bind(partner_id)
    .fetch_optional(&store.reader)
    .await
    .map_err(db_error)?;
    Ok(row.map(|(p, s, b)| overrides(p, s, b)))
}

pub(super) async fn set_partner_limits(
    store: &Store,
    partner_id: &str,
    limits: &LimitOverrides,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE partners SET provision_per_hour = $2, status_per_hour = $3, \
         burst_per_second = $4 WHERE id = $1",
    )
    .bind(partner_id)
    .bind(limits.provision_per_hour.map(i64::from))
    .bind(limits.status_per_hour.map(i64::from))
    .bind(limits.burst_per_second.map(i64::from))
    .execute(&store.writer)
    .await
    .map_err(db_error)?;
    await_leases(store).await?;
    Ok(changed.rows_affected() == 1)
}
