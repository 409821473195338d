//! Memcached: this store, the raw meta protocol on a socket, and Python cachy 0.3.0's
//! memcached store (real python-memcached), sequential and with 64 concurrent tasks, in one
//! run on one server started here.
//!
//! `cargo bench -p cachy --bench memcached` (needs `./scripts/python-env`, which it runs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cachy::CacheManager;
use cachy_testkit::servers::MemcachedServer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    active: bool,
}

fn user() -> User {
    User {
        id: 42,
        name: "Anne".to_owned(),
        active: true,
    }
}

const CONCURRENCY: usize = 64;

/// Operations per second of `tasks` tasks looping over `op` for `duration`.
fn throughput<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    tasks: usize,
    duration: Duration,
    op: F,
) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    runtime.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let op = op.clone();
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while start.elapsed() < duration {
                        op().await;
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await.unwrap();
        }
        total as f64 / start.elapsed().as_secs_f64()
    })
}

/// The raw protocol: one blocking socket per thread, the same meta commands by hand.
fn raw_throughput(
    address: &str,
    threads: usize,
    duration: Duration,
    payload: &[u8],
    get: bool,
) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let address = address.to_owned();
            let payload = payload.to_vec();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(address).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let mut set = format!("ms raw:put {} T600 F1\r\n", payload.len()).into_bytes();
                set.extend_from_slice(&payload);
                set.extend_from_slice(b"\r\n");
                let mut line = String::new();
                let mut done = 0u64;
                while start.elapsed() < duration {
                    if get {
                        writer.write_all(b"mg raw:hit v f\r\n").unwrap();
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        let size: usize = line.split(' ').nth(1).unwrap().parse().unwrap();
                        let mut value = vec![0; size + 2];
                        reader.read_exact(&mut value).unwrap();
                    } else {
                        writer.write_all(&set).unwrap();
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                    }
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn python_throughput(
    python: &str,
    address: &str,
    op: &str,
    duration: Duration,
    threads: usize,
) -> Option<f64> {
    let config = serde_json::json!({ "driver": "memcached", "servers": [address] }).to_string();
    let output = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/python_cachy_bench.py"
        ))
        .args([
            &config,
            op,
            &duration.as_secs_f64().to_string(),
            &threads.to_string(),
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

fn python() -> Option<String> {
    let output = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/python-env"
    ))
    .output()
    .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

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
    {
        let mut stream = TcpStream::connect(server.address()).unwrap();
        let mut set = format!("ms raw:hit {} T600 F1\r\n", payload.len()).into_bytes();
        set.extend_from_slice(&payload);
        set.extend_from_slice(b"\r\n");
        stream.write_all(&set).unwrap();
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).unwrap();
    }

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
    let python = if measuring { python() } else { None };
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
            let raw = raw_throughput(&server.address(), tasks, duration, &payload, get);
            let py = python
                .as_deref()
                .and_then(|p| python_throughput(p, &server.address(), op, duration, tasks));
            let py_text = py.map_or("n/a".to_owned(), |p| format!("{p:.0}"));
            let vs_py = py.map_or("n/a".to_owned(), |p| format!("{:.1}x", ours / p));
            println!(
                "| {op} | {mode} | {ours:.0} | {raw:.0} | {py_text} | {vs_py} | {:.1}x |",
                ours / sequential
            );
        }
    }
}
