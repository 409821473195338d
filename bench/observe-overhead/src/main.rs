//! Nanoseconds per memory-store hit of a small struct, as the median of 15 batches of 200,000
//! hits: `observe-overhead` prints one number. Built with and without the `observed` feature
//! (tracing and metrics compiled in, no subscriber, no recorder) by
//! `scripts/bench-observability`, which runs the two builds in turns.

use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    active: bool,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let cache = cachy::CacheManager::from_value(serde_json::json!({
        "stores": { "memory": { "driver": "memory" } }
    }))
    .expect("a config");
    let repo = cache.store(None).expect("the store");
    let user = User {
        id: 7,
        name: "Ann".to_owned(),
        active: true,
    };
    let batches: Vec<f64> = runtime.block_on(async {
        repo.put("user", &user, 60).await.expect("a put");
        let mut batches = Vec::new();
        for _ in 0..15 {
            let start = Instant::now();
            for _ in 0..200_000 {
                let hit: Option<User> = repo.get("user").await.expect("a get");
                std::hint::black_box(hit.expect("a hit"));
            }
            batches.push(start.elapsed().as_nanos() as f64 / 200_000.0);
        }
        batches
    });
    let mut sorted = batches;
    sorted.sort_by(f64::total_cmp);
    println!("{:.1}", sorted[sorted.len() / 2]);
}
