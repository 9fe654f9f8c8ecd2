//! The PostgreSQL adapter, for partners who outgrow one machine: several stateless server
//! instances share one database.
//!
//! Correctness across instances rests on PostgreSQL's row locks, under the default READ
//! COMMITTED isolation: a debit is a conditional `UPDATE … RETURNING` (re-checked against the
//! latest balance when rows collide), an idempotency claim is an `INSERT … ON CONFLICT DO
//! NOTHING` followed by `SELECT … FOR UPDATE`, and unique constraints catch colliding ICCIDs
//! and mobile numbers (the core retries with fresh ones).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::{OpenError, PoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A PostgreSQL database behind one connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    writer: PgPool,
    reader: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies the
    /// migrations (concurrent instances take turns: sqlx migrations hold an advisory lock).
    pub async fn open(url: &str, pool: &PoolOptions) -> Result<PgStore, OpenError> {
        let pool = PgPoolOptions::new()
            .max_connections(pool.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore {
            writer: pool.clone(),
            reader: pool,
        })
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.writer.close().await;
    }
}

mod storage {
    crate::adapter::storage_impl!(
        super::PgStore,
        sqlx::Postgres,
        begin = "BEGIN",
        lock = " FOR UPDATE",
        skip_locked = " FOR UPDATE SKIP LOCKED"
    );
}
