//! How sqlx's errors become the port's: unique violations name their column, and a busy or
//! unreachable database is [`StoreError::Unavailable`] (the server answers 503 and the client
//! may retry), whichever backend said it.

use oytel_core::ports::{StoreError, UniqueField};

/// Whether `e` says the database is busy or out of reach (SQLite: the write lock was not had
/// within the busy timeout; PostgreSQL: serialization failure, deadlock, too many
/// connections, shutting down; any backend: the pool or the connection failed).
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.message().contains("database is locked")
                || db.message().contains("busy")
                || matches!(
                    db.code().as_deref(),
                    Some("40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03")
                )
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        _ => false,
    }
}

/// Maps a sqlx error to the port's error, recognising unique violations and a busy database.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let message = db.message();
            let field = if message.contains("idempotency_keys") {
                UniqueField::IdempotencyKey
            } else if message.contains("iccid") {
                UniqueField::Iccid
            } else if message.contains("msisdn") {
                UniqueField::Msisdn
            } else if message.contains("matching_id") {
                UniqueField::MatchingId
            } else if message.contains("qr_token") {
                UniqueField::QrToken
            } else {
                UniqueField::Other
            };
            StoreError::Duplicate(field)
        }
        sqlx::Error::Database(db) if is_busy(&e) => {
            StoreError::Unavailable(db.message().to_owned())
        }
        _ if is_busy(&e) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}
