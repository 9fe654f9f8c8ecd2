//! What differs between the backends' SQL, in one value per backend: the shared storage code
//! (`datastore/`) reads it wherever SQLite and PostgreSQL need different text.

/// The SQL that differs between the backends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// How a write transaction begins. SQLite: `BEGIN IMMEDIATE`, taking the write lock at
    /// once, so that a transaction never fails half-way for another writer.
    pub begin: &'static str,
    /// Appended to a `SELECT` that reads a row to update. PostgreSQL: ` FOR UPDATE`; SQLite's
    /// write lock already serialises.
    pub lock: &'static str,
    /// Appended to the claim of due deliveries (`d` is the deliveries table there).
    /// PostgreSQL: skip rows another claim holds.
    pub skip_locked: &'static str,
    /// Run first in the transaction that claims due deliveries, so that claims take turns
    /// (PostgreSQL: a transaction-scoped advisory lock); empty when the write lock does it.
    pub serialize_claims: &'static str,
    /// An SQL expression for the database's clock, in milliseconds since the epoch.
    pub now_ms: &'static str,
    /// How several statements travel in one round trip.
    pub chaining: Chaining,
}

/// How a backend runs several statements in one round trip.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Chaining {
    /// PostgreSQL: the writes as data-modifying common table expressions of the final query
    /// (`WITH w0 AS (INSERT …), w1 AS (INSERT …) SELECT …`). They run exactly once, whether
    /// or not the query reads them; constraints are checked at the end of the statement.
    Cte,
    /// SQLite: statements separated by semicolons, which sqlx runs one after another, binding
    /// each its share of the arguments.
    Semicolons,
}

impl Chaining {
    /// The text before write `i` (from 0) of a chain.
    pub(crate) fn before_write(self, i: usize) -> String {
        match (self, i) {
            (Chaining::Cte, 0) => "WITH w0 AS (".to_owned(),
            (Chaining::Cte, i) => format!("), w{i} AS ("),
            (Chaining::Semicolons, 0) => String::new(),
            (Chaining::Semicolons, _) => "; ".to_owned(),
        }
    }

    /// The text between the last write and the final query.
    pub(crate) fn before_query(self) -> &'static str {
        match self {
            Chaining::Cte => ") ",
            Chaining::Semicolons => "; ",
        }
    }
}
