use serde_json::json;

use super::config::layer;
use super::*;
use crate::config::StoreConfig;

fn configured(options: serde_json::Value) -> Result<Layer> {
    let mut config = StoreConfig::new("dict");
    for (field, value) in options.as_object().expect("a map") {
        config = config.with(field.clone(), value.clone());
    }
    layer(&config)
}

fn values(options: serde_json::Value) -> Values {
    configured(options).expect("a valid layer").values
}

/// A value that compresses well: a JSON-like document of repeated records.
fn document(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!("{{\"id\":{i},\"name\":\"user {i}\",\"ok\":true}},").as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER_HEX: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[cfg(all(
    feature = "compress-zstd",
    feature = "compress-lz4",
    feature = "compress-gzip"
))]
#[test]
fn each_algorithm_compresses_long_values_and_reads_them_back() {
    let value = document(100_000);
    for algorithm in ["zstd", "lz4", "gzip"] {
        let values = values(json!({ "compress": { "algorithm": algorithm } }));
        let stored = values.seal("k", &value).unwrap();
        assert!(stored.starts_with(&compress::MAGIC), "{algorithm}");
        assert!(
            stored.len() < value.len() / 3,
            "{algorithm}: {}",
            stored.len()
        );
        assert_eq!(
            values.open("k", stored.into_owned()).unwrap(),
            value,
            "{algorithm}"
        );
        // A store without compression configured reads it too.
        let plain = Values::default();
        let stored = values.seal("k", &value).unwrap().into_owned();
        assert_eq!(plain.open("k", stored).unwrap(), value, "{algorithm}");
    }
}

#[cfg(feature = "compress-zstd")]
#[test]
fn short_and_incompressible_values_are_stored_as_they_are() {
    let values = values(json!({ "compress": { "algorithm": "zstd", "min_bytes": 1 } }));
    for value in [&b"42"[..], b"-7", b"a lock token", &[0x80, 4, 0x95]] {
        assert_eq!(&*values.seal("k", value).unwrap(), value);
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    assert_eq!(&*values.seal("k", &noise).unwrap(), &noise[..]);
    let values = super::tests::values(json!({ "compress": { "algorithm": "zstd" } }));
    let under = document(1023);
    assert_eq!(&*values.seal("k", &under).unwrap(), &under[..]);
}

#[cfg(feature = "compress-zstd")]
#[test]
fn a_bomb_is_refused_before_it_is_decompressed() {
    let reader = Values::default();
    // A declared length over the limit, whatever follows.
    let mut forged = compress::MAGIC.to_vec();
    forged.push(1);
    forged.extend_from_slice(&u32::MAX.to_be_bytes());
    forged.extend_from_slice(&[0; 16]);
    let error = reader.open("k", forged).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Deserialize);
    assert!(error.to_string().contains("compress.max_bytes"), "{error}");
    // A real zstd frame of 32 MiB of zeros: within 64 MiB, but a ratio of thousands.
    let zeros = vec![0u8; 32 << 20];
    let mut bomb = compress::MAGIC.to_vec();
    bomb.push(1);
    bomb.extend_from_slice(&u32::try_from(zeros.len()).unwrap().to_be_bytes());
    bomb.extend_from_slice(&zstd::bulk::compress(&zeros, 19).unwrap());
    let error = reader.open("k", bomb).unwrap_err();
    assert!(error.to_string().contains("compress.max_ratio"), "{error}");
    // A frame that gives more than it declares.
    let mut liar = compress::MAGIC.to_vec();
    liar.push(1);
    liar.extend_from_slice(&1000u32.to_be_bytes());
    liar.extend_from_slice(&zstd::bulk::compress(&document(5000), 3).unwrap());
    assert_eq!(
        reader.open("k", liar).unwrap_err().kind(),
        ErrorKind::Deserialize
    );
}

#[cfg(all(
    feature = "compress-zstd",
    feature = "compress-lz4",
    feature = "compress-gzip"
))]
#[test]
fn cut_and_corrupted_compressed_values_are_errors() {
    let value = document(20_000);
    for algorithm in ["zstd", "lz4", "gzip"] {
        let values = values(json!({ "compress": { "algorithm": algorithm } }));
        let stored = values.seal("k", &value).unwrap().into_owned();
        for len in 3..stored.len() {
            if let Ok(read) = values.open("k", stored[..len].to_vec()) {
                panic!("{algorithm}: {len} bytes read as {} bytes", read.len());
            }
        }
        for at in (3..stored.len()).step_by(7) {
            let mut corrupted = stored.clone();
            corrupted[at] ^= 0x5a;
            if let Ok(read) = values.open("k", corrupted) {
                // lz4 and zstd data may still decode: never to another length.
                assert_eq!(read.len(), value.len(), "{algorithm} at {at}");
            }
        }
    }
}

