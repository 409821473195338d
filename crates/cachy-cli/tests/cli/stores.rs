//! `stats`, `keys`, `ttl` and `prune` on each store, and the stores they refuse.

use super::*;

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
    assert_eq!(code, 0);
    // In SCAN's order.
    let mut keys: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key.as_str().unwrap())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["user:1", "user:2"]);
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

/// A server that is down: every command that looks into the store says so (exit code 2,
/// naming the store), within the store's timeouts, and none hangs.
#[test]
fn a_store_whose_server_is_down_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = cachy_testkit::servers::free_port();
    let config = config_with(
        dir.path(),
        &format!(
            "[stores.redis]\ndriver = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n\
             connect_timeout = 0.5\nresponse_timeout = 0.5\n\
             [stores.mc]\ndriver = \"memcached\"\nservers = [\"127.0.0.1:{port}\"]\ntimeout = 0.5\n"
        ),
    );
    for args in [
        &["--store", "redis", "stats"][..],
        &["--store", "redis", "keys"],
        &["--store", "redis", "flush", "--yes"],
        &["--store", "mc", "stats"],
        &["--store", "mc", "flush", "--yes"],
    ] {
        let started = std::time::Instant::now();
        let (code, out, err) = cachy(&config, args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
        assert!(
            err.contains(&format!("store `{}`", args[1])),
            "{args:?}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
}
