//! The options every store takes for its keys and values: compression across a setting
//! change, encryption (rotation, tampering, another key), size limits, namespaces and
//! versions.

use std::time::Duration;

use cachy::{ErrorKind, RememberOptions, Repository};
use serde_json::json;

use super::{TEN_MINUTES, User, ann};

const KEY_2025: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const KEY_2026: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

/// A list of users, about 60 KB in any format, which compresses well.
fn users() -> Vec<User> {
    (0..800)
        .map(|id| User {
            id,
            name: format!("user number {id}"),
            tags: vec!["people".to_owned(), format!("group {}", id % 7)],
            score: Some(f64::from(u32::try_from(id).unwrap()) / 4.0),
        })
        .collect()
}

fn reconfigured(repo: &Repository, options: serde_json::Value) -> Repository {
    repo.reconfigured(options.clone())
        .unwrap_or_else(|e| panic!("{options}: {e}"))
}

/// The bytes stored under `key`, below every option.
async fn raw(repo: &Repository, key: &str) -> Vec<u8> {
    repo.backend()
        .get(key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{key:?} is stored"))
}

/// A store compressing with zstd or lz4 and one not compressing read each other's values,
/// plain and fail-safe; a store with no options at all reads compressed values too; short
/// values and counters are stored as they are.
pub async fn compressed_values_read_back_across_a_setting_change(repo: &Repository) {
    let zstd = reconfigured(repo, json!({ "compress": { "algorithm": "zstd" } }));
    let lz4 = reconfigured(
        repo,
        json!({ "compress": { "algorithm": "lz4", "min_bytes": 512 } }),
    );
    let none = reconfigured(repo, json!({ "compress": { "algorithm": "none" } }));
    let users = users();
    zstd.put("users", &users, TEN_MINUTES).await.unwrap();
    let encoded = repo.serializer().serialize(&users).unwrap().len();
    let stored = raw(repo, "users").await.len();
    // A hybrid store's second level is a store of its own, which opens what it holds.
    let in_front = (&**repo.backend() as &dyn std::any::Any).is::<cachy::stores::HybridStore>();
    assert!(
        stored * 4 < encoded || in_front,
        "zstd stored {stored} bytes of a {encoded}-byte value"
    );
    for reader in [&none, &lz4, &zstd] {
        assert_eq!(
            reader.get::<Vec<User>>("users").await.unwrap().as_ref(),
            Some(&users)
        );
    }
    if !repo.store().is_process_local() {
        assert_eq!(
            repo.get::<Vec<User>>("users").await.unwrap().as_ref(),
            Some(&users)
        );
    }
    none.put("plain", &users, TEN_MINUTES).await.unwrap();
    lz4.put("lz4", &users, TEN_MINUTES).await.unwrap();
    assert_eq!(
        zstd.get::<Vec<User>>("plain").await.unwrap().as_ref(),
        Some(&users)
    );
    assert_eq!(
        zstd.get::<Vec<User>>("lz4").await.unwrap().as_ref(),
        Some(&users)
    );
    let options = RememberOptions::new(Duration::from_secs(60)).fail_safe(Duration::from_secs(600));
    let computed: Vec<User> = zstd
        .remember_with("remembered", &options, {
            let users = users.clone();
            move || async move { Ok::<_, cachy::Error>(users) }
        })
        .await
        .unwrap();
    assert_eq!(computed, users);
    assert_eq!(
        none.get::<Vec<User>>("remembered").await.unwrap().as_ref(),
        Some(&users)
    );
    assert!(none.has("remembered").await.unwrap());
    zstd.put("short", &"short", TEN_MINUTES).await.unwrap();
    assert!(
        !raw(repo, "short").await.starts_with(&[0xC1, b'c', b'z']),
        "not compressed"
    );
    assert_eq!(zstd.increment_by("hits", 5).await.unwrap(), 5);
    assert_eq!(none.increment("hits").await.unwrap(), 6);
    assert_eq!(zstd.get::<i64>("hits").await.unwrap(), Some(6));
    // A lock whose owner is long enough to be compressed is still released by it.
    let squeezing = reconfigured(
        repo,
        json!({ "compress": { "algorithm": "lz4", "min_bytes": 1 } }),
    );
    let owner = "worker-1:".repeat(8);
    let lock = squeezing.restore_lock("job", Duration::from_secs(30), owner.clone());
    assert!(lock.try_acquire().await.unwrap());
    assert!(
        lock.release().await.unwrap(),
        "the owner releases a compressed token"
    );
    assert!(
        squeezing
            .lock("job", Duration::from_secs(30))
            .try_acquire()
            .await
            .unwrap()
    );
}

/// Values are encrypted with the first listed key and read with any; a value under a key
/// the reader does not list, one tampered with, one moved to another key and one stored in
/// clear are errors (and a cache failure `remember_with` computes around); counters and
/// locks keep working.
pub async fn encrypted_values_rotate_and_refuse_tampering_and_other_keys(repo: &Repository) {
    let old = reconfigured(
        repo,
        json!({ "encrypt": { "keys": [{ "id": "2025", "key": KEY_2025 }] } }),
    );
    let new = reconfigured(
        repo,
        json!({ "encrypt": { "keys": [
            { "id": "2026", "key": KEY_2026 },
            { "id": "2025", "key": KEY_2025 },
        ] } }),
    );
    old.put("ann", &ann(), TEN_MINUTES).await.unwrap();
    assert_eq!(
        new.get::<User>("ann").await.unwrap(),
        Some(ann()),
        "rotation reads old values"
    );
    let stored = raw(repo, "ann").await;
    assert!(
        !stored.windows(3).any(|w| w == b"Ann"),
        "the name is not in clear"
    );
    new.put("ann2", &ann(), TEN_MINUTES).await.unwrap();
    let error = old.get::<User>("ann2").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Deserialize);
    assert!(
        error.to_string().contains("\"2026\""),
        "names the key id: {error}"
    );

    let mut tampered = raw(repo, "ann2").await;
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    repo.backend()
        .put("ann2", &tampered, Some(600))
        .await
        .unwrap();
    assert_eq!(
        new.get::<User>("ann2").await.unwrap_err().kind(),
        ErrorKind::Deserialize
    );
    let errors = new.stats().errors;
    let bob = User {
        name: "Bob".to_owned(),
        ..ann()
    };
    let options = RememberOptions::new(Duration::from_secs(60));
    let recomputed: User = new
        .remember_with("ann2", &options, {
            let bob = bob.clone();
            move || async move { Ok::<_, cachy::Error>(bob) }
        })
        .await
        .unwrap();
    assert_eq!(recomputed, bob, "a tampered value is recomputed");
    assert_eq!(new.stats().errors, errors + 1, "and the failure observed");
    assert_eq!(
        new.get::<User>("ann2").await.unwrap(),
        Some(bob),
        "and overwritten"
    );

    repo.backend()
        .put("moved", &stored, Some(600))
        .await
        .unwrap();
    assert!(
        new.get::<User>("moved").await.is_err(),
        "a value moved to another key"
    );
    repo.put("clear", &ann(), TEN_MINUTES).await.unwrap();
    assert!(new.get::<User>("clear").await.is_err(), "a value in clear");
    let moving = reconfigured(
        repo,
        json!({ "encrypt": { "keys": [{ "id": "2026", "key": KEY_2026 }], "allow_plaintext": true } }),
    );
    assert_eq!(moving.get::<User>("clear").await.unwrap(), Some(ann()));
    // A copy another repository kept decoded is no way around the refusal.
    assert!(repo.get_shared::<User>("clear").await.unwrap().is_some());
    assert!(
        new.get_shared::<User>("clear").await.is_err(),
        "get_shared refuses clear values too"
    );

    assert_eq!(new.increment("hits").await.unwrap(), 1);
    assert_eq!(new.increment_by("hits", 2).await.unwrap(), 3);
    assert_ne!(raw(repo, "hits").await, b"3", "the counter is encrypted");
    assert_eq!(new.get::<i64>("hits").await.unwrap(), Some(3));
    let lock = new.lock("job", Duration::from_secs(30));
    assert!(lock.try_acquire().await.unwrap());
    assert!(
        !new.lock("job", Duration::from_secs(30))
            .try_acquire()
            .await
            .unwrap()
    );
    assert!(lock.release().await.unwrap());
}

