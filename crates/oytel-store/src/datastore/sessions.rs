//! Web console sessions (`oytel_core::sessions`): a row per signed-in browser, found by the
//! hash of its token.

use chrono::{DateTime, Utc};
use oytel_core::ports::StoreError;
use oytel_core::sessions::{SessionKind, SessionRecord, IDLE};

use super::Store;
use crate::errors::db_error;

type Row = (
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
);

pub(super) async fn create_session(store: &Store, s: &SessionRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dashboard_sessions \
         (token_hash, kind, key_hash, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.token_hash)
    .bind(s.kind.as_str())
    .bind(&s.key_hash)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.expires_at)
    .execute(&store.writer)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn find_session(
    store: &Store,
    token_hash: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT token_hash, kind, key_hash, created_at, last_seen_at, expires_at \
         FROM dashboard_sessions WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&store.reader)
    .await
    .map_err(db_error)?;
    row.map(
        |(token_hash, kind, key_hash, created_at, last_seen_at, expires_at)| {
            let kind = SessionKind::parse(&kind).ok_or_else(|| {
                StoreError::Other(format!("corrupt row: a session of kind `{kind}`"))
            })?;
            Ok(SessionRecord {
                token_hash,
                kind,
                key_hash,
                created_at,
                last_seen_at,
                expires_at,
            })
        },
    )
    .transpose()
}

pub(super) async fn touch_session(
    store: &Store,
    token_hash: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE dashboard_sessions SET last_seen_at = $1 WHERE token_hash = $2")
        .bind(at)
        .bind(token_hash)
        .execute(&store.writer)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn delete_session(store: &Store, token_hash: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&store.writer)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn delete_ended_sessions(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let done =
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(now - IDLE)
            .execute(&store.writer)
            .await
            .map_err(db_error)?;
    Ok(done.rows_affected())
}
