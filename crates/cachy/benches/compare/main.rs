//! The comparison: every store, this library (async and blocking) next to its peers — the raw
//! client doing the same operation (moka, redis-rs, the memcached protocol by hand, sqlx),
//! Python cachy 0.3.0 on the same stores, and `redis-benchmark` — with one caller and with
//! 64, in one run on servers started here. Writes `bench/results/latest.md` and
//! `bench/results/latest.svg` and prints the table.
//!
//! `./scripts/bench` (after `./scripts/test` has installed the servers).
//!
//! This file chooses the cells and writes the results; `measure.rs` runs a store's cells,
//! `peers.rs` holds what cachy is compared with, `report.rs` makes the table and the chart.

mod measure;
mod peers;
mod report;

use std::time::Duration;

use cachy::CacheManager;
use cachy_testkit::bench::{python_cachy, user};
use cachy_testkit::servers::{
    MariaDbServer, MemcachedServer, PostgresServer, RedisServer, TestServer,
};

use measure::Bench;

fn manager(store: serde_json::Value) -> CacheManager {
    CacheManager::from_value(serde_json::json!({ "stores": { "s": store } })).unwrap()
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

    let moka = peers::moka(&bench);
    let memory = manager(serde_json::json!({ "driver": "dict" }));
    rows.extend(bench.measure(
        "memory",
        &memory,
        Some(("moka", moka)),
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
    let redis_rs = peers::redis_rs(&bench, &redis.url(), payload.clone());
    rows.extend(bench.measure(
        "redis",
        &redis_cache,
        Some(("redis-rs", redis_rs)),
        Some(serde_json::json!({ "driver": "redis", "host": "127.0.0.1", "port": redis.port(), "prefix": "py:" })),
        Some(("redis-benchmark", peers::redis_benchmark_tool(redis.port()))),
    ));

    let memcached =
        MemcachedServer::start().expect("memcached is installed (./scripts/test installs it)");
    let memcached_cache =
        manager(serde_json::json!({ "driver": "memcached", "servers": [memcached.address()] }));
    let memcached_raw = peers::raw_memcached(&bench, memcached.address(), payload.clone());
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
        let raw = peers::sqlx(&bench, store, &url, payload.clone());
        rows.extend(bench.measure(store, &cache, Some(("sqlx", raw)), None, None));
    }

    if !measuring {
        return;
    }
    let date = report::date();
    let header = report::header(&date, duration);
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/results");
    std::fs::create_dir_all(folder).unwrap();
    let table = report::markdown(&rows, &header);
    std::fs::write(format!("{folder}/latest.md"), &table).unwrap();
    std::fs::write(format!("{folder}/latest.svg"), report::svg(&rows, &date)).unwrap();
    println!("\n{table}\nwritten to bench/results/latest.md and bench/results/latest.svg");
}
