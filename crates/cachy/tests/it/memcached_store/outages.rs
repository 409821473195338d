//! A pool losing a server: the others keep working, the dead one fails fast through its
//! breaker and is taken back; a hung server, a flush with one down, an unreachable one.

use super::*;

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
