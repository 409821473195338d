//! A tagged get (2 tags) against an untagged get of the same value, per store, in one run.
//!
//! `cargo bench -p cachy-rs --bench tags` (starts its own `redis-server`).

use std::time::Duration;

use cachy::{CacheManager, Repository};
use cachy_testkit::bench::{User, user};
use cachy_testkit::servers::{RedisServer, TestServer};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench_store(c: &mut Criterion, runtime: &tokio::runtime::Runtime, name: &str, repo: Repository) {
    runtime.block_on(async {
        repo.put("plain", &user(), 60).await.unwrap();
        repo.tags(("people", "authors"))
            .put("tagged", &user(), 60)
            .await
            .unwrap();
    });
    let mut group = c.benchmark_group(format!("tags/{name}"));
    group.bench_function("get_untagged", |b| {
        b.to_async(runtime)
            .iter(|| async { repo.get::<User>("plain").await.unwrap().unwrap() })
    });
    group.bench_function("get_tagged_2", |b| {
        b.to_async(runtime).iter(|| async {
            repo.tags(("people", "authors"))
                .get::<User>("tagged")
                .await
                .unwrap()
                .unwrap()
        })
    });
    group.finish();
}

fn tags(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis =
        RedisServer::start().expect("redis-server is installed (./scripts/test installs it)");
    let cache = CacheManager::from_value(serde_json::json!({
        "default": "memory",
        "stores": {
            "memory": { "driver": "dict" },
            "file": { "driver": "file", "path": dir.path() },
            "redis": { "driver": "redis", "url": redis.url(), "prefix": "bench:" }
        }
    }))
    .unwrap();
    for store in ["memory", "file", "redis"] {
        bench_store(c, &runtime, store, cache.store(store).unwrap());
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = tags
}
criterion_main!(benches);
