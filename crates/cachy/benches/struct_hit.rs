//! A hit of a realistic struct (eight fields, strings and a vector, about 300 bytes) next to
//! moka's `get` of the same struct (and of an `Arc` of it), in one run: `get_shared` on the memory store and on a
//! hybrid store's first level (over Redis), with msgpack and with pickle, and `get` (which
//! decodes every time) for reference. Subjects take turns within each round, the order
//! turning each round; each prints its median over the rounds with the min–max, and its
//! ratio to moka in the same round (median, min–max).
//!
//! `cargo bench -p cachy-rs --bench struct_hit` (`STRUCT_HIT_ROUNDS`, default 9). Run by
//! `cargo test` (without `--bench`), it only checks that it works: one short round.

use cachy_testkit::bench::{median, range};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachy::stores::HybridStore;
use cachy::{CacheManager, Repository};
use cachy_testkit::bench::{Profile, profile};
use cachy_testkit::servers::{RedisServer, TestServer};
use serde_json::json;

/// How one subject reads the key `p`.
#[derive(Clone, Copy)]
enum Read {
    Moka,
    /// moka holding `Arc<Profile>`: its `get` clones an `Arc`, as `get_shared` returns one.
    MokaArc,
    Shared,
    Decoded,
}

struct Subject {
    name: String,
    repo: Option<Repository>,
    read: Read,
}

/// Nanoseconds per read of `p`, over `n` reads.
async fn per_read(subject: &Subject, mokas: &Mokas, n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        match (subject.read, &subject.repo) {
            (Read::Moka, _) => {
                std::hint::black_box(mokas.plain.get("p").expect("a hit"));
            }
            (Read::MokaArc, _) => {
                std::hint::black_box(mokas.shared.get("p").expect("a hit"));
            }
            (Read::Shared, Some(repo)) => {
                let found = repo.get_shared::<Profile>("p").await.unwrap();
                std::hint::black_box(found.expect("a hit"));
            }
            (Read::Decoded, Some(repo)) => {
                let found: Option<Profile> = repo.get("p").await.unwrap();
                std::hint::black_box(found.expect("a hit"));
            }
            _ => unreachable!("every cachy subject has a repository"),
        }
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

struct Mokas {
    plain: moka::sync::Cache<String, Profile>,
    shared: moka::sync::Cache<String, Arc<Profile>>,
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rounds, reads) = if measuring {
        let rounds = std::env::var("STRUCT_HIT_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(9);
        (rounds, 200_000)
    } else {
        (1, 1_000)
    };
    let server = RedisServer::start().expect("redis-server is installed");
    let manager = CacheManager::from_value(json!({
        "stores": {
            "memory_msgpack": { "driver": "memory" },
            "memory_pickle": { "driver": "memory", "serializer": "pickle" },
            "redis_msgpack": { "driver": "redis", "url": server.url(), "prefix": "m:", "serializer": "msgpack" },
            "redis_pickle": { "driver": "redis", "url": server.url(), "prefix": "p:", "serializer": "pickle" },
            "hybrid_msgpack": { "driver": "hybrid", "l2": "redis_msgpack", "l1_ttl": 600 },
            "hybrid_pickle": { "driver": "hybrid", "l2": "redis_pickle", "l1_ttl": 600 },
        }
    }))
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mokas = Mokas {
        plain: moka::sync::Cache::builder()
            .time_to_live(Duration::from_secs(3600))
            .build(),
        shared: moka::sync::Cache::builder()
            .time_to_live(Duration::from_secs(3600))
            .build(),
    };
    mokas.plain.insert("p".to_owned(), profile());
    mokas.shared.insert("p".to_owned(), Arc::new(profile()));

    let mut subjects = vec![
        Subject {
            name: "moka get".to_owned(),
            repo: None,
            read: Read::Moka,
        },
        Subject {
            name: "moka get (Arc values)".to_owned(),
            repo: None,
            read: Read::MokaArc,
        },
    ];
    for store in ["memory", "hybrid"] {
        for format in ["msgpack", "pickle"] {
            let repo = manager.store(format!("{store}_{format}").as_str()).unwrap();
            runtime.block_on(async {
                if let Some(hybrid) =
                    (&**repo.backend() as &dyn std::any::Any).downcast_ref::<HybridStore>()
                {
                    while !hybrid.is_subscribed() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                repo.put("p", &profile(), 600).await.unwrap();
                // The first reads fill the hybrid store's first level, then the decoded copy.
                for _ in 0..3 {
                    repo.get_shared::<Profile>("p")
                        .await
                        .unwrap()
                        .expect("a hit");
                }
            });
            for (read, verb) in [(Read::Shared, "get_shared"), (Read::Decoded, "get")] {
                subjects.push(Subject {
                    name: format!("{store} {format} {verb}"),
                    repo: Some(repo.clone()),
                    read,
                });
            }
        }
    }
    let encoded = |format: &str| match format {
        "pickle" => cachy::serializer::Serializer::pickle(),
        _ => cachy::serializer::Serializer::msgpack(),
    };
    for format in ["msgpack", "pickle"] {
        let bytes = encoded(format).serialize(&profile()).unwrap().len();
        println!("the struct encoded with {format}: {bytes} bytes");
    }

    let mut times: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    for round in 0..rounds {
        let mut this_round = vec![0.0; subjects.len()];
        runtime.block_on(async {
            for turn in 0..subjects.len() {
                let i = (turn + round) % subjects.len();
                this_round[i] = per_read(&subjects[i], &mokas, reads).await;
            }
        });
        for (i, ns) in this_round.iter().enumerate() {
            times[i].push(*ns);
            ratios[i].push(ns / this_round[0]);
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    println!(
        "\n| subject | ns per hit, median | min–max | / moka get, median | min–max |\n|---|---:|---:|---:|---:|"
    );
    for (i, subject) in subjects.iter().enumerate() {
        let (min, max) = range(&times[i]);
        let (rmin, rmax) = range(&ratios[i]);
        println!(
            "| {} | {:.0} | {min:.0}–{max:.0} | {:.2}x | {rmin:.2}–{rmax:.2}x |",
            subject.name,
            median(&mut times[i]),
            median(&mut ratios[i]),
        );
    }
}
