//! The hybrid store: the behaviour suite (memory over Redis, memory over SQLite), its
//! config errors, and coherence across OS processes: this test binary is spawned as the other
//! processes, which watch keys and report every value they read (`across.rs`, and on a Redis
//! Cluster through a primary's crash in `cluster.rs`); and what it serves while Redis is down
//! (`outages.rs`).

#![cfg(all(feature = "hybrid", feature = "database-sqlite"))]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cachy::stores::HybridStore;
use cachy::{CacheManager, ErrorKind, Repository};
use cachy_testkit::Fixture;
use cachy_testkit::servers::{RedisServer, TestServer};
use serde_json::{Value, json};

mod across;
mod cluster;
mod outages;

static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();

fn server() -> Option<&'static RedisServer> {
    SERVER.get_or_init(RedisServer::start).as_ref()
}

fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "hybrid{}_{}:",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Stores `redis` and `hybrid` (memory over Redis, Redis as backplane).
fn over_redis(url: &str) -> Value {
    json!({
        "default": "hybrid",
        "stores": {
            "redis": { "driver": "redis", "url": url, "prefix": unique_prefix() },
            "hybrid": { "driver": "hybrid", "l2": "redis", "l1_ttl": 30 }
        }
    })
}

/// Stores `sqlite`, `redis` and `hybrid` (memory over SQLite, Redis as backplane).
fn over_sqlite(redis_url: &str, file: &std::path::Path) -> Value {
    json!({
        "default": "hybrid",
        "stores": {
            "sqlite": {
                "driver": "database", "url": format!("sqlite://{}", file.display()),
                "table": "cache", "create_table": true
            },
            "redis": { "driver": "redis", "url": redis_url, "prefix": unique_prefix() },
            "hybrid": { "driver": "hybrid", "l2": "sqlite", "backplane": "redis", "l1_ttl": 30 }
        }
    })
}

async fn memory_over_redis() -> Option<Fixture> {
    let server = server()?;
    let cache = CacheManager::from_value(over_redis(&server.url())).unwrap();
    Some(Fixture::new(cache.store(None).unwrap(), ()))
}

cachy_testkit::behaviour_suite!(memory_over_redis);

mod over_sqlite {
    use super::*;

    async fn memory_over_sqlite() -> Option<Fixture> {
        let server = server()?;
        let dir = tempfile::tempdir().unwrap();
        let config = over_sqlite(&server.url(), &dir.path().join("cache.db"));
        let cache = CacheManager::from_value(config).unwrap();
        Some(Fixture::new(cache.store(None).unwrap(), dir))
    }

    cachy_testkit::behaviour_suite!(memory_over_sqlite);
}

fn store_error(hybrid: Value) -> cachy::Error {
    let config = json!({
        "default": "hybrid",
        "stores": {
            "redis": { "driver": "redis", "url": "redis://127.0.0.1:1" },
            "dict": { "driver": "dict" },
            "hybrid": hybrid
        }
    });
    CacheManager::from_value(config)
        .unwrap()
        .store(None)
        .unwrap_err()
}

#[test]
fn config_mistakes_are_errors_naming_the_field() {
    let error = store_error(json!({ "driver": "hybrid" }));
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(error.to_string().contains("l2"), "{error}");

    let error = store_error(json!({ "driver": "hybrid", "l2": "nope" }));
    assert_eq!(error.field(), Some("stores.hybrid.l2"), "{error}");
    assert_eq!(error.kind(), ErrorKind::UnknownStore, "{error}");

    let error = store_error(json!({ "driver": "hybrid", "l2": "dict" }));
    assert_eq!(error.field(), Some("stores.hybrid.backplane"), "{error}");
    assert!(error.to_string().contains("Redis"), "{error}");

    let error = store_error(json!({ "driver": "hybrid", "l2": "redis", "l1_tl": 5 }));
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(error.to_string().contains("l1_ttl"), "{error}");

    let error = store_error(json!({
        "driver": "hybrid", "l2": "redis", "l1": { "max_entrie": 5 }
    }));
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(error.to_string().contains("max_entries"), "{error}");
}

// ---- Several OS processes ----

/// Set in a spawned watcher: the manager's config.
const WATCHER_CONFIG: &str = "CACHY_HYBRID_WATCHER_CONFIG";

/// The keys a watcher reads in a loop: `[tag or "", key]` pairs.
const WATCHED: &str = "CACHY_HYBRID_WATCHED";

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

async fn read(cache: &Repository, tag: &str, key: &str) -> cachy::Result<Option<String>> {
    if tag.is_empty() {
        cache.get(key).await
    } else {
        cache.tags([tag]).get(key).await
    }
}

/// A running watcher process and what it reported.
struct Watcher {
    process: Child,
    _stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    /// The latest report per watched key: what it read, and when.
    seen: Vec<Option<(Value, u64)>>,
}

