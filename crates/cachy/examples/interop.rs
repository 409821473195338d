//! Sharing a cache with Python cachy 0.3.0: this program and `examples/interop.py` use the
//! same file store folder (and, when `REDIS_URL` is set, the same Redis) through one config
//! file, `DIR/cache.toml`. Rust writes a string, an integer, a list, a tuple, an array, a
//! struct (a dict in Python) and counters; Python reads them, increments the counters and
//! writes its own values back; Rust reads those.
//!
//! Python cachy comes from the virtualenv `./scripts/python-env` makes (it prints its
//! python). From the repository root:
//!
//! ```sh
//! PYTHON=$(./scripts/python-env)
//! DIR=$(mktemp -d)
//! cargo run --example interop -- write "$DIR"           # Rust writes, and writes DIR/cache.toml
//! $PYTHON crates/cachy/examples/interop.py "$DIR"     # Python reads and writes back
//! cargo run --example interop -- read "$DIR"            # Rust reads what Python wrote
//! ```
//!
//! Add `REDIS_URL=redis://127.0.0.1:6379` in front of the `write` command to share a Redis
//! too (keys under `cachy-interop-example:`).
//!
//! The config is one file for both sides: Python cachy passes a Redis or memcached store's
//! fields to its client's constructor, which fails on fields it does not know (`integers`,
//! `connect_timeout`, ...), so `interop.py` drops the Rust-only fields before giving the
//! config to Python cachy. Python ignores unknown fields of a file store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cachy::CacheManager;
use serde::{Deserialize, Serialize};

/// A Rust struct: pickled as a dict, so Python reads `{'name': ..., 'roles': [...], ...}`.
#[derive(Debug, Serialize, Deserialize)]
struct User {
    name: String,
    roles: Vec<String>,
    active: bool,
}

