//! What a hybrid store serves while Redis (as its backplane or its L2) is down, and what it
//! sends once Redis is back.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_l1_serves_and_afterwards_no_change_is_missed() {
    // Its own server: this test kills it.
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // L2 on SQLite stays up while the backplane (Redis) is down.
    let config = over_sqlite(&server.url(), &dir.path().join("cache.db"));
    let manager = CacheManager::from_value(config.clone()).unwrap();
    let cache = manager.store(None).unwrap();
    cache.put("k", "v1", 600).await.unwrap();
    let mut watchers = two_watchers(&config, &[("", "k"), ("", "load")], "v1");
    // Load: this process keeps writing while the watchers keep reading.
    let writer = {
        let cache = cache.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let _ = cache.put("load", &i.to_string(), 600).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.kill();
    // A change while the backplane is down: L2 takes it, the invalidation is queued.
    cache.put("k", "v2", 600).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hybrid = (&**cache.backend() as &dyn std::any::Any)
        .downcast_ref::<HybridStore>()
        .unwrap();
    assert!(!hybrid.is_subscribed());
    // "k" and "load", however often they changed (seen between two tries to send them).
    let deadline = Instant::now() + Duration::from_secs(3);
    while hybrid.unsent_invalidations() != 2 {
        assert!(
            Instant::now() < deadline,
            "{} queued",
            hybrid.unsent_invalidations()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for watcher in &mut watchers {
        // Served from L1 all along, stale (at most `l1_ttl`), never an error.
        assert_eq!(watcher.current(0), value("v1"));
    }

    server.restart();
    let restarted = now_micros();
    for watcher in &mut watchers {
        let at = watcher.wait_for(0, &value("v2"), Duration::from_secs(10));
        eprintln!(
            "seen {} ms after the restart",
            at.saturating_sub(restarted) / 1000
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while hybrid.unsent_invalidations() > 0 {
        assert!(
            Instant::now() < deadline,
            "the queued invalidations were never sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And the backplane works again.
    propagates(&mut watchers, 0, value("v3"), async {
        cache.put("k", "v3", 600).await.unwrap();
    })
    .await;
    writer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_as_l2_is_down_cached_keys_are_still_served() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let config = over_redis(&server.url());
    let cache = CacheManager::from_value(config.clone())
        .unwrap()
        .store(None)
        .unwrap();
    cache.put("cached", "c1", 600).await.unwrap();
    let watched = [("", "cached"), ("", "never read before")];
    let mut watchers = two_watchers(&config, &watched, "c1");
    for _ in 0..2 {
        // The first read copies the value into L1, the second keeps it decoded.
        let shared = cache.get_shared::<String>("cached").await.unwrap();
        assert_eq!(shared.as_deref().map(String::as_str), Some("c1"));
    }
    server.kill();
    // A key the watchers never had in L1 fails; the cached one keeps being served.
    cache.forget("never read before").await.unwrap_err();
    let shared = cache.get_shared::<String>("cached").await.unwrap();
    assert_eq!(
        shared.as_deref().map(String::as_str),
        Some("c1"),
        "from L1, decoded"
    );
    let error = cache
        .get_shared::<String>("never read before")
        .await
        .unwrap_err();
    assert!(error.is_temporary(), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for watcher in &mut watchers {
        assert_eq!(watcher.current(0), value("c1"));
        let error = watcher.current(1);
        assert!(error.get("error").is_some(), "{error}");
    }
    server.restart();
    // The queued invalidations and the resubscription make every change seen again.
    for watcher in &mut watchers {
        watcher.wait_for(1, &missing(), Duration::from_secs(10));
    }
    // This process's breaker may still count Redis down, until its own subscription is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.forget("probe").await.is_err() {
        assert!(Instant::now() < deadline, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    propagates(&mut watchers, 0, value("c2"), async {
        cache.put("cached", "c2", 600).await.unwrap();
    })
    .await;
}

/// Past 10,000 keys (the backplane's bound), the invalidations queued while Redis is
/// unreachable become one flush, however many more keys change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_backplane_is_unreachable_the_queue_stays_bounded() {
    const BOUND: usize = 10_000;
    let config = json!({
        "default": "hybrid",
        "stores": {
            // Nothing listens there: every publish fails, at once.
            "redis": { "driver": "redis", "url": "redis://127.0.0.1:1" },
            "dict": { "driver": "dict" },
            "hybrid": { "driver": "hybrid", "l2": "dict", "backplane": "redis" }
        }
    });
    let cache = CacheManager::from_value(config)
        .unwrap()
        .store(None)
        .unwrap();
    let hybrid = (&**cache.backend() as &dyn std::any::Any)
        .downcast_ref::<HybridStore>()
        .unwrap();
    let started = Instant::now();
    for i in 0..3 * BOUND {
        cache.put(&format!("key {i}"), &i, 600).await.unwrap();
        let queued = hybrid.unsent_invalidations();
        assert!(
            queued <= BOUND + 1,
            "{queued} queued after {} writes",
            i + 1
        );
    }
    eprintln!("{} writes in {:?}", 3 * BOUND, started.elapsed());
    // The publisher may hold the queue for a moment, while it tries to send it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while hybrid.unsent_invalidations() != 1 {
        assert!(
            Instant::now() < deadline,
            "{} queued",
            hybrid.unsent_invalidations()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!hybrid.is_subscribed());
}
