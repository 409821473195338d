//! A manager outlives the runtimes that use it: a test's runtime ends, a service rebuilds its
//! runtime, the blocking API and async code share a store. Each server store's connections
//! live on the runtime that opened them, so every call below must succeed on a healthy
//! server, whichever runtime made the connections and whichever has shut down since.

#![cfg(all(feature = "database-postgres", feature = "database-mysql"))]

use std::time::Duration;

use cachy::CacheManager;
use cachy_testkit::servers::{
    MariaDbServer, MemcachedServer, PostgresServer, RedisCluster, RedisServer, TestServer,
};
use serde_json::json;

const KEYS: usize = 32;

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// What a `#[tokio::test]` runs on.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Write every key from concurrent tasks, so that the store opens several connections.
async fn put_all(cache: &CacheManager, round: usize) {
    let tasks: Vec<_> = (0..KEYS)
        .map(|i| {
            let store = cache.store(None).unwrap();
            tokio::spawn(async move { store.put(&format!("k{i}"), &(round * 1000 + i), 60).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

/// Read every key back, each call bounded so that a hang fails the test.
async fn read_all(cache: &CacheManager, round: usize, runtime: &str) {
    for i in 0..KEYS {
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            cache.get::<usize>(&format!("k{i}")),
        )
        .await
        .unwrap_or_else(|_| panic!("a read on {runtime} hung"));
        match read {
            Ok(value) => assert_eq!(value, Some(round * 1000 + i), "on {runtime}"),
            Err(e) => panic!("a read on {runtime} failed on a healthy server: {e}"),
        }
    }
}

/// Calls from tasks of a runtime that is dropped while they run.
fn calls_in_flight_when_dropped(cache: &CacheManager, shutdown: fn(tokio::runtime::Runtime)) {
    let runtime = multi_thread();
    for i in 0..KEYS {
        let cache = cache.clone();
        runtime.spawn(async move {
            loop {
                // Failures here are the dying runtime's own: only later calls must succeed.
                // Keys of their own: a write sent just before the drop may still land after
                // the next runtime's writes, as a server runs what it received.
                let _ = cache.put(&format!("busy{i}"), &i, 60).await;
                let _ = cache.get::<usize>(&format!("busy{i}")).await;
            }
        });
    }
    std::thread::sleep(Duration::from_millis(100));
    shutdown(runtime);
}

fn check(name: &str, store: serde_json::Value) {
    // A current-thread runtime that stops running its tasks while its first call connects
    // the store (and creates the table) holds up no other runtime.
    let fresh = CacheManager::from_value(json!({ "stores": { "s": store.clone() } })).unwrap();
    let idle = current_thread();
    for i in 0..KEYS {
        let fresh = fresh.clone();
        idle.spawn(async move { fresh.get::<usize>(&format!("k{i}")).await });
    }
    idle.block_on(tokio::task::yield_now());
    multi_thread().block_on(async {
        put_all(&fresh, 8).await;
        read_all(
            &fresh,
            8,
            &format!("{name}: beside a runtime stopped mid-connect"),
        )
        .await;
    });
    drop(idle);

    let cache = CacheManager::from_value(json!({ "stores": { "s": store } })).unwrap();
    let blocking = cachy::blocking::CacheManager::from_async(cache.clone()).unwrap();

    // A runtime connects the store, then shuts down.
    multi_thread().block_on(put_all(&cache, 1));
    current_thread().block_on(read_all(&cache, 1, &format!("{name}: a test's runtime")));
    // The blocking API, after both runtimes are gone.
    for i in 0..KEYS {
        let value: Option<usize> = blocking
            .get(&format!("k{i}"))
            .unwrap_or_else(|e| panic!("{name}: a blocking read failed: {e}"));
        assert_eq!(value, Some(1000 + i), "{name}");
    }
    // A runtime and the blocking API at once; then the runtime shuts down and the blocking
    // API goes on, and the other way round.
    let runtime = multi_thread();
    runtime.block_on(put_all(&cache, 2));
    blocking.put("k0", &2000, 60).unwrap();
    runtime.block_on(read_all(&cache, 2, &format!("{name}: a service's runtime")));
    drop(runtime);
    assert_eq!(blocking.get::<usize>("k1").unwrap(), Some(2001), "{name}");
    multi_thread().block_on(read_all(&cache, 2, &format!("{name}: a rebuilt runtime")));

    // Runtimes shut down with calls in flight, by drop and in the background; the next
    // runtime's calls, and the blocking API's, find the server as healthy as it is.
    for (round, shutdown) in [
        (4, drop as fn(tokio::runtime::Runtime)),
        (5, tokio::runtime::Runtime::shutdown_background),
    ] {
        calls_in_flight_when_dropped(&cache, shutdown);
        multi_thread().block_on(async {
            put_all(&cache, round).await;
            read_all(
                &cache,
                round,
                &format!("{name}: the runtime after one shut down busy"),
            )
            .await;
        });
        assert_eq!(
            blocking.get::<usize>("k2").unwrap(),
            Some(round * 1000 + 2),
            "{name}"
        );
    }

    // A current-thread runtime that opened connections and is idle (outside its
    // `block_on`, so nothing drives its I/O): another runtime's calls do not wait for it.
    let idle = current_thread();
    idle.block_on(put_all(&cache, 7));
    multi_thread().block_on(read_all(
        &cache,
        7,
        &format!("{name}: beside an idle runtime"),
    ));
    drop(idle);

    // A runtime that lives on while others come and go, as tests running in parallel on a
    // shared manager: none of its calls fails.
    let lasting = multi_thread();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = lasting.spawn({
        let (cache, stop) = (cache.clone(), stop.clone());
        async move {
            let mut calls = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = cache.get::<usize>("k3").await {
                    return Err(format!("after {calls} calls: {e}"));
                }
                calls += 1;
            }
            Ok(calls)
        }
    });
    for _ in 0..8 {
        calls_in_flight_when_dropped(&cache, drop);
        current_thread().block_on(put_all(&cache, 6));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls = lasting
        .block_on(reader)
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: a call of the lasting runtime failed {e}"));
    assert!(calls > 0, "{name}");
}

#[test]
fn server_stores_work_from_each_new_runtime_and_the_blocking_api() {
    let (Some(redis), Some(cluster), Some(memcached), Some(postgres), Some(mariadb)) = (
        RedisServer::start(),
        RedisCluster::start(),
        MemcachedServer::start(),
        PostgresServer::start(),
        MariaDbServer::start(),
    ) else {
        return;
    };
    check(
        "redis",
        json!({ "driver": "redis", "url": redis.url(), "prefix": "runtimes:" }),
    );
    check(
        "redis cluster",
        json!({ "driver": "redis", "cluster": cluster.urls(), "prefix": "runtimes:" }),
    );
    check(
        "memcached",
        json!({ "driver": "memcached", "servers": [memcached.address()], "max_connections": 4 }),
    );
    for (name, url) in [("postgres", postgres.url()), ("mariadb", mariadb.url())] {
        check(
            name,
            json!({ "driver": "database", "url": url, "table": "runtimes", "create_table": true }),
        );
    }
}

/// A runtime's connections close when it shuts down: runtimes that come and go (tests, a
/// service rebuilding its runtime) never fill the server's connection slots.
#[test]
fn a_database_store_closes_the_connections_of_runtimes_that_shut_down() {
    let Some(postgres) = PostgresServer::start() else {
        return;
    };
    let cache = CacheManager::from_value(json!({ "stores": { "s": {
        "driver": "database", "url": postgres.url(), "table": "closing", "create_table": true
    } } }))
    .unwrap();
    for round in 0..20 {
        multi_thread().block_on(put_all(&cache, round));
    }
    let observer = multi_thread();
    let clients = observer.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&postgres.url())
            .await
            .unwrap();
        let started = std::time::Instant::now();
        loop {
            let (clients,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if clients <= 1 || started.elapsed() > Duration::from_secs(10) {
                return clients;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert_eq!(clients, 1, "connections of runtimes gone are still open");
    // And the store still works.
    multi_thread().block_on(read_all(&cache, 19, "a new runtime"));
}
