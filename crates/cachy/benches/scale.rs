//! Each store as its data grows: at 10k, 100k and 1M items (100-character values, one
//! caller), what a get and a put cost (median and p99 or slowest), what an item costs in
//! memory or on disk, and how long the maintenance takes: `stats` (the store's census),
//! `prune` of a 10% backlog of expired items, a tag flush of 10% of the items stored forever
//! under one tag, and `flush`. Puts are timed with the expired backlog in place: the
//! slowest must not grow with it. Prints a table and writes `bench/results/scale.md`.
//!
//! `./scripts/bench-scale`; `CACHY_SCALE_SIZES=10000,100000` picks the sizes and
//! `CACHY_BENCH_STORES=redis,sqlite` the stores. The file store stops at 100k items: Python
//! cachy's layout costs tens of kilobytes of folders per item. Run by `cargo test` (without
//! `--bench`), it only checks that it works: 1,000 items on the embedded stores.

use std::path::Path;
use std::time::{Duration, Instant};

use cachy::inspect::{Census, no_progress};
use cachy::{CacheManager, Expiry, Repository};
use cachy_testkit::servers::{
    MariaDbServer, MemcachedServer, PostgresServer, RedisServer, TestServer,
};

const VALUE_CHARS: usize = 100;
/// Timed gets and puts at each size.
const SAMPLES: usize = 2_000;
const BATCH: usize = 1_000;
/// The file store's largest size.
const FILE_MAX: usize = 100_000;

struct Row {
    store: &'static str,
    items: usize,
    fill_per_s: f64,
    get: (Duration, Duration),
    put: (Duration, Duration, Duration),
    bytes_per_item: Option<f64>,
    stats: Option<Duration>,
    prune: Option<Duration>,
    tag_flush: Duration,
    flush: Duration,
}

/// How much a store holds now, in bytes, as this benchmark can see it.
type Footprint = Box<dyn Fn(&Repository) -> Option<u64>>;

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = match std::env::var("CACHY_SCALE_SIZES") {
        Ok(sizes) => sizes
            .split(',')
            .map(|s| s.trim().parse().unwrap())
            .collect(),
        Err(_) if measuring => vec![10_000, 100_000, 1_000_000],
        Err(_) => vec![1_000],
    };
    let only = std::env::var("CACHY_BENCH_STORES").ok();
    let wanted = |store: &str| {
        let embedded = matches!(store, "memory" | "file" | "sqlite");
        (measuring || embedded)
            && only
                .as_deref()
                .is_none_or(|only| only.split(',').any(|s| s.trim() == store))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    let mut measure = |store: &'static str, config: serde_json::Value, footprint: Footprint| {
        for &items in &sizes {
            if store == "file" && items > FILE_MAX {
                continue;
            }
            let cache = CacheManager::from_value(serde_json::json!({
                "default": store, "stores": { store: config.clone() }
            }))
            .unwrap()
            .store(None)
            .unwrap();
            let row = runtime.block_on(one_size(store, &cache, items, &footprint));
            println!("{}", line(&row));
            rows.push(row);
        }
    };

    if wanted("memory") {
        measure(
            "memory",
            serde_json::json!({ "driver": "dict" }),
            Box::new(|_| Some(resident_bytes())),
        );
    }
    if wanted("file") {
        let path = folder.path().join("files");
        let counted = path.clone();
        measure(
            "file",
            serde_json::json!({ "driver": "file", "path": path, "hash_type": "md5" }),
            Box::new(move |_| Some(disk_bytes(&counted))),
        );
    }
    if wanted("sqlite") {
        let path = folder.path().join("scale.db");
        measure(
            "sqlite",
            serde_json::json!({
                "driver": "database", "url": format!("sqlite://{}", path.display()),
                "table": "cache", "create_table": true
            }),
            Box::new(move |_| Some(disk_bytes(path.parent().unwrap()))),
        );
    }
    if wanted("redis") {
        let server = RedisServer::start().expect("redis-server is installed");
        measure(
            "redis",
            serde_json::json!({ "driver": "redis", "url": server.url(), "prefix": "scale:" }),
            Box::new(|cache| {
                let redis = (&**cache.backend() as &dyn std::any::Any)
                    .downcast_ref::<cachy::stores::RedisStore>()?;
                let info: String = futures_executor(redis.query(&redis::cmd("INFO"))).ok()?;
                info.lines()
                    .find_map(|line| line.strip_prefix("used_memory:"))
                    .and_then(|bytes| bytes.trim().parse().ok())
            }),
        );
    }
    if wanted("memcached") {
        let server = MemcachedServer::start_with_memory(2048).expect("memcached is installed");
        measure(
            "memcached",
            serde_json::json!({ "driver": "memcached", "servers": [server.address()] }),
            Box::new(|cache| match futures_executor(census(cache))?.0 {
                Census::Servers(servers) => Some(servers.iter().map(|s| s.bytes).sum()),
                _ => None,
            }),
        );
    }
    if wanted("postgres") {
        let server = PostgresServer::start().expect("PostgreSQL is installed");
        let data = server.data_dir().to_owned();
        measure(
            "postgres",
            serde_json::json!({
                "driver": "database", "url": server.url(), "table": "cache", "create_table": true
            }),
            Box::new(move |_| Some(disk_bytes(&data))),
        );
    }
    if wanted("mariadb") {
        let server = MariaDbServer::start().expect("MariaDB is installed");
        let data = server.data_dir().to_owned();
        measure(
            "mariadb",
            serde_json::json!({
                "driver": "database", "url": server.url(), "table": "cache", "create_table": true
            }),
            Box::new(move |_| Some(disk_bytes(&data))),
        );
    }

    let table = markdown(&rows);
    println!("\n{table}");
    if measuring && only.is_none() && std::env::var_os("CACHY_SCALE_SIZES").is_none() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results/scale.md");
        std::fs::write(&path, format!("{}\n\n{table}", header())).unwrap();
        println!("written to {}", path.display());
    }
}

