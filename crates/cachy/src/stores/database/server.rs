//! PostgreSQL and MySQL/MariaDB, on sqlx's connection pools.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;

use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

use super::query::{DbError, Param, ReadRow, RowRead};
use crate::ErrorKind;

/// A sqlx pool to a database server, and why it last timed out.
pub(super) struct ServerPool {
    sqlx: Sqlx,
    /// When the pool last timed out, what one attempt to connect then said; shared by the
    /// calls timing out meanwhile, so that many of them make one attempt.
    explained: tokio::sync::Mutex<Option<(Instant, Explanation)>>,
    /// The writes whose callers gave up on them while they ran, still finishing.
    given_up: Arc<GivenUp>,
}

/// The sqlx pool itself.
pub(super) enum Sqlx {
    #[cfg(feature = "database-postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "database-mysql")]
    MySql(sqlx::MySqlPool),
}

/// What an attempt to connect said after the pool timed out.
#[derive(Clone)]
enum Explanation {
    /// The server took it: the pool's connections were all busy.
    Busy,
    /// The server refused it, or did not answer in time: what kind of failure, and why.
    Refused(ErrorKind, String),
}

/// Run `$body` with `$pool` bound to whichever pool this is: the statements differ per
/// database only in their text.
macro_rules! with_pool {
    ($pool_value:expr, |$pool:ident| $body:expr) => {
        match &$pool_value.sqlx {
            #[cfg(feature = "database-postgres")]
            Sqlx::Postgres($pool) => $body,
            #[cfg(feature = "database-mysql")]
            Sqlx::MySql($pool) => $body,
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
    pub(super) fn new(sqlx: Sqlx) -> Self {
        ServerPool {
            sqlx,
            explained: tokio::sync::Mutex::new(None),
            given_up: Arc::default(),
        }
    }

    /// Run the write `sql`. Once the writes given up on before it have finished: see
    /// [`Writing`].
    pub(super) async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        self.given_up.finished().await;
        let done = with_pool!(self, |pool| async {
            let mut writing = self.writing(pool.acquire().await?);
            let done = bound!(sql, params).execute(writing.connection()).await;
            writing.ended();
            done.map(|done| done.rows_affected())
        }
        .await);
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
        self.given_up.finished().await;
        let done = with_pool!(self, |pool| async {
            let mut writing = self.writing(pool.acquire().await?);
            let done = async {
                let mut tx = writing.connection().begin().await?;
                for row in params.chunks(width) {
                    bound!(sql, row).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            .await;
            writing.ended();
            done
        }
        .await);
        self.explained(done).await
    }

    fn writing<DB: sqlx::Database>(&self, connection: PoolConnection<DB>) -> Writing<DB> {
        let limit = with_pool!(self, |pool| pool.options().get_acquire_timeout());
        Writing {
            connection: Some(connection),
            given_up: Arc::clone(&self.given_up),
            limit,
            ended: false,
        }
    }

    /// `result`, its error explained when it is sqlx's "pool timed out". sqlx tries a
    /// refused connection, and a server's "too many connections", again until the pool's
    /// timeout, then keeps only that it timed out (and the pool's count of connections
    /// includes those it is still trying to open, so it cannot tell either). One attempt to
    /// connect of our own says which it was; the calls that time out while its answer is
    /// fresh (within the store's `timeout`, and a second at least) share it.
    async fn explained<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, DbError> {
        match result {
            Ok(value) => return Ok(value),
            Err(sqlx::Error::PoolTimedOut) => {}
            Err(e) => return Err(DbError::Sqlx(e)),
        }
        let (open, max, timeout) = with_pool!(self, |pool| (
            pool.size(),
            pool.options().get_max_connections(),
            pool.options().get_acquire_timeout()
        ));
        let explanation = {
            let mut last = self.explained.lock().await;
            match &*last {
                Some((at, explanation)) if at.elapsed() < timeout.max(EXPLAINED_FOR) => {
                    explanation.clone()
                }
                _ => {
                    let explanation = self.attempt(timeout).await;
                    *last = Some((Instant::now(), explanation.clone()));
                    explanation
                }
            }
        };
        Err(match explanation {
            Explanation::Busy => DbError::NoFreeConnection { open, max },
            Explanation::Refused(kind, reason) => DbError::NoConnectionOpened { kind, reason },
        })
    }

    /// One attempt to connect, within a quarter of the store's `timeout`, but no less than
    /// a connection takes to open on a busy machine, nor more than a second (a server that
    /// does not answer at all must not hold the caller much longer).
    async fn attempt(&self, timeout: Duration) -> Explanation {
        let limit = (timeout / 4).clamp(EXPLAINING.0, EXPLAINING.1);
        with_pool!(self, |pool| {
            match tokio::time::timeout(limit, pool.connect_options().connect()).await {
                Ok(Ok(connection)) => {
                    let _ = tokio::time::timeout(limit, connection.close()).await;
                    Explanation::Busy
                }
                Ok(Err(refused)) => Explanation::Refused(kind_of(&refused), refused.to_string()),
                // Not proof that the server is gone: it may only be slow to take one.
                Err(_) => Explanation::Refused(
                    ErrorKind::Timeout,
                    format!(
                        "an attempt to open one did not finish within {:.2} s either",
                        limit.as_secs_f64()
                    ),
                ),
            }
        })
    }
}

/// The writes whose callers gave up on them (a timeout, an aborted task) while their
/// statement was on its way: each finishes on its connection in a task of its own.
#[derive(Default)]
struct GivenUp {
    finishing: AtomicUsize,
    done: tokio::sync::Notify,
}

impl GivenUp {
    /// Once no write given up on is finishing.
    async fn finished(&self) {
        while self.finishing.load(Ordering::Acquire) > 0 {
            let mut done = std::pin::pin!(self.done.notified());
            done.as_mut().enable();
            if self.finishing.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }
}

/// A connection running a write. A statement whose future is dropped may still reach the
/// server: sqlx sends the rest of it when the connection is next used, and the server runs
/// it then, after a later write the caller made on another connection. So a write dropped
/// before it ended finishes on its connection in a task of its own (a ping waits for the
/// answers still due), and the store's later writes wait for that task: a write given up on
/// never lands after a later one. The wait is bounded by the pool's acquire timeout.
struct Writing<DB: sqlx::Database> {
    connection: Option<PoolConnection<DB>>,
    given_up: Arc<GivenUp>,
    limit: Duration,
    ended: bool,
}

impl<DB: sqlx::Database> Writing<DB> {
    fn connection(&mut self) -> &mut DB::Connection {
        self.connection
            .as_mut()
            .expect("a write's connection is held until it is dropped")
    }

    /// The write ended (or failed): nothing of it is left to finish.
    fn ended(&mut self) {
        self.ended = true;
    }
}

impl<DB: sqlx::Database> Drop for Writing<DB> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let (Some(mut connection), Ok(runtime)) = (
            self.connection.take(),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let given_up = Arc::clone(&self.given_up);
        let limit = self.limit;
        given_up.finishing.fetch_add(1, Ordering::AcqRel);
        runtime.spawn(async move {
            let _ = tokio::time::timeout(limit, connection.ping()).await;
            drop(connection);
            given_up.finishing.fetch_sub(1, Ordering::AcqRel);
            given_up.done.notify_waiters();
        });
    }
}

/// How long the attempt that explains a pool's timeout may take: at least, and at most.
const EXPLAINING: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));

/// How long an explanation serves the calls that time out after it, at least (else the
/// store's `timeout`): with a short `timeout`, at most one attempt a second.
const EXPLAINED_FOR: Duration = Duration::from_secs(1);

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
        sqlx::Error::Database(db) if is_temporary_refusal(&**db) => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    }
}

/// Whether the server turned the call away for now: a connection failure (SQLSTATE class
/// 08), too many connections (for the server, the role or the user), the server starting
/// up or shutting down (normally or after a crash). It will take calls again.
fn is_temporary_refusal(db: &dyn sqlx::error::DatabaseError) -> bool {
    let code = db.code();
    let code = code.as_deref().unwrap_or_default();
    if code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03") {
        return true;
    }
    // MySQL and MariaDB give too many connections (1040), and a user's connection limits
    // (1203, 1226), the generic SQLSTATE 42000 or HY000: their own numbers tell.
    #[cfg(feature = "database-mysql")]
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(mysql.number(), 1040 | 1203 | 1226);
    }
    false
}
