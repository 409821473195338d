//! What the database store asks of a database, whichever it is: run a statement with bound
//! bytes and integers, read rows of bytes and integers, or run one statement per group of
//! parameters in a transaction (in the terms of `query.rs`). SQLite answers on rusqlite
//! (`sqlite.rs`), PostgreSQL and MySQL/MariaDB on sqlx (`server.rs`); the statements
//! themselves are in `statements.rs`.

use super::query::{DbError, Param, ReadRow};

impl DbError {
    /// Whether the error means the cache table is missing.
    pub(super) fn is_missing_table(&self) -> bool {
        match self {
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::Sqlx(e) => super::server::is_missing_table(e),
            #[cfg(feature = "database-sqlite")]
            DbError::Sqlite(e) => e.to_string().contains("no such table"),
            _ => false,
        }
    }

    /// Whether the error may come from another process creating the same table at once
    /// (then the idempotent creation is tried again).
    pub(super) fn is_concurrent_creation(&self) -> bool {
        match self {
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::Sqlx(e) => super::server::is_concurrent_creation(e),
            _ => false,
        }
    }

    /// What kind of failure this is for the caller: waiting, a server out of reach, or the
    /// database refusing.
    pub(super) fn kind(&self) -> crate::ErrorKind {
        match self {
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::Sqlx(e) => super::server::kind_of(e),
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::NoConnectionOpened { kind, .. } => *kind,
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::NoFreeConnection { .. } => crate::ErrorKind::Timeout,
            #[cfg(feature = "database-sqlite")]
            DbError::Sqlite(e) => super::sqlite::kind_of(e),
            #[cfg(feature = "database-sqlite")]
            DbError::NoConnection(_) | DbError::NoWriteTurn(_) => crate::ErrorKind::Timeout,
            #[cfg(feature = "database-sqlite")]
            DbError::Column(_) | DbError::Worker(_) => crate::ErrorKind::Backend,
            #[cfg(feature = "database-sqlite")]
            DbError::NoRuntime(_) => crate::ErrorKind::Runtime,
        }
    }
}

/// The connections of one store.
pub(super) enum Pool {
    #[cfg(feature = "database-sqlite")]
    // Boxed: a SQLite store's own pool and batches are several times the size of sqlx's handle.
    Sqlite(Box<super::sqlite::Connections>),
    #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
    Server(super::server::ServerPool),
}

impl Pool {
    /// Run `sql` with `params`; the number of rows it changed.
    pub(super) async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        match self {
            #[cfg(feature = "database-sqlite")]
            Pool::Sqlite(pool) => pool.execute(sql, params).await,
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            Pool::Server(pool) => pool.execute(sql, params).await,
        }
    }

    /// Run the query `sql` with `params`; its rows, each read by `read`.
    pub(super) async fn fetch<T: Send + 'static>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        read: ReadRow<T>,
    ) -> Result<Vec<T>, DbError> {
        match self {
            #[cfg(feature = "database-sqlite")]
            Pool::Sqlite(pool) => pool.fetch(sql, params, read).await,
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            Pool::Server(pool) => pool.fetch(sql, params, read).await,
        }
    }

    /// Run `sql` once for each `width` parameters of `params`, all in one transaction.
    pub(super) async fn execute_each(
        &self,
        sql: &str,
        params: &[Param<'_>],
        width: usize,
    ) -> Result<(), DbError> {
        match self {
            #[cfg(feature = "database-sqlite")]
            Pool::Sqlite(pool) => pool.execute_each(sql, params, width).await,
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            Pool::Server(pool) => pool.execute_each(sql, params, width).await,
        }
    }
}
