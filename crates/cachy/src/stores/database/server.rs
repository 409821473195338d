//! PostgreSQL and MySQL/MariaDB, on sqlx's connection pools.

use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

use super::query::{DbError, Param, ReadRow, RowRead};
use crate::ErrorKind;

/// A sqlx pool to a database server.
pub(super) enum ServerPool {
    #[cfg(feature = "database-postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "database-mysql")]
    MySql(sqlx::MySqlPool),
}

/// Run `$body` with `$pool` bound to whichever pool this is: the statements differ per
/// database only in their text.
macro_rules! with_pool {
    ($pool_value:expr, |$pool:ident| $body:expr) => {
        match $pool_value {
            #[cfg(feature = "database-postgres")]
            ServerPool::Postgres($pool) => $body,
            #[cfg(feature = "database-mysql")]
            ServerPool::MySql($pool) => $body,
        }
    };
}

/// `query` with every parameter of `params` bound, in order.
macro_rules! bound {
    ($sql:expr, $params:expr) => {{
        let mut query = sqlx::query(AssertSqlSafe($sql));
        for param in $params {
            query = match param {
                Param::Bytes(bytes) => query.bind(bytes.as_ref()),
                Param::Int(n) => query.bind(*n),
            };
        }
        query
    }};
}

/// Rows of each server database, read as the store wrote them.
macro_rules! row_read {
    ($($feature:literal => $row:ty),*) => {$(
        #[cfg(feature = $feature)]
        impl RowRead for $row {
            fn bytes(&self, column: usize) -> Result<Vec<u8>, DbError> {
                self.try_get(column).map_err(DbError::Sqlx)
            }

            fn int(&self, column: usize) -> Result<i64, DbError> {
                self.try_get(column).map_err(DbError::Sqlx)
            }
        }
    )*};
}

row_read!(
    "database-postgres" => sqlx::postgres::PgRow,
    "database-mysql" => sqlx::mysql::MySqlRow
);

impl ServerPool {
    pub(super) async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        let done = with_pool!(self, |pool| bound!(sql, params)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        self.explained(done).await
    }

    pub(super) async fn fetch<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        read: ReadRow<T>,
    ) -> Result<Vec<T>, DbError> {
        let rows = with_pool!(self, |pool| bound!(sql, params)
            .fetch_all(pool)
            .await
            .map(|rows| rows.iter().map(|row| read(row)).collect::<Vec<_>>()));
        self.explained(rows).await?.into_iter().collect()
    }

    pub(super) async fn execute_each(
        &self,
        sql: &str,
        params: &[Param<'_>],
        width: usize,
    ) -> Result<(), DbError> {
        let done = with_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            for row in params.chunks(width) {
                bound!(sql, row).execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        .await);
        self.explained(done).await
    }

    /// `result`, its error explained when it is sqlx's "pool timed out". sqlx tries a
    /// refused connection, and a server's "too many connections", again until the pool's
    /// timeout, then keeps only that it timed out. With no connection open, one more
    /// attempt of our own says why; with connections open, the pool's numbers say they were
    /// all busy.
    async fn explained<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, DbError> {
        let e = match result {
            Ok(value) => return Ok(value),
            Err(sqlx::Error::PoolTimedOut) => sqlx::Error::PoolTimedOut,
            Err(e) => return Err(DbError::Sqlx(e)),
        };
        let (open, max) = with_pool!(self, |pool| (
            pool.size(),
            pool.options().get_max_connections()
        ));
        if open > 0 {
            return Err(DbError::NoFreeConnection { open, max });
        }
        let attempt = with_pool!(self, |pool| {
            // A server that does not answer at all must not hold the caller much longer.
            let limit = (pool.options().get_acquire_timeout() / 4).min(EXPLAINING);
            match tokio::time::timeout(limit, pool.connect_options().connect()).await {
                Ok(Err(refused)) => Some(refused),
                Ok(Ok(connection)) => {
                    let _ = tokio::time::timeout(limit, connection.close()).await;
                    None
                }
                Err(_) => None,
            }
        });
        Err(match attempt {
            Some(refused) => DbError::NoConnectionOpened(refused),
            None => DbError::Sqlx(e),
        })
    }
}

/// How long the attempt that explains a pool's timeout may take at most (and a quarter of
/// the store's `timeout` at most).
const EXPLAINING: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether `e` may come from another process creating the same table or index at once:
/// PostgreSQL reports that as a unique violation in its catalog (`23505`), a relation or
/// type that already exists (`42P07`, `42710`), a deadlock (`40P01`) or a tuple updated
/// concurrently (`XX000`). The statements are idempotent, so these are tried again.
pub(super) fn is_concurrent_creation(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    matches!(
        db.code().as_deref(),
        Some("23505" | "42P07" | "42710" | "40P01" | "XX000")
    )
}

pub(super) fn is_missing_table(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    let code = db.code();
    matches!(code.as_deref(), Some("42P01") | Some("42S02"))
        || db.message().contains("no such table")
        || db.message().contains("doesn't exist")
}

pub(super) fn kind_of(e: &sqlx::Error) -> ErrorKind {
    match e {
        sqlx::Error::PoolTimedOut => ErrorKind::Timeout,
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            ErrorKind::Unavailable
        }
        // Too many connections (PostgreSQL, for the server or the role; MySQL's SQLSTATE),
        // or starting up: the server is there and will take connections again.
        sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("53300" | "57P03" | "08004")) =>
        {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Backend,
    }
}
