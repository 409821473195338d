//! Every operation on every store: get (hit and miss), put, add, increment, tagged get (2
//! tags), remember (hit) and `many` of 100 keys, with a small struct and a 10 KiB value.
//!
//! `cargo bench -p cachy-rs --all-features --bench stores` (starts its own servers).

use std::time::Duration;

use cachy::{CacheManager, Repository};
use cachy_testkit::servers::{
    MariaDbServer, MemcachedServer, PostgresServer, RedisServer, TestServer,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Value {
    id: u64,
    name: String,
    payload: String,
}

fn value(size: &str) -> Value {
    let payload = if size == "10KiB" {
        "x".repeat(10 * 1024)
    } else {
        String::new()
    };
    Value {
        id: 42,
        name: "Anne".to_owned(),
        payload,
    }
}

fn bench_store(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    store: &str,
    repo: &Repository,
) {
    let mut group = c.benchmark_group(format!("stores/{store}"));
    for size in ["small", "10KiB"] {
        let v = value(size);
        let keys: Vec<String> = (0..100).map(|i| format!("many-{size}-{i}")).collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        runtime.block_on(async {
            repo.put(&format!("hit-{size}"), &v, 60).await.unwrap();
            repo.tags(("people", "authors"))
                .put(&format!("tagged-{size}"), &v, 60)
                .await
                .unwrap();
            let items: Vec<(&str, &Value)> = key_refs.iter().map(|k| (*k, &v)).collect();
            repo.put_many(&items, 60).await.unwrap();
        });
        let hit = format!("hit-{size}");
        let tagged = format!("tagged-{size}");
        group.bench_function(BenchmarkId::new("get_hit", size), |b| {
            b.to_async(runtime)
                .iter(|| async { repo.get::<Value>(&hit).await.unwrap().unwrap() })
        });
        group.bench_function(BenchmarkId::new("put", size), |b| {
            b.to_async(runtime)
                .iter(|| async { repo.put("put", &v, 60).await.unwrap() })
        });
        group.bench_function(BenchmarkId::new("add", size), |b| {
            b.to_async(runtime)
                .iter(|| async { repo.add(&hit, &v, 60).await.unwrap() })
        });
        group.bench_function(BenchmarkId::new("tagged_get_2_tags", size), |b| {
            b.to_async(runtime).iter(|| async {
                repo.tags(("people", "authors"))
                    .get::<Value>(&tagged)
                    .await
                    .unwrap()
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("remember_hit", size), |b| {
            b.to_async(runtime).iter(|| async {
                repo.remember(&hit, 60, || async { Ok::<_, cachy::Error>(value(size)) })
                    .await
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("many_100", size), |b| {
            b.to_async(runtime)
                .iter(|| async { repo.many::<Value>(&key_refs).await.unwrap() })
        });
    }
    group.bench_function("get_miss", |b| {
        b.to_async(runtime)
            .iter(|| async { repo.get::<Value>("missing").await.unwrap() })
    });
    group.bench_function("increment", |b| {
        b.to_async(runtime)
            .iter(|| async { repo.increment("counter").await.unwrap() })
    });
    group.finish();
}

fn stores(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let redis =
        RedisServer::start().expect("redis-server is installed (./scripts/test installs it)");
    let memcached =
        MemcachedServer::start().expect("memcached is installed (./scripts/test installs it)");
    let postgres =
        PostgresServer::start().expect("PostgreSQL is installed (./scripts/test installs it)");
    let mariadb =
        MariaDbServer::start().expect("MariaDB is installed (./scripts/test installs it)");
    let sqlite = format!("sqlite://{}", folder.path().join("bench.db").display());
    let cache = CacheManager::from_value(serde_json::json!({
        "default": "memory",
        "stores": {
            "memory": { "driver": "dict" },
            "file": { "driver": "file", "path": folder.path().join("files") },
            "redis": { "driver": "redis", "url": redis.url(), "prefix": "bench:" },
            "memcached": { "driver": "memcached", "servers": [memcached.address()] },
            "sqlite": { "driver": "database", "url": sqlite, "create_table": true },
            "postgres": { "driver": "database", "url": postgres.url(), "create_table": true },
            "mariadb": { "driver": "database", "url": mariadb.url(), "create_table": true }
        }
    }))
    .unwrap();
    for store in [
        "memory",
        "file",
        "redis",
        "memcached",
        "sqlite",
        "postgres",
        "mariadb",
    ] {
        bench_store(c, &runtime, store, &cache.store(store).unwrap());
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(1)).warm_up_time(Duration::from_millis(300)).sample_size(20);
    targets = stores
}
criterion_main!(benches);
