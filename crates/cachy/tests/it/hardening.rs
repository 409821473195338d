//! Configs are checked and never leak: secrets stay out of Debug output and errors, numbers
//! out of range are config errors naming the field (never a panic), keys a backend hashes
//! never collide with keys it stores as they are, and calls that cannot work (re-entrant
//! `remember`, factories asking for stores) give an error or work, never a hang.

use std::sync::mpsc;
use std::time::Duration;

use cachy::{CacheManager, Created, ErrorKind, Store};

const SECRET: &str = "hunter2";

fn manager(stores: serde_json::Value) -> CacheManager {
    CacheManager::from_value(serde_json::json!({ "stores": stores })).unwrap()
}

#[test]
fn debug_output_never_shows_passwords() {
    let cache = manager(serde_json::json!({
        "redis": {
            "driver": "redis",
            "url": format!("redis://user:{SECRET}@127.0.0.1:1/0"),
            "password": SECRET,
            "cluster": [format!("redis://:{SECRET}@127.0.0.1:2")],
        },
        "db": { "driver": "database", "url": format!("postgres://app:{SECRET}@db/cache") },
        "custom": { "driver": "dict", "api_token": SECRET, "nested": { "secret_key": SECRET } },
    }));
    let blocking = cachy::blocking::CacheManager::from_async(cache.clone()).unwrap();
    for shown in [
        format!("{cache:?}"),
        format!("{:?}", cache.config()),
        format!("{:?}", cache.config().stores()["redis"]),
        format!("{blocking:?}"),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
    // What is not secret is still shown.
    assert!(format!("{cache:?}").contains("127.0.0.1:1/0"));
}

#[tokio::test]
async fn a_malformed_url_error_does_not_echo_its_password() {
    for (driver, url) in [
        ("redis", format!("redis://user:{SECRET}@host:notaport/0")),
        ("database", format!("postgres://app:{SECRET}@db:notaport/x")),
        ("database", format!("oracle://app:{SECRET}@db/x")),
    ] {
        let cache = manager(serde_json::json!({ "s": { "driver": driver, "url": url } }));
        let error = cache.store(Some("s")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("stores.s.url"), "{shown}");
    }
}

#[tokio::test]
async fn seconds_out_of_range_are_config_errors_naming_the_field() {
    for (driver, field, base) in [
        (
            "redis",
            "connect_timeout",
            serde_json::json!({"url": "redis://127.0.0.1:1"}),
        ),
        (
            "redis",
            "response_timeout",
            serde_json::json!({"url": "redis://127.0.0.1:1"}),
        ),
        (
            "database",
            "timeout",
            serde_json::json!({"url": "sqlite::memory:"}),
        ),
    ] {
        for bad in [
            serde_json::json!(1e300),
            serde_json::json!(-1),
            serde_json::json!(0),
            serde_json::json!("soon"),
            serde_json::json!(31_536_001),
        ] {
            let mut store = base.clone();
            store["driver"] = driver.into();
            store[field] = bad.clone();
            let cache = manager(serde_json::json!({ "s": store }));
            let error = cache.store(Some("s")).unwrap_err();
            assert_eq!(
                error.kind(),
                ErrorKind::Config,
                "{driver}.{field} = {bad}: {error}"
            );
            assert!(
                error.to_string().contains(&format!("stores.s.{field}")),
                "{error}"
            );
        }
    }
}

#[tokio::test]
async fn the_memory_store_clamps_a_huge_ttl_instead_of_panicking() {
    let store = cachy::stores::MemoryStore::new();
    store.put("k", b"v", Some(u64::MAX)).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn a_key_equal_to_another_keys_hashed_form_is_a_different_item() {
    let cache = manager(serde_json::json!({
        "db": { "driver": "database", "url": "sqlite::memory:", "create_table": true }
    }));
    let repo = cache.store(Some("db")).unwrap();
    let long = "k".repeat(300);
    let database =
        cachy::stores::DatabaseStore::from_config(&cache.config().stores()["db"]).unwrap();
    let hashed = String::from_utf8(database.stored_key(&long)).unwrap();
    assert!(hashed.starts_with("cachy:sha1:"), "{hashed}");
    repo.forever(&long, &"long").await.unwrap();
    repo.forever(&hashed, &"impostor").await.unwrap();
    assert_eq!(
        repo.get::<String>(&long).await.unwrap().as_deref(),
        Some("long")
    );
    assert_eq!(
        repo.get::<String>(&hashed).await.unwrap().as_deref(),
        Some("impostor")
    );
}

/// Run `work` on its own thread; fail if it has not finished within ten seconds (a hang).
fn within_ten_seconds<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || done.send(work()));
    result
        .recv_timeout(Duration::from_secs(10))
        .expect("the call hung")
}

