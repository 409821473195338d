//! The databases' peers: raw sqlx on every database the store runs on, and rusqlite on the
//! SQLite store's table (on threads and on the runtime's tasks).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachy_testkit::bench::{thread_throughput, throughput};
use sqlx::AssertSqlSafe;

use crate::measure::{Bench, Peer, Raw};

/// Databases: raw sqlx on the `bench` table of `store` (`sqlite`, `postgres` or `mariadb`)
/// at `url`, with the database store's statements.
pub fn sqlx<'a>(bench: &'a Bench, store: &str, url: &str, payload: Vec<u8>) -> Raw<'a> {
    let on_conflict = |key: &'static str, p: fn(usize) -> String| {
        move |table: &str| {
            format!(
                "INSERT INTO {table} ({key}, value, expiration) VALUES ({}, {}, {}) ON CONFLICT ({key}) DO UPDATE SET value = excluded.value, expiration = excluded.expiration",
                p(1),
                p(2),
                p(3)
            )
        }
    };
    fn question(_: usize) -> String {
        "?".to_owned()
    }
    fn dollar(n: usize) -> String {
        format!("${n}")
    }
    match store {
        "sqlite" => {
            // Connected as the database store connects to SQLite (`stores/database/mod.rs`):
            // WAL, `synchronous = NORMAL` (its default), a 10 s busy timeout.
            use std::str::FromStr as _;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .unwrap()
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10));
            let pool = bench
                .runtime
                .block_on(sqlx::SqlitePool::connect_with(options))
                .unwrap();
            sqlx_raw(
                bench,
                pool,
                "bench",
                "\"key\"",
                question,
                payload,
                on_conflict("\"key\"", question),
            )
        }
        "postgres" => {
            let pool = bench.runtime.block_on(sqlx::PgPool::connect(url)).unwrap();
            sqlx_raw(
                bench,
                pool,
                "bench",
                "\"key\"",
                dollar,
                payload,
                on_conflict("\"key\"", dollar),
            )
        }
        _ => {
            let pool = bench
                .runtime
                .block_on(sqlx::MySqlPool::connect(url))
                .unwrap();
            let upsert = |table: &str| {
                format!(
                    "INSERT INTO {table} (`key`, value, expiration) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value), expiration = VALUES(expiration)"
                )
            };
            sqlx_raw(bench, pool, "bench", "`key`", question, payload, upsert)
        }
    }
}

/// Raw sqlx: the same statements as the database store, on a pool of the same size.
fn sqlx_raw<'a, DB, F>(
    bench: &'a Bench,
    pool: sqlx::Pool<DB>,
    table: &str,
    key: &str,
    p: fn(usize) -> String,
    payload: Vec<u8>,
    upsert_of: F,
) -> Raw<'a>
where
    DB: sqlx::Database,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    F: Fn(&str) -> String,
{
    let select: Arc<str> = format!(
        "SELECT value, expiration FROM {table} WHERE {key} = {}",
        p(1)
    )
    .into();
    let upsert: Arc<str> = upsert_of(table).into();
    let payload: Arc<[u8]> = payload.into();
    Box::new(move |op, tasks, duration| {
        let (pool, select, upsert, payload) = (
            pool.clone(),
            select.clone(),
            upsert.clone(),
            payload.clone(),
        );
        let get = op == "get";
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let (pool, select, upsert, payload) = (
                pool.clone(),
                select.clone(),
                upsert.clone(),
                payload.clone(),
            );
            async move {
                if get {
                    sqlx::query(AssertSqlSafe(&*select))
                        .bind(b"hit".as_slice())
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                } else {
                    sqlx::query(AssertSqlSafe(&*upsert))
                        .bind(b"put".as_slice())
                        .bind(&*payload)
                        .bind(9_999_999_999i64)
                        .execute(&pool)
                        .await
                        .unwrap();
                }
            }
        }))
    })
}

/// The database store's SQLite table and statements (`statements.rs`), for rusqlite.
const SQLITE_CREATE: &str = "CREATE TABLE IF NOT EXISTS bench (\"key\" BLOB PRIMARY KEY, value BLOB NOT NULL, expiration INTEGER NOT NULL); \
     CREATE INDEX IF NOT EXISTS bench_expiration ON bench (expiration)";
const SQLITE_SELECT: &str = "SELECT value, expiration FROM bench WHERE \"key\" = ?1";
const SQLITE_UPSERT: &str = "INSERT INTO bench (\"key\", value, expiration) VALUES (?1, ?2, ?3) \
     ON CONFLICT (\"key\") DO UPDATE SET value = excluded.value, expiration = excluded.expiration";

/// A rusqlite connection to `path` in WAL mode (as the store opens its files) with
/// `synchronous` (`NORMAL` or `FULL`) and the store's busy timeout.
fn sqlite_connection(path: &Path, synchronous: &str) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.busy_timeout(Duration::from_secs(10)).unwrap();
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    connection
        .execute_batch(&format!("PRAGMA synchronous = {synchronous}"))
        .unwrap();
    connection
}

