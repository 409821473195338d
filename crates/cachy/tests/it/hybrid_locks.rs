//! Read-modify-write under a lock through a hybrid store is exact across OS processes: 3
//! processes each make 80 locked increments by `get` and `put`, while tasks in every process
//! keep reading the counter (so that each L1 holds copies of it). The next holder of the
//! lock must never read its own stale copy of what the previous holder wrote.

#![cfg(feature = "hybrid")]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cachy::CacheManager;
use cachy_testkit::servers::{RedisServer, TestServer};
use serde_json::json;

/// Set in the spawned processes: the Redis URL.
const CHILD_REDIS: &str = "CACHY_HYBRID_LOCKS_CHILD_REDIS";
const PROCESSES: usize = 3;
const INCREMENTS: i64 = 80;

fn manager(url: &str) -> CacheManager {
    CacheManager::from_value(json!({
        "default": "shared",
        "stores": {
            "redis": { "driver": "redis", "url": url },
            "shared": { "driver": "hybrid", "l2": "redis", "l1_ttl": 60 },
        }
    }))
    .unwrap()
}

/// One of the processes (run by `locked_increments_through_hybrid_stores_lose_nothing`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    let Ok(url) = std::env::var(CHILD_REDIS) else {
        return;
    };
    let cache = manager(&url);
    let shared = cache.store("shared").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (shared, done) = (shared.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    let _: Option<i64> = shared.get("counter").await.unwrap();
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            })
        })
        .collect();
    for _ in 0..INCREMENTS {
        let lock = shared.lock("counter", Duration::from_secs(10));
        // Tried again at once, not after `acquire`'s pause: the next holder takes the lock
        // right after its release, before a slow invalidation could arrive by chance.
        while !lock.try_acquire().await.unwrap() {
            tokio::task::yield_now().await;
        }
        let value: i64 = shared.get("counter").await.unwrap().unwrap_or(0);
        shared.put("counter", &(value + 1), 10).await.unwrap();
        assert!(lock.release().await.unwrap(), "the lock was still held");
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
}

#[tokio::test]
async fn locked_increments_through_hybrid_stores_lose_nothing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let binary = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&binary)
                .args([
                    "--exact",
                    "hybrid_locks::child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_REDIS, &url)
                .spawn()
                .expect("the test binary runs")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a process failed");
    }
    let total: Option<i64> = manager(&url)
        .store("redis")
        .unwrap()
        .get("counter")
        .await
        .unwrap();
    assert_eq!(total, Some(PROCESSES as i64 * INCREMENTS));
}
