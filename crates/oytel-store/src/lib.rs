//! Storage adapters implementing [`oytel_core::ports::Storage`] with sqlx.
//!
//! - [`sqlite`]: the embedded default — one file, no outside service. A single writer
//!   connection (SQLite allows one writer at a time, so queueing in the pool beats lock
//!   contention) and a pool of readers, in WAL mode with `synchronous = FULL`.
//!
//! All SQL of the project lives in this crate, and each backend keeps its own queries and
//! migrations (`migrations/<backend>/`). Queries are checked at run time (`query_as` with
//! `FromRow`), so building needs no database. This crate knows nothing of HTTP.

use std::sync::Arc;

use oytel_core::ports::Storage;

mod rows;
pub mod sqlite;

pub use sqlite::SqliteStore;

/// Pool settings shared by the adapters.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Connections used for reads (SQLite) or in all (other backends).
    pub max_connections: u32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { max_connections: 8 }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL's scheme is not one this build supports.
    #[error("unsupported database URL `{0}`: expected `sqlite:<path>`")]
    UnsupportedUrl(String),
    /// The database could not be opened or migrated.
    #[error("could not open the database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("could not migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database file's directory could not be created.
    #[error("could not create the database directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens (creating and migrating as needed) the store at `url`.
pub async fn open(url: &str, pool: &PoolOptions) -> Result<Arc<dyn Storage>, OpenError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url, pool).await?))
    } else {
        // Credentials may follow the scheme: show only the scheme.
        let scheme = url.split(':').next().unwrap_or_default();
        Err(OpenError::UnsupportedUrl(format!("{scheme}:…")))
    }
}
