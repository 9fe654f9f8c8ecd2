//! Idempotency keys: a claim held while a request runs, completed in the transaction of the
//! write it made with the resource that write created. The rules are
//! `oytel_core::idempotency::decide_claim`'s; this file only stores. Every paid write uses
//! [`push_claim`] (a new key claimed and completed in its own statement) or
//! [`complete_claim`] (a key claimed before).
//!
//! `order_id` is written beside `resource_kind`/`resource_id` for orders, and read when they
//! are empty, so that release 0.1 instances running beside this one during a rolling upgrade
//! and this release read each other's completions.

use chrono::{DateTime, Utc};
use oytel_core::idempotency::{
    decide_claim, ClaimDecision, ClaimRef, IdempotencyClaim, IdempotencyRequest, Operation,
    ResourceKind, ResourceRef, StoredIdempotencyKey,
};
use oytel_core::ports::{IdempotencyWrite, StoreError, UniqueField};
use oytel_core::Scope;
use sqlx::QueryBuilder;

use super::sql::{begin_write, push_insert, Tx};
use super::{Db, Store, DIALECT};
use crate::errors::db_error;
use crate::rows::IdempotencyRow;

/// The `order_id` written beside a resource (see the module's note).
fn order_id(resource: Option<&ResourceRef>) -> Option<&str> {
    resource
        .filter(|r| r.kind == ResourceKind::Order)
        .map(|r| r.id.as_str())
}

/// Pushes the insert of a claim on `claim.key`, completed with `resource` if given.
pub(super) fn push_claim<'a>(
    qb: &mut QueryBuilder<'a, Db>,
    scope: &'a Scope,
    claim: &'a IdempotencyRequest,
    resource: Option<&'a ResourceRef>,
) {
    push_insert(
        qb,
        "idempotency_keys (partner_id, environment, key, operation, request_hash, claim_token, \
         resource_kind, resource_id, order_id, locked_until, created_at, expires_at)",
        |v| {
            v.push_bind(&scope.partner_id)
                .push_bind(scope.environment.as_str())
                .push_bind(&claim.key)
                .push_bind(claim.operation.as_str())
                .push_bind(&claim.request_hash)
                .push_bind(&claim.token)
                .push_bind(resource.map(|r| r.kind.as_str()))
                .push_bind(resource.map(|r| r.id.as_str()))
                .push_bind(order_id(resource))
                .push_bind(claim.lease_until)
                .push_bind(claim.now)
                .push_bind(claim.expires_at);
        },
    );
}