#[cfg(feature = "encrypt")]
#[test]
fn encryption_rotates_and_refuses_tampering_other_keys_and_plaintext() {
    let old = values(json!({ "encrypt": { "keys": [{ "id": "2025", "key": OTHER_HEX }] } }));
    let new = values(json!({ "encrypt": { "keys": [
        { "id": "2026", "key": KEY_HEX },
        { "id": "2025", "key": OTHER_HEX },
    ] } }));
    let value = b"a secret value";
    let sealed_old = old.seal("user:1", value).unwrap().into_owned();
    let sealed_new = new.seal("user:1", value).unwrap().into_owned();
    assert!(!sealed_new.windows(value.len()).any(|w| w == value));
    assert_ne!(
        new.seal("user:1", value).unwrap().into_owned(),
        sealed_new,
        "a nonce per value"
    );
    // Rotation: the new list reads both; the old list does not know the new key.
    assert_eq!(new.open("user:1", sealed_old.clone()).unwrap(), value);
    assert_eq!(new.open("user:1", sealed_new.clone()).unwrap(), value);
    let error = old.open("user:1", sealed_new.clone()).unwrap_err();
    assert!(error.to_string().contains("\"2026\""), "{error}");
    // Another key with the same id fails authentication.
    let impostor = values(json!({ "encrypt": { "keys": [{ "id": "2026", "key": OTHER_HEX }] } }));
    assert_eq!(
        impostor
            .open("user:1", sealed_new.clone())
            .unwrap_err()
            .kind(),
        ErrorKind::Deserialize
    );
    // Moved to another key.
    assert!(new.open("user:2", sealed_new.clone()).is_err());
    // Every byte flipped, every cut.
    for at in 0..sealed_new.len() {
        let mut tampered = sealed_new.clone();
        tampered[at] ^= 1;
        assert!(new.open("user:1", tampered).is_err(), "byte {at}");
    }
    for len in 0..sealed_new.len() {
        assert!(
            new.open("user:1", sealed_new[..len].to_vec()).is_err(),
            "cut at {len}"
        );
    }
    // Plaintext is refused unless allowed.
    assert!(new.open("user:1", b"plain".to_vec()).is_err());
    let moving = values(json!({ "encrypt": {
        "keys": [{ "id": "2026", "key": KEY_HEX }], "allow_plaintext": true
    } }));
    assert_eq!(moving.open("user:1", b"plain".to_vec()).unwrap(), b"plain");
    // Without keys, an encrypted value goes up unopened, for the decoder to name.
    let unopened = Values::default()
        .open("user:1", sealed_new.clone())
        .unwrap();
    assert_eq!(unopened, sealed_new);
    assert!(
        super::unopened(&unopened)
            .unwrap()
            .to_string()
            .contains("encrypt")
    );
}

#[cfg(all(feature = "encrypt", feature = "compress-lz4"))]
#[test]
fn compression_happens_before_encryption() {
    let values = values(json!({
        "compress": { "algorithm": "lz4" },
        "encrypt": { "keys": [{ "id": "k", "key": KEY_HEX }] },
    }));
    let value = document(50_000);
    let stored = values.seal("k", &value).unwrap().into_owned();
    assert!(stored.len() < value.len() / 3, "{}", stored.len());
    assert_eq!(values.open("k", stored).unwrap(), value);
}

#[test]
fn hostile_bytes_behind_the_marks_are_errors_or_values_never_panics() {
    let readers = [
        Values::default(),
        #[cfg(feature = "encrypt")]
        values(json!({ "encrypt": { "keys": [{ "id": "k", "key": KEY_HEX }] } })),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..20_000 {
        let mut bytes = if round % 2 == 0 {
            compress::MAGIC.to_vec()
        } else {
            ENCRYPTED.to_vec()
        };
        let len = usize::try_from(next() % 80).unwrap();
        bytes.extend((0..len).map(|_| next() as u8));
        if round % 3 == 0 && bytes.len() > 4 {
            bytes[3] = 1 + (next() % 3) as u8;
        }
        for reader in &readers {
            if let Ok(value) = reader.open("k", bytes.clone()) {
                assert!(value.len() <= 64 * 1024, "{round}");
            }
        }
    }
}

#[test]
fn limits_name_themselves_and_keys_get_their_prefix() {
    let layer = configured(json!({
        "namespace": "billing", "version": 3, "max_key_bytes": 30, "max_value_bytes": 8
    }))
    .unwrap();
    assert_eq!(
        layer.keys.key("user:1").unwrap(),
        "billing:cachy:store-v3:user:1"
    );
    let error = layer.keys.key("a-much-longer-key").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("max_key_bytes"), "{error}");
    let error = layer.values.seal("k", b"123456789").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("max_value_bytes"), "{error}");
    assert_eq!(&*layer.values.seal("k", b"12345678").unwrap(), b"12345678");
    let version_only = configured(json!({ "version": 2 })).unwrap();
    assert_eq!(version_only.keys.key("k").unwrap(), "cachy:store-v2:k");
    // No namespace and version make the prefix of another.
    for namespace in ["app:cachy", "a:b", "cachy", ""] {
        assert!(
            configured(json!({ "namespace": namespace })).is_err(),
            "{namespace:?}"
        );
    }
}

