//! The building blocks every resource's SQL uses: write transactions, statements chained
//! into one round trip, scoped reads and pages.

use oytel_core::ports::{PageRequest, Sequenced, StoreError};
use oytel_core::Scope;
use sqlx::QueryBuilder;

use super::{Db, Store, DIALECT};
use crate::errors::db_error;
use crate::rows::{sequenced, Sequential};

/// A write transaction on this backend.
pub(super) type Tx<'c> = sqlx::Transaction<'c, Db>;

/// Statements sent to the database as one (see [`Chaining`](crate::dialect::Chaining)):
/// writes, then a final query. One round trip instead of one per statement.
pub(super) struct Chain<'a> {
    qb: QueryBuilder<'a, Db>,
    writes: usize,
}

impl<'a> Chain<'a> {
    pub(super) fn new() -> Self {
        Chain {
            qb: QueryBuilder::new(""),
            writes: 0,
        }
    }

    /// Starts the next write: push its statement.
    pub(super) fn write(&mut self) -> &mut QueryBuilder<'a, Db> {
        self.qb.push(DIALECT.chaining.before_write(self.writes));
        self.writes += 1;
        &mut self.qb
    }

    /// Ends the writes: push the final query.
    pub(super) fn query(mut self) -> QueryBuilder<'a, Db> {
        if self.writes > 0 {
            self.qb.push(DIALECT.chaining.before_query());
        }
        self.qb
    }

    /// Runs the writes, if any.
    pub(super) async fn execute(self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        if self.writes == 0 {
            return Ok(());
        }
        let mut query = self.query();
        query.push("SELECT 1");
        query.build().execute(&mut **tx).await.map_err(db_error)?;
        Ok(())
    }
}

/// Pushes `INSERT INTO {head} VALUES (…)`, the values bound by `values`.
pub(super) fn push_insert<'a>(
    qb: &mut QueryBuilder<'a, Db>,
    head: &str,
    values: impl FnOnce(&mut sqlx::query_builder::Separated<'_, 'a, Db, &'static str>),
) {
    qb.push("INSERT INTO ").push(head).push(" VALUES (");
    let mut separated = qb.separated(", ");
    values(&mut separated);
    separated.push_unseparated(")");
}

/// `SELECT <columns> FROM <table>` limited to a scope: the start of every list query.
pub(super) fn scoped_list<'a>(
    columns: &str,
    table: &str,
    scope: &'a Scope,
) -> QueryBuilder<'a, Db> {
    let mut query = QueryBuilder::new(format!("SELECT {columns} FROM {table} WHERE partner_id = "));
    query.push_bind(&scope.partner_id);
    query.push(" AND environment = ");
    query.push_bind(scope.environment.as_str());
    query
}

/// Finishes a list query with the page's cursor and size, newest first by the sequence
/// column `seq` (`"seq"`, or qualified where the query joins), and runs it.
pub(super) async fn fetch_page<R, T>(
    mut query: QueryBuilder<'_, Db>,
    seq: &str,
    page: PageRequest,
    pool: &sqlx::Pool<Db>,
) -> Result<Vec<Sequenced<T>>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin + Sequential,
    T: TryFrom<R, Error = StoreError>,
{
    if let Some(before) = page.before {
        query.push(format_args!(" AND {seq} < "));
        query.push_bind(before);
    }
    query.push(format_args!(" ORDER BY {seq} DESC LIMIT "));
    query.push_bind(i64::from(page.limit));
    let rows: Vec<R> = query
        .build_query_as()
        .fetch_all(pool)
        .await
        .map_err(db_error)?;
    rows.into_iter().map(sequenced).collect()
}

/// One row of `table` by id, within a scope.
pub(super) async fn fetch_scoped_by_id<R, T>(
    columns: &str,
    table: &str,
    scope: &Scope,
    id: &str,
    pool: &sqlx::Pool<Db>,
) -> Result<Option<T>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    T: TryFrom<R, Error = StoreError>,
{
    let row: Option<R> = sqlx::query_as(&format!(
        "SELECT {columns} FROM {table} WHERE id = $1 AND partner_id = $2 AND environment = $3"
    ))
    .bind(id)
    .bind(&scope.partner_id)
    .bind(scope.environment.as_str())
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    row.map(T::try_from).transpose()
}

/// Begins a write transaction as the backend's dialect says (SQLite: taking the write lock).
pub(super) async fn begin_write(store: &Store) -> Result<Tx<'static>, StoreError> {
    store
        .writer
        .begin_with(DIALECT.begin)
        .await
        .map_err(db_error)
}
