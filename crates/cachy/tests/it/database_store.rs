//! The behaviour suite on SQLite (a file and in memory), PostgreSQL and MariaDB (both started
//! here), plus the table, pruning, bad input and a server restarted under load.

#![cfg(all(
    feature = "database-sqlite",
    feature = "database-postgres",
    feature = "database-mysql"
))]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cachy::stores::DatabaseStore;
use cachy::{CacheManager, ErrorKind, Store, StoreConfig};
use cachy_testkit::Fixture;
use cachy_testkit::servers::{MariaDbServer, PostgresServer, TestServer};
use serde_json::json;

static POSTGRES: OnceLock<Option<PostgresServer>> = OnceLock::new();
static MARIADB: OnceLock<Option<MariaDbServer>> = OnceLock::new();

/// A table no other test uses: the suite's `flush` empties only its own table.
fn unique_table() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cache_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn manager(url: &str, extra: serde_json::Value) -> CacheManager {
    let mut store =
        json!({ "driver": "database", "url": url, "table": unique_table(), "create_table": true });
    store
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    CacheManager::from_value(json!({ "stores": { "database": store } })).unwrap()
}

mod sqlite_file {
    use super::*;

    async fn sqlite_file() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cache.db").display());
        Fixture::new(manager(&url, json!({})).store(None).unwrap(), dir)
    }

    cachy_testkit::behaviour_suite!(sqlite_file);
}

mod sqlite_memory {
    use super::*;

    async fn sqlite_memory() -> Fixture {
        Fixture::new(
            manager("sqlite::memory:", json!({})).store(None).unwrap(),
            (),
        )
    }

    cachy_testkit::behaviour_suite!(sqlite_memory);
}

/// Msgpack keeps counters as msgpack integers, incremented by compare and swap.
mod msgpack {
    use super::*;

    async fn sqlite_msgpack() -> Fixture {
        let cache = manager("sqlite::memory:", json!({ "serializer": "msgpack" }));
        Fixture::new(cache.store(None).unwrap(), ())
    }

    cachy_testkit::behaviour_suite!(sqlite_msgpack);

    mod postgres {
        use super::*;

        async fn postgres_msgpack() -> Option<Fixture> {
            let server = POSTGRES.get_or_init(PostgresServer::start).as_ref()?;
            let cache = manager(&server.url(), json!({ "serializer": "msgpack" }));
            Some(Fixture::new(cache.store(None).unwrap(), ()))
        }

        cachy_testkit::behaviour_suite!(postgres_msgpack);
    }

    mod mariadb {
        use super::*;

        async fn mariadb_msgpack() -> Option<Fixture> {
            let server = MARIADB.get_or_init(MariaDbServer::start).as_ref()?;
            let cache = manager(&server.url(), json!({ "serializer": "msgpack" }));
            Some(Fixture::new(cache.store(None).unwrap(), ()))
        }

        cachy_testkit::behaviour_suite!(mariadb_msgpack);
    }
}

mod postgres {
    use super::*;

    async fn postgres() -> Option<Fixture> {
        let server = POSTGRES.get_or_init(PostgresServer::start).as_ref()?;
        Some(Fixture::new(
            manager(&server.url(), json!({})).store(None).unwrap(),
            (),
        ))
    }

    cachy_testkit::behaviour_suite!(postgres);
}

mod mariadb {
    use super::*;

    async fn mariadb() -> Option<Fixture> {
        let server = MARIADB.get_or_init(MariaDbServer::start).as_ref()?;
        Some(Fixture::new(
            manager(&server.url(), json!({})).store(None).unwrap(),
            (),
        ))
    }

    cachy_testkit::behaviour_suite!(mariadb);
}

fn store(url: &str, extra: serde_json::Value) -> DatabaseStore {
    let mut config = StoreConfig::new("database")
        .with("url", url)
        .with("table", unique_table());
    for (field, value) in extra.as_object().cloned().unwrap_or_default() {
        config = config.with(field, value);
    }
    DatabaseStore::from_config(&config).unwrap()
}

async fn urls() -> Vec<String> {
    let mut urls = vec!["sqlite::memory:".to_owned()];
    if let Some(server) = POSTGRES.get_or_init(PostgresServer::start) {
        urls.push(server.url());
    }
    if let Some(server) = MARIADB.get_or_init(MariaDbServer::start) {
        urls.push(server.url());
    }
    urls
}

#[tokio::test]
async fn a_missing_table_is_an_error_that_says_how_to_create_it() {
    for url in urls().await {
        let store = store(&url, json!({}));
        let err = store.get("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        assert!(err.to_string().contains("create_table"), "{url}: {err}");
        store.create_table().await.unwrap();
        store.create_table().await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None, "{url}");
    }
}

