//! Values, tags and counters cross between this crate and the real Python cachy 0.3.0
//! (from PyPI, in the virtualenv `scripts/python-env` makes), on the file, Redis and
//! memcached stores, in both directions: values here, tags, counters, integers and
//! `remember_with` values in `tags_and_counters.rs`.

#![cfg(all(feature = "file", feature = "redis", feature = "memcached"))]

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use cachy::{CacheManager, ErrorKind, Repository};
use cachy_testkit::servers::{MemcachedServer, RedisServer, TestServer, is_ci};
use serde_json::{Value, json};

mod tags_and_counters;

fn python() -> Option<&'static str> {
    static PYTHON: OnceLock<Option<String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/python-env");
            let output = Command::new(script).output();
            match output {
                Ok(output) if output.status.success() => {
                    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
                }
                other => {
                    let message = format!("cannot make the Python cachy virtualenv: {other:?}");
                    assert!(!is_ci(), "{message}");
                    eprintln!("skipping: {message}");
                    None
                }
            }
        })
        .as_deref()
}

/// Run `ops` with Python cachy on `store` (a Python store config) and `serializer`.
fn run_python(python: &str, serializer: &str, store: &Value, ops: Vec<Value>) -> Value {
    let command = json!({ "serializer": serializer, "store": store, "ops": ops }).to_string();
    let output = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/interop.py"
        ))
        .arg(command)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "interop.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("interop.py prints JSON")
}

/// Values every serializer carries: (key, Python literal, the same value as JSON).
fn common_cases() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("unicode", "'żółć 日本 🦀'", json!("żółć 日本 🦀")),
        ("empty", "''", json!("")),
        ("float", "1.5", json!(1.5)),
        ("true", "True", json!(true)),
        ("false", "False", json!(false)),
        ("none", "None", Value::Null),
        ("list", "[1, 'a', 2.5]", json!([1, "a", 2.5])),
        (
            "nested",
            "{'a': {'b': [1, 2]}, 'c': 'd'}",
            json!({ "a": { "b": [1, 2] }, "c": "d" }),
        ),
        ("empty_list", "[]", json!([])),
        ("empty_dict", "{}", json!({})),
    ]
}

/// Integers: every one from -40 to 300 (the single-byte encodings of every format, and the
/// decimal digits' byte values 48 to 57, which msgpack also reads as integers), and the
/// 64-bit edges. As (key, Python literal, value).
fn integer_cases() -> Vec<(String, String, i64)> {
    (-40i64..=300)
        .chain([1 << 40, i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX])
        .map(|n| (format!("int{n}"), n.to_string(), n))
        .collect()
}

struct Target {
    name: &'static str,
    serializer: &'static str,
    python_store: Value,
    rust: Repository,
    /// Whether Python reads integers this crate wrote: json (decimal text is JSON) and msgpack
    /// (msgpack integers) do; pickle's decimal text does not, except on memcached, whose
    /// integer flag python-memcached reads.
    python_reads_our_integers: bool,
}

