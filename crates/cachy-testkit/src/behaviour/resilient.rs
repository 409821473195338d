//! Resilient `remember`: fail-safe, timeouts, eager refresh, jitter, the lifetime chosen
//! by the factory, `remember_many` and `touch`.

use super::*;

/// A counter of factory runs, shared with the factories.
fn runs() -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    std::sync::Arc::default()
}

fn count(runs: &std::sync::atomic::AtomicUsize) -> usize {
    runs.load(std::sync::atomic::Ordering::SeqCst)
}

/// What a test factory returns.
type Computing = std::pin::Pin<
    Box<dyn std::future::Future<Output = cachy::Result<cachy::Computed<i64>>> + Send>,
>;

/// A factory that counts its runs, waits `delay`, and returns `result`.
fn factory(
    runs: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
    delay: Duration,
    result: Result<i64, &'static str>,
) -> impl FnOnce() -> Computing + Send + 'static {
    let runs = runs.clone();
    move || {
        Box::pin(async move {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            result
                .map(cachy::Computed::new)
                .map_err(|message| cachy::Error::new(ErrorKind::Backend, message))
        })
    }
}

/// Fail-safe: after the value expires, a failing factory gives the last value (for the
/// throttle, without being called again), and an error once the fail-safe window is over.
pub async fn fail_safe_serves_the_last_value_while_the_factory_fails(repo: &Repository) {
    use cachy::{RememberOptions, Source};
    // Lifetimes long enough for a store slowed down by a busy machine.
    let options = RememberOptions::new(Duration::from_millis(500))
        .fail_safe(Duration::from_millis(3000))
        .fail_safe_throttle(Duration::from_millis(1000));
    let runs = runs();
    let first = repo
        .remember_entry("k", &options, factory(&runs, Duration::ZERO, Ok(1)))
        .await
        .unwrap();
    let written = Instant::now();
    assert_eq!((first.value, first.source), (1, Source::Computed));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stale = repo
        .remember_entry("k", &options, factory(&runs, Duration::ZERO, Err("down")))
        .await
        .unwrap();
    assert_eq!((stale.value, stale.source), (1, Source::Stale));
    assert_eq!(count(&runs), 2);
    assert!(
        stale.age.unwrap() >= Duration::from_millis(600),
        "{stale:?}"
    );
    // Throttled: the fallback is served without calling the failing factory.
    let throttled = repo
        .remember_entry("k", &options, factory(&runs, Duration::ZERO, Err("down")))
        .await
        .unwrap();
    assert_eq!((throttled.value, throttled.source), (1, Source::Stale));
    assert_eq!(count(&runs), 2, "the failing source is not hammered");
    assert_eq!(
        repo.get::<i64>("k").await.unwrap(),
        None,
        "a fallback is never fresh to `get`"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let retried = repo
        .remember_entry("k", &options, factory(&runs, Duration::ZERO, Err("down")))
        .await
        .unwrap();
    assert_eq!(retried.source, Source::Stale);
    assert_eq!(count(&runs), 3, "tried again after the throttle");
    let window_end = Duration::from_millis(3600);
    tokio::time::sleep(window_end.saturating_sub(written.elapsed())).await;
    let error = repo
        .remember_entry("k", &options, factory(&runs, Duration::ZERO, Err("down")))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("down"), "{error}");
    assert_eq!(repo.get::<i64>("k").await.unwrap(), None);
}

