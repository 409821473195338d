//! One function per behaviour of the store/repository contract. Each takes a repository over
//! an empty store and panics (with a message naming the behaviour) if the store breaks it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use cachy::{ErrorKind, Expiry, Repository};
use serde::{Deserialize, Serialize};

/// A small struct, as users cache them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// A number.
    pub id: u64,
    /// Some text.
    pub name: String,
    /// A list.
    pub tags: Vec<String>,
    /// An optional float.
    pub score: Option<f64>,
}

fn ann() -> User {
    User {
        id: 7,
        name: "Ann Émile 🦀".to_owned(),
        tags: vec!["people".to_owned(), "authors".to_owned()],
        score: Some(1.5),
    }
}

const TEN_MINUTES: i64 = 10;

/// Wait, polling, until `key` is gone; panics after `limit`.
async fn wait_until_missing(repo: &Repository, key: &str, limit: Duration) {
    let start = Instant::now();
    while repo.has(key).await.unwrap() {
        assert!(
            start.elapsed() < limit,
            "{key:?} was still stored {limit:?} after it should have expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `get` of a key never stored is `None`.
pub async fn get_returns_none_for_a_missing_key(repo: &Repository) {
    assert_eq!(repo.get::<String>("missing").await.unwrap(), None);
}

/// `put` then `get` gives back the value.
pub async fn put_then_get_returns_the_value(repo: &Repository) {
    repo.put("foo", "bar", TEN_MINUTES).await.unwrap();
    assert_eq!(
        repo.get::<String>("foo").await.unwrap().as_deref(),
        Some("bar")
    );
    repo.put("user", &ann(), TEN_MINUTES).await.unwrap();
    assert_eq!(repo.get::<User>("user").await.unwrap(), Some(ann()));
}

/// A second `put` replaces the first value.
pub async fn put_replaces_the_previous_value(repo: &Repository) {
    repo.put("foo", "one", TEN_MINUTES).await.unwrap();
    repo.put("foo", "two", TEN_MINUTES).await.unwrap();
    assert_eq!(
        repo.get::<String>("foo").await.unwrap().as_deref(),
        Some("two")
    );
}

/// Unicode and empty strings, floats, bools, unit, lists, nested maps, empty containers,
/// options and bytes all come back equal.
pub async fn values_of_many_types_round_trip(repo: &Repository) {
    async fn round_trip<T>(repo: &Repository, key: &str, value: T)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        repo.put(key, &value, TEN_MINUTES).await.unwrap();
        assert_eq!(repo.get::<T>(key).await.unwrap(), Some(value), "key {key}");
    }
    round_trip(repo, "unicode", "żółć 日本 🦀".to_owned()).await;
    round_trip(repo, "empty", String::new()).await;
    round_trip(repo, "float", -2.5e10f64).await;
    round_trip(repo, "true", true).await;
    round_trip(repo, "false", false).await;
    round_trip(repo, "list", vec![1.5f64, 2.5]).await;
    round_trip(repo, "empty-list", Vec::<String>::new()).await;
    let nested: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::from([(
        "a".to_owned(),
        BTreeMap::from([("b".to_owned(), vec!["c".to_owned()])]),
    )]);
    round_trip(repo, "nested", nested).await;
    round_trip(repo, "empty-map", BTreeMap::<String, String>::new()).await;
    round_trip(repo, "none", Option::<String>::None).await;
    round_trip(repo, "some", Some("x".to_owned())).await;
    round_trip(repo, "tuple", ("a".to_owned(), true)).await;
    round_trip(repo, "bytes", serde_bytes::ByteBuf::from(vec![0u8, 1, 255])).await;
}

/// Integers (stored as decimal text) round trip at the edges of their types, also inside
/// `Option` and read as a float.
pub async fn integers_round_trip_at_the_edges(repo: &Repository) {
    for value in [0i64, -1, 42, i64::MIN, i64::MAX, 1 << 40] {
        repo.put("int", &value, TEN_MINUTES).await.unwrap();
        assert_eq!(repo.get::<i64>("int").await.unwrap(), Some(value));
    }
    repo.put("u64", &u64::MAX, TEN_MINUTES).await.unwrap();
    assert_eq!(repo.get::<u64>("u64").await.unwrap(), Some(u64::MAX));
    repo.put("opt", &Some(5u8), TEN_MINUTES).await.unwrap();
    assert_eq!(repo.get::<Option<u8>>("opt").await.unwrap(), Some(Some(5)));
    assert_eq!(repo.get::<f64>("opt").await.unwrap(), Some(5.0));
}

/// A string that looks like a number is still a string.
pub async fn integer_like_strings_stay_strings(repo: &Repository) {
    repo.put("s", "42", TEN_MINUTES).await.unwrap();
    assert_eq!(
        repo.get::<String>("s").await.unwrap().as_deref(),
        Some("42")
    );
}

/// `get_or` and friends return the default (calling the closure) only on a miss.
pub async fn get_or_returns_the_default_only_on_a_miss(repo: &Repository) {
    assert_eq!(
        repo.get_or("k", "default".to_owned()).await.unwrap(),
        "default"
    );
    assert_eq!(
        repo.get_or_else("k", || "lazy".to_owned()).await.unwrap(),
        "lazy"
    );
    let from_async = repo
        .get_or_else_async("k", || async { "async".to_owned() })
        .await
        .unwrap();
    assert_eq!(from_async, "async");
    assert!(
        !repo.has("k").await.unwrap(),
        "a default must not be stored"
    );
    repo.put("k", "stored", TEN_MINUTES).await.unwrap();
    let hit = repo
        .get_or_else("k", || -> String { panic!("default computed on a hit") })
        .await
        .unwrap();
    assert_eq!(hit, "stored");
}

/// `has` is true exactly while a value is stored.
pub async fn has_reports_whether_a_key_is_stored(repo: &Repository) {
    assert!(!repo.has("k").await.unwrap());
    repo.put("k", &1, TEN_MINUTES).await.unwrap();
    assert!(repo.has("k").await.unwrap());
    repo.forget("k").await.unwrap();
    assert!(!repo.has("k").await.unwrap());
}

/// `pull` returns the value and removes it; on a miss it returns `None`.
pub async fn pull_returns_the_value_and_removes_it(repo: &Repository) {
    repo.put("k", "v", TEN_MINUTES).await.unwrap();
    assert_eq!(
        repo.pull::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
    assert!(!repo.has("k").await.unwrap());
    assert_eq!(repo.pull::<String>("k").await.unwrap(), None);
}

/// An integer lifetime is whole minutes, as in Python cachy.
pub async fn put_with_minutes_keeps_the_value(repo: &Repository) {
    repo.put("k", "v", 1).await.unwrap();
    repo.put("k2", "v", Expiry::Minutes(1)).await.unwrap();
    assert!(repo.has("k").await.unwrap());
    assert!(repo.has("k2").await.unwrap());
}

/// A value put for one second is gone soon after.
pub async fn put_with_a_duration_expires_after_it(repo: &Repository) {
    repo.put("short", "v", Duration::from_millis(1))
        .await
        .unwrap();
    repo.put("long", "v", Duration::from_secs(600))
        .await
        .unwrap();
    wait_until_missing(repo, "short", Duration::from_secs(4)).await;
    assert!(repo.has("long").await.unwrap());
}

/// A zero or negative lifetime stores nothing and removes the previous value.
pub async fn put_with_zero_or_negative_ttl_stores_nothing_and_removes(repo: &Repository) {
    for (i, expiry) in [
        Expiry::Minutes(0),
        Expiry::Minutes(-5),
        Expiry::Seconds(0),
        Expiry::After(Duration::ZERO),
    ]
    .into_iter()
    .enumerate()
    {
        repo.put("k", "old", TEN_MINUTES).await.unwrap();
        repo.put("k", "new", expiry).await.unwrap();
        assert!(!repo.has("k").await.unwrap(), "case {i}: {expiry:?}");
    }
}

/// An absolute time already past stores nothing and removes the previous value.
pub async fn put_with_a_past_time_stores_nothing_and_removes(repo: &Repository) {
    repo.put("k", "old", TEN_MINUTES).await.unwrap();
    let past = SystemTime::now() - Duration::from_secs(60);
    repo.put("k", "new", past).await.unwrap();
    assert!(!repo.has("k").await.unwrap());
}

/// An absolute time in the future keeps the value.
pub async fn put_with_a_future_time_keeps_the_value(repo: &Repository) {
    let future = SystemTime::now() + Duration::from_secs(600);
    repo.put("k", "v", future).await.unwrap();
    assert_eq!(repo.get::<String>("k").await.unwrap().as_deref(), Some("v"));
}

/// A lifetime too long for any backend (`Duration::MAX`, `i64::MAX` minutes) keeps the value
/// instead of failing or expiring at once.
pub async fn a_very_long_lifetime_keeps_the_value(repo: &Repository) {
    repo.put("k", "long", Duration::MAX).await.unwrap();
    assert_eq!(
        repo.get::<String>("k").await.unwrap().as_deref(),
        Some("long")
    );
    repo.put("m", "long", Expiry::Minutes(i64::MAX))
        .await
        .unwrap();
    assert_eq!(
        repo.get::<String>("m").await.unwrap().as_deref(),
        Some("long")
    );
    assert!(repo.add("a", "long", Duration::MAX).await.unwrap());
}

/// `add` stores and returns true only when the key holds nothing.
pub async fn add_stores_only_when_the_key_is_missing(repo: &Repository) {
    assert!(repo.add("k", "first", TEN_MINUTES).await.unwrap());
    assert!(!repo.add("k", "second", TEN_MINUTES).await.unwrap());
    assert_eq!(
        repo.get::<String>("k").await.unwrap().as_deref(),
        Some("first")
    );
}

/// An expired value does not block `add`.
pub async fn add_succeeds_after_the_previous_value_expired(repo: &Repository) {
    repo.put("k", "old", Duration::from_secs(1)).await.unwrap();
    wait_until_missing(repo, "k", Duration::from_secs(4)).await;
    assert!(repo.add("k", "new", TEN_MINUTES).await.unwrap());
    assert_eq!(
        repo.get::<String>("k").await.unwrap().as_deref(),
        Some("new")
    );
}

/// `add` with a zero lifetime adds nothing and leaves an existing value alone.
pub async fn add_with_zero_ttl_adds_nothing(repo: &Repository) {
    assert!(!repo.add("k", "v", 0).await.unwrap());
    assert!(!repo.has("k").await.unwrap());
    repo.put("k", "kept", TEN_MINUTES).await.unwrap();
    assert!(!repo.add("k", "v", 0).await.unwrap());
    assert_eq!(
        repo.get::<String>("k").await.unwrap().as_deref(),
        Some("kept")
    );
}

/// Of many tasks racing `add` on one key, exactly one wins, and its value is stored.
pub async fn concurrent_adds_have_exactly_one_winner(repo: &Repository) {
    for round in 0..3 {
        let key = format!("race-{round}");
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let repo = repo.clone();
                let key = key.clone();
                tokio::spawn(async move { (i, repo.add(&key, &format!("task {i}"), 10).await) })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (i, added) = task.await.unwrap();
            if added.unwrap() {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = repo.get::<String>(&key).await.unwrap();
        assert_eq!(stored, Some(format!("task {}", winners[0])));
    }
}

/// `forever` keeps a value until it is forgotten.
pub async fn forever_keeps_the_value_without_expiry(repo: &Repository) {
    repo.forever("k", &ann()).await.unwrap();
    assert_eq!(repo.get::<User>("k").await.unwrap(), Some(ann()));
    assert!(repo.forget("k").await.unwrap());
    assert!(!repo.has("k").await.unwrap());
}

/// `forget` is true when it removed something and false otherwise.
pub async fn forget_reports_whether_something_was_removed(repo: &Repository) {
    assert!(!repo.forget("k").await.unwrap());
    repo.put("k", "v", TEN_MINUTES).await.unwrap();
    assert!(repo.forget("k").await.unwrap());
    assert!(!repo.forget("k").await.unwrap());
}

/// A missing counter starts at 0.
pub async fn increment_starts_a_missing_counter_at_zero(repo: &Repository) {
    assert_eq!(repo.increment("hits").await.unwrap(), 1);
    assert_eq!(repo.increment("hits").await.unwrap(), 2);
    assert_eq!(repo.get::<i64>("hits").await.unwrap(), Some(2));
    assert_eq!(repo.decrement("down").await.unwrap(), -1);
}

/// Amounts are applied, and counters go below zero.
pub async fn increment_and_decrement_by_amounts_go_below_zero(repo: &Repository) {
    assert_eq!(repo.increment_by("c", 3).await.unwrap(), 3);
    assert_eq!(repo.decrement_by("c", 5).await.unwrap(), -2);
    assert_eq!(repo.increment_by("c", -3).await.unwrap(), -5);
    assert_eq!(repo.get::<i64>("c").await.unwrap(), Some(-5));
}

/// An integer stored with `put` can be incremented (Python cachy's Redis store fails here).
pub async fn increment_works_on_an_integer_stored_with_put(repo: &Repository) {
    repo.put("c", &41, TEN_MINUTES).await.unwrap();
    assert_eq!(repo.increment("c").await.unwrap(), 42);
    assert_eq!(repo.get::<u32>("c").await.unwrap(), Some(42));
}

/// Incrementing keeps the item's TTL: it still expires.
pub async fn increment_keeps_the_existing_ttl(repo: &Repository) {
    repo.put("c", &1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(repo.increment("c").await.unwrap(), 2);
    wait_until_missing(repo, "c", Duration::from_secs(5)).await;
}

/// `increment_expiring` creates a missing counter with its lifetime, atomically: of many
/// concurrent first increments none is lost, and the counter then expires.
pub async fn an_expiring_counter_is_created_once_with_its_lifetime(repo: &Repository) {
    let window = Duration::from_secs(2);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.increment_expiring("window", 1, window).await })
        })
        .collect();
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=20).collect::<Vec<i64>>(),
        "every increment counted once"
    );
    assert_eq!(
        repo.increment_expiring("window", 5, TEN_MINUTES)
            .await
            .unwrap(),
        25
    );
    wait_until_missing(repo, "window", Duration::from_secs(5)).await;
    // An existing counter keeps its own lifetime; a zero lifetime is an error.
    repo.put("kept", &1, TEN_MINUTES).await.unwrap();
    assert_eq!(repo.increment_expiring("kept", 1, window).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(repo.get::<i64>("kept").await.unwrap(), Some(2));
    let error = repo.increment_expiring("zero", 1, 0).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    assert!(!repo.has("zero").await.unwrap());
}

