//! Tags on Redis: Python cachy's layout, forever items flushed page by page, the round
//! trips of a tagged read, and tagged calls on a dead server.

use super::outages::breaker_cache;
use super::*;

fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(text))
}

#[tokio::test]
async fn tags_use_python_cachys_layout_and_flush_deletes_forever_items() {
    let Some(server) = server() else { return };
    let cache = manager(json!({ "driver": "redis", "url": server.url(), "prefix": "tagged:" }));
    let tagged = cache.tags(("people", "authors")).unwrap();
    tagged.forever("Anne", "anne").await.unwrap();
    tagged.put("John", "john", 10).await.unwrap();

    let raw = raw_store(&server.url(), "");
    let ids: Vec<String> = cache
        .many(&["tag:people:key", "tag:authors:key"])
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "tag ids stored through the serializer under tag:{{name}}:key"
    );
    assert!(
        ids.iter()
            .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    );
    let item_key = format!("tagged:{}:Anne", sha1_hex(&ids.join("|")));
    let exists: i64 = raw
        .query(redis::cmd("EXISTS").arg(&item_key))
        .await
        .unwrap();
    assert_eq!(exists, 1, "{item_key}");
    for id in &ids {
        let listed: Vec<String> = raw
            .query(
                redis::cmd("LRANGE")
                    .arg(format!("tagged:{id}:forever"))
                    .arg(0)
                    .arg(-1),
            )
            .await
            .unwrap();
        assert_eq!(listed, std::slice::from_ref(&item_key));
    }

    cache.tags("authors").unwrap().flush().await.unwrap();
    let exists: i64 = raw
        .query(redis::cmd("EXISTS").arg(&item_key))
        .await
        .unwrap();
    assert_eq!(exists, 0, "the forever item is deleted, not just orphaned");
    let list_exists: i64 = raw
        .query(redis::cmd("EXISTS").arg(format!("tagged:{}:forever", ids[1])))
        .await
        .unwrap();
    assert_eq!(list_exists, 0);
}

/// A tag with more items stored forever than one page of its list (500) loses them all on a
/// flush, on one node and on a cluster.
#[tokio::test]
async fn a_tag_flush_deletes_every_forever_item_page_by_page() {
    let Some(server) = server() else { return };
    let mut stores =
        vec![json!({ "driver": "redis", "url": server.url(), "prefix": unique_prefix() })];
    if let Some(cluster) = CLUSTER.get_or_init(RedisCluster::start).as_ref() {
        stores.push(
            json!({ "driver": "redis", "cluster": cluster.urls(), "prefix": unique_prefix() }),
        );
    }
    for store in stores {
        let cache = manager(store.clone());
        let tagged = cache.tags("bulk").unwrap();
        let keys: Vec<String> = (0..1234).map(|i| format!("item{i}")).collect();
        for key in &keys {
            tagged.forever(key, &1).await.unwrap();
        }
        let tagged_keys: Vec<String> = {
            let ids: Vec<Option<String>> = cache.many(&["tag:bulk:key"]).await.unwrap();
            let id = ids[0].clone().expect("the tag's id");
            keys.iter()
                .map(|key| format!("{}:{key}", sha1_hex(&id)))
                .collect()
        };
        let stored = |keys: Vec<String>| {
            let cache = &cache;
            async move {
                cache
                    .many::<i64>(&keys)
                    .await
                    .unwrap()
                    .into_iter()
                    .flatten()
                    .count()
            }
        };
        assert_eq!(stored(tagged_keys.clone()).await, 1234, "{store}");
        tagged.flush().await.unwrap();
        assert_eq!(stored(tagged_keys).await, 0, "{store}: every item deleted");
    }
}

