//! `#[cached]` and `Memoizer`: keys from every argument, store and minutes options, Result
//! handling, sync and async functions, and one computation for many callers; methods,
//! skipped arguments and per-instance managers in `arguments.rs`, a memoizer over tags in
//! `memoizer.rs`, the lifetime, resilience and distributed options in `options.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cachy::stores::MemoryStore;
use cachy::{CacheManager, Result as CacheResult, Store, StoreConfig, Ttl, cached};
use serde_json::json;

mod arguments;
mod memoizer;
mod options;

/// A memory store that records the keys written to it.
#[derive(Default)]
struct Recording {
    inner: MemoryStore,
    keys: Mutex<Vec<String>>,
}

#[cachy::async_trait]
impl Store for Recording {
    async fn get(&self, key: &str) -> CacheResult<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> CacheResult<()> {
        self.keys.lock().unwrap().push(key.to_owned());
        self.inner.put(key, value, ttl).await
    }
    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> CacheResult<bool> {
        self.inner.add(key, value, ttl).await
    }
    async fn increment(&self, key: &str, by: i64) -> CacheResult<i64> {
        self.inner.increment(key, by).await
    }
    async fn forget(&self, key: &str) -> CacheResult<bool> {
        self.inner.forget(key).await
    }
    async fn flush(&self) -> CacheResult<()> {
        self.inner.flush().await
    }
}

static RECORDED: OnceLock<Arc<Recording>> = OnceLock::new();

fn manager() -> &'static CacheManager {
    static MANAGER: OnceLock<CacheManager> = OnceLock::new();
    MANAGER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let manager = CacheManager::from_value(json!({
            "default": "dict",
            "stores": {
                "dict": { "driver": "dict" },
                "second": { "driver": "dict" },
                "recorded": { "driver": "recording" },
                "file": { "driver": "file", "path": dir }
            }
        }))
        .unwrap();
        manager.extend("recording", |_: &StoreConfig| {
            let store: Arc<dyn Store> = RECORDED.get_or_init(Default::default).clone();
            Ok(store)
        });
        manager
    })
}

static SQUARES: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager())]
async fn square(x: u32) -> u32 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[tokio::test]
async fn different_arguments_give_different_keys() {
    // Python cachy drops the first argument of the key, so its f(3) returns the cached f(2).
    assert_eq!(square(2).await, 4);
    assert_eq!(square(3).await, 9, "f(3) must not return the cached f(2)");
    assert_eq!(square(2).await, 4);
    assert_eq!(
        SQUARES.load(Ordering::SeqCst),
        2,
        "f(2) came from the cache the second time"
    );
}

static PAIRS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager())]
async fn pair(first: String, second: Option<u8>) -> String {
    PAIRS.fetch_add(1, Ordering::SeqCst);
    format!("{first}/{second:?}")
}

#[tokio::test]
async fn every_argument_is_part_of_the_key() {
    assert_eq!(pair("a".into(), Some(1)).await, "a/Some(1)");
    assert_eq!(pair("a".into(), Some(2)).await, "a/Some(2)");
    assert_eq!(pair("b".into(), Some(1)).await, "b/Some(1)");
    assert_eq!(pair("a".into(), None).await, "a/None");
    assert_eq!(pair("a".into(), Some(1)).await, "a/Some(1)");
    assert_eq!(PAIRS.load(Ordering::SeqCst), 4);
}

static PREFIXED: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager(), store = "recorded", key = "users")]
async fn prefixed(id: u32) -> u32 {
    PREFIXED.fetch_add(1, Ordering::SeqCst);
    id
}

#[tokio::test]
async fn store_and_key_prefix_options_are_used() {
    assert_eq!(prefixed(7).await, 7);
    let keys = RECORDED.get().unwrap().keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("users:") && keys[0].len() == "users:".len() + 40,
        "{keys:?}"
    );
    assert!(
        !manager()
            .store("dict")
            .unwrap()
            .has(&keys[0])
            .await
            .unwrap(),
        "not in the default store"
    );
    assert_eq!(prefixed(7).await, 7);
    assert_eq!(PREFIXED.load(Ordering::SeqCst), 1);
}

