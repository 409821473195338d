//! The hybrid store next to its peers, in one run: a hit (from its in-process level) against
//! a memory-store hit and a Redis `get`, over interleaved rounds, with medians and their
//! spread; then the invalidation delay across processes: this process updates a key 1000
//! times, a second process (this binary again) reads it in a loop, and each delay runs from
//! the start of the update to the moment the other process reads the new value.
//!
//! `cargo bench -p cachy-rs --bench hybrid` (`HYBRID_ROUNDS`, default 7; `HYBRID_UPDATES`,
//! default 1000). Run by `cargo test` (without `--bench`), it only checks that it works: one
//! short round and 20 updates.

use cachy_testkit::bench::median;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cachy::stores::HybridStore;
use cachy::{CacheManager, Repository};
use cachy_testkit::bench::{User, user};
use cachy_testkit::servers::{RedisServer, TestServer};
use serde_json::{Value, json};

/// Set in the reading process: the manager's config.
const CHILD_CONFIG: &str = "CACHY_HYBRID_BENCH_CHILD";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn config(url: &str) -> Value {
    json!({
        "default": "hybrid",
        "stores": {
            "memory": { "driver": "memory" },
            // The memory store's serializer, so that hits compare the stores, not the formats.
            "redis": { "driver": "redis", "url": url, "prefix": "bench:", "serializer": "msgpack" },
            "hybrid": { "driver": "hybrid", "l2": "redis", "l1_ttl": 600 }
        }
    })
}

fn hybrid_of(repo: &Repository) -> &HybridStore {
    (&**repo.backend() as &dyn std::any::Any)
        .downcast_ref::<HybridStore>()
        .expect("a hybrid store")
}

/// Nanoseconds per `get` hit of `key`, over `n` calls.
async fn per_hit(repo: &Repository, key: &str, n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let found: Option<User> = repo.get(key).await.unwrap();
        std::hint::black_box(found.expect("a hit"));
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn show(ns: f64) -> String {
    if ns >= 1000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The reading process: report every new value of `k`, with the time it was read.
fn child(config: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache = CacheManager::from_value(serde_json::from_str(config).unwrap())
            .unwrap()
            .store(None)
            .unwrap();
        while !hybrid_of(&cache).is_subscribed() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut out = std::io::stdout();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
        let mut last = None;
        loop {
            let value: Option<u64> = cache.get("k").await.unwrap();
            if value != last {
                if let Some(value) = value {
                    writeln!(out, "{value} {}", now_micros()).unwrap();
                    out.flush().unwrap();
                }
                last = value;
            }
            tokio::task::yield_now().await;
        }
    });
}

fn main() {
    if let Ok(config) = std::env::var(CHILD_CONFIG) {
        child(&config);
        return;
    }
    let measuring = std::env::args().any(|a| a == "--bench");
    let rounds = if measuring {
        env_number("HYBRID_ROUNDS", 7)
    } else {
        1
    };
    let updates = if measuring {
        env_number("HYBRID_UPDATES", 1000)
    } else {
        20
    };
    let (hits, redis_gets) = if measuring {
        (200_000, 2_000)
    } else {
        (2_000, 20)
    };
    let server = RedisServer::start().expect("redis-server is installed");
    let config = config(&server.url());
    let manager = CacheManager::from_value(config.clone()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let memory = manager.store("memory").unwrap();
    let redis = manager.store("redis").unwrap();
    let hybrid = manager.store("hybrid").unwrap();
    runtime.block_on(async {
        while !hybrid_of(&hybrid).is_subscribed() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        memory.put("u", &user(), 60).await.unwrap();
        hybrid.put("u", &user(), 60).await.unwrap();
        // Warm: the first read fills the hybrid store's first level.
        per_hit(&hybrid, "u", 1000).await;
        per_hit(&memory, "u", 1000).await;
        per_hit(&redis, "u", 100).await;
    });

    let (mut memory_ns, mut hybrid_ns, mut redis_ns) = (Vec::new(), Vec::new(), Vec::new());
    let (mut over_memory, mut redis_over) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (m, h, r) = runtime.block_on(async {
            // The order turns each round, so no case always runs first.
            let mut m = 0.0;
            let mut h = 0.0;
            let mut r = 0.0;
            for case in 0..3 {
                match (case + round) % 3 {
                    0 => m = per_hit(&memory, "u", hits).await,
                    1 => h = per_hit(&hybrid, "u", hits).await,
                    _ => r = per_hit(&redis, "u", redis_gets).await,
                }
            }
            (m, h, r)
        });
        memory_ns.push(m);
        hybrid_ns.push(h);
        redis_ns.push(r);
        over_memory.push(h / m);
        redis_over.push(r / h);
        eprintln!(
            "round {}: memory {m:.0} ns, hybrid {h:.0} ns, redis {r:.0} ns",
            round + 1
        );
    }

    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_CONFIG, config.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the bench binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let mut delays = Vec::with_capacity(updates);
    runtime.block_on(async {
        for i in 1..=updates as u64 {
            let start = now_micros();
            hybrid.put("k", &i, 60).await.unwrap();
            loop {
                let line = lines.next().expect("the reader reports").unwrap();
                let (value, at) = line.split_once(' ').unwrap();
                if value.parse::<u64>().unwrap() == i {
                    delays.push(at.parse::<u64>().unwrap().saturating_sub(start) as f64);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let _ = child.kill();
    let _ = child.wait();

    println!("| case | median | min–max over {rounds} rounds |");
    println!("|---|---|---|");
    for (name, values) in [
        ("memory store hit", &mut memory_ns),
        ("hybrid hit (L1)", &mut hybrid_ns),
        ("Redis get", &mut redis_ns),
    ] {
        let (min, max) = spread(values);
        println!(
            "| {name} | {} | {}–{} |",
            show(median(values)),
            show(min),
            show(max)
        );
    }
    for (name, values) in [
        ("hybrid hit / memory hit", &mut over_memory),
        ("Redis get / hybrid hit", &mut redis_over),
    ] {
        let (min, max) = spread(values);
        println!(
            "| {name} | {:.2}x | {:.2}x–{:.2}x |",
            median(values),
            min,
            max
        );
    }
    delays.sort_by(f64::total_cmp);
    let p99 = delays[(delays.len() * 99 / 100).min(delays.len() - 1)];
    println!(
        "\ninvalidation delay across processes over {} updates: median {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        delays.len(),
        delays[delays.len() / 2],
        p99,
        delays[delays.len() - 1]
    );
}
