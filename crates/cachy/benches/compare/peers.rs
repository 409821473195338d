//! The peers cachy is compared with: the raw client doing the same operation (moka, redis-rs,
//! the memcached protocol by hand, sqlx), `redis-benchmark`, and Python cachy 0.3.0.

use std::sync::Arc;
use std::time::Duration;

use cachy_testkit::bench::{
    RawMemcached, User, python_throughput, raw_memcached_throughput, redis_benchmark, throughput,
    user,
};
use sqlx::AssertSqlSafe;

use crate::measure::{Bench, Raw};

/// Seed Python's own hit key on `store` (its values are its own pickles), if this run
/// compares with Python.
pub fn seed_python(bench: &Bench, store: &serde_json::Value) {
    if let Some(python) = &bench.python {
        python_throughput(python, store, "get", Duration::from_millis(1), 1);
    }
}

/// Python cachy 0.3.0's ops/s on `store`; `None` if this run does not compare with Python
/// or it could not run.
pub fn python(bench: &Bench, store: &serde_json::Value, op: &str, callers: usize) -> Option<f64> {
    let python = bench.python.as_deref()?;
    python_throughput(python, store, op, bench.duration, callers)
}

/// Memory: moka holding the typed value.
pub fn moka(bench: &Bench) -> Raw<'_> {
    let moka: moka::sync::Cache<String, User> = moka::sync::Cache::builder()
        .time_to_live(Duration::from_secs(3600))
        .build();
    moka.insert("hit".to_owned(), user());
    Box::new(move |op, tasks| {
        let (moka, get) = (moka.clone(), op == "get");
        throughput(&bench.runtime, tasks, bench.duration, move || {
            let moka = moka.clone();
            async move {
                if get {
                    moka.get("hit").unwrap();
                } else {
                    moka.insert("put".to_owned(), user());
                }
            }
        })
    })
}

/// Redis: `GET` and `SET … EX` of the stored bytes on a redis-rs connection manager.
pub fn redis_rs<'a>(bench: &'a Bench, url: &str, payload: Vec<u8>) -> Raw<'a> {
    let connection = bench
        .runtime
        .block_on(redis::aio::ConnectionManager::new(
            redis::Client::open(url).unwrap(),
        ))
        .unwrap();
    Box::new(move |op, tasks| {
        let (connection, payload, get) = (connection.clone(), payload.clone(), op == "get");
        throughput(&bench.runtime, tasks, bench.duration, move || {
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
        })
    })
}

/// Redis: `redis-benchmark` on the server at `port` (0 if it cannot run).
pub fn redis_benchmark_tool(port: u16) -> Raw<'static> {
    Box::new(move |op, clients| {
        redis_benchmark(port, if op == "get" { "get" } else { "set" }, clients).unwrap_or(0.0)
    })
}

/// memcached: the protocol by hand, one connection per thread; seeds `raw:hit` first.
pub fn raw_memcached(bench: &Bench, address: String, payload: Vec<u8>) -> Raw<'_> {
    RawMemcached::connect(&address).set("raw:hit", &payload, 1, 600);
    Box::new(move |op, threads| {
        raw_memcached_throughput(&address, &payload, op == "get", threads, bench.duration)
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
            let pool = bench
                .runtime
                .block_on(sqlx::SqlitePool::connect(url))
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
    Box::new(move |op, tasks| {
        let (pool, select, upsert, payload) = (
            pool.clone(),
            select.clone(),
            upsert.clone(),
            payload.clone(),
        );
        let get = op == "get";
        throughput(&bench.runtime, tasks, bench.duration, move || {
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
        })
    })
}
