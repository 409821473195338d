//! What other programs and people may leave in the cache folder: links, FIFOs, folders
//! where files belong, sparse files, leftovers of an interrupted flush.

use super::*;

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