async fn one_size(
    store: &'static str,
    cache: &Repository,
    items: usize,
    footprint: &Footprint,
) -> Row {
    cache.flush().await.unwrap();
    let value = "v".repeat(VALUE_CHARS);
    let before = footprint(cache);
    let started = Instant::now();
    for start in (0..items).step_by(BATCH) {
        let batch: Vec<(String, &str)> = (start..(start + BATCH).min(items))
            .map(|i| (format!("k{i}"), value.as_str()))
            .collect();
        cache.put_many(&batch, Expiry::Minutes(60)).await.unwrap();
    }
    let fill_per_s = items as f64 / started.elapsed().as_secs_f64();
    // Settle the allocator's and the server's own counters before reading them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bytes_per_item = before
        .zip(footprint(cache))
        .map(|(before, after)| after.saturating_sub(before) as f64 / items as f64);

    // The backlog: a tenth as many items again, expired by the time they are read.
    for start in (0..items / 10).step_by(BATCH) {
        let batch: Vec<(String, &str)> = (start..(start + BATCH).min(items / 10))
            .map(|i| (format!("e{i}"), value.as_str()))
            .collect();
        cache.put_many(&batch, Expiry::Seconds(1)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let mut gets = Vec::with_capacity(SAMPLES);
    let mut puts = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let key = format!("k{}", (i * 7_919) % items);
        let started = Instant::now();
        let found: Option<String> = cache.get(&key).await.unwrap();
        gets.push(started.elapsed());
        assert!(found.is_some(), "{store}: {key} was stored");
        let started = Instant::now();
        cache.put(&key, &value, Expiry::Minutes(60)).await.unwrap();
        puts.push(started.elapsed());
    }
    gets.sort();
    puts.sort();

    let stats = census(cache).await.map(|(_, took)| took);
    let prune = match cache.store().inspector() {
        Ok(inspector) => {
            let started = Instant::now();
            // Redis and memcached expire items themselves: they say so at once.
            inspector
                .prune(no_progress())
                .await
                .ok()
                .map(|_| started.elapsed())
        }
        Err(_) => None,
    };

    let tagged = cache.tags(["scale"]);
    for start in (0..items / 10).step_by(BATCH) {
        let writes = (start..(start + BATCH).min(items / 10))
            .map(|i| {
                let (tagged, value) = (&tagged, &value);
                async move { tagged.forever(&format!("t{i}"), value).await }
            })
            .collect::<Vec<_>>();
        for written in futures_util::future::join_all(writes).await {
            written.unwrap();
        }
    }
    let started = Instant::now();
    tagged.flush().await.unwrap();
    let tag_flush = started.elapsed();

    let started = Instant::now();
    cache.flush().await.unwrap();
    let flush = started.elapsed();
    Row {
        store,
        items,
        fill_per_s,
        get: (percentile(&gets, 50), percentile(&gets, 99)),
        put: (
            percentile(&puts, 50),
            percentile(&puts, 99),
            puts[puts.len() - 1],
        ),
        bytes_per_item,
        stats,
        prune,
        tag_flush,
        flush,
    }
}

/// The store's census and how long it took, if the store offers one.
async fn census(cache: &Repository) -> Option<(Census, Duration)> {
    let inspector = cache.store().inspector().ok()?;
    let started = Instant::now();
    let census = inspector.census(no_progress()).await.ok()?;
    Some((census, started.elapsed()))
}

/// Run `work` to completion from the runtime's thread, for the footprints, which are plain
/// functions.
fn futures_executor<T: Send>(work: impl std::future::Future<Output = T> + Send) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(work))
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)]
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The bytes the files under `path` take on disk (`du`).
fn disk_bytes(path: &Path) -> u64 {
    let output = std::process::Command::new("du")
        .args(["-s", "--block-size=1"])
        .arg(path)
        .output()
        .expect("du runs");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or(0)
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn millis(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn cells(row: &Row) -> Vec<String> {
    vec![
        row.store.to_owned(),
        row.items.to_string(),
        format!("{:.0}", row.fill_per_s),
        format!("{} / {}", micros(row.get.0), micros(row.get.1)),
        format!(
            "{} / {} / {}",
            micros(row.put.0),
            micros(row.put.1),
            micros(row.put.2)
        ),
        row.bytes_per_item
            .map_or("—".to_owned(), |b| format!("{b:.0}")),
        row.stats.map_or("—".to_owned(), millis),
        row.prune.map_or("—".to_owned(), millis),
        millis(row.tag_flush),
        millis(row.flush),
    ]
}

fn line(row: &Row) -> String {
    cells(row).join("  ")
}

fn markdown(rows: &[Row]) -> String {
    let mut table = String::from(
        "| store | items | fill (items/s) | get p50 / p99 (µs) | put p50 / p99 / max (µs) | \
         bytes per item | stats (ms) | prune 10% expired (ms) | tag flush, 10% forever (ms) | \
         flush (ms) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        table.push_str(&format!("| {} |\n", cells(row).join(" | ")));
    }
    table
}

fn header() -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "# Stores at scale\n\n{date}; made by `./scripts/bench-scale`. One caller; values of \
         {VALUE_CHARS} characters (pickled); {SAMPLES} timed gets and puts of random live keys \
         per size, with a backlog of a tenth as many expired items in place. Bytes per item: \
         the process's resident memory (memory store), Redis's `used_memory`, memcached's \
         `bytes`, or the disk the files or the database server's data folder take (`du`), \
         before and after filling. `stats` is the store's census (what `cachy stats` prints); \
         `prune` removes the expired backlog (Redis and memcached expire items themselves); \
         the tag flush removes a tenth as many items again, stored forever under one tag."
    )
}
