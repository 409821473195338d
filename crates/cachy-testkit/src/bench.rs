//! Helpers the benchmarks share: throughput loops, the real Python cachy, and the
//! `redis-benchmark` tool, so every peer is measured the same way in the same run.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The small struct every benchmark caches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// A number.
    pub id: u64,
    /// A short string.
    pub name: String,
    /// A flag.
    pub active: bool,
}

/// The one `User` value the benchmarks use.
pub fn user() -> User {
    User {
        id: 42,
        name: "Anne".to_owned(),
        active: true,
    }
}

/// A realistic cached struct: eight fields, strings and a vector, about 300 bytes encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// A number.
    pub id: u64,
    /// A name.
    pub name: String,
    /// An address.
    pub email: String,
    /// A paragraph.
    pub bio: String,
    /// A flag.
    pub active: bool,
    /// A float.
    pub score: f64,
    /// A list of short strings.
    pub roles: Vec<String>,
    /// A timestamp as text.
    pub created_at: String,
}

/// The one `Profile` value the benchmarks use.
pub fn profile() -> Profile {
    Profile {
        id: 1_234_567,
        name: "Anne Example".to_owned(),
        email: "anne.example@example.com".to_owned(),
        bio: "Writes about caches, queues and the databases behind them; has opinions on \
              eviction policies and prefers measuring to guessing, usually on two cores."
            .to_owned(),
        active: true,
        score: 87.25,
        roles: vec![
            "admin".to_owned(),
            "editor".to_owned(),
            "reviewer".to_owned(),
        ],
        created_at: "2026-12-06T13:00:00Z".to_owned(),
    }
}

/// Operations per second of `tasks` tokio tasks looping over `op` for `duration`.
pub fn throughput<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    tasks: usize,
    duration: Duration,
    op: F,
) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
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
            total += handle.await.expect("a benchmark task");
        }
        total as f64 / start.elapsed().as_secs_f64()
    })
}

/// Operations per second of `threads` OS threads looping over `op` for `duration`; each
/// thread builds its own state with `setup` (a connection, a handle).
pub fn thread_throughput<S, Setup, Op>(
    threads: usize,
    duration: Duration,
    setup: Setup,
    op: Op,
) -> f64
where
    Setup: Fn() -> S + Clone + Send + 'static,
    Op: Fn(&mut S) + Clone + Send + 'static,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (setup, op) = (setup.clone(), op.clone());
            std::thread::spawn(move || {
                let mut state = setup();
                let mut done = 0u64;
                while start.elapsed() < duration {
                    op(&mut state);
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("a benchmark thread"))
        .sum();
    total as f64 / start.elapsed().as_secs_f64()
}

/// A blocking memcached connection speaking the meta protocol by hand: the raw baseline.
pub struct RawMemcached {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
}

impl RawMemcached {
    /// Connect to `address` (`host:port`).
    pub fn connect(address: &str) -> Self {
        let stream = TcpStream::connect(address).expect("memcached accepts connections");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        RawMemcached {
            reader: BufReader::new(stream.try_clone().expect("a second handle")),
            writer: stream,
            line: String::new(),
        }
    }

    /// `ms key <len> T<ttl> F<flags>` with `value`.
    pub fn set(&mut self, key: &str, value: &[u8], flags: u32, ttl: u64) {
        let mut request = format!("ms {key} {} T{ttl} F{flags}\r\n", value.len()).into_bytes();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        self.writer.write_all(&request).expect("memcached write");
        self.line.clear();
        self.reader
            .read_line(&mut self.line)
            .expect("memcached reply");
    }

    /// `mg key v f`: the value, if any.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.writer
            .write_all(format!("mg {key} v f\r\n").as_bytes())
            .expect("memcached write");
        self.line.clear();
        self.reader
            .read_line(&mut self.line)
            .expect("memcached reply");
        let size: usize = self.line.split(' ').nth(1)?.trim().parse().ok()?;
        let mut value = vec![0; size + 2];
        self.reader.read_exact(&mut value).expect("memcached value");
        value.truncate(size);
        Some(value)
    }
}

/// Operations per second of the raw protocol: `threads` blocking connections to `address`
/// getting `raw:hit` (`get`) or setting `raw:put` to `payload` for `duration`.
pub fn raw_memcached_throughput(
    address: &str,
    payload: &[u8],
    get: bool,
    threads: usize,
    duration: Duration,
) -> f64 {
    let (address, payload) = (address.to_owned(), payload.to_vec());
    thread_throughput(
        threads,
        duration,
        move || RawMemcached::connect(&address),
        move |raw| {
            if get {
                raw.get("raw:hit").expect("raw:hit is stored");
            } else {
                raw.set("raw:put", &payload, 1, 600);
            }
        },
    )
}

/// The python of the virtualenv with the real Python cachy 0.3.0 (`scripts/python-env`).
pub fn python_cachy() -> Option<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/python-env");
    let output = Command::new(script).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Operations per second of Python cachy 0.3.0 on `store` (a Python store config): `op` is
/// `get` (a hit) or `put`, by `threads` threads for `duration`.
pub fn python_throughput(
    python: &str,
    store: &serde_json::Value,
    op: &str,
    duration: Duration,
    threads: usize,
) -> Option<f64> {
    let output = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/python_cachy_bench.py"
        ))
        .arg(store.to_string())
        .args([
            op,
            &duration.as_secs_f64().to_string(),
            &threads.to_string(),
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Requests per second of `redis-benchmark -t <test> -c <clients>` (40-byte values).
pub fn redis_benchmark(port: u16, test: &str, clients: usize) -> Option<f64> {
    let requests = if clients == 1 { 20_000 } else { 200_000 };
    redis_benchmark_requests(port, test, clients, requests)
}

/// Requests per second of `redis-benchmark -t <test> -c <clients> -n <requests>` (40-byte
/// values): [`redis_benchmark`] with a chosen number of requests, for shorter windows.
pub fn redis_benchmark_requests(
    port: u16,
    test: &str,
    clients: usize,
    requests: usize,
) -> Option<f64> {
    let requests = requests.to_string();
    let output = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-c",
            &clients.to_string(),
        ])
        .args(["-n", &requests, "-d", "40", "-t", test, "--csv", "-q"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|line| {
            line.to_ascii_lowercase()
                .starts_with(&format!("\"{test}\""))
        })
        .and_then(|line| line.split(',').nth(1))
        .and_then(|rps| rps.trim_matches('"').parse().ok())
}

/// The median of `values` (the upper one of an even count); sorts them.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The lowest and highest of `values`.
pub fn range(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}
