//! What compression and encryption cost and save, in one run on a Redis server started here:
//! a 100 KB JSON document (an API response: 400 records of varied words and numbers) stored
//! as it is, with zstd, lz4 and gzip (bytes stored, put and get time); and a 1 KB value with
//! and without encryption, on Redis and on the memory store (where the cipher's own cost
//! shows). Subjects take turns within each round, the order turning each round; each prints
//! its median over the rounds with the min–max, and its ratio to the plain subject of its
//! group in the same round.
//!
//! `cargo bench -p cachy-rs --bench payloads --all-features` (`PAYLOADS_ROUNDS`, default 7).
//! Run by `cargo test` (without `--bench`), it only checks that it works: one short round.

use cachy_testkit::bench::{median, range};
use std::time::Instant;

use cachy::{CacheManager, Repository};
use cachy_testkit::servers::{RedisServer, TestServer};
use serde::{Deserialize, Serialize};
use serde_json::json;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    city: String,
    score: f64,
    active: bool,
    tags: Vec<String>,
    bio: String,
}

/// Records of pseudo-random words from a small vocabulary, as real documents repeat field
/// names and values without repeating whole records.
fn document(records: usize) -> Vec<Record> {
    const WORDS: &[&str] = &[
        "alpha", "river", "stone", "cloud", "north", "maple", "quartz", "ember", "delta", "harbor",
        "lumen", "cedar", "orbit", "prairie", "summit", "violet", "willow", "zephyr", "canyon",
        "meadow", "falcon", "glacier", "island", "jasper", "kettle", "lagoon", "mosaic", "nectar",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut word = || WORDS[(next() % WORDS.len() as u64) as usize];
    (0..records as u64)
        .map(|id| {
            let (first, last, city) = (word(), word(), word());
            Record {
                id,
                name: format!("{first} {last}"),
                email: format!("{first}.{last}{id}@example.com"),
                city: city.to_owned(),
                score: (id * 7919 % 1000) as f64 / 10.0,
                active: id % 3 != 0,
                tags: (0..3).map(|_| word().to_owned()).collect(),
                bio: (0..12).map(|_| word()).collect::<Vec<_>>().join(" "),
            }
        })
        .collect()
}

struct Subject {
    group: &'static str,
    name: String,
    repo: Repository,
    value: Vec<Record>,
}

/// Microseconds per put and per get of the subject's value, over `n` of each.
async fn per_op(subject: &Subject, n: u32) -> (f64, f64) {
    let start = Instant::now();
    for i in 0..n {
        let key = format!("k{}", i % 16);
        subject.repo.put(&key, &subject.value, 600).await.unwrap();
    }
    let put = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let start = Instant::now();
    for i in 0..n {
        let key = format!("k{}", i % 16);
        let found: Option<Vec<Record>> = subject.repo.get(&key).await.unwrap();
        std::hint::black_box(found.expect("a hit"));
    }
    let get = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    (put, get)
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rounds, ops) = if measuring {
        let rounds = std::env::var("PAYLOADS_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(7);
        (rounds, 300)
    } else {
        (1, 5)
    };
    let server = RedisServer::start().expect("redis-server is installed");
    let redis = |prefix: &str, extra: serde_json::Value| {
        let mut store = json!({ "driver": "redis", "url": server.url(), "prefix": prefix, "serializer": "json" });
        store
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        store
    };
    let encrypt = json!({ "encrypt": { "keys": [{ "id": "k", "key": KEY }] } });
    let manager = CacheManager::from_value(json!({ "stores": {
        "plain": redis("plain:", json!({})),
        "zstd": redis("zstd:", json!({ "compress": { "algorithm": "zstd" } })),
        "lz4": redis("lz4:", json!({ "compress": { "algorithm": "lz4" } })),
        "gzip": redis("gzip:", json!({ "compress": { "algorithm": "gzip" } })),
        "redis_1k": redis("r1k:", json!({})),
        "redis_1k_encrypted": redis("r1ke:", encrypt.clone()),
        "memory_1k": { "driver": "memory", "serializer": "json" },
        "memory_1k_encrypted": { "driver": "memory", "serializer": "json", "encrypt": encrypt["encrypt"] },
    } }))
    .unwrap();
    let big = document(400);
    let small = document(4);
    let serializer = cachy::serializer::Serializer::json();
    println!(
        "the document: {} bytes of JSON; the small value: {} bytes",
        serializer.serialize(&big).unwrap().len(),
        serializer.serialize(&small).unwrap().len()
    );
    let mut subjects: Vec<Subject> = Vec::new();
    for name in ["plain", "zstd", "lz4", "gzip"] {
        subjects.push(Subject {
            group: "100 KB document on Redis",
            name: name.to_owned(),
            repo: manager.store(name).unwrap(),
            value: big.clone(),
        });
    }
    for name in [
        "redis_1k",
        "redis_1k_encrypted",
        "memory_1k",
        "memory_1k_encrypted",
    ] {
        subjects.push(Subject {
            group: if name.starts_with("redis") {
                "1 KB on Redis"
            } else {
                "1 KB on the memory store"
            },
            name: name.to_owned(),
            repo: manager.store(name).unwrap(),
            value: small.clone(),
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for subject in &subjects {
            subject
                .repo
                .put("sized", &subject.value, 600)
                .await
                .unwrap();
            let stored = subject.repo.backend().get("sized").await.unwrap().unwrap();
            println!(
                "{} / {}: {} bytes stored",
                subject.group,
                subject.name,
                stored.len()
            );
        }
    });
    // The first subject of each group is its baseline.
    let baseline = |i: usize| {
        subjects
            .iter()
            .position(|s| s.group == subjects[i].group)
            .unwrap()
    };
    let mut puts: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut gets: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut put_ratios: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut get_ratios: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    for round in 0..rounds {
        let mut this_round = vec![(0.0, 0.0); subjects.len()];
        runtime.block_on(async {
            for turn in 0..subjects.len() {
                let i = (turn + round) % subjects.len();
                this_round[i] = per_op(&subjects[i], ops).await;
            }
        });
        for (i, (put, get)) in this_round.iter().enumerate() {
            let (base_put, base_get) = this_round[baseline(i)];
            puts[i].push(*put);
            gets[i].push(*get);
            put_ratios[i].push(put / base_put);
            get_ratios[i].push(get / base_get);
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    println!(
        "\n| group | subject | put µs, median (min–max) | / plain | get µs, median (min–max) | / plain |\n|---|---|---:|---:|---:|---:|"
    );
    for (i, subject) in subjects.iter().enumerate() {
        let (pmin, pmax) = range(&puts[i]);
        let (gmin, gmax) = range(&gets[i]);
        println!(
            "| {} | {} | {:.1} ({pmin:.1}–{pmax:.1}) | {:.2}x | {:.1} ({gmin:.1}–{gmax:.1}) | {:.2}x |",
            subject.group,
            subject.name,
            median(&mut puts[i]),
            median(&mut put_ratios[i]),
            median(&mut gets[i]),
            median(&mut get_ratios[i]),
        );
    }
}
