//! Resilient `remember` at its edges, on the memory store: nested computations, callers
//! waiting on another's computation, values the cache cannot keep, closed fail-safe windows.
//! (The behaviour suite checks each option on every store.)

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cachy::{CacheManager, Error, ErrorKind, RememberOptions, Repository, Source};

fn repository() -> Repository {
    CacheManager::from_value(serde_json::json!({ "stores": { "dict": { "driver": "dict" } } }))
        .unwrap()
        .store(None)
        .unwrap()
}

/// Fails the test instead of hanging it.
async fn within<T>(limit: Duration, work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, work)
        .await
        .expect("finished in time instead of hanging")
}

#[tokio::test]
async fn keys_computing_each_other_are_an_error_not_a_hang() {
    let repo = repository();
    let options = RememberOptions::new(Duration::from_secs(60));
    let inner = repo.clone();
    let outer = repo.clone();
    let result: Result<i64, Error> = within(Duration::from_secs(5), async move {
        outer
            .remember_with("a", &options.clone(), move || async move {
                let nested = inner.clone();
                inner
                    .remember_with("b", &options.clone(), move || async move {
                        nested
                            .remember_with("a", &options, || async { Ok::<_, Error>(1i64) })
                            .await
                    })
                    .await
            })
            .await
    })
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Remember, "{error}");
}

#[tokio::test]
async fn a_loader_asking_for_its_own_key_is_an_error_not_a_hang() {
    let repo = repository();
    let options = RememberOptions::new(Duration::from_secs(60));
    let inner = repo.clone();
    let result: Result<Vec<Option<i64>>, Error> = within(
        Duration::from_secs(5),
        repo.remember_many(&["x"], &options, |_| async move {
            let x: i64 = inner
                .remember("x", 10, || async { Ok::<_, Error>(1) })
                .await?;
            Ok(HashMap::from([("x".to_owned(), x)]))
        }),
    )
    .await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Remember);
}