/// What Python writes under `py:dict`.
#[derive(Debug, Serialize, Deserialize)]
struct PythonInfo {
    language: String,
    version: (u32, u32),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (step, dir) = match args.as_slice() {
        [step, dir] if step == "write" || step == "read" => (step.as_str(), PathBuf::from(dir)),
        _ => {
            eprintln!(
                "usage: interop write DIR   (then: python examples/interop.py DIR)\n       \
                 interop read DIR"
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start tokio: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        if step == "write" {
            write(&dir).await
        } else {
            read(&dir).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The shared config: Python-compatible fields, plus a few Rust-only ones that `interop.py`
/// drops before handing the config to Python cachy.
fn config_text(dir: &Path, redis_url: Option<&str>) -> Result<String, String> {
    let store = dir.join("store");
    let mut text = format!(
        "# One config for Rust (CacheManager::from_file) and Python cachy (interop.py).\n\
         default = \"file\"\n\
         serializer = \"pickle\"\n\
         \n\
         [stores.file]\n\
         driver = \"file\"\n\
         path = {path}\n\
         integers = \"serializer\"  # Rust-only: integers and counters pickled, as Python writes them\n",
        path = toml_string(&store.display().to_string())
    );
    if let Some(url) = redis_url {
        let redis = RedisAddress::parse(url)?;
        text.push_str(&format!(
            "\n\
             [stores.redis]\n\
             driver = \"redis\"\n\
             host = {host}  # host, port and db: Python cachy has no `url`\n\
             port = {port}\n\
             db = {db}\n\
             prefix = \"cachy-interop-example:\"\n\
             connect_timeout = 2  # Rust-only\n",
            host = toml_string(&redis.host),
            port = redis.port,
            db = redis.db,
        ));
        if let Some(password) = redis.password {
            text.push_str(&format!("password = {}\n", toml_string(&password)));
        }
    }
    Ok(text)
}

/// A TOML string: JSON's escapes are TOML's too.
fn toml_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// `redis://[[user]:password@]host[:port][/db]`, split into the fields Python cachy takes.
struct RedisAddress {
    host: String,
    port: u16,
    db: u32,
    password: Option<String>,
}

impl RedisAddress {
    fn parse(url: &str) -> Result<Self, String> {
        let bad = || format!("REDIS_URL {url:?} is not redis://[:password@]host[:port][/db]");
        let rest = url.strip_prefix("redis://").ok_or_else(bad)?;
        let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
        let (password, address) = match authority.rsplit_once('@') {
            Some((user_info, address)) => {
                let password = user_info.split_once(':').map_or(user_info, |(_, p)| p);
                (Some(password.to_owned()), address)
            }
            None => (None, authority),
        };
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
            None => (address, 6379),
        };
        Ok(RedisAddress {
            host: if host.is_empty() { "127.0.0.1" } else { host }.to_owned(),
            port,
            db: if db.is_empty() {
                0
            } else {
                db.parse().map_err(|_| bad())?
            },
            password,
        })
    }
}

async fn write(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty());
    std::fs::create_dir_all(dir)?;
    let config_file = dir.join("cache.toml");
    std::fs::write(&config_file, config_text(dir, redis_url.as_deref())?)?;
    println!("wrote {}", config_file.display());
    let cache = CacheManager::from_file(&config_file)?;

    let file = cache.store("file")?;
    file.put("greeting", "hello from Rust", 10).await?;
    file.put("answer", &42, 10).await?;
    file.put("primes", &vec![2, 3, 5, 7], 10).await?; // a Vec: a list
    file.put("point", &[1.5, -2.0], 10).await?; // an array: a tuple
    file.put("pair", &("a", 1), 10).await?; // a tuple: a tuple
    let ann = User {
        name: "Ann".into(),
        roles: vec!["admin".into()],
        active: true,
    };
    file.put("user", &ann, 10).await?;
    // Python cachy's file `increment` keeps an item's lifetime in whole minutes and loses an
    // item stored forever, so a counter shared with it on the file store needs a lifetime.
    let visits = file
        .increment_expiring("visits", 5, Duration::from_secs(600))
        .await?;
    println!("rust wrote greeting, answer, primes, point, pair, user; visits = {visits} (file)");

    if redis_url.is_some() {
        let redis = cache.store("redis")?;
        redis.flush().await?; // only keys under the example's prefix
        redis.put("greeting", "hello from Rust", 10).await?;
        redis.put("user", &ann, 10).await?;
        // A counter is decimal text (the store's default `integers`), so both sides
        // increment it with Redis's own INCRBY; Python's pickle `get` cannot read it.
        let hits = redis.increment_by("hits", 5).await?;
        println!("rust wrote greeting, user; hits = {hits} (redis)");
    }
    Ok(())
}

async fn read(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let cache = CacheManager::from_file(dir.join("cache.toml"))?;
    let file = cache.store("file")?;
    println!(
        "rust read py:greeting = {:?}",
        file.get::<String>("py:greeting").await?
    );
    println!(
        "rust read py:answer = {:?}",
        file.get::<i64>("py:answer").await?
    );
    println!(
        "rust read py:list = {:?}",
        file.get::<Vec<i64>>("py:list").await?
    );
    println!(
        "rust read py:tuple = {:?}",
        file.get::<(String, i64)>("py:tuple").await?
    );
    println!(
        "rust read py:dict = {:?}",
        file.get::<PythonInfo>("py:dict").await?
    );
    println!(
        "rust read visits = {:?}, incremented to {}",
        file.get::<i64>("visits").await?,
        file.increment("visits").await?
    );
    println!(
        "rust read py:counter = {:?}, incremented to {}",
        file.get::<i64>("py:counter").await?,
        file.increment("py:counter").await?
    );

    if cache.config().stores().contains_key("redis") {
        let redis = cache.store("redis")?;
        println!(
            "rust read redis py:greeting = {:?}",
            redis.get::<String>("py:greeting").await?
        );
        println!(
            "rust read redis hits = {:?}, incremented to {}",
            redis.get::<i64>("hits").await?,
            redis.increment("hits").await?
        );
    }
    Ok(())
}