/// A value or key over the store's limit is an error naming the limit, and nothing is
/// sent: what the key held stays; `remember_with` still returns its value.
pub async fn values_and_keys_over_the_limits_are_refused_before_they_are_sent(repo: &Repository) {
    let limited = reconfigured(repo, json!({ "max_value_bytes": 200, "max_key_bytes": 40 }));
    limited.put("kept", &"small", TEN_MINUTES).await.unwrap();
    let big = "x".repeat(1000);
    let error = limited.put("kept", &big, TEN_MINUTES).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("max_value_bytes"), "{error}");
    assert_eq!(
        limited.get::<String>("kept").await.unwrap().as_deref(),
        Some("small")
    );
    let long_key = "k".repeat(41);
    for error in [
        limited.put(&long_key, &1, TEN_MINUTES).await.unwrap_err(),
        limited.get::<i64>(&long_key).await.unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(error.to_string().contains("max_key_bytes"), "{error}");
    }
    let items = [("a", "small".to_owned()), ("b", big.clone())];
    assert!(limited.put_many(&items, TEN_MINUTES).await.is_err());
    assert_eq!(
        limited.get::<String>("a").await.unwrap(),
        None,
        "nothing of the batch sent"
    );
    let options = RememberOptions::new(Duration::from_secs(60));
    let errors = limited.stats().errors;
    let value: String = limited
        .remember_with("big", &options, {
            let big = big.clone();
            move || async move { Ok::<_, cachy::Error>(big) }
        })
        .await
        .unwrap();
    assert_eq!(value, big);
    assert_eq!(
        limited.stats().errors,
        errors + 1,
        "the refused write is observed"
    );
    assert_eq!(limited.get::<String>("big").await.unwrap(), None);
    let tiny = reconfigured(repo, json!({ "max_value_bytes": 3 }));
    tiny.put("counter", &999, TEN_MINUTES).await.unwrap();
    // Whatever the format keeps counters in, none grows past the limit.
    match tiny.increment("counter").await {
        Ok(count) => {
            assert_eq!(count, 1000);
            assert!(
                raw(repo, "counter").await.len() <= 3,
                "a counter past the limit"
            );
        }
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
            assert_eq!(tiny.get::<i64>("counter").await.unwrap(), Some(999));
        }
    }
}

