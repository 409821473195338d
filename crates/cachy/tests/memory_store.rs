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
