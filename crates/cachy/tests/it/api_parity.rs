//! Every face of the API (the manager, a repository and a tagged cache, async and blocking)
//! offers every operation: the faces forward to the repository from one list, and the macros
//! below call each operation on each face, so a face that lacks one does not compile, and
//! running them checks that the faces agree.

use cachy::{CacheManager, Error};

fn config() -> serde_json::Value {
    serde_json::json!({ "stores": { "dict": { "driver": "dict" } } })
}

/// Every data operation, on an async face whose keys start empty.
macro_rules! exercise_async {
    ($face:expr) => {{
        let face = $face;
        face.put("a", &1i64, 5).await.unwrap();
        assert!(face.add("b", &2i64, 5).await.unwrap());
        face.forever("c", &3i64).await.unwrap();
        assert_eq!(face.get::<i64>("a").await.unwrap(), Some(1));
        assert_eq!(
            face.get_shared::<i64>("a").await.unwrap().as_deref(),
            Some(&1)
        );
        assert_eq!(face.get_or("missing", 7i64).await.unwrap(), 7);
        assert_eq!(face.get_or_else("missing", || 8i64).await.unwrap(), 8);
        assert_eq!(
            face.get_or_else_async("missing", || async { 9i64 })
                .await
                .unwrap(),
            9
        );
        assert!(face.has("b").await.unwrap());
        assert_eq!(face.pull::<i64>("b").await.unwrap(), Some(2));
        assert_eq!(face.increment("n").await.unwrap(), 1);
        assert_eq!(face.increment_by("n", 4).await.unwrap(), 5);
        assert_eq!(face.decrement("n").await.unwrap(), 4);
        assert_eq!(face.decrement_by("n", 4).await.unwrap(), 0);
        assert_eq!(face.increment_expiring("w", 2, 5).await.unwrap(), 2);
        let remembered: i64 = face
            .remember("r", 5, || async { Ok::<_, Error>(10) })
            .await
            .unwrap();
        assert_eq!(remembered, 10);
        let forever: i64 = face
            .remember_forever("rf", || async { Ok::<_, Error>(11) })
            .await
            .unwrap();
        assert_eq!(forever, 11);
        face.put_many(&[("m1", 1i64), ("m2", 2)], 5).await.unwrap();
        assert_eq!(
            face.many::<i64>(&["m1", "m2", "m3"]).await.unwrap(),
            [Some(1), Some(2), None]
        );
        assert!(face.forget("a").await.unwrap());
        face.flush().await.unwrap();
        assert_eq!(face.get::<i64>("c").await.unwrap(), None);
    }};
}

/// Every data operation, on a blocking face whose keys start empty.
macro_rules! exercise_blocking {
    ($face:expr) => {{
        let face = $face;
        face.put("a", &1i64, 5).unwrap();
        assert!(face.add("b", &2i64, 5).unwrap());
        face.forever("c", &3i64).unwrap();
        assert_eq!(face.get::<i64>("a").unwrap(), Some(1));
        assert_eq!(face.get_shared::<i64>("a").unwrap().as_deref(), Some(&1));
        assert_eq!(face.get_or("missing", 7i64).unwrap(), 7);
        assert_eq!(face.get_or_else("missing", || 8i64).unwrap(), 8);
        assert!(face.has("b").unwrap());
        assert_eq!(face.pull::<i64>("b").unwrap(), Some(2));
        assert_eq!(face.increment("n").unwrap(), 1);
        assert_eq!(face.increment_by("n", 4).unwrap(), 5);
        assert_eq!(face.decrement("n").unwrap(), 4);
        assert_eq!(face.decrement_by("n", 4).unwrap(), 0);
        assert_eq!(face.increment_expiring("w", 2, 5).unwrap(), 2);
        let remembered: i64 = face.remember("r", 5, || Ok::<_, Error>(10)).unwrap();
        assert_eq!(remembered, 10);
        let forever: i64 = face.remember_forever("rf", || Ok::<_, Error>(11)).unwrap();
        assert_eq!(forever, 11);
        face.put_many(&[("m1", 1i64), ("m2", 2)], 5).unwrap();
        assert_eq!(
            face.many::<i64>(&["m1", "m2", "m3"]).unwrap(),
            [Some(1), Some(2), None]
        );
        assert!(face.forget("a").unwrap());
        face.flush().unwrap();
        assert_eq!(face.get::<i64>("c").unwrap(), None);
    }};
}

#[tokio::test]
async fn every_async_face_offers_every_operation() {
    let cache = CacheManager::from_value(config()).unwrap();
    exercise_async!(&cache);
    let repository = cache.store(None).unwrap();
    exercise_async!(&repository);
    exercise_async!(&repository.tags(["people"]));
    exercise_async!(&cache.tags("authors").unwrap());

    // What is not a data operation, face by face.
    assert_eq!(cache.config().stores().len(), 1);
    cache.set_default_cache_time(30).unwrap();
    assert_eq!(cache.default_cache_time().unwrap(), 30);
    repository.set_default_cache_time(20);
    assert_eq!(repository.default_cache_time(), 20);
    assert_eq!(repository.name(), "dict");
    assert!(repository.store().is_process_local());
    assert_eq!(repository.tags(("a", "b")).tag_names(), ["a", "b"]);
    assert_eq!(repository.tags("a").tags("b").tag_names(), ["a", "b"]);
    assert!(repository.tag_names().is_empty());
}

#[test]
fn every_blocking_face_offers_every_operation() {
    let cache = cachy::blocking::CacheManager::from_value(config()).unwrap();
    exercise_blocking!(&cache);
    let repository = cache.store(None).unwrap();
    exercise_blocking!(&repository);
    exercise_blocking!(&repository.tags(["people"]));
    exercise_blocking!(&cache.tags("authors").unwrap());

    assert_eq!(cache.config().stores().len(), 1);
    cache.set_default_cache_time(30).unwrap();
    assert_eq!(cache.default_cache_time().unwrap(), 30);
    repository.set_default_cache_time(20);
    assert_eq!(repository.default_cache_time(), 20);
    assert_eq!(repository.name(), "dict");
    assert!(repository.store().is_process_local());
    assert_eq!(
        format!("{:?}", repository.serializer()),
        "Serializer(msgpack)"
    );
    assert_eq!(repository.tags(("a", "b")).tag_names(), ["a", "b"]);
    assert_eq!(repository.tags("a").tags("b").tag_names(), ["a", "b"]);
    assert!(repository.tag_names().is_empty());
}

#[tokio::test]
async fn flushing_tags_leaves_the_rest_of_the_store() {
    let cache = CacheManager::from_value(config()).unwrap();
    cache.put("plain", &1i64, 5).await.unwrap();
    let tagged = cache.tags(["people"]).unwrap();
    tagged.put("ann", &2i64, 5).await.unwrap();
    tagged.forever("bob", &3i64).await.unwrap();
    tagged.flush().await.unwrap();
    assert_eq!(tagged.get::<i64>("ann").await.unwrap(), None);
    assert_eq!(tagged.get::<i64>("bob").await.unwrap(), None);
    assert_eq!(cache.get::<i64>("plain").await.unwrap(), Some(1));
}