/// Incrementing text is a `NotAnInteger` error, and the text stays.
pub async fn increment_of_a_non_integer_is_an_error_and_keeps_the_value(repo: &Repository) {
    repo.put("text", "abc", TEN_MINUTES).await.unwrap();
    let err = repo.increment("text").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAnInteger, "{err}");
    assert_eq!(err.key(), Some("text"));
    assert_eq!(
        repo.get::<String>("text").await.unwrap().as_deref(),
        Some("abc")
    );
    repo.put("float", &1.5, TEN_MINUTES).await.unwrap();
    assert_eq!(
        repo.decrement("float").await.unwrap_err().kind(),
        ErrorKind::NotAnInteger
    );
}

/// An increment past the 64-bit range is an `Overflow` error, and the counter stays.
pub async fn an_overflowing_increment_is_an_error_and_keeps_the_counter(repo: &Repository) {
    repo.forever("big", &(i64::MAX - 1)).await.unwrap();
    let err = repo.increment_by("big", 2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overflow, "{err}");
    assert!(!err.is_temporary());
    assert_eq!(repo.get::<i64>("big").await.unwrap(), Some(i64::MAX - 1));
    assert_eq!(repo.increment("big").await.unwrap(), i64::MAX);
    repo.forever("small", &(i64::MIN + 1)).await.unwrap();
    let err = repo.decrement_by("small", 2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overflow, "{err}");
    assert_eq!(repo.get::<i64>("small").await.unwrap(), Some(i64::MIN + 1));
}

