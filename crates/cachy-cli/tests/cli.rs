//! The `cachy` command on a file store, a SQLite database store, and (when their servers are
//! installed; under `CI=true` they must be) Redis and memcached.

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

#[test]
fn put_get_has_increment_forget_and_flush() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert_eq!(
        cachy(
            &config,
            &["put", "user", r#"{"name":"Anne"}"#, "--minutes", "5"]
        )
        .0,
        0
    );
    assert_eq!(
        cachy(&config, &["get", "user"]),
        (0, r#"{"name":"Anne"}"#.to_owned(), String::new())
    );
    assert_eq!(
        cachy(&config, &["put", "plain", "not json", "--forever"]).0,
        0
    );
    assert_eq!(cachy(&config, &["get", "plain"]).1, r#""not json""#);
    assert_eq!(cachy(&config, &["has", "user"]).0, 0);
    assert_eq!(cachy(&config, &["increment", "hits", "3"]).1, "3");
    assert_eq!(cachy(&config, &["increment", "hits", "-5"]).1, "-2");
    assert_eq!(cachy(&config, &["forget", "user"]).1, "true");
    assert_eq!(cachy(&config, &["get", "user"]).0, 1, "a miss");
    assert_eq!(cachy(&config, &["flush"]).0, 0);
    assert_eq!(cachy(&config, &["has", "plain"]).0, 1);
}

#[test]
fn create_table_then_use_a_database_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (code, _, err) = cachy(&config, &["--store", "sql", "get", "k"]);
    assert_eq!(code, 2);
    assert!(err.contains("create_table"), "{err}");
    assert_eq!(cachy(&config, &["--store", "sql", "create-table"]).0, 0);
    assert_eq!(
        cachy(
            &config,
            &["--store", "sql", "put", "k", "1", "--seconds", "60"]
        )
        .0,
        0
    );
    assert_eq!(cachy(&config, &["--store", "sql", "get", "k"]).1, "1");
    assert_eq!(cachy(&config, &["--store", "sql", "prune"]).1, "0");
}

#[test]
fn errors_name_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (code, _, err) = cachy(&dir.path().join("missing.toml"), &["get", "k"]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml"), "{err}");
    let (code, _, err) = cachy(&config, &["--store", "nope", "get", "k"]);
    assert_eq!(code, 2);
    assert!(err.contains("nope"), "{err}");
    let (code, _, err) = cachy(&config, &["create-table"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("store `file`") && err.contains("cannot create a schema"),
        "{err}"
    );
}

#[test]
fn every_command_prints_one_json_document_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (code, put, _) = cachy_json(&config, &["put", "user", r#"{"name":"Anne"}"#]);
    assert_eq!(
        (code, &put["stored"], &put["store"]),
        (0, &Value::Bool(true), &"file".into())
    );
    let (code, get, _) = cachy_json(&config, &["get", "user"]);
    assert_eq!((code, &get["found"]), (0, &Value::Bool(true)));
    assert_eq!(get["value"]["name"], "Anne");
    let (code, has, _) = cachy_json(&config, &["has", "user"]);
    assert_eq!((code, &has["found"]), (0, &Value::Bool(true)));
    let (code, increment, _) = cachy_json(&config, &["increment", "hits", "3"]);
    assert_eq!((code, &increment["value"]), (0, &3.into()));
    let (code, forget, _) = cachy_json(&config, &["forget", "user"]);
    assert_eq!((code, &forget["removed"]), (0, &Value::Bool(true)));
    let (code, miss, _) = cachy_json(&config, &["get", "user"]);
    assert_eq!(
        (code, &miss["found"], &miss["key"]),
        (1, &Value::Bool(false), &"user".into())
    );
    let (code, has, _) = cachy_json(&config, &["has", "user"]);
    assert_eq!((code, &has["found"]), (1, &Value::Bool(false)));
    // Global flags may come after the command; a put of no lifetime is an error.
    let (code, put, err) = cachy(&config, &["put", "gone", "1", "--seconds", "0", "--json"]);
    assert_eq!((code, put.as_str()), (2, ""));
    let error: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(error["error"]["kind"], "invalid_input", "{error}");
    let (code, flush, _) = cachy(&config, &["flush", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&flush).unwrap()["flushed"],
        true
    );

    // An error: nothing on stdout, one JSON document on stderr.
    let (code, out, err) = cachy(&config, &["--json", "--store", "nope", "get", "k"]);
    assert_eq!((code, out.as_str()), (2, ""));
    let error: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(error["error"]["kind"], "unknown_store", "{err}");
}

#[test]
fn file_store_stats_ttl_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert_eq!(cachy(&config, &["put", "a", "1", "--seconds", "60"]).0, 0);
    assert_eq!(
        cachy(&config, &["put", "b", r#""forever""#, "--forever"]).0,
        0
    );
    // An expired value and a file that is not a cache file, as other programs leave them.
    let store = FileStore::new(dir.path().join("files"), HashType::Sha256);
    for (key, content) in [("old", "0000000001gone"), ("junk", "not a header")] {
        let path = store.path_of(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    let (code, stats, err) = cachy_json(&config, &["stats"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (&stats["store"], &stats["driver"]),
        (&"file".into(), &"file".into())
    );
    assert_eq!(stats["live"]["files"], 2, "{stats}");
    // Headers (10 bytes each) and the values: `1` and the pickled string.
    assert!(stats["live"]["bytes"].as_u64().unwrap() > 21, "{stats}");
    assert_eq!(
        stats["expired"],
        serde_json::json!({ "files": 1, "bytes": 14 })
    );
    assert_eq!(
        stats["corrupt"],
        serde_json::json!({ "files": 1, "bytes": 12 })
    );
    let (_, text, _) = cachy(&config, &["stats"]);
    assert!(
        text.contains("live files: 2") && text.contains("expired files: 1"),
        "{text}"
    );

    let left = ttl_seconds(&config, &["ttl", "a"]);
    // The file store rounds expiries up to the next whole second.
    assert!(left > 55.0 && left <= 61.0, "{left}");
    assert_eq!(
        cachy(&config, &["ttl", "b"]),
        (0, "forever".to_owned(), String::new())
    );
    let (code, ttl, _) = cachy_json(&config, &["ttl", "b"]);
    assert_eq!(
        (code, &ttl["lifetime"], &ttl["seconds"]),
        (0, &"forever".into(), &Value::Null)
    );
    assert_eq!(cachy(&config, &["ttl", "old"]).0, 1, "expired");
    let (code, ttl, _) = cachy_json(&config, &["ttl", "nothing"]);
    assert_eq!((code, &ttl["found"]), (1, &Value::Bool(false)));

    let (code, out, err) = cachy(&config, &["keys", "*"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("cannot list keys") && err.contains("hash of its key"),
        "{err}"
    );
}

#[test]
fn sqlite_stats_ttl_keys_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let sql = |args: &[&str]| cachy(&config, &[&["--store", "sql"], args].concat());
    assert_eq!(sql(&["create-table"]).0, 0);
    assert_eq!(sql(&["put", "soon", "1", "--seconds", "1"]).0, 0);
    let long_key = "x".repeat(300);
    for key in [
        "user:1", "user:2", "User:3", "user_x", "100%", "a!b", &long_key,
    ] {
        assert_eq!(sql(&["put", key, "7", "--seconds", "600"]).0, 0, "{key}");
    }
    assert_eq!(sql(&["put", "f", "7", "--forever"]).0, 0);
    // `soon` expires: SQL expirations are whole seconds.
    std::thread::sleep(Duration::from_millis(2100));

    let (code, stats, err) = cachy_json(&config, &["--store", "sql", "stats"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stats["driver"], "database");
    assert_eq!(
        stats["live"],
        serde_json::json!({ "rows": 8, "bytes": 8 }),
        "{stats}"
    );
    assert_eq!(
        stats["expired"],
        serde_json::json!({ "rows": 1, "bytes": 1 }),
        "{stats}"
    );

    let keys = |pattern: &str| {
        let (code, listed, err) = cachy_json(&config, &["--store", "sql", "keys", pattern]);
        assert_eq!(code, 0, "{pattern}: {err}");
        listed["keys"].clone()
    };
    // Case sensitive, though SQLite's LIKE is not; `_`, `%` and `!` are themselves.
    assert_eq!(keys("user:*"), serde_json::json!(["user:1", "user:2"]));
    assert_eq!(keys("user_*"), serde_json::json!(["user_x"]));
    assert_eq!(
        keys("[uU]ser?[13]"),
        serde_json::json!(["User:3", "user:1"])
    );
    assert_eq!(keys("100%"), serde_json::json!(["100%"]));
    assert_eq!(keys("a!*"), serde_json::json!(["a!b"]));
    assert_eq!(
        keys("so*"),
        serde_json::json!([]),
        "expired rows are not listed"
    );
    let all = keys("*");
    assert_eq!(all.as_array().unwrap().len(), 8, "{all}");
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|key| key.as_str().unwrap().starts_with("cachy:sha1:")),
        "a long key shows as stored: {all}"
    );
    let (_, text, _) = sql(&["keys", "user:*"]);
    assert_eq!(text, "user:1\nuser:2");
    for bad in ["[abc", "abc\\"] {
        let (code, _, err) = sql(&["keys", bad]);
        assert_eq!(code, 2, "{bad}");
        assert!(err.contains("bad key pattern"), "{err}");
    }

    // A database keeps whole seconds, counted from the next one: up to a second more.
    let left = ttl_seconds(&config, &["--store", "sql", "ttl", "user:1"]);
    assert!(left > 590.0 && left <= 601.0, "{left}");
    assert_eq!(sql(&["ttl", "f"]).1, "forever");
    let left = ttl_seconds(&config, &["--store", "sql", "ttl", &long_key]);
    assert!(left > 590.0 && left <= 601.0, "a hashed key: {left}");
    assert_eq!(sql(&["ttl", "soon"]).0, 1, "expired");

    let (code, pruned, _) = cachy_json(&config, &["--store", "sql", "prune"]);
    assert_eq!((code, &pruned["pruned"]), (0, &1.into()));
    let (_, stats, _) = cachy_json(&config, &["--store", "sql", "stats"]);
    assert_eq!(stats["expired"]["rows"], 0);
}

#[test]
fn redis_stats_ttl_and_keys() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A prefix with glob characters, which `SCAN MATCH` must take as themselves, and a store
    // without prefix on the same server.
    let config = config_with(
        dir.path(),
        &format!(
            "[stores.redis]\ndriver = \"redis\"\nurl = \"{0}\"\nprefix = \"app*[1]:\"\n\
             [stores.raw]\ndriver = \"redis\"\nurl = \"{0}\"\n",
            server.url()
        ),
    );
    let redis = |args: &[&str]| cachy(&config, &[&["--store", "redis"], args].concat());
    assert_eq!(redis(&["put", "user:1", "1", "--seconds", "60"]).0, 0);
    assert_eq!(redis(&["put", "user:2", r#""two""#, "--forever"]).0, 0);
    assert_eq!(redis(&["put", "other", "3"]).0, 0);
    // Matched by the prefix read as a glob, not by the prefix itself.
    assert_eq!(
        cachy(&config, &["--store", "raw", "put", "appX1:user:9", "9"]).0,
        0
    );
    // Tags keep a list under the prefix: a key that is not a string.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let manager = CacheManager::from_file(&config).unwrap();
        let repository = manager.store("redis").unwrap();
        repository.tags("t").forever("tagged", &1).await.unwrap();
    });

    let (code, listed, err) = cachy_json(&config, &["--store", "redis", "keys", "*"]);
    assert_eq!(code, 0, "{err}");
    let all = listed["keys"].as_array().unwrap().clone();
    assert!(
        !all.iter()
            .any(|key| key.as_str().unwrap().contains("user:9")),
        "{listed}"
    );
    let (code, stats, err) = cachy_json(&config, &["--store", "redis", "stats"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (&stats["driver"], &stats["prefix"]),
        (&"redis".into(), &"app*[1]:".into())
    );
    assert_eq!(stats["keys"], all.len(), "{stats} {listed}");
    assert!(stats["bytes"].as_u64().unwrap() >= 3, "{stats}");

    let (code, listed, _) = cachy_json(&config, &["--store", "redis", "keys", "user:*"]);
    assert_eq!(
        (code, &listed["keys"]),
        (0, &serde_json::json!(["user:1", "user:2"]))
    );
    assert_eq!(redis(&["keys", "user:[2-9]"]).1, "user:2");
    let (code, _, err) = redis(&["keys", "user:["]);
    assert_eq!(code, 2);
    assert!(err.contains("bad key pattern"), "{err}");

    let left = ttl_seconds(&config, &["--store", "redis", "ttl", "user:1"]);
    assert!(left > 55.0 && left <= 60.0, "{left}");
    assert_eq!(redis(&["ttl", "user:2"]).1, "forever");
    assert_eq!(redis(&["ttl", "user:3"]).0, 1);
}

#[test]
fn memcached_stats_and_ttl() {
    let Some(server) = MemcachedServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        &format!(
            "[stores.mc]\ndriver = \"memcached\"\nservers = [\"{}\"]\n",
            server.address()
        ),
    );
    let mc = |args: &[&str]| cachy(&config, &[&["--store", "mc"], args].concat());
    assert_eq!(mc(&["put", "a", "1", "--seconds", "60"]).0, 0);
    assert_eq!(mc(&["put", "b", "2", "--forever"]).0, 0);
    assert_eq!(mc(&["get", "a"]).0, 0);
    let (code, stats, err) = cachy_json(&config, &["--store", "mc", "stats"]);
    assert_eq!(code, 0, "{err}");
    let servers = stats["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1, "{stats}");
    assert_eq!(servers[0]["address"], server.address());
    assert_eq!(servers[0]["curr_items"], 2, "{stats}");
    assert!(servers[0]["get_hits"].as_u64().unwrap() >= 1, "{stats}");
    assert!(servers[0]["bytes"].as_u64().unwrap() > 0, "{stats}");

    let left = ttl_seconds(&config, &["--store", "mc", "ttl", "a"]);
    assert!(left > 55.0 && left <= 60.0, "{left}");
    assert_eq!(mc(&["ttl", "b"]).1, "forever");
    assert_eq!(mc(&["ttl", "c"]).0, 1);
    let (code, _, err) = mc(&["keys"]);
    assert_eq!(code, 2);
    assert!(err.contains("memcached has no command"), "{err}");
}

#[test]
fn stores_of_other_processes_cannot_be_inspected_or_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "[stores.dict]\ndriver = \"dict\"\n");
    for command in [&["stats"][..], &["keys"], &["flush", "--yes"]] {
        let (code, out, err) = cachy(&config, &[&["--store", "dict"][..], command].concat());
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(
            err.contains("store `dict`") && err.contains("another process"),
            "{err}"
        );
    }
}

/// A temporary folder in memory where the system has one (`/dev/shm`): on a disk mounted
/// with `discard`, as this project's machines are, writing and removing 100,000 files takes
/// a minute rather than seconds.
fn memory_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    dir.unwrap()
}

/// `stats` of 100,000 items on `store`: exact on stdout as JSON, progress on stderr only
/// (drawn when asked to, hidden by default since stderr is not a terminal here).
fn check_stats_of_100000_items(config: &Path, store: &str, count: &[&str], progress: &str) {
    let (code, stats, err) =
        cachy_json(config, &["--store", store, "--progress", "always", "stats"]);
    assert_eq!(code, 0, "{err}");
    let mut counted = &stats;
    for field in count {
        counted = &counted[field];
    }
    assert_eq!(counted, 100_000, "{stats}");
    assert!(err.contains(progress), "progress on stderr: {err:?}");
    let (code, _, err) = cachy_json(config, &["--store", store, "stats"]);
    assert_eq!(
        (code, err.as_str()),
        (0, ""),
        "no progress when stderr is not a terminal"
    );
}

#[test]
fn file_store_stats_and_flush_of_100000_items() {
    let dir = memory_tempdir();
    // MD5 names: two folder levels rather than eight keep the test's folders few.
    let config = config_with(
        dir.path(),
        &format!(
            "[stores.big]\ndriver = \"file\"\nhash_type = \"md5\"\npath = {:?}\n",
            dir.path().join("big")
        ),
    );
    fill(&config, "big", 100_000, 100_000);
    check_stats_of_100000_items(&config, "big", &["live", "files"], " seen");
    let (code, out, err) = cachy(
        &config,
        &["--store", "big", "--progress", "always", "flush"],
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "flushed store `big`: every item removed")
    );
    assert!(err.contains("flushing store `big`"), "{err:?}");
    let (_, stats, _) = cachy_json(&config, &["--store", "big", "stats"]);
    assert_eq!(stats["live"]["files"], 0, "{stats}");
}

#[test]
fn sqlite_stats_and_keys_of_100000_items() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert_eq!(cachy(&config, &["--store", "sql", "create-table"]).0, 0);
    fill(&config, "sql", 100_000, 10_000);
    check_stats_of_100000_items(&config, "sql", &["live", "rows"], "counting");
    let (code, listed, _) = cachy_json(&config, &["--store", "sql", "keys", "k:9999*"]);
    assert_eq!(code, 0);
    assert_eq!(listed["keys"].as_array().unwrap().len(), 11, "{listed}");
}

#[test]
fn redis_stats_of_100000_items() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        &format!(
            "[stores.redis]\ndriver = \"redis\"\nurl = \"{}\"\nprefix = \"big:\"\n",
            server.url()
        ),
    );
    fill(&config, "redis", 100_000, 10_000);
    check_stats_of_100000_items(&config, "redis", &["keys"], " seen");
    let (code, _, err) = cachy(&config, &["--store", "redis", "prune"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot prune") && err.contains("Redis removes expired items itself"),
        "{err}"
    );
    let (code, listed, _) = cachy_json(&config, &["--store", "redis", "keys", "k:9999*"]);
    assert_eq!(code, 0);
    assert_eq!(listed["keys"].as_array().unwrap().len(), 11, "{listed}");
}

#[test]
fn postgres_and_mariadb_stats_and_keys() {
    let (Some(postgres), Some(mariadb)) = (PostgresServer::start(), MariaDbServer::start()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        &format!(
            "[stores.pg]\ndriver = \"database\"\nurl = \"{}\"\nprefix = \"p_%:\"\n\
             create_table = true\nprune_lottery = [0, 1]\n\
             [stores.maria]\ndriver = \"database\"\nurl = \"{}\"\nprefix = \"p_%:\"\n\
             create_table = true\nprune_lottery = [0, 1]\n",
            postgres.url(),
            mariadb.url()
        ),
    );
    for store in ["pg", "maria"] {
        let run = |args: &[&str]| cachy(&config, &[&["--store", store], args].concat());
        assert_eq!(run(&["put", "soon", "1", "--seconds", "1"]).0, 0, "{store}");
        for key in ["user:1", "User:2", "user_x", "100%", "a!b"] {
            assert_eq!(run(&["put", key, "7"]).0, 0, "{store} {key}");
        }
    }
    std::thread::sleep(Duration::from_millis(2100));
    for store in ["pg", "maria"] {
        let (code, stats, err) = cachy_json(&config, &["--store", store, "stats"]);
        assert_eq!(code, 0, "{store}: {err}");
        assert_eq!(
            stats["live"],
            serde_json::json!({ "rows": 5, "bytes": 5 }),
            "{store}"
        );
        assert_eq!(
            stats["expired"],
            serde_json::json!({ "rows": 1, "bytes": 1 }),
            "{store}"
        );
        let keys = |pattern: &str| {
            let (code, listed, err) = cachy_json(&config, &["--store", store, "keys", pattern]);
            assert_eq!(code, 0, "{store} {pattern}: {err}");
            listed["keys"].clone()
        };
        assert_eq!(
            keys("user*"),
            serde_json::json!(["user:1", "user_x"]),
            "{store}"
        );
        assert_eq!(keys("user_*"), serde_json::json!(["user_x"]), "{store}");
        assert_eq!(keys("*%"), serde_json::json!(["100%"]), "{store}");
        assert_eq!(keys("a!?"), serde_json::json!(["a!b"]), "{store}");
        assert_eq!(keys("*").as_array().unwrap().len(), 5, "{store}");
        let left = ttl_seconds(&config, &["--store", store, "ttl", "user:1"]);
        assert!(left > 3500.0 && left <= 3601.0, "{store}: {left}");
    }
}

#[test]
fn file_store_prune_removes_abandoned_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "[stores.dict]\ndriver = \"dict\"\n");
    assert_eq!(cachy(&config, &["put", "a", "1", "--forever"]).0, 0);
    // What a writer killed mid-put leaves: a temporary file in the value's folder, here
    // aged past the minute prune waits; and a write in progress, new.
    let store = FileStore::new(dir.path().join("files"), HashType::Sha256);
    let folder = store.path_of("a").parent().unwrap().to_owned();
    let abandoned = folder.join(".tmpAbC123");
    std::fs::write(&abandoned, "9999999999half").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&abandoned)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(120))
        .unwrap();
    let fresh = folder.join(".tmpXyZ789");
    std::fs::write(&fresh, "9999999999in progress").unwrap();

    let (code, stats, err) = cachy_json(&config, &["stats"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stats["abandoned"],
        serde_json::json!({ "files": 1, "bytes": 14 })
    );
    assert_eq!(stats["corrupt"]["files"], 0, "{stats}");
    let (_, text, _) = cachy(&config, &["stats"]);
    assert!(
        text.contains("abandoned temporary files: 1 (14 bytes)"),
        "{text}"
    );

    let (code, pruned, err) = cachy_json(&config, &["prune"]);
    assert_eq!(
        (code, &pruned["pruned"], &pruned["bytes"]),
        (0, &1.into(), &14.into()),
        "{err}"
    );
    assert!(!abandoned.exists() && fresh.exists());
    assert_eq!(
        cachy(&config, &["prune"]),
        (0, "0".to_owned(), String::new())
    );
    assert_eq!(cachy(&config, &["get", "a"]).1, "1");

    let (code, out, err) = cachy(&config, &["--store", "dict", "prune"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("cannot prune") && err.contains("another process"),
        "{err}"
    );
}

#[test]
fn a_mistyped_store_name_suggests_the_nearest_and_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (code, _, err) = cachy(&config, &["--store", "fiel", "get", "k"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `file`?"), "{err}");
    assert!(err.contains("its stores: file, sql"), "{err}");
    let (code, _, err) = cachy(&config, &["--store", "elsewhere", "get", "k"]);
    assert_eq!(code, 2);
    assert!(!err.contains("did you mean"), "{err}");
    assert!(err.contains("its stores: file, sql"), "{err}");
}

#[test]
fn a_miss_says_so_in_text_and_only_in_the_document_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    for command in ["get", "ttl"] {
        let (code, out, err) = cachy(&config, &[command, "nothing"]);
        assert_eq!((code, out.as_str()), (1, ""), "{command}");
        assert_eq!(err, "no value under `nothing` in store `file`", "{command}");
        let (code, document, err) = cachy_json(&config, &[command, "nothing"]);
        assert_eq!(
            (code, &document["found"]),
            (1, &Value::Bool(false)),
            "{command}"
        );
        assert_eq!(err, "", "{command}");
    }
}

#[test]
fn a_lifetime_of_zero_is_an_error_not_a_silent_delete() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert_eq!(cachy(&config, &["put", "k", "1", "--minutes", "5"]).0, 0);
    for flag in [["--minutes", "0"], ["--seconds", "0"], ["--seconds=-3", ""]] {
        let flag: Vec<&str> = flag.into_iter().filter(|part| !part.is_empty()).collect();
        let (code, _, err) = cachy(&config, &[&["put", "k", "2"][..], &flag[..]].concat());
        assert_eq!(code, 2, "{flag:?}");
        let shown = flag.join(" ").replace('=', " ");
        assert!(err.contains(&format!("`{shown}`")), "{err}");
        assert!(err.contains("cachy forget k"), "{err}");
    }
    assert_eq!(cachy(&config, &["get", "k"]).1, "1", "nothing was removed");
}

