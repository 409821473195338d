//! A service that keeps answering from its database while Redis is down.
//!
//! The service reads products through a hybrid store (an in-process L1 over Redis) with
//! `remember_with`. While Redis answers, values come from the cache. Once Redis is gone,
//! every request still gets its product: the ones this process already held come from its
//! L1, the others from the database, and those are kept in L1 (for at most `l1_ttl`) so the
//! database is asked once per product, not once per request. Each failure of Redis is
//! observed (counted in `stats().errors`, logged at `WARN` at most every ten seconds) and
//! never reaches the caller. The circuit breaker keeps requests from waiting on a dead
//! server: the latency while Redis is down is printed at the end.
//!
//! Needs a Redis server, at `REDIS_URL` (default `redis://127.0.0.1:6379`):
//!
//! ```sh
//! redis-server --port 6379 &
//! cargo run --example outage
//! # when it says so, stop Redis (kill %1), then press Enter
//! ```
//!
//! Its Redis keys all start with `cachy-example-outage:`. Without a reachable Redis it says
//! how to start one and exits with status 2; it exits with status 1 if any request failed.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cachy::{CacheManager, RememberOptions};
use serde::{Deserialize, Serialize};

/// Where the example looks for Redis when `REDIS_URL` is not set.
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// How long the example serves requests once Redis is down.
const OUTAGE: Duration = Duration::from_secs(2);

/// The service's database: it counts its queries, so the output shows what the cache saved.
#[derive(Default)]
struct Database {
    queries: AtomicUsize,
}

impl Database {
    async fn product(&self, id: u32) -> Result<Product, cachy::Error> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await; // a query
        Ok(Product {
            id,
            name: format!("product {id}"),
            price_cents: 100 * id,
        })
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Product {
    id: u32,
    name: String,
    price_cents: u32,
}

/// One request of the service: the product, through the cache.
async fn handle(
    cache: &CacheManager,
    database: &Arc<Database>,
    options: &RememberOptions,
    id: u32,
) -> Result<Product, cachy::Error> {
    let database = Arc::clone(database);
    cache
        .store("products")?
        .remember_with(&format!("product:{id}"), options, move || async move {
            database.product(id).await
        })
        .await
}

/// What a run of requests came to.
struct Served {
    requests: usize,
    failed: usize,
    queries: usize,
    latencies: Vec<Duration>,
}

impl Served {
    fn percentile(&self, share: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }
}

/// Serve requests for products `1..=products` in turn until `until` (at least one round).
async fn serve(
    cache: &CacheManager,
    database: &Arc<Database>,
    options: &RememberOptions,
    products: u32,
    until: Instant,
) -> Served {
    let queries_before = database.queries();
    let mut served = Served {
        requests: 0,
        failed: 0,
        queries: 0,
        latencies: Vec::new(),
    };
    loop {
        for id in 1..=products {
            let started = Instant::now();
            if let Err(e) = handle(cache, database, options, id).await {
                eprintln!("  request for product {id} failed: {e}");
                served.failed += 1;
            }
            served.latencies.push(started.elapsed());
            served.requests += 1;
        }
        if Instant::now() >= until {
            break;
        }
    }
    served.queries = database.queries() - queries_before;
    served
}

#[tokio::main]
async fn main() -> ExitCode {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
    let cache = match CacheManager::from_value(serde_json::json!({
        "default": "products",
        "stores": {
            "redis": {
                "driver": "redis",
                "url": url,
                "prefix": "cachy-example-outage:",
                "response_timeout": 1,
                "retry_after": 5,
            },
            "products": { "driver": "hybrid", "l2": "redis", "l1_ttl": 30 },
        }
    })) {
        Ok(cache) => cache,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let reachable = async {
        let redis = cache.store("redis")?;
        redis.flush().await?;
        cache.store("products").map(drop)
    };
    if let Err(e) = reachable.await {
        eprintln!(
            "error: Redis is not reachable at {url} ({e})\n\
             start one with `redis-server --port 6379`, or set REDIS_URL=redis://host:port"
        );
        return ExitCode::from(2);
    }
    let database = Arc::new(Database::default());
    let options =
        RememberOptions::new(Duration::from_secs(60)).fail_safe(Duration::from_secs(3600));

    // Each product twice: computed, then read back (and kept in this process's L1).
    let before = serve(&cache, &database, &options, 10, Instant::now()).await;
    let again = serve(&cache, &database, &options, 10, Instant::now()).await;
    println!(
        "before the outage: {} requests, {} failed, {} database queries",
        before.requests + again.requests,
        before.failed + again.failed,
        before.queries + again.queries
    );

    println!("stop Redis now, then press Enter");
    let mut line = String::new();
    // Without input (end of file at once) the example goes on with Redis still up.
    let _ = std::io::stdin().lock().read_line(&mut line);

    // Products 1 to 10 are in this process's L1; 11 to 20 were never cached.
    let during = serve(&cache, &database, &options, 20, Instant::now() + OUTAGE).await;
    println!(
        "during the outage: {} requests, {} failed, {} database queries",
        during.requests, during.failed, during.queries
    );
    println!(
        "latency during the outage: p50 {:?}, p99 {:?}, max {:?}",
        during.percentile(0.5),
        during.percentile(0.99),
        during.latencies.iter().max().copied().unwrap_or_default()
    );
    let stats = cache.store("products").map(|store| store.stats());
    if let Ok(stats) = stats {
        println!(
            "cache errors observed: {} (hits {}, misses {})",
            stats.errors, stats.hits, stats.misses
        );
    }
    if before.failed + again.failed + during.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
