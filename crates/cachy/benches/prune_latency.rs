//! What the database store's prune lottery costs the writes that win it, as the backlog of
//! expired rows grows: SQLite files of `PRUNE_ROWS` rows each (default 1,000,000), none, a
//! tenth and half of them expired, written by stores whose every write wins the lottery
//! (`prune_lottery = [1, 1]`), one put on each in turn. Each put is timed; next to them, the
//! same put followed by a full `prune()` on the caller (a tenth expired), which is what the
//! lottery's winner used to wait for. Prints the median and the slowest of each.
//!
//! `cargo bench -p cachy-rs --bench prune_latency` (`PRUNE_ROWS`, `PRUNE_PUTS`, default 200).
//! Run by `cargo test` (without `--bench`), it only checks that it works: 20,000 rows, 20
//! puts.

use std::time::{Duration, Instant};

use cachy::Store;
use cachy::stores::DatabaseStore;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn store(file: &std::path::Path) -> DatabaseStore {
    let config = cachy::StoreConfig::new("database")
        .with("url", format!("sqlite://{}", file.display()))
        .with("create_table", true)
        .with("prune_lottery", serde_json::json!([1, 1]));
    DatabaseStore::from_config(&config).unwrap()
}

/// The median and the slowest of `times`.
fn summary(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rows, puts) = if measuring {
        (
            env_number("PRUNE_ROWS", 1_000_000),
            env_number("PRUNE_PUTS", 200),
        )
    } else {
        (20_000, 20)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    // `expired_every`: one batch of 10,000 rows in this many expires in a second, the
    // others in an hour (0: none).
    let fill = |file: &std::path::Path, expired_every: usize| {
        let store = store(file);
        runtime.block_on(async {
            let value = vec![7u8; 100];
            for (batch, start) in (0..rows).step_by(10_000).enumerate() {
                let expires = expired_every > 0 && batch % expired_every == 0;
                let ttl = if expires { 1 } else { 3600 };
                let items: Vec<(String, Vec<u8>)> = (start..(start + 10_000).min(rows))
                    .map(|i| (format!("row{i}"), value.clone()))
                    .collect();
                let items: Vec<(&str, Vec<u8>)> =
                    items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                store.put_many(&items, Some(ttl)).await.unwrap();
            }
        });
    };
    let backlogs = [
        ("none expired", 0),
        ("a tenth expired", 10),
        ("half expired", 2),
    ];
    let files: Vec<_> = backlogs
        .iter()
        .map(|&(_, every)| {
            let file = folder.path().join(format!("lottery-{every}.db"));
            fill(&file, every);
            file
        })
        .collect();
    let inline_file = folder.path().join("inline.db");
    fill(&inline_file, 10);
    std::thread::sleep(Duration::from_millis(2100));

    let lotteries: Vec<_> = files.iter().map(|file| store(file)).collect();
    let inline = store(&inline_file);
    let mut with_lottery = vec![Vec::new(); lotteries.len()];
    let mut with_inline_prune = Vec::new();
    runtime.block_on(async {
        for i in 0..puts {
            let key = format!("new{i}");
            for (store, times) in lotteries.iter().zip(&mut with_lottery) {
                let started = Instant::now();
                store.put(&key, b"v", Some(3600)).await.unwrap();
                times.push(started.elapsed());
            }
            let started = Instant::now();
            inline.put(&key, b"v", Some(3600)).await.unwrap();
            inline.prune().await.unwrap();
            with_inline_prune.push(started.elapsed());
        }
    });
    println!("{rows} rows, {puts} puts on each store, every put winning the lottery:");
    for ((backlog, _), times) in backlogs.iter().zip(&mut with_lottery) {
        let (median, slowest) = summary(times);
        println!(
            "put, {backlog} (the prune in the background): median {median:?}, slowest {slowest:?}"
        );
    }
    let (inline_median, inline_slowest) = summary(&mut with_inline_prune);
    println!(
        "put then a full prune on the caller, a tenth expired (the lottery before): median {inline_median:?}, slowest {inline_slowest:?}"
    );
}
