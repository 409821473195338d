//! The behaviour suite on memcached (started here), python-memcached's value layout, keys
//! and lifetimes, and bad input; servers that fail (`outages.rs`) and counters
//! (`counters.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cachy::stores::MemcachedStore;
use cachy::{CacheManager, ErrorKind, Store, StoreConfig};
use cachy_testkit::Fixture;
use cachy_testkit::servers::{MemcachedServer, TestServer};
use serde_json::json;

mod counters;
mod outages;

static SERVER: OnceLock<Option<MemcachedServer>> = OnceLock::new();

fn server() -> Option<&'static MemcachedServer> {
    SERVER.get_or_init(MemcachedServer::start).as_ref()
}

fn manager(store: serde_json::Value) -> CacheManager {
    CacheManager::from_value(json!({ "stores": { "memcached": store } })).unwrap()
}

/// memcached has no prefix flush, so each test gets its own server: `flush` is flush_all.
async fn memcached() -> Option<Fixture> {
    let server = MemcachedServer::start()?;
    let cache =
        manager(json!({ "driver": "memcached", "servers": [server.address()], "prefix": "t:" }));
    Some(Fixture::new(cache.store(None).unwrap(), server))
}

cachy_testkit::behaviour_suite!(memcached);

/// Msgpack keeps counters as msgpack integers, incremented by compare and swap.
mod msgpack {
    use super::*;

    async fn memcached_msgpack() -> Option<Fixture> {
        let server = MemcachedServer::start()?;
        let cache = manager(json!({
            "driver": "memcached", "servers": [server.address()], "prefix": "t:",
            "serializer": "msgpack", "max_value_size": 2 << 20
        }));
        Some(Fixture::new(cache.store(None).unwrap(), server))
    }

    cachy_testkit::behaviour_suite!(memcached_msgpack);
}

fn unique(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{name}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[tokio::test]
async fn adding_a_server_moves_few_keys() {
    let four = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"];
    let store = |n: usize| {
        MemcachedStore::from_config(
            &StoreConfig::new("memcached").with("servers", json!(four[..n])),
        )
        .unwrap()
    };
    let (three, with_fourth) = (store(3), store(4));
    let moved = (0..10_000)
        .filter(|i| {
            let key = format!("k{i}");
            three.server_for(&key) != with_fourth.server_for(&key)
        })
        .count();
    assert!(moved < 3_500, "{moved} of 10000 keys moved (ideal: 2500)");
}

#[tokio::test]
async fn values_use_python_memcacheds_flags_under_pickle() {
    let Some(server) = server() else { return };
    let cache =
        manager(json!({ "driver": "memcached", "servers": [server.address()], "prefix": "py:" }));
    cache.forever("text", "héllo").await.unwrap();
    cache.forever("int", &-42).await.unwrap();
    cache
        .forever("bytes", &serde_bytes::ByteBuf::from(vec![0u8, 255]))
        .await
        .unwrap();
    cache.forever("list", &vec![1, 2]).await.unwrap();
    let raw = |key: &str| {
        let mut stream = std::net::TcpStream::connect(server.address()).unwrap();
        std::io::Write::write_all(&mut stream, format!("mg py:{key} v f\r\n").as_bytes()).unwrap();
        let mut buffer = [0u8; 256];
        let n = std::io::Read::read(&mut stream, &mut buffer).unwrap();
        buffer[..n].to_vec()
    };
    assert_eq!(raw("text"), "VA 6 f16\r\nhéllo\r\n".as_bytes());
    assert_eq!(raw("int"), b"VA 3 f2\r\n-42\r\n");
    assert_eq!(raw("bytes"), b"VA 2 f0\r\n\x00\xff\r\n");
    assert!(raw("list").starts_with(b"VA "), "pickled");
    assert!(String::from_utf8_lossy(&raw("list")).contains(" f1\r\n"));
    assert_eq!(
        cache.get::<String>("text").await.unwrap().as_deref(),
        Some("héllo")
    );
    assert_eq!(cache.get::<i64>("int").await.unwrap(), Some(-42));
    assert_eq!(
        cache
            .get::<serde_bytes::ByteBuf>("bytes")
            .await
            .unwrap()
            .unwrap()
            .into_vec(),
        [0, 255]
    );
    assert_eq!(
        cache.get::<Vec<i32>>("list").await.unwrap(),
        Some(vec![1, 2])
    );
}

#[tokio::test]
async fn long_and_odd_keys_are_hashed_with_a_marker() {
    let Some(server) = server() else { return };
    let store = MemcachedStore::from_config(
        &StoreConfig::new("memcached")
            .with("servers", json!([server.address()]))
            .with("prefix", "p:"),
    )
    .unwrap();
    assert_eq!(store.server_key("plain"), "p:plain");
    assert_eq!(
        store.server_key(""),
        "p:",
        "the prefix makes an empty key valid"
    );
    for odd in ["with space", "new\nline", &"x".repeat(300)] {
        let mapped = store.server_key(odd);
        assert!(
            mapped.starts_with("p:cachy:sha1:") && mapped.len() < 250,
            "{odd:?} -> {mapped}"
        );
    }
}

#[test]
fn an_empty_key_without_a_prefix_is_hashed() {
    let store = MemcachedStore::from_config(
        &StoreConfig::new("memcached").with("servers", json!(["127.0.0.1:1"])),
    )
    .unwrap();
    assert!(store.server_key("").starts_with("cachy:sha1:"));
}

#[tokio::test]
async fn ttls_over_thirty_days_are_sent_as_absolute_times() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("long-ttl");
    cache
        .put(&key, "kept", Duration::from_secs(60 * 60 * 24 * 40))
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>(&key).await.unwrap().as_deref(),
        Some("kept"),
        "not expired at once"
    );
}

