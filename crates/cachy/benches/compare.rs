//! The comparison: every store, this library (async and blocking) next to its peers — the raw
//! client doing the same operation (moka, redis-rs, the memcached protocol by hand, sqlx),
//! Python cachy 0.3.0 on the same stores, and `redis-benchmark` — with one caller and with
//! 64, in one run on servers started here. Writes `bench/results/latest.md` and
//! `bench/results/latest.svg` and prints the table.
//!
//! `./scripts/bench` (after `./scripts/test` has installed the servers).

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cachy::{CacheManager, Repository};
use cachy_testkit::bench::{
    RawMemcached, User, python_cachy, python_throughput, raw_memcached_throughput, redis_benchmark,
    thread_throughput, throughput, user,
};
use cachy_testkit::servers::{MariaDbServer, MemcachedServer, PostgresServer, RedisServer};
use sqlx::AssertSqlSafe;

const CONCURRENCY: usize = 64;
const MODES: [(&str, usize); 2] = [("1 caller", 1), ("64 callers", CONCURRENCY)];
const OPS: [&str; 2] = ["get", "put"];

/// One measured line: a store, an operation, a number of callers, and each subject's ops/s.
struct Row {
    store: &'static str,
    op: &'static str,
    mode: &'static str,
    results: Vec<(String, f64)>,
}

/// A raw peer: ops/s for (op, callers).
type Raw<'a> = Box<dyn Fn(&str, usize) -> f64 + 'a>;

struct Bench {
    runtime: tokio::runtime::Runtime,
    duration: Duration,
    python: Option<String>,
}

impl Bench {
    fn cachy_async(&self, repo: &Repository, op: &str, tasks: usize) -> f64 {
        let repo = repo.clone();
        let get = op == "get";
        throughput(&self.runtime, tasks, self.duration, move || {
            let repo = repo.clone();
            async move {
                if get {
                    repo.get::<User>("hit").await.unwrap().unwrap();
                } else {
                    repo.put("put", &user(), 60).await.unwrap();
                }
            }
        })
    }

    fn cachy_blocking(&self, manager: &CacheManager, op: &str, threads: usize) -> f64 {
        let blocking = cachy::blocking::CacheManager::from_async(manager.clone()).unwrap();
        let get = op == "get";
        thread_throughput(
            threads,
            self.duration,
            move || blocking.clone(),
            move |cache| {
                if get {
                    cache.get::<User>("hit").unwrap().unwrap();
                } else {
                    cache.put("put", &user(), 60).unwrap();
                }
            },
        )
    }

    fn measure(
        &self,
        store: &'static str,
        manager: &CacheManager,
        raw: Option<(&str, Raw<'_>)>,
        python_store: Option<serde_json::Value>,
        tool: Option<(&str, Raw<'_>)>,
    ) -> Vec<Row> {
        let mut rows = Vec::new();
        let repo = manager.store(None).unwrap();
        self.runtime.block_on(repo.put("hit", &user(), 60)).unwrap();
        if let Some(python) = &self.python
            && let Some(store) = &python_store
        {
            // Seed Python's own hit key (its values are its own pickles).
            python_throughput(python, store, "get", Duration::from_millis(1), 1);
        }
        for op in OPS {
            for (mode, callers) in MODES {
                let mut results = vec![
                    ("cachy".to_owned(), self.cachy_async(&repo, op, callers)),
                    (
                        "cachy blocking".to_owned(),
                        self.cachy_blocking(manager, op, callers),
                    ),
                ];
                if let Some((name, raw)) = &raw {
                    results.push(((*name).to_owned(), raw(op, callers)));
                }
                if let (Some(python), Some(store)) = (&self.python, &python_store)
                    && let Some(ops) = python_throughput(python, store, op, self.duration, callers)
                {
                    results.push(("Python cachy 0.3.0".to_owned(), ops));
                }
                if let Some((name, tool)) = &tool {
                    results.push(((*name).to_owned(), tool(op, callers)));
                }
                println!("{store:10} {op:4} {mode:11} {}", describe(&results));
                rows.push(Row {
                    store,
                    op,
                    mode,
                    results,
                });
            }
        }
        rows
    }
}

fn describe(results: &[(String, f64)]) -> String {
    results
        .iter()
        .map(|(name, ops)| format!("{name}: {ops:.0}/s"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn manager(store: serde_json::Value) -> CacheManager {
    CacheManager::from_value(serde_json::json!({ "stores": { "s": store } })).unwrap()
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

fn version(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| "not found".to_owned())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
                    / 1024
                    / 1024
            })
        })
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu}), {memory} GiB")
}

