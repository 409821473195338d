//! Memory store: a repository hit and put of a small struct, next to moka used directly, in
//! the same run. `cargo bench -p cachy-rs --bench memory`.
//!
//! `store/get_hit_bytes` is the store alone (no decoding), to show where the time goes. The
//! `bounded` group runs the eviction policy: a store of 10,000 entries written with new keys.

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

/// A store bounded at 10,000 entries, whose eviction policy runs: a hit, and the write of a
/// new key (one eviction each) cycling over 100,000 keys, next to moka bounded alike and to
/// the unbounded store.
fn bounded_store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("bounded");
    let keys: Vec<String> = (0..100_000).map(|i| format!("key{i}")).collect();
    for (name, store) in [
        (
            "cachy_bounded",
            serde_json::json!({ "driver": "dict", "max_entries": 10_000 }),
        ),
        ("cachy_unbounded", serde_json::json!({ "driver": "dict" })),
    ] {
        let cache =
            CacheManager::from_value(serde_json::json!({ "stores": { "dict": store } })).unwrap();
        let repo = cache.store("dict").unwrap();
        runtime.block_on(repo.put("hit", &user(), 60)).unwrap();
        group.bench_function(format!("{name}/get_hit"), |b| {
            b.to_async(&runtime)
                .iter(|| async { repo.get::<User>("hit").await.unwrap().unwrap() })
        });
        let mut next = 0;
        group.bench_function(format!("{name}/put_new_key"), |b| {
            b.to_async(&runtime).iter(|| {
                next = (next + 1) % keys.len();
                let key = &keys[next];
                let repo = &repo;
                async move { repo.put(key, &user(), 60).await.unwrap() }
            })
        });
    }
    let moka: moka::sync::Cache<String, User> = moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(3600))
        .build();
    moka.insert("hit".to_owned(), user());
    group.bench_function("moka_bounded/get_hit", |b| {
        b.iter(|| moka.get("hit").unwrap())
    });
    let mut next = 0;
    group.bench_function("moka_bounded/put_new_key", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            moka.insert(keys[next].clone(), user())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = memory_store, bounded_store
}
criterion_main!(benches);
