//! The hybrid store: the behaviour suite (memory over Redis, memory over SQLite), its
//! config errors, and coherence across OS processes: this test binary is spawned as the other
//! processes, which watch keys and report every value they read.

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

/// A watcher process (run by the tests below; does nothing alone): reads its keys in a loop
/// and prints a JSON line for every change of what it reads (a value, or an error kind), with
/// the time it saw it; `ready` once subscribed with every key read. It writes a key of its
/// own every tenth round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher() {
    let Ok(config) = std::env::var(WATCHER_CONFIG) else {
        return;
    };
    let watched: Vec<(String, String)> =
        serde_json::from_str(&std::env::var(WATCHED).unwrap()).unwrap();
    let cache = CacheManager::from_value(serde_json::from_str(&config).unwrap())
        .unwrap()
        .store(None)
        .unwrap();
    let hybrid = (&**cache.store() as &dyn std::any::Any)
        .downcast_ref::<HybridStore>()
        .unwrap();
    while !hybrid.is_subscribed() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut last: Vec<Option<Value>> = vec![None; watched.len()];
    let mut ready = false;
    let mut out = std::io::stdout();
    let own_key = format!("written by {}", std::process::id());
    for round in 0u64.. {
        // Load: every watcher writes too (failing while the store is down).
        if round % 10 == 0 {
            let _ = cache.put(&own_key, &round, 60).await;
        }
        for (i, (tag, key)) in watched.iter().enumerate() {
            let seen = match read(&cache, tag, key).await {
                Ok(value) => json!({ "value": value }),
                Err(e) => json!({ "error": e.kind().to_string() }),
            };
            if last[i].as_ref() != Some(&seen) {
                let line = json!({ "key": i, "seen": seen, "at": now_micros() });
                writeln!(out, "{line}").unwrap();
                last[i] = Some(seen);
            }
        }
        if !ready {
            writeln!(out, "{}", json!({ "ready": true })).unwrap();
            ready = true;
        }
        out.flush().unwrap();
        tokio::time::sleep(Duration::from_micros(200)).await;
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
                "hybrid_store::watcher",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_see_every_change_within_100_ms() {
    let Some(server) = server() else { return };
    let config = over_redis(&server.url());
    let manager = CacheManager::from_value(config.clone()).unwrap();
    let cache = manager.store(None).unwrap();
    let redis = manager.store("redis").unwrap();
    cache.put("k", "v1", 10).await.unwrap();
    cache.put("gone", "g1", 10).await.unwrap();
    cache.tags(["t"]).put("x", "x1", 10).await.unwrap();
    let watched = [("", "k"), ("", "gone"), ("t", "x")];
    let mut watchers = two_watchers(&config, &watched, "v1");
    for watcher in &mut watchers {
        watcher.wait_for(1, &value("g1"), Duration::from_secs(5));
        watcher.wait_for(2, &value("x1"), Duration::from_secs(5));
    }

    // The watchers read from their L1: a write behind the hybrid store's back goes unseen.
    redis.put("k", "behind its back", 10).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for watcher in &mut watchers {
        assert_eq!(watcher.current(0), value("v1"));
    }

    let mut delays = Vec::new();
    delays.extend(
        propagates(&mut watchers, 0, value("v2"), async {
            cache.put("k", "v2", 10).await.unwrap();
        })
        .await,
    );
    delays.extend(
        propagates(&mut watchers, 1, missing(), async {
            cache.forget("gone").await.unwrap();
        })
        .await,
    );
    delays.extend(
        propagates(&mut watchers, 2, missing(), async {
            cache.tags(["t"]).flush().await.unwrap();
        })
        .await,
    );
    redis.put("k", "behind its back again", 10).await.unwrap();
    delays.extend(
        propagates(&mut watchers, 0, missing(), async {
            cache.flush().await.unwrap();
        })
        .await,
    );
    eprintln!("invalidation delays (µs): {delays:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_l1_serves_and_afterwards_no_change_is_missed() {
    // Its own server: this test kills it.
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // L2 on SQLite stays up while the backplane (Redis) is down.
    let config = over_sqlite(&server.url(), &dir.path().join("cache.db"));
    let manager = CacheManager::from_value(config.clone()).unwrap();
    let cache = manager.store(None).unwrap();
    cache.put("k", "v1", 600).await.unwrap();
    let mut watchers = two_watchers(&config, &[("", "k"), ("", "load")], "v1");
    // Load: this process keeps writing while the watchers keep reading.
    let writer = {
        let cache = cache.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let _ = cache.put("load", &i.to_string(), 600).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.kill();
    // A change while the backplane is down: L2 takes it, the invalidation is queued.
    cache.put("k", "v2", 600).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hybrid = (&**cache.store() as &dyn std::any::Any)
        .downcast_ref::<HybridStore>()
        .unwrap();
    assert!(!hybrid.is_subscribed());
    // "k" and "load", however often they changed (seen between two tries to send them).
    let deadline = Instant::now() + Duration::from_secs(3);
    while hybrid.unsent_invalidations() != 2 {
        assert!(
            Instant::now() < deadline,
            "{} queued",
            hybrid.unsent_invalidations()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for watcher in &mut watchers {
        // Served from L1 all along, stale (at most `l1_ttl`), never an error.
        assert_eq!(watcher.current(0), value("v1"));
    }

    server.restart();
    let restarted = now_micros();
    for watcher in &mut watchers {
        let at = watcher.wait_for(0, &value("v2"), Duration::from_secs(10));
        eprintln!(
            "seen {} ms after the restart",
            at.saturating_sub(restarted) / 1000
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while hybrid.unsent_invalidations() > 0 {
        assert!(
            Instant::now() < deadline,
            "the queued invalidations were never sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And the backplane works again.
    propagates(&mut watchers, 0, value("v3"), async {
        cache.put("k", "v3", 600).await.unwrap();
    })
    .await;
    writer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_as_l2_is_down_cached_keys_are_still_served() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let config = over_redis(&server.url());
    let cache = CacheManager::from_value(config.clone())
        .unwrap()
        .store(None)
        .unwrap();
    cache.put("cached", "c1", 600).await.unwrap();
    let watched = [("", "cached"), ("", "never read before")];
    let mut watchers = two_watchers(&config, &watched, "c1");
    server.kill();
    // A key the watchers never had in L1 fails; the cached one keeps being served.
    cache.forget("never read before").await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for watcher in &mut watchers {
        assert_eq!(watcher.current(0), value("c1"));
        let error = watcher.current(1);
        assert!(error.get("error").is_some(), "{error}");
    }
    server.restart();
    // The queued invalidations and the resubscription make every change seen again.
    for watcher in &mut watchers {
        watcher.wait_for(1, &missing(), Duration::from_secs(10));
    }
    // This process's breaker may still count Redis down, until its own subscription is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.forget("probe").await.is_err() {
        assert!(Instant::now() < deadline, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    propagates(&mut watchers, 0, value("c2"), async {
        cache.put("cached", "c2", 600).await.unwrap();
    })
    .await;
}

/// Past 10,000 keys (the backplane's bound), the invalidations queued while Redis is
/// unreachable become one flush, however many more keys change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_backplane_is_unreachable_the_queue_stays_bounded() {
    const BOUND: usize = 10_000;
    let config = json!({
        "default": "hybrid",
        "stores": {
            // Nothing listens there: every publish fails, at once.
            "redis": { "driver": "redis", "url": "redis://127.0.0.1:1" },
            "dict": { "driver": "dict" },
            "hybrid": { "driver": "hybrid", "l2": "dict", "backplane": "redis" }
        }
    });
    let cache = CacheManager::from_value(config)
        .unwrap()
        .store(None)
        .unwrap();
    let hybrid = (&**cache.store() as &dyn std::any::Any)
        .downcast_ref::<HybridStore>()
        .unwrap();
    let started = Instant::now();
    for i in 0..3 * BOUND {
        cache.put(&format!("key {i}"), &i, 600).await.unwrap();
        let queued = hybrid.unsent_invalidations();
        assert!(
            queued <= BOUND + 1,
            "{queued} queued after {} writes",
            i + 1
        );
    }
    eprintln!("{} writes in {:?}", 3 * BOUND, started.elapsed());
    // The publisher may hold the queue for a moment, while it tries to send it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while hybrid.unsent_invalidations() != 1 {
        assert!(
            Instant::now() < deadline,
            "{} queued",
            hybrid.unsent_invalidations()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!hybrid.is_subscribed());
}