#[tokio::test]
async fn a_tagged_get_takes_two_round_trips_whatever_the_number_of_tags() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = manager(json!({ "driver": "redis", "url": server.url() }));
    let tags = ["a", "b", "c", "d", "e"];
    cache.tags(tags).unwrap().put("k", "v", 10).await.unwrap();
    let raw = raw_store(&server.url(), "");
    let () = raw
        .query(redis::cmd("CONFIG").arg("RESETSTAT"))
        .await
        .unwrap();
    assert_eq!(
        cache
            .tags(tags)
            .unwrap()
            .get::<String>("k")
            .await
            .unwrap()
            .as_deref(),
        Some("v")
    );
    let stats: String = raw
        .query(redis::cmd("INFO").arg("commandstats"))
        .await
        .unwrap();
    let calls = |command: &str| command_calls(&stats, command);
    assert_eq!((calls("mget"), calls("get")), (1, 1), "{stats}");
}

/// A manager on a Redis server and its repository under the tag `t`, with `k` stored there,
/// after the server was killed; `None` if Redis is not installed.
async fn tagged_on_a_killed_server() -> Option<(CacheManager, cachy::TaggedCache)> {
    let mut server = RedisServer::start()?;
    let cache = breaker_cache(&server, json!({}));
    let tagged = cache.tags(["t"]).unwrap();
    tagged.put("k", "v", 60).await.unwrap();
    server.kill();
    Some((cache, tagged))
}

/// With the server down, a tagged call's error names its key as an untagged one's does
/// (what failed first is the read of the tags' ids), and a tagged lock's names the lock.
#[tokio::test]
async fn a_tagged_call_on_a_dead_server_names_its_key() {
    let Some((cache, tagged)) = tagged_on_a_killed_server().await else {
        return;
    };
    let errors = [
        tagged.get::<String>("k").await.unwrap_err(),
        tagged.put("k", "w", 60).await.unwrap_err(),
        tagged.increment("n").await.unwrap_err(),
        tagged.tagged_key("m").await.unwrap_err(),
        cache.get::<String>("k").await.unwrap_err(),
    ];
    for (err, key) in errors.iter().zip(["k", "k", "n", "m", "k"]) {
        assert!(err.is_temporary(), "{err}");
        assert_eq!(err.key(), Some(key), "{err}");
        assert_eq!(err.store(), Some("redis"), "{err}");
    }
    let lock = tagged.lock("job", Duration::from_secs(5));
    let err = lock.try_acquire().await.unwrap_err();
    assert_eq!(
        err.key(),
        Some("job"),
        "a lock's error names the lock: {err}"
    );
}

/// With the server down, a tagged `remember_many` loads every key and answers them, as an
/// untagged one does: a cache failure does not fail the call.
#[tokio::test]
async fn a_tagged_remember_many_on_a_dead_server_loads_every_key() {
    let Some((_cache, tagged)) = tagged_on_a_killed_server().await else {
        return;
    };
    let options = cachy::RememberOptions::new(Duration::from_secs(60));
    let values: Vec<Option<i64>> = tagged
        .remember_many(&["a", "b", "c"], &options, |keys| async move {
            Ok::<_, cachy::Error>(
                keys.into_iter()
                    .filter(|key| key != "b")
                    .map(|key| (key, 1))
                    .collect(),
            )
        })
        .await
        .unwrap();
    assert_eq!(values, [Some(1), None, Some(1)]);
    let err = tagged
        .remember_many::<i64, cachy::Error, _, _>(
            &["a"],
            &options.clone().propagate_cache_errors(),
            |_| async { unreachable!("the cache error comes first") },
        )
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err}");
}

/// With the server down, a memoizer over tags runs its function uncached, each call.
#[tokio::test]
async fn a_memoizer_over_tags_on_a_dead_server_runs_uncached() {
    let Some((_cache, tagged)) = tagged_on_a_killed_server().await else {
        return;
    };
    let memoizer = cachy::Memoizer::new(tagged, "report").minutes(5);
    let computed = AtomicUsize::new(0);
    for expected in 1..=2 {
        let key = memoizer.key(&1u8);
        let value = memoizer
            .call(key, || async {
                computed.fetch_add(1, Ordering::SeqCst) + 1
            })
            .await;
        assert_eq!(value, expected, "computed again: nothing could be cached");
    }
}
