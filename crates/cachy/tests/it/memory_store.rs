//! The behaviour suite on the memory (`dict`) store, and its own extras.

use cachy::CacheManager;
use cachy_testkit::Fixture;

async fn memory() -> Fixture {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": { "dict": { "driver": "dict" } }
    }))
    .unwrap();
    Fixture::new(manager.store("dict").unwrap(), ())
}

cachy_testkit::behaviour_suite!(memory);

/// How many of the keys `k0` to `k{written - 1}` are stored: evictions happen within each
/// write, so this is exact as soon as the writes returned.
async fn stored_after_evictions<T: serde::de::DeserializeOwned>(
    repo: &cachy::Repository,
    written: usize,
) -> usize {
    let keys: Vec<String> = (0..written).map(|i| format!("k{i}")).collect();
    repo.many::<T>(&keys)
        .await
        .unwrap()
        .iter()
        .flatten()
        .count()
}

#[tokio::test]
async fn a_bounded_memory_store_evicts_beyond_max_entries() {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": { "small": { "driver": "memory", "max_entries": 10 } }
    }))
    .unwrap();
    let repo = manager.store("small").unwrap();
    for i in 0..200 {
        repo.put(&format!("k{i}"), &i, 10).await.unwrap();
    }
    let stored = stored_after_evictions::<i64>(&repo, 200).await;
    assert_eq!(stored, 10, "entries kept with max_entries = 10");
}

#[tokio::test]
async fn a_memory_store_bounded_by_bytes_keeps_within_them() {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": { "small": { "driver": "memory", "max_bytes": 10_000 } }
    }))
    .unwrap();
    let repo = manager.store("small").unwrap();
    let value = vec![7u8; 1000];
    for i in 0..200 {
        repo.put(&format!("k{i}"), &value, 10).await.unwrap();
    }
    let stored = stored_after_evictions::<Vec<u8>>(&repo, 200).await;
    // Each entry weighs its key, its ~1 KiB value and about 200 bytes of bookkeeping: 8 fit
    // in 10,000 bytes.
    assert_eq!(stored, 8, "values of ~1 KiB kept with max_bytes = 10000");
}

#[test]
fn max_entries_and_max_bytes_together_are_an_error_naming_the_field() {
    let error = CacheManager::from_value(serde_json::json!({
        "stores": { "m": { "driver": "memory", "max_entries": 10, "max_bytes": 10_000 } }
    }))
    .unwrap()
    .store("m")
    .unwrap_err();
    assert_eq!(error.field(), Some("stores.m.max_bytes"), "{error}");
}
