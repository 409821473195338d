//! What callers get when the cache fails: the resilient `remember` computes around a store
//! that is down, a value that no longer decodes, or a value that cannot be encoded, and
//! observes every such failure; fail-safe values are never fresh, and never outlive the
//! reader's own window.

use std::sync::{Arc, Mutex};

use cachy::observe::{Operation, Outcome};
use cachy::{RememberOptions, Source};

use super::*;
use cachy::testing::faulty;

/// What the hooks of `repo` saw, as (operation, key, outcome).
type Seen = Arc<Mutex<Vec<(Operation, Option<String>, Outcome)>>>;

fn watch(repo: &Repository) -> Seen {
    let seen = Seen::default();
    let sink = Arc::clone(&seen);
    repo.on_event(move |event| {
        // Only the operations: which entries an in-process store drops is its own
        // business, checked by its own tests.
        if event.operation == Operation::Evict {
            return;
        }
        sink.lock()
            .unwrap()
            .push((event.operation, event.key.map(str::to_owned), event.outcome));
    });
    seen
}

fn taken(seen: &Seen) -> Vec<(Operation, Option<String>, Outcome)> {
    std::mem::take(&mut *seen.lock().unwrap())
}

fn event(
    operation: Operation,
    key: &str,
    outcome: Outcome,
) -> (Operation, Option<String>, Outcome) {
    (operation, Some(key.to_owned()), outcome)
}

async fn ok<T>(value: T) -> cachy::Result<T> {
    Ok(value)
}

/// With the store down, `remember_with`, `remember_entry` and `remember_many` return the
/// factory's value; each failure is an event of the operation that failed and counts as an
/// error, and the call's own event says the value was computed. Plain `remember` (the strict
/// Python cachy API) and `propagate_cache_errors` return the store's error instead.
pub async fn a_store_that_is_down_never_fails_a_resilient_remember(repo: &Repository) {
    let (repo, switch) = faulty(repo);
    let seen = watch(&repo);
    let options = RememberOptions::new(Duration::from_secs(60));
    switch.down();
    let value: i64 = repo
        .remember_with("k", &options, || ok(1))
        .await
        .expect("the factory's value, whatever the store");
    assert_eq!(value, 1);
    let unavailable = Outcome::Failed(ErrorKind::Unavailable);
    assert_eq!(
        taken(&seen),
        [
            event(Operation::Get, "k", unavailable),
            event(Operation::Put, "k", unavailable),
            event(Operation::Remember, "k", Outcome::Miss),
        ]
    );
    let stats = repo.stats();
    assert_eq!((stats.errors, stats.misses, stats.writes), (2, 1, 0));

    let entry = repo
        .remember_entry("e", &options, || ok(cachy::Computed::new(2i64)))
        .await
        .unwrap();
    assert_eq!((entry.value, entry.source), (2, Source::Computed));
    let many: Vec<Option<i64>> = repo
        .remember_many(&["m1", "m2"], &options, |missing| async move {
            Ok::<_, cachy::Error>(missing.into_iter().map(|key| (key, 3)).collect())
        })
        .await
        .unwrap();
    assert_eq!(many, [Some(3), Some(3)]);

    let strict = repo
        .remember("p", TEN_MINUTES, || ok(4i64))
        .await
        .expect_err("plain `remember` returns the store's error");
    assert_eq!(strict.kind(), ErrorKind::Unavailable, "{strict}");
    let propagated = repo
        .remember_with("k", &options.clone().propagate_cache_errors(), || ok(5i64))
        .await
        .expect_err("the caller asked for the store's errors");
    assert_eq!(propagated.kind(), ErrorKind::Unavailable, "{propagated}");

    // Reads back, writes still down: the value is computed, returned, and the write's
    // failure observed.
    switch.reads(true);
    taken(&seen);
    let value: i64 = repo.remember_with("w", &options, || ok(6)).await.unwrap();
    assert_eq!(value, 6);
    let events = taken(&seen);
    assert!(
        events.contains(&event(Operation::Put, "w", unavailable)),
        "{events:?}"
    );
    switch.up();
    let kept: Option<i64> = repo.get("w").await.unwrap();
    assert!(
        kept.is_none() || kept == Some(6),
        "nothing stored, or (a store with an in-process level) kept in this process: {kept:?}"
    );
    let value: i64 = repo.remember_with("x", &options, || ok(8)).await.unwrap();
    assert_eq!(value, 8);
    assert_eq!(
        taken(&seen),
        [
            event(
                Operation::Get,
                "w",
                if kept.is_some() {
                    Outcome::Hit
                } else {
                    Outcome::Miss
                }
            ),
            event(Operation::Remember, "x", Outcome::Computed),
        ],
        "computed and stored: one event"
    );
    assert_eq!(repo.get::<i64>("x").await.unwrap(), Some(8));
    taken(&seen);
    let many: Vec<Option<i64>> = repo
        .remember_many(&["x", "y"], &options, |missing| async move {
            Ok::<_, cachy::Error>(missing.into_iter().map(|key| (key, 9)).collect())
        })
        .await
        .unwrap();
    assert_eq!(many, [Some(8), Some(9)]);
    assert_eq!(
        taken(&seen),
        [
            event(Operation::Remember, "x", Outcome::Hit),
            event(Operation::Remember, "y", Outcome::Computed),
        ]
    );
}

