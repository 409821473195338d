//! While a SQLite store reads, it keeps a read lock on the write-ahead log so that its reads
//! need no file lock of their own: each read still sees every write made before it, no log
//! grows for it (the store's or another program's), and a database in another journal mode
//! is never held.

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

/// Set in the process `sqlite_reads_never_hold_back_another_program_s_log` spawns: the
/// SQLite file it reads.
const READER_CHILD_FILE: &str = "CACHY_SQLITE_READER_CHILD_FILE";

/// The reading process of the test below (does nothing alone): reads one key on 4 tasks
/// for 4 seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reader_child() {
    let Ok(file) = std::env::var(READER_CHILD_FILE) else {
        return;
    };
    let cache = manager(&format!("sqlite://{file}"), json!({ "table": "reads" }));
    cache.put("k", &1i64, 600).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(4);
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
}

/// A lock on the log's end held for a store's reads would keep another program's
/// checkpoints from copying the whole log, and its writes from ever starting the log again:
/// a program writing without a pause beside a process that reads saw its log grow without
/// end (112 MB in 5 s). The store holds only the lock readers take once the whole log is
/// copied.
#[test]
fn sqlite_reads_never_hold_back_another_program_s_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other_writer.db");
    let other = rusqlite::Connection::open(&file).unwrap();
    other
        .execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE other (id INTEGER PRIMARY KEY, v BLOB)",
        )
        .unwrap();
    let mut reader = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "database_store::sqlite_anchor::sqlite_reader_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(READER_CHILD_FILE, &file)
        .spawn()
        .expect("the test binary runs");
    // The reader has made its table and reads.
    std::thread::sleep(Duration::from_millis(500));
    let (mut largest, deadline) = (0, Instant::now() + Duration::from_secs(3));
    for n in 0i64.. {
        if Instant::now() > deadline {
            break;
        }
        other
            .execute(
                "INSERT OR REPLACE INTO other VALUES (?1, randomblob(200))",
                [n % 1000],
            )
            .unwrap();
        largest = largest.max(wal_size(&file));
    }
    assert!(reader.wait().unwrap().success(), "the reader failed");
    assert!(
        largest < 16 << 20,
        "the log grew to {largest} bytes beside a process reading"
    );
}

/// Writes without a pause never leave the log wholly copied when one begins, which is when
/// SQLite starts it again: the store's checkpoints start it again themselves once it is long
/// (letting go of the read lock first), so it stops growing while reads and writes go on.
/// (Before, 4 writers and 4 readers grew it by about 40 MB in 3 seconds, and on.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_log_does_not_grow_under_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bounded.db");
    let cache = manager(&format!("sqlite://{}", file.display()), json!({}));
    let value = vec![7u8; 3000];
    cache.put("read", &value, 600).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    // Every kind of call, as a service makes them.
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let (cache, value) = (cache.clone(), value.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let key = format!("w{}", (n + task) % 1000);
                    match n % 6 {
                        0 => cache.put(&key, &value, 600).await.unwrap(),
                        1 => drop(cache.increment("counter").await.unwrap()),
                        2 => drop(cache.add(&key, &value, 600).await.unwrap()),
                        3 => drop(cache.forget(&key).await.unwrap()),
                        4 => drop(cache.has(&key).await.unwrap()),
                        _ => drop(cache.get::<Vec<u8>>("read").await.unwrap().unwrap()),
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
    // The store opens its connections (and looks at the journal mode) on its first read,
    // holding a lock for a moment as any reader does: done before the writes below, which
    // wait for no lock, so that a read lock left held would make one fail at once.
    assert_eq!(reader.get::<i64>("k").await.unwrap(), Some(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    for n in 0..50i64 {
        assert_eq!(reader.get::<i64>("k").await.unwrap(), Some(1));
        other
            .execute(
                &format!("DELETE FROM {table} WHERE \"key\" = ?1"),
                [format!("gone{n}")],
            )
            .unwrap();
    }
}
