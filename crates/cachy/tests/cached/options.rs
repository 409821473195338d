//! `#[cached]`'s lifetime, resilience and distributed options.

use super::*;

static TTL_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager(), ttl = std::time::Duration::from_secs(1))]
async fn with_a_duration(x: i64) -> i64 {
    TTL_CALLS.fetch_add(1, Ordering::SeqCst);
    x
}

#[tokio::test]
async fn a_ttl_given_as_a_duration_expires_the_value() {
    assert_eq!(with_a_duration(5).await, 5);
    assert_eq!(with_a_duration(5).await, 5);
    assert_eq!(TTL_CALLS.load(Ordering::SeqCst), 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(with_a_duration(5).await, 5);
    assert_eq!(
        TTL_CALLS.load(Ordering::SeqCst),
        2,
        "computed again after the ttl"
    );
}

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Fails on every call but the first.
#[cached(
    manager = manager(),
    ttl = std::time::Duration::from_millis(200),
    fail_safe = std::time::Duration::from_secs(30),
    hard_timeout = std::time::Duration::from_secs(5)
)]
async fn flaky_source(id: u32) -> Result<String, cachy::Error> {
    match FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) {
        0 => Ok(format!("user {id}")),
        _ => Err(cachy::Error::new(cachy::ErrorKind::Backend, "source down")),
    }
}

#[tokio::test]
async fn a_fail_safe_function_serves_its_last_value_when_its_source_fails() {
    assert_eq!(flaky_source(1).await.unwrap(), "user 1");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(flaky_source(1).await.unwrap(), "user 1", "the fallback");
    assert_eq!(
        FLAKY_CALLS.load(Ordering::SeqCst),
        2,
        "the source was tried"
    );
    assert!(
        flaky_source(2).await.is_err(),
        "no fallback for another argument"
    );
}

static EAGER_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager(), minutes = 10, eager_refresh = 0.9, jitter = 0.1)]
fn eager_sync(x: i64) -> i64 {
    EAGER_CALLS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[test]
fn a_sync_function_takes_the_resilience_options_too() {
    assert_eq!(eager_sync(4), 8);
    assert_eq!(eager_sync(4), 8);
    assert_eq!(EAGER_CALLS.load(Ordering::SeqCst), 1);
}

static DEFAULT_DURATION_CALLS: AtomicUsize = AtomicUsize::new(0);

fn short_default_manager() -> &'static CacheManager {
    static MANAGER: OnceLock<CacheManager> = OnceLock::new();
    MANAGER.get_or_init(|| {
        let manager =
            CacheManager::from_value(json!({ "stores": { "dict": { "driver": "dict" } } }))
                .unwrap();
        manager
            .set_default_cache_time(std::time::Duration::from_secs(1))
            .unwrap();
        manager
    })
}

#[cached(manager = short_default_manager())]
async fn with_the_default_lifetime(x: i64) -> i64 {
    DEFAULT_DURATION_CALLS.fetch_add(1, Ordering::SeqCst);
    x
}

#[tokio::test]
async fn the_default_cache_time_may_be_a_duration() {
    assert_eq!(
        short_default_manager().default_cache_time().unwrap(),
        1,
        "rounded up to a minute"
    );
    assert_eq!(with_the_default_lifetime(3).await, 3);
    assert_eq!(with_the_default_lifetime(3).await, 3);
    assert_eq!(DEFAULT_DURATION_CALLS.load(Ordering::SeqCst), 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(with_the_default_lifetime(3).await, 3);
    assert_eq!(
        DEFAULT_DURATION_CALLS.load(Ordering::SeqCst),
        2,
        "kept one second"
    );
}

static DISTRIBUTED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(
    manager = manager(),
    minutes = 10,
    distributed = (std::time::Duration::from_secs(5), std::time::Duration::from_secs(5))
)]
async fn across_processes(x: i64) -> i64 {
    DISTRIBUTED_CALLS.fetch_add(1, Ordering::SeqCst);
    x + 1
}

#[tokio::test]
async fn a_function_takes_the_distributed_option() {
    assert_eq!(across_processes(1).await, 2);
    assert_eq!(across_processes(1).await, 2);
    assert_eq!(DISTRIBUTED_CALLS.load(Ordering::SeqCst), 1);
}
