//! What the connection pools of both backends check when a connection comes back.

/// The pools' `after_release` check: a connection goes back to its pool only outside any
/// transaction.
///
/// A future dropped inside a transaction (its client disconnected, a timeout fired) leaves
/// the rollback queued on the connection, which the ping below runs. But sqlx's SQLite driver
/// can also lose a transaction altogether: a future dropped in `begin_with` after the
/// `BEGIN` ran, before the `Transaction` existed, leaves the connection inside a transaction
/// that nothing will end. On the one writer connection that held the write lock for good:
/// every later write failed with "attempted to call begin_with at non-zero transaction
/// depth" and other processes with "database is locked" (issue #24). Such a connection is
/// closed instead, which rolls its transaction back; the pool opens a fresh one.
pub(crate) fn outside_transaction<C: sqlx::Connection>(
    conn: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if conn.is_in_transaction() {
            // Runs a rollback queued by a dropped transaction, if that is all it is.
            conn.ping().await?;
        }
        if conn.is_in_transaction() {
            tracing::warn!(
                "a database connection came back inside a transaction (its request was \
                 cancelled); closing it, which rolls the transaction back"
            );
            return Ok(false);
        }
        Ok(true)
    })
}

/// A pool's figures for the metrics: its name, the connections open, of which idle.
pub(crate) fn figures<DB: sqlx::Database>(
    name: &'static str,
    pool: &sqlx::Pool<DB>,
) -> (&'static str, u32, u32) {
    (
        name,
        pool.size(),
        u32::try_from(pool.num_idle()).unwrap_or(0),
    )
}
