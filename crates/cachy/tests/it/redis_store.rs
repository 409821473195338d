//! The behaviour suite on Redis (a single node and a 3-primary cluster, both started here),
//! the key layout shared with Python cachy, flush scoping and bad input; servers that fail
//! (`outages.rs`), the circuit breaker (`breaker.rs`) and tags (`tags.rs`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cachy::stores::RedisStore;
use cachy::{CacheManager, ErrorKind, Store, StoreConfig};
use cachy_testkit::Fixture;
use cachy_testkit::servers::{RedisCluster, RedisServer, TestServer, free_port};
use serde_json::json;

static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
static CLUSTER: OnceLock<Option<RedisCluster>> = OnceLock::new();

/// A prefix no other test uses, so tests share one server and `flush` stays in its lane.
fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("test{}:", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn server() -> Option<&'static RedisServer> {
    SERVER.get_or_init(RedisServer::start).as_ref()
}

fn manager(store: serde_json::Value) -> CacheManager {
    CacheManager::from_value(json!({ "stores": { "redis": store } })).unwrap()
}

async fn single_node() -> Option<Fixture> {
    let server = server()?;
    let cache =
        manager(json!({ "driver": "redis", "url": server.url(), "prefix": unique_prefix() }));
    Some(Fixture::new(cache.store("redis").unwrap(), ()))
}

cachy_testkit::behaviour_suite!(single_node);

/// Msgpack keeps counters as msgpack integers, incremented by compare and swap (a script).
mod breaker;
mod outages;
mod tags;

mod msgpack {
    use super::*;

    async fn single_node_msgpack() -> Option<Fixture> {
        let server = server()?;
        let cache = manager(json!({
            "driver": "redis", "url": server.url(), "prefix": unique_prefix(), "serializer": "msgpack"
        }));
        Some(Fixture::new(cache.store("redis").unwrap(), ()))
    }

    cachy_testkit::behaviour_suite!(single_node_msgpack);

    async fn cluster_msgpack() -> Option<Fixture> {
        let cluster = CLUSTER.get_or_init(RedisCluster::start).as_ref()?;
        let cache = manager(json!({
            "driver": "redis", "cluster": cluster.urls(), "prefix": unique_prefix(),
            "serializer": "msgpack"
        }));
        Some(Fixture::new(cache.store("redis").unwrap(), ()))
    }

    mod cluster {
        use super::*;

        cachy_testkit::behaviour_suite!(cluster_msgpack);
    }
}

mod cluster {
    use super::*;

    async fn cluster() -> Option<Fixture> {
        let cluster = CLUSTER.get_or_init(RedisCluster::start).as_ref()?;
        let cache = manager(
            json!({ "driver": "redis", "cluster": cluster.urls(), "prefix": unique_prefix() }),
        );
        Some(Fixture::new(cache.store("redis").unwrap(), ()))
    }

    cachy_testkit::behaviour_suite!(cluster);
}

fn raw_store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::from_config(
        &StoreConfig::new("redis")
            .with("url", url)
            .with("prefix", prefix),
    )
    .unwrap()
}