/// Many tasks incrementing one counter lose no update.
pub async fn concurrent_increments_lose_nothing(repo: &Repository) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    repo.increment("counter").await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(repo.get::<i64>("counter").await.unwrap(), Some(400));
}

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

/// `many` returns one entry per key, in order, `None` for misses.
pub async fn many_returns_values_in_key_order(repo: &Repository) {
    repo.put("a", "1", TEN_MINUTES).await.unwrap();
    repo.put("c", "3", TEN_MINUTES).await.unwrap();
    let values: Vec<Option<String>> = repo.many(&["c", "b", "a"]).await.unwrap();
    assert_eq!(values, [Some("3".to_owned()), None, Some("1".to_owned())]);
    assert!(
        repo.many::<String>(&[] as &[&str])
            .await
            .unwrap()
            .is_empty()
    );
    let repeated: Vec<Option<String>> = repo.many(&["a", "a"]).await.unwrap();
    assert_eq!(
        repeated,
        [Some("1".to_owned()), Some("1".to_owned())],
        "a key asked twice"
    );
}

/// `put_many` stores every pair; with a zero lifetime it removes them.
pub async fn put_many_stores_every_item(repo: &Repository) {
    let items: Vec<(String, User)> = (0..20).map(|i| (format!("user:{i}"), ann())).collect();
    repo.put_many(&items, TEN_MINUTES).await.unwrap();
    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    let values: Vec<Option<User>> = repo.many(&keys).await.unwrap();
    assert!(values.iter().all(|v| v.as_ref() == Some(&ann())));
    repo.put_many(&items, 0).await.unwrap();
    assert!(!repo.has("user:3").await.unwrap());
}

