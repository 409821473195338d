//! Writers, flushes, expiry and prune racing each other and other programs.

use super::*;

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
async fn prune_removes_expired_values_and_temporary_files_abandoned_over_a_minute_ago_and_nothing_else()
 {
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

    let expired_value = Tally {
        files: 1,
        bytes: 13,
    };
    assert_eq!(
        store.prune().await.unwrap(),
        Tally {
            files: half_written.files + expired_value.files,
            bytes: half_written.bytes + expired_value.bytes,
        }
    );
    assert!(!abandoned.exists());
    assert!(!expired.exists(), "an expired value is pruned");
    for kept in [
        &fresh,
        &expiring,
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
        (1, 0),
        "live values are kept"
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

/// A put finding the lock file held exclusively (as another process's flush holds it) waits
/// for it on the blocking pool: the caller's thread, here a runtime's only one, keeps
/// running its other tasks meanwhile, and the put lands once the lock is released.
#[tokio::test(flavor = "current_thread")]
async fn a_put_waits_for_a_held_lock_off_the_callers_thread() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(dir.path(), serde_json::json!({}));
    cache.put("first", &1, 60).await.unwrap();
    // Another open file description, as another process would have: flock conflicts.
    let held = std::sync::Arc::new(std::fs::File::open(dir.path().join(".cachy-lock")).unwrap());
    held.lock().unwrap();
    // Should the put block the thread, the lock is released later, and the ticks come late.
    std::thread::spawn({
        let held = std::sync::Arc::clone(&held);
        move || {
            std::thread::sleep(std::time::Duration::from_secs(5));
            let _ = held.unlock();
        }
    });
    let started = std::time::Instant::now();
    let put = tokio::spawn({
        let cache = cache.clone();
        async move { cache.put("second", &2, 60).await }
    });
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "the put held the caller's thread while it waited for the lock"
    );
    assert!(!put.is_finished(), "the put waits for the lock");
    held.unlock().unwrap();
    put.await.unwrap().unwrap();
    assert_eq!(cache.get::<i32>("second").await.unwrap(), Some(2));
    assert_eq!(cache.get::<i32>("first").await.unwrap(), Some(1));
}

/// A read of an expired or corrupted file while the lock is held exclusively elsewhere is a
/// miss at once: it leaves the file for a later read or `prune` instead of waiting for the
/// lock on the caller's thread.
#[tokio::test(flavor = "current_thread")]
async fn a_read_of_a_dead_file_never_waits_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha256);
    cachy::Store::put(&store, "k", b"v", None).await.unwrap();
    std::fs::write(store.path_of("k"), b"not a cache file").unwrap();
    let held = std::fs::File::open(dir.path().join(".cachy-lock")).unwrap();
    held.lock().unwrap();
    let started = std::time::Instant::now();
    assert_eq!(cachy::Store::get(&store, "k").await.unwrap(), None);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(store.path_of("k").exists(), "left for later");
    held.unlock().unwrap();
    assert_eq!(cachy::Store::get(&store, "k").await.unwrap(), None);
    assert!(
        !store.path_of("k").exists(),
        "removed once the lock is free"
    );
}

/// Polled outside tokio, a put that would have to wait for the lock is a `Runtime` error
/// naming the store, not a panic; one that need not wait is written.
#[test]
fn a_put_outside_tokio_that_must_wait_is_a_runtime_error() {
    fn poll_to_end<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = cachy::stores::FileStore::new(dir.path(), cachy::stores::HashType::Sha256);
    poll_to_end(cachy::Store::put(&store, "free", b"1", None)).unwrap();
    let held = std::fs::File::open(dir.path().join(".cachy-lock")).unwrap();
    held.lock().unwrap();
    let error = poll_to_end(cachy::Store::put(&store, "held", b"2", None)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Runtime, "{error}");
    assert!(error.to_string().contains("file store"), "{error}");
    held.unlock().unwrap();
    assert_eq!(
        poll_to_end(cachy::Store::get(&store, "free")).unwrap(),
        Some(b"1".to_vec())
    );
}