#[test]
fn a_driver_factory_may_ask_the_manager_for_another_store() {
    let cache = manager(serde_json::json!({
        "inner": { "driver": "dict" },
        "outer": { "driver": "alias", "target": "inner" },
        "itself": { "driver": "alias", "target": "itself" },
    }));
    let handle = cache.clone();
    cache.extend("alias", move |config| {
        let target = config.required_str("target")?;
        Ok(Created::Repository(handle.store(Some(target))?))
    });
    let outer = within_ten_seconds({
        let cache = cache.clone();
        move || {
            cache
                .store(Some("outer"))
                .map(|repo| repo.name().to_owned())
        }
    });
    assert_eq!(outer.unwrap(), "inner");
    let itself = within_ten_seconds(move || cache.store(Some("itself")).map(drop));
    let error = itself.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(error.to_string().contains("itself"), "{error}");
}

#[test]
fn remember_of_its_own_key_inside_its_closure_is_an_error_not_a_hang() {
    let outcome = within_ten_seconds(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let cache = manager(serde_json::json!({ "dict": { "driver": "dict" } }));
            let inner = cache.clone();
            cache
                .remember("k", 5, || async move {
                    inner
                        .remember("k", 5, || async { Ok::<_, cachy::Error>(1) })
                        .await
                })
                .await
        })
    });
    let error = outcome.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Remember, "{error}");
    assert!(error.to_string().contains("its own computation"), "{error}");
}

#[test]
fn the_blocking_api_works_inside_a_blocking_remember_closure() {
    let outcome = within_ten_seconds(|| {
        let cache = cachy::blocking::CacheManager::from_value(serde_json::json!({
            "stores": { "dict": { "driver": "dict" } }
        }))
        .unwrap();
        cache.put("other", &41, 5).unwrap();
        let inner = cache.clone();
        cache.remember("k", 5, move || {
            inner.get::<i64>("other").map(|v| v.unwrap_or(0) + 1)
        })
    });
    assert_eq!(outcome.unwrap(), 42);
}

#[test]
fn dropping_a_blocking_facade_leaves_the_async_manager_working() {
    use cachy_testkit::servers::{RedisServer, TestServer};
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = manager(serde_json::json!({
        "redis": { "driver": "redis", "url": server.url(), "prefix": "facade:" }
    }));
    {
        // The facade makes the first call, so the store connects on the facade's runtime.
        let facade = cachy::blocking::CacheManager::from_async(cache.clone()).unwrap();
        facade.put("k", &1, 5).unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let read = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), cache.get::<i64>("k")).await
    });
    assert_eq!(read.expect("the call hung").unwrap(), Some(1));
}