/// `flush` removes every item.
pub async fn flush_removes_every_item(repo: &Repository) {
    for i in 0..10 {
        repo.put(&format!("k{i}"), &i, TEN_MINUTES).await.unwrap();
    }
    repo.forever("forever", "v").await.unwrap();
    repo.flush().await.unwrap();
    for i in 0..10 {
        assert!(!repo.has(&format!("k{i}")).await.unwrap());
    }
    assert!(!repo.has("forever").await.unwrap());
    repo.put("after", "v", TEN_MINUTES).await.unwrap();
    assert!(
        repo.has("after").await.unwrap(),
        "the store works after a flush"
    );
}

/// Unicode, empty, long, and whitespace/control/path-like keys are distinct and work.
pub async fn odd_keys_are_distinct_and_round_trip(repo: &Repository) {
    let long = "k".repeat(1000);
    let keys = [
        "",
        " ",
        "with space",
        "tab\tnew\nline\r",
        "nul\0byte",
        "../../etc/passwd",
        "a/b\\c",
        "ключ-日本-🦀",
        "x:y|z*?",
        long.as_str(),
        "K",
        "k",
    ];
    for (i, key) in keys.iter().enumerate() {
        repo.put(key, &format!("value {i}"), TEN_MINUTES)
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            repo.get::<String>(key).await.unwrap(),
            Some(format!("value {i}")),
            "key {key:?}"
        );
    }
    assert!(
        repo.add("", "again", TEN_MINUTES)
            .await
            .is_ok_and(|added| !added)
    );
    assert_eq!(
        repo.increment(&long).await.unwrap_err().kind(),
        ErrorKind::NotAnInteger
    );
    assert!(repo.forget(&long).await.unwrap());
}

