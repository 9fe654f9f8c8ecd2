//! Idempotency keys: a claim held while a request runs, completed in the transaction of the
//! write it made. The rules are `oytel_core::idempotency::decide_claim`'s; this file only stores.

use chrono::{DateTime, Utc};
use oytel_core::idempotency::{
    decide_claim, ClaimDecision, ClaimRef, IdempotencyClaim, IdempotencyRequest,
    StoredIdempotencyKey,
};
use oytel_core::ports::StoreError;
use oytel_core::Scope;
use sqlx::QueryBuilder;

use super::sql::{begin_write, push_insert, Tx};
use super::{Db, Store, DIALECT};
use crate::errors::db_error;
use crate::rows::IdempotencyRow;

pub(super) fn push_claim<'a>(
    qb: &mut QueryBuilder<'a, Db>,
    scope: &'a Scope,
    claim: &'a IdempotencyRequest,
    order_id: Option<&'a str>,
) {
    push_insert(
        qb,
        "idempotency_keys (partner_id, environment, key, request_hash, claim_token, \
         order_id, locked_until, created_at, expires_at)",
        |v| {
            v.push_bind(&scope.partner_id)
                .push_bind(scope.environment.as_str())
                .push_bind(&claim.key)
                .push_bind(&claim.request_hash)
                .push_bind(&claim.token)
                .push_bind(order_id)
                .push_bind(claim.lease_until)
                .push_bind(claim.now)
                .push_bind(claim.expires_at);
        },
    );
}

/// Writes a fresh claim on an idempotency key, completed with `order_id` if given;
/// `on_conflict` says what to do if the key exists. Returns how many rows were written.
pub(super) async fn insert_claim(
    tx: &mut Tx<'_>,
    scope: &Scope,
    claim: &IdempotencyRequest,
    order_id: Option<&str>,
    on_conflict: &str,
) -> Result<u64, StoreError> {
    let mut query = QueryBuilder::new("");
    push_claim(&mut query, scope, claim, order_id);
    query.push(" ").push(on_conflict);
    let result = query.build().execute(&mut **tx).await.map_err(db_error)?;
    Ok(result.rows_affected())
}

pub(super) async fn claim_idempotency_key(
    store: &Store,
    scope: &Scope,
    claim: &IdempotencyRequest,
) -> Result<IdempotencyClaim, StoreError> {
    let mut tx = begin_write(store).await?;
    // Claim outright if nobody holds the key. On PostgreSQL a concurrent claim of the
    // same key makes this wait until that claim commits, then do nothing.
    let inserted = insert_claim(&mut tx, scope, claim, None, "ON CONFLICT DO NOTHING").await?;
    if inserted == 1 {
        tx.commit().await.map_err(db_error)?;
        return Ok(IdempotencyClaim::Claimed);
    }
    let stored: Option<IdempotencyRow> = sqlx::query_as(
        &[
            "SELECT request_hash, order_id, locked_until, expires_at FROM idempotency_keys \
         WHERE partner_id = $1 AND environment = $2 AND key = $3",
            DIALECT.lock,
        ]
        .concat(),
    )
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .bind(&claim.key)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let stored = stored.map(|r| StoredIdempotencyKey {
        request_hash: r.request_hash,
        order_id: r.order_id,
        locked_until: r.locked_until,
        expires_at: r.expires_at,
    });
    match decide_claim(stored.as_ref(), claim) {
        ClaimDecision::Answer(answer) => return Ok(answer),
        ClaimDecision::Insert => {
            // An expired key (or one purged since the insert above): start afresh.
            insert_claim(
                &mut tx,
                scope,
                claim,
                None,
                "ON CONFLICT (partner_id, environment, key) DO UPDATE SET \
                 request_hash = excluded.request_hash, \
                 claim_token = excluded.claim_token, order_id = NULL, \
                 locked_until = excluded.locked_until, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at",
            )
            .await?;
        }
        ClaimDecision::TakeOver => {
            sqlx::query(
                "UPDATE idempotency_keys SET claim_token = $4, locked_until = $5 \
                 WHERE partner_id = $1 AND environment = $2 AND key = $3",
            )
            .bind(&scope.partner_id)
            .bind(scope.environment.as_str())
            .bind(&claim.key)
            .bind(&claim.token)
            .bind(claim.lease_until)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
    }
    tx.commit().await.map_err(db_error)?;
    Ok(IdempotencyClaim::Claimed)
}

pub(super) async fn release_idempotency_key(
    store: &Store,
    scope: &Scope,
    claim: &ClaimRef,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE partner_id = $1 AND environment = $2 AND key = $3 \
         AND claim_token = $4 AND order_id IS NULL",
    )
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .bind(&claim.key)
    .bind(&claim.token)
    .execute(&store.writer)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn purge_idempotency_keys(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
        .bind(now)
        .execute(&store.writer)
        .await
        .map_err(db_error)?;
    Ok(result.rows_affected())
}
