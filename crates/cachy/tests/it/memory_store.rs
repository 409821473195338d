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

/// A value read again with `get_shared` as the same type is the copy the first read decoded
/// (the same allocation), on the memory store and on a hybrid store's first level; a write
/// or another serializer never gets that copy.
#[tokio::test]
async fn get_shared_decodes_once_per_stored_value() {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": {
            "dict": { "driver": "dict" },
            "pickled": { "driver": "dict", "serializer": "pickle" },
        }
    }))
    .unwrap();
    for name in ["dict", "pickled"] {
        let repo = manager.store(name).unwrap();
        repo.put("k", &vec!["a".to_owned(), "b".to_owned()], 10)
            .await
            .unwrap();
        let first = repo.get_shared::<Vec<String>>("k").await.unwrap().unwrap();
        let again = repo.get_shared::<Vec<String>>("k").await.unwrap().unwrap();
        assert!(
            std::sync::Arc::ptr_eq(&first, &again),
            "{name}: decoded again"
        );
        repo.put("k", &vec!["c".to_owned()], 10).await.unwrap();
        let written = repo.get_shared::<Vec<String>>("k").await.unwrap().unwrap();
        assert_eq!(*written, ["c"], "{name}");
    }

    // Two repositories over one store, with serializers that read differently: the copy
    // one of them kept is never the other's answer.
    let store = manager.store("dict").unwrap().store().clone();
    let msgpack =
        cachy::Repository::new("m", store.clone(), cachy::serializer::Serializer::msgpack());
    let json = cachy::Repository::new("j", store, cachy::serializer::Serializer::json());
    msgpack.put("shared", &7i64, 10).await.unwrap();
    assert_eq!(
        msgpack
            .get_shared::<i64>("shared")
            .await
            .unwrap()
            .as_deref(),
        Some(&7)
    );
    msgpack.put("text", "x", 10).await.unwrap();
    assert_eq!(
        msgpack
            .get_shared::<String>("text")
            .await
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("x")
    );
    let err = json.get_shared::<String>("text").await.unwrap_err();
    assert_eq!(err.kind(), cachy::ErrorKind::Deserialize, "{err}");
}

/// A store bounded by bytes keeps no decoded copy (its memory cannot be known), so reading
/// every value with `get_shared`, even one of most of the bound, evicts nothing.
#[tokio::test]
async fn get_shared_on_a_store_bounded_by_bytes_evicts_nothing() {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": { "small": { "driver": "memory", "max_bytes": 200_000 } }
    }))
    .unwrap();
    let repo = manager.store("small").unwrap();
    let value = "x".repeat(1000);
    for i in 0..150 {
        repo.put(&format!("k{i}"), &value, 10).await.unwrap();
    }
    repo.put("big", &"y".repeat(150_000), 10).await.unwrap();
    let before = stored_after_evictions::<String>(&repo, 150).await;
    for _ in 0..3 {
        for i in 0..150 {
            repo.get_shared::<String>(&format!("k{i}")).await.unwrap();
        }
        assert!(repo.get_shared::<String>("big").await.unwrap().is_some());
    }
    assert_eq!(stored_after_evictions::<String>(&repo, 150).await, before);
    assert!(repo.get::<String>("big").await.unwrap().is_some());
}

/// Every entry the store drops is an event with its cause, to the repository's hooks and the
/// manager's; those it chose to drop (for room, or expired) are counted in `stats()`.
#[tokio::test]
async fn evictions_are_events_with_their_cause_and_counted() {
    use cachy::observe::{EvictionCause, Operation, Outcome};
    use std::sync::{Arc, Mutex};

    let manager = CacheManager::from_value(serde_json::json!({
        "stores": { "small": { "driver": "memory", "max_entries": 10 } }
    }))
    .unwrap();
    let seen: Arc<Mutex<Vec<(String, EvictionCause)>>> = Arc::default();
    let manager_seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&manager_seen);
    manager.on_event(move |event| {
        if event.operation == Operation::Evict {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let repo = manager.store("small").unwrap();
    let recorded = Arc::clone(&seen);
    repo.on_event(move |event| {
        if let Outcome::Evicted(cause) = event.outcome {
            assert_eq!(event.operation, Operation::Evict);
            assert_eq!(event.store, "small");
            let key = event.key.expect("an eviction names its key").to_owned();
            recorded.lock().unwrap().push((key, cause));
        }
    });
    let causes = |cause: EvictionCause| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(_, seen)| *seen == cause)
            .count()
    };

    for i in 0..200 {
        repo.put(&format!("k{i}"), &i, 10).await.unwrap();
    }
    assert_eq!(causes(EvictionCause::Size), 190);
    assert_eq!(repo.stats().evictions, 190);

    repo.put("k199", &0, 10).await.unwrap();
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &("k199".to_owned(), EvictionCause::Replaced)
    );
    assert!(repo.forget("k199").await.unwrap());
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &("k199".to_owned(), EvictionCause::Removed)
    );

    repo.put("short", &1, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    repo.put("short", &2, 10).await.unwrap();
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &("short".to_owned(), EvictionCause::Expired)
    );
    assert_eq!(
        repo.stats().evictions,
        191,
        "size and expiry are evictions; replaced and removed are the caller's own"
    );
    assert_eq!(
        manager_seen.load(std::sync::atomic::Ordering::Relaxed),
        seen.lock().unwrap().len(),
        "the manager's hooks see every one"
    );
}

#[tokio::test]
async fn a_value_too_large_for_the_bound_is_an_eviction_for_size_of_its_key() {
    use cachy::observe::{EvictionCause, Outcome};
    use std::sync::{Arc, Mutex};

    let manager = CacheManager::from_value(serde_json::json!({
        "stores": { "small": { "driver": "memory", "max_bytes": 4096 } }
    }))
    .unwrap();
    let repo = manager.store("small").unwrap();
    let seen: Arc<Mutex<Vec<(String, EvictionCause)>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    repo.on_event(move |event| {
        if let Outcome::Evicted(cause) = event.outcome {
            let key = event.key.expect("an eviction names its key").to_owned();
            recorded.lock().unwrap().push((key, cause));
        }
    });
    let large = "x".repeat(10_000);
    repo.put("new", &large, 10).await.unwrap();
    assert_eq!(repo.get::<String>("new").await.unwrap(), None);
    assert_eq!(
        *seen.lock().unwrap(),
        [("new".to_owned(), EvictionCause::Size)],
        "a new key whose value the bound cannot hold"
    );
    repo.put("old", "small", 10).await.unwrap();
    repo.put("old", &large, 10).await.unwrap();
    assert_eq!(repo.get::<String>("old").await.unwrap(), None);
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &("old".to_owned(), EvictionCause::Size),
        "the value it replaced goes for its size, once"
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(repo.stats().evictions, 2);
}