#[tokio::test]
async fn keys_and_values_use_python_cachys_layout() {
    let Some(server) = server() else { return };
    let cache = manager(
        json!({ "driver": "redis", "url": server.url(), "prefix": "app:", "serializer": "json" }),
    );
    cache
        .put("user", &json!({"name": "Anne"}), 10)
        .await
        .unwrap();
    cache.forever("count", &41).await.unwrap();
    let raw = raw_store(&server.url(), "");
    let value: Vec<u8> = raw.query(redis::cmd("GET").arg("app:user")).await.unwrap();
    assert_eq!(value, br#"{"name":"Anne"}"#);
    let ttl: i64 = raw.query(redis::cmd("TTL").arg("app:user")).await.unwrap();
    assert!((599..=600).contains(&ttl), "{ttl}");
    let forever_ttl: i64 = raw.query(redis::cmd("TTL").arg("app:count")).await.unwrap();
    assert_eq!(forever_ttl, -1, "forever means no TTL");
    let incremented: i64 = raw
        .query(redis::cmd("INCRBY").arg("app:count").arg(1))
        .await
        .unwrap();
    assert_eq!(
        incremented, 42,
        "integers are decimal text the server increments"
    );
    assert_eq!(cache.get::<i64>("count").await.unwrap(), Some(42));
}

#[tokio::test]
async fn flush_with_a_prefix_deletes_only_keys_under_it() {
    let Some(server) = server() else { return };
    let mine = manager(json!({ "driver": "redis", "url": server.url(), "prefix": "mine[*]:" }));
    let theirs = manager(json!({ "driver": "redis", "url": server.url(), "prefix": "mine:" }));
    for i in 0..1200 {
        mine.put(&format!("k{i}"), &i, 10).await.unwrap();
    }
    theirs.put("k1", "kept", 10).await.unwrap();
    let raw = raw_store(&server.url(), "");
    let _: () = raw
        .query(redis::cmd("SET").arg("unprefixed").arg("kept"))
        .await
        .unwrap();
    mine.flush().await.unwrap();
    assert!(!mine.has("k7").await.unwrap());
    assert!(!mine.has("k1199").await.unwrap());
    assert_eq!(
        theirs.get::<String>("k1").await.unwrap().as_deref(),
        Some("kept")
    );
    let other: Option<String> = raw
        .query(redis::cmd("GET").arg("unprefixed"))
        .await
        .unwrap();
    assert_eq!(other.as_deref(), Some("kept"));
}

#[tokio::test]
async fn flush_without_a_prefix_empties_the_configured_db_only() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let db1 =
        manager(json!({ "driver": "redis", "host": "127.0.0.1", "port": server.port(), "db": 1 }));
    let db2 =
        manager(json!({ "driver": "redis", "host": "127.0.0.1", "port": server.port(), "db": 2 }));
    db1.put("k", "v", 10).await.unwrap();
    db2.put("k", "v", 10).await.unwrap();
    db1.flush().await.unwrap();
    assert!(!db1.has("k").await.unwrap());
    assert!(db2.has("k").await.unwrap());
}

#[tokio::test]
async fn flush_with_a_prefix_on_a_cluster_reaches_every_primary() {
    let Some(cluster) = CLUSTER.get_or_init(RedisCluster::start).as_ref() else {
        return;
    };
    let mine =
        manager(json!({ "driver": "redis", "cluster": cluster.urls(), "prefix": "flushme:" }));
    let theirs =
        manager(json!({ "driver": "redis", "cluster": cluster.urls(), "prefix": "keepme:" }));
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    let items: Vec<(&str, usize)> = keys.iter().map(|k| k.as_str()).zip(0..).collect();
    mine.put_many(&items, 10).await.unwrap();
    theirs.put_many(&items, 10).await.unwrap();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(
        mine.many::<usize>(&key_refs)
            .await
            .unwrap()
            .iter()
            .flatten()
            .count(),
        300
    );
    mine.flush().await.unwrap();
    assert_eq!(
        mine.many::<usize>(&key_refs)
            .await
            .unwrap()
            .iter()
            .flatten()
            .count(),
        0
    );
    assert_eq!(
        theirs
            .many::<usize>(&key_refs)
            .await
            .unwrap()
            .iter()
            .flatten()
            .count(),
        300
    );
}

#[test]
fn malformed_settings_are_config_errors_naming_the_field() {
    for (store, field) in [
        (
            json!({ "driver": "redis", "url": "http://nope" }),
            "stores.redis.url",
        ),
        (
            json!({ "driver": "redis", "url": "redis://[::1" }),
            "stores.redis.url",
        ),
        (
            json!({ "driver": "redis", "port": 70000 }),
            "stores.redis.port",
        ),
        (
            json!({ "driver": "redis", "cluster": [] }),
            "stores.redis.cluster",
        ),
        (
            json!({ "driver": "redis", "cluster": ["nope://x"] }),
            "stores.redis.cluster",
        ),
        (
            json!({ "driver": "redis", "connect_timeout": "soon" }),
            "stores.redis.connect_timeout",
        ),
        (
            json!({ "driver": "redis", "retry_after": 0 }),
            "stores.redis.retry_after",
        ),
        (
            json!({ "driver": "redis", "circuit_breaker": "off" }),
            "stores.redis.circuit_breaker",
        ),
    ] {
        let err = manager(store.clone()).store("redis").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{store}");
        assert_eq!(err.field(), Some(field), "{store}: {err}");
    }
}