/// An error type of the caller's own, as services have (cachy's errors convert into it).
#[derive(Debug)]
pub struct AppError(pub String);

impl From<cachy::Error> for AppError {
    fn from(e: cachy::Error) -> Self {
        AppError(e.to_string())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A cache failure is a cache failure whatever the caller's error type: counted in
/// `errors`, reported with its kind, never as the factory's.
pub async fn a_cache_failure_is_counted_as_one_whatever_the_error_type(repo: &Repository) {
    let (repo, switch) = faulty(repo);
    let seen = watch(&repo);
    switch.down();
    let strict: Result<i64, AppError> = repo.remember("p", TEN_MINUTES, || async { Ok(1) }).await;
    assert!(strict.is_err());
    let options = RememberOptions::new(Duration::from_secs(60)).propagate_cache_errors();
    let propagated: Result<i64, AppError> =
        repo.remember_with("q", &options, || async { Ok(1) }).await;
    assert!(propagated.is_err());
    let many: Result<Vec<Option<i64>>, AppError> = repo
        .remember_many(&["m"], &options, |_| async {
            Ok(std::collections::HashMap::new())
        })
        .await;
    assert!(many.is_err());
    let unavailable = Outcome::Failed(ErrorKind::Unavailable);
    assert_eq!(
        taken(&seen),
        [
            event(Operation::Remember, "p", unavailable),
            event(Operation::Remember, "q", unavailable),
            (Operation::Remember, None, unavailable),
        ]
    );
    let stats = repo.stats();
    assert_eq!((stats.errors, stats.factory_errors), (3, 0));
    switch.up();
    let failing: Result<i64, AppError> = repo
        .remember("f", TEN_MINUTES, || async {
            Err(AppError("the source".into()))
        })
        .await;
    assert!(failing.is_err());
    assert_eq!(
        taken(&seen),
        [event(Operation::Remember, "f", Outcome::FactoryFailed)]
    );
}

/// With the store down and the factory failing, the caller gets the factory's error (there
/// is nothing to fall back to), observed as a factory failure, not a cache error.
pub async fn a_store_and_a_source_both_down_give_the_source_error(repo: &Repository) {
    let (repo, switch) = faulty(repo);
    let seen = watch(&repo);
    switch.down();
    let options = RememberOptions::new(Duration::from_secs(60)).fail_safe(Duration::from_secs(60));
    let error = repo
        .remember_with("k", &options, || async {
            Err::<i64, _>(cachy::Error::new(
                ErrorKind::Backend,
                "the database is down",
            ))
        })
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("the database is down"),
        "{error}"
    );
    let events = taken(&seen);
    assert_eq!(
        events.last(),
        Some(&event(Operation::Remember, "k", Outcome::FactoryFailed)),
        "{events:?}"
    );
    assert_eq!(repo.stats().factory_errors, 1);
}

/// A stored value that no longer reads as the requested type (a struct changed by a
/// deploy) is recomputed and overwritten by every `remember`, observed as a failed read;
/// `get` still returns the typed error.
pub async fn a_value_that_no_longer_decodes_is_recomputed_and_overwritten(repo: &Repository) {
    let seen = watch(repo);
    let options = RememberOptions::new(Duration::from_secs(60));
    for key in ["with", "plain", "forever"] {
        repo.put(key, &"an older shape", TEN_MINUTES).await.unwrap();
    }
    let error = repo.get::<User>("with").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Deserialize, "{error}");
    taken(&seen);

