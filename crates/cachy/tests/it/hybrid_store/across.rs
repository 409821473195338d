//! Coherence across OS processes: this test binary is spawned as the other processes, which
//! watch keys and report every value they read.

use super::*;

/// A watcher process (run by the tests below; does nothing alone): reads its keys in a loop
/// and prints a JSON line for every change of what it reads (a value, or an error kind), with
/// the time it saw it; `ready` once subscribed with every key read. It writes a key of its
/// own every tenth round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher() {
    let Ok(config) = std::env::var(WATCHER_CONFIG) else {
        return;
    };
    let watched: Vec<(String, String)> =
        serde_json::from_str(&std::env::var(WATCHED).unwrap()).unwrap();
    let cache = CacheManager::from_value(serde_json::from_str(&config).unwrap())
        .unwrap()
        .store(None)
        .unwrap();
    let hybrid = (&**cache.backend() as &dyn std::any::Any)
        .downcast_ref::<HybridStore>()
        .unwrap();
    while !hybrid.is_subscribed() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut last: Vec<Option<Value>> = vec![None; watched.len()];
    let mut ready = false;
    let mut out = std::io::stdout();
    let own_key = format!("written by {}", std::process::id());
    for round in 0u64.. {
        // Load: every watcher writes too (failing while the store is down).
        if round % 10 == 0 {
            let _ = cache.put(&own_key, &round, 60).await;
        }
        for (i, (tag, key)) in watched.iter().enumerate() {
            let seen = match read(&cache, tag, key).await {
                Ok(value) => json!({ "value": value }),
                Err(e) => json!({ "error": e.kind().to_string() }),
            };
            if last[i].as_ref() != Some(&seen) {
                let line = json!({ "key": i, "seen": seen, "at": now_micros() });
                writeln!(out, "{line}").unwrap();
                last[i] = Some(seen);
            }
        }
        if !ready {
            writeln!(out, "{}", json!({ "ready": true })).unwrap();
            ready = true;
        }
        out.flush().unwrap();
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_see_every_change_within_100_ms() {
    let Some(server) = server() else { return };
    let config = over_redis(&server.url());
    let manager = CacheManager::from_value(config.clone()).unwrap();
    let cache = manager.store(None).unwrap();
    let redis = manager.store("redis").unwrap();
    cache.put("k", "v1", 10).await.unwrap();
    cache.put("gone", "g1", 10).await.unwrap();
    cache.tags(["t"]).put("x", "x1", 10).await.unwrap();
    let watched = [("", "k"), ("", "gone"), ("t", "x")];
    let mut watchers = two_watchers(&config, &watched, "v1");
    for watcher in &mut watchers {
        watcher.wait_for(1, &value("g1"), Duration::from_secs(5));
        watcher.wait_for(2, &value("x1"), Duration::from_secs(5));
    }

    // The watchers read from their L1: a write behind the hybrid store's back goes unseen.
    redis.put("k", "behind its back", 10).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for watcher in &mut watchers {
        assert_eq!(watcher.current(0), value("v1"));
    }

    let mut delays = Vec::new();
    delays.extend(
        propagates(&mut watchers, 0, value("v2"), async {
            cache.put("k", "v2", 10).await.unwrap();
        })
        .await,
    );
    delays.extend(
        propagates(&mut watchers, 1, missing(), async {
            cache.forget("gone").await.unwrap();
        })
        .await,
    );
    delays.extend(
        propagates(&mut watchers, 2, missing(), async {
            cache.tags(["t"]).flush().await.unwrap();
        })
        .await,
    );
    redis.put("k", "behind its back again", 10).await.unwrap();
    delays.extend(
        propagates(&mut watchers, 0, missing(), async {
            cache.flush().await.unwrap();
        })
        .await,
    );
    eprintln!("invalidation delays (µs): {delays:?}");
}
