//! The `cachy` command on a file store, a SQLite database store, and (when their servers are
//! installed; under `CI=true` they must be) Redis and memcached: the commands and their
//! rough edges (`commands.rs`), `stats`, `keys`, `ttl` and `prune` per store (`stores.rs`),
//! and stores of 100,000 items (`large.rs`). Helpers here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cachy::CacheManager;
use cachy::stores::{FileStore, HashType};
use cachy_testkit::servers::{
    MariaDbServer, MemcachedServer, PostgresServer, RedisServer, TestServer,
};
use serde_json::Value;

fn cachy(config: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cachy"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("the cachy binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

/// Run `cachy --json ARGS`: its exit code, stdout parsed as one JSON document, and stderr.
fn cachy_json(config: &Path, args: &[&str]) -> (i32, Value, String) {
    let (code, out, err) = cachy(config, &[&["--json"], args].concat());
    let document = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("stdout of {args:?} is not one JSON document ({e}): {out:?}"));
    (code, document, err)
}

/// A config with the file store `file` (the default), the SQLite store `sql`, and `extra`.
fn config_with(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("cache.toml");
    std::fs::write(
        &path,
        format!(
            "default = \"file\"\n[stores.file]\ndriver = \"file\"\npath = {:?}\n\
             [stores.sql]\ndriver = \"database\"\nurl = \"sqlite://{}\"\nprune_lottery = [0, 1]\n{extra}",
            dir.join("files"),
            dir.join("cache.db").display()
        ),
    )
    .unwrap();
    path
}

fn config(dir: &Path) -> PathBuf {
    config_with(dir, "")
}

/// Write `count` items (`k:0`, `k:1`, ...) to the store `store` through the library, in
/// batches of `batch` (each one `put_many`), to live an hour.
fn fill(config: &Path, store: &str, count: usize, batch: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let manager = CacheManager::from_file(config).unwrap();
        let repository = manager.store(store).unwrap();
        let items: Vec<(String, usize)> = (0..count).map(|n| (format!("k:{n}"), n)).collect();
        for chunk in items.chunks(batch) {
            repository
                .put_many(chunk, Duration::from_secs(3600))
                .await
                .unwrap();
        }
    });
}

/// The seconds `cachy --json ttl KEY` reports, checking the rest of its document.
fn ttl_seconds(config: &Path, args: &[&str]) -> f64 {
    let (code, ttl, _) = cachy_json(config, args);
    assert_eq!(
        (code, &ttl["found"], &ttl["lifetime"]),
        (0, &Value::Bool(true), &"remaining".into()),
        "{ttl}"
    );
    ttl["seconds"].as_f64().unwrap()
}

mod commands;
mod large;
mod stores;
