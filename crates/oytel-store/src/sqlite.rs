//! The SQLite adapter: the embedded default.
//!
//! One writer connection (SQLite serialises writers; queueing in the pool beats lock errors)
//! and a pool of read-only readers, in WAL mode with `synchronous = FULL`. Write transactions
//! begin with `BEGIN IMMEDIATE`, taking the write lock at once, so a transaction never fails
//! half-way because another process (the admin CLI) writes at the same time. Provisionings
//! and top-ups waiting for the writer share a transaction ([`crate::group_commit`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::dialect::{Chaining, Dialect};
use crate::group_commit::WriteQueue;
use crate::{OpenError, PoolOptions};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// A SQLite database: one writer connection, a pool of readers.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The group commit of paid writes; `None` in the clone its own task writes with.
    batched: Option<WriteQueue>,
}

impl SqliteStore {
    /// The queue paid writes wait in for the writer.
    pub(crate) fn batched(&self) -> Option<&WriteQueue> {
        self.batched.as_ref()
    }

    /// The pools, for the metrics: name, connections open, of which idle.
    pub(crate) fn pools(&self) -> Vec<(&'static str, u32, u32)> {
        vec![
            crate::pool::figures("writer", &self.writer),
            crate::pool::figures("reader", &self.reader),
        ]
    }

    /// Opens the database at `url` (`sqlite:path/to/file.db`), creating the file and its
    /// directory if needed, and applies the migrations.
    pub async fn open(url: &str, pool: &PoolOptions) -> Result<SqliteStore, OpenError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed order survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(pool.busy_timeout);
        let in_memory = options.get_filename().as_os_str().is_empty()
            || options
                .get_filename()
                .to_string_lossy()
                .contains(":memory:");
        if !in_memory {
            if let Some(dir) = options.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
        }
        // No ping before handing a connection out: a connection to a local file does not go
        // stale, and the ping is a round trip to the connection's thread on every statement.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_release(crate::pool::outside_transaction)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        migrate(&writer).await?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(pool.max_connections.max(1))
                .test_before_acquire(false)
                .after_release(crate::pool::outside_transaction)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.read_only(true))
                .await?
        };
        let batches = SqliteStore {
            writer,
            reader,
            batched: None,
        };
        let queue = WriteQueue::start({
            let store = batches.clone();
            move |jobs| {
                let store = store.clone();
                async move { datastore::write_batch(&store, jobs).await }
            }
        });
        Ok(SqliteStore {
            batched: Some(queue),
            ..batches
        })
    }

    /// Copies the write-ahead log into the database file and truncates it. For bulk loads
    /// (the benchmark's seed): their large transactions outrun SQLite's automatic
    /// checkpoints, and the log would grow by gigabytes over a million eSIMs.
    pub async fn checkpoint(&self) -> Result<(), oytel_core::ports::StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
            .map_err(crate::errors::db_error)?;
        Ok(())
    }

    /// Closes both pools, waiting for connections in use.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Applies the migrations on the writer's connection with foreign-key enforcement off, as
/// SQLite's procedure for changing a table's constraints requires (the migration rebuilds the
/// table: https://sqlite.org/lang_altertable.html#otheralter), then checks every foreign key
/// and turns enforcement back on. A violation fails the start-up; nothing is served from a
/// database whose references no longer hold.
async fn migrate(writer: &SqlitePool) -> Result<(), OpenError> {
    let mut conn = writer.acquire().await?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await?;
    let migrated = MIGRATOR.run(&mut *conn).await;
    let violations: Vec<(String, Option<i64>, String)> =
        sqlx::query_as("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check")
            .fetch_all(&mut *conn)
            .await?;
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    migrated?;
    if let Some((table, rowid, parent)) = violations.first() {
        return Err(OpenError::ForeignKeys(format!(
            "{} row(s) refer to missing rows, the first in `{table}` (rowid {}) to `{parent}`",
            violations.len(),
            rowid.map_or_else(|| "none".to_owned(), |r| r.to_string()),
        )));
    }
    Ok(())
}

/// What the shared storage code (`datastore/`) needs of this backend.
type Db = sqlx::Sqlite;
type Store = SqliteStore;
const DIALECT: Dialect = Dialect {
    begin: "BEGIN IMMEDIATE",
    lock: "",
    skip_locked: "",
    serialize_claims: "",
    now_ms: "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    chaining: Chaining::Semicolons,
};

#[path = "datastore/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "the storage is written once and compiled per backend (see datastore/mod.rs)"
)]
mod datastore;
