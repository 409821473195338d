//! SQLite's own concerns: the file (kept, made, refused), several processes and connections
//! writing one file, and rows another program wrote.

use super::*;

#[tokio::test]
async fn a_sqlite_file_persists_across_managers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("persist.db").display());
    let config =
        json!({ "stores": { "db": { "driver": "database", "url": url, "create_table": true } } });
    CacheManager::from_value(config.clone())
        .unwrap()
        .forever("k", "kept")
        .await
        .unwrap();
    let again = CacheManager::from_value(config).unwrap();
    assert_eq!(
        again.get::<String>("k").await.unwrap().as_deref(),
        Some("kept")
    );
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_folder_gets_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("var").join("cache").join("cache.db");
    let url = format!("sqlite://{}", file.display());
    let cache = manager(&url, json!({ "create_table": true }));
    cache.put("k", &1i64, 5).await.unwrap();
    assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
    assert!(file.exists());
}

#[tokio::test]
async fn a_sqlite_file_that_cannot_be_opened_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"a file").unwrap();
    let file = blocker.join("cache.db");
    let cache = manager(&format!("sqlite://{}", file.display()), json!({}));
    let error = cache.get::<i64>("k").await.unwrap_err();
    assert!(
        error.to_string().contains(&blocker.display().to_string()),
        "{error}"
    );
}

/// A SQLite URL naming a folder is a configuration error naming the field (it was an
/// `Unavailable` error, which a caller retries), and a table dropped after the store created
/// it is an error saying so (it told to set `create_table = true`, which was set).
#[tokio::test]
async fn a_folder_as_the_sqlite_file_and_a_dropped_table_are_errors_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let cache = manager(&format!("sqlite://{}", dir.path().display()), json!({}));
    let error = cache.get::<i64>("k").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(!error.is_temporary(), "{error}");
    assert_eq!(error.field(), Some("url"), "{error}");
    assert!(error.to_string().contains("names a folder"), "{error}");

    let file = dir.path().join("dropped.db");
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "dropped" }),
    );
    cache.put("k", &1i64, 60).await.unwrap();
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch("DROP TABLE dropped")
        .unwrap();
    let error = cache.get::<i64>("k").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(
        error
            .to_string()
            .contains("dropped after the store created it"),
        "{error}"
    );
}

/// Set in the processes `sqlite_counts_every_increment_of_several_processes` spawns: the
/// SQLite URL they share.
const SQLITE_CHILD_URL: &str = "CACHY_SQLITE_CHILD_URL";
const SQLITE_CHILD_INCREMENTS: i64 = 150;

fn shared_sqlite(url: &str) -> CacheManager {
    manager(url, json!({ "table": "shared" }))
}

/// One of the processes (does nothing alone): increments a shared counter and writes its
/// own keys, on two tasks at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_child() {
    let Ok(url) = std::env::var(SQLITE_CHILD_URL) else {
        return;
    };
    let cache = shared_sqlite(&url);
    let tasks: Vec<_> = (0..2)
        .map(|task| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for i in 0..SQLITE_CHILD_INCREMENTS / 2 {
                    cache.increment("counter").await.unwrap();
                    let key = format!("{}-{task}-{i}", std::process::id());
                    cache.put(&key, &i, 5).await.unwrap();
                    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(i));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn sqlite_counts_every_increment_of_several_processes() {
    const PROCESSES: i64 = 3;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    shared_sqlite(&url).put("counter", &0i64, 5).await.unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "database_store::sqlite::sqlite_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(SQLITE_CHILD_URL, &url)
                .spawn()
                .expect("the test binary runs")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a process failed");
    }
    assert_eq!(
        shared_sqlite(&url).get::<i64>("counter").await.unwrap(),
        Some(PROCESSES * SQLITE_CHILD_INCREMENTS),
        "no increment lost between processes writing one SQLite file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_wait_for_another_connection_s_lock_and_reads_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("locked.db");
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "locked" }),
    );
    cache.put("before", &1i64, 5).await.unwrap();
    let holder = rusqlite::Connection::open(&file).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let released = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        holder.execute_batch("COMMIT").unwrap();
    });
    let started = Instant::now();
    assert_eq!(cache.get::<i64>("before").await.unwrap(), Some(1));
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "a read does not wait for the writer (WAL)"
    );
    cache.put("during", &2i64, 5).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "the write waited for the lock"
    );
    released.join().unwrap();
    assert_eq!(cache.get::<i64>("during").await.unwrap(), Some(2));
}

/// A write waits for another connection's lock at most the store's `timeout`, then fails
/// (it waited 10 s whatever the `timeout`), and nothing already stored is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_waits_for_a_lock_at_most_the_store_s_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("held.db");
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "held", "timeout": 1 }),
    );
    cache.put("before", &1i64, 60).await.unwrap();
    let holder = rusqlite::Connection::open(&file).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let err = cache.put("during", &2i64, 60).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "waited {waited:?}: {err}"
    );
    assert!(err.is_temporary(), "{err}");
    holder.execute_batch("COMMIT").unwrap();
    assert_eq!(cache.get::<i64>("before").await.unwrap(), Some(1));
    cache.put("during", &2i64, 60).await.unwrap();
}