/// A 1 MiB value round trips intact.
pub async fn a_one_mebibyte_value_round_trips(repo: &Repository) {
    let big: String = (0..1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    repo.put("big", &big, TEN_MINUTES).await.unwrap();
    assert_eq!(repo.get::<String>("big").await.unwrap(), Some(big));
}

/// Reading a value as another type is a `Deserialize` error naming the key, and the value
/// stays readable as its own type.
pub async fn reading_the_wrong_type_is_an_error_and_keeps_the_value(repo: &Repository) {
    repo.put("user", &ann(), TEN_MINUTES).await.unwrap();
    let err = repo.get::<Vec<i64>>("user").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Deserialize, "{err}");
    assert_eq!(err.key(), Some("user"));
    assert_eq!(err.store(), Some(repo.name()));
    assert_eq!(repo.get::<User>("user").await.unwrap(), Some(ann()));
    repo.put("n", &5, TEN_MINUTES).await.unwrap();
    assert_eq!(
        repo.get::<String>("n").await.unwrap_err().kind(),
        ErrorKind::Deserialize
    );
    assert_eq!(
        repo.get::<bool>("n").await.unwrap_err().kind(),
        ErrorKind::Deserialize
    );
}

/// Python cachy's documented example: flushing `people` and `authors` removes John (people, artists) and
/// Anne (people, authors).
pub async fn tags_flushing_people_and_authors_removes_john_and_anne(repo: &Repository) {
    repo.tags(("people", "artists"))
        .put("John", &ann(), TEN_MINUTES)
        .await
        .unwrap();
    repo.tags(["people", "authors"])
        .put("Anne", "anne", TEN_MINUTES)
        .await
        .unwrap();
    assert_eq!(
        repo.tags(("people", "artists"))
            .get::<User>("John")
            .await
            .unwrap(),
        Some(ann())
    );
    assert_eq!(
        repo.tags(("people", "authors"))
            .get::<String>("Anne")
            .await
            .unwrap()
            .as_deref(),
        Some("anne")
    );
    repo.tags(("people", "authors")).flush().await.unwrap();
    assert_eq!(
        repo.tags(("people", "artists"))
            .get::<User>("John")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repo.tags(("people", "authors"))
            .get::<String>("Anne")
            .await
            .unwrap(),
        None
    );
}

