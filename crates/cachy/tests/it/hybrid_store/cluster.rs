//! The hybrid store on a Redis Cluster of its own (L2 and backplane), across three OS
//! processes: through the crash and return of the primary every process subscribed on, and
//! through its stall.

use cachy_testkit::servers::RedisCluster;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_invalidations_survive_a_primary_s_crash() {
    let Some(mut cluster) = RedisCluster::start() else {
        return;
    };
    let prefix = unique_prefix();
    let config = over_cluster(&cluster, &prefix, json!({}));
    let key_on = |node: usize| key_on(&cluster, &prefix, node);
    // Every process subscribes on the first node it is given: node 0.
    let (dead, live) = (key_on(0), key_on(1));
    let cache = CacheManager::from_value(config.clone())
        .unwrap()
        .store(None)
        .unwrap();
    cache.put(&live, "v1", 60).await.unwrap();
    cache.put(&dead, "d1", 60).await.unwrap();
    let watched = [("", live.as_str()), ("", dead.as_str())];
    let mut watchers = two_watchers(&config, &watched, "v1");
    for watcher in &mut watchers {
        watcher.wait_for(1, &value("d1"), Duration::from_secs(5));
    }
    let mut delays = Vec::new();
    delays.extend(
        propagates(&mut watchers, 0, value("v2"), async {
            cache.put(&live, "v2", 60).await.unwrap();
        })
        .await,
    );
    delays.extend(
        propagates(&mut watchers, 1, value("d2"), async {
            cache.put(&dead, "d2", 60).await.unwrap();
        })
        .await,
    );

    // Every subscription ends with node 0; each process subscribes again on another node.
    cluster.kill(0);
    let written = put_until_stored(&cache, &live, "v3").await;
    for watcher in &mut watchers {
        let seen = watcher.wait_for(0, &value("v3"), Duration::from_secs(10));
        eprintln!(
            "with node 0 down, a change seen {} ms after its write returned",
            seen.saturating_sub(written) / 1000
        );
    }

    cluster.restart(0);
    put_until_stored(&cache, &dead, "d3").await;
    for watcher in &mut watchers {
        watcher.wait_for(1, &value("d3"), Duration::from_secs(10));
    }
    delays.extend(
        propagates(&mut watchers, 0, value("v4"), async {
            cache.put(&live, "v4", 60).await.unwrap();
        })
        .await,
    );
    delays.extend(
        propagates(&mut watchers, 1, value("d4"), async {
            cache.put(&dead, "d4", 60).await.unwrap();
        })
        .await,
    );
    eprintln!("invalidation delays on the cluster (µs): {delays:?}");
}

/// A node that stalls keeps its connections open, so no subscription on it ends: each
/// process notices from its heartbeat that its markers no longer come back, and subscribes
/// on another node. (Without the circuit breaker: with it, calls for the stalled node's keys
/// would mark the whole cluster store down, see the Redis store's docs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_stalled_node_does_not_stop_invalidations() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let prefix = unique_prefix();
    let config = over_cluster(
        &cluster,
        &prefix,
        json!({ "circuit_breaker": false, "connect_timeout": 0.5, "response_timeout": 0.5 }),
    );
    let key = key_on(&cluster, &prefix, 2);
    let cache = CacheManager::from_value(config.clone())
        .unwrap()
        .store(None)
        .unwrap();
    cache.put(&key, "v1", 60).await.unwrap();
    let mut watchers = two_watchers(&config, &[("", key.as_str())], "v1");

    // Every process listens on node 0, the first it is given.
    let paused = cluster.nodes()[0].pid().expect("node 0 runs");
    signal(paused, "STOP");
    let written = put_until_stored(&cache, &key, "v2").await;
    for watcher in &mut watchers {
        let seen = watcher.wait_for(0, &value("v2"), Duration::from_secs(10));
        eprintln!(
            "with node 0 paused, a change seen {} ms after its write returned",
            seen.saturating_sub(written) / 1000
        );
    }
    signal(paused, "CONT");
    let delays = propagates(&mut watchers, 0, value("v3"), async {
        cache.put(&key, "v3", 60).await.unwrap();
    })
    .await;
    eprintln!("invalidation delays after the stall (µs): {delays:?}");
}

/// Stores `redis` (on `cluster`, with `extra` settings) and `hybrid` over it.
fn over_cluster(cluster: &RedisCluster, prefix: &str, extra: Value) -> Value {
    let mut redis = json!({ "driver": "redis", "cluster": cluster.urls(), "prefix": prefix });
    redis
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({
        "default": "hybrid",
        "stores": {
            "redis": redis,
            "hybrid": { "driver": "hybrid", "l2": "redis", "l1_ttl": 30 }
        }
    })
}

/// A key (without the store's `prefix`) that node `node` of `cluster` serves.
fn key_on(cluster: &RedisCluster, prefix: &str, node: usize) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|key| cluster.node_of(&format!("{prefix}{key}")) == node)
        .unwrap()
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Put until the store takes it (a node down may fail a call, or open the breaker for a
/// while); when it did, in microseconds.
async fn put_until_stored(cache: &Repository, key: &str, value: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match cache.put(key, value, 60).await {
            Ok(()) => return now_micros(),
            Err(e) => assert!(Instant::now() < deadline, "still failing: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
