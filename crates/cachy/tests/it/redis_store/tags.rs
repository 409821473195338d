//! Tags on Redis: Python cachy's layout, forever items flushed page by page, and the round
//! trips of a tagged read.

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
