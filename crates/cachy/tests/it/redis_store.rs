//! The behaviour suite on Redis (a single node and a 3-primary cluster, both started here),
//! the key layout shared with Python cachy, flush scoping, faults and bad input.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_gives_bounded_errors_then_recovers_without_a_rebuild() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let cache = manager(json!({
        "driver": "redis", "url": server.url(), "prefix": "fault:",
        "connect_timeout": 0.5, "response_timeout": 0.5, "retry_after": 0.5
    }));
    cache.put("before", "v", 10).await.unwrap();

    let load =
        cachy_testkit::spawn_increment_load(cache.store(None).unwrap(), Duration::from_secs(3));
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let err = cache.get::<String>("before").await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "{err}"
        );
        assert!(err.is_temporary(), "{err}");
        assert_eq!(err.store(), Some("redis"));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a call while down took {:?}",
            started.elapsed()
        );
    }
    server.restart();
    let (ok, failed) = load.await.unwrap();
    assert!(
        ok > 0 && failed > 0,
        "load saw {ok} successes and {failed} failures"
    );

    let recovered = Instant::now();
    loop {
        match cache.put("after", "v", 10).await {
            Ok(()) => break,
            Err(e) => assert!(
                recovered.elapsed() < Duration::from_secs(10),
                "no recovery: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..100 {
        cache.put(&format!("k{i}"), &i, 10).await.unwrap();
    }
    for i in 0..100 {
        assert_eq!(
            cache.get::<i32>(&format!("k{i}")).await.unwrap(),
            Some(i),
            "written after the restart"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error() {
    let Some(server) = RedisServer::start_with(&["--requirepass", "s3cret"]) else {
        return;
    };
    let wrong = manager(json!({ "driver": "redis", "url": server.url(), "password": "nope" }));
    let err = wrong.get::<String>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert!(err.to_string().contains("authentication failed"), "{err}");
    let right = manager(json!({ "driver": "redis", "url": server.url(), "password": "s3cret" }));
    right.put("k", "v", 10).await.unwrap();
    assert_eq!(
        right.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
}

#[tokio::test]
async fn an_unreachable_host_is_a_clear_error_within_the_timeout() {
    let cache = manager(
        json!({ "driver": "redis", "host": "127.0.0.1", "port": free_port(), "connect_timeout": 0.5 }),
    );
    let started = Instant::now();
    let err = cache.put("k", "v", 10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(err.to_string().contains("redis"), "{err}");
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

fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(text))
}

#[tokio::test]
async fn tags_use_python_cachys_layout_and_flush_deletes_forever_items() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "redis", "url": server.url(), "prefix": "tagged:" }));
    let tagged = cache.tags(("people", "authors")).unwrap();
    tagged.forever("Anne", "anne").await.unwrap();
    tagged.put("John", "john", 10).await.unwrap();

    let raw = raw_store(&server.url(), "");
    let ids: Vec<String> = cache
        .many(&["tag:people:key", "tag:authors:key"])
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "tag ids stored through the serializer under tag:{{name}}:key"
    );
    assert!(
        ids.iter()
            .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    );
    let item_key = format!("tagged:{}:Anne", sha1_hex(&ids.join("|")));
    let exists: i64 = raw
        .query(redis::cmd("EXISTS").arg(&item_key))
        .await
        .unwrap();
    assert_eq!(exists, 1, "{item_key}");
    for id in &ids {
        let listed: Vec<String> = raw
            .query(
                redis::cmd("LRANGE")
                    .arg(format!("tagged:{id}:forever"))
                    .arg(0)
                    .arg(-1),
            )
            .await
            .unwrap();
        assert_eq!(listed, std::slice::from_ref(&item_key));
    }

    cache.tags("authors").unwrap().flush().await.unwrap();
    let exists: i64 = raw
        .query(redis::cmd("EXISTS").arg(&item_key))
        .await
        .unwrap();
    assert_eq!(exists, 0, "the forever item is deleted, not just orphaned");
    let list_exists: i64 = raw
        .query(redis::cmd("EXISTS").arg(format!("tagged:{}:forever", ids[1])))
        .await
        .unwrap();
    assert_eq!(list_exists, 0);
}

