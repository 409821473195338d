//! While a SQLite store reads, it keeps a read lock on the write-ahead log so that its reads
//! need no file lock of their own: each read still sees every write made before it, the lock
//! is let go once reads stop, the log does not grow for it, and a database in another
//! journal mode is never held.

use super::*;

fn wal_size(file: &std::path::Path) -> u64 {
    let mut wal = file.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |meta| meta.len())
}

/// Another program's connection to `file`, which waits for no lock.
fn impatient(file: &std::path::Path) -> rusqlite::Connection {
    let other = rusqlite::Connection::open(file).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    other
}

/// `(busy, log frames, frames checkpointed)` of a `TRUNCATE` checkpoint run by `other`.
fn truncate(other: &rusqlite::Connection) -> (i64, i64, i64) {
    other
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_each_read_sees_what_another_program_wrote_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fresh.db");
    let table = unique_table();
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": table, "serializer": "json" }),
    );
    cache.put("k", &0i64, 60).await.unwrap();
    let other = rusqlite::Connection::open(&file).unwrap();
    let write = format!(
        "INSERT INTO {table} (\"key\", value, expiration) VALUES (x'6b', ?1, 9999999999) \
         ON CONFLICT (\"key\") DO UPDATE SET value = excluded.value"
    );
    // Readers on both threads keep the store reading (and its lock held) throughout.
    let reading = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (cache, reading) = (cache.clone(), Arc::clone(&reading));
            tokio::spawn(async move {
                while reading.load(Ordering::Relaxed) {
                    cache.get::<i64>("k").await.unwrap();
                }
            })
        })
        .collect();
    for n in 1..=500i64 {
        other.execute(&write, [n.to_string().into_bytes()]).unwrap();
        assert_eq!(
            cache.get::<i64>("k").await.unwrap(),
            Some(n),
            "a read after the write that ended before it"
        );
    }
    reading.store(false, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_let_go_of_the_log_once_they_stop() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("let_go.db");
    let cache = manager(&format!("sqlite://{}", file.display()), json!({}));
    cache.put("k", &1i64, 60).await.unwrap();
    let other = impatient(&file);
    // Checkpointed and truncated: nothing of the log is needed by anyone.
    assert_eq!(truncate(&other).0, 0);
    // While it reads (after a write, so that the log has pages to hold), the store comes to
    // hold the log: what this test is about.
    let deadline = Instant::now() + Duration::from_secs(2);
    for n in 2i64.. {
        cache.put("k", &n, 60).await.unwrap();
        for _ in 0..200 {
            assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(n));
        }
        if truncate(&other).0 == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store never held the log while it read"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (busy, _, _) = truncate(&other);
        if busy == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store still holds the log 2 s after its last read"
        );
    }
    assert_eq!(wal_size(&file), 0, "the log was truncated");
    assert!(
        cache.get::<i64>("k").await.unwrap().is_some(),
        "and reads go on"
    );
}

/// Writes without a pause never leave the log wholly copied when one begins, which is when
/// SQLite starts it again: the store's checkpoints start it again themselves once it is long
/// (letting go of the read lock first), so it stops growing while reads and writes go on.
/// (Before, it grew by about 40 MB in these 3 seconds, and on.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_log_does_not_grow_under_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bounded.db");
    let cache = manager(&format!("sqlite://{}", file.display()), json!({}));
    let value = vec![7u8; 1000];
    cache.put("read", &value, 600).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let (cache, value) = (cache.clone(), value.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if task % 2 == 0 {
                        cache
                            .put(&format!("w{}", n % 1000), &value, 600)
                            .await
                            .unwrap();
                    } else {
                        cache.get::<Vec<u8>>("read").await.unwrap().unwrap();
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut largest = 0;
    while Instant::now() < deadline {
        largest = largest.max(wal_size(&file));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut calls = 0;
    for task in tasks {
        calls += task.await.unwrap();
    }
    // Started again from 16 MB of log.
    assert!(
        largest < 32 << 20,
        "the log grew to {largest} bytes over {calls} calls"
    );
}

/// Not in WAL mode, a read transaction held open would keep every other program from
/// writing: a store reading such a database (read-only here) holds nothing between reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_database_in_another_journal_mode_is_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rollback.db");
    let table = unique_table();
    {
        let writer = manager(
            &format!("sqlite://{}", file.display()),
            json!({ "table": table }),
        );
        writer.put("k", &1i64, 600).await.unwrap();
    }
    let other = impatient(&file);
    // The writer's connections close as it goes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while other
        .query_row("PRAGMA journal_mode = DELETE", [], |row| {
            row.get::<_, String>(0)
        })
        .map_or(true, |mode| mode != "delete")
    {
        assert!(Instant::now() < deadline, "the file stays in WAL mode");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reader = manager(
        &format!("sqlite://{}?mode=ro", file.display()),
        json!({ "table": table, "create_table": false }),
    );
    for n in 0..50i64 {
        assert_eq!(reader.get::<i64>("k").await.unwrap(), Some(1));
        // With no wait for locks: a read lock left held would make this fail at once.
        other
            .execute(
                &format!("DELETE FROM {table} WHERE \"key\" = ?1"),
                [format!("gone{n}")],
            )
            .unwrap();
    }
}
