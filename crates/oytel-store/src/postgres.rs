//! The PostgreSQL adapter, for partners who outgrow one machine: several stateless server
//! instances share one database.
//!
//! Correctness across instances rests on PostgreSQL's row locks, under the default READ
//! COMMITTED isolation: a debit is a conditional `UPDATE … RETURNING` (re-checked against the
//! latest balance when rows collide), an idempotency claim is an `INSERT … ON CONFLICT DO
//! NOTHING` followed by `SELECT … FOR UPDATE`, and unique constraints catch colliding ICCIDs
//! and mobile numbers (the core retries with fresh ones).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oytel_core::limits::{quota_use, window_start, QuotaKey, QuotaUse, Quotas};
use oytel_core::ports::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::dialect::{Chaining, Dialect};
use crate::{OpenError, PoolOptions};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A PostgreSQL database behind one connection pool for the storage, and a small one for
/// the quota counters.
#[derive(Debug, Clone)]
pub struct PgStore {
    writer: PgPool,
    reader: PgPool,
    /// The quota counters' connections, whose commits do not wait for the WAL flush
    /// (`synchronous_commit = off`). A count is still durable whenever the order it admitted
    /// is: the order's commit flushes the WAL up to itself, past the count written before
    /// it. A database crash can lose only the counts of requests that wrote nothing after.
    counters: PgPool,
}

impl PgStore {
    /// PostgreSQL writes transactions side by side: each paid write commits on its own.
    pub(crate) fn batched(&self) -> Option<&crate::group_commit::WriteQueue> {
        None
    }

    /// The pools, for the metrics: name, connections open, of which idle (the storage's
    /// reads and writes share one pool).
    pub(crate) fn pools(&self) -> Vec<(&'static str, u32, u32)> {
        vec![
            crate::pool::figures("storage", &self.writer),
            crate::pool::figures("quotas", &self.counters),
        ]
    }

    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies the
    /// migrations (concurrent instances take turns: sqlx migrations hold an advisory lock).
    /// Opens up to `pool.max_connections` connections for the storage, and a quarter as many
    /// (at least one) for the quota counters.
    pub async fn open(url: &str, pool: &PoolOptions) -> Result<PgStore, OpenError> {
        let options = PgConnectOptions::from_str(url)?;
        let max = pool.max_connections.max(1);
        let storage = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .after_release(crate::pool::outside_transaction)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&storage).await?;
        let counters = PgPoolOptions::new()
            .max_connections(Self::counter_connections(max))
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.options([("synchronous_commit", "off")]));
        Ok(PgStore {
            writer: storage.clone(),
            reader: storage,
            counters,
        })
    }

    /// Connections for the quota counters beside `max` for the storage.
    fn counter_connections(max: u32) -> u32 {
        (max / 4).max(1)
    }

    /// Closes the pools, waiting for connections in use.
    pub async fn close(&self) {
        self.writer.close().await;
        self.counters.close().await;
    }

    /// The `synchronous_commit` setting, and where it comes from (`pg_settings.source`), of
    /// the storage's connections and of the quota counters' (for tests).
    #[cfg(feature = "test-support")]
    pub async fn synchronous_commit(&self) -> Result<[(String, String); 2], sqlx::Error> {
        const SQL: &str =
            "SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'";
        Ok([
            sqlx::query_as(SQL).fetch_one(&self.writer).await?,
            sqlx::query_as(SQL).fetch_one(&self.counters).await?,
        ])
    }
}

/// Hourly quotas counted in the database, so that every instance shares one count: a
/// conditional upsert admits a request only while the window's count is below the quota.
#[async_trait::async_trait]
impl Quotas for PgStore {
    async fn reserve(
        &self,
        key: &QuotaKey,
        limit: u32,
        want: u32,
        now: DateTime<Utc>,
    ) -> Result<(u32, QuotaUse), StoreError> {
        let window = window_start(now);
        if limit == 0 || want == 0 {
            return Ok((0, quota_use(None, limit, window)));
        }
        // In the UPDATE, `rate_windows.count` is the count before it: the grant is what is
        // left, at most `want`, and nothing once the window is used up.
        let row: Option<(i64, i64)> = sqlx::query_as(
            "INSERT INTO rate_windows (partner_id, environment, kind, window_start, count, last_grant) \
             VALUES ($1, $2, $3, $4, LEAST($6, $5), LEAST($6, $5)) \
             ON CONFLICT (partner_id, environment, kind, window_start) \
             DO UPDATE SET last_grant = LEAST($6, $5 - rate_windows.count), \
             count = rate_windows.count + LEAST($6, $5 - rate_windows.count) \
             WHERE rate_windows.count < $5 \
             RETURNING count, last_grant",
        )
        .bind(&key.partner_id)
        .bind(key.environment.as_str())
        .bind(key.kind.as_str())
        .bind(window)
        .bind(i64::from(limit))
        .bind(i64::from(want))
        .fetch_optional(&self.counters)
        .await
        .map_err(crate::errors::db_error)?;
        let Some((count, granted)) = row else {
            return Ok((0, quota_use(None, limit, window)));
        };
        let granted = u32::try_from(granted).unwrap_or(0);
        Ok((
            granted,
            quota_use(
                (granted > 0).then(|| u32::try_from(count).unwrap_or(limit)),
                limit,
                window,
            ),
        ))
    }

    async fn refund(&self, key: &QuotaKey, drawn_at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE rate_windows SET count = count - 1 WHERE partner_id = $1 \
             AND environment = $2 AND kind = $3 AND window_start = $4 AND count > 0",
        )
        .bind(&key.partner_id)
        .bind(key.environment.as_str())
        .bind(key.kind.as_str())
        .bind(window_start(drawn_at))
        .execute(&self.counters)
        .await
        .map_err(crate::errors::db_error)?;
        Ok(())
    }

    async fn purge(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM rate_windows WHERE window_start < $1")
            .bind(window_start(now))
            .execute(&self.counters)
            .await
            .map_err(crate::errors::db_error)?;
        Ok(())
    }
}

/// What the shared storage code (`datastore/`) needs of this backend.
type Db = sqlx::Postgres;
type Store = PgStore;
const DIALECT: Dialect = Dialect {
    begin: "BEGIN",
    lock: " FOR UPDATE",
    skip_locked: " FOR UPDATE OF d SKIP LOCKED",
    serialize_claims: "SELECT pg_advisory_xact_lock(7031990126)",
    now_ms: "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    chaining: Chaining::Cte,
};

#[path = "datastore/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "the storage is written once and compiled per backend (see datastore/mod.rs)"
)]
mod datastore;
