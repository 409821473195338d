//! Counters: increment and decrement, expiring counters, overflow and concurrency.

use super::*;

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
