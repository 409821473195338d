//! `Memoizer` used directly, over a tagged repository.

use super::*;

/// A memoizer over a tagged repository keeps its values under the tags, apart from the same
/// memoizer's over the store's own keyspace: flushing the tags makes the next call compute
/// again (they were kept outside the tags' namespace, which no flush reached).
#[tokio::test]
async fn a_memoizer_over_tags_is_flushed_with_them() {
    let cache =
        CacheManager::from_value(json!({ "stores": { "dict": { "driver": "dict" } } })).unwrap();
    let tagged = cache.tags(["reports"]).unwrap();
    let over_tags = cachy::Memoizer::new(tagged.clone(), "report").minutes(5);
    let untagged = cachy::Memoizer::new(cache.store(None).unwrap(), "report").minutes(5);
    let computed = AtomicUsize::new(0);
    async fn call(memoizer: &cachy::Memoizer, computed: &AtomicUsize) -> usize {
        let key = memoizer.key(&("report", 1u8));
        memoizer
            .call(key, || async {
                computed.fetch_add(1, Ordering::SeqCst) + 1
            })
            .await
    }
    async fn fallible(memoizer: &cachy::Memoizer, computed: &AtomicUsize) -> usize {
        let key = memoizer.key(&("report", 2u8));
        let compute =
            || async { Ok::<_, cachy::Error>(computed.fetch_add(1, Ordering::SeqCst) + 1) };
        memoizer.call_result(key, compute).await.unwrap()
    }
    assert_eq!(call(&over_tags, &computed).await, 1);
    assert_eq!(call(&over_tags, &computed).await, 1, "memoized");
    assert_eq!(
        call(&untagged, &computed).await,
        2,
        "apart from the untagged keyspace"
    );
    assert_eq!(fallible(&over_tags, &computed).await, 3);
    assert_eq!(fallible(&over_tags, &computed).await, 3, "memoized");
    tagged.flush().await.unwrap();
    assert_eq!(
        call(&over_tags, &computed).await,
        4,
        "the flush reached `call`'s value"
    );
    assert_eq!(
        fallible(&over_tags, &computed).await,
        5,
        "and `call_result`'s"
    );
    assert_eq!(
        call(&untagged, &computed).await,
        2,
        "the untagged value stays"
    );
}
