#[cfg(not(any(
    feature = "database-sqlite",
    feature = "database-postgres",
    feature = "database-mysql"
)))]
compile_error!(
    "cachy's `database` feature needs a database: enable `database-sqlite`, \
     `database-postgres` or `database-mysql`"
);

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
#[cfg(feature = "database-sqlite")]
use tokio::sync::OnceCell;

use crate::config::StoreConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Lifetime, Store, Ttl};
use crate::stores::backend_key::{MAX_PLAIN_KEY, backend_key};

pub(super) mod config;
mod glob;
mod pool;
mod prune;
mod query;
#[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
mod server;
#[cfg(feature = "database-sqlite")]
mod sqlite;
mod statements;
mod store;

use pool::Pool;
use query::{DbError, Param};
use statements::Statements;

/// Connections per pool unless `max_connections` says otherwise (sqlx's own default).
const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// The expiration written for items stored forever (as Python cachy's file store).
const FOREVER: i64 = 9_999_999_999;

/// The SQL database store (driver `database`): SQLite (embedded, a file or in memory, on
/// rusqlite), PostgreSQL and MySQL/MariaDB (on sqlx).
///
/// The table is Python cachy's: `key` (unique), `value`, `expiration` (integer unix time,
/// `9999999999` for forever). Keys and values are stored as bytes, losslessly: `BLOB` on
/// SQLite, `BYTEA` on PostgreSQL, `VARBINARY(255)`/`LONGBLOB` on MySQL (binary columns compare
/// byte for byte, so no collation folds `K` into `k` or ignores trailing spaces). Keys longer
/// than 250 bytes (with the prefix), and keys that start with `cachy:sha1:`, are stored as
/// `{prefix}cachy:sha1:{digest}`, so no two keys share a row.
///
/// - `get` ignores expired rows; `get_many` is one `SELECT .. IN (..)`; `put_many` is one
///   transaction.
/// - `add` deletes the key's expired row, then inserts if absent (`ON CONFLICT DO NOTHING`,
///   `INSERT OR IGNORE`, `INSERT IGNORE`): of concurrent adds exactly one wins.
/// - `increment` reads the counter and writes it back with a conditional `UPDATE` (compare
///   and swap), retried when another writer changed it in between.
/// - SQLite runs in the calling thread: a statement takes microseconds there, less than
///   handing it to another thread. Calls that arrive while others of their kind run there
///   wait for them and run together: reads in one read transaction, writes in one commit
///   (a batch that fails is rolled back and each of its calls runs alone). A statement
///   that finds the database locked by another connection (or process) waits for it, up
///   to the store's `timeout`, on tokio's blocking pool; so do all statements once they
///   prove slow (over 1 ms, 4 times in a row).
/// - Expired rows are removed by [`prune`](Self::prune) and by a lottery on writes
///   (`prune_lottery`, default 2 in 100, as Laravel), so the table does not grow forever.
/// - A missing table is an error saying how to create it: [`create_table`](Self::create_table),
///   or `create_table = true` in the config.
pub struct DatabaseStore {
    options: ConnectOptions,
    pool: PoolSlot,
    statements: Statements,
    prefix: String,
    table: String,
    create_table: bool,
    lottery: (u64, u64),
    max_connections: u32,
    timeout: Duration,
    /// When the running background prune last showed signs of life (milliseconds since the
    /// Unix epoch; 0: none runs). The lottery's next winners leave it be, unless it has been
    /// silent for [`PRUNE_STALLED`](prune::PRUNE_STALLED): its runtime no longer runs it.
    pruning: Arc<AtomicU64>,
}