static VERSIONED: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager(), key = "price")]
async fn price_v1(id: u32) -> u32 {
    VERSIONED.fetch_add(1, Ordering::SeqCst);
    id * 100
}

/// The next deploy's function: the same key prefix, another return type.
#[cached(manager = manager(), key = "price", version = 2)]
async fn price_v2(id: u32) -> String {
    VERSIONED.fetch_add(1, Ordering::SeqCst);
    format!("{id}.00 EUR")
}

#[tokio::test]
async fn a_version_keeps_a_new_return_type_apart_from_the_old_one() {
    assert_eq!(price_v1(9).await, 900);
    assert_eq!(price_v2(9).await, "9.00 EUR", "not the old version's value");
    assert_eq!(
        price_v1(9).await,
        900,
        "and the old version's value is still there"
    );
    assert_eq!(price_v2(9).await, "9.00 EUR");
    assert_eq!(VERSIONED.load(Ordering::SeqCst), 2);
    let key = cachy::Memoizer::resolve(Some(manager()), None, "price")
        .version(2)
        .key(&(9u32,))
        .unwrap();
    assert!(key.starts_with("cachy:v2:price:"), "{key}");
}

static UNCACHED: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager(), minutes = 0)]
async fn never_kept(x: u8) -> u8 {
    UNCACHED.fetch_add(1, Ordering::SeqCst);
    x
}

#[cached(manager = manager(), store = "file", minutes = 2)]
async fn two_minutes(x: u8) -> u8 {
    x
}

#[tokio::test]
async fn minutes_sets_the_lifetime() {
    never_kept(1).await;
    never_kept(1).await;
    assert_eq!(
        UNCACHED.load(Ordering::SeqCst),
        2,
        "zero minutes keeps nothing"
    );

    two_minutes(1).await;
    let memoizer = cachy::Memoizer::new(
        manager().store("file").unwrap(),
        concat!(module_path!(), "::two_minutes"),
    );
    let key = memoizer
        .key(&(concat!(module_path!(), "::two_minutes"), &1u8))
        .unwrap();
    let file = manager().config().stores()["file"].options()["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = cachy::stores::FileStore::new(file, cachy::stores::HashType::Sha256).path_of(&key);
    let content = std::fs::read(&path).unwrap();
    let expiry: u64 = std::str::from_utf8(&content[..10])
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 119..=now + 121).contains(&expiry),
        "expires in {} s",
        expiry - now
    );
}

static FALLIBLE: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager())]
async fn fallible(fail: bool) -> Result<String, cachy::Error> {
    FALLIBLE.fetch_add(1, Ordering::SeqCst);
    if fail {
        return Err(cachy::Error::new(
            cachy::ErrorKind::Backend,
            "upstream failed",
        ));
    }
    Ok("fine".to_owned())
}

#[tokio::test]
async fn only_ok_results_are_cached() {
    assert!(fallible(true).await.is_err());
    assert!(fallible(true).await.is_err());
    assert_eq!(FALLIBLE.load(Ordering::SeqCst), 2, "errors are not cached");
    assert_eq!(fallible(false).await.unwrap(), "fine");
    assert_eq!(fallible(false).await.unwrap(), "fine");
    assert_eq!(FALLIBLE.load(Ordering::SeqCst), 3, "Ok values are");
}

static SYNC_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager())]
fn sync_double(x: i64) -> i64 {
    SYNC_CALLS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[cached(manager = manager())]
fn sync_parse(text: String) -> Result<i64, cachy::Error> {
    text.parse()
        .map_err(|_| cachy::Error::new(cachy::ErrorKind::InvalidInput, "not a number"))
}

#[test]
fn sync_functions_are_memoized_too() {
    assert_eq!(sync_double(21), 42);
    assert_eq!(sync_double(21), 42);
    assert_eq!(sync_double(1), 2);
    assert_eq!(SYNC_CALLS.load(Ordering::SeqCst), 2);
    assert_eq!(sync_parse("5".into()).unwrap(), 5);
    assert!(sync_parse("x".into()).is_err());
}

static IN_RUNTIME_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager())]
fn sync_in_runtime(x: i64) -> i64 {
    IN_RUNTIME_CALLS.fetch_add(1, Ordering::SeqCst);
    x
}

