//! The behaviour suite on the file store, and the file format shared with Python cachy.

use std::time::{SystemTime, UNIX_EPOCH};

use cachy::{CacheManager, ErrorKind};
use cachy_testkit::Fixture;

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
async fn a_link_at_a_key_file_is_a_miss_and_a_write_replaces_the_link_not_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"9999999999\"secret\"").unwrap();
    let cache = manager(dir.path(), serde_json::json!({ "serializer": "json" }));
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha256);
    let path = store.path_of("k");
    cache.put("k", "v", 10).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&secret, &path).unwrap();

    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    std::fs::remove_file(&path).ok();
    std::os::unix::fs::symlink(&secret, &path).unwrap();
    cache.put("k", "mine", 10).await.unwrap();

    assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("mine")
    );
    assert_eq!(std::fs::read(&secret).unwrap(), b"9999999999\"secret\"");
}

#[cfg(unix)]
#[tokio::test]
async fn a_link_or_file_where_a_folder_belongs_is_never_followed_and_is_replaced() {
    // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8: folders ac/bd.
    for planted in ["ac", "ac/bd"] {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let cache = manager(
            dir.path(),
            serde_json::json!({ "serializer": "json", "hash_type": "md5" }),
        );
        let at = dir.path().join(planted);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(outside.path(), &at).unwrap();
        // A value the link leads to is not read.
        let lure = if planted == "ac" {
            outside.path().join("bd/acbd18db4cc2f85cedef654fccc4a4d8")
        } else {
            outside.path().join("acbd18db4cc2f85cedef654fccc4a4d8")
        };
        std::fs::create_dir_all(lure.parent().unwrap()).unwrap();
        std::fs::write(&lure, b"9999999999\"outside\"").unwrap();
        assert_eq!(cache.get::<String>("foo").await.unwrap(), None, "{planted}");
        assert!(!cache.forget("foo").await.unwrap(), "{planted}");
        assert!(lure.exists(), "{planted}: forget removed a file outside");

        cache.put("foo", "inside", 10).await.unwrap();
        assert!(
            std::fs::symlink_metadata(&at).unwrap().is_dir(),
            "{planted}"
        );
        assert_eq!(
            cache.get::<String>("foo").await.unwrap().as_deref(),
            Some("inside"),
            "{planted}"
        );
        assert_eq!(std::fs::read(&lure).unwrap(), b"9999999999\"outside\"");
        assert_eq!(
            std::fs::read_dir(lure.parent().unwrap()).unwrap().count(),
            1
        );

        // A plain file where a folder belongs: a miss, then replaced by the folder.
        std::fs::remove_dir_all(&at).unwrap();
        std::fs::write(&at, b"not a folder").unwrap();
        assert_eq!(cache.get::<String>("foo").await.unwrap(), None, "{planted}");
        cache.put("foo", "again", 10).await.unwrap();
        assert_eq!(
            cache.get::<String>("foo").await.unwrap().as_deref(),
            Some("again"),
            "{planted}"
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_lock_file_never_follows_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("created-through-the-lock");
    let lock = dir.path().join(".cachy-lock");
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));

    assert!(cache.add("k", "v", 10).await.unwrap());
    assert_eq!(cache.increment_by("n", 2).await.unwrap(), 2);

    assert!(
        !target.exists(),
        "the lock created a file outside the cache"
    );
    assert!(std::fs::symlink_metadata(&lock).unwrap().is_file());
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flush_and_put_run_concurrently_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({ "hash_type": "md5" }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while std::time::Instant::now() < deadline {
                // Few keys, so writers keep landing in the folders being flushed.
                cache
                    .put(&format!("k{}", i % 8), &format!("{writer}-{i}"), 60)
                    .await?;
                i += 1;
            }
            Ok::<_, cachy::Error>(())
        }));
    }
    for _ in 0..2 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            while std::time::Instant::now() < deadline {
                cache.flush().await?;
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    cache.flush().await.unwrap();
    cache.put("after", "kept", 60).await.unwrap();
    assert_eq!(
        cache.get::<String>("after").await.unwrap().as_deref(),
        Some("kept")
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(".cachy-trash"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn puts_survive_folders_removed_by_another_program() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({ "hash_type": "md5" }));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Another program flushing the way Python cachy does, every millisecond: removing
    // folders, taking no lock.
    let remover = {
        let (root, done) = (dir.path().to_owned(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for entry in std::fs::read_dir(&root).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        let _ = std::fs::remove_dir_all(path);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..300 {
                cache.put(&format!("k{}", i % 4), &writer, 60).await?;
            }
            Ok::<_, cachy::Error>(())
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    remover.join().unwrap();
    for result in results {
        result.unwrap();
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_folder_where_a_value_belongs_is_a_miss_and_a_write_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious");
    std::fs::write(&precious, "keep me").unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha256);
    let path = store.path_of("k");
    let plant = || {
        std::fs::create_dir_all(path.join("sub")).unwrap();
        std::fs::write(path.join("sub/file"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), path.join("link")).unwrap();
    };
    cache.put("k", "v", 10).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    plant();

    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    assert!(!cache.has("k").await.unwrap());
    if !path.exists() {
        plant();
    }
    cache.put("k", "new", 10).await.unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("new")
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");

    std::fs::remove_file(&path).unwrap();
    plant();
    assert_eq!(cache.increment_by("k", 5).await.unwrap(), 5);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
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

#[cfg(unix)]
#[tokio::test]
async fn a_fifo_at_a_key_file_is_a_miss_and_never_blocks_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha256);
    let path = store.path_of("k");
    cache.put("k", "v", 10).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());

    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), cache.get::<String>("k")).await;
    if read.is_err() {
        // Keep releasing the blocked reader (it may open the FIFO again) so that the runtime
        // can shut down, then fail. The folder stays, or the FIFO would go before the reader.
        let _kept = dir.keep();
        let fifo = path.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while fifo.exists() && std::time::Instant::now() < deadline {
                drop(std::fs::File::options().write(true).open(&fifo));
            }
        });
        panic!("get blocked on a FIFO");
    }
    assert_eq!(read.unwrap().unwrap(), None);
    assert!(!path.exists(), "the FIFO was not removed");
    cache.put("k", "v", 10).await.unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
}

