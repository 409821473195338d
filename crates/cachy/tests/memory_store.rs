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
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    // moka applies evictions in batches; a read drives its housekeeping.
    let mut stored = usize::MAX;
    for _ in 0..50 {
        stored = repo
            .many::<i64>(&keys)
            .await
            .unwrap()
            .iter()
            .flatten()
            .count();
        if stored <= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    // moka applies evictions in batches; a read drives its housekeeping.
    let mut stored = usize::MAX;
    for _ in 0..50 {
        stored = repo
            .many::<Vec<u8>>(&keys)
            .await
            .unwrap()
            .iter()
            .flatten()
            .count();
        if stored <= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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
