//! CacheManager: config loading, default store, lazy shared stores, every config error path,
//! and one manager shared by many threads and tasks.

use std::sync::Arc;

use cachy::{CacheConfig, CacheManager, ErrorKind, StoreConfig};
use serde_json::json;

fn write(dir: &tempfile::TempDir, name: &str, content: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[tokio::test]
async fn a_config_file_is_read_by_its_extension() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let toml = format!(
        "default = \"file\"\nserializer = \"json\"\n[stores.file]\ndriver = \"file\"\npath = {:?}\n[stores.dict]\ndriver = \"dict\"\n",
        cache_dir
    );
    let json = json!({
        "default": "file", "serializer": "json",
        "stores": { "file": { "driver": "file", "path": cache_dir }, "dict": { "driver": "dict" } }
    })
    .to_string();
    let yaml = format!(
        "default: file\nserializer: json\nstores:\n  file:\n    driver: file\n    path: {:?}\n  dict:\n    driver: dict\n",
        cache_dir
    );
    let from_value = CacheConfig::from_value(serde_json::from_str(&json).unwrap()).unwrap();
    for (name, content) in [
        ("c.toml", toml),
        ("c.json", json),
        ("c.yaml", yaml.clone()),
        ("c.yml", yaml),
    ] {
        let config = CacheConfig::from_file(write(&dir, name, &content)).unwrap();
        assert_eq!(config, from_value, "{name}");
    }
    let cache = CacheManager::from_file(dir.path().join("c.toml")).unwrap();
    cache.put("k", "v", 10).await.unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
    assert!(cache_dir.exists(), "the default store is the file store");
}

#[tokio::test]
async fn the_typed_builder_matches_the_dict_shape() {
    let built = CacheConfig::new()
        .store(
            "redis",
            StoreConfig::new("redis")
                .with("host", "localhost")
                .with("port", 6379)
                .serializer("json"),
        )
        .store("dict", StoreConfig::new("dict"))
        .default_store("redis")
        .serializer("pickle");
    let from_value = CacheConfig::from_value(json!({
        "default": "redis",
        "serializer": "pickle",
        "stores": {
            "redis": { "driver": "redis", "serializer": "json", "host": "localhost", "port": 6379 },
            "dict": { "driver": "dict" }
        }
    }))
    .unwrap();
    assert_eq!(built, from_value);
}

#[test]
fn the_only_store_is_the_default() {
    let cache =
        CacheManager::from_value(json!({ "stores": { "only": { "driver": "dict" } } })).unwrap();
    assert_eq!(cache.default_store_name().unwrap(), "only");
}

#[test]
fn several_stores_without_a_default_is_a_config_error() {
    let cache = CacheManager::from_value(json!({
        "stores": { "a": { "driver": "dict" }, "b": { "driver": "null" } }
    }))
    .unwrap();
    let err = cache.store(None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.field(), Some("default"));
    assert!(err.to_string().contains("a, b"), "{err}");
    cache.set_default_driver("b");
    assert_eq!(cache.store(None).unwrap().name(), "b");
}

#[tokio::test]
async fn the_default_store_can_change_after_it_was_used() {
    let cache = CacheManager::from_value(json!({
        "default": "a",
        "stores": { "a": { "driver": "dict" }, "b": { "driver": "dict" } }
    }))
    .unwrap();
    cache.put("k", &1, 10).await.unwrap();
    cache.set_default_driver("b");
    assert_eq!(
        cache.get::<i32>("k").await.unwrap(),
        None,
        "b is the default now"
    );
    cache.put("k", &2, 10).await.unwrap();
    assert_eq!(
        cache.store("a").unwrap().get::<i32>("k").await.unwrap(),
        Some(1)
    );
    assert_eq!(
        cache.store("b").unwrap().get::<i32>("k").await.unwrap(),
        Some(2)
    );
}

#[test]
fn a_default_that_names_no_store_is_a_config_error() {
    let err = CacheManager::from_value(
        json!({ "default": "nope", "stores": { "a": { "driver": "dict" } } }),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.field(), Some("default"));
}

#[test]
fn an_unknown_store_is_an_unknown_store_error() {
    let cache =
        CacheManager::from_value(json!({ "stores": { "a": { "driver": "dict" } } })).unwrap();
    let err = cache.store("b").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownStore);
    assert_eq!(err.store(), Some("b"));
}

