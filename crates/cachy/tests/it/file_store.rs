//! The behaviour suite on the file store, and the file format shared with Python cachy;
//! what others may leave in its folder (`hostile.rs`), and writers, flushes, expiry and
//! prune racing each other (`maintenance.rs`).

use std::time::{SystemTime, UNIX_EPOCH};

use cachy::{CacheManager, ErrorKind};
use cachy_testkit::Fixture;

mod hostile;
mod maintenance;

fn manager(dir: &std::path::Path, extra: serde_json::Value) -> CacheManager {
    let mut store = serde_json::json!({ "driver": "file", "path": dir });
    store
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    CacheManager::from_value(serde_json::json!({ "stores": { "file": store } })).unwrap()
}

async fn file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = manager(dir.path(), serde_json::json!({}))
        .store("file")
        .unwrap();
    Fixture::new(repo, dir)
}

cachy_testkit::behaviour_suite!(file);

/// Msgpack keeps counters as msgpack integers, incremented by compare and swap.
mod msgpack {
    use super::*;

    async fn file_msgpack() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cache = manager(dir.path(), serde_json::json!({ "serializer": "msgpack" }));
        Fixture::new(cache.store(None).unwrap(), dir)
    }

    cachy_testkit::behaviour_suite!(file_msgpack);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn files_hold_a_ten_digit_expiry_then_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(
        dir.path(),
        serde_json::json!({ "serializer": "json", "hash_type": "md5" }),
    );
    cache.put("foo", "bar", 10).await.unwrap();
    cache.forever("n", &42).await.unwrap();
    // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8
    let foo = std::fs::read(dir.path().join("ac/bd/acbd18db4cc2f85cedef654fccc4a4d8")).unwrap();
    let expiry: u64 = std::str::from_utf8(&foo[..10]).unwrap().parse().unwrap();
    assert!((now() + 599..=now() + 601).contains(&expiry), "{expiry}");
    assert_eq!(&foo[10..], b"\"bar\"");
    // md5("n") = 7b8b965ad4bca0e41ab51de7b31363a1
    let n = std::fs::read(dir.path().join("7b/8b/7b8b965ad4bca0e41ab51de7b31363a1")).unwrap();
    assert_eq!(n, b"999999999942");
}

#[tokio::test]
async fn a_file_written_by_python_cachy_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({ "hash_type": "sha1" }));
    let repo = cache.store("file").unwrap();
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha1);
    let path = store.path_of("py");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // pickle.dumps({'a': [1, 'b']}, protocol=5) as Python 3.11 writes it.
    let pickled = b"\x80\x05\x95\x12\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94]\x94(K\x01\x8c\x01b\x94es.";
    let mut content = format!("{}", now() + 600).into_bytes();
    content.extend_from_slice(pickled);
    std::fs::write(&path, content).unwrap();
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Doc {
        a: (u8, String),
    }
    assert_eq!(
        repo.get::<Doc>("py").await.unwrap(),
        Some(Doc {
            a: (1, "b".to_owned())
        })
    );
}

#[tokio::test]
async fn a_corrupted_or_truncated_file_is_a_miss_and_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha256);
    for (key, content) in [
        ("short", &b"12345"[..]),
        ("garbage", b"not a cache file at all"),
        ("empty", b""),
    ] {
        cache.put(key, "v", 10).await.unwrap();
        std::fs::write(store.path_of(key), content).unwrap();
        assert_eq!(cache.get::<String>(key).await.unwrap(), None, "{key}");
        assert!(!store.path_of(key).exists(), "{key} was not removed");
    }
}

#[tokio::test]
async fn a_valid_header_with_a_corrupted_value_is_a_deserialize_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha256);
    cache.put("k", "v", 10).await.unwrap();
    std::fs::write(store.path_of("k"), b"9999999999\x80\x05garbage").unwrap();
    let err = cache.get::<String>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Deserialize, "{err}");
}

#[tokio::test]
async fn an_expired_file_is_removed_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha256);
    cache.put("k", "v", 10).await.unwrap();
    let mut content = format!("{}", now() - 1).into_bytes();
    content.extend_from_slice(&std::fs::read(store.path_of("k")).unwrap()[10..]);
    std::fs::write(store.path_of("k"), content).unwrap();
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    assert!(!store.path_of("k").exists());
}

#[tokio::test]
async fn flush_leaves_files_that_are_not_cache_entries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    cache.put("k", "v", 10).await.unwrap();
    cache.flush().await.unwrap();
    assert!(!cache.has("k").await.unwrap());
    assert!(dir.path().join("notes.txt").exists());
    assert!(dir.path().join("photos").exists());
}

#[tokio::test]
async fn an_unwritable_folder_is_a_backend_error_and_keeps_old_values() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    cache.put("k", "old", 10).await.unwrap();
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, "a file, not a folder").unwrap();
    let blocked = manager(&blocker.join("sub"), serde_json::json!({}));
    let err = blocked.put("k", "v", 10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert_eq!(err.store(), Some("file"));
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("old")
    );
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[cfg(unix)]
#[tokio::test]
async fn files_and_folders_are_owner_only_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let cache = manager(&root, serde_json::json!({ "hash_type": "md5" }));
    cache.put("foo", "v", 10).await.unwrap();
    cache.add("other", "v", 10).await.unwrap();

    assert_eq!(mode_of(&root), 0o700);
    assert_eq!(mode_of(&root.join("ac")), 0o700);
    assert_eq!(mode_of(&root.join("ac/bd")), 0o700);
    assert_eq!(
        mode_of(&root.join("ac/bd/acbd18db4cc2f85cedef654fccc4a4d8")),
        0o600
    );
    assert_eq!(mode_of(&root.join(".cachy-lock")), 0o600);
}

#[cfg(unix)]
#[tokio::test]
async fn the_permissions_option_sets_modes_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shared");
    // Group write: a umask of 022 (the usual) would take it away.
    let cache = manager(
        &root,
        serde_json::json!({ "hash_type": "md5", "permissions": "0660" }),
    );
    cache.put("foo", "v", 10).await.unwrap();
    cache.add("other", "v", 10).await.unwrap();

    assert_eq!(mode_of(&root), 0o770);
    assert_eq!(mode_of(&root.join("ac/bd")), 0o770);
    assert_eq!(
        mode_of(&root.join("ac/bd/acbd18db4cc2f85cedef654fccc4a4d8")),
        0o660
    );
    assert_eq!(mode_of(&root.join(".cachy-lock")), 0o660);

    let store = cachy::stores::FileStore::new(dir.path().join("built"), Default::default())
        .with_permissions(0o640)
        .unwrap();
    cachy::Store::put(&store, "foo", b"v", Some(60))
        .await
        .unwrap();
    assert_eq!(mode_of(&store.path_of("foo")), 0o640);
    assert_eq!(mode_of(store.path_of("foo").parent().unwrap()), 0o750);
}

#[test]
fn a_bad_permissions_value_is_a_config_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        serde_json::json!("rw-r-----"),
        serde_json::json!("0400"),
        serde_json::json!("4755"),
        serde_json::json!("06400"),
        serde_json::json!(640),
    ] {
        let err = CacheManager::from_value(serde_json::json!({
            "stores": { "file": { "driver": "file", "path": dir.path(), "permissions": bad } }
        }))
        .and_then(|cache| cache.store("file"))
        .map(drop)
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad}: {err}");
        assert_eq!(err.field(), Some("stores.file.permissions"), "{bad}: {err}");
    }
    let err = cachy::stores::FileStore::new(dir.path(), Default::default())
        .with_permissions(0o1777)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}
