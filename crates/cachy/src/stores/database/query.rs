//! The terms the database store and each database speak in: the values bound to a
//! statement, the rows read back, and why a statement failed.

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
    /// No connection came free in time: the pool had `open` of its `max` open, all busy.
    #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
    NoFreeConnection { open: u32, max: u32 },
    /// The pool opened no connection in time, and one more attempt to connect failed: of
    /// what kind, and why.
    #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
    NoConnectionOpened {
        kind: crate::ErrorKind,
        reason: String,
    },
    #[cfg(feature = "database-sqlite")]
    Sqlite(rusqlite::Error),
    /// No connection came free within the store's `timeout`.
    #[cfg(feature = "database-sqlite")]
    NoConnection(Duration),
    /// Other writes of this process kept the database locked past the store's `timeout`.
    #[cfg(feature = "database-sqlite")]
    NoWriteTurn(Duration),
    /// A column held something this store never writes (another program's row).
    #[cfg(feature = "database-sqlite")]
    Column(String),
    /// The thread that ran the statement panicked or was cancelled.
    #[cfg(feature = "database-sqlite")]
    Worker(String),
    /// The call had to wait on tokio's blocking pool, outside a tokio runtime.
    #[cfg(feature = "database-sqlite")]
    NoRuntime(crate::Error),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::Sqlx(e) => e.fmt(f),
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::NoFreeConnection { open, max } => write!(
                f,
                "no connection came free within the store's `timeout` (connections in this \
                 runtime's pool: {open} of at most {max}, all busy; the server took a new one \
                 at once)"
            ),
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            DbError::NoConnectionOpened { reason, .. } => write!(
                f,
                "no connection to the database server could be opened within the store's \
                 `timeout`: {reason}"
            ),
            #[cfg(feature = "database-sqlite")]
            DbError::Sqlite(e) => e.fmt(f),
            #[cfg(feature = "database-sqlite")]
            DbError::NoConnection(waited) => write!(
                f,
                "no connection came free within {:.1} s",
                waited.as_secs_f64()
            ),
            #[cfg(feature = "database-sqlite")]
            DbError::NoWriteTurn(waited) => write!(
                f,
                "other writes waiting for the database's lock kept this one waiting for over \
                 {:.1} s",
                waited.as_secs_f64()
            ),
            #[cfg(feature = "database-sqlite")]
            DbError::Column(message) | DbError::Worker(message) => f.write_str(message),
            #[cfg(feature = "database-sqlite")]
            DbError::NoRuntime(e) => e.fmt(f),
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
            _ => None,
        }
    }
}
