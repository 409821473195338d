//! `remember`: computing on a miss, once, and never caching an error.

use super::*;

/// `remember` computes on a miss, caches, and serves later calls from the cache.
pub async fn remember_computes_on_a_miss_and_caches(repo: &Repository) {
    let first: User = repo
        .remember("user", TEN_MINUTES, || async {
            Ok::<_, cachy::Error>(ann())
        })
        .await
        .unwrap();
    assert_eq!(first, ann());
    let second: User = repo
        .remember("user", TEN_MINUTES, || async {
            Err::<User, _>(cachy::Error::new(ErrorKind::Backend, "computed twice"))
        })
        .await
        .unwrap();
    assert_eq!(second, ann());
}

/// An error from the closure is returned and nothing is cached.
pub async fn remember_does_not_cache_an_error(repo: &Repository) {
    #[derive(Debug)]
    enum AppError {
        Database,
        #[expect(dead_code, reason = "only the variant matters here")]
        Cache(cachy::Error),
    }
    impl From<cachy::Error> for AppError {
        fn from(e: cachy::Error) -> Self {
            AppError::Cache(e)
        }
    }
    impl std::fmt::Display for AppError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }
    let failed = repo
        .remember::<String, _, _, _>("k", TEN_MINUTES, || async { Err(AppError::Database) })
        .await;
    assert!(matches!(failed, Err(AppError::Database)), "{failed:?}");
    assert!(!repo.has("k").await.unwrap());
}

/// Many tasks calling `remember` on one missing key at once: the closure runs once and
/// every caller gets its value.
pub async fn concurrent_remembers_compute_once(repo: &Repository) {
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let repo = repo.clone();
            let runs = runs.clone();
            tokio::spawn(async move {
                repo.remember("stampede", TEN_MINUTES, || async move {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, cachy::Error>(ann())
                })
                .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), ann());
    }
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// When the one computation fails, every waiting caller gets an error and nothing is cached.
pub async fn concurrent_remembers_share_an_error_and_cache_nothing(repo: &Repository) {
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let repo = repo.clone();
            let runs = runs.clone();
            tokio::spawn(async move {
                repo.remember::<User, cachy::Error, _, _>("failing", TEN_MINUTES, || async move {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    // A failure is not cached, so a caller whose first read arrives after it
                    // computes again, rightly: the computation outlasts every task's first
                    // read, even fifty of them queued on a loaded server's connection pool.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Err(cachy::Error::new(ErrorKind::Backend, "database down"))
                })
                .await
            })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("database down"), "{err}");
    }
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(!repo.has("failing").await.unwrap());
}

/// `remember_forever` caches the computed value with no expiry.
pub async fn remember_forever_caches_without_expiry(repo: &Repository) {
    let value: Vec<u32> = repo
        .remember_forever("k", || async { Ok::<_, cachy::Error>(vec![1, 2]) })
        .await
        .unwrap();
    assert_eq!(value, [1, 2]);
    assert_eq!(repo.get::<Vec<u32>>("k").await.unwrap(), Some(vec![1, 2]));
}