/// A tag with more items stored forever than one page of its list (500) loses them all on a
/// flush, on one node and on a cluster.
#[tokio::test]
async fn a_tag_flush_deletes_every_forever_item_page_by_page() {
    let Some(server) = server() else { return };
    let mut stores =
        vec![json!({ "driver": "redis", "url": server.url(), "prefix": unique_prefix() })];
    if let Some(cluster) = CLUSTER.get_or_init(RedisCluster::start).as_ref() {
        stores.push(
            json!({ "driver": "redis", "cluster": cluster.urls(), "prefix": unique_prefix() }),
        );
    }
    for store in stores {
        let cache = manager(store.clone());
        let tagged = cache.tags("bulk").unwrap();
        let keys: Vec<String> = (0..1234).map(|i| format!("item{i}")).collect();
        for key in &keys {
            tagged.forever(key, &1).await.unwrap();
        }
        let tagged_keys: Vec<String> = {
            let ids: Vec<Option<String>> = cache.many(&["tag:bulk:key"]).await.unwrap();
            let id = ids[0].clone().expect("the tag's id");
            keys.iter()
                .map(|key| format!("{}:{key}", sha1_hex(&id)))
                .collect()
        };
        let stored = |keys: Vec<String>| {
            let cache = &cache;
            async move {
                cache
                    .many::<i64>(&keys)
                    .await
                    .unwrap()
                    .into_iter()
                    .flatten()
                    .count()
            }
        };
        assert_eq!(stored(tagged_keys.clone()).await, 1234, "{store}");
        tagged.flush().await.unwrap();
        assert_eq!(stored(tagged_keys).await, 0, "{store}: every item deleted");
    }
}

#[tokio::test]
async fn a_tagged_get_takes_two_round_trips_whatever_the_number_of_tags() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = manager(json!({ "driver": "redis", "url": server.url() }));
    let tags = ["a", "b", "c", "d", "e"];
    cache.tags(tags).unwrap().put("k", "v", 10).await.unwrap();
    let raw = raw_store(&server.url(), "");
    let () = raw
        .query(redis::cmd("CONFIG").arg("RESETSTAT"))
        .await
        .unwrap();
    assert_eq!(
        cache
            .tags(tags)
            .unwrap()
            .get::<String>("k")
            .await
            .unwrap()
            .as_deref(),
        Some("v")
    );
    let stats: String = raw
        .query(redis::cmd("INFO").arg("commandstats"))
        .await
        .unwrap();
    let calls = |command: &str| command_calls(&stats, command);
    assert_eq!((calls("mget"), calls("get")), (1, 1), "{stats}");
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

