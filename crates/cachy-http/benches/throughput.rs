//! Requests per second of one route three ways, in one axum server on a loopback port: a
//! handler returning a constant (the limit: the server and the client alone), the real
//! handler uncached (it builds a 100-record JSON document, about 8 KB), and the same
//! handler behind `ResponseCache` on the memory store. A Rust load generator (hyper's
//! client, through reqwest) keeps 32 requests in flight. Subjects take turns within each
//! round, the order turning each round; each prints its median over the rounds with the
//! min–max, and its ratio to the constant handler in the same round.
//!
//! `cargo bench -p cachy-http --bench throughput` (`HTTP_BENCH_ROUNDS`, default 5). Run by
//! `cargo test` (without `--bench`), it only checks that it works: one short round.

use cachy_testkit::bench::{median, range};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use cachy_http::ResponseCache;

/// The real handler's work: a document of 100 records, as JSON.
fn document() -> String {
    let records: Vec<serde_json::Value> = (0..100)
        .map(|id| {
            serde_json::json!({
                "id": id, "name": format!("product {id}"), "price": id * 7 % 100,
                "tags": ["a", "b", "c"], "description": "a product like any other, in stock"
            })
        })
        .collect();
    serde_json::to_string(&records).unwrap()
}

/// Requests per second on `url` over `window`, with `in_flight` requests at a time.
async fn per_second(
    client: &reqwest::Client,
    url: &str,
    window: Duration,
    in_flight: usize,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (client, url, done, stop) =
                (client.clone(), url.to_owned(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let body = client
                        .get(&url)
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                    std::hint::black_box(body);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    let before = done.load(Ordering::Relaxed);
    tokio::time::sleep(window).await;
    let counted = done.load(Ordering::Relaxed) - before;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    counted as f64 / elapsed.as_secs_f64()
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rounds, window) = if measuring {
        let rounds = std::env::var("HTTP_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5);
        (rounds, Duration::from_millis(1000))
    } else {
        (1, Duration::from_millis(50))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache = cachy::CacheManager::from_value(serde_json::json!({
            "stores": { "dict": { "driver": "dict" } }
        }))
        .unwrap();
        let layer = ResponseCache::new(cache.store(None).unwrap()).ttl(Duration::from_secs(3600));
        let app = Router::new()
            .route("/constant", get(|| async { "constant" }))
            .route("/uncached", get(|| async { document() }))
            .route("/cached", get(|| async { document() }).layer(layer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = reqwest::Client::new();
        let subjects = ["constant", "uncached", "cached"];
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
        for round in 0..rounds {
            let mut this_round = [0.0; 3];
            for turn in 0..subjects.len() {
                let i = (turn + round) % subjects.len();
                let url = format!("{address}/{}", subjects[i]);
                per_second(&client, &url, window / 4, 32).await;
                this_round[i] = per_second(&client, &url, window, 32).await;
            }
            for (i, rate) in this_round.iter().enumerate() {
                rates[i].push(*rate);
                ratios[i].push(rate / this_round[0]);
            }
            eprintln!("round {} of {rounds} done", round + 1);
        }
        println!(
            "| route | requests/s, median | min–max | / constant handler |\n|---|---:|---:|---:|"
        );
        for (i, subject) in subjects.iter().enumerate() {
            let (min, max) = range(&rates[i]);
            println!(
                "| {subject} | {:.0} | {min:.0}–{max:.0} | {:.2}x |",
                median(&mut rates[i]),
                median(&mut ratios[i])
            );
        }
    });
}