    let user: User = repo
        .remember_with("with", &options, || ok(ann()))
        .await
        .unwrap();
    assert_eq!(user, ann());
    assert_eq!(
        taken(&seen),
        [
            event(
                Operation::Get,
                "with",
                Outcome::Failed(ErrorKind::Deserialize)
            ),
            event(Operation::Remember, "with", Outcome::Computed),
        ]
    );
    assert_eq!(
        repo.get::<User>("with").await.unwrap(),
        Some(ann()),
        "overwritten"
    );

    let user: User = repo
        .remember("plain", TEN_MINUTES, || ok(ann()))
        .await
        .unwrap();
    assert_eq!(user, ann());
    let user: User = repo
        .remember_forever("forever", || ok(ann()))
        .await
        .unwrap();
    assert_eq!(user, ann());
    assert_eq!(repo.get::<User>("forever").await.unwrap(), Some(ann()));
    assert_eq!(
        repo.stats().errors,
        4,
        "one failed `get` and three failed reads inside `remember`"
    );
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A value that cannot be encoded.
#[derive(Debug, PartialEq, serde::Deserialize)]
pub struct Unencodable(pub i64);

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be written",
        ))
    }
}

/// A value the serializer cannot write is returned by `remember_with` and its failure
/// observed as a failed write (an error says it is a serialization error); `put` returns
/// that error.
pub async fn a_value_that_cannot_be_encoded_is_a_failure_observed(repo: &Repository) {
    let seen = watch(repo);
    let options = RememberOptions::new(Duration::from_secs(60));
    for _ in 0..3 {
        let value = repo
            .remember_with("k", &options, || ok(Unencodable(1)))
            .await
            .unwrap();
        assert_eq!(value, Unencodable(1));
    }
    let serialize = Outcome::Failed(ErrorKind::Serialize);
    let events = taken(&seen);
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == event(Operation::Put, "k", serialize))
            .count(),
        3,
        "{events:?}"
    );
    assert_eq!(repo.stats().errors, 3);
    let error = repo
        .put("k", &Unencodable(1), TEN_MINUTES)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Serialize, "{error}");
    assert!(error.to_string().contains("serialized"), "{error}");
}

