//! The circuit breaker on Redis: a hung or crashed server marked down and tried again after
//! `retry_after`, the breaker turned off, errors that do not mark a server down, and a
//! cluster marked down as one server.

use super::outages::{TIMEOUT, breaker_cache, signal};
use super::*;

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