fn markdown(rows: &[Row], header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}\n");
    let _ = writeln!(
        out,
        "Operations per second (higher is better); ratios are cachy's throughput over the peer's.\n"
    );
    let _ = writeln!(
        out,
        "| store | op | callers | subject | ops/s | cachy / subject |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for row in rows {
        let ours = row.results[0].1;
        for (name, ops) in &row.results {
            let ratio = if name == "cachy" {
                "—".to_owned()
            } else {
                format!("{:.2}x", ours / ops)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {name} | {ops:.0} | {ratio} |",
                row.store, row.op, row.mode
            );
        }
    }
    out
}

/// A horizontal bar chart of every row, on a log scale.
fn svg(rows: &[Row], title: &str) -> String {
    let colors = ["#1f77b4", "#aec7e8", "#2ca02c", "#d62728", "#9467bd"];
    let subjects = [
        "cachy",
        "cachy blocking",
        "raw",
        "Python cachy 0.3.0",
        "redis-benchmark",
    ];
    let color = |name: &str| {
        let index =
            if name.starts_with("raw") || name == "moka" || name == "redis-rs" || name == "sqlx" {
                2
            } else {
                subjects.iter().position(|s| *s == name).unwrap_or(2)
            };
        colors[index]
    };
    let bar = 12;
    let height: usize = 60
        + rows
            .iter()
            .map(|r| r.results.len() * bar + 10)
            .sum::<usize>();
    let (left, width) = (230.0, 560.0);
    let x = |ops: f64| (ops.max(100.0).log10() - 2.0) / 5.0 * width;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"10\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"18\" font-size=\"13\">{title}</text>\n"
    );
    for (i, label) in ["100", "1k", "10k", "100k", "1M", "10M"].iter().enumerate() {
        let at = left + i as f64 * width / 5.0;
        let _ = writeln!(
            out,
            "<line x1=\"{at}\" y1=\"30\" x2=\"{at}\" y2=\"{height}\" stroke=\"#ddd\"/><text x=\"{at}\" y=\"40\">{label}/s</text>"
        );
    }
    let mut y = 50;
    for row in rows {
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\">{} {} ({})</text>",
            y + 10,
            row.store,
            row.op,
            row.mode
        );
        for (name, ops) in &row.results {
            let _ = writeln!(
                out,
                "<rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{name} {ops:.0}</text>",
                x(*ops),
                bar - 2,
                color(name),
                left + x(*ops) + 4.0,
                y + bar - 3
            );
            y += bar;
        }
        y += 10;
    }
    out.push_str("</svg>\n");
    out
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let duration = if measuring {
        Duration::from_millis(1500)
    } else {
        Duration::from_millis(20)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bench = Bench {
        runtime,
        duration,
        python: if measuring { python_cachy() } else { None },
    };
    let mut rows = Vec::new();
    let payload = cachy::serializer::Serializer::pickle()
        .serialize(&user())
        .unwrap();

    // Memory: moka holding the typed value is the raw peer.
    let moka: moka::sync::Cache<String, User> = moka::sync::Cache::builder()
        .time_to_live(Duration::from_secs(3600))
        .build();
    moka.insert("hit".to_owned(), user());
    let moka_raw: Raw<'_> = Box::new(|op, tasks| {
        let (moka, get) = (moka.clone(), op == "get");
        throughput(&bench.runtime, tasks, duration, move || {
            let moka = moka.clone();
            async move {
                if get {
                    moka.get("hit").unwrap();
                } else {
                    moka.insert("put".to_owned(), user());
                }
            }
        })
    });
    let memory = manager(serde_json::json!({ "driver": "dict" }));
    rows.extend(bench.measure(
        "memory",
        &memory,
        Some(("moka", moka_raw)),
        Some(serde_json::json!({ "driver": "dict" })),
        None,
    ));

    let folder = tempfile::tempdir().unwrap();
    let python_folder = tempfile::tempdir().unwrap();
    let file = manager(serde_json::json!({ "driver": "file", "path": folder.path() }));
    rows.extend(bench.measure(
        "file",
        &file,
        None,
        Some(serde_json::json!({ "driver": "file", "path": python_folder.path() })),
        None,
    ));

    let redis =
        RedisServer::start().expect("redis-server is installed (./scripts/test installs it)");
    let redis_cache =
        manager(serde_json::json!({ "driver": "redis", "url": redis.url(), "prefix": "bench:" }));
    let raw_redis = bench
        .runtime
        .block_on(redis::aio::ConnectionManager::new(
            redis::Client::open(redis.url()).unwrap(),
        ))
        .unwrap();
    let redis_payload = payload.clone();
    let redis_raw: Raw<'_> = Box::new(|op, tasks| {
        let (connection, payload, get) = (raw_redis.clone(), redis_payload.clone(), op == "get");
        throughput(&bench.runtime, tasks, duration, move || {
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
    });
    let redis_port = redis.port();
    let redis_tool: Raw<'_> = Box::new(move |op, clients| {
        redis_benchmark(redis_port, if op == "get" { "get" } else { "set" }, clients).unwrap_or(0.0)
    });
    rows.extend(bench.measure(
        "redis",
        &redis_cache,
        Some(("redis-rs", redis_raw)),
        Some(serde_json::json!({ "driver": "redis", "host": "127.0.0.1", "port": redis.port(), "prefix": "py:" })),
        Some(("redis-benchmark", redis_tool)),
    ));

    let memcached =
        MemcachedServer::start().expect("memcached is installed (./scripts/test installs it)");
    let memcached_cache =
        manager(serde_json::json!({ "driver": "memcached", "servers": [memcached.address()] }));
    RawMemcached::connect(&memcached.address()).set("raw:hit", &payload, 1, 600);
    let (address, memcached_payload) = (memcached.address(), payload.clone());
    let memcached_raw: Raw<'_> = Box::new(move |op, threads| {
        raw_memcached_throughput(&address, &memcached_payload, op == "get", threads, duration)
    });
    rows.extend(bench.measure(
        "memcached",
        &memcached_cache,
        Some(("raw protocol", memcached_raw)),
        Some(serde_json::json!({ "driver": "memcached", "servers": [memcached.address()], "prefix": "py:" })),
        None,
    ));

    let sqlite_folder = tempfile::tempdir().unwrap();
    let sqlite_url = format!(
        "sqlite://{}",
        sqlite_folder.path().join("bench.db").display()
    );
    let postgres =
        PostgresServer::start().expect("PostgreSQL is installed (./scripts/test installs it)");
    let mariadb =
        MariaDbServer::start().expect("MariaDB is installed (./scripts/test installs it)");
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
    for (store, url) in [
        ("sqlite", sqlite_url.clone()),
        ("postgres", postgres.url()),
        ("mariadb", mariadb.url()),
    ] {
        let cache = manager(
            serde_json::json!({ "driver": "database", "url": url, "table": "bench", "create_table": true }),
        );
        bench
            .runtime
            .block_on(cache.put("hit", &user(), 60))
            .unwrap();
        let raw: Raw<'_> = match store {
            "sqlite" => {
                let pool = bench
                    .runtime
                    .block_on(sqlx::SqlitePool::connect(&url))
                    .unwrap();
                sqlx_raw(
                    &bench,
                    pool,
                    "bench",
                    "\"key\"",
                    question,
                    payload.clone(),
                    on_conflict("\"key\"", question),
                )
            }
            "postgres" => {
                let pool = bench.runtime.block_on(sqlx::PgPool::connect(&url)).unwrap();
                sqlx_raw(
                    &bench,
                    pool,
                    "bench",
                    "\"key\"",
                    dollar,
                    payload.clone(),
                    on_conflict("\"key\"", dollar),
                )
            }
            _ => {
                let pool = bench
                    .runtime
                    .block_on(sqlx::MySqlPool::connect(&url))
                    .unwrap();
                let upsert = |table: &str| {
                    format!(
                        "INSERT INTO {table} (`key`, value, expiration) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value), expiration = VALUES(expiration)"
                    )
                };
                sqlx_raw(
                    &bench,
                    pool,
                    "bench",
                    "`key`",
                    question,
                    payload.clone(),
                    upsert,
                )
            }
        };
        let store: &'static str = store;
        rows.extend(bench.measure(store, &cache, Some(("sqlx", raw)), None, None));
    }

    if !measuring {
        return;
    }
    let date = version("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let header = format!(
        "# cachy benchmark comparison\n\n{date}; {}; {}; {}; {}; {}; {}; SQLite bundled by sqlx; Python cachy 0.3.0 with python-memcached 1.62.\n\n\
         Each cell runs {:.1} s; \"64 callers\" is 64 tokio tasks (cachy, redis-rs, moka, sqlx), 64 threads (cachy blocking, the raw memcached protocol, Python) \
         or 64 clients (`redis-benchmark -c 64`). Made by `./scripts/bench`.",
        machine(),
        version("rustc", &["-V"]),
        version("redis-server", &["--version"]),
        version("memcached", &["-V"]),
        version("mariadbd", &["--version"]),
        version("/usr/lib/postgresql/15/bin/postgres", &["--version"]),
        duration.as_secs_f64(),
    );
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/results");
    std::fs::create_dir_all(folder).unwrap();
    let table = markdown(&rows, &header);
    std::fs::write(format!("{folder}/latest.md"), &table).unwrap();
    std::fs::write(
        format!("{folder}/latest.svg"),
        svg(&rows, &format!("cachy vs peers, ops/s (log scale), {date}")),
    )
    .unwrap();
    println!("\n{table}\nwritten to bench/results/latest.md and bench/results/latest.svg");
}
