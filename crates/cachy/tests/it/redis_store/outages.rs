//! A server killed, hung, unreachable or refusing a password: bounded errors, the circuit
//! breaker, and recovery.

use super::*;

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
        let shared = cache.get_shared::<String>("before").await.unwrap_err();
        assert_eq!(shared.kind(), err.kind(), "{shared}");
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

/// More callers than the connection's queue holds (256): those beyond it wait for a place
/// within their own timeout, so every call on a hung server ends in a timely error, and the
/// connection serves again once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_callers_than_the_queue_holds_each_fail_in_time_on_a_hung_server() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = breaker_cache(&server, json!({ "circuit_breaker": false }));
    cache.put("k", "v", 60).await.unwrap();
    signal(&server, "STOP");
    let started = Instant::now();
    let calls: Vec<_> = (0..600)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let outcome = cache.get::<String>("k").await;
                (started.elapsed(), outcome)
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for call in calls {
        let (took, outcome) = call.await.unwrap();
        let err = outcome.unwrap_err();
        assert!(err.is_temporary(), "{err}");
        assert!(took < 4 * TIMEOUT, "a call took {took:?}: {err}");
        slowest = slowest.max(took);
    }
    eprintln!(
        "600 callers on a paused server: all failed within {:?} (slowest {slowest:?})",
        started.elapsed()
    );
    signal(&server, "CONT");
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
}

/// With the server down, a tagged call's error names its key as an untagged one's does
/// (what failed first is the read of the tags' ids), and a tagged lock's names the lock.
#[tokio::test]
async fn a_tagged_call_on_a_dead_server_names_its_key() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let cache = breaker_cache(&server, json!({}));
    let tagged = cache.tags(["t"]).unwrap();
    tagged.put("k", "v", 60).await.unwrap();
    server.kill();
    let errors = [
        tagged.get::<String>("k").await.unwrap_err(),
        tagged.put("k", "w", 60).await.unwrap_err(),
        tagged.increment("n").await.unwrap_err(),
        cache.get::<String>("k").await.unwrap_err(),
    ];
    for (err, key) in errors.iter().zip(["k", "k", "n", "k"]) {
        assert!(err.is_temporary(), "{err}");
        assert_eq!(err.key(), Some(key), "{err}");
        assert_eq!(err.store(), Some("redis"), "{err}");
    }
    let lock = tagged.lock("job", Duration::from_secs(5));
    let err = lock.try_acquire().await.unwrap_err();
    assert_eq!(
        err.key(),
        Some("job"),
        "a lock's error names the lock: {err}"
    );
}

/// With the server down, a tagged `remember_many` loads every key and answers them, as an
/// untagged one does: a cache failure does not fail the call.
#[tokio::test]
async fn a_tagged_remember_many_on_a_dead_server_loads_every_key() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let cache = breaker_cache(&server, json!({}));
    let tagged = cache.tags(["t"]).unwrap();
    server.kill();
    let options = cachy::RememberOptions::new(Duration::from_secs(60));
    let values: Vec<Option<i64>> = tagged
        .remember_many(&["a", "b", "c"], &options, |keys| async move {
            Ok::<_, cachy::Error>(
                keys.into_iter()
                    .filter(|key| key != "b")
                    .map(|key| (key, 1))
                    .collect(),
            )
        })
        .await
        .unwrap();
    assert_eq!(values, [Some(1), None, Some(1)]);
    let err = tagged
        .remember_many::<i64, cachy::Error, _, _>(
            &["a"],
            &options.clone().propagate_cache_errors(),
            |_| async { unreachable!("the cache error comes first") },
        )
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err}");
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
