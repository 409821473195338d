//! Stores of 100,000 items: exact counts, progress on stderr only.

use super::*;

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
