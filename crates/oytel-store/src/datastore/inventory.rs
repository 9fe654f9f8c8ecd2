//! The builtin profile stock (`oytel_core::inventory`): batches stored all or none, the
//! stock per type, and the allocation of one ICCID inside the provisioning transaction
//! (PostgreSQL skips the rows another transaction is allocating; SQLite's one writer
//! serialises), so that no ICCID goes to two eSIMs.

use chrono::{DateTime, Utc};
use oytel_core::inventory::{Imported, NewBatch, Stock};
use oytel_core::ports::StoreError;
use oytel_core::Environment;
use sqlx::QueryBuilder;

use super::sql::{begin_write, Tx};
use super::{Db, Store, DIALECT};
use crate::errors::db_error;
use crate::rows::environment;

/// Rows per insert statement (4 binds each, well under both backends' limits).
const CHUNK: usize = 2_000;

pub(super) async fn import_batch(store: &Store, batch: &NewBatch) -> Result<Imported, StoreError> {
    let mut tx = begin_write(store).await?;
    let mut taken = Vec::new();
    for chunk in batch.iccids.chunks(CHUNK) {
        let mut query: QueryBuilder<'_, Db> =
            QueryBuilder::new("SELECT iccid FROM profile_inventory WHERE iccid IN (");
        let mut list = query.separated(", ");
        for iccid in chunk {
            list.push_bind(iccid);
        }
        query.push(") UNION SELECT iccid FROM esims WHERE iccid IN (");
        let mut list = query.separated(", ");
        for iccid in chunk {
            list.push_bind(iccid);
        }
        query.push(")");
        let found: Vec<String> = query
            .build_query_scalar()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        taken.extend(found);
        if taken.len() >= 20 {
            break;
        }
    }
    if !taken.is_empty() {
        taken.sort();
        taken.truncate(20);
        return Ok(Imported::Duplicates(taken));
    }
    for chunk in batch.iccids.chunks(CHUNK) {
        let mut query: QueryBuilder<'_, Db> = QueryBuilder::new(
            "INSERT INTO profile_inventory (iccid, profile_type, environment, batch_id, imported_at) ",
        );
        query.push_values(chunk, |mut row, iccid| {
            row.push_bind(iccid)
                .push_bind(&batch.profile_type)
                .push_bind(batch.environment.as_str())
                .push_bind(&batch.id)
                .push_bind(batch.imported_at);
        });
        query.build().execute(&mut *tx).await.map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(Imported::Stored(batch.iccids.len() as u64))
}

pub(super) async fn stock(store: &Store) -> Result<Vec<Stock>, StoreError> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT profile_type, environment, \
         SUM(CASE WHEN esim_id IS NULL THEN 1 ELSE 0 END), \
         SUM(CASE WHEN esim_id IS NULL THEN 0 ELSE 1 END) \
         FROM profile_inventory GROUP BY profile_type, environment \
         ORDER BY environment, profile_type",
    )
    .fetch_all(&store.reader)
    .await
    .map_err(db_error)?;
    rows.into_iter()
        .map(|(profile_type, env, available, allocated)| {
            Ok(Stock {
                profile_type,
                environment: environment(&env)?,
                available: u64::try_from(available).unwrap_or(0),
                allocated: u64::try_from(allocated).unwrap_or(0),
            })
        })
        .collect()
}

/// Allocates the next ICCID in stock of `profile_type` to `esim_id`, inside the
/// provisioning transaction; `None` when the stock is empty. An ICCID in stock that an eSIM
/// got some other way since its import (a made-up sandbox one) is passed over, never
/// retried.
pub(super) async fn allocate(
    tx: &mut Tx<'_>,
    environment: Environment,
    profile_type: &str,
    esim_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar(&format!(
        "UPDATE profile_inventory SET esim_id = $1, allocated_at = $2 \
         WHERE esim_id IS NULL AND iccid = (SELECT d.iccid FROM profile_inventory d \
         WHERE d.environment = $3 AND d.profile_type = $4 AND d.esim_id IS NULL \
         AND NOT EXISTS (SELECT 1 FROM esims e WHERE e.iccid = d.iccid) \
         ORDER BY d.iccid LIMIT 1{}) RETURNING iccid",
        DIALECT.skip_locked
    ))
    .bind(esim_id)
    .bind(now)
    .bind(environment.as_str())
    .bind(profile_type)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)
}