#[tokio::test]
async fn prune_removes_expired_rows_and_the_lottery_runs_it() {
    for url in urls().await {
        let store = store(&url, json!({ "prune_lottery": [0, 1] }));
        store.create_table().await.unwrap();
        store.put("short", b"v", Some(1)).await.unwrap();
        store.put("long", b"v", Some(600)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(store.prune().await.unwrap(), 1, "{url}");
        assert_eq!(store.get("long").await.unwrap().as_deref(), Some(&b"v"[..]));

        // More expired rows than one batch deletes: `prune` goes on to the end.
        let items: Vec<(String, Vec<u8>)> = (0..2500)
            .map(|i| (format!("old{i}"), b"v".to_vec()))
            .collect();
        let items: Vec<(&str, Vec<u8>)> =
            items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        store.put_many(&items, Some(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(store.prune().await.unwrap(), 2500, "{url}");

        // The lottery's winner does not wait for the prune: it runs in the background, a
        // batch at a time, until no expired row is left.
        let always = self::store(&url, json!({ "prune_lottery": [1, 1] }));
        always.create_table().await.unwrap();
        always.put_many(&items, Some(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        always.put("other", b"v", Some(600)).await.unwrap();
        let started = std::time::Instant::now();
        while always.count_rows().await.unwrap().expired > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{url}: the background prune left expired rows"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            always.get("other").await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}

#[test]
fn bad_settings_are_config_errors_naming_the_field() {
    for (store, field) in [
        (json!({ "driver": "database" }), "stores.db.url"),
        (
            json!({ "driver": "database", "url": "oracle://x" }),
            "stores.db.url",
        ),
        (
            json!({ "driver": "database", "url": "postgres://[bad" }),
            "stores.db.url",
        ),
        (
            json!({ "driver": "database", "url": "sqlite::memory:", "table": "cache; DROP TABLE x" }),
            "stores.db.table",
        ),
        (
            json!({ "driver": "database", "url": "sqlite::memory:", "prune_lottery": [1, 0] }),
            "stores.db.prune_lottery",
        ),
    ] {
        let cache = CacheManager::from_value(json!({ "stores": { "db": store.clone() } })).unwrap();
        let err = cache.store(None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{store}");
        assert_eq!(err.field(), Some(field), "{store}: {err}");
    }
}

#[tokio::test]
async fn a_sqlite_file_persists_across_managers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("persist.db").display());
    let config =
        json!({ "stores": { "db": { "driver": "database", "url": url, "create_table": true } } });
    CacheManager::from_value(config.clone())
        .unwrap()
        .forever("k", "kept")
        .await
        .unwrap();
    let again = CacheManager::from_value(config).unwrap();
    assert_eq!(
        again.get::<String>("k").await.unwrap().as_deref(),
        Some("kept")
    );
}

async fn restart_under_load(url: String, restart: impl FnOnce()) {
    let cache = manager(&url, json!({ "timeout": 1 }));
    cache.put("before", "v", 10).await.unwrap();
    let load =
        cachy_testkit::spawn_increment_load(cache.store(None).unwrap(), Duration::from_secs(6));
    tokio::time::sleep(Duration::from_millis(300)).await;
    restart();
    let (ok, failed) = load.await.unwrap();
    assert!(ok > 0, "{url}: {ok} ok, {failed} failed");
    let recovered = Instant::now();
    loop {
        match cache.put("after", "v", 10).await {
            Ok(()) => break,
            Err(e) => assert!(
                recovered.elapsed() < Duration::from_secs(15),
                "{url}: no recovery: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        cache.get::<String>("after").await.unwrap().as_deref(),
        Some("v")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_recovers_without_a_rebuild() {
    let Some(mut server) = PostgresServer::start() else {
        return;
    };
    let url = server.url();
    restart_under_load(url, move || {
        server.kill();
        std::thread::sleep(Duration::from_millis(500));
        server.restart();
        std::mem::forget(server);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restarted_under_load_recovers_without_a_rebuild() {
    let Some(mut server) = MariaDbServer::start() else {
        return;
    };
    let url = server.url();
    restart_under_load(url, move || {
        server.kill();
        std::thread::sleep(Duration::from_millis(500));
        server.restart();
        std::mem::forget(server);
    })
    .await;
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_folder_gets_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("var").join("cache").join("cache.db");
    let url = format!("sqlite://{}", file.display());
    let cache = manager(&url, json!({ "create_table": true }));
    cache.put("k", &1i64, 5).await.unwrap();
    assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
    assert!(file.exists());
}

#[tokio::test]
async fn a_sqlite_file_that_cannot_be_opened_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"a file").unwrap();
    let file = blocker.join("cache.db");
    let cache = manager(&format!("sqlite://{}", file.display()), json!({}));
    let error = cache.get::<i64>("k").await.unwrap_err();
    assert!(
        error.to_string().contains(&blocker.display().to_string()),
        "{error}"
    );
}

/// Set in the processes `sqlite_counts_every_increment_of_several_processes` spawns: the
/// SQLite URL they share.
const SQLITE_CHILD_URL: &str = "CACHY_SQLITE_CHILD_URL";
const SQLITE_CHILD_INCREMENTS: i64 = 150;

fn shared_sqlite(url: &str) -> CacheManager {
    manager(url, json!({ "table": "shared" }))
}

/// One of the processes (does nothing alone): increments a shared counter and writes its
/// own keys, on two tasks at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_child() {
    let Ok(url) = std::env::var(SQLITE_CHILD_URL) else {
        return;
    };
    let cache = shared_sqlite(&url);
    let tasks: Vec<_> = (0..2)
        .map(|task| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for i in 0..SQLITE_CHILD_INCREMENTS / 2 {
                    cache.increment("counter").await.unwrap();
                    let key = format!("{}-{task}-{i}", std::process::id());
                    cache.put(&key, &i, 5).await.unwrap();
                    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(i));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn sqlite_counts_every_increment_of_several_processes() {
    const PROCESSES: i64 = 3;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    shared_sqlite(&url).put("counter", &0i64, 5).await.unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "database_store::sqlite_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(SQLITE_CHILD_URL, &url)
                .spawn()
                .expect("the test binary runs")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a process failed");
    }
    assert_eq!(
        shared_sqlite(&url).get::<i64>("counter").await.unwrap(),
        Some(PROCESSES * SQLITE_CHILD_INCREMENTS),
        "no increment lost between processes writing one SQLite file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_wait_for_another_connection_s_lock_and_reads_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("locked.db");
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "locked" }),
    );
    cache.put("before", &1i64, 5).await.unwrap();
    let holder = rusqlite::Connection::open(&file).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let released = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        holder.execute_batch("COMMIT").unwrap();
    });
    let started = Instant::now();
    assert_eq!(cache.get::<i64>("before").await.unwrap(), Some(1));
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "a read does not wait for the writer (WAL)"
    );
    cache.put("during", &2i64, 5).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "the write waited for the lock"
    );
    released.join().unwrap();
    assert_eq!(cache.get::<i64>("during").await.unwrap(), Some(2));
}

/// Writes waiting for another connection's lock wait for their turn without holding a
/// connection: reads, which WAL lets through, still find one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_waiting_for_a_lock_leave_connections_for_reads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("waiting.db");
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "waiting", "max_connections": 2, "timeout": 5 }),
    );
    cache.put("before", &1i64, 5).await.unwrap();
    let holder = rusqlite::Connection::open(&file).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.put(&format!("w{i}"), &i, 5).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(cache.get::<i64>("before").await.unwrap(), Some(1));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "reads waited {:?} behind writes waiting for the lock",
        started.elapsed()
    );
    holder.execute_batch("COMMIT").unwrap();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    assert_eq!(cache.get::<i64>("w7").await.unwrap(), Some(7));
}

#[tokio::test]
async fn sqlite_rows_another_program_wrote_read_as_bytes_or_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alien.db");
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "alien", "serializer": "json" }),
    );
    cache.put("k", &1i64, 5).await.unwrap();
    let other = rusqlite::Connection::open(&file).unwrap();
    let far = 9_999_999_999i64;
    other
        .execute(
            "INSERT INTO alien (\"key\", value, expiration) VALUES (x'74657874', '\"as text\"', ?1), \
             (x'6e756d', 42, ?1), (x'657870', x'31', 'soon')",
            [far],
        )
        .unwrap();
    assert_eq!(
        cache.get::<String>("text").await.unwrap(),
        Some("as text".to_owned()),
        "text is taken as its bytes"
    );
    for (key, says) in [
        ("num", "Integer, not bytes"),
        ("exp", "Text, not an integer"),
    ] {
        let error = cache.get::<i64>(key).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Backend, "{key}: {error}");
        assert!(
            error.to_string().contains("database read failed"),
            "{error}"
        );
        assert!(error.to_string().contains(says), "{error}");
    }
    assert_eq!(
        cache.get::<i64>("k").await.unwrap(),
        Some(1),
        "nothing else lost"
    );
}