/// A connection taken from a pool for one thread, given back when the thread ends.
struct Lease {
    connection: Option<rusqlite::Connection>,
    pool: Arc<Mutex<Vec<rusqlite::Connection>>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.pool.lock().unwrap().push(connection);
        }
    }
}

thread_local! {
    /// The connection of one runtime thread for [`rusqlite_on_tasks`], with its file.
    static TASK_CONNECTION: std::cell::RefCell<Option<(PathBuf, rusqlite::Connection)>> =
        const { std::cell::RefCell::new(None) };
}

/// SQLite's point lookup from tokio tasks, as an async store must run it: on the runtime's
/// threads (a hop to other threads costs more than the statement), each with a connection of
/// its own, opened on its first call.
fn rusqlite_on_tasks<'a>(bench: &'a Bench, path: &Path) -> Raw<'a> {
    let path = path.to_path_buf();
    Box::new(move |_: &str, tasks, duration| {
        let path = path.clone();
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let path = path.clone();
            async move {
                // As any async code that never waits should: otherwise one task loops over
                // reads for its whole window while the tasks queued on its thread wait, and
                // the cell measures one or two callers, not 64.
                tokio::task::coop::consume_budget().await;
                TASK_CONNECTION.with(|cell| {
                    let mut cell = cell.borrow_mut();
                    if cell.as_ref().is_none_or(|(open, _)| *open != path) {
                        *cell = Some((path.clone(), sqlite_connection(&path, "NORMAL")));
                    }
                    let (_, connection) = cell.as_ref().unwrap();
                    let mut select = connection.prepare_cached(SQLITE_SELECT).unwrap();
                    let (value, _expiration): (Vec<u8>, i64) = select
                        .query_row([&b"hit"[..]], |row| Ok((row.get(0)?, row.get(1)?)))
                        .unwrap();
                    assert!(!value.is_empty());
                });
            }
        }))
    })
}

/// SQLite, the limit: rusqlite with cached prepared statements on the database store's table
/// in its own WAL file at `path` (holding `hit` with `payload`). `get` is the store's point
/// lookup on threads with a connection each (opened beforehand, kept across windows); `put`
/// is its upsert in autocommit, with `synchronous = NORMAL` (the store's default) and `FULL`
/// (SQLite's own default), on threads sharing one `Mutex<Connection>` (SQLite takes one
/// writer at a time; separate connections would wait in its busy handler's sleeps).
pub fn rusqlite<'a>(bench: &'a Bench, path: &Path, payload: Vec<u8>) -> Vec<Peer<'a>> {
    let setup = sqlite_connection(path, "NORMAL");
    setup.execute_batch(SQLITE_CREATE).unwrap();
    setup
        .execute(
            SQLITE_UPSERT,
            rusqlite::params![&b"hit"[..], &payload[..], 9_999_999_999i64],
        )
        .unwrap();
    drop(setup);
    let pool = Arc::new(Mutex::new(
        (0..64)
            .map(|_| sqlite_connection(path, "NORMAL"))
            .collect::<Vec<_>>(),
    ));
    let get = {
        let path = path.to_path_buf();
        Box::new(move |_: &str, threads, duration| {
            let (pool, path) = (pool.clone(), path.clone());
            Some(thread_throughput(
                threads,
                duration,
                move || {
                    let connection = pool.lock().unwrap().pop();
                    Lease {
                        connection: Some(
                            connection.unwrap_or_else(|| sqlite_connection(&path, "NORMAL")),
                        ),
                        pool: pool.clone(),
                    }
                },
                |lease: &mut Lease| {
                    let connection = lease.connection.as_ref().unwrap();
                    let mut select = connection.prepare_cached(SQLITE_SELECT).unwrap();
                    let (value, _expiration): (Vec<u8>, i64) = select
                        .query_row([&b"hit"[..]], |row| Ok((row.get(0)?, row.get(1)?)))
                        .unwrap();
                    assert!(!value.is_empty());
                },
            ))
        }) as Raw<'static>
    };
    let payload: Arc<[u8]> = payload.into();
    let put = |synchronous: &str| {
        let connection = Arc::new(Mutex::new(sqlite_connection(path, synchronous)));
        let payload = payload.clone();
        Box::new(move |_: &str, threads, duration| {
            let (connection, payload) = (connection.clone(), payload.clone());
            Some(thread_throughput(
                threads,
                duration,
                move || (connection.clone(), payload.clone()),
                |(connection, payload): &mut (Arc<Mutex<rusqlite::Connection>>, Arc<[u8]>)| {
                    let connection = connection.lock().unwrap();
                    connection
                        .prepare_cached(SQLITE_UPSERT)
                        .unwrap()
                        .execute(rusqlite::params![
                            &b"put"[..],
                            &payload[..],
                            9_999_999_999i64
                        ])
                        .unwrap();
                },
            ))
        }) as Raw<'static>
    };
    vec![
        Peer::new("rusqlite", get).only(&["get"]),
        Peer::new("rusqlite on tasks", rusqlite_on_tasks(bench, path)).only(&["get"]),
        Peer::new("rusqlite NORMAL", put("NORMAL")).only(&["put"]),
        Peer::new("rusqlite FULL", put("FULL")).only(&["put"]),
    ]
}