/// Writes waiting for another connection's lock wait for their turn without holding a
/// connection: reads, which WAL lets through, still find one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_waiting_for_a_lock_leave_connections_for_reads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("waiting.db");
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "waiting", "max_connections": 2, "timeout": 5 }),
    );
    cache.put("before", &1i64, 5).await.unwrap();
    let holder = rusqlite::Connection::open(&file).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.put(&format!("w{i}"), &i, 5).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(cache.get::<i64>("before").await.unwrap(), Some(1));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "reads waited {:?} behind writes waiting for the lock",
        started.elapsed()
    );
    holder.execute_batch("COMMIT").unwrap();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    assert_eq!(cache.get::<i64>("w7").await.unwrap(), Some(7));
}

#[tokio::test]
async fn sqlite_rows_another_program_wrote_read_as_bytes_or_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alien.db");
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "alien", "serializer": "json" }),
    );
    cache.put("k", &1i64, 5).await.unwrap();
    let other = rusqlite::Connection::open(&file).unwrap();
    let far = 9_999_999_999i64;
    other
        .execute(
            "INSERT INTO alien (\"key\", value, expiration) VALUES (x'74657874', '\"as text\"', ?1), \
             (x'6e756d', 42, ?1), (x'657870', x'31', 'soon')",
            [far],
        )
        .unwrap();
    assert_eq!(
        cache.get::<String>("text").await.unwrap(),
        Some("as text".to_owned()),
        "text is taken as its bytes"
    );
    for (key, says) in [
        ("num", "Integer, not bytes"),
        ("exp", "Text, not an integer"),
    ] {
        let error = cache.get::<i64>(key).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Backend, "{key}: {error}");
        assert!(
            error.to_string().contains("database read failed"),
            "{error}"
        );
        assert!(error.to_string().contains(says), "{error}");
    }
    assert_eq!(
        cache.get::<i64>("k").await.unwrap(),
        Some(1),
        "nothing else lost"
    );
}

/// A row that cannot be read (another program wrote an integer as the value) fails the
/// batch read of `remember_many`; the other keys are still read one by one, so only the
/// unreadable key and the missing one are loaded, and the loaded value replaces the row.
#[tokio::test]
async fn remember_many_loads_only_the_keys_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alien.db");
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "alien" }),
    );
    cache.put("k", &1i64, 60).await.unwrap();
    let other = rusqlite::Connection::open(&file).unwrap();
    other
        .execute(
            "INSERT INTO alien (\"key\", value, expiration) VALUES (x'6e756d', 42, 9999999999)",
            [],
        )
        .unwrap();
    let repo = cache.store(None).unwrap();
    let options = cachy::RememberOptions::new(std::time::Duration::from_secs(60));
    for loads in [vec!["num", "new"], vec![]] {
        let values: Vec<Option<i64>> = repo
            .remember_many(&["k", "num", "new"], &options, |keys| async move {
                assert_eq!(keys, loads, "loaded");
                Ok::<_, cachy::Error>(keys.into_iter().map(|key| (key, 2)).collect())
            })
            .await
            .unwrap();
        assert_eq!(values, [Some(1), Some(2), Some(2)]);
    }
}

/// Polled outside tokio, the SQLite store, which opens its connections on tokio's blocking
/// pool, answers a `Runtime` error naming it, not a panic.
#[test]
fn outside_tokio_a_sqlite_call_is_a_runtime_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("outside.db").display());
    let cache = manager(&url, json!({ "create_table": true }));
    let mut put = std::pin::pin!(cache.put("k", &1i64, 5));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let error = loop {
        if let std::task::Poll::Ready(done) = put.as_mut().poll(&mut context) {
            break done.unwrap_err();
        }
    };
    assert_eq!(error.kind(), cachy::ErrorKind::Runtime, "{error}");
    assert!(error.to_string().contains("SQLite store"), "{error}");
}

/// Switching a file to WAL takes SQLite's exclusive lock in one try: a store opening a file
/// another program is writing (or another process is opening) waits for it instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_file_another_connection_is_writing_is_opened_once_it_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("being_written.db");
    let holder = rusqlite::Connection::open(&file).unwrap();
    holder
        .execute_batch("CREATE TABLE other (x); BEGIN IMMEDIATE; INSERT INTO other VALUES (1);")
        .unwrap();
    let released = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        holder.execute_batch("COMMIT").unwrap();
    });
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": "opened" }),
    );
    cache.put("k", &1i64, 60).await.unwrap();
    released.join().unwrap();
    assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
}
