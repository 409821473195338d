//! The behaviour suite on memcached (started here), a 3-server pool with one server killed,
//! python-memcached's value layout, and bad input.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cachy::stores::MemcachedStore;
use cachy::{CacheManager, ErrorKind, Store, StoreConfig};
use cachy_testkit::Fixture;
use cachy_testkit::servers::{MemcachedServer, TestServer};
use serde_json::json;

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
async fn a_pool_spreads_keys_and_survives_a_dead_server() {
    let Some(mut servers) = (0..3)
        .map(|_| MemcachedServer::start())
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let addresses: Vec<String> = servers.iter().map(MemcachedServer::address).collect();
    let config =
        json!({ "driver": "memcached", "servers": addresses, "timeout": 0.5, "retry_after": 0.5 });
    let cache = manager(config.clone());
    let store = MemcachedStore::from_config(
        &StoreConfig::new("memcached").with("servers", json!(addresses)),
    )
    .unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("key{i}")).collect();
    for key in &keys {
        cache.put(key, key, 10).await.unwrap();
    }
    let mut per_server = std::collections::HashMap::new();
    for key in &keys {
        *per_server.entry(store.server_for(key)).or_insert(0) += 1;
    }
    assert_eq!(
        per_server.len(),
        3,
        "keys land on all three: {per_server:?}"
    );
    assert!(
        per_server.values().all(|n| *n > 40),
        "roughly even: {per_server:?}"
    );

    let dead = addresses[0].clone();
    servers[0].kill();
    let started = Instant::now();
    for key in &keys {
        let result = cache.get::<String>(key).await;
        if store.server_for(key) == dead {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
            assert!(err.is_temporary());
            assert!(err.to_string().contains(&dead), "{err}");
        } else {
            assert_eq!(
                result.unwrap().as_deref(),
                Some(key.as_str()),
                "keys of live servers still work"
            );
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a dead server is marked down, not retried per call: {:?}",
        started.elapsed()
    );

    servers[0].restart();
    let back = Instant::now();
    let dead_key = keys.iter().find(|k| store.server_for(k) == dead).unwrap();
    loop {
        match cache.put(dead_key, "again", 10).await {
            Ok(()) => break,
            Err(e) => assert!(
                back.elapsed() < Duration::from_secs(5),
                "not used again: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cache.get::<String>(dead_key).await.unwrap().as_deref(),
        Some("again")
    );
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

#[tokio::test]
async fn counters_created_here_have_the_integer_flag() {
    let Some(server) = server() else { return };
    let store = MemcachedStore::from_config(
        &StoreConfig::new("memcached").with("servers", json!([server.address()])),
    )
    .unwrap();
    let key = unique("counter");
    assert_eq!(store.increment(&key, 5).await.unwrap(), 5);
    assert_eq!(store.increment(&key, -7).await.unwrap(), -2);
    assert_eq!(store.increment(&key, 3).await.unwrap(), 1);
    assert_eq!(store.get(&key).await.unwrap().unwrap(), b"1");
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

/// A server that stops answering (paused, as a hung one) while callers queue for its few
/// connections: once the first call marks it down, the queued ones fail at once instead of
/// each waiting out its own timeout in turn.
#[tokio::test]
async fn callers_queued_for_a_hung_server_fail_at_once_once_it_is_marked_down() {
    let (Some(hung), Some(live)) = (MemcachedServer::start(), MemcachedServer::start()) else {
        return;
    };
    let store = Arc::new(
        MemcachedStore::from_config(
            &StoreConfig::new("memcached")
                .with("servers", json!([hung.address(), live.address()]))
                .with("max_connections", 2)
                .with("timeout", 0.5)
                .with("retry_after", 30),
        )
        .unwrap(),
    );
    let hung_keys: Vec<String> = (0..200)
        .map(|i| format!("key{i}"))
        .filter(|key| store.server_for(key) == hung.address())
        .take(16)
        .collect();
    let pid = hung.pid().expect("the server runs").to_string();
    let pause = |signal: &str| {
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    };
    pause("-STOP");
    let calls: Vec<_> = hung_keys
        .into_iter()
        .map(|key| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let started = Instant::now();
                let outcome = store.get(&key).await;
                (started.elapsed(), outcome.map(|_| ()).map_err(|e| e.kind()))
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for call in calls {
        let (took, outcome) = call.await.unwrap();
        assert!(
            matches!(outcome, Err(ErrorKind::Timeout | ErrorKind::Unavailable)),
            "{outcome:?}"
        );
        slowest = slowest.max(took);
    }
    pause("-CONT");
    assert!(
        slowest < Duration::from_millis(1500),
        "16 callers on 2 connections to a hung server: the slowest took {slowest:?}, not one \
         timeout (0.5 s) and a little"
    );
}

/// A flush with one server dead still flushes the others, and says it failed.
#[tokio::test]
async fn a_flush_with_one_server_dead_flushes_the_others() {
    let (Some(mut dead), Some(live)) = (MemcachedServer::start(), MemcachedServer::start()) else {
        return;
    };
    let store = MemcachedStore::from_config(
        &StoreConfig::new("memcached")
            .with("servers", json!([dead.address(), live.address()]))
            .with("timeout", 0.5),
    )
    .unwrap();
    let live_key = (0..200)
        .map(|i| format!("key{i}"))
        .find(|key| store.server_for(key) == live.address())
        .unwrap();
    store.put(&live_key, b"1", None).await.unwrap();
    dead.kill();
    let flushed = store.flush().await;
    assert!(
        flushed.is_err(),
        "the dead server's flush failed: {flushed:?}"
    );
    assert_eq!(
        store.get(&live_key).await.unwrap(),
        None,
        "the live server was flushed"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_within_the_timeout() {
    let cache = manager(
        json!({ "driver": "memcached", "servers": [format!("127.0.0.1:{}", cachy_testkit::servers::free_port())], "timeout": 0.5 }),
    );
    let started = Instant::now();
    let err = cache.get::<String>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(started.elapsed() < Duration::from_secs(2));
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
async fn a_refused_request_does_not_mark_the_server_down() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("refused");
    cache.put(&key, "text", 10).await.unwrap();
    assert_eq!(
        cache.increment(&key).await.unwrap_err().kind(),
        ErrorKind::NotAnInteger
    );
    let huge = "x".repeat(3 * 1024 * 1024);
    assert_eq!(
        cache.put(&key, &huge, 10).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // (memcached drops the old value when a too-large one replaces it)
    cache.put(&key, "again", 10).await.unwrap();
    assert_eq!(
        cache.get::<String>(&key).await.unwrap().as_deref(),
        Some("again"),
        "the server is still used"
    );
}

/// Send `request` to memcached as it is, followed by `mn`, and return what it answered
/// before the `MN`.
fn raw(server: &MemcachedServer, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(server.address()).unwrap();
    std::io::Write::write_all(&mut stream, format!("{request}mn\r\n").as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 256];
    while !answer.ends_with(b"MN\r\n") {
        let n = std::io::Read::read(&mut stream, &mut buffer).unwrap();
        assert!(n > 0, "memcached closed the connection");
        answer.extend_from_slice(&buffer[..n]);
    }
    answer.truncate(answer.len() - 4);
    String::from_utf8(answer).unwrap()
}

#[tokio::test]
async fn an_overflowing_increment_leaves_the_counter_readable() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("overflow-wide");
    cache.forever(&key, &(i64::MAX - 1)).await.unwrap();
    // The sum has one digit more than the counter: an increment applied and then taken back
    // would leave the counter padded with a space.
    let overflow = cache.increment_by(&key, i64::MAX).await.unwrap_err();
    assert_eq!(overflow.kind(), ErrorKind::Overflow, "{overflow}");
    assert!(!overflow.is_temporary());
    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(i64::MAX - 1));
    assert_eq!(
        raw(server, &format!("mg {key} v\r\n")),
        format!("VA 19\r\n{}\r\n", i64::MAX - 1),
        "stored exactly as it was"
    );
    assert_eq!(cache.decrement(&key).await.unwrap(), i64::MAX - 2);
}

#[tokio::test]
async fn a_counter_beyond_the_signed_range_is_not_an_integer_and_stays() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("u64-max");
    // Another client's counter at memcached's largest: its own incr would wrap it to 0.
    assert_eq!(
        raw(server, &format!("ms {key} 20 F2\r\n{}\r\n", u64::MAX)),
        "HD\r\n"
    );
    for by in [1, -1] {
        let err = cache.increment_by(&key, by).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAnInteger, "{by}: {err}");
    }
    assert_eq!(
        raw(server, &format!("mg {key} v\r\n")),
        format!("VA 20\r\n{}\r\n", u64::MAX)
    );
}

#[tokio::test]
async fn counters_padded_by_memcacheds_own_decrement_read_as_integers() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "memcached", "servers": [server.address()] }));
    let key = unique("padded");
    assert_eq!(raw(server, &format!("ms {key} 2 F2\r\n10\r\n")), "HD\r\n");
    // memcached rewrites a shorter number in place, padded with spaces (as python-memcached's
    // decr or any other client's would leave it).
    assert_eq!(raw(server, &format!("decr {key} 1\r\n")), "9\r\n");
    assert_eq!(raw(server, &format!("mg {key} v\r\n")), "VA 2\r\n9 \r\n");
    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(9));
    assert_eq!(
        cache.many::<i64>(&[key.as_str()]).await.unwrap(),
        vec![Some(9)]
    );
    assert_eq!(cache.increment(&key).await.unwrap(), 10);
    assert_eq!(cache.decrement_by(&key, 20).await.unwrap(), -10);

    let leading = unique("leading");
    assert_eq!(
        raw(server, &format!("ms {leading} 4 F2\r\n  7 \r\n")),
        "HD\r\n"
    );
    assert_eq!(cache.get::<i64>(&leading).await.unwrap(), Some(7));
    assert_eq!(cache.increment(&leading).await.unwrap(), 8);
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
