//! Tags, counters, integers and `remember_with` values crossing between this crate and
//! Python cachy.

use super::*;

async fn check_tags_cross(python: &str, target: &Target) {
    let (store, name) = (&target.python_store, target.name);
    let tags = ["people", "authors"];
    run_python(
        python,
        "pickle",
        store,
        vec![
            json!({ "op": "put", "key": "Anne", "value": "'anne'", "tags": tags }),
            json!({ "op": "forever", "key": "John", "value": "'john'", "tags": ["people", "artists"] }),
        ],
    );
    let repo = &target.rust;
    assert_eq!(
        repo.tags(tags)
            .get::<String>("Anne")
            .await
            .unwrap()
            .as_deref(),
        Some("anne"),
        "{name}"
    );
    assert_eq!(
        repo.tags(("people", "artists"))
            .get::<String>("John")
            .await
            .unwrap()
            .as_deref(),
        Some("john"),
        "{name}"
    );
    run_python(
        python,
        "pickle",
        store,
        vec![json!({ "op": "flush", "tags": ["authors"] })],
    );
    assert_eq!(
        repo.tags(tags).get::<String>("Anne").await.unwrap(),
        None,
        "{name}: Python flushed authors"
    );
    assert_eq!(
        repo.tags(("people", "artists"))
            .get::<String>("John")
            .await
            .unwrap()
            .as_deref(),
        Some("john"),
        "{name}"
    );

    repo.tags(("people", "artists"))
        .forever("Ringo", "ringo")
        .await
        .unwrap();
    let results = run_python(
        python,
        "pickle",
        store,
        vec![
            json!({ "op": "check", "id": "ringo", "key": "Ringo", "expected": "'ringo'", "tags": ["people", "artists"] }),
        ],
    );
    assert_eq!(
        results["ringo"]["same"],
        json!(true),
        "{name}: {}",
        results["ringo"]
    );
    repo.tags("people").flush().await.unwrap();
    let results = run_python(
        python,
        "pickle",
        store,
        vec![
            json!({ "op": "get", "id": "ringo", "key": "Ringo", "tags": ["people", "artists"] }),
            json!({ "op": "get", "id": "john", "key": "John", "tags": ["people", "artists"] }),
        ],
    );
    assert_eq!(
        results["ringo"]["repr"],
        json!("None"),
        "{name}: we flushed people"
    );
    assert_eq!(
        results["john"]["repr"],
        json!("None"),
        "{name}: we flushed people"
    );
}

#[tokio::test]
async fn tags_cross_redis_and_memcached() {
    let Some(python) = python() else { return };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let Some(memcached) = MemcachedServer::start() else {
        return;
    };
    check_tags_cross(python, &redis_target(&redis, "pickle")).await;
    check_tags_cross(python, &memcached_target(&memcached)).await;
}

#[tokio::test]
async fn counters_cross_where_python_can_increment() {
    let Some(python) = python() else { return };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let Some(memcached) = MemcachedServer::start() else {
        return;
    };
    for target in [redis_target(&redis, "pickle"), memcached_target(&memcached)] {
        let name = target.name;
        assert_eq!(target.rust.increment_by("counter", 5).await.unwrap(), 5);
        let results = run_python(
            python,
            "pickle",
            &target.python_store,
            vec![json!({ "op": "increment", "id": "up", "key": "counter", "by": 2 })],
        );
        assert_eq!(
            results["up"]["repr"],
            json!("7"),
            "{name}: Python incremented our counter"
        );
        assert_eq!(
            target.rust.increment("counter").await.unwrap(),
            8,
            "{name}: we increment Python's result"
        );
        let created = run_python(
            python,
            "pickle",
            &target.python_store,
            vec![json!({ "op": "increment", "id": "new", "key": "py-counter", "by": 3 })],
        );
        if name == "redis" {
            assert_eq!(created["new"]["repr"], json!("3"));
            assert_eq!(
                target.rust.increment("py-counter").await.unwrap(),
                4,
                "{name}: a counter Python created"
            );
        } else {
            // python-memcached's incr does not create a missing counter: it returns None.
            assert_eq!(created["new"]["repr"], json!("None"), "{name}");
            assert_eq!(
                target.rust.increment("py-counter").await.unwrap(),
                1,
                "{name}"
            );
        }
    }
    // Python cachy's Redis store pickles integers it puts, so neither side can increment them
    // natively; on memcached python-memcached stores them as its integer flag, and both can.
    let redis = redis_target(&redis, "pickle");
    run_python(
        python,
        "pickle",
        &redis.python_store,
        vec![json!({ "op": "put", "key": "py-put-int", "value": "5" })],
    );
    assert_eq!(
        redis.rust.increment("py-put-int").await.unwrap_err().kind(),
        ErrorKind::NotAnInteger
    );
    let memcached = memcached_target(&memcached);
    run_python(
        python,
        "pickle",
        &memcached.python_store,
        vec![json!({ "op": "put", "key": "py-put-int", "value": "5" })],
    );
    assert_eq!(memcached.rust.increment("py-put-int").await.unwrap(), 6);
}