/// Without a fallback, a failing factory's error is returned and nothing is cached.
pub async fn without_a_fallback_a_failing_factory_is_an_error_and_caches_nothing(
    repo: &Repository,
) {
    let options =
        cachy::RememberOptions::new(Duration::from_secs(60)).fail_safe(Duration::from_secs(60));
    let runs = runs();
    let error = repo
        .remember_with("k", &options, || async {
            Err::<i64, _>(cachy::Error::new(ErrorKind::Backend, "source down"))
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("source down"), "{error}");
    assert!(!repo.has("k").await.unwrap());
    let value = repo
        .remember_entry("k", &options, factory(&runs, Duration::ZERO, Ok(5)))
        .await
        .unwrap();
    assert_eq!(value.value, 5);
}

/// A soft timeout gives a caller with an expired value that value at once, and the slow
/// factory still stores its value when it ends.
pub async fn a_soft_timeout_serves_the_stale_value_and_the_factory_finishes(repo: &Repository) {
    use cachy::{RememberOptions, Source};
    let options = RememberOptions::new(Duration::from_millis(300))
        .fail_safe(Duration::from_secs(30))
        .soft_timeout(Duration::from_millis(50));
    let runs = runs();
    repo.remember_entry("k", &options, factory(&runs, Duration::ZERO, Ok(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let started = Instant::now();
    let stale = repo
        .remember_entry(
            "k",
            &options,
            factory(&runs, Duration::from_millis(400), Ok(2)),
        )
        .await
        .unwrap();
    assert_eq!((stale.value, stale.source), (1, Source::Stale));
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "waited {:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while repo.get::<i64>("k").await.unwrap() != Some(2) {
        assert!(
            Instant::now() < deadline,
            "the slow factory's value never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&runs), 2);
}

/// A hard timeout abandons the factory: an error without a fallback, the fallback with one.
pub async fn a_hard_timeout_abandons_the_factory(repo: &Repository) {
    use cachy::{RememberOptions, Source};
    let options = RememberOptions::new(Duration::from_millis(200))
        .fail_safe(Duration::from_secs(30))
        .hard_timeout(Duration::from_millis(100));
    let runs = runs();
    let started = Instant::now();
    let error = repo
        .remember_entry("k", &options, factory(&runs, Duration::from_secs(5), Ok(1)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
    repo.remember_entry("k", &options, factory(&runs, Duration::ZERO, Ok(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let stale = repo
        .remember_entry("k", &options, factory(&runs, Duration::from_secs(5), Ok(2)))
        .await
        .unwrap();
    assert_eq!((stale.value, stale.source), (1, Source::Stale));
}

/// Past the eager-refresh fraction, a hit returns at once and one background run refreshes
/// the value; no caller waits for it.
pub async fn eager_refresh_refreshes_once_in_the_background(repo: &Repository) {
    use cachy::{RememberOptions, Source};
    let options = RememberOptions::new(Duration::from_secs(3)).eager_refresh(0.5);
    let runs = runs();
    repo.remember_entry("k", &options, factory(&runs, Duration::ZERO, Ok(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let started = Instant::now();
    for _ in 0..10 {
        let hit = repo
            .remember_entry("k", &options, factory(&runs, Duration::from_secs(1), Ok(2)))
            .await
            .unwrap();
        assert_eq!((hit.value, hit.source), (1, Source::Cache));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a caller waited for the refresh, which takes 1 s: {:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while repo.get::<i64>("k").await.unwrap() != Some(2) {
        assert!(Instant::now() < deadline, "the refresh never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&runs), 2, "one refresh for ten hits");
}

/// 1000 concurrent callers of an expired key with fail-safe run the factory once.
pub async fn a_thousand_callers_of_an_expired_key_run_the_factory_once(repo: &Repository) {
    let short =
        cachy::RememberOptions::new(Duration::from_millis(100)).fail_safe(Duration::from_secs(30));
    let runs = runs();
    repo.remember_entry("k", &short, factory(&runs, Duration::ZERO, Ok(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The new value lives long enough for the slowest of the thousand to find it fresh.
    let options =
        cachy::RememberOptions::new(Duration::from_secs(60)).fail_safe(Duration::from_secs(30));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (repo, options) = (repo.clone(), options.clone());
            let compute = factory(&runs, Duration::from_millis(100), Ok(2));
            tokio::spawn(async move { repo.remember_entry("k", &options, compute).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().value, 2);
    }
    assert_eq!(
        count(&runs),
        2,
        "one initial run, one for the thousand callers"
    );
}

/// Jitter keeps each value up to its share of the lifetime longer, not all alike.
pub async fn jitter_spreads_lifetimes_within_bounds(repo: &Repository) {
    let options = cachy::RememberOptions::new(Duration::from_secs(10))
        .jitter(0.5)
        .fail_safe(Duration::from_secs(1));
    let runs = runs();
    let mut lifetimes = Vec::new();
    for i in 0..20 {
        let entry = repo
            .remember_entry(
                &format!("k{i}"),
                &options,
                factory(&runs, Duration::ZERO, Ok(i)),
            )
            .await
            .unwrap();
        lifetimes.push(entry.expires_in.unwrap());
    }
    for lifetime in &lifetimes {
        assert!(
            (Duration::from_secs(10)..=Duration::from_secs(15)).contains(lifetime),
            "{lifetime:?}"
        );
    }
    lifetimes.dedup();
    assert!(lifetimes.len() > 1, "every lifetime alike: {lifetimes:?}");
}

/// The factory may choose the lifetime from the value (a short one for a negative result),
/// or not to cache it.
pub async fn the_factory_chooses_the_lifetime_or_no_caching(repo: &Repository) {
    use cachy::{Computed, RememberOptions, Source};
    let options = RememberOptions::new(Duration::from_secs(3600));
    let not_found = || async {
        Ok::<_, cachy::Error>(Computed::new(None::<String>).ttl(Duration::from_secs(1)))
    };
    assert_eq!(
        repo.remember_entry("user", &options, not_found)
            .await
            .unwrap()
            .source,
        Source::Computed
    );
    assert_eq!(
        repo.remember_entry("user", &options, not_found)
            .await
            .unwrap()
            .source,
        Source::Cache
    );
    wait_until_missing(repo, "user", Duration::from_secs(5)).await;
    let volatile = || async { Ok::<_, cachy::Error>(Computed::new(7i64).uncached()) };
    assert_eq!(
        repo.remember_entry("v", &options, volatile)
            .await
            .unwrap()
            .value,
        7
    );
    assert!(
        !repo.has("v").await.unwrap(),
        "an uncached value is not stored"
    );
}

/// `remember_many` calls the loader once, with exactly the keys that are not cached.
pub async fn remember_many_loads_exactly_the_misses(repo: &Repository) {
    let options = cachy::RememberOptions::new(Duration::from_secs(60));
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for i in (0..100)
        .step_by(10)
        .chain((5..100).step_by(10))
        .chain((3..100).step_by(10))
    {
        repo.put(&keys[i], &(i as i64), TEN_MINUTES).await.unwrap();
    }
    let calls = std::sync::Mutex::new(Vec::new());
    let values: Vec<Option<i64>> = repo
        .remember_many(&keys, &options, |missing| {
            calls.lock().unwrap().push(missing.clone());
            async move {
                Ok::<_, cachy::Error>(
                    missing
                        .iter()
                        .filter(|k| k.as_str() != "k99")
                        .map(|k| (k.clone(), k[1..].parse::<i64>().unwrap()))
                        .collect(),
                )
            }
        })
        .await
        .unwrap();
    let calls = calls.into_inner().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].len(), 70);
    assert!(
        calls[0]
            .iter()
            .all(|k| k[1..].parse::<usize>().unwrap() % 10 % 5 != 0
                && k[1..].parse::<usize>().unwrap() % 10 != 3)
    );
    for (i, value) in values.iter().enumerate() {
        let expected = (i != 99).then_some(i as i64);
        assert_eq!(*value, expected, "k{i}");
    }
    assert_eq!(
        repo.get::<i64>("k42").await.unwrap(),
        Some(42),
        "loaded values are stored"
    );
    assert_eq!(
        repo.get::<i64>("k99").await.unwrap(),
        None,
        "left out, not cached"
    );
}

/// `touch` extends a live item's lifetime, and reports a missing one.
pub async fn touch_extends_a_live_item(repo: &Repository) {
    repo.put("k", &1, Duration::from_secs(1)).await.unwrap();
    assert!(repo.touch("k", TEN_MINUTES).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        repo.get::<i64>("k").await.unwrap(),
        Some(1),
        "the touch kept it"
    );
    assert!(!repo.touch("missing", TEN_MINUTES).await.unwrap());
    assert!(repo.touch("k", Duration::from_secs(1)).await.unwrap());
    wait_until_missing(repo, "k", Duration::from_secs(5)).await;
}