#[tokio::test]
async fn a_waiter_waits_no_longer_than_its_own_hard_timeout() {
    let repo = repository();
    let slow = repo.clone();
    let leader = tokio::spawn(async move {
        slow.remember("k", 10, || async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, Error>(1i64)
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let options =
        RememberOptions::new(Duration::from_secs(60)).hard_timeout(Duration::from_millis(100));
    let started = Instant::now();
    let error = repo
        .remember_with("k", &options, || async { Ok::<_, Error>(2i64) })
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    leader.abort();
}

#[tokio::test]
async fn a_value_the_cache_cannot_keep_is_still_returned() {
    let repo = CacheManager::from_value(serde_json::json!({
        "stores": { "json": { "driver": "dict", "serializer": "json" } }
    }))
    .unwrap()
    .store(None)
    .unwrap();
    let options = RememberOptions::new(Duration::from_secs(60));
    // JSON has no map with integer keys... as keys of a tuple type.
    let value: HashMap<(i64, i64), i64> = repo
        .remember_with("k", &options, || async {
            Ok::<_, Error>(HashMap::from([((1, 2), 3)]))
        })
        .await
        .unwrap();
    assert_eq!(value[&(1, 2)], 3);
    assert!(!repo.has("k").await.unwrap());
}

#[tokio::test]
async fn a_panicking_factory_panics_in_its_caller_and_the_next_call_computes() {
    let repo = repository();
    let options = RememberOptions::new(Duration::from_secs(60));
    let panicking = {
        let repo = repo.clone();
        let options = options.clone();
        tokio::spawn(async move {
            repo.remember_with("k", &options, || async {
                if true {
                    panic!("the factory's own panic");
                }
                Ok::<i64, Error>(0)
            })
            .await
        })
    };
    let payload = panicking.await.unwrap_err().into_panic();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the factory's own panic")
    );
    let value: i64 = repo
        .remember_with("k", &options, || async { Ok::<_, Error>(5) })
        .await
        .unwrap();
    assert_eq!(value, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_of_a_panicking_factory_are_told_at_once_instead_of_leading_in_turn() {
    let repo = repository();
    let options = RememberOptions::new(Duration::from_secs(60));
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let callers: Vec<_> = (0..5)
        .map(|_| {
            let (repo, options, runs) = (repo.clone(), options.clone(), runs.clone());
            tokio::spawn(async move {
                repo.remember_with("k", &options, move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if true {
                        panic!("the factory's own panic");
                    }
                    Ok::<i64, Error>(0)
                })
                .await
            })
        })
        .collect();
    let (mut panicked, mut failed) = (0, 0);
    for caller in callers {
        match caller.await {
            Err(join) if join.is_panic() => panicked += 1,
            Ok(Err(error)) => {
                assert_eq!(error.kind(), ErrorKind::Remember);
                assert!(error.to_string().contains("panicked"), "{error}");
                failed += 1;
            }
            other => panic!("neither a panic nor an error: {other:?}"),
        }
    }
    assert_eq!((panicked, failed), (1, 4));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_slow_store_costs_a_remember_at_most_its_cache_timeout_per_call() {
    let (cache, faults) = cachy::testing::faulty(&repository());
    faults.latency(Duration::from_secs(5));
    let options =
        RememberOptions::new(Duration::from_secs(60)).cache_timeout(Duration::from_millis(100));
    let started = Instant::now();
    let value: i64 = cache
        .remember_with("k", &options, || async { Ok::<_, Error>(7) })
        .await
        .unwrap();
    assert_eq!(value, 7);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "a read and a write of 100 ms at most: {:?}",
        started.elapsed()
    );
    let stats = cache.stats();
    assert_eq!(
        stats.errors, 2,
        "the read and the write that timed out: {stats:?}"
    );
}

#[tokio::test]
async fn a_fallback_is_not_served_after_its_window_closed() {
    let repo = repository();
    let options =
        RememberOptions::new(Duration::from_millis(100)).fail_safe(Duration::from_millis(200));
    repo.remember_with("k", &options, || async { Ok::<_, Error>(1i64) })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Within the window when it starts, past it when the factory fails.
    let result = repo
        .remember_entry("k", &options, || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err::<cachy::Computed<i64>, _>(Error::new(ErrorKind::Backend, "down"))
        })
        .await;
    let error = result.unwrap_err();
    assert!(error.to_string().contains("down"), "{error}");
}

static FAILING_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cachy::cached(
    manager = manager(),
    ttl = Duration::from_secs(60),
    fail_safe = Duration::from_secs(60)
)]
async fn failing_source(id: u32) -> Result<u32, Error> {
    FAILING_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Err(Error::new(
        ErrorKind::Backend,
        format!("source down for {id}"),
    ))
}

fn manager() -> &'static CacheManager {
    static MANAGER: std::sync::OnceLock<CacheManager> = std::sync::OnceLock::new();
    MANAGER.get_or_init(|| {
        CacheManager::from_value(serde_json::json!({ "stores": { "dict": { "driver": "dict" } } }))
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_of_a_failing_cached_function_call_the_source_once() {
    let calls: Vec<_> = (0..10).map(|_| tokio::spawn(failing_source(7))).collect();
    for call in calls {
        assert!(call.await.unwrap().is_err());
    }
    assert_eq!(
        FAILING_CALLS.load(Ordering::SeqCst),
        1,
        "the waiters share the failure"
    );
}

#[tokio::test]
async fn a_refresh_that_already_happened_is_not_repeated() {
    let repo = repository();
    let options = RememberOptions::new(Duration::from_millis(400)).eager_refresh(0.5);
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = |runs: &Arc<AtomicUsize>| {
        let runs = runs.clone();
        move || async move { Ok::<_, Error>(runs.fetch_add(1, Ordering::SeqCst) as i64) }
    };
    repo.remember_entry("k", &options, {
        let compute = counted(&runs);
        move || async move { compute().await.map(cachy::Computed::new) }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    for _ in 0..20 {
        let entry = repo
            .remember_entry("k", &options, {
                let compute = counted(&runs);
                move || async move { compute().await.map(cachy::Computed::new) }
            })
            .await
            .unwrap();
        assert_ne!(entry.source, Source::Computed);
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one refresh");
}

/// An application's error: `Clone`, so that callers waiting on a failed computation can get
/// a copy of it.
#[derive(Debug, Clone, PartialEq)]
enum AppError {
    NotFound(u32),
    Cache(ErrorKind),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Cache(e.kind())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Runs `call` twice at once, the second starting while the first computes; both results.
async fn leader_and_waiter<T, F, Fut>(call: F) -> (T, T)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let leader = call();
    let waiter = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        call().await
    };
    within(Duration::from_secs(5), async {
        tokio::join!(leader, waiter)
    })
    .await
}

async fn slow_failure<E>(error: E) -> Result<i64, E> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    Err(error)
}

#[tokio::test]
async fn a_waiter_of_a_failed_remember_gets_the_same_cache_error() {
    let repo = repository();
    let (leader, waiter) = leader_and_waiter(|| {
        repo.remember("k", 10, || {
            slow_failure(Error::new(ErrorKind::Unavailable, "the database is down"))
        })
    })
    .await;
    let (leader, waiter) = (leader.unwrap_err(), waiter.unwrap_err());
    assert_eq!(waiter.kind(), ErrorKind::Unavailable, "{waiter}");
    assert_eq!(waiter.message(), leader.message());
    assert!(waiter.is_temporary());
}

#[tokio::test]
async fn a_waiter_gets_a_copy_of_a_clone_error_when_errors_are_shared() {
    let repo = repository();
    let shared = RememberOptions::new(Duration::from_secs(60)).share_errors::<AppError>();
    let (leader, waiter) = leader_and_waiter(|| {
        repo.remember_with("k", &shared, || slow_failure(AppError::NotFound(7)))
    })
    .await;
    assert_eq!(leader, Err(AppError::NotFound(7)));
    assert_eq!(waiter, Err(AppError::NotFound(7)));

    let unshared = RememberOptions::new(Duration::from_secs(60));
    let (leader, waiter) = leader_and_waiter(|| {
        repo.remember_with("j", &unshared, || slow_failure(AppError::NotFound(7)))
    })
    .await;
    assert_eq!(leader, Err(AppError::NotFound(7)));
    assert_eq!(waiter, Err(AppError::Cache(ErrorKind::Remember)));
}

static NOT_FOUND_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cachy::cached(manager = manager(), ttl = Duration::from_secs(60))]
async fn find(id: u32) -> Result<u32, AppError> {
    NOT_FOUND_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Err(AppError::NotFound(id))
}

#[cachy::cached(manager = manager(), ttl = Duration::from_secs(60), fail_safe = Duration::from_secs(60))]
async fn find_resiliently(id: u32) -> Result<u32, AppError> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    Err(AppError::NotFound(id))
}

#[tokio::test]
async fn waiters_of_a_failed_cached_call_get_its_clone_error() {
    let (leader, waiter) = leader_and_waiter(|| find(3)).await;
    assert_eq!(leader, Err(AppError::NotFound(3)));
    assert_eq!(waiter, Err(AppError::NotFound(3)));
    assert_eq!(NOT_FOUND_CALLS.load(Ordering::SeqCst), 1);

    let (leader, waiter) = leader_and_waiter(|| find_resiliently(4)).await;
    assert_eq!(leader, Err(AppError::NotFound(4)));
    assert_eq!(waiter, Err(AppError::NotFound(4)));
}
