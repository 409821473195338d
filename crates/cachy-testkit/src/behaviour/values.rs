//! Values: get, put, add, forget, lifetimes, many keys, odd keys and wrong types.

use super::*;

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
    // Inside a value too (pickle writes these as LONG1 of nine bytes).
    let inside = (u64::MAX, vec![1u64 << 63, 5], i64::MIN);
    repo.put("u64s", &inside, TEN_MINUTES).await.unwrap();
    assert_eq!(
        repo.get::<(u64, Vec<u64>, i64)>("u64s").await.unwrap(),
        Some(inside)
    );
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

/// A write its caller gave up on (a timeout, an aborted task) never lands after the caller's
/// next write of the key: the later value stays. Of 4 MiB, so that the given-up write still
/// has work to do when the later one is made.
pub async fn a_write_given_up_on_never_lands_after_a_later_one(repo: &Repository) {
    let big = "x".repeat(4 * 1024 * 1024);
    for round in 0..5 {
        let given_up = repo.put("given-up", &big, TEN_MINUTES);
        // Polled once, then dropped.
        let _ = tokio::time::timeout(Duration::ZERO, given_up).await;
        repo.put("given-up", &round, TEN_MINUTES).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(repo.get::<i32>("given-up").await.unwrap(), Some(4));
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

/// `get_shared` answers what `get` does, read after read: a missing key, a value, a value
/// replaced, removed or expired, and a read of the wrong type (an error, the value kept)
/// after the value was read as its own type.
pub async fn get_shared_answers_what_get_does(repo: &Repository) {
    assert_eq!(repo.get_shared::<User>("user").await.unwrap(), None);
    repo.put("user", &ann(), TEN_MINUTES).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            repo.get_shared::<User>("user").await.unwrap().as_deref(),
            Some(&ann())
        );
    }
    let err = repo.get_shared::<Vec<i64>>("user").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Deserialize, "{err}");
    assert_eq!(err.key(), Some("user"));
    let err = repo.get::<Vec<i64>>("user").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Deserialize, "{err}");
    assert_eq!(repo.get::<User>("user").await.unwrap(), Some(ann()));

    let renamed = User {
        name: "Bob".to_owned(),
        ..ann()
    };
    repo.put("user", &renamed, TEN_MINUTES).await.unwrap();
    assert_eq!(
        repo.get_shared::<User>("user").await.unwrap().as_deref(),
        Some(&renamed),
        "a put replaces what a read kept"
    );
    repo.put("user", "text", TEN_MINUTES).await.unwrap();
    assert_eq!(
        repo.get_shared::<User>("user").await.unwrap_err().kind(),
        ErrorKind::Deserialize,
        "a value of another type written over it"
    );
    assert_eq!(
        repo.get_shared::<String>("user")
            .await
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("text")
    );
    assert!(repo.forget("user").await.unwrap());
    assert_eq!(repo.get_shared::<String>("user").await.unwrap(), None);

    repo.put("short", &5i64, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        repo.get_shared::<i64>("short").await.unwrap().as_deref(),
        Some(&5)
    );
    wait_until_missing(repo, "short", Duration::from_secs(5)).await;
    assert_eq!(
        repo.get_shared::<i64>("short").await.unwrap(),
        None,
        "expired"
    );
}
