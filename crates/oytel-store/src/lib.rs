//! Storage adapters implementing [`oytel_core::ports::Storage`] with sqlx.
//!
//! - [`sqlite`]: the embedded default — one file, no outside service.
//! - [`postgres`]: for several server instances on one database.
//!
//! All SQL of the project lives in this crate. The queries are written once for both
//! backends, one file per resource (see `datastore/mod.rs`); each backend has its own migrations (`migrations/<backend>/`).
//! Queries are checked at run time (`query_as` with `FromRow`), so building needs no
//! database. This crate knows nothing of HTTP.

use std::sync::Arc;

use oytel_core::limits::{MemoryQuotas, Quotas, ReservingQuotas};
use oytel_core::ports::Storage;

mod dialect;
mod errors;
mod group_commit;
mod pool;
pub mod postgres;
mod rows;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Pool settings shared by the adapters.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Connections used for reads (SQLite) or in all (other backends).
    pub max_connections: u32,
    /// SQLite: how long a statement waits for another process's write lock (the server's,
    /// for the admin commands) before failing as busy.
    pub busy_timeout: std::time::Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: 8,
            busy_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL's scheme is not one this build supports.
    #[error("unsupported database URL `{0}`: expected `sqlite:<path>` or `postgres://…`")]
    UnsupportedUrl(String),
    /// The database could not be opened or migrated.
    #[error("could not open the database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("could not migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// After migrating, rows refer to rows that do not exist (SQLite's foreign-key check).
    #[error("the database failed its foreign-key check after migrating: {0}")]
    ForeignKeys(String),
    /// The database file's directory could not be created.
    #[error("could not create the database directory: {0}")]
    Io(#[from] std::io::Error),
}

impl OpenError {
    /// Whether the database was busy (another process held its write lock for longer than
    /// the busy timeout) or overloaded: trying again later may work.
    pub fn is_busy(&self) -> bool {
        match self {
            OpenError::Database(e)
            | OpenError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => errors::is_busy(e),
            _ => false,
        }
    }
}

/// An opened database: the storage, and where hourly quotas are counted (in this process for
/// SQLite, a single instance; in the database for PostgreSQL, shared by every instance, with
/// status units taken in blocks: [`ReservingQuotas`]).
#[derive(Clone)]
pub struct Opened {
    /// The storage.
    pub storage: Arc<dyn Storage>,
    /// The quota counters.
    pub quotas: Arc<dyn Quotas>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").finish_non_exhaustive()
    }
}

/// Opens (creating and migrating as needed) the store at `url`.
pub async fn open(url: &str, pool: &PoolOptions) -> Result<Opened, OpenError> {
    if url.starts_with("sqlite:") {
        Ok(Opened {
            storage: Arc::new(SqliteStore::open(url, pool).await?),
            quotas: Arc::new(MemoryQuotas::default()),
        })
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = Arc::new(PgStore::open(url, pool).await?);
        Ok(Opened {
            storage: store.clone(),
            quotas: Arc::new(ReservingQuotas::new(store)),
        })
    } else {
        // Credentials may follow the scheme: show only the scheme.
        let scheme = url.split(':').next().unwrap_or_default();
        Err(OpenError::UnsupportedUrl(format!("{scheme}:…")))
    }
}