#[tokio::test]
async fn a_value_over_the_item_size_limit_is_a_clear_error() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("huge");
    cache.put(&key, "small", 10).await.unwrap();
    let huge = "x".repeat(3 * 1024 * 1024);
    let err = cache.put(&key, &huge, 10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("too large"), "{err}");
    let after = cache.get::<String>(&key).await.unwrap();
    assert!(
        after.is_none() || after.as_deref() == Some("small"),
        "the connection stays usable: {after:?}"
    );
    cache.put(&key, "fine", 10).await.unwrap();
}

#[test]
fn malformed_server_lists_are_config_errors() {
    for servers in [
        json!([]),
        json!("127.0.0.1:11211"),
        json!(["nohost"]),
        json!(["h:notaport"]),
        json!([{ "address": "h:1", "weight": 0 }]),
    ] {
        let err = manager(json!({ "driver": "memcached", "servers": servers.clone() }))
            .store(None)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{servers}");
        assert_eq!(
            err.field(),
            Some("stores.memcached.servers"),
            "{servers}: {err}"
        );
    }
}

#[tokio::test]
async fn a_lifetime_beyond_2038_is_clamped_not_refused() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("far-future");
    cache.put(&key, "kept", Duration::MAX).await.unwrap();
    cache
        .put(&key, "kept", cachy::Expiry::Minutes(i64::MAX))
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>(&key).await.unwrap().as_deref(),
        Some("kept")
    );
}

#[tokio::test]
async fn a_plain_key_never_shares_an_item_with_a_hashed_one() {
    let Some(server) = server() else { return };
    let store = MemcachedStore::from_config(
        &StoreConfig::new("memcached")
            .with("servers", json!([server.address()]))
            .with("prefix", "p:"),
    )
    .unwrap();
    let long = "x".repeat(300);
    let hashed = store.server_key(&long);
    let look_alike = hashed.strip_prefix("p:").unwrap();
    assert!(look_alike.starts_with("cachy:sha1:"));
    assert_ne!(store.server_key(look_alike), hashed);
    store.put(&long, b"long", None).await.unwrap();
    store.put(look_alike, b"look-alike", None).await.unwrap();
    assert_eq!(
        store.get(&long).await.unwrap().as_deref(),
        Some(&b"long"[..])
    );
    assert_eq!(
        store.get(look_alike).await.unwrap().as_deref(),
        Some(&b"look-alike"[..])
    );
}

#[test]
fn a_prefix_that_could_inject_commands_is_a_config_error() {
    for prefix in [
        "app\r\nflush_all\r\n",
        "app\n",
        "two words",
        "tab\t",
        "nul\0",
        "del\u{7f}",
        &"p".repeat(200),
    ] {
        let err =
            manager(json!({ "driver": "memcached", "servers": ["127.0.0.1:1"], "prefix": prefix }))
                .store(None)
                .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{prefix:?}");
        assert_eq!(
            err.field(),
            Some("stores.memcached.prefix"),
            "{prefix:?}: {err}"
        );
    }
    for prefix in ["app:", "ключ:", &"p".repeat(199)] {
        manager(json!({ "driver": "memcached", "servers": ["127.0.0.1:1"], "prefix": prefix }))
            .store(None)
            .unwrap();
    }
}

#[test]
fn numbers_out_of_range_are_config_errors_not_panics() {
    let servers = json!(["127.0.0.1:1"]);
    for (field, config) in [
        (
            "max_connections",
            json!({ "servers": servers, "max_connections": u64::MAX }),
        ),
        (
            "max_connections",
            json!({ "servers": servers, "max_connections": 0 }),
        ),
        (
            "servers",
            json!({ "servers": [{ "address": "h:1", "weight": u64::MAX }] }),
        ),
        (
            "servers",
            json!({ "servers": [{ "address": "h:1", "weight": 1.5 }] }),
        ),
        ("timeout", json!({ "servers": servers, "timeout": 1e300 })),
        ("timeout", json!({ "servers": servers, "timeout": -1 })),
        (
            "retry_after",
            json!({ "servers": servers, "retry_after": 1e300 }),
        ),
        (
            "max_value_size",
            json!({ "servers": servers, "max_value_size": u64::MAX }),
        ),
        (
            "max_value_size",
            json!({ "servers": servers, "max_value_size": 0 }),
        ),
    ] {
        let mut store = config.clone();
        store["driver"] = json!("memcached");
        let err = manager(store).store(None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{config}");
        assert_eq!(
            err.field(),
            Some(format!("stores.memcached.{field}").as_str()),
            "{config}: {err}"
        );
    }
}

#[tokio::test]
async fn values_over_max_value_size_are_refused_both_ways() {
    let Some(server) = server() else { return };
    let small = manager(
        json!({ "driver": "memcached", "servers": [server.address()], "max_value_size": 1024 }),
    );
    let key = unique("max-value-size");
    let err = small.put(&key, &"x".repeat(2000), 10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("max_value_size"), "{err}");

    // Written by a store with a larger limit: announced too long, refused unread.
    let large = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    large.put(&key, &"x".repeat(2000), 10).await.unwrap();
    let err = small.get::<String>(&key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("max_value_size"), "{err}");
    small.put(&key, "fits", 10).await.unwrap();
    assert_eq!(
        small.get::<String>(&key).await.unwrap().as_deref(),
        Some("fits"),
        "the server is not marked down"
    );
}
