//! SQLite puts and gets through the database store with `synchronous = "full"` (sqlx's
//! default, and this store's before it chose `normal`) and with the default `normal`, in
//! interleaved rounds, one caller: medians with their min–max.
//!
//! `cargo bench -p cachy-rs --bench sqlite_sync` (`SQLITE_ROUNDS`, default 7). Run by
//! `cargo test` (without `--bench`), it only checks that it works: one short round.

use cachy_testkit::bench::median;
use std::time::{Duration, Instant};

use cachy::{CacheManager, Repository};
use cachy_testkit::bench::{User, user};

fn repository(folder: &std::path::Path, synchronous: &str) -> Repository {
    CacheManager::from_value(serde_json::json!({
        "stores": { "sqlite": {
            "driver": "database",
            "url": format!("sqlite://{}", folder.join(format!("{synchronous}.db")).display()),
            "create_table": true,
            "synchronous": synchronous,
        } }
    }))
    .unwrap()
    .store(None)
    .unwrap()
}

/// Operations per second of `op` on `repo` over `window`.
async fn rate(repo: &Repository, op: &str, window: Duration) -> f64 {
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < window {
        if op == "put" {
            repo.put(&format!("k{}", done % 1000), &user(), 60)
                .await
                .unwrap();
        } else {
            let found: Option<User> = repo.get(&format!("k{}", done % 1000)).await.unwrap();
            std::hint::black_box(found);
        }
        done += 1;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let rounds: usize = match std::env::var("SQLITE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(rounds) if measuring => rounds,
        _ if measuring => 7,
        _ => 1,
    };
    let window = Duration::from_millis(if measuring { 700 } else { 20 });
    let folder = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let full = repository(folder.path(), "full");
    let normal = repository(folder.path(), "normal");
    let items: Vec<(String, User)> = (0..1000).map(|i| (format!("k{i}"), user())).collect();
    runtime.block_on(async {
        full.put_many(&items, 60).await.unwrap();
        normal.put_many(&items, 60).await.unwrap();
    });
    println!(
        "| operation | synchronous = full (ops/s) | normal, the default (ops/s) | normal / full |"
    );
    println!("|---|---|---|---|");
    for op in ["put", "get"] {
        let (mut f, mut n, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (a, b) = runtime.block_on(async {
                // The order turns each round.
                if round % 2 == 0 {
                    let a = rate(&full, op, window).await;
                    (a, rate(&normal, op, window).await)
                } else {
                    let b = rate(&normal, op, window).await;
                    (rate(&full, op, window).await, b)
                }
            });
            f.push(a);
            n.push(b);
            ratios.push(b / a);
        }
        let spread = |v: &[f64]| {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(0.0, f64::max);
            format!("{min:.0}–{max:.0}")
        };
        let ratio_spread = {
            let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ratios.iter().copied().fold(0.0, f64::max);
            format!("{min:.2}x–{max:.2}x")
        };
        let (sf, sn) = (spread(&f), spread(&n));
        println!(
            "| {op} | {:.0} ({sf}) | {:.0} ({sn}) | {:.2}x ({ratio_spread}) |",
            median(&mut f),
            median(&mut n),
            median(&mut ratios)
        );
    }
}