async fn check_values_cross(python: &str, target: &Target) {
    let (name, serializer, store) = (target.name, target.serializer, &target.python_store);
    let repo = &target.rust;
    let pickle = serializer == "pickle";

    // Python writes, Rust reads.
    let mut ops: Vec<Value> = common_cases()
        .iter()
        .map(|(key, literal, _)| json!({ "op": "forever", "key": format!("py-{key}"), "value": literal }))
        .collect();
    ops.extend(integer_cases().iter().map(
        |(key, literal, _)| json!({ "op": "put", "key": format!("py-{key}"), "value": literal }),
    ));
    if pickle {
        ops.push(json!({ "op": "forever", "key": "py-bytes", "value": "b'\\x00\\xff'" }));
        ops.push(json!({ "op": "forever", "key": "py-tuple", "value": "('a', 1)" }));
        ops.push(json!({ "op": "put_instance", "key": "py-instance" }));
    }
    run_python(python, serializer, store, ops);
    for (key, _, expected) in common_cases() {
        let value: Option<Value> = repo
            .get(&format!("py-{key}"))
            .await
            .unwrap_or_else(|e| panic!("{name}/{key}: {e}"));
        assert_eq!(value, Some(expected), "{name}: Python wrote {key}");
    }
    for (key, _, expected) in integer_cases() {
        assert_eq!(
            repo.get::<i64>(&format!("py-{key}")).await.unwrap(),
            Some(expected),
            "{name}: Python wrote {key}"
        );
    }
    if pickle {
        let bytes: serde_bytes::ByteBuf = repo.get("py-bytes").await.unwrap().unwrap();
        assert_eq!(bytes.into_vec(), [0, 255], "{name}");
        assert_eq!(
            repo.get::<(String, i64)>("py-tuple").await.unwrap(),
            Some(("a".to_owned(), 1)),
            "{name}"
        );
        let err = repo.get::<Value>("py-instance").await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Deserialize,
            "{name}: a pickled class instance: {err}"
        );
    }

    // Rust writes, Python reads.
    let mut ops = Vec::new();
    for (key, literal, value) in common_cases() {
        repo.forever(&format!("rs-{key}"), &value).await.unwrap();
        ops.push(
            json!({ "op": "check", "id": key, "key": format!("rs-{key}"), "expected": literal }),
        );
    }
    for (key, literal, value) in integer_cases() {
        repo.put(&format!("rs-{key}"), &value, 10).await.unwrap();
        ops.push(
            json!({ "op": "check", "id": key, "key": format!("rs-{key}"), "expected": literal }),
        );
    }
    if pickle {
        repo.forever("rs-bytes", &serde_bytes::ByteBuf::from(vec![0u8, 255]))
            .await
            .unwrap();
        repo.forever("rs-tuple", &("a", 1)).await.unwrap();
        ops.push(
            json!({ "op": "check", "id": "bytes", "key": "rs-bytes", "expected": "b'\\x00\\xff'" }),
        );
        ops.push(
            json!({ "op": "check", "id": "tuple", "key": "rs-tuple", "expected": "('a', 1)" }),
        );
    }
    let results = run_python(python, serializer, store, ops);
    let mut keys: Vec<&str> = common_cases().iter().map(|(k, _, _)| *k).collect();
    if pickle {
        keys.extend(["bytes", "tuple"]);
    }
    for key in keys {
        assert_eq!(
            results[key]["same"],
            json!(true),
            "{name}: Python read our {key} as {}",
            results[key]
        );
    }
    for (key, _, _) in integer_cases() {
        let read = results[key.as_str()]["same"] == json!(true);
        assert_eq!(
            read,
            target.python_reads_our_integers,
            "{name}: Python read our integer {key}: {}",
            results[key.as_str()]
        );
    }
}