impl std::fmt::Debug for DatabaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseStore")
            .field("table", &self.table)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum ConnectOptions {
    #[cfg(feature = "database-sqlite")]
    Sqlite(sqlite::Target, &'static str),
    // Boxed: sqlx's options are several hundred bytes, the SQLite target a few dozen.
    #[cfg(feature = "database-postgres")]
    Postgres(Box<sqlx::postgres::PgConnectOptions>),
    #[cfg(feature = "database-mysql")]
    MySql(Box<sqlx::mysql::MySqlConnectOptions>),
}

/// Where a store keeps its connections, each shared with the background prunes.
enum PoolSlot {
    /// SQLite's, for the store's life: they hold no socket and no task of a runtime.
    #[cfg(feature = "database-sqlite")]
    Embedded(OnceCell<Arc<Pool>>),
    /// A server's, on the runtime of the calls that use them.
    #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
    Server(crate::runtime::RuntimeBound<Arc<Pool>>),
}

impl PoolSlot {
    fn for_options(options: &ConnectOptions) -> Self {
        match options {
            #[cfg(feature = "database-sqlite")]
            ConnectOptions::Sqlite(..) => PoolSlot::Embedded(OnceCell::new()),
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            _ => PoolSlot::Server(crate::runtime::RuntimeBound::new()),
        }
    }
}

mod inspect;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The expiration to write for a lifetime of `ttl`: from the next whole second, so that an
/// item lives at least its TTL (from 100.9 s, a TTL of 1 s written as 101 would end 0.1 s
/// later).
fn expiration(ttl: Ttl) -> i64 {
    match ttl {
        None => FOREVER,
        Some(seconds) => {
            let since_epoch = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let next_second =
                since_epoch.as_secs() as i64 + i64::from(since_epoch.subsec_nanos() > 0);
            next_second
                .saturating_add(i64::try_from(seconds).unwrap_or(FOREVER))
                .min(FOREVER)
        }
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Create the folder of the SQLite database `file` if it is missing (SQLite creates the file,
/// not its folder), so that `sqlite://var/cache.db` works in a fresh checkout.
#[cfg(feature = "database-sqlite")]
fn create_parent_folder(file: &std::path::Path) -> Result<()> {
    let Some(folder) = file.parent().filter(|f| !f.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(folder).map_err(|e| {
        Error::new(
            ErrorKind::Backend,
            format!(
                "cannot create the folder {} for the SQLite file {}",
                folder.display(),
                file.display()
            ),
        )
        .with_field("url")
        .with_source(e)
    })
}

impl DatabaseStore {
    /// Build from a store's configuration: the fields of
    /// [`DatabaseConfig`](config::DatabaseConfig).
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        config.build(Self::with_config)
    }

    async fn pool(&self) -> Result<Cow<'_, Arc<Pool>>> {
        // Making the pool (and the table) is boxed: it would otherwise be part of every
        // call's future, making it a large allocation on each call.
        match &self.pool {
            #[cfg(feature = "database-sqlite")]
            PoolSlot::Embedded(pool) => match pool.get() {
                Some(pool) => Ok(Cow::Borrowed(pool)),
                None => Box::pin(pool.get_or_try_init(|| self.make_pool()))
                    .await
                    .map(Cow::Borrowed),
            },
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            PoolSlot::Server(pool) => match pool.get() {
                Some(pool) => Ok(Cow::Owned(pool)),
                None => Box::pin(pool.get_or_make(|| self.make_pool()))
                    .await
                    .map(Cow::Owned),
            },
        }
    }

    /// A server pool's options: the store's `timeout` and `max_connections`.
    #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
    fn pool_options<DB: sqlx::Database>(&self) -> sqlx::pool::PoolOptions<DB> {
        sqlx::pool::PoolOptions::new()
            .acquire_timeout(self.timeout)
            .max_connections(self.max_connections)
    }

    /// A pool of connections, with the table if asked for.
    async fn make_pool(&self) -> Result<Arc<Pool>> {
        let pool = match self.options.clone() {
            #[cfg(feature = "database-sqlite")]
            ConnectOptions::Sqlite(target, synchronous) => {
                if let sqlite::Target::File {
                    path,
                    read_only: false,
                } = &target
                {
                    create_parent_folder(path)?;
                }
                Pool::Sqlite(Box::new(sqlite::Connections::new(
                    target,
                    synchronous,
                    self.max_connections,
                    self.timeout,
                )))
            }
            #[cfg(feature = "database-postgres")]
            ConnectOptions::Postgres(options) => Pool::Server(server::ServerPool::new(
                server::Sqlx::Postgres(self.pool_options().connect_lazy_with(*options)),
            )),
            #[cfg(feature = "database-mysql")]
            ConnectOptions::MySql(options) => Pool::Server(server::ServerPool::new(
                server::Sqlx::MySql(self.pool_options().connect_lazy_with(*options)),
            )),
        };
        if self.create_table {
            self.create_in(&pool).await?;
        }
        Ok(Arc::new(pool))
    }

    fn error(&self, context: &str, e: DbError) -> Error {
        if e.is_missing_table() {
            let how = if self.create_table {
                // Made when the store connected: something dropped it since.
                "it was dropped after the store created it; create it again with \
                 DatabaseStore::create_table() or `cachy create-table`"
            } else {
                "create it with DatabaseStore::create_table(), or set `create_table = true` in \
                 the store's config"
            };
            return Error::new(
                ErrorKind::Config,
                format!("the cache table `{}` does not exist: {how}", self.table),
            )
            .with_field("table")
            .with_source(e);
        }
        #[cfg(feature = "database-sqlite")]
        if let ConnectOptions::Sqlite(target, _) = &self.options
            && let Some(file) = target.file().filter(|file| file.is_dir())
        {
            return Error::new(
                ErrorKind::Config,
                format!(
                    "database {context} failed: the SQLite URL names a folder ({}), not a \
                     database file",
                    file.display()
                ),
            )
            .with_field("url")
            .with_source(e);
        }
        let place = match &self.options {
            #[cfg(feature = "database-sqlite")]
            ConnectOptions::Sqlite(target, _) => target
                .file()
                .map(|file| format!(" (SQLite file {})", file.display()))
                .unwrap_or_default(),
            #[cfg(any(feature = "database-postgres", feature = "database-mysql"))]
            _ => String::new(),
        };
        Error::new(e.kind(), format!("database {context} failed{place}")).with_source(e)
    }

    /// The key stored in the table for `key`.
    pub fn stored_key(&self, key: &str) -> Vec<u8> {
        backend_key(&self.prefix, key, |full| full.len() <= MAX_PLAIN_KEY).into_bytes()
    }

    /// Create the cache table (and its index on `expiration`) if it does not exist.
    pub async fn create_table(&self) -> Result<()> {
        let pool = self.pool().await?;
        self.create_in(&pool).await
    }

    async fn create_in(&self, pool: &Pool) -> Result<()> {
        for statement in &self.statements.create {
            let mut attempts = 0;
            loop {
                match pool.execute(statement, &[]).await {
                    Ok(_) => break,
                    // Processes creating the table at once: PostgreSQL's `IF NOT EXISTS` is
                    // not safe against a concurrent creation, which fails with a unique
                    // violation in its catalog; once the other one has committed, it is.
                    Err(e) if attempts < 3 && e.is_concurrent_creation() => {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_millis(50 * attempts)).await;
                    }
                    Err(e) => return Err(self.error("CREATE TABLE", e)),
                }
            }
        }
        Ok(())
    }

    /// Run `sql` with `params` (`context` names the operation in an error); the number of
    /// rows it changed.
    async fn execute(&self, context: &str, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let pool = self.pool().await?;
        pool.execute(sql, params)
            .await
            .map_err(|e| self.error(context, e))
    }

    /// Run the query `sql` with `params` (`context` names the operation in an error); its
    /// rows, each read by `read`.
    async fn fetch<T: Send + 'static>(
        &self,
        context: &str,
        sql: &str,
        params: &[Param<'_>],
        read: query::ReadRow<T>,
    ) -> Result<Vec<T>> {
        let pool = self.pool().await?;
        pool.fetch(sql, params, read)
            .await
            .map_err(|e| self.error(context, e))
    }

    /// The live row under `key`: its value and expiration.
    async fn live_row(&self, key: &str) -> Result<Option<(Vec<u8>, i64)>> {
        let key = self.stored_key(key);
        let rows = self
            .fetch(
                "read",
                &self.statements.select,
                &[Param::bytes(&key)],
                |row| Ok((row.bytes(0)?, row.int(1)?)),
            )
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .filter(|(_, expiration)| *expiration > now()))
    }
}

#[cfg(all(test, feature = "database-sqlite"))]
mod tests;
