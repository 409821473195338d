//! Memory store: a repository hit and put of a small struct, next to moka used directly, in
//! the same run. `cargo bench -p cachy-rs --bench memory`.
//!
//! `store/get_hit_bytes` is the store alone (no decoding), to show where the time goes.

use std::time::Duration;

use cachy::CacheManager;
use cachy_testkit::bench::{User, user};
use criterion::{Criterion, criterion_group, criterion_main};

fn memory_store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("memory");

    // "default" is the dict store as Python cachy configures it (msgpack inside, as the store is
    // process-local); the others name a serializer on the store.
    for serializer in ["default", "pickle", "json"] {
        let mut store = serde_json::json!({ "driver": "dict" });
        if serializer != "default" {
            store["serializer"] = serializer.into();
        }
        let cache =
            CacheManager::from_value(serde_json::json!({ "stores": { "dict": store } })).unwrap();
        let repo = cache.store("dict").unwrap();
        runtime.block_on(repo.put("hit", &user(), 60)).unwrap();
        group.bench_function(format!("cachy/{serializer}/get_hit"), |b| {
            b.to_async(&runtime)
                .iter(|| async { repo.get::<User>("hit").await.unwrap().unwrap() })
        });
        group.bench_function(format!("cachy/{serializer}/put"), |b| {
            b.to_async(&runtime)
                .iter(|| async { repo.put("put", &user(), 60).await.unwrap() })
        });
        if serializer == "default" {
            group.bench_function("store/get_hit_bytes", |b| {
                b.to_async(&runtime)
                    .iter(|| async { repo.store().get("hit").await.unwrap().unwrap() })
            });
        }
    }

    let moka: moka::sync::Cache<String, User> = moka::sync::Cache::builder()
        .time_to_live(Duration::from_secs(3600))
        .build();
    moka.insert("hit".to_owned(), user());
    group.bench_function("moka/get_hit", |b| b.iter(|| moka.get("hit").unwrap()));
    group.bench_function("moka/put", |b| {
        b.iter(|| moka.insert("put".to_owned(), user()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = memory_store
}
criterion_main!(benches);