/// Send `signal` (`STOP` pauses the server as a hung one, `CONT` resumes it).
fn signal(server: &RedisServer, signal: &str) {
    let pid = server.pid().expect("the server runs").to_string();
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(&pid)
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A store on `server` that times out after 0.3 s, with `extra` settings.
fn breaker_cache(server: &RedisServer, extra: serde_json::Value) -> CacheManager {
    let mut store = json!({
        "driver": "redis", "url": server.url(), "prefix": "breaker:",
        "connect_timeout": 0.3, "response_timeout": 0.3
    });
    store
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    manager(store)
}

const TIMEOUT: Duration = Duration::from_millis(300);
const FAST: Duration = Duration::from_millis(50);

#[tokio::test]
async fn a_hung_server_is_marked_down_then_retried_after_retry_after() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = breaker_cache(&server, json!({ "retry_after": 1 }));
    cache.put("k", "v", 60).await.unwrap();

    signal(&server, "STOP");
    let started = Instant::now();
    let err = cache.get::<String>("k").await.unwrap_err();
    let first = started.elapsed();
    let marked_down = Instant::now();
    assert!(err.is_temporary(), "{err}");
    assert!(
        first >= TIMEOUT - Duration::from_millis(20) && first < 3 * TIMEOUT,
        "the first call took {first:?}: {err}"
    );
    let mut fast = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        let err = cache.put(&format!("k{i}"), "v", 60).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.is_temporary());
        assert_eq!(err.store(), Some("redis"));
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "the Redis server 127.0.0.1:{} was marked down after a failure (timed out",
                server.port()
            )) && message.contains("until it is retried in"),
            "{message}"
        );
        assert!(took < FAST, "call {i} while marked down took {took:?}");
        fast.push(took);
    }
    let slowest = fast.iter().max().unwrap();
    let total: Duration = fast.iter().sum();
    eprintln!(
        "paused server: first call {first:?}; 20 calls while marked down: slowest {slowest:?}, \
         mean {:?}, total {total:?}",
        total / 20
    );

    // Back, but still marked down until `retry_after` has passed: no call reaches it.
    signal(&server, "CONT");
    let err = cache.get::<String>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    tokio::time::sleep(
        (marked_down + Duration::from_secs(1)).saturating_duration_since(Instant::now()),
    )
    .await;
    let started = Instant::now();
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
    eprintln!(
        "the probe, {:?} after the server was marked down, succeeded in {:?}",
        marked_down.elapsed(),
        started.elapsed()
    );
    cache.put("after", "v", 60).await.unwrap();
}

#[tokio::test]
async fn a_crashed_server_is_marked_down_then_used_again_once_back() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let cache = breaker_cache(&server, json!({ "retry_after": 0.5 }));
    cache.put("k", "v", 60).await.unwrap();

    server.kill();
    let started = Instant::now();
    let err = cache.get::<String>("k").await.unwrap_err();
    let first = started.elapsed();
    let marked_down = Instant::now();
    assert!(err.is_temporary(), "{err}");
    for _ in 0..20 {
        let started = Instant::now();
        let err = cache.get::<String>("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("marked down"), "{err}");
        assert!(started.elapsed() < FAST, "{:?}", started.elapsed());
    }
    // A probe while it is still down marks it down again.
    tokio::time::sleep(
        (marked_down + Duration::from_millis(500)).saturating_duration_since(Instant::now()),
    )
    .await;
    let err = cache.get::<String>("k").await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(
        !err.to_string().contains("marked down"),
        "the probe tried: {err}"
    );
    let marked_down = Instant::now();
    let err = cache.get::<String>("k").await.unwrap_err();
    assert!(err.to_string().contains("marked down"), "{err}");

    // redis-rs tries to reconnect in the background after the probe: it gives up while the
    // server is still down, and the next probe must not take that stale refusal for an answer.
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.restart();
    tokio::time::sleep(
        (marked_down + Duration::from_millis(500)).saturating_duration_since(Instant::now()),
    )
    .await;
    let probe = cache.get::<String>("k").await;
    eprintln!(
        "crashed server: first call {first:?}; probe {:?} after: {probe:?}",
        marked_down.elapsed()
    );
    // The server came back empty.
    assert_eq!(probe.unwrap(), None);
    cache.put("k", "again", 60).await.unwrap();
}

#[tokio::test]
async fn with_the_breaker_off_every_call_waits_for_the_timeout() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = breaker_cache(
        &server,
        json!({ "circuit_breaker": false, "retry_after": 1 }),
    );
    cache.put("k", "v", 60).await.unwrap();
    signal(&server, "STOP");
    let mut timings = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let err = cache.get::<String>("k").await.unwrap_err();
        let took = started.elapsed();
        assert!(err.is_temporary(), "{err}");
        assert!(!err.to_string().contains("marked down"), "{err}");
        timings.push((took, err.to_string()));
    }
    eprintln!(
        "breaker off, paused server: {:?}",
        timings.iter().map(|(took, _)| took).collect::<Vec<_>>()
    );
    for (took, err) in &timings {
        assert!(
            *took >= TIMEOUT - Duration::from_millis(20),
            "a call took {took:?}: {err}"
        );
    }
    signal(&server, "CONT");
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
}

