//! The blocking facade: the same behaviour from plain threads, and a clear error (not a
//! panic) when called from async code.

use cachy::ErrorKind;
use cachy::blocking::CacheManager;
use serde_json::json;

fn cache() -> CacheManager {
    CacheManager::from_value(json!({ "stores": { "dict": { "driver": "dict" } } })).unwrap()
}

#[test]
fn the_blocking_api_covers_the_repository() {
    let cache = cache();
    cache.put("k", "v", 10).unwrap();
    assert_eq!(cache.get::<String>("k").unwrap().as_deref(), Some("v"));
    assert!(cache.has("k").unwrap());
    assert_eq!(cache.get_or("x", 1).unwrap(), 1);
    assert_eq!(cache.get_or_else("x", || 2).unwrap(), 2);
    assert!(cache.add("a", &1, 10).unwrap());
    assert!(!cache.add("a", &2, 10).unwrap());
    cache.forever("f", &1).unwrap();
    assert_eq!(cache.increment_by("n", 2).unwrap(), 2);
    assert_eq!(cache.decrement_by("n", 5).unwrap(), -3);
    assert_eq!(cache.increment("n").unwrap(), -2);
    assert_eq!(cache.decrement("n").unwrap(), -3);
    let r: String = cache
        .remember("r", 10, || Ok::<_, cachy::Error>("computed".into()))
        .unwrap();
    assert_eq!(r, "computed");
    let again: String = cache
        .remember("r", 10, || {
            Err(cachy::Error::new(ErrorKind::Backend, "must not run"))
        })
        .unwrap();
    assert_eq!(again, "computed");
    let rf: u8 = cache
        .remember_forever("rf", || Ok::<_, cachy::Error>(3))
        .unwrap();
    assert_eq!(rf, 3);
    cache.put_many(&[("m1", 1), ("m2", 2)], 10).unwrap();
    assert_eq!(cache.many::<u8>(&["m1", "m3"]).unwrap(), [Some(1), None]);
    assert_eq!(cache.pull::<String>("k").unwrap().as_deref(), Some("v"));
    assert!(cache.forget("f").unwrap());
    let repo = cache.store("dict").unwrap();
    assert_eq!(repo.name(), "dict");
    repo.set_default_cache_time(15);
    assert_eq!(repo.default_cache_time(), 15);
    cache.flush().unwrap();
    assert!(!cache.has("m1").unwrap());
}

#[test]
fn a_file_store_works_from_threads() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::from_value(json!({
        "stores": { "file": { "driver": "file", "path": dir.path() } }
    }))
    .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                cache.put(&format!("k{i}"), &i, 10).unwrap();
                cache.increment("n").unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(cache.get::<i64>("n").unwrap(), Some(8));
    assert_eq!(cache.get::<i64>("k3").unwrap(), Some(3));
}

#[tokio::test]
async fn calling_the_blocking_api_inside_a_runtime_is_an_error_not_a_panic() {
    let cache = tokio::task::spawn_blocking(cache).await.unwrap();
    let err = cache.get::<String>("k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Runtime);
    assert!(err.to_string().contains("async API"), "{err}");
    drop(cache); // dropping inside a runtime is fine too
}

#[test]
fn concurrent_blocking_remembers_compute_once_across_threads() {
    let cache = cache();
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let cache = cache.clone();
            let runs = runs.clone();
            std::thread::spawn(move || {
                cache.remember("slow", 10, || {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    Ok::<_, cachy::Error>(42u32)
                })
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().unwrap(), 42);
    }
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_api_works_in_spawn_blocking_and_on_a_multi_thread_runtime() {
    let cache = tokio::task::spawn_blocking(|| {
        let cache = cache();
        cache.put("k", "from spawn_blocking", 10).unwrap();
        cache
    })
    .await
    .unwrap();
    // From an async task, the call goes through `block_in_place`: it works, and the
    // runtime's other tasks keep running meanwhile.
    assert_eq!(
        cache.get::<String>("k").unwrap().as_deref(),
        Some("from spawn_blocking")
    );
    let handle = tokio::runtime::Handle::current();
    let on_thread = std::thread::spawn(move || {
        let _entered = handle.enter();
        cache.increment("n")
    });
    assert_eq!(on_thread.join().unwrap().unwrap(), 1);
}

#[test]
fn locks_work_from_threads() {
    let cache = cache();
    let lock = cache
        .lock("job", std::time::Duration::from_secs(30))
        .unwrap();
    assert!(lock.try_acquire().unwrap());
    let other = cache.clone();
    let taken = std::thread::spawn(move || {
        other
            .lock("job", std::time::Duration::from_secs(30))
            .unwrap()
            .try_acquire()
            .unwrap()
    })
    .join()
    .unwrap();
    assert!(!taken, "held by the first thread");
    assert!(lock.release().unwrap());
    assert_eq!(
        lock.with_lock(std::time::Duration::from_secs(1), || 7)
            .unwrap(),
        7
    );
}

/// A blocking `remember` closure may use the blocking API itself (another key, a lock, a
/// counter); a `remember` of its own key from inside is an error, not a hang.
#[test]
fn a_blocking_remember_closure_may_call_the_blocking_api() {
    let cache = cachy::blocking::CacheManager::from_value(serde_json::json!({
        "stores": { "dict": { "driver": "dict" } }
    }))
    .unwrap();
    cache.put("base", &40, 10).unwrap();
    let total: i64 = cache
        .remember("total", 10, || {
            let base: i64 = cache.get("base")?.unwrap_or(0);
            let inner: i64 = cache.remember("inner", 10, || Ok::<_, cachy::Error>(2))?;
            cache.increment("computed")?;
            Ok::<_, cachy::Error>(base + inner)
        })
        .unwrap();
    assert_eq!(total, 42);
    assert_eq!(cache.get::<i64>("computed").unwrap(), Some(1));
    let error = cache
        .remember("again", 10, || {
            cache.remember("again", 10, || Ok::<_, cachy::Error>(1))
        })
        .unwrap_err();
    assert_eq!(error.kind(), cachy::ErrorKind::Remember, "{error}");
}

/// A blocking `remember_with` of a key from inside its own factory (which runs on a thread
/// of its own) is an error, as in async code, not a wait for itself.
#[test]
fn a_blocking_remember_with_of_its_own_key_is_an_error_not_a_hang() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let cache = cachy::blocking::CacheManager::from_value(serde_json::json!({
            "stores": { "dict": { "driver": "dict" } }
        }))
        .unwrap();
        let options = cachy::RememberOptions::new(std::time::Duration::from_secs(60));
        let (inner, nested) = (cache.clone(), options.clone());
        let result: Result<i64, cachy::Error> = cache.remember_with("k", &options, move || {
            inner.remember_with("k", &nested, || Ok::<_, cachy::Error>(5))
        });
        done.send(result).unwrap();
    });
    let result = finished
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("finished instead of waiting for itself");
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Remember);
}