/// Python cachy's documented example: flushing `authors` alone removes Anne but not John.
pub async fn tags_flushing_authors_keeps_john(repo: &Repository) {
    repo.tags(("people", "artists"))
        .put("John", "john", TEN_MINUTES)
        .await
        .unwrap();
    repo.tags(("people", "authors"))
        .put("Anne", "anne", TEN_MINUTES)
        .await
        .unwrap();
    repo.tags("authors").flush().await.unwrap();
    assert_eq!(
        repo.tags(("people", "artists"))
            .get::<String>("John")
            .await
            .unwrap()
            .as_deref(),
        Some("john")
    );
    assert_eq!(
        repo.tags(("people", "authors"))
            .get::<String>("Anne")
            .await
            .unwrap(),
        None
    );
}

/// Tagged items live apart from untagged ones and from other tag sets (order included).
pub async fn tagged_items_are_apart_from_untagged_and_other_tags(repo: &Repository) {
    repo.put("k", "plain", TEN_MINUTES).await.unwrap();
    repo.tags(("a", "b"))
        .put("k", "ab", TEN_MINUTES)
        .await
        .unwrap();
    repo.tags(("b", "a"))
        .put("k", "ba", TEN_MINUTES)
        .await
        .unwrap();
    assert_eq!(
        repo.get::<String>("k").await.unwrap().as_deref(),
        Some("plain")
    );
    assert_eq!(
        repo.tags(("a", "b"))
            .get::<String>("k")
            .await
            .unwrap()
            .as_deref(),
        Some("ab")
    );
    assert_eq!(
        repo.tags(vec!["b", "a"])
            .get::<String>("k")
            .await
            .unwrap()
            .as_deref(),
        Some("ba")
    );
    repo.tags("a").flush().await.unwrap();
    assert_eq!(
        repo.get::<String>("k").await.unwrap().as_deref(),
        Some("plain"),
        "untagged stays"
    );
}

/// The whole repository API works under tags, and a flush invalidates forever items too.
pub async fn every_method_works_under_tags(repo: &Repository) {
    let tagged = repo.tags(("t1", "t2"));
    assert!(tagged.add("added", "v", TEN_MINUTES).await.unwrap());
    assert!(!tagged.add("added", "w", TEN_MINUTES).await.unwrap());
    assert_eq!(tagged.increment_by("n", 5).await.unwrap(), 5);
    assert_eq!(tagged.decrement("n").await.unwrap(), 4);
    tagged.forever("forever", &ann()).await.unwrap();
    let remembered: u32 = tagged
        .remember("remembered", TEN_MINUTES, || async {
            Ok::<_, cachy::Error>(7)
        })
        .await
        .unwrap();
    assert_eq!(remembered, 7);
    let remembered_forever: u32 = tagged
        .remember_forever("remembered-forever", || async { Ok::<_, cachy::Error>(8) })
        .await
        .unwrap();
    assert_eq!(remembered_forever, 8);
    tagged
        .put_many(&[("m1", 1), ("m2", 2)], TEN_MINUTES)
        .await
        .unwrap();
    assert_eq!(
        tagged.many::<i32>(&["m1", "x", "m2"]).await.unwrap(),
        [Some(1), None, Some(2)]
    );
    assert!(tagged.has("added").await.unwrap());
    assert_eq!(tagged.get_or("x", 3).await.unwrap(), 3);
    assert_eq!(
        tagged.pull::<String>("added").await.unwrap().as_deref(),
        Some("v")
    );
    assert!(!tagged.forget("added").await.unwrap());
    assert!(
        !repo.has("forever").await.unwrap(),
        "tagged keys are namespaced"
    );
    tagged.flush().await.unwrap();
    for key in ["n", "forever", "remembered", "remembered-forever", "m1"] {
        assert!(!tagged.has(key).await.unwrap(), "{key} survived the flush");
    }
    let after = repo.tags(("t1", "t2"));
    after.put("new", "v", TEN_MINUTES).await.unwrap();
    assert!(after.has("new").await.unwrap(), "tags work after a flush");
}

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
        Some(1),
        "`get` sees the fallback"
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
