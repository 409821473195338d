//! A server killed, hung, unreachable or refusing a password: bounded errors and recovery
//! (the circuit breaker's part is in `breaker.rs`), and the helpers both files use.

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
pub(super) fn signal(server: &RedisServer, signal: &str) {
    let pid = server.pid().expect("the server runs").to_string();
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(&pid)
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A store on `server` that times out after 0.3 s, with `extra` settings.
pub(super) fn breaker_cache(server: &RedisServer, extra: serde_json::Value) -> CacheManager {
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

pub(super) const TIMEOUT: Duration = Duration::from_millis(300);

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
