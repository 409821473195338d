//! The peers cachy is compared with: the raw client doing the same operation (moka, redis-rs,
//! the memcached protocol by hand, sqlx), `redis-benchmark`, Python cachy 0.3.0, and the
//! physical limits of the embedded stores (a `HashMap` behind a lock, `std::fs` on the file
//! store's layout, rusqlite on the database store's table).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cachy_testkit::bench::{
    RawMemcached, User, python_throughput, raw_memcached_throughput, redis_benchmark_requests,
    thread_throughput, throughput, user,
};
use sqlx::AssertSqlSafe;

use crate::measure::{Bench, Peer, Raw};

/// Seed Python's own hit key on `store` (its values are its own pickles), if this run
/// compares with Python.
pub fn seed_python(bench: &Bench, store: &serde_json::Value) {
    if let Some(python) = &bench.python {
        python_throughput(python, store, "get", Duration::from_millis(1), 1);
    }
}

/// Python cachy 0.3.0's ops/s on `store`; `None` if this run does not compare with Python
/// or it could not run.
pub fn python(
    bench: &Bench,
    store: &serde_json::Value,
    op: &str,
    callers: usize,
    duration: Duration,
) -> Option<f64> {
    let python = bench.python.as_deref()?;
    python_throughput(python, store, op, duration, callers)
}

/// Memory: moka holding the typed value.
pub fn moka(bench: &Bench) -> Raw<'_> {
    let moka: moka::sync::Cache<String, User> = moka::sync::Cache::builder()
        .time_to_live(Duration::from_secs(3600))
        .build();
    moka.insert("hit".to_owned(), user());
    Box::new(move |op, tasks, duration| {
        let (moka, get) = (moka.clone(), op == "get");
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let moka = moka.clone();
            async move {
                if get {
                    moka.get("hit").unwrap();
                } else {
                    moka.insert("put".to_owned(), user());
                }
            }
        }))
    })
}

/// Memory, the limit: a `HashMap` behind a std `RwLock` holding the serialized bytes (no
/// codec, no expiry), on the same tokio tasks.
pub fn hashmap(bench: &Bench, payload: Vec<u8>) -> Raw<'_> {
    let payload: Arc<[u8]> = payload.into();
    let map: Arc<RwLock<HashMap<String, Arc<[u8]>>>> = Arc::default();
    map.write()
        .unwrap()
        .insert("hit".to_owned(), Arc::clone(&payload));
    Box::new(move |op, tasks, duration| {
        let (map, payload, get) = (map.clone(), payload.clone(), op == "get");
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let (map, payload) = (map.clone(), payload.clone());
            async move {
                if get {
                    map.read().unwrap().get("hit").cloned().unwrap();
                } else {
                    map.write().unwrap().insert("put".to_owned(), payload);
                }
            }
        }))
    })
}

/// The file of `key` in a file store at `root` with the default hash (SHA-256: eight folder
/// levels named by the digest's first byte pairs, then the digest), as the store lays it out.
pub fn file_of(root: &Path, key: &str) -> PathBuf {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    let mut path = root.to_path_buf();
    for level in 0..8 {
        path.push(&digest[level * 2..level * 2 + 2]);
    }
    path.push(digest);
    path
}

/// The files the `std::fs` peers read and write: the store's own `hit` file and the file
/// its `put` key has, with the bytes of `hit` (header and value).
struct Files {
    hit: PathBuf,
    put: PathBuf,
    content: Vec<u8>,
}

impl Files {
    fn run(&self, get: bool) {
        if get {
            std::fs::read(&self.hit).unwrap();
        } else {
            // As the store: a temporary file in the same folder, renamed over the value.
            static COUNT: AtomicU64 = AtomicU64::new(0);
            let temp = self.put.with_file_name(format!(
                ".tmp-peer-{}",
                COUNT.fetch_add(1, Ordering::Relaxed)
            ));
            let mut file = std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&temp)
                .unwrap();
            file.write_all(&self.content).unwrap();
            drop(file);
            std::fs::rename(&temp, &self.put).unwrap();
        }
    }
}

/// File, the limit: `std::fs::read` of the store's file for `hit`, and a temporary file
/// renamed over the file of `put`, in the store's folder at `root` (where `hit` is stored).
/// The direct calls on threads, and the same calls each in `tokio::task::spawn_blocking` on
/// tokio tasks (the hop the store pays).
pub fn std_fs<'a>(bench: &'a Bench, root: &Path) -> (Raw<'a>, Raw<'a>) {
    let hit = file_of(root, "hit");
    let content = std::fs::read(&hit).expect("the file store keeps `hit` at its digest's path");
    let put = file_of(root, "put");
    std::fs::create_dir_all(put.parent().unwrap()).unwrap();
    let files = Arc::new(Files { hit, put, content });
    let direct = {
        let files = files.clone();
        Box::new(move |op: &str, threads, duration| {
            let get = op == "get";
            Some(thread_throughput(
                threads,
                duration,
                {
                    let files = files.clone();
                    move || files.clone()
                },
                move |files| files.run(get),
            ))
        }) as Raw<'a>
    };
    let hop = Box::new(move |op: &str, tasks, duration| {
        let (files, get) = (files.clone(), op == "get");
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let files = files.clone();
            async move {
                tokio::task::spawn_blocking(move || files.run(get))
                    .await
                    .unwrap();
            }
        }))
    }) as Raw<'a>;
    (direct, hop)
}

/// Redis: `GET` and `SET … EX` of the stored bytes on a redis-rs connection manager.
pub fn redis_rs<'a>(bench: &'a Bench, url: &str, payload: Vec<u8>) -> Raw<'a> {
    let connection = bench
        .runtime
        .block_on(redis::aio::ConnectionManager::new(
            redis::Client::open(url).unwrap(),
        ))
        .unwrap();
    Box::new(move |op, tasks, duration| {
        let (connection, payload, get) = (connection.clone(), payload.clone(), op == "get");
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let (mut connection, payload) = (connection.clone(), payload.clone());
            async move {
                if get {
                    let _: Vec<u8> = redis::cmd("GET")
                        .arg("bench:hit")
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                } else {
                    let () = redis::cmd("SET")
                        .arg("bench:put")
                        .arg(payload)
                        .arg("EX")
                        .arg(3600)
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                }
            }
        }))
    })
}

/// Redis: `redis-benchmark` on the server at `port` (`None` if it cannot run). It runs a
/// number of requests rather than a time: 20,000 (one client) or 200,000 (64) per 1.5 s of
/// window, at least 1,000.
pub fn redis_benchmark_tool(port: u16) -> Raw<'static> {
    Box::new(move |op, clients, duration| {
        let base = if clients == 1 { 20_000.0 } else { 200_000.0 };
        let requests = (base * duration.as_secs_f64() / 1.5).max(1_000.0) as usize;
        let test = if op == "get" { "get" } else { "set" };
        redis_benchmark_requests(port, test, clients, requests)
    })
}

/// memcached: the protocol by hand, one connection per thread; seeds `raw:hit` first.
pub fn raw_memcached(address: String, payload: Vec<u8>) -> Raw<'static> {
    RawMemcached::connect(&address).set("raw:hit", &payload, 1, 600);
    Box::new(move |op, threads, duration| {
        Some(raw_memcached_throughput(
            &address,
            &payload,
            op == "get",
            threads,
            duration,
        ))
    })
}

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