#[tokio::test]
async fn integer_options_out_of_range_are_config_errors_naming_the_field() {
    for (store, field) in [
        (
            serde_json::json!({ "driver": "database", "url": "sqlite::memory:", "max_connections": 0 }),
            "max_connections",
        ),
        (
            serde_json::json!({ "driver": "database", "url": "sqlite::memory:", "max_connections": u64::MAX }),
            "max_connections",
        ),
        (
            serde_json::json!({ "driver": "redis", "url": "redis://127.0.0.1:1", "db": u64::MAX }),
            "db",
        ),
    ] {
        let cache = manager(serde_json::json!({ "s": store }));
        let error = cache.store(Some("s")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        assert!(
            error.to_string().contains(&format!("stores.s.{field}")),
            "{error}"
        );
    }
}

/// Settings a store could be built with but never work, or that would be silently
/// ignored, are config errors naming the field: from a config file and from code alike.
#[tokio::test]
async fn settings_that_cannot_work_or_would_be_ignored_are_config_errors() {
    let redis = "redis://127.0.0.1:1";
    for (store, field) in [
        (
            serde_json::json!({ "driver": "dict", "max_entries": 0 }),
            "max_entries",
        ),
        (
            serde_json::json!({ "driver": "dict", "max_bytes": 0 }),
            "max_bytes",
        ),
        (serde_json::json!({ "driver": "file", "path": "" }), "path"),
        (
            serde_json::json!({ "driver": "database", "url": "sqlite::memory:", "table": "select" }),
            "table",
        ),
        (
            serde_json::json!({ "driver": "database", "url": "sqlite::memory:", "table": "1abc" }),
            "table",
        ),
        (
            serde_json::json!({ "driver": "memcached", "servers": ["h:0"] }),
            "servers",
        ),
        (
            serde_json::json!({ "driver": "memcached", "servers": ["h:+80"] }),
            "servers",
        ),
        (
            serde_json::json!({ "driver": "memcached", "servers": ["unix:"] }),
            "servers",
        ),
        (
            serde_json::json!({ "driver": "memcached", "servers": ["a b:1"] }),
            "servers",
        ),
        (
            serde_json::json!({ "driver": "memcached", "servers": [{ "address": "h:1", "wieght": 2 }] }),
            "servers",
        ),
        (
            serde_json::json!({ "driver": "redis", "url": redis, "host": "h" }),
            "host",
        ),
        (
            serde_json::json!({ "driver": "redis", "cluster": [redis], "url": redis }),
            "url",
        ),
        (
            serde_json::json!({ "driver": "hybrid", "l2": "r", "serializer": "json" }),
            "serializer",
        ),
        (
            serde_json::json!({ "driver": "hybrid", "l2": "r", "integers": "bytes" }),
            "integers",
        ),
        (
            serde_json::json!({ "driver": "hybrid", "l2": "r", "channel": "" }),
            "channel",
        ),
    ] {
        let cache = manager(serde_json::json!({
            "s": store,
            "r": { "driver": "redis", "url": redis }
        }));
        let error = cache.store(Some("s")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{store}: {error}");
        assert_eq!(
            error.field(),
            Some(format!("stores.s.{field}").as_str()),
            "{store}: {error}"
        );
    }
    let quoted = manager(serde_json::json!({
        "s": { "driver": "memcached", "servers": [{ "address": "h:1", "weight": "2" }] }
    }));
    assert!(
        quoted.store(Some("s")).is_ok(),
        "a quoted weight is a number, as every count"
    );
}

#[test]
fn a_misspelt_store_option_is_an_error_naming_it_and_the_nearest_field() {
    for (store, field, suggestion) in [
        (
            serde_json::json!({ "driver": "memcached", "servers": ["127.0.0.1:1"], "max_conections": 5 }),
            "max_conections",
            Some("max_connections"),
        ),
        (
            serde_json::json!({ "driver": "redis", "url": "redis://127.0.0.1:1", "prefx": "a:" }),
            "prefx",
            Some("prefix"),
        ),
        (
            serde_json::json!({ "driver": "database", "url": "sqlite::memory:", "tabel": "t" }),
            "tabel",
            Some("table"),
        ),
        (
            serde_json::json!({ "driver": "dict", "colour": "blue" }),
            "colour",
            None,
        ),
    ] {
        let cache = manager(serde_json::json!({ "s": store }));
        let error = cache.store(Some("s")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        assert_eq!(error.field(), Some(format!("stores.s.{field}").as_str()));
        match suggestion {
            Some(name) => assert!(
                error
                    .to_string()
                    .contains(&format!("did you mean `{name}`")),
                "{error}"
            ),
            None => assert!(error.to_string().contains("max_entries"), "{error}"),
        }
    }
    // The fields every store takes pass on every driver.
    let cache = manager(serde_json::json!({ "s": {
        "driver": "dict", "integers": "serializer", "decode_max_depth": 64
    } }));
    cache.store(Some("s")).unwrap();
}

#[test]
fn a_store_option_of_the_wrong_type_or_a_missing_one_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    for (store, field, says) in [
        (
            serde_json::json!({ "driver": "file", "path": path, "hash_type": "crc32" }),
            "hash_type",
            "sha256",
        ),
        (
            serde_json::json!({ "driver": "file", "path": 5 }),
            "path",
            "string",
        ),
        (
            serde_json::json!({ "driver": "file" }),
            "path",
            "needs `path`",
        ),
        (
            serde_json::json!({ "driver": "database", "url": "sqlite::memory:", "create_table": "yes" }),
            "create_table",
            "boolean",
        ),
        (
            serde_json::json!({ "driver": "database", "url": "sqlite::memory:", "prune_lottery": [1] }),
            "prune_lottery",
            "prune_lottery",
        ),
        (
            serde_json::json!({ "driver": "memcached", "servers": "127.0.0.1:1" }),
            "servers",
            "sequence",
        ),
        (
            serde_json::json!({ "driver": "dict", "max_entries": -3 }),
            "max_entries",
            "non-negative integer",
        ),
        (
            serde_json::json!({ "driver": "memcached", "servers": ["127.0.0.1:1"], "timeout": "soon" }),
            "timeout",
            "number of seconds",
        ),
    ] {
        let cache = manager(serde_json::json!({ "s": store }));
        let error = cache.store(Some("s")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        assert_eq!(
            error.field(),
            Some(format!("stores.s.{field}").as_str()),
            "{error}"
        );
        assert!(error.to_string().contains(says), "{error}");
    }
    // Quoted numbers, as config files often have them, are accepted.
    let cache = manager(serde_json::json!({ "s": {
        "driver": "memcached", "servers": ["127.0.0.1:1"], "timeout": "0.5", "max_connections": "8"
    } }));
    cache.store(Some("s")).unwrap();
}
