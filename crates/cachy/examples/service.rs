//! A small async "service" on one config with two stores: Redis for shared, short-lived data
//! (user profiles, a team roster under tags, rate windows) and SQLite for memoized reports
//! that survive a restart. It shows `remember`, tags and a tag flush, `#[cached]` with
//! `skip(db)` for an argument that is not `Serialize`, a rate window with
//! `increment_expiring`, and error handling by `ErrorKind` and `Error::is_temporary()`
//! (what the service does while Redis is down: compute without the cache).
//!
//! Needs a Redis server, at `REDIS_URL` (default `redis://127.0.0.1:6379`). Run it with:
//!
//! ```sh
//! redis-server --port 6379 &        # or: docker run --rm -p 6379:6379 redis:7
//! cargo run --example service
//! REDIS_URL=redis://127.0.0.1:6380/1 cargo run --example service   # another server
//! ```
//!
//! The SQLite file is `$TMPDIR/cachy-example-service/cache.db`: run the example twice within
//! a minute and the second run gets the report from it without touching the "database". Its
//! Redis keys all start with `cachy-example-service:`; it deletes only those (at start).
//! Without a reachable Redis it says how to start one and exits with status 2.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cachy::{CacheManager, ErrorKind, cached};
use serde::{Deserialize, Serialize};

/// Where the example looks for Redis when `REDIS_URL` is not set.
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Requests a client may make per rate window.
const RATE_LIMIT: i64 = 3;

/// The service's "database": a handle that is not `Serialize` (like a connection pool), so
/// `#[cached]` must leave it out of the key with `skip(db)`. It counts its queries, so the
/// output shows what the cache saved.
struct Database {
    queries: AtomicUsize,
}

impl Database {
    async fn load_user(&self, id: u64) -> Result<Profile, AppError> {
        self.query().await;
        match id {
            1 => Ok(Profile::new(id, "Ann", "admin")),
            2 => Ok(Profile::new(id, "Bob", "developer")),
            _ => Err(AppError::NotFound(format!("user {id}"))),
        }
    }

    async fn team_members(&self, team: u32) -> Result<Vec<String>, AppError> {
        self.query().await;
        Ok(vec![
            format!("ann (team {team})"),
            format!("bob (team {team})"),
        ])
    }

