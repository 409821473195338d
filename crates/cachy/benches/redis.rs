//! Redis store against the same commands issued with redis-rs directly, and against
//! `redis-benchmark`, in one run on one server started here.
//!
//! `cargo bench -p cachy-rs --bench redis`
//!
//! - criterion: sequential get (hit) and put of a small struct, cachy vs raw redis-rs;
//! - then a throughput table: 64 concurrent tasks doing get / put for a fixed time, cachy vs
//!   raw redis-rs, next to `redis-benchmark -c 64` on the same server.

use std::time::Duration;

use cachy::CacheManager;
use cachy_testkit::bench::{User, redis_benchmark, throughput, user};
use cachy_testkit::servers::{RedisServer, TestServer};
use criterion::Criterion;
use redis::aio::ConnectionManager;

const CONCURRENCY: usize = 64;

struct Setup {
    runtime: tokio::runtime::Runtime,
    server: RedisServer,
    cache: CacheManager,
    raw: ConnectionManager,
    payload: Vec<u8>,
}

fn setup() -> Setup {
    let server =
        RedisServer::start().expect("redis-server is installed (./scripts/test installs it)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = CacheManager::from_value(serde_json::json!({
        "stores": { "redis": { "driver": "redis", "url": server.url(), "prefix": "bench:" } }
    }))
    .unwrap();
    let raw = runtime
        .block_on(ConnectionManager::new(
            redis::Client::open(server.url()).unwrap(),
        ))
        .unwrap();
    let payload = cache
        .store(None)
        .unwrap()
        .serializer()
        .serialize(&user())
        .unwrap();
    runtime.block_on(cache.put("hit", &user(), 60)).unwrap();
    Setup {
        runtime,
        server,
        cache,
        raw,
        payload,
    }
}

async fn raw_get(raw: &mut ConnectionManager) -> Vec<u8> {
    redis::cmd("GET")
        .arg("bench:hit")
        .query_async(raw)
        .await
        .unwrap()
}

async fn raw_put(raw: &mut ConnectionManager, payload: &[u8]) {
    let () = redis::cmd("SET")
        .arg("bench:put")
        .arg(payload)
        .arg("EX")
        .arg(3600)
        .query_async(raw)
        .await
        .unwrap();
}

fn sequential(c: &mut Criterion, s: &Setup) {
    let mut group = c.benchmark_group("redis/sequential");
    let repo = s.cache.store(None).unwrap();
    group.bench_function("cachy/get_hit", |b| {
        b.to_async(&s.runtime)
            .iter(|| async { repo.get::<User>("hit").await.unwrap().unwrap() })
    });
    group.bench_function("raw/get_hit", |b| {
        b.to_async(&s.runtime).iter(|| {
            let mut raw = s.raw.clone();
            async move { raw_get(&mut raw).await }
        })
    });
    group.bench_function("cachy/put", |b| {
        b.to_async(&s.runtime)
            .iter(|| async { repo.put("put", &user(), 60).await.unwrap() })
    });
    group.bench_function("raw/put", |b| {
        b.to_async(&s.runtime).iter(|| {
            let mut raw = s.raw.clone();
            let payload = &s.payload;
            async move { raw_put(&mut raw, payload).await }
        })
    });
    group.finish();
}

fn concurrent(s: &Setup, duration: Duration, with_redis_benchmark: bool) {
    let repo = s.cache.store(None).unwrap();
    let cachy_get = throughput(&s.runtime, CONCURRENCY, duration, {
        let repo = repo.clone();
        move || {
            let repo = repo.clone();
            async move {
                repo.get::<User>("hit").await.unwrap().unwrap();
            }
        }
    });
    let raw_get_ops = throughput(&s.runtime, CONCURRENCY, duration, {
        let raw = s.raw.clone();
        move || {
            let mut raw = raw.clone();
            async move {
                raw_get(&mut raw).await;
            }
        }
    });
    let cachy_put = throughput(&s.runtime, CONCURRENCY, duration, {
        let repo = repo.clone();
        move || {
            let repo = repo.clone();
            async move { repo.put("put", &user(), 60).await.unwrap() }
        }
    });
    let raw_put_ops = throughput(&s.runtime, CONCURRENCY, duration, {
        let raw = s.raw.clone();
        let payload = s.payload.clone();
        move || {
            let mut raw = raw.clone();
            let payload = payload.clone();
            async move { raw_put(&mut raw, &payload).await }
        }
    });
    let (bench_get, bench_set) = if with_redis_benchmark {
        (
            redis_benchmark(s.server.port(), "get", CONCURRENCY),
            redis_benchmark(s.server.port(), "set", CONCURRENCY),
        )
    } else {
        (None, None)
    };
    println!("\nredis, {CONCURRENCY} concurrent tasks, ops/s (same server, same run):");
    println!(
        "| op | cachy | raw redis-rs | redis-benchmark -c {CONCURRENCY} | cachy / raw | cachy / redis-benchmark |"
    );
    println!("|---|---|---|---|---|---|");
    for (op, ours, raw, tool) in [
        ("get", cachy_get, raw_get_ops, bench_get),
        ("put", cachy_put, raw_put_ops, bench_set),
    ] {
        let tool_text = tool.map_or("n/a".to_owned(), |t| format!("{t:.0}"));
        let tool_ratio = tool.map_or("n/a".to_owned(), |t| format!("{:.0}%", 100.0 * ours / t));
        println!(
            "| {op} | {ours:.0} | {raw:.0} | {tool_text} | {:.0}% | {tool_ratio} |",
            100.0 * ours / raw
        );
    }
}

fn benches() {
    // `cargo test --all-targets` runs this binary without `--bench`: check that every path
    // works, quickly, and measure nothing.
    let measuring = std::env::args().any(|a| a == "--bench");
    let setup = setup();
    let mut criterion = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    sequential(&mut criterion, &setup);
    criterion.final_summary();
    let duration = if measuring {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(50)
    };
    concurrent(&setup, duration, measuring);
}

fn main() {
    benches();
}
