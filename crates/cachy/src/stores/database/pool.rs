//! What the database store asks of a database, whichever it is: run a statement with bound
//! bytes and integers, read rows of bytes and integers, or run one statement per group of
//! parameters in a transaction. SQLite answers on rusqlite (`sqlite.rs`), PostgreSQL and
//! MySQL/MariaDB on sqlx (`server.rs`); the statements themselves are in `statements.rs`.

use std::borrow::Cow;
#[cfg(feature = "database-sqlite")]
use std::time::Duration;

/// A value bound to a statement's placeholder: the store only binds bytes and integers.
#[derive(Debug, Clone)]
pub(super) enum Param<'a> {
    Bytes(Cow<'a, [u8]>),
    Int(i64),
}

impl<'a> Param<'a> {
    pub(super) fn bytes(bytes: &'a [u8]) -> Self {
        Param::Bytes(Cow::Borrowed(bytes))
    }

    /// The same value, owning its bytes (for work handed to another thread).
    #[cfg(feature = "database-sqlite")]
    pub(super) fn into_owned(self) -> Param<'static> {
        match self {
            Param::Bytes(bytes) => Param::Bytes(Cow::Owned(bytes.into_owned())),
            Param::Int(n) => Param::Int(n),
        }
    }
}

/// One row of a result, read column by column (from 0) as the store wrote it.
pub(super) trait RowRead {
    fn bytes(&self, column: usize) -> Result<Vec<u8>, DbError>;
    fn int(&self, column: usize) -> Result<i64, DbError>;
}

/// How a statement's rows become values: a plain function, so that the work can move to
/// another thread with it.
pub(super) type ReadRow<T> = fn(&dyn RowRead) -> Result<T, DbError>;

/// Why a statement failed, before the store names the operation (see `DatabaseStore::error`).
#[derive(Debug)]
pub(super) enum DbError {
    #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
    Sqlx(sqlx::Error),
    #[cfg(feature = "database-sqlite")]
    Sqlite(rusqlite::Error),
    /// No connection came free within the store's `timeout`.
    #[cfg(feature = "database-sqlite")]
    NoConnection(Duration),
    /// A column held something this store never writes (another program's row).
    #[cfg(feature = "database-sqlite")]
    Column(String),
    /// The thread that ran the statement panicked or was cancelled.
    #[cfg(feature = "database-sqlite")]
    Worker(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::Sqlx(e) => e.fmt(f),
            #[cfg(feature = "database-sqlite")]
            DbError::Sqlite(e) => e.fmt(f),
            #[cfg(feature = "database-sqlite")]
            DbError::NoConnection(waited) => write!(
                f,
                "no connection came free within {:.1} s",
                waited.as_secs_f64()
            ),
            #[cfg(feature = "database-sqlite")]
            DbError::Column(message) | DbError::Worker(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::Sqlx(e) => Some(e),
            #[cfg(feature = "database-sqlite")]
            DbError::Sqlite(e) => Some(e),
            #[cfg(feature = "database-sqlite")]
            _ => None,
        }
    }
}

impl DbError {
    /// Whether the error means the cache table is missing.
    pub(super) fn is_missing_table(&self) -> bool {
        match self {
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::Sqlx(e) => super::server::is_missing_table(e),
            #[cfg(feature = "database-sqlite")]
            DbError::Sqlite(e) => e.to_string().contains("no such table"),
            #[cfg(feature = "database-sqlite")]
            _ => false,
        }
    }

    /// Whether the error may come from another process creating the same table at once
    /// (then the idempotent creation is tried again).
    pub(super) fn is_concurrent_creation(&self) -> bool {
        match self {
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::Sqlx(e) => super::server::is_concurrent_creation(e),
            #[cfg(feature = "database-sqlite")]
            _ => false,
        }
    }

    /// What kind of failure this is for the caller: waiting, a server out of reach, or the
    /// database refusing.
    pub(super) fn kind(&self) -> crate::ErrorKind {
        match self {
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::Sqlx(e) => super::server::kind_of(e),
            #[cfg(feature = "database-sqlite")]
            DbError::Sqlite(e) => super::sqlite::kind_of(e),
            #[cfg(feature = "database-sqlite")]
            DbError::NoConnection(_) => crate::ErrorKind::Timeout,
            #[cfg(feature = "database-sqlite")]
            DbError::Column(_) | DbError::Worker(_) => crate::ErrorKind::Backend,
        }
    }
}

/// The connections of one store.
pub(super) enum Pool {
    #[cfg(feature = "database-sqlite")]
    Sqlite(super::sqlite::Connections),
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
