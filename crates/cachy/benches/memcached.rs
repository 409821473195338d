//! Memcached: this store, the raw meta protocol on a socket, and Python cachy 0.3.0's
//! memcached store (real python-memcached), sequential and with 64 concurrent tasks, in one
//! run on one server started here.
//!
//! `cargo bench -p cachy-rs --bench memcached` (runs `./scripts/python-env` for Python cachy).

use std::time::Duration;

use cachy::CacheManager;
use cachy_testkit::bench::{
    RawMemcached, User, python_cachy, python_throughput, raw_memcached_throughput, throughput, user,
};
use cachy_testkit::servers::{MemcachedServer, TestServer};

const CONCURRENCY: usize = 64;

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: check the paths, measure nothing.
    let measuring = std::env::args().any(|a| a == "--bench");
    let duration = if measuring {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(50)
    };
    let server =
        MemcachedServer::start().expect("memcached is installed (./scripts/test installs it)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = CacheManager::from_value(serde_json::json!({
        "stores": { "memcached": { "driver": "memcached", "servers": [server.address()] } }
    }))
    .unwrap();
    let repo = cache.store(None).unwrap();
    runtime.block_on(repo.put("hit", &user(), 60)).unwrap();
    let payload = repo.serializer().serialize(&user()).unwrap();
    RawMemcached::connect(&server.address()).set("raw:hit", &payload, 1, 600);

    let cachy = |tasks: usize, get: bool| {
        let repo = repo.clone();
        throughput(&runtime, tasks, duration, move || {
            let repo = repo.clone();
            async move {
                if get {
                    repo.get::<User>("hit").await.unwrap().unwrap();
                } else {
                    repo.put("put", &user(), 60).await.unwrap();
                }
            }
        })
    };
    let raw = |threads: usize, get: bool| {
        raw_memcached_throughput(&server.address(), &payload, get, threads, duration)
    };
    let python = if measuring { python_cachy() } else { None };
    let python_store = serde_json::json!({ "driver": "memcached", "servers": [server.address()] });
    println!("\nmemcached, ops/s (same server, same run, {CONCURRENCY} concurrent tasks/threads):");
    println!(
        "| op | mode | cachy | raw protocol | Python cachy 0.3.0 | cachy / Python | cachy 64 / cachy sequential |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (op, get) in [("get", true), ("put", false)] {
        let sequential = cachy(1, get);
        for (mode, tasks) in [("sequential", 1), ("64 concurrent", CONCURRENCY)] {
            let ours = if tasks == 1 {
                sequential
            } else {
                cachy(tasks, get)
            };
            let raw = raw(tasks, get);
            let py = python
                .as_deref()
                .and_then(|p| python_throughput(p, &python_store, op, duration, tasks));
            let py_text = py.map_or("n/a".to_owned(), |p| format!("{p:.0}"));
            let vs_py = py.map_or("n/a".to_owned(), |p| format!("{:.1}x", ours / p));
            println!(
                "| {op} | {mode} | {ours:.0} | {raw:.0} | {py_text} | {vs_py} | {:.1}x |",
                ours / sequential
            );
        }
    }
}