#[tokio::test]
async fn integers_cross_both_ways_with_the_serializer_integer_format() {
    let Some(python) = python() else { return };
    let Some(server) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for serializer in ["pickle", "msgpack"] {
        let prefix = format!("ints-{serializer}:");
        for (name, rust_store, python_store) in [
            (
                "file",
                json!({ "driver": "file", "path": dir.path(), "integers": "serializer" }),
                json!({ "driver": "file", "path": dir.path() }),
            ),
            (
                "redis",
                json!({ "driver": "redis", "url": server.url(), "prefix": prefix, "integers": "serializer" }),
                json!({ "driver": "redis", "host": "127.0.0.1", "port": server.port(), "prefix": prefix }),
            ),
        ] {
            let cache = CacheManager::from_value(
                json!({ "serializer": serializer, "stores": { "s": rust_store } }),
            )
            .unwrap();
            let mut ops = Vec::new();
            for (key, literal, value) in integer_cases() {
                cache.put(&format!("int-{key}"), &value, 10).await.unwrap();
                ops.push(json!({ "op": "check", "id": key, "key": format!("int-{key}"), "expected": literal }));
            }
            let results = run_python(python, serializer, &python_store, ops);
            for (key, _, _) in integer_cases() {
                assert_eq!(
                    results[key.as_str()]["same"],
                    json!(true),
                    "{name}/{serializer}: {}",
                    results[key.as_str()]
                );
            }
        }
    }
}

/// `remember_with` without fail-safe or eager refresh writes Python cachy's format: Python
/// reads its values; with them, values carry the envelope, which Python cannot read (as
/// documented).
#[tokio::test]
async fn python_reads_what_remember_with_stores_without_an_envelope() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = file_target(dir.path(), "pickle");
    let plain = cachy::RememberOptions::new(Duration::from_secs(600))
        .jitter(0.1)
        .soft_timeout(Duration::from_millis(100))
        .hard_timeout(Duration::from_secs(5));
    let value: Vec<String> = target
        .rust
        .remember_with("plain", &plain, || async {
            Ok::<_, cachy::Error>(vec!["ann".to_owned(), "bob".to_owned()])
        })
        .await
        .unwrap();
    assert_eq!(value, ["ann", "bob"]);
    let enveloped = plain.clone().fail_safe(Duration::from_secs(600));
    target
        .rust
        .remember_with("enveloped", &enveloped, || async {
            Ok::<_, cachy::Error>(1i64)
        })
        .await
        .unwrap();
    let read = run_python(
        python,
        "pickle",
        &target.python_store,
        vec![
            json!({ "op": "check", "id": "plain", "key": "plain", "expected": "['ann', 'bob']" }),
            json!({ "op": "get", "id": "enveloped", "key": "enveloped" }),
        ],
    );
    assert_eq!(read["plain"]["same"], json!(true), "{read}");
    assert!(read["enveloped"].get("error").is_some(), "{read}");
}
