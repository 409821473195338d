//! Single flight across OS processes: `remember_with(.. distributed ..)` from 4 processes of
//! 25 tasks each on one cold key runs the factory exactly once (counted in the store), and
//! every caller gets its value. The test spawns this test binary as the 4 processes.

#![cfg(all(
    feature = "redis",
    feature = "memcached",
    feature = "file",
    feature = "database-postgres"
))]

use std::process::Command;
use std::time::Duration;

use cachy::{CacheManager, Error, RememberOptions};
use cachy_testkit::servers::{MemcachedServer, PostgresServer, RedisServer, TestServer};
use serde_json::{Value, json};

/// Set in the spawned processes: the store's config.
const CHILD_CONFIG: &str = "CACHY_DISTRIBUTED_CHILD_CONFIG";
/// Set in the process that takes a lock and waits to be killed: the store's config.
const HOLDER_CONFIG: &str = "CACHY_DISTRIBUTED_HOLDER_CONFIG";
const PROCESSES: usize = 4;
const TASKS: usize = 25;

fn manager(store: &Value) -> CacheManager {
    CacheManager::from_value(json!({ "stores": { "shared": store } })).unwrap()
}

/// One of the processes (run by `one_factory_run_across_processes`; does nothing alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    let Ok(config) = std::env::var(CHILD_CONFIG) else {
        return;
    };
    let cache = manager(&serde_json::from_str(&config).unwrap());
    let options = RememberOptions::new(Duration::from_secs(60))
        .distributed(Duration::from_secs(10), Duration::from_secs(20));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, options) = (cache.clone(), options.clone());
            tokio::spawn(async move {
                let counter = cache.clone();
                cache
                    .remember_with("cold", &options, move || async move {
                        counter.increment("factory-runs").await?;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Ok::<_, Error>(42i64)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 42);
    }
}

/// Run `PROCESSES` copies of `child` on `store` at once; the factory must run once.
async fn one_factory_run_across_processes(store: Value) {
    let binary = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&binary)
                .args([
                    "--exact",
                    "distributed::child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_CONFIG, store.to_string())
                .spawn()
                .expect("the test binary runs")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a process failed");
    }
    let runs: Option<i64> = manager(&store).get("factory-runs").await.unwrap();
    assert_eq!(
        runs,
        Some(1),
        "the factory ran once across {PROCESSES} processes"
    );
    let value: Option<i64> = manager(&store).get("cold").await.unwrap();
    assert_eq!(value, Some(42));
}

#[tokio::test]
async fn redis_runs_the_factory_once_across_processes() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    one_factory_run_across_processes(json!({ "driver": "redis", "url": server.url() })).await;
}

#[tokio::test]
async fn memcached_runs_the_factory_once_across_processes() {
    let Some(server) = MemcachedServer::start() else {
        return;
    };
    one_factory_run_across_processes(
        json!({ "driver": "memcached", "servers": [server.address()] }),
    )
    .await;
}

#[tokio::test]
async fn postgres_runs_the_factory_once_across_processes() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    one_factory_run_across_processes(json!({
        "driver": "database", "url": server.url(), "table": "distributed", "create_table": true
    }))
    .await;
}

#[tokio::test]
async fn the_file_store_runs_the_factory_once_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    one_factory_run_across_processes(json!({ "driver": "file", "path": dir.path() })).await;
}

/// The process that takes the lock `job` for 2 s, says so, and waits to be killed (run by
/// `a_killed_holder_s_lock_is_taken_after_its_ttl`; does nothing alone).
#[tokio::test]
async fn holder() {
    let Ok(config) = std::env::var(HOLDER_CONFIG) else {
        return;
    };
    let cache = manager(&serde_json::from_str(&config).unwrap());
    let lock = cache.lock("job", Duration::from_secs(2)).unwrap();
    assert!(lock.try_acquire().await.unwrap());
    println!("HELD");
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_killed_holder_s_lock_is_taken_after_its_ttl() {
    use std::io::{BufRead, BufReader};
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = json!({ "driver": "redis", "url": server.url() });
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "distributed::holder",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(HOLDER_CONFIG, store.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the test binary runs");
    let stdout = holder.stdout.take().unwrap();
    let held = BufReader::new(stdout)
        .lines()
        .any(|line| line.is_ok_and(|line| line.contains("HELD")));
    assert!(held, "the holder took the lock");
    holder.kill().unwrap(); // SIGKILL: no chance to release
    holder.wait().unwrap();
    let lock = manager(&store)
        .lock("job", Duration::from_secs(30))
        .unwrap();
    assert!(
        !lock.try_acquire().await.unwrap(),
        "still held by the dead process"
    );
    let started = std::time::Instant::now();
    lock.acquire(Duration::from_secs(10)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "taken once the 2 s lifetime passed: {:?}",
        started.elapsed()
    );
}
