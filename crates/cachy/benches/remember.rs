//! A `remember` hit, plain and with every resilience option, next to a plain `get` of the
//! same value, on the memory store and on Redis, in one run.
//! `cargo bench -p cachy-rs --bench remember`; `./scripts/bench-remember` runs it over
//! several rounds and reports medians with their spread.
//!
//! The options' hit reads the value's envelope and checks its age (eager refresh); it must
//! cost at most 1.3x a plain `get`.

use std::time::Duration;

use cachy::{CacheManager, RememberOptions, Repository};
use cachy_testkit::bench::{User, user};
use cachy_testkit::servers::{RedisServer, TestServer};
use criterion::{Criterion, criterion_group, criterion_main};

fn all_options() -> RememberOptions {
    RememberOptions::new(Duration::from_secs(3600))
        .fail_safe(Duration::from_secs(7200))
        .fail_safe_throttle(Duration::from_secs(30))
        .soft_timeout(Duration::from_millis(100))
        .hard_timeout(Duration::from_secs(2))
        .eager_refresh(0.9)
        .jitter(0.1)
}

fn hits(c: &mut Criterion, store: &str, repo: &Repository, runtime: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group(format!("remember/{store}"));
    let options = all_options();
    runtime.block_on(repo.put("plain", &user(), 60)).unwrap();
    runtime
        .block_on(repo.remember_with("resilient", &options, || async {
            Ok::<_, cachy::Error>(user())
        }))
        .unwrap();
    group.bench_function("get_hit", |b| {
        b.to_async(runtime)
            .iter(|| async { repo.get::<User>("plain").await.unwrap().unwrap() })
    });
    group.bench_function("remember_hit", |b| {
        b.to_async(runtime).iter(|| async {
            repo.remember("plain", 60, || async { Ok::<_, cachy::Error>(user()) })
                .await
                .unwrap()
        })
    });
    group.bench_function("remember_with_all_options_hit", |b| {
        b.to_async(runtime).iter(|| async {
            repo.remember_with("resilient", &options, || async {
                Ok::<_, cachy::Error>(user())
            })
            .await
            .unwrap()
        })
    });
    group.finish();
}

fn remember(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let memory = CacheManager::from_value(serde_json::json!({
        "stores": { "dict": { "driver": "dict" } }
    }))
    .unwrap();
    hits(c, "memory", &memory.store(None).unwrap(), &runtime);
    let server =
        RedisServer::start().expect("redis-server is installed (./scripts/test installs it)");
    let redis = CacheManager::from_value(serde_json::json!({
        "stores": { "redis": { "driver": "redis", "url": server.address(), "prefix": "bench:" } }
    }))
    .unwrap();
    hits(c, "redis", &redis.store(None).unwrap(), &runtime);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = remember
}
criterion_main!(benches);