async fn check_expired_items_are_misses(python: &str, target: &Target) {
    target
        .rust
        .put("rs-short", "gone soon", Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let results = run_python(
        python,
        target.serializer,
        &target.python_store,
        vec![json!({ "op": "get", "id": "short", "key": "rs-short" })],
    );
    assert_eq!(results["short"]["repr"], json!("None"), "{}", target.name);
}

fn file_target(dir: &std::path::Path, serializer: &'static str) -> Target {
    let cache = CacheManager::from_value(json!({
        "serializer": serializer,
        "stores": { "file": { "driver": "file", "path": dir } }
    }))
    .unwrap();
    Target {
        name: "file",
        serializer,
        python_store: json!({ "driver": "file", "path": dir }),
        rust: cache.store(None).unwrap(),
        python_reads_our_integers: serializer != "pickle",
    }
}

fn redis_target(server: &RedisServer, serializer: &'static str) -> Target {
    let prefix = format!("interop-{serializer}:");
    let cache = CacheManager::from_value(json!({
        "serializer": serializer,
        "stores": { "redis": { "driver": "redis", "url": server.url(), "prefix": prefix } }
    }))
    .unwrap();
    Target {
        name: "redis",
        serializer,
        python_store: json!({ "driver": "redis", "host": "127.0.0.1", "port": server.port(), "prefix": prefix }),
        rust: cache.store(None).unwrap(),
        python_reads_our_integers: serializer != "pickle",
    }
}

fn memcached_target(server: &MemcachedServer) -> Target {
    let cache = CacheManager::from_value(json!({
        "stores": { "memcached": { "driver": "memcached", "servers": [server.address()], "prefix": "interop:" } }
    }))
    .unwrap();
    Target {
        name: "memcached",
        serializer: "pickle",
        python_store: json!({ "driver": "memcached", "servers": [server.address()], "prefix": "interop:" }),
        rust: cache.store(None).unwrap(),
        python_reads_our_integers: true,
    }
}

#[tokio::test]
async fn values_cross_the_file_store_with_every_serializer() {
    let Some(python) = python() else { return };
    for serializer in ["pickle", "json", "msgpack"] {
        let dir = tempfile::tempdir().unwrap();
        let target = file_target(dir.path(), serializer);
        check_values_cross(python, &target).await;
        check_expired_items_are_misses(python, &target).await;
        run_python(
            python,
            serializer,
            &target.python_store,
            vec![json!({ "op": "put", "key": "py-expired", "value": "'old'", "minutes": -1 })],
        );
        assert_eq!(
            target.rust.get::<String>("py-expired").await.unwrap(),
            None,
            "{serializer}: Python's past expiry"
        );
    }
}

#[tokio::test]
async fn values_cross_the_redis_store_with_every_serializer() {
    let Some(python) = python() else { return };
    let Some(server) = RedisServer::start() else {
        return;
    };
    for serializer in ["pickle", "json", "msgpack"] {
        let target = redis_target(&server, serializer);
        check_values_cross(python, &target).await;
        check_expired_items_are_misses(python, &target).await;
    }
}

#[tokio::test]
async fn values_cross_the_memcached_store_with_pickle() {
    let Some(python) = python() else { return };
    let Some(server) = MemcachedServer::start() else {
        return;
    };
    let target = memcached_target(&server);
    check_values_cross(python, &target).await;
    check_expired_items_are_misses(python, &target).await;
}

/// python-memcached compresses values longer than `min_compress_len` with zlib and flags
/// them with bit 8 (as pylibmc does): a Python service that turned it on still shares its
/// cache.
#[tokio::test]
async fn python_memcached_compressed_values_are_read() {
    let Some(python) = python() else { return };
    let Some(server) = MemcachedServer::start() else {
        return;
    };
    let script = format!(
        "import memcache\n\
         c = memcache.Client(['{}'])\n\
         assert c.set('interop:text', 'żółć ' * 2000, time=600, min_compress_len=100)\n\
         assert c.set('interop:dict', {{'a': list(range(3000)), 'b': 'x' * 500}}, time=600, min_compress_len=100)\n",
        server.address()
    );
    let output = Command::new(python).arg("-c").arg(script).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for key in ["interop:text", "interop:dict"] {
        let flags = raw_flags(&server.address(), key);
        assert_ne!(flags & 8, 0, "{key} was stored compressed (flags {flags})");
    }
    let target = memcached_target(&server);
    assert_eq!(
        target.rust.get::<String>("text").await.unwrap(),
        Some("żółć ".repeat(2000))
    );
    let dict: std::collections::BTreeMap<String, Value> =
        target.rust.get("dict").await.unwrap().unwrap();
    assert_eq!(dict["a"], json!((0..3000).collect::<Vec<_>>()));
    assert_eq!(dict["b"], json!("x".repeat(500)));
}

/// The flags memcached holds for `key`, through the text protocol.
fn raw_flags(address: &str, key: &str) -> u32 {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "get {key}\r\n").unwrap();
    let mut header = String::new();
    BufReader::new(stream).read_line(&mut header).unwrap();
    // VALUE <key> <flags> <bytes>
    header.split_whitespace().nth(2).unwrap().parse().unwrap()
}
