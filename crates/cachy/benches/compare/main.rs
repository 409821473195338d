//! The comparison: every store, this library (async and blocking) next to its peers — the raw
//! client doing the same operation (moka, redis-rs, the memcached protocol by hand, sqlx),
//! Python cachy 0.3.0 on the same stores, and `redis-benchmark` — with one caller and with
//! 64, in one run on servers started here. Writes `bench/results/latest.md` and
//! `bench/results/latest.svg` and prints the table.
//!
//! `./scripts/bench` (after `./scripts/test` has installed the servers). Every cell is
//! measured in interleaved rounds (see `measure.rs`): 5 rounds of 300 ms windows per subject,
//! after a 75 ms warm-up. `./scripts/bench --quick` (or `CACHY_BENCH_QUICK=1`) runs 2
//! rounds of 150 ms for iterating; `CACHY_BENCH_ROUNDS=N` and `CACHY_BENCH_WINDOW_MS=M`
//! override either; `CACHY_BENCH_STORES=file,sqlite` measures only those stores (and then
//! prints the table without writing the results). Without `--bench` (`cargo test --bench compare`) every cell runs one
//! 20 ms window, to check that it runs.
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

use measure::{Bench, Peer};

fn manager(store: serde_json::Value) -> CacheManager {
    CacheManager::from_value(serde_json::json!({ "stores": { "s": store } })).unwrap()
}

/// A positive number from the environment variable `name`.
fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) if n > 0 => Some(n),
        _ => panic!("{name} must be a positive number, not {value:?}"),
    }
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("CACHY_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let (rounds, window) = match (measuring, quick) {
        (false, _) => (1, 20),
        (true, true) => (2, 150),
        (true, false) => (5, 300),
    };
    let rounds = env_number("CACHY_BENCH_ROUNDS").map_or(rounds, |n| n as usize);
    let duration = Duration::from_millis(env_number("CACHY_BENCH_WINDOW_MS").unwrap_or(window));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bench = Bench {
        runtime,
        duration,
        rounds,
        warm_up: if measuring {
            duration / 4
        } else {
            Duration::ZERO
        },
        python: if measuring { python_cachy() } else { None },
    };
    let only = std::env::var("CACHY_BENCH_STORES").ok();
    let wanted = |store: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|s| s.trim() == store))
    };
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    let payload = cachy::serializer::Serializer::pickle()
        .serialize(&user())
        .unwrap();

    if wanted("memory") {
        let memory = manager(serde_json::json!({ "driver": "dict" }));
        rows.extend(bench.measure(
            "memory",
            &memory,
            vec![
                Peer::new("moka", peers::moka(&bench)),
                Peer::new("RwLock HashMap", peers::hashmap(&bench, payload.clone())),
            ],
            Some(serde_json::json!({ "driver": "dict" })),
            vec![],
        ));
    }

    if wanted("file") {
        let folder = tempfile::tempdir().unwrap();
        let python_folder = tempfile::tempdir().unwrap();
        let file = manager(serde_json::json!({ "driver": "file", "path": folder.path() }));
        bench
            .runtime
            .block_on(file.put("hit", &user(), 60))
            .unwrap();
        let (fs_direct, fs_hop) = peers::std_fs(&bench, folder.path());
        rows.extend(bench.measure(
            "file",
            &file,
            vec![
                Peer::new("std::fs", fs_direct),
                Peer::new("std::fs + spawn_blocking", fs_hop),
            ],
            Some(serde_json::json!({ "driver": "file", "path": python_folder.path() })),
            vec![],
        ));
    }

    if wanted("redis") {
        let redis =
            RedisServer::start().expect("redis-server is installed (./scripts/test installs it)");
        let redis_cache = manager(
            serde_json::json!({ "driver": "redis", "url": redis.url(), "prefix": "bench:" }),
        );
        let redis_rs = peers::redis_rs(&bench, &redis.url(), payload.clone());
        rows.extend(bench.measure(
        "redis",
        &redis_cache,
        vec![Peer::new("redis-rs", redis_rs)],
        Some(serde_json::json!({ "driver": "redis", "host": "127.0.0.1", "port": redis.port(), "prefix": "py:" })),
        vec![Peer::new("redis-benchmark", peers::redis_benchmark_tool(redis.port())).cold()],
    ));
    }

    if wanted("memcached") {
        let memcached =
            MemcachedServer::start().expect("memcached is installed (./scripts/test installs it)");
        let memcached_cache =
            manager(serde_json::json!({ "driver": "memcached", "servers": [memcached.address()] }));
        let memcached_raw = peers::raw_memcached(memcached.address(), payload.clone());
        rows.extend(bench.measure(
        "memcached",
        &memcached_cache,
        vec![Peer::new("raw protocol", memcached_raw)],
        Some(serde_json::json!({ "driver": "memcached", "servers": [memcached.address()], "prefix": "py:" })),
        vec![],
    ));
    }

    let sqlite_folder = tempfile::tempdir().unwrap();
    let sqlite_url = format!(
        "sqlite://{}",
        sqlite_folder.path().join("bench.db").display()
    );
    let postgres = wanted("postgres").then(|| {
        PostgresServer::start().expect("PostgreSQL is installed (./scripts/test installs it)")
    });
    let mariadb = wanted("mariadb").then(|| {
        MariaDbServer::start().expect("MariaDB is installed (./scripts/test installs it)")
    });
    let databases = [
        ("sqlite", wanted("sqlite").then(|| sqlite_url.clone())),
        ("postgres", postgres.as_ref().map(|s| s.url())),
        ("mariadb", mariadb.as_ref().map(|s| s.url())),
    ];
    for (store, url) in databases
        .into_iter()
        .filter_map(|(store, url)| Some((store, url?)))
    {
        let cache = manager(
            serde_json::json!({ "driver": "database", "url": url, "table": "bench", "create_table": true }),
        );
        bench
            .runtime
            .block_on(cache.put("hit", &user(), 60))
            .unwrap();
        let mut raw = vec![Peer::new(
            "sqlx",
            peers::sqlx(&bench, store, &url, payload.clone()),
        )];
        if store == "sqlite" {
            raw.extend(peers::rusqlite(
                &bench,
                &sqlite_folder.path().join("rusqlite.db"),
                payload.clone(),
            ));
        }
        rows.extend(bench.measure(store, &cache, raw, None, vec![]));
    }

    let elapsed = started.elapsed();
    println!(
        "measured in {:.0} s ({rounds} rounds of {} ms)",
        elapsed.as_secs_f64(),
        duration.as_millis()
    );
    if !measuring {
        return;
    }
    if only.is_some() {
        let header = report::header(&report::date(), &bench, elapsed);
        println!("\n{}", report::markdown(&rows, &header));
        println!("CACHY_BENCH_STORES is set: bench/results/ left as it was");
        return;
    }
    let date = report::date();
    let header = report::header(&date, &bench, elapsed);
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/results");
    std::fs::create_dir_all(folder).unwrap();
    let table = report::markdown(&rows, &header);
    std::fs::write(format!("{folder}/latest.md"), &table).unwrap();
    std::fs::write(format!("{folder}/latest.svg"), report::svg(&rows, &date)).unwrap();
    println!("\n{table}\nwritten to bench/results/latest.md and bench/results/latest.svg");
}