#[tokio::test]
async fn a_sync_function_inside_a_runtime_runs_uncached_instead_of_blocking() {
    assert_eq!(sync_in_runtime(100), 100);
    assert_eq!(sync_in_runtime(100), 100);
    assert_eq!(IN_RUNTIME_CALLS.load(Ordering::SeqCst), 2);
}

static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager())]
async fn slow(x: u32) -> u32 {
    SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    x + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_run_the_body_once() {
    let calls: Vec<_> = (0..1000).map(|_| tokio::spawn(slow(41))).collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 42);
    }
    assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 1);
}

static GLOBAL_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached]
async fn uses_the_global_manager(x: u8) -> u8 {
    GLOBAL_CALLS.fetch_add(1, Ordering::SeqCst);
    x
}

#[tokio::test]
async fn the_global_manager_is_the_default_and_its_absence_means_uncached() {
    // Before set_global: runs uncached.
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        assert!(cachy::global().is_none());
    });
    uses_the_global_manager(1).await;
    uses_the_global_manager(1).await;
    assert_eq!(GLOBAL_CALLS.load(Ordering::SeqCst), 2);
    cachy::set_global(manager().clone()).unwrap();
    assert!(
        cachy::set_global(manager().clone()).is_err(),
        "installed once"
    );
    uses_the_global_manager(1).await;
    uses_the_global_manager(1).await;
    assert_eq!(GLOBAL_CALLS.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_failing_cache_does_not_break_a_memoized_function() {
    let down = CacheManager::from_value(json!({
        "stores": { "redis": { "driver": "redis", "host": "127.0.0.1",
            "port": cachy_testkit::servers::free_port(), "connect_timeout": 0.2 } }
    }))
    .unwrap();
    let memoizer = cachy::Memoizer::resolve(Some(&down), None, "down");
    assert_eq!(memoizer.call(memoizer.key(&1), || async { 5 }).await, 5);
    let result: Result<u8, cachy::Error> = memoizer
        .call_result(memoizer.key(&1), || async { Ok(6) })
        .await;
    assert_eq!(result.unwrap(), 6);
}

static IN_SPAWN_BLOCKING_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager())]
fn sync_in_spawn_blocking(x: i64) -> i64 {
    IN_SPAWN_BLOCKING_CALLS.fetch_add(1, Ordering::SeqCst);
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_function_is_memoized_in_spawn_blocking_and_in_multi_thread_tasks() {
    let first = tokio::task::spawn_blocking(|| sync_in_spawn_blocking(7));
    assert_eq!(first.await.unwrap(), 7);
    assert_eq!(
        sync_in_spawn_blocking(7),
        7,
        "from an async task, via block_in_place"
    );
    assert_eq!(IN_SPAWN_BLOCKING_CALLS.load(Ordering::SeqCst), 1);
}

static FRESH_MANAGER_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A new manager, with a new (empty) memory store, each time it is called.
fn fresh_manager() -> CacheManager {
    CacheManager::from_value(serde_json::json!({ "stores": { "dict": { "driver": "dict" } } }))
        .unwrap()
}

#[cached(manager = fresh_manager())]
async fn with_a_fresh_manager(x: i64) -> i64 {
    FRESH_MANAGER_CALLS.fetch_add(1, Ordering::SeqCst);
    x
}

#[tokio::test]
async fn the_manager_expression_is_evaluated_once() {
    assert_eq!(with_a_fresh_manager(1).await, 1);
    assert_eq!(with_a_fresh_manager(1).await, 1);
    assert_eq!(FRESH_MANAGER_CALLS.load(Ordering::SeqCst), 1);
}
