//! The behaviour suite on SQLite (a file and in memory), PostgreSQL and MariaDB (both started
//! here), plus the table, pruning, bad input and a server restarted under load.

#![cfg(all(
    feature = "database-sqlite",
    feature = "database-postgres",
    feature = "database-mysql"
))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cachy::stores::DatabaseStore;
use cachy::{CacheManager, ErrorKind, Store, StoreConfig};
use cachy_testkit::Fixture;
use cachy_testkit::servers::{MariaDbServer, PostgresServer, TestServer};
use serde_json::json;

mod outages;
mod sqlite;
mod sqlite_anchor;
mod sqlite_batches;

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

/// `count` items `old0`, `old1`… living 1 s, in one `put_many`.
async fn put_expiring(store: &DatabaseStore, count: usize) {
    let items: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (format!("old{i}"), b"v".to_vec()))
        .collect();
    let items: Vec<(&str, Vec<u8>)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    store.put_many(&items, Some(1)).await.unwrap();
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
        put_expiring(&store, 2500).await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(store.prune().await.unwrap(), 2500, "{url}");

        // The lottery's winner does not wait for the prune: it runs in the background, a
        // batch at a time, until no expired row is left.
        let always = self::store(&url, json!({ "prune_lottery": [1, 1] }));
        always.create_table().await.unwrap();
        put_expiring(&always, 2500).await;
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

/// A prune started on a runtime that never runs it, dropped (a `#[tokio::test]` whose last
/// put won the lottery) or kept idle, lets later winners prune: it stopped every prune of
/// the store.
#[test]
fn a_prune_its_runtime_never_runs_lets_later_winners_prune() {
    let urls = tokio::runtime::Runtime::new().unwrap().block_on(urls());
    for url in urls {
        for keep_idle in [false, true] {
            let store = store(
                &url,
                json!({ "prune_lottery": [1, 1], "create_table": true }),
            );
            let first = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            // The put starts a prune on this runtime, which never runs it.
            first.block_on(store.put("a", b"v", Some(600))).unwrap();
            let idle = keep_idle.then_some(first);
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                put_expiring(&store, 50).await;
                tokio::time::sleep(Duration::from_millis(2100)).await;
                let started = std::time::Instant::now();
                while store.count_rows().await.unwrap().expired > 0 {
                    assert!(
                        started.elapsed() < Duration::from_secs(20),
                        "{url}: no prune ran after the first one's runtime stopped \
                         (kept idle: {keep_idle})"
                    );
                    store.put("other", b"v", Some(600)).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            drop(idle);
        }
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