#[tokio::test]
async fn get_many_is_one_round_trip_and_put_many_one_transaction() {
    let Some(server) = server() else { return };
    let store = raw_store(&server.url(), "batch:");
    let items: Vec<(&str, Vec<u8>)> = vec![("a", b"1".to_vec()), ("b", b"2".to_vec())];
    store.put_many(&items, Some(60)).await.unwrap();
    let values = store.get_many(&["a", "missing", "b"]).await.unwrap();
    assert_eq!(values, [Some(b"1".to_vec()), None, Some(b"2".to_vec())]);
}

#[cfg(feature = "redis-tls")]
#[tokio::test]
async fn a_tls_server_is_reached_with_rediss_and_a_ca_file() {
    let Some(server) = RedisServer::start_tls() else {
        return;
    };
    let cache = manager(json!({
        "driver": "redis", "url": server.url(), "tls_ca_file": server.ca_file(), "prefix": "tls:"
    }));
    cache.put("k", "over TLS", 10).await.unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("over TLS")
    );
    let untrusted =
        manager(json!({ "driver": "redis", "url": server.url(), "connect_timeout": 1 }));
    let err = untrusted.get::<String>("k").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Backend,
        "the system roots do not trust the test CA: {err}"
    );
    let missing = manager(
        json!({ "driver": "redis", "url": server.url(), "tls_ca_file": "/nonexistent.pem" }),
    );
    assert_eq!(
        missing.store("redis").unwrap_err().field(),
        Some("stores.redis.tls_ca_file")
    );
}

#[cfg(not(feature = "redis-tls"))]
#[test]
fn rediss_without_the_tls_feature_is_a_config_error() {
    let err = manager(json!({ "driver": "redis", "url": "rediss://127.0.0.1:6380" }))
        .store("redis")
        .unwrap_err();
    assert_eq!(err.field(), Some("stores.redis.url"));
    assert!(err.to_string().contains("redis-tls"), "{err}");
}

/// How often `command` ran, from `INFO commandstats`.
fn command_calls(stats: &str, command: &str) -> u32 {
    stats
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
        .and_then(|l| l.split("calls=").nth(1))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn remember_many_reads_once_and_writes_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = manager(json!({ "driver": "redis", "url": server.url(), "prefix": "many:" }));
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for key in keys
        .iter()
        .step_by(10)
        .chain(keys.iter().skip(5).step_by(10))
    {
        cache.put(key, &1i64, 10).await.unwrap();
    }
    for key in keys.iter().skip(3).step_by(10) {
        cache.put(key, &1i64, 10).await.unwrap();
    }
    let raw = raw_store(&server.url(), "");
    let () = raw
        .query(redis::cmd("CONFIG").arg("RESETSTAT"))
        .await
        .unwrap();
    let options = cachy::RememberOptions::new(std::time::Duration::from_secs(60));
    let loads = std::sync::atomic::AtomicUsize::new(0);
    let values: Vec<Option<i64>> = cache
        .remember_many(&keys, &options, |missing| {
            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(missing.len(), 70);
            async move { Ok::<_, cachy::Error>(missing.into_iter().map(|k| (k, 2)).collect()) }
        })
        .await
        .unwrap();
    assert_eq!(loads.into_inner(), 1);
    assert_eq!(values.iter().filter(|v| **v == Some(2)).count(), 70);
    let stats: String = raw
        .query(redis::cmd("INFO").arg("commandstats"))
        .await
        .unwrap();
    let calls = |command: &str| command_calls(&stats, command);
    // One MGET for the 100 keys, one MGET re-reading the 70 it then leads (another caller
    // may have stored them meanwhile), one MULTI/EXEC transaction for the loaded values.
    assert_eq!(
        (calls("mget"), calls("get"), calls("multi"), calls("exec")),
        (2, 0, 1, 1),
        "{stats}"
    );
}