#[test]
fn an_unknown_driver_names_the_store_and_field() {
    let cache =
        CacheManager::from_value(json!({ "stores": { "m": { "driver": "mongo" } } })).unwrap();
    let err = cache.store("m").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownDriver);
    assert_eq!(err.store(), Some("m"));
    assert_eq!(err.field(), Some("stores.m.driver"));
    assert!(err.to_string().contains("mongo"), "{err}");
}

#[test]
fn an_unknown_serializer_names_the_field_it_came_from() {
    let global = CacheManager::from_value(
        json!({ "serializer": "yaml", "stores": { "a": { "driver": "dict" } } }),
    )
    .unwrap()
    .store("a")
    .unwrap_err();
    assert_eq!(global.kind(), ErrorKind::UnknownSerializer);
    assert_eq!(global.field(), Some("serializer"));
    let own = CacheManager::from_value(
        json!({ "stores": { "a": { "driver": "dict", "serializer": "xml" } } }),
    )
    .unwrap()
    .store("a")
    .unwrap_err();
    assert_eq!(own.kind(), ErrorKind::UnknownSerializer);
    assert_eq!(own.field(), Some("stores.a.serializer"));
    assert!(own.to_string().contains("xml"), "{own}");
}

#[test]
fn a_file_store_without_a_path_is_a_config_error() {
    let err = CacheManager::from_value(json!({ "stores": { "f": { "driver": "file" } } }))
        .unwrap()
        .store("f")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.field(), Some("stores.f.path"));
    let bad_hash = CacheManager::from_value(json!({
        "stores": { "f": { "driver": "file", "path": "/tmp/x", "hash_type": "crc32" } }
    }))
    .unwrap()
    .store("f")
    .unwrap_err();
    assert_eq!(bad_hash.field(), Some("stores.f.hash_type"));
}

#[test]
fn malformed_configs_are_config_errors_naming_the_field() {
    let cases = [
        (json!([1, 2]), "(root)"),
        (json!({}), "stores"),
        (json!({ "stores": [] }), "stores"),
        (json!({ "stores": { "a": "dict" } }), "stores.a"),
        (json!({ "stores": { "a": {} } }), "stores.a.driver"),
        (
            json!({ "stores": { "a": { "driver": 5 } } }),
            "stores.a.driver",
        ),
        (json!({ "default": 1, "stores": {} }), "default"),
        (json!({ "stores": {}, "defualt": "a" }), "defualt"),
    ];
    for (config, field) in cases {
        let err = CacheConfig::from_value(config.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{config}");
        assert_eq!(err.field(), Some(field), "{config}: {err}");
    }
    let max = CacheManager::from_value(
        json!({ "stores": { "a": { "driver": "dict", "max_entries": -1 } } }),
    )
    .unwrap()
    .store("a")
    .unwrap_err();
    assert_eq!(max.field(), Some("stores.a.max_entries"));
}

#[test]
fn bad_config_files_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = CacheConfig::from_file(dir.path().join("nope.toml")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config);
    assert!(missing.to_string().contains("nope.toml"), "{missing}");
    for (name, content) in [
        ("bad.toml", "stores = ["),
        ("bad.json", "{"),
        ("bad.yaml", "stores: ["),
    ] {
        let err = CacheConfig::from_file(write(&dir, name, content)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{name}");
        assert!(err.to_string().contains(name), "{err}");
    }
    let ini = CacheConfig::from_file(write(&dir, "c.ini", "[stores]")).unwrap_err();
    assert!(ini.to_string().contains(".toml"), "{ini}");
}

#[test]
fn stores_are_built_once_and_shared() {
    let built = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cache =
        CacheManager::from_value(json!({ "stores": { "c": { "driver": "counted" } } })).unwrap();
    let counter = Arc::clone(&built);
    cache.extend("counted", move |_: &StoreConfig| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(cachy::stores::MemoryStore::new())
    });
    assert_eq!(
        built.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "built lazily"
    );
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            std::thread::spawn(move || cache.store("c").unwrap())
        })
        .collect();
    let repos: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(
        repos
            .windows(2)
            .all(|w| Arc::ptr_eq(w[0].store(), w[1].store()))
    );
}