#[tokio::test]
async fn a_huge_sparse_file_with_a_bad_header_is_a_miss_and_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha256);
    let path = store.path_of("k");
    cache.put("k", "v", 10).await.unwrap();
    // 1 TiB of holes: the header is zero bytes, so nothing past it may be read.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    assert!(!path.exists());
}

#[cfg(unix)]
#[tokio::test]
async fn flush_removes_what_an_interrupted_flush_left_and_links_named_like_folders() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep"), "x").unwrap();
    let trash = dir.path().join(".cachy-trash-1-2-3/ab");
    std::fs::create_dir_all(&trash).unwrap();
    std::fs::write(trash.join("f"), "x").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("ab")).unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    cache.put("k", "v", 10).await.unwrap();

    cache.flush().await.unwrap();

    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, [".cachy-lock"]);
    assert!(outside.path().join("keep").exists());
}

/// An item expires at its lifetime, to the millisecond, not at the next whole second of
/// the header (which stays whole seconds, rounded up, for Python cachy); a lock of one
/// second is free again after its store lifetime of two seconds, not three.
#[tokio::test]
async fn items_expire_at_their_lifetime_not_the_next_whole_second() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    for _ in 0..3 {
        cache.put("k", "v", Duration::from_secs(1)).await.unwrap();
        let written = Instant::now();
        tokio::time::sleep(Duration::from_millis(1150)).await;
        let read: Option<String> = cache.get("k").await.unwrap();
        if written.elapsed() < Duration::from_millis(1900) {
            assert_eq!(read, None, "still there 1.15 s after a put of 1 s");
        }
    }
    let lock = cache.lock("job", Duration::from_secs(1)).unwrap();
    assert!(lock.try_acquire().await.unwrap());
    let taken = Instant::now();
    let next = cache.lock("job", Duration::from_secs(1)).unwrap();
    next.acquire(Duration::from_secs(5)).await.unwrap();
    let blocked = taken.elapsed();
    assert!(
        blocked < Duration::from_millis(2500),
        "a lock of 1 s held others off for {blocked:?}"
    );
}

/// Give `path` (a file or folder) the modification time `when`; its change time, which
/// nothing can set back, stays now.
fn set_modified(path: &std::path::Path, when: SystemTime) {
    let file = if path.is_dir() {
        std::fs::File::open(path)
    } else {
        std::fs::File::options().write(true).open(path)
    };
    file.unwrap().set_modified(when).unwrap();
}

