//! The peers cachy is compared with: the raw client doing the same operation (moka, redis-rs,
//! the memcached protocol by hand, sqlx), `redis-benchmark`, Python cachy 0.3.0, and the
//! physical limits of the embedded stores (a `HashMap` behind a lock, `std::fs` on the file
//! store's layout, rusqlite on the database store's table).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cachy_testkit::bench::{
    RawMemcached, User, python_throughput, raw_memcached_throughput, redis_benchmark_requests,
    thread_throughput, throughput, user,
};

use crate::measure::{Bench, Raw};

mod databases;

pub use databases::{rusqlite, sqlx};

/// Seed Python's own hit key on `store` (its values are its own pickles), if this run
/// compares with Python.
pub fn seed_python(bench: &Bench, store: &serde_json::Value) {
    if let Some(python) = &bench.python {
        python_throughput(python, store, "get", Duration::from_millis(1), 1);
    }
}

/// Python cachy 0.3.0's ops/s on `store`; `None` if this run does not compare with Python
/// or it could not run.
pub fn python(
    bench: &Bench,
    store: &serde_json::Value,
    op: &str,
    callers: usize,
    duration: Duration,
) -> Option<f64> {
    let python = bench.python.as_deref()?;
    python_throughput(python, store, op, duration, callers)
}

/// Memory: moka holding the typed value.
pub fn moka(bench: &Bench) -> Raw<'_> {
    let moka: moka::sync::Cache<String, User> = moka::sync::Cache::builder()
        .time_to_live(Duration::from_secs(3600))
        .build();
    moka.insert("hit".to_owned(), user());
    Box::new(move |op, tasks, duration| {
        let (moka, get) = (moka.clone(), op == "get");
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let moka = moka.clone();
            async move {
                if get {
                    moka.get("hit").unwrap();
                } else {
                    moka.insert("put".to_owned(), user());
                }
            }
        }))
    })
}

/// Memory, the limit: a `HashMap` behind a std `RwLock` holding the serialized bytes (no
/// codec, no expiry), on the same tokio tasks.
pub fn hashmap(bench: &Bench, payload: Vec<u8>) -> Raw<'_> {
    let payload: Arc<[u8]> = payload.into();
    let map: Arc<RwLock<HashMap<String, Arc<[u8]>>>> = Arc::default();
    map.write()
        .unwrap()
        .insert("hit".to_owned(), Arc::clone(&payload));
    Box::new(move |op, tasks, duration| {
        let (map, payload, get) = (map.clone(), payload.clone(), op == "get");
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let (map, payload) = (map.clone(), payload.clone());
            async move {
                if get {
                    map.read().unwrap().get("hit").cloned().unwrap();
                } else {
                    map.write().unwrap().insert("put".to_owned(), payload);
                }
            }
        }))
    })
}

/// The file of `key` in a file store at `root` with the default hash (SHA-256: eight folder
/// levels named by the digest's first byte pairs, then the digest), as the store lays it out.
pub fn file_of(root: &Path, key: &str) -> PathBuf {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    let mut path = root.to_path_buf();
    for level in 0..8 {
        path.push(&digest[level * 2..level * 2 + 2]);
    }
    path.push(digest);
    path
}

/// The files the `std::fs` peers read and write: the store's own `hit` file and the file
/// its `put` key has, with the bytes of `hit` (header and value).
struct Files {
    hit: PathBuf,
    put: PathBuf,
    content: Vec<u8>,
}

impl Files {
    fn run(&self, get: bool) {
        if get {
            std::fs::read(&self.hit).unwrap();
        } else {
            // As the store: a temporary file in the same folder, renamed over the value.
            static COUNT: AtomicU64 = AtomicU64::new(0);
            let temp = self.put.with_file_name(format!(
                ".tmp-peer-{}",
                COUNT.fetch_add(1, Ordering::Relaxed)
            ));
            let mut file = std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&temp)
                .unwrap();
            file.write_all(&self.content).unwrap();
            drop(file);
            std::fs::rename(&temp, &self.put).unwrap();
        }
    }
}

/// File, the limit: `std::fs::read` of the store's file for `hit`, and a temporary file
/// renamed over the file of `put`, in the store's folder at `root` (where `hit` is stored).
/// The direct calls on threads, and the same calls each in `tokio::task::spawn_blocking` on
/// tokio tasks (the hop the store pays).
pub fn std_fs<'a>(bench: &'a Bench, root: &Path) -> (Raw<'a>, Raw<'a>) {
    let hit = file_of(root, "hit");
    let content = std::fs::read(&hit).expect("the file store keeps `hit` at its digest's path");
    let put = file_of(root, "put");
    std::fs::create_dir_all(put.parent().unwrap()).unwrap();
    let files = Arc::new(Files { hit, put, content });
    let direct = {
        let files = files.clone();
        Box::new(move |op: &str, threads, duration| {
            let get = op == "get";
            Some(thread_throughput(
                threads,
                duration,
                {
                    let files = files.clone();
                    move || files.clone()
                },
                move |files| files.run(get),
            ))
        }) as Raw<'a>
    };
    let hop = Box::new(move |op: &str, tasks, duration| {
        let (files, get) = (files.clone(), op == "get");
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let files = files.clone();
            async move {
                tokio::task::spawn_blocking(move || files.run(get))
                    .await
                    .unwrap();
            }
        }))
    }) as Raw<'a>;
    (direct, hop)
}

/// Redis: `GET` and `SET … EX` of the stored bytes on a redis-rs connection manager.
pub fn redis_rs<'a>(bench: &'a Bench, url: &str, payload: Vec<u8>) -> Raw<'a> {
    let connection = bench
        .runtime
        .block_on(redis::aio::ConnectionManager::new(
            redis::Client::open(url).unwrap(),
        ))
        .unwrap();
    Box::new(move |op, tasks, duration| {
        let (connection, payload, get) = (connection.clone(), payload.clone(), op == "get");
        Some(throughput(&bench.runtime, tasks, duration, move || {
            let (mut connection, payload) = (connection.clone(), payload.clone());
            async move {
                if get {
                    let _: Vec<u8> = redis::cmd("GET")
                        .arg("bench:hit")
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                } else {
                    let () = redis::cmd("SET")
                        .arg("bench:put")
                        .arg(payload)
                        .arg("EX")
                        .arg(3600)
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                }
            }
        }))
    })
}

/// Redis: `redis-benchmark` on the server at `port` (`None` if it cannot run). It runs a
/// number of requests rather than a time: 20,000 (one client) or 200,000 (64) per 1.5 s of
/// window, at least 1,000.
pub fn redis_benchmark_tool(port: u16) -> Raw<'static> {
    Box::new(move |op, clients, duration| {
        let base = if clients == 1 { 20_000.0 } else { 200_000.0 };
        let requests = (base * duration.as_secs_f64() / 1.5).max(1_000.0) as usize;
        let test = if op == "get" { "get" } else { "set" };
        redis_benchmark_requests(port, test, clients, requests)
    })
}

/// memcached: the protocol by hand, one connection per thread; seeds `raw:hit` first.
pub fn raw_memcached(address: String, payload: Vec<u8>) -> Raw<'static> {
    RawMemcached::connect(&address).set("raw:hit", &payload, 1, 600);
    Box::new(move |op, threads, duration| {
        Some(raw_memcached_throughput(
            &address,
            &payload,
            op == "get",
            threads,
            duration,
        ))
    })
}