impl Watcher {
    fn spawn(config: &Value, watched: &[(&str, &str)]) -> Self {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "hybrid_store::across::watcher",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(WATCHER_CONFIG, config.to_string())
            .env(WATCHED, serde_json::to_string(watched).unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the test binary runs");
        let stdout = process.stdout.take().unwrap();
        let stdin = process.stdin.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                // The first report shares its line with the test harness's "test watcher ...".
                let report = line.find('{').map_or("", |start| &line[start..]);
                if let Ok(value) = serde_json::from_str::<Value>(report) {
                    let _ = sender.send(value);
                }
            }
        });
        Watcher {
            process,
            _stdin: stdin,
            lines,
            seen: vec![None; watched.len()],
        }
    }

    /// Take the reports that arrived; whether the watcher said it is ready.
    fn drain(&mut self) -> bool {
        let mut ready = false;
        while let Ok(line) = self.lines.try_recv() {
            if line.get("ready").is_some() {
                ready = true;
            } else {
                let key = line["key"].as_u64().unwrap() as usize;
                self.seen[key] = Some((line["seen"].clone(), line["at"].as_u64().unwrap()));
            }
        }
        ready
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.drain() {
            assert!(Instant::now() < deadline, "the watcher never got ready");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait until the watcher reads `expected` under watched key `key`; when it saw it.
    fn wait_for(&mut self, key: usize, expected: &Value, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            self.drain();
            if let Some((seen, at)) = &self.seen[key]
                && seen == expected
            {
                return *at;
            }
            assert!(
                Instant::now() < deadline,
                "watched key {key}: expected {expected}, last seen {:?}",
                self.seen[key]
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// What the watcher reads now under `key`.
    fn current(&mut self, key: usize) -> Value {
        self.drain();
        self.seen[key].clone().expect("reported").0
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Two watchers of `watched` on `config`, ready, each reading `first` under the first key.
fn two_watchers(config: &Value, watched: &[(&str, &str)], first: &str) -> [Watcher; 2] {
    let mut watchers = [
        Watcher::spawn(config, watched),
        Watcher::spawn(config, watched),
    ];
    for watcher in &mut watchers {
        watcher.wait_ready();
        watcher.wait_for(0, &value(first), Duration::from_secs(5));
    }
    watchers
}

fn value(v: &str) -> Value {
    json!({ "value": v })
}

fn missing() -> Value {
    json!({ "value": null })
}

/// `change` in this process, then every watcher must read `expected` under `key` within
/// 100 ms of it; the delays, in microseconds.
async fn propagates(
    watchers: &mut [Watcher],
    key: usize,
    expected: Value,
    change: impl std::future::Future<Output = ()>,
) -> Vec<u64> {
    let before = now_micros();
    change.await;
    watchers
        .iter_mut()
        .map(|watcher| {
            let at = watcher.wait_for(key, &expected, Duration::from_secs(5));
            let delay = at.saturating_sub(before);
            assert!(delay < 100_000, "seen after {delay} µs");
            delay
        })
        .collect()
}

/// A hook that reads the cache again when the first level drops a key (to warm it back)
/// runs after the hybrid store's own locks are released: a local write, which drops the
/// key's copy, returns.
#[test]
fn an_eviction_hook_may_read_the_cache_again() {
    let Some(server) = server() else { return };
    let cache = cachy::blocking::CacheManager::from_value(over_redis(&server.url())).unwrap();
    let repo = cache.store(None).unwrap();
    let reader = repo.clone();
    let dropped = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&dropped);
    repo.as_async().on_event(move |event| {
        if event.operation == cachy::observe::Operation::Evict {
            counted.fetch_add(1, Ordering::Relaxed);
            let _ = reader.get::<String>(event.key.unwrap());
        }
    });
    repo.put("k", "v1", 10).unwrap();
    // Read until the first level keeps a copy: a read does not keep one when an
    // invalidation arrives meanwhile (the backplane's, of the write above, on a busy
    // machine).
    let kept = (0..200).any(|_| {
        assert_eq!(repo.get::<String>("k").unwrap().as_deref(), Some("v1"));
        let in_l1 = repo.as_async().store().get_in_process("k").is_some();
        if !in_l1 {
            std::thread::sleep(Duration::from_millis(10));
        }
        in_l1
    });
    assert!(kept, "the first level keeps a copy");
    let (done, finished) = mpsc::channel();
    let writer = repo.clone();
    std::thread::spawn(move || {
        writer.put("k", "v2", 10).unwrap();
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the write returned: no deadlock");
    assert!(
        dropped.load(Ordering::Relaxed) >= 1,
        "the copy's drop was told"
    );
    assert_eq!(repo.get::<String>("k").unwrap().as_deref(), Some("v2"));
}