#[test]
fn cachy_config_names_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let output = Command::new(env!("CARGO_BIN_EXE_cachy"))
        .args(["put", "k", "7"])
        .env("CACHY_CONFIG", &config)
        .current_dir(dir.path().parent().unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(cachy(&config, &["get", "k"]).1, "7");
}

/// `cachy ARGS` at a terminal (a pseudo-terminal made by `script`), answering `answer`.
fn at_a_terminal(config: &Path, args: &str, answer: &str) -> (bool, String) {
    let command = format!(
        "{} --config {} {args}",
        env!("CARGO_BIN_EXE_cachy"),
        config.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), answer.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn flush_asks_at_a_terminal_unless_yes_and_says_what_it_removed() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert_eq!(cachy(&config, &["put", "k", "1"]).0, 0);
    let (flushed, shown) = at_a_terminal(&config, "flush", "n\n");
    assert!(!flushed, "{shown}");
    assert!(
        shown.contains("remove every item of store `file`? [y/N]"),
        "{shown}"
    );
    assert!(shown.contains("not flushed"), "{shown}");
    assert_eq!(cachy(&config, &["get", "k"]).1, "1", "kept");
    let (flushed, shown) = at_a_terminal(&config, "flush", "y\n");
    assert!(flushed, "{shown}");
    assert!(
        shown.contains("flushed store `file`: every item removed"),
        "{shown}"
    );
    assert_eq!(cachy(&config, &["get", "k"]).0, 1, "flushed");
    assert_eq!(cachy(&config, &["put", "k", "1"]).0, 0);
    let (flushed, shown) = at_a_terminal(&config, "flush --yes", "");
    assert!(flushed, "{shown}");
    assert!(!shown.contains("[y/N]"), "{shown}");
}

#[test]
fn every_argument_has_help_text() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    for command in [
        "get",
        "has",
        "put",
        "forget",
        "increment",
        "ttl",
        "stats",
        "keys",
        "flush",
        "create-table",
        "prune",
    ] {
        let (code, help, _) = cachy(&config, &[command, "-h"]);
        assert_eq!(code, 0, "{command}");
        let entries = help
            .lines()
            .skip_while(|line| !line.starts_with("Arguments:") && !line.starts_with("Options:"))
            .filter(|line| line.starts_with("  "));
        for entry in entries {
            let name_and_help: Vec<&str> = entry.trim().splitn(2, "  ").collect();
            assert!(
                name_and_help.len() == 2 && !name_and_help[1].trim().is_empty(),
                "`cachy {command}`: no help for {entry:?}"
            );
        }
    }
}
