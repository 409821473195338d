//! The behaviour suite again with the json and msgpack serializers, and the formats they write.

use cachy::CacheManager;
use cachy_testkit::Fixture;

fn manager(serializer: &str) -> CacheManager {
    CacheManager::from_value(serde_json::json!({
        "stores": { "dict": { "driver": "dict", "serializer": serializer } }
    }))
    .unwrap()
}

mod json {
    use super::*;

    async fn memory_with_json() -> Fixture {
        Fixture::new(manager("json").store(None).unwrap(), ())
    }

    cachy_testkit::behaviour_suite!(memory_with_json);
}

mod msgpack {
    use super::*;

    async fn memory_with_msgpack() -> Fixture {
        Fixture::new(manager("msgpack").store(None).unwrap(), ())
    }

    cachy_testkit::behaviour_suite!(memory_with_msgpack);
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Point {
    x: f64,
    label: String,
}

async fn stored_bytes(serializer: &str, value: &impl serde::Serialize) -> Vec<u8> {
    let repo = manager(serializer).store(None).unwrap();
    repo.forever("k", value).await.unwrap();
    repo.store().get("k").await.unwrap().unwrap()
}

#[tokio::test]
async fn integers_are_decimal_text_with_pickle_and_json() {
    for serializer in ["pickle", "json"] {
        assert_eq!(
            stored_bytes(serializer, &-1234567890123i64).await,
            b"-1234567890123"
        );
    }
}

#[tokio::test]
async fn msgpack_keeps_integers_as_msgpack_so_no_byte_means_two_numbers() {
    // A lone decimal digit is also a msgpack integer: b"4" is 52 in msgpack (what Python's
    // msgpack.packb(52) writes), so integers are never written as decimal text there.
    let repo = manager("msgpack").store(None).unwrap();
    let numbers = (-40i64..=300).chain([i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX]);
    for n in numbers {
        repo.forever("n", &n).await.unwrap();
        let stored = repo.store().get("n").await.unwrap().unwrap();
        assert_eq!(stored, rmp_serde::to_vec(&n).unwrap(), "{n}");
        assert_eq!(repo.get::<i64>("n").await.unwrap(), Some(n), "{n}");
    }
    repo.store().put("python", b"4", None).await.unwrap();
    assert_eq!(repo.get::<i64>("python").await.unwrap(), Some(52));
    // Decimal text that is no msgpack value (a counter another client made with the
    // server's own increment) still reads as its number.
    repo.store().put("counter", b"42", None).await.unwrap();
    assert_eq!(repo.get::<i64>("counter").await.unwrap(), Some(42));
    assert_eq!(repo.increment("counter").await.unwrap(), 43);
    assert_eq!(
        repo.store().get("counter").await.unwrap().unwrap(),
        rmp_serde::to_vec(&43i64).unwrap()
    );
}

#[test]
fn decimal_integers_with_msgpack_are_a_config_error() {
    let err = CacheManager::from_value(serde_json::json!({
        "stores": { "dict": { "driver": "dict", "serializer": "msgpack", "integers": "decimal" } }
    }))
    .unwrap()
    .store(None)
    .unwrap_err();
    assert_eq!(err.kind(), cachy::ErrorKind::Config);
    assert_eq!(err.field(), Some("stores.dict.integers"));
}

#[tokio::test]
async fn json_writes_what_python_json_dumps_reads() {
    let point = Point {
        x: 1.5,
        label: "é".to_owned(),
    };
    assert_eq!(
        stored_bytes("json", &point).await,
        "{\"x\":1.5,\"label\":\"é\"}".as_bytes()
    );
}

#[tokio::test]
async fn msgpack_writes_maps_with_field_names_and_str_strings() {
    let point = Point {
        x: 1.5,
        label: "a".to_owned(),
    };
    // msgpack.packb({'x': 1.5, 'label': 'a'}, use_bin_type=True)
    let expected = b"\x82\xa1x\xcb?\xf8\x00\x00\x00\x00\x00\x00\xa5label\xa1a";
    assert_eq!(stored_bytes("msgpack", &point).await, expected);
}

#[tokio::test]
async fn pickle_writes_protocol_3() {
    let bytes = stored_bytes("pickle", &"hi").await;
    assert_eq!(&bytes[..2], b"\x80\x03");
}

#[tokio::test]
async fn pickle_reads_python_protocols_0_to_5() {
    // pickle.dumps(['a', 1, None], protocol=p) for p in 0..=5, from Python 3.11.
    let pickles: [&[u8]; 6] = [
        b"(lp0\nVa\np1\naI1\naNa.",
        b"]q\x00(X\x01\x00\x00\x00aq\x01K\x01Ne.",
        b"\x80\x02]q\x00(X\x01\x00\x00\x00aq\x01K\x01Ne.",
        b"\x80\x03]q\x00(X\x01\x00\x00\x00aq\x01K\x01Ne.",
        b"\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x01a\x94K\x01Ne.",
        b"\x80\x05\x95\x0c\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x01a\x94K\x01Ne.",
    ];
    let repo = manager("pickle").store(None).unwrap();
    for (protocol, pickle) in pickles.iter().enumerate() {
        repo.store().put("k", pickle, None).await.unwrap();
        let value: (String, i64, Option<String>) = repo.get("k").await.unwrap().unwrap();
        assert_eq!(value, ("a".to_owned(), 1, None), "protocol {protocol}");
    }
}

#[tokio::test]
async fn a_pickled_python_class_instance_is_a_clear_error() {
    // pickle.dumps(fractions.Fraction(1, 3), protocol=2)
    let pickle = b"\x80\x02cfractions\nFraction\nq\x00K\x01K\x03\x86q\x01Rq\x02.";
    let repo = manager("pickle").store(None).unwrap();
    repo.store().put("k", pickle, None).await.unwrap();
    let err = repo.get::<String>("k").await.unwrap_err();
    assert_eq!(err.kind(), cachy::ErrorKind::Deserialize, "{err}");
}

#[tokio::test]
async fn a_registered_serializer_is_used_by_name() {
    struct Reversed;
    impl cachy::serializer::CustomSerializer for Reversed {
        fn serialize(
            &self,
            value: &dyn cachy::serializer::erased_serde::Serialize,
        ) -> Result<Vec<u8>, cachy::BoxError> {
            let mut bytes = serde_json::to_vec(value)?;
            bytes.reverse();
            Ok(bytes)
        }
        fn deserialize(
            &self,
            bytes: &[u8],
            visit: &mut cachy::serializer::Visit<'_>,
        ) -> Result<(), cachy::BoxError> {
            let forward: Vec<u8> = bytes.iter().rev().copied().collect();
            let mut de = serde_json::Deserializer::from_slice(&forward);
            visit(&mut <dyn cachy::serializer::erased_serde::Deserializer>::erase(&mut de))?;
            Ok(de.end()?)
        }
    }
    let cache = manager("reversed");
    cache.register_serializer("reversed", Reversed);
    cache.put("k", "abc", 10).await.unwrap();
    assert_eq!(
        cache
            .store(None)
            .unwrap()
            .store()
            .get("k")
            .await
            .unwrap()
            .unwrap(),
        b"\"cba\""
    );
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("abc")
    );
}