/// Two versions (or namespaces) of a store keep their own items under the same keys, with
/// their own counters and tags; a call's own version keeps its values apart too.
pub async fn versions_and_namespaces_keep_their_items_apart(repo: &Repository) {
    let v1 = reconfigured(repo, json!({ "version": 1 }));
    let v2 = reconfigured(repo, json!({ "version": 2 }));
    let billing = reconfigured(repo, json!({ "namespace": "billing", "version": 2 }));
    v1.put("user", &"ann", TEN_MINUTES).await.unwrap();
    v2.put("user", &7u32, TEN_MINUTES).await.unwrap();
    assert_eq!(
        v1.get::<String>("user").await.unwrap().as_deref(),
        Some("ann")
    );
    assert_eq!(v2.get::<u32>("user").await.unwrap(), Some(7));
    assert_eq!(billing.get::<u32>("user").await.unwrap(), None);
    // A key of a store without a version is never a versioned store's key.
    assert_eq!(repo.get::<u32>("v2:user").await.unwrap(), None);
    assert!(
        repo.reconfigured(json!({ "namespace": "billing:v2" }))
            .is_err()
    );
    assert_eq!(repo.get::<u32>("user").await.unwrap(), None);
    assert!(v2.forget("user").await.unwrap());
    assert_eq!(
        v1.get::<String>("user").await.unwrap().as_deref(),
        Some("ann")
    );
    assert_eq!(v1.increment("count").await.unwrap(), 1);
    assert_eq!(v2.increment("count").await.unwrap(), 1);
    v2.tags("t").put("x", &2, TEN_MINUTES).await.unwrap();
    assert_eq!(v1.tags("t").get::<i32>("x").await.unwrap(), None);
    assert_eq!(v2.tags("t").get::<i32>("x").await.unwrap(), Some(2));

    let options = RememberOptions::new(Duration::from_secs(60));
    let old: u32 = repo
        .remember_with("price", &options, || async { Ok::<_, cachy::Error>(990) })
        .await
        .unwrap();
    let new: String = repo
        .remember_with("price", &options.clone().version(2), || async {
            Ok::<_, cachy::Error>("9.90 EUR".to_owned())
        })
        .await
        .unwrap();
    assert_eq!((old, new.as_str()), (990, "9.90 EUR"));
    assert_eq!(repo.get::<u32>("price").await.unwrap(), Some(990));
    let again: String = repo
        .remember_with("price", &options.version(2), || async {
            Ok::<_, cachy::Error>("recomputed".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(again, "9.90 EUR", "version 2 is cached under its own key");
}
