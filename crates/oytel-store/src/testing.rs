//! Fresh databases for tests (feature `test-support`).
//!
//! - SQLite: a new file in a temporary directory.
//! - PostgreSQL: a new database on the server named by `OYTEL_TEST_DATABASE_URL` (an admin
//!   URL such as `postgres://oytel@127.0.0.1:55432/postgres`; `.ci/postgres start` prints
//!   one), dropped again when the test ends. Without that variable when the tests are built,
//!   the PostgreSQL tests are compiled ignored and the summary counts them as not run
//!   (`build.rs`); a PostgreSQL test that runs without it fails.
//!
//! `OYTEL_TEST_BACKEND=postgres` makes [`Backend::from_env`] choose PostgreSQL, so that a
//! whole suite (the server's) runs on it.

use std::sync::Arc;

use oytel_core::ports::Storage;

use crate::{PgStore, PoolOptions, SqliteStore};

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

impl Backend {
    /// `OYTEL_TEST_BACKEND`: `postgres` or (the default) `sqlite`.
    pub fn from_env() -> Backend {
        match std::env::var("OYTEL_TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

/// The PostgreSQL admin URL for tests.
///
/// # Panics
/// When none is configured: a PostgreSQL test that runs must have its database (without one
/// at build time the PostgreSQL tests are compiled ignored, see `build.rs`).
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("OYTEL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!(
            "a PostgreSQL test ran without OYTEL_TEST_DATABASE_URL: set it \
             (`export OYTEL_TEST_DATABASE_URL=$(.ci/postgres start)`) and build again"
        ),
    }
}

#[derive(Debug)]
enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// A database that exists for the life of this value.
pub struct TestDatabase {
    /// Its URL, for `OYTEL_DATABASE_URL`.
    pub url: String,
    /// The store, opened and migrated.
    pub store: Arc<dyn Storage>,
    /// Its quota counters (fresh per database).
    pub quotas: Arc<dyn oytel_core::limits::Quotas>,
    /// The backend.
    pub backend: Backend,
    /// Removes the database when the test ends.
    _guard: Guard,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Another process's hold on a database's writes (the admin CLI in a long write, a stuck
/// writer), for tests of what the server does meanwhile. Dropping it ends the hold too.
#[derive(Debug)]
pub enum WriteLock {
    /// SQLite: a connection of its own inside `BEGIN IMMEDIATE`, holding the write lock.
    Sqlite(sqlx::SqliteConnection),
    /// PostgreSQL: a transaction holding `settings` in `EXCLUSIVE` mode (no writes to it).
    Postgres(sqlx::PgConnection),
}

impl TestDatabase {
    /// Runs `sql` from a connection of its own: rows no port writes (what an earlier release
    /// or an outside tool would leave).
    ///
    /// # Panics
    /// When the database refuses the SQL.
    pub async fn execute(&self, sql: &str) {
        run_script(self.backend, &self.url, None, sql).await;
    }

    /// Takes the write lock (see [`WriteLock`]) from a connection of its own.
    ///
    /// # Panics
    /// When the lock cannot be taken (a test setup failure).
    pub async fn hold_write_lock(&self) -> WriteLock {
        match self.backend {
            Backend::Sqlite => WriteLock::Sqlite(run_on(&self.url, "BEGIN IMMEDIATE").await),
            Backend::Postgres => WriteLock::Postgres(
                run_on(&self.url, "BEGIN; LOCK TABLE settings IN EXCLUSIVE MODE").await,
            ),
        }
    }
}

impl WriteLock {
    /// Ends the hold.
    ///
    /// # Panics
    /// When the database refuses.
    pub async fn release(self) {
        match self {
            WriteLock::Sqlite(conn) => rollback_and_close(conn).await,
            WriteLock::Postgres(conn) => rollback_and_close(conn).await,
        }
    }
}

/// A new connection to `url` that has run `sql`.
async fn run_on<C>(url: &str, sql: &'static str) -> C
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    let mut conn = C::connect(url).await.expect("connect");
    sqlx::raw_sql(sql).execute(&mut conn).await.expect("lock");
    conn
}

async fn rollback_and_close<C>(mut conn: C)
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut conn)
        .await
        .expect("unlock");
    conn.close().await.expect("close");
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let prefix = match base.rsplit_once('/') {
        Some((prefix, _))
            if prefix.contains("://") && prefix.len() > prefix.find("://").unwrap_or(0) + 3 =>
        {
            prefix
        }
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

async fn admin_execute(admin_url: &str, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sql).execute(&mut conn).await?;
    conn.close().await
}

/// A fresh, migrated database of `backend`; `None` when PostgreSQL is not configured.
///
/// # Panics
/// When the database cannot be created (a test setup failure).
pub async fn fresh(backend: Backend) -> Option<TestDatabase> {
    Some(empty(backend).await?.open().await)
}

/// The last migration of release 0.1, the schema the first partners' databases have.
pub const RELEASE_0_1: i64 = 20261126000006;

/// A database of `backend` as an earlier release left it: migrated up to `version` only,
/// with the rows of `script` (SQL) written; `None` when PostgreSQL is not configured.
/// [`EarlierDatabase::upgrade`] opens it with the current code.
///
/// # Panics
/// When the database cannot be created or the script fails (a test setup failure).
pub async fn at_release(backend: Backend, version: i64, script: &str) -> Option<EarlierDatabase> {
    let empty = empty(backend).await?;
    let until = |migrator: &sqlx::migrate::Migrator| sqlx::migrate::Migrator {
        migrations: migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let migrator = match backend {
        Backend::Sqlite => until(&crate::sqlite::MIGRATOR),
        Backend::Postgres => until(&crate::postgres::MIGRATOR),
    };
    run_script(backend, &empty.url, Some(&migrator), script).await;
    Some(EarlierDatabase(empty))
}

/// Runs `sql` on a connection of its own to the database at `url` (creating a SQLite file if
/// needed), after applying `migrator` if given.
///
/// # Panics
/// When the database refuses (a test setup failure).
async fn run_script(
    backend: Backend,
    url: &str,
    migrator: Option<&sqlx::migrate::Migrator>,
    sql: &str,
) {
    use sqlx::Connection;
    async fn on<C>(mut conn: C, migrator: Option<&sqlx::migrate::Migrator>, sql: &str)
    where
        C: sqlx::Connection + sqlx::migrate::Migrate,
        for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
    {
        if let Some(migrator) = migrator {
            migrator.run_direct(&mut conn).await.expect("migrate");
        }
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .expect("execute");
        conn.close().await.expect("close");
    }
    match backend {
        Backend::Sqlite => {
            let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)
                .expect("SQLite URL")
                .create_if_missing(true)
                .foreign_keys(true);
            let conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("connect");
            on(conn, migrator, sql).await;
        }
        Backend::Postgres => {
            let conn = sqlx::PgConnection::connect(url).await.expect("connect");
            on(conn, migrator, sql).await;
        }
    }
}

/// A database left by an earlier release (see [`at_release`]).
#[derive(Debug)]
pub struct EarlierDatabase(Empty);

impl EarlierDatabase {
    /// Opens it as the current release does at start-up, which migrates it.
    ///
    /// # Panics
    /// When it cannot be opened or migrated: the upgrade failed.
    pub async fn upgrade(self) -> TestDatabase {
        self.0.open().await
    }
}

/// A database that exists and has no tables yet.
#[derive(Debug)]
struct Empty {
    url: String,
    backend: Backend,
    guard: Guard,
}

/// A new, empty database of `backend`; `None` when PostgreSQL is not configured.
async fn empty(backend: Backend) -> Option<Empty> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite:{}", dir.path().join("oytel.db").display());
            Some(Empty {
                url,
                backend,
                guard: Guard::Dir(dir),
            })
        }
        Backend::Postgres => {
            let admin_url = postgres_admin_url()?;
            let name = format!(
                "oytel_test_{}",
                oytel_core::numbers::random_base62(16).to_ascii_lowercase()
            );
            admin_execute(&admin_url, &format!("CREATE DATABASE {name}"))
                .await
                .expect("create the test database");
            Some(Empty {
                url: with_database(&admin_url, &name),
                backend,
                guard: Guard::Postgres { admin_url, name },
            })
        }
    }
}

impl Empty {
    /// Opens the store (migrating the database).
    async fn open(self) -> TestDatabase {
        let pool = PoolOptions::default();
        let Empty {
            url,
            backend,
            guard,
        } = self;
        match backend {
            Backend::Sqlite => {
                let store = SqliteStore::open(&url, &pool).await.expect("open SQLite");
                TestDatabase {
                    url,
                    store: Arc::new(store),
                    quotas: Arc::new(oytel_core::limits::MemoryQuotas::default()),
                    backend,
                    _guard: guard,
                }
            }
            Backend::Postgres => {
                let store = Arc::new(PgStore::open(&url, &pool).await.expect("open PostgreSQL"));
                TestDatabase {
                    url,
                    store: store.clone(),
                    quotas: store,
                    backend,
                    _guard: guard,
                }
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Postgres { admin_url, name } = self {
            // Drop may run inside a runtime: do the async work on a thread of its own.
            let (admin_url, name) = (admin_url.clone(), name.clone());
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    let _ = runtime.block_on(admin_execute(
                        &admin_url,
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ));
                }
            })
            .join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:1/postgres", "t1"),
            "postgres://u@h:1/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
    }
}
