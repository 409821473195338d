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

/// How many of the keys `k0` to `k{written - 1}` are still stored, once at most `bound` are
/// or after a second of waiting: moka applies evictions in batches, and a read drives its
/// housekeeping.
async fn stored_after_evictions<T: serde::de::DeserializeOwned>(
    repo: &cachy::Repository,
    written: usize,
    bound: usize,
) -> usize {
    let keys: Vec<String> = (0..written).map(|i| format!("k{i}")).collect();
    let mut stored = usize::MAX;
    for _ in 0..50 {
        stored = repo
            .many::<T>(&keys)
            .await
            .unwrap()
            .iter()
            .flatten()
            .count();
        if stored <= bound {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stored
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
    let stored = stored_after_evictions::<i64>(&repo, 200, 10).await;
    assert!(stored <= 10, "{stored} entries kept with max_entries = 10");
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
    let stored = stored_after_evictions::<Vec<u8>>(&repo, 200, 10).await;
    // Each entry weighs its key and its ~1 KiB value: at most 9 fit in 10,000 bytes.
    assert!(
        stored <= 10,
        "{stored} values of ~1 KiB kept with max_bytes = 10000"
    );
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