#[test]
fn misspelt_and_invalid_options_are_errors_naming_the_field() {
    for (options, field, says) in [
        (
            json!({ "compress": { "algoritm": "zstd" } }),
            "compress",
            "algoritm",
        ),
        (
            json!({ "compress": { "algorithm": "brotli" } }),
            "compress",
            "brotli",
        ),
        (
            json!({ "compress": { "algorithm": "lz4", "level": 3 } }),
            "compress",
            "no levels",
        ),
        (
            json!({ "compress": { "algorithm": "zstd", "level": 40 } }),
            "compress",
            "from 1 to 22",
        ),
        (
            json!({ "compress": { "algorithm": "none", "max_ratio": 0 } }),
            "compress",
            "max_ratio",
        ),
        (
            json!({ "encrypt": { "keys": [] } }),
            "encrypt",
            "at least one",
        ),
        (json!({ "encrypt": { "kyes": [] } }), "encrypt", "kyes"),
        (
            json!({ "encrypt": { "keys": [{ "id": "k", "key": "abc" }] } }),
            "encrypt",
            "64 hexadecimal",
        ),
        (
            json!({ "encrypt": { "keys": [{ "id": "k" }] } }),
            "encrypt",
            "exactly one",
        ),
        (
            json!({ "encrypt": { "keys": [{ "id": "k", "env": "CACHY_NO_SUCH_VARIABLE" }] } }),
            "encrypt",
            "CACHY_NO_SUCH_VARIABLE",
        ),
        (json!({ "namespace": "" }), "namespace", "empty"),
        (json!({ "version": -1 }), "version", "non-negative"),
    ] {
        let error = configured(options.clone()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{options}");
        let text = error.to_string();
        assert!(
            text.contains(&format!("stores..{field}")) || text.contains(field),
            "{options}: {text}"
        );
        #[cfg(feature = "encrypt")]
        assert!(text.contains(says), "{options}: {text}");
        #[cfg(not(feature = "encrypt"))]
        let _ = says;
    }
}

#[cfg(feature = "encrypt")]
#[test]
fn keys_never_show_in_debug_or_errors() {
    let layer =
        configured(json!({ "encrypt": { "keys": [{ "id": "k", "key": KEY_HEX }] } })).unwrap();
    assert!(!format!("{layer:?}").contains(KEY_HEX));
    let config = StoreConfig::new("redis").with(
        "encrypt",
        json!({ "keys": [{ "id": "k", "key": KEY_HEX }] }),
    );
    assert!(!format!("{config:?}").contains(KEY_HEX), "{config:?}");
    let bad = format!("{}zz", &KEY_HEX[..62]);
    let error =
        configured(json!({ "encrypt": { "keys": [{ "id": "k", "key": bad }] } })).unwrap_err();
    assert!(!error.to_string().contains(&bad[..20]), "{error}");
}

#[cfg(feature = "encrypt")]
#[test]
fn a_key_given_where_a_table_belongs_is_not_echoed() {
    for options in [
        json!({ "encrypt": { "keys": [KEY_HEX] } }),
        json!({ "encrypt": KEY_HEX }),
        json!({ "encrypt": { "keys": [{ "id": "k", "kye": KEY_HEX }] } }),
    ] {
        let error = configured(options.clone()).unwrap_err();
        assert!(
            !format!("{error} {error:?}").contains(&KEY_HEX[..16]),
            "{error:?}"
        );
        let config = StoreConfig::new("redis").with("encrypt", options["encrypt"].clone());
        assert!(
            !format!("{config:?}").contains(&KEY_HEX[..16]),
            "{config:?}"
        );
    }
}

#[test]
fn zero_limits_are_config_errors() {
    for field in ["max_key_bytes", "max_value_bytes"] {
        let error = configured(json!({ field: 0 })).unwrap_err();
        assert!(error.to_string().contains(field), "{error}");
    }
}
