//! Locks: an uncontended acquire + release per store, next to the raw Redis commands it
//! issues (`SET NX EX`, `INCR` for the fencing token, the compare-and-delete script), and the
//! time from a holder's release to a waiting `acquire` taking the lock, in one run.
//! `cargo bench -p cachy-rs --bench locks`.

use std::time::{Duration, Instant};

use cachy::{CacheManager, Repository};
use cachy_testkit::servers::{RedisServer, TestServer};
use criterion::{Criterion, criterion_group, criterion_main};

const COMPARE_AND_DELETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

fn uncontended(
    c: &mut Criterion,
    store: &str,
    repo: &Repository,
    runtime: &tokio::runtime::Runtime,
) {
    let mut group = c.benchmark_group(format!("locks/{store}"));
    let lock = repo.lock("bench-lock", Duration::from_secs(30));
    group.bench_function("acquire_release", |b| {
        b.to_async(runtime).iter(|| async {
            assert!(lock.try_acquire().await.unwrap());
            assert!(lock.release().await.unwrap());
        })
    });
    // A holder releases after 20 ms while another caller waits in `acquire`: the time from
    // the release to the waiter holding the lock.
    group.bench_function("release_to_waiter_acquire", |b| {
        b.to_async(runtime).iter_custom(|iterations| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let holder = repo.lock("handover", Duration::from_secs(30));
                assert!(holder.try_acquire().await.unwrap());
                let waiter = repo.lock("handover", Duration::from_secs(30));
                let waiting = tokio::spawn(async move {
                    waiter.acquire(Duration::from_secs(10)).await.unwrap();
                    let acquired = Instant::now();
                    waiter.release().await.unwrap();
                    acquired
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
                holder.release().await.unwrap();
                let released = Instant::now();
                total += waiting.await.unwrap().saturating_duration_since(released);
            }
            total
        })
    });
    group.finish();
}

fn locks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server =
        RedisServer::start().expect("redis-server is installed (./scripts/test installs it)");
    let cache = CacheManager::from_value(serde_json::json!({ "stores": {
        "memory": { "driver": "dict" },
        "file": { "driver": "file", "path": dir.path() },
        "redis": { "driver": "redis", "url": server.address(), "prefix": "locks:" },
    } }))
    .unwrap();
    for store in ["memory", "file", "redis"] {
        uncontended(c, store, &cache.store(store).unwrap(), &runtime);
    }

    let raw = runtime
        .block_on(redis::aio::ConnectionManager::new(
            redis::Client::open(server.address()).unwrap(),
        ))
        .unwrap();
    c.benchmark_group("locks/redis")
        .bench_function("raw_commands", |b| {
            b.to_async(&runtime).iter(|| {
                let mut raw = raw.clone();
                async move {
                    let set: Option<String> = redis::cmd("SET")
                        .arg("locks:raw")
                        .arg("owner")
                        .arg("NX")
                        .arg("EX")
                        .arg(31)
                        .query_async(&mut raw)
                        .await
                        .unwrap();
                    assert!(set.is_some());
                    let _: i64 = redis::cmd("INCR")
                        .arg("locks:raw:fence")
                        .query_async(&mut raw)
                        .await
                        .unwrap();
                    let deleted: i64 = redis::cmd("EVAL")
                        .arg(COMPARE_AND_DELETE)
                        .arg(1)
                        .arg("locks:raw")
                        .arg("owner")
                        .query_async(&mut raw)
                        .await
                        .unwrap();
                    assert_eq!(deleted, 1);
                }
            })
        });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = locks
}
criterion_main!(benches);