#[tokio::test]
async fn errors_from_a_server_that_answers_do_not_mark_it_down() {
    let Some(server) = server() else { return };
    let prefix = unique_prefix();
    let store = RedisStore::from_config(
        &StoreConfig::new("redis")
            .with("url", server.url())
            .with("prefix", prefix.as_str())
            .with("retry_after", 60),
    )
    .unwrap();
    let text = format!("{prefix}text");
    store.put("text", b"not a number", Some(60)).await.unwrap();
    store
        .put("max", i64::MAX.to_string().as_bytes(), Some(60))
        .await
        .unwrap();
    let script_error = redis::cmd("EVAL")
        .arg("return redis.call('NO-SUCH-COMMAND')")
        .arg(0)
        .clone();
    let failures: Vec<(ErrorKind, cachy::Error)> = vec![
        (
            ErrorKind::NotAnInteger,
            store.increment("text", 1).await.unwrap_err(),
        ),
        (
            ErrorKind::Overflow,
            store.increment("max", 1).await.unwrap_err(),
        ),
        (
            ErrorKind::Backend,
            store
                .query::<i64>(redis::cmd("LPUSH").arg(&text).arg("x"))
                .await
                .unwrap_err(),
        ),
        (
            ErrorKind::Backend,
            store.query::<i64>(&script_error).await.unwrap_err(),
        ),
        (
            ErrorKind::Backend,
            store
                .query::<i64>(redis::cmd("GET").arg(&text))
                .await
                .unwrap_err(),
        ),
    ];
    for (kind, err) in failures {
        assert_eq!(err.kind(), kind, "{err}");
        assert!(!err.is_temporary());
        assert_eq!(
            store.get("text").await.unwrap().as_deref(),
            Some(&b"not a number"[..]),
            "after {err}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_cluster_is_marked_down_too() {
    let cache = manager(json!({
        "driver": "redis", "cluster": [format!("redis://127.0.0.1:{}", free_port())],
        "connect_timeout": 0.3, "response_timeout": 0.3, "retry_after": 60
    }));
    let err = cache.get::<String>("k").await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    let started = Instant::now();
    let err = cache.get::<String>("k").await.unwrap_err();
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string()
            .contains("the Redis Cluster was marked down after a failure"),
        "{err}"
    );
}

#[tokio::test]
async fn a_hung_cluster_node_marks_the_cluster_down_then_it_is_retried() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let cache = manager(json!({
        "driver": "redis", "cluster": cluster.urls(), "prefix": "breaker:",
        "connect_timeout": 0.3, "response_timeout": 0.3, "retry_after": 1
    }));
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    for key in &keys {
        cache.put(key, key, 60).await.unwrap();
    }
    let hung = &cluster.nodes()[0];
    signal(hung, "STOP");
    // Keys on the other nodes answer until one on the hung node times out.
    let mut failed = None;
    for key in &keys {
        let started = Instant::now();
        if let Err(err) = cache.get::<String>(key).await {
            failed = Some((started.elapsed(), err));
            break;
        }
    }
    let (first, err) = failed.expect("some key lives on the hung node");
    let marked_down = Instant::now();
    assert!(err.is_temporary(), "{err}");
    let mut slowest = Duration::ZERO;
    for key in &keys[..20] {
        let started = Instant::now();
        let err = cache.get::<String>(key).await.unwrap_err();
        slowest = slowest.max(started.elapsed());
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(
            err.to_string()
                .contains("the Redis Cluster was marked down"),
            "{err}"
        );
    }
    eprintln!(
        "hung cluster node: first failure {first:?}; 20 calls while marked down, slowest {slowest:?}"
    );
    assert!(slowest < FAST, "{slowest:?}");
    signal(hung, "CONT");
    tokio::time::sleep(
        (marked_down + Duration::from_secs(1)).saturating_duration_since(Instant::now()),
    )
    .await;
    for key in &keys {
        assert_eq!(
            cache.get::<String>(key).await.unwrap().as_deref(),
            Some(key.as_str())
        );
    }
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