#[tokio::test]
async fn a_process_local_store_uses_msgpack_unless_it_names_its_own_serializer() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::from_value(serde_json::json!({
        "default": "dict",
        "serializer": "json",
        "stores": {
            "dict": { "driver": "dict" },
            "file": { "driver": "file", "path": dir.path() }
        }
    }))
    .unwrap();
    let point = Point {
        x: 1.5,
        label: "a".to_owned(),
    };
    cache.forever("p", &point).await.unwrap();
    let raw = cache
        .store("dict")
        .unwrap()
        .store()
        .get("p")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw[0], 0x82, "a msgpack map of two fields");
    let file = cache.store("file").unwrap();
    file.forever("p", &point).await.unwrap();
    assert_eq!(
        file.store().get("p").await.unwrap().unwrap()[0],
        b'{',
        "json, the global serializer"
    );
}

#[tokio::test]
async fn integers_go_through_the_serializer_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::from_value(serde_json::json!({
        "stores": { "file": { "driver": "file", "path": dir.path(), "integers": "serializer" } }
    }))
    .unwrap();
    let repo = cache.store(None).unwrap();
    repo.forever("n", &(1i64 << 40)).await.unwrap();
    let stored = repo.store().get("n").await.unwrap().unwrap();
    assert_eq!(
        &stored[..2],
        b"\x80\x03",
        "pickled, as Python cachy writes integers"
    );
    assert_eq!(repo.get::<i64>("n").await.unwrap(), Some(1 << 40));
    assert_eq!(
        repo.increment("n").await.unwrap(),
        (1 << 40) + 1,
        "unlike Python cachy, an integer it stored can be incremented"
    );
    assert_eq!(repo.increment("counter").await.unwrap(), 1);
    let counter = repo.store().get("counter").await.unwrap().unwrap();
    assert_eq!(&counter[..2], b"\x80\x03", "counters are pickled too");
    assert_eq!(repo.get::<i64>("counter").await.unwrap(), Some(1));
}

#[test]
fn an_unknown_integer_format_is_a_config_error() {
    let err = CacheManager::from_value(serde_json::json!({
        "stores": { "dict": { "driver": "dict", "integers": "roman" } }
    }))
    .unwrap()
    .store(None)
    .unwrap_err();
    assert_eq!(err.kind(), cachy::ErrorKind::Config);
    assert_eq!(err.field(), Some("stores.dict.integers"));
}

#[test]
fn msgpack_reads_exactly_one_value_and_nothing_after_it() {
    let msgpack = cachy::serializer::Serializer::msgpack();
    let bytes = msgpack.serialize(&("name", 7u8)).unwrap();
    assert_eq!(
        msgpack.deserialize::<(String, u8)>(&bytes).unwrap(),
        ("name".to_owned(), 7)
    );
    for trailing in [&[0x01][..], &[0xc1], &[0xdd, 0xff, 0xff, 0xff, 0xff]] {
        let mut longer = bytes.clone();
        longer.extend_from_slice(trailing);
        let error = msgpack.deserialize::<(String, u8)>(&longer).unwrap_err();
        assert!(
            error.to_string().contains("left over"),
            "{trailing:?}: {error}"
        );
    }
    assert!(
        msgpack
            .deserialize::<(String, u8)>(&bytes[..bytes.len() - 1])
            .is_err()
    );
}