    async fn query(&self) {
        self.queries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await; // a slow query
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    role: String,
}

impl Profile {
    fn new(id: u64, name: &str, role: &str) -> Self {
        Profile {
            id,
            name: name.into(),
            role: role.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Report {
    month: u32,
    signups: u64,
}

/// The service's error: `remember` and `#[cached]` functions may return your own error type,
/// as long as a `cachy::Error` converts into it.
#[derive(Debug)]
enum AppError {
    Cache(cachy::Error),
    NotFound(String),
}

impl From<cachy::Error> for AppError {
    fn from(error: cachy::Error) -> Self {
        AppError::Cache(error)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Cache(error) => write!(f, "cache: {error}"),
            AppError::NotFound(what) => write!(f, "{what} not found"),
        }
    }
}

/// A monthly report, memoized in the `sqlite` store for a minute. `db` is not part of the key
/// (and is not `Serialize`): `skip(db)`. Only `Ok` values are cached, and if the cache fails
/// the function simply runs: memoization never breaks it.
#[cached(store = "sqlite", skip(db), ttl = Duration::from_secs(60))]
async fn monthly_report(db: &Database, month: u32) -> Result<Report, AppError> {
    db.query().await;
    Ok(Report {
        month,
        signups: 40 + u64::from(month),
    })
}

/// A profile through the cache; while the cache is down (a temporary error), computed
/// directly, so the service keeps answering, only slower.
async fn profile(cache: &CacheManager, db: &Database, id: u64) -> Result<Profile, AppError> {
    let key = format!("user:{id}");
    match cache
        .remember(&key, Duration::from_secs(60), || db.load_user(id))
        .await
    {
        Err(AppError::Cache(error)) if error.is_temporary() => {
            println!(
                "  cache unavailable ({}): computing {key} without it",
                error.kind()
            );
            db.load_user(id).await
        }
        other => other,
    }
}

fn config(redis_url: &str, sqlite_file: &std::path::Path) -> serde_json::Value {
    serde_json::json!({
        "default": "redis",
        "stores": {
            "redis": {
                "driver": "redis",
                "url": redis_url,
                // Every key of this example starts with it, and `flush` deletes only those.
                "prefix": "cachy-example-service:",
                "connect_timeout": 1,
                "response_timeout": 1
            },
            "sqlite": {
                "driver": "database",
                "url": format!("sqlite://{}", sqlite_file.display()),
                "create_table": true
            }
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
    let sqlite_file = std::env::temp_dir()
        .join("cachy-example-service")
        .join("cache.db");
    let cache = match CacheManager::from_value(config(&redis_url, &sqlite_file)) {
        Ok(cache) => cache,
        Err(error) => {
            eprintln!("error: the cache config is invalid: {error}");
            return ExitCode::FAILURE;
        }
    };

    // Fail early, and helpfully, when Redis is not there.
    if let Err(error) = cache.has("health-check").await {
        if error.is_temporary() {
            eprintln!(
                "error: Redis is not reachable at {redis_url} ({error}).\n\
                 This example needs a Redis server. Start one with\n\
                 \n    redis-server --port 6379\n\
                 \nor with Docker:\n\
                 \n    docker run --rm -p 6379:6379 redis:7\n\
                 \nor point REDIS_URL at yours: REDIS_URL=redis://host:port/db cargo run --example service"
            );
            return ExitCode::from(2);
        }
        eprintln!("error: Redis at {redis_url} refused the health check: {error}");
        return ExitCode::FAILURE;
    }

    match run(cache, &redis_url, &sqlite_file).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    cache: CacheManager,
    redis_url: &str,
    sqlite_file: &std::path::Path,
) -> Result<(), AppError> {
    println!("redis: {redis_url}; sqlite: {}", sqlite_file.display());
    cache.flush().await?; // only keys under this example's prefix
    cachy::set_global(cache.clone())?; // for #[cached]
    let db = Database {
        queries: AtomicUsize::new(0),
    };

    println!("\n== remember: compute on a miss, then serve from Redis");
    for _ in 0..2 {
        let before = db.queries();
        let ann = profile(&cache, &db, 1).await?;
        let source = if db.queries() > before {
            "database"
        } else {
            "cache"
        };
        println!("  user:1 -> {} ({source})", ann.name);
    }
    match profile(&cache, &db, 99).await {
        Err(AppError::NotFound(what)) => {
            println!("  user:99 -> not found ({what}); errors are not cached");
        }
        other => println!("  user:99 -> unexpected {other:?}"),
    }

    println!(
        "\n== tags: a team roster under [\"teams\", \"team:7\"], flushed when the team changes"
    );
    let roster = cache.tags(["teams", "team:7"])?;
    let members: Vec<String> = roster.remember("roster", 10, || db.team_members(7)).await?;
    println!("  roster of team 7 -> {members:?}");
    let cached: Option<Vec<String>> = roster.get("roster").await?;
    println!("  cached under its tags -> {}", cached.is_some());
    cache.tags("team:7")?.flush().await?;
    let cached: Option<Vec<String>> = roster.get("roster").await?;
    println!(
        "  after flushing tag team:7 -> {}",
        if cached.is_none() {
            "gone"
        } else {
            "still there"
        }
    );

    println!("\n== #[cached(store = \"sqlite\", skip(db), ttl = 60 s)]: a report kept in SQLite");
    for _ in 0..2 {
        let before = db.queries();
        let report = monthly_report(&db, 11).await?;
        let source = if db.queries() > before {
            "computed"
        } else {
            "from SQLite"
        };
        println!(
            "  report for month {} -> {} signups ({source})",
            report.month, report.signups
        );
    }

    println!("\n== increment_expiring: at most {RATE_LIMIT} requests per client per minute");
    for request in 1..=5 {
        let count = cache
            .increment_expiring("rate:client-42", 1, Duration::from_secs(60))
            .await?;
        let verdict = if count <= RATE_LIMIT {
            "allowed"
        } else {
            "rejected (429)"
        };
        println!("  request {request}: count {count} in this window -> {verdict}");
    }

    println!("\n== errors by kind");
    cache.put("rate:client-7", "not a number", 1).await?;
    match cache
        .increment_expiring("rate:client-7", 1, Duration::from_secs(60))
        .await
    {
        Err(error) if error.kind() == ErrorKind::NotAnInteger => {
            println!("  rate:client-7 held a string ({}): reset it", error.kind());
            cache.forget("rate:client-7").await?;
            let count = cache
                .increment_expiring("rate:client-7", 1, Duration::from_secs(60))
                .await?;
            println!("  rate:client-7 -> {count}");
        }
        other => println!("  rate:client-7 -> unexpected {other:?}"),
    }

    // An outage, on purpose: the same service against a Redis nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_or(1, |address| address.port());
    let down = CacheManager::from_value(config(&format!("redis://127.0.0.1:{port}"), sqlite_file))?;
    println!("  Redis down (redis://127.0.0.1:{port}):");
    for _ in 0..2 {
        let started = Instant::now();
        let ann = profile(&down, &db, 1).await?;
        println!(
            "  user:1 -> {} in {:.1} ms, from the database",
            ann.name,
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    println!("  (after a failure the store's circuit breaker fails calls at once for a while)");

    println!("\ndone: {} database queries in all", db.queries());
    Ok(())
}