/// A writer killed mid-`put` leaves its temporary file behind. Killing a real writer at the
/// right moment cannot be timed reliably, so the file is made as a write leaves it (the
/// name `tempfile` gives, in the value's folder; a unit test checks the names match) and
/// aged by setting its modification time back.
#[tokio::test]
async fn prune_removes_temporary_files_abandoned_over_a_minute_ago_and_nothing_else() {
    use cachy::Store;
    use cachy::stores::{FileStore, HashType, Tally};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = FileStore::new(&root, HashType::Md5);
    store.put("kept", b"value", None).await.unwrap();
    let folder = store.path_of("kept").parent().unwrap().to_owned();
    let expired = store.path_of("expired");
    std::fs::create_dir_all(expired.parent().unwrap()).unwrap();
    std::fs::write(&expired, "0000000001old").unwrap();
    let long_ago = SystemTime::now() - Duration::from_secs(120);
    let aged = |path: &std::path::Path, content: &str| {
        std::fs::write(path, content).unwrap();
        set_modified(path, long_ago);
    };

    let abandoned = folder.join(".tmpAbC123");
    aged(&abandoned, "9999999999half a v");
    // Writes in progress: a new file, and one whose modification time a write has just moved
    // to the value's expiry before renaming it into place.
    let fresh = folder.join(".tmpXyZ789");
    std::fs::write(&fresh, "9999999999in prog").unwrap();
    let expiring = folder.join(".tmpFuT456");
    std::fs::write(&expiring, "1999999999about to").unwrap();
    set_modified(&expiring, SystemTime::now() + Duration::from_secs(86_400));
    // Not the store's, though aged too: other names, and temporary names where the store
    // never writes (a folder above the values, the root).
    let foreign = [
        folder.join(".tmpAbC12"),
        folder.join(".tmpAbC1234"),
        folder.join(".tmpAb-123"),
        folder.join("x.tmpAbC12"),
        folder.join("notes.txt"),
        folder.parent().unwrap().join(".tmpAbC123"),
        root.join(".tmpAbC123"),
    ];
    for path in &foreign {
        aged(path, "not the store's");
    }
    // A folder by a temporary file's name.
    let named_folder = folder.join(".tmpDiR123");
    std::fs::create_dir(&named_folder).unwrap();
    aged(&named_folder.join("inside"), "not the store's");
    set_modified(&named_folder, long_ago);

    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("ee")).unwrap();
    let outside_file = outside.join("ee/.tmpAbC123");
    aged(&outside_file, "someone else's");
    #[cfg(unix)]
    {
        // A link by a temporary file's name to an aged file: taken for what it is, a link
        // (new), never for its target; and a link where a digest folder belongs, to a folder
        // holding an aged file of a temporary file's name: never walked into.
        std::os::unix::fs::symlink(&outside_file, folder.join(".tmpLnK123")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("ff")).unwrap();
    }

    let inventory = store.inventory(None).await.unwrap();
    assert_eq!(
        (
            inventory.live.files,
            inventory.expired.files,
            inventory.corrupt
        ),
        (1, 1, Tally::default()),
        "temporary files are not values, nor corrupt ones: {inventory:?}"
    );
    let half_written = Tally {
        files: 1,
        bytes: 18,
    };
    assert_eq!(inventory.abandoned, half_written, "{inventory:?}");

    assert_eq!(store.prune().await.unwrap(), half_written);
    assert!(!abandoned.exists());
    for kept in [
        &fresh,
        &expiring,
        &expired,
        &named_folder.join("inside"),
        &outside_file,
    ]
    .into_iter()
    .chain(&foreign)
    {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    #[cfg(unix)]
    {
        assert!(std::fs::symlink_metadata(folder.join(".tmpLnK123")).is_ok());
        assert!(std::fs::symlink_metadata(root.join("ff")).is_ok());
    }
    assert_eq!(store.get("kept").await.unwrap(), Some(b"value".to_vec()));
    let inventory = store.inventory(None).await.unwrap();
    assert_eq!(
        (inventory.live.files, inventory.expired.files),
        (1, 1),
        "values, expired ones too, are left to reads and flush"
    );
    assert_eq!(inventory.abandoned, Tally::default());
    assert_eq!(store.prune().await.unwrap(), Tally::default());
}

#[tokio::test]
async fn prune_of_a_folder_never_written_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        cachy::stores::FileStore::new(dir.path().join("never"), cachy::stores::HashType::Sha256);
    assert_eq!(
        store.prune().await.unwrap(),
        cachy::stores::Tally::default()
    );
    assert!(!dir.path().join("never").exists(), "prune creates nothing");
}