#[tokio::test]
async fn every_repository_method_works_on_the_manager() {
    let cache = CacheManager::from_value(json!({
        "default": "a",
        "stores": { "a": { "driver": "dict" }, "b": { "driver": "dict" } }
    }))
    .unwrap();
    cache.put("k", "v", 10).await.unwrap();
    assert!(cache.has("k").await.unwrap());
    assert!(
        !cache.store("b").unwrap().has("k").await.unwrap(),
        "went to the default store"
    );
    assert_eq!(cache.get_or("x", 1).await.unwrap(), 1);
    assert_eq!(cache.get_or_else("x", || 2).await.unwrap(), 2);
    assert_eq!(
        cache.get_or_else_async("x", || async { 3 }).await.unwrap(),
        3
    );
    assert!(cache.add("a", &1, 10).await.unwrap());
    cache.forever("f", &1).await.unwrap();
    assert_eq!(cache.increment("n").await.unwrap(), 1);
    assert_eq!(cache.increment_by("n", 4).await.unwrap(), 5);
    assert_eq!(cache.decrement("n").await.unwrap(), 4);
    assert_eq!(cache.decrement_by("n", 4).await.unwrap(), 0);
    let r: i32 = cache
        .remember("r", 10, || async { Ok::<_, cachy::Error>(9) })
        .await
        .unwrap();
    assert_eq!(r, 9);
    let rf: i32 = cache
        .remember_forever("rf", || async { Ok::<_, cachy::Error>(8) })
        .await
        .unwrap();
    assert_eq!(rf, 8);
    cache.put_many(&[("m1", 1), ("m2", 2)], 10).await.unwrap();
    assert_eq!(
        cache.many::<i32>(&["m1", "m2"]).await.unwrap(),
        [Some(1), Some(2)]
    );
    assert_eq!(
        cache.pull::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
    assert!(cache.forget("f").await.unwrap());
    assert_eq!(cache.default_cache_time().unwrap(), 60);
    cache.set_default_cache_time(5).unwrap();
    assert_eq!(cache.store("a").unwrap().default_cache_time(), 5);
    cache.flush().await.unwrap();
    assert!(!cache.has("m1").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_and_threads_share_one_manager_without_losing_updates() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::from_value(json!({
        "default": "dict",
        "stores": { "dict": { "driver": "dict" }, "file": { "driver": "file", "path": dir.path() } }
    }))
    .unwrap();
    for store in ["dict", "file"] {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let repo = cache.store(store).unwrap();
                tokio::spawn(async move {
                    repo.increment("hits").await.unwrap();
                    repo.add("winner", &i, 10).await.unwrap()
                })
            })
            .collect();
        let blocking = cachy::blocking::CacheManager::from_async(cache.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let repo = blocking.store(store).unwrap();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        repo.increment("hits").unwrap();
                    }
                    repo.add("winner", &-1, 10).unwrap()
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.unwrap());
        }
        let thread_winners = tokio::task::spawn_blocking(move || {
            threads
                .into_iter()
                .map(|t| usize::from(t.join().unwrap()))
                .sum::<usize>()
        })
        .await
        .unwrap();
        assert_eq!(winners + thread_winners, 1, "{store}: one add winner");
        assert_eq!(
            cache
                .store(store)
                .unwrap()
                .get::<i64>("hits")
                .await
                .unwrap(),
            Some(150),
            "{store}"
        );
    }
}

#[tokio::test]
async fn the_null_store_keeps_nothing() {
    let cache =
        CacheManager::from_value(json!({ "stores": { "off": { "driver": "null" } } })).unwrap();
    cache.put("k", "v", 10).await.unwrap();
    cache.forever("k", "v").await.unwrap();
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    assert!(!cache.has("k").await.unwrap());
    assert!(!cache.add("k", "v", 10).await.unwrap());
    assert!(!cache.forget("k").await.unwrap());
    assert_eq!(cache.increment_by("n", 3).await.unwrap(), 3);
    let computed: u8 = cache
        .remember("r", 10, || async { Ok::<_, cachy::Error>(1) })
        .await
        .unwrap();
    assert_eq!(computed, 1);
    cache.flush().await.unwrap();
}