/// A fail-safe fallback kept for the throttle is never read as a live value: `get`, `has`
/// and `many` see nothing, and a `remember_with` that did not ask for fail-safe computes.
pub async fn a_fallback_is_never_fresh_to_get_has_many_or_remember(repo: &Repository) {
    let options = RememberOptions::new(Duration::from_millis(300))
        .fail_safe(Duration::from_secs(60))
        .fail_safe_throttle(Duration::from_secs(30));
    let first: i64 = repo.remember_with("k", &options, || ok(1)).await.unwrap();
    assert_eq!(first, 1);
    // Read while fresh: an in-process store keeps the decoded copy, which must stop
    // answering with the logical expiry.
    assert_eq!(
        repo.get_shared::<i64>("k").await.unwrap().as_deref(),
        Some(&1)
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stale = repo
        .remember_entry("k", &options, || async {
            Err::<cachy::Computed<i64>, _>(cachy::Error::new(ErrorKind::Backend, "down"))
        })
        .await
        .unwrap();
    assert_eq!((stale.value, stale.source), (1, Source::Stale));
    assert_eq!(repo.get::<i64>("k").await.unwrap(), None, "`get`");
    assert_eq!(
        repo.get_shared::<i64>("k").await.unwrap(),
        None,
        "`get_shared`"
    );
    assert!(!repo.has("k").await.unwrap(), "`has`");
    assert_eq!(repo.many::<i64>(&["k"]).await.unwrap(), [None], "`many`");
    let throttled = repo
        .remember_entry("k", &options, || ok(cachy::Computed::new(2i64)))
        .await
        .unwrap();
    assert_eq!(
        (throttled.value, throttled.source),
        (1, Source::Stale),
        "the throttle serves the fallback to a caller with fail-safe, as stale"
    );
    let strict = RememberOptions::new(Duration::from_secs(60));
    let fresh = repo
        .remember_entry("k", &strict, || ok(cachy::Computed::new(3i64)))
        .await
        .unwrap();
    assert_eq!(
        (fresh.value, fresh.source),
        (3, Source::Computed),
        "a caller without fail-safe never gets a fallback"
    );
}

/// The fail-safe window is the reader's: an envelope that claims a longer one (written by a
/// caller with other options, or crafted) is served only within the reader's window, and
/// kept again no longer than that.
pub async fn a_fallback_is_served_only_within_the_readers_window(repo: &Repository) {
    let long =
        RememberOptions::new(Duration::from_millis(200)).fail_safe(Duration::from_secs(3600));
    let _: i64 = repo.remember_with("k", &long, || ok(1)).await.unwrap();
    let stored = repo.store().get("k").await.unwrap().expect("an envelope");
    assert_eq!(&stored[..4], &[0xC1, b'c', b'y', 1]);
    let failing =
        || async { Err::<cachy::Computed<i64>, _>(cachy::Error::new(ErrorKind::Backend, "down")) };

    // Written in 1970 and fallback forever: a reader with a window of a minute refuses it.
    let mut crafted = stored.clone();
    crafted[4..12].copy_from_slice(&1_000u64.to_be_bytes());
    crafted[12..20].copy_from_slice(&0u64.to_be_bytes());
    crafted[20..28].copy_from_slice(&u64::MAX.to_be_bytes());
    repo.store().put("k", &crafted, Some(600)).await.unwrap();
    let short = RememberOptions::new(Duration::from_secs(1)).fail_safe(Duration::from_secs(60));
    let error = repo.remember_entry("k", &short, failing).await.unwrap_err();
    assert!(error.to_string().contains("down"), "{error}");

    // A fallback from the future (a clock ahead, or crafted): never served, the source asked.
    let mut future = stored.clone();
    let later = now_millis() + 10 * 24 * 3600 * 1000;
    future[4..12].copy_from_slice(&later.to_be_bytes());
    future[12..20].copy_from_slice(&later.to_be_bytes());
    future[20..28].copy_from_slice(&u64::MAX.to_be_bytes());
    future[28] = 1;
    repo.store().put("k", &future, Some(600)).await.unwrap();
    let computed = repo
        .remember_entry("k", &short, || ok(cachy::Computed::new(2i64)))
        .await
        .unwrap();
    assert_eq!((computed.value, computed.source), (2, Source::Computed));

    // Expired ten seconds ago, fallback forever: served, and kept for the throttle no longer
    // than what is left of the reader's window (50 s).
    let now = now_millis();
    crafted[4..12].copy_from_slice(&(now - 10_000).to_be_bytes());
    crafted[12..20].copy_from_slice(&(now - 11_000).to_be_bytes());
    repo.store().put("k", &crafted, Some(600)).await.unwrap();
    let served = repo.remember_entry("k", &short, failing).await.unwrap();
    assert_eq!((served.value, served.source), (1, Source::Stale));
    if let Some((_, cachy::Lifetime::Remaining(left))) =
        repo.store().get_with_lifetime("k").await.unwrap()
    {
        assert!(left <= Duration::from_secs(52), "kept for {left:?}");
    }
}

/// A value's fail-safe window counts from the end of its own lifetime (which the factory
/// may choose), also once a fallback has been re-stored for the throttle; and a value the
/// factory allows no window is never served stale.
pub async fn a_fallback_keeps_the_window_of_its_own_lifetime(repo: &Repository) {
    // The options' lifetime (100 ms) is never used: each value gives its own.
    let options = RememberOptions::new(Duration::from_millis(100))
        .fail_safe(Duration::from_millis(1000))
        .fail_safe_throttle(Duration::from_millis(200));
    let failing =
        || async { Err::<cachy::Computed<i64>, _>(cachy::Error::new(ErrorKind::Backend, "down")) };
    let long = || ok(cachy::Computed::new(1i64).ttl(Duration::from_millis(1000)));
    let computed = repo.remember_entry("k", &options, long).await.unwrap();
    let written = Instant::now();
    assert_eq!(computed.source, Source::Computed);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale = repo.remember_entry("k", &options, failing).await.unwrap();
    assert_eq!((stale.value, stale.source), (1, Source::Stale));
    // After the throttle, the re-stored fallback is still within 1 s of the value's own
    // expiry (at 1 s), though past the options' lifetime plus the window (1.1 s).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = repo.remember_entry("k", &options, failing).await.unwrap();
    assert_eq!((again.value, again.source), (1, Source::Stale));
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(written.elapsed())).await;
    let error = repo
        .remember_entry("k", &options, failing)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("down"), "{error}");

    let never_stale = || {
        ok(cachy::Computed::new(2i64)
            .ttl(Duration::from_millis(300))
            .fail_safe(Duration::ZERO))
    };
    repo.remember_entry("n", &options, never_stale)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let error = repo
        .remember_entry("n", &options, failing)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("down"), "{error}");
}