/// Claims `idempotency`'s key as the first write of `tx`, completed with `resource`, when it
/// is a new claim ([`IdempotencyWrite::ClaimNew`]); anything else writes nothing. Returns
/// `false` if the key is stored already: the caller must write nothing more.
pub(super) async fn claim_first(
    tx: &mut Tx<'_>,
    scope: &Scope,
    idempotency: Option<&IdempotencyWrite>,
    resource: &ResourceRef,
) -> Result<bool, StoreError> {
    let Some(IdempotencyWrite::ClaimNew(claim)) = idempotency else {
        return Ok(true);
    };
    let mut query = QueryBuilder::new("");
    push_claim(&mut query, scope, claim, Some(resource));
    match query.build().execute(&mut **tx).await.map_err(db_error) {
        Ok(_) => Ok(true),
        Err(StoreError::Duplicate(UniqueField::IdempotencyKey)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Completes a claim taken before with `resource`, if this request still holds it. Returns
/// whether it did: `false` means another request took the key over after this one's lease
/// ran out, and the caller must write nothing.
pub(super) async fn complete_claim(
    tx: &mut Tx<'_>,
    scope: &Scope,
    claim: &ClaimRef,
    resource: &ResourceRef,
) -> Result<bool, StoreError> {
    let completed = sqlx::query(
        "UPDATE idempotency_keys SET resource_kind = $5, resource_id = $6, order_id = $7 \
         WHERE partner_id = $1 AND environment = $2 AND key = $3 AND claim_token = $4 \
         AND resource_id IS NULL AND order_id IS NULL",
    )
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .bind(&claim.key)
    .bind(&claim.token)
    .bind(resource.kind.as_str())
    .bind(&resource.id)
    .bind(order_id(Some(resource)))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(completed.rows_affected() == 1)
}

/// Whether `key` is stored in `scope` (claimed or completed), as this transaction sees it.
pub(super) async fn key_stored(
    tx: &mut Tx<'_>,
    scope: &Scope,
    key: &str,
) -> Result<bool, StoreError> {
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT key FROM idempotency_keys WHERE partner_id = $1 AND environment = $2 AND key = $3",
    )
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .bind(key)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(stored.is_some())
}

/// Writes a fresh claim on an idempotency key; `on_conflict` says what to do if the key
/// exists. Returns how many rows were written.
async fn insert_claim(
    tx: &mut Tx<'_>,
    scope: &Scope,
    claim: &IdempotencyRequest,
    on_conflict: &str,
) -> Result<u64, StoreError> {
    let mut query = QueryBuilder::new("");
    push_claim(&mut query, scope, claim, None);
    query.push(" ").push(on_conflict);
    let result = query.build().execute(&mut **tx).await.map_err(db_error)?;
    Ok(result.rows_affected())
}

/// The key as stored. For orders, `order_id` is the truth: both releases write it, and a
/// release 0.1 instance that re-claims an expired key clears only it (not `resource_id`).
/// This release writes `order_id` for orders only, so a row holding one beside another kind
/// was re-claimed and completed by a release 0.1 instance: a provisioning of that order.
fn as_stored(row: IdempotencyRow) -> Result<StoredIdempotencyKey, StoreError> {
    let mut operation = row.operation;
    let resource = match (row.resource_kind.as_deref(), row.resource_id, row.order_id) {
        (None | Some("order"), _, order_id) => order_id.map(|id| ResourceRef::order(&id)),
        (Some(_), _, Some(order_id)) => {
            operation = Operation::Provision.as_str().to_owned();
            Some(ResourceRef::order(&order_id))
        }
        (Some(kind), id, None) => match ResourceKind::parse(kind) {
            Some(kind) => id.map(|id| ResourceRef { kind, id }),
            None => {
                return Err(StoreError::Other(format!(
                    "corrupt row: unknown resource kind `{kind}`"
                )))
            }
        },
    };
    Ok(StoredIdempotencyKey {
        operation,
        request_hash: row.request_hash,
        resource,
        locked_until: row.locked_until,
        expires_at: row.expires_at,
    })
}

pub(super) async fn claim_idempotency_key(
    store: &Store,
    scope: &Scope,
    claim: &IdempotencyRequest,
) -> Result<IdempotencyClaim, StoreError> {
    let mut tx = begin_write(store).await?;
    // Claim outright if nobody holds the key. On PostgreSQL a concurrent claim of the
    // same key makes this wait until that claim commits, then do nothing.
    let inserted = insert_claim(&mut tx, scope, claim, "ON CONFLICT DO NOTHING").await?;
    if inserted == 1 {
        tx.commit().await.map_err(db_error)?;
        return Ok(IdempotencyClaim::Claimed);
    }
    let stored: Option<IdempotencyRow> = sqlx::query_as(
        &[
            "SELECT operation, request_hash, resource_kind, resource_id, order_id, \
             locked_until, expires_at FROM idempotency_keys \
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
    let stored = stored.map(as_stored).transpose()?;
    match decide_claim(stored.as_ref(), claim) {
        ClaimDecision::Answer(answer) => return Ok(answer),
        ClaimDecision::Insert => {
            // An expired key (or one purged since the insert above): start afresh.
            insert_claim(
                &mut tx,
                scope,
                claim,
                "ON CONFLICT (partner_id, environment, key) DO UPDATE SET \
                 operation = excluded.operation, request_hash = excluded.request_hash, \
                 claim_token = excluded.claim_token, resource_kind = NULL, \
                 resource_id = NULL, order_id = NULL, \
                 locked_until = excluded.locked_until, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at",
            )
            .await?;
        }
        ClaimDecision::TakeOver => {
            sqlx::query(
                "UPDATE idempotency_keys SET claim_token = $4, locked_until = $5, \
                 resource_kind = NULL, resource_id = NULL \
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
         AND claim_token = $4 AND resource_id IS NULL AND order_id IS NULL",
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
