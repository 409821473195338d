//! Calls that arrive together on SQLite run in batches (one read transaction, one commit):
//! each caller still gets exactly what it would have alone.

use super::*;

/// Callers at once, on the runtime's two threads.
const TASKS: i64 = 64;

fn file_cache(dir: &tempfile::TempDir) -> (CacheManager, std::path::PathBuf, String) {
    let file = dir.path().join("batches.db");
    let table = unique_table();
    let cache = manager(
        &format!("sqlite://{}", file.display()),
        json!({ "table": table }),
    );
    (cache, file, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_callers_in_batches_read_their_own_writes_and_lose_no_increment() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _, _) = file_cache(&dir);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let key = format!("own{task}");
                for n in 0..100i64 {
                    cache.put(&key, &n, 60).await.unwrap();
                    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(n));
                    if n % 10 == 0 {
                        cache.increment("shared").await.unwrap();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for task in 0..TASKS {
        assert_eq!(
            cache.get::<i64>(&format!("own{task}")).await.unwrap(),
            Some(99)
        );
    }
    assert_eq!(cache.get::<i64>("shared").await.unwrap(), Some(TASKS * 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_the_database_refuses_fails_alone_among_writes_arriving_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, file, table) = file_cache(&dir);
    cache.put("created", &0, 60).await.unwrap();
    // Another program's trigger refuses values holding a marker.
    let marker = "--refused--";
    let marker_hex: String = marker.bytes().map(|b| format!("{b:02X}")).collect();
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON {table} \
             WHEN instr(NEW.value, X'{marker_hex}') > 0 \
             BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END;"
        ))
        .unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for n in 0..20 {
                    if task % 4 == 0 {
                        let refused = cache
                            .put(&format!("refused{task}_{n}"), &format!("a{marker}"), 60)
                            .await
                            .unwrap_err();
                        assert!(refused.to_string().contains("refused by a trigger"));
                    } else {
                        cache
                            .put(&format!("kept{task}_{n}"), &(task * 100 + n), 60)
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for task in 0..TASKS {
        for n in 0..20 {
            let (kept, refused) = (format!("kept{task}_{n}"), format!("refused{task}_{n}"));
            if task % 4 == 0 {
                assert_eq!(cache.get::<String>(&refused).await.unwrap(), None);
            } else {
                assert_eq!(
                    cache.get::<i64>(&kept).await.unwrap(),
                    Some(task * 100 + n),
                    "{kept}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_callers_that_stop_waiting_leave_the_batches_working() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _, _) = file_cache(&dir);
    cache.put("hit", &1, 60).await.unwrap();
    for round in 0..20u64 {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    // Given up on at once, mid-batch or while queued.
                    let patience = Duration::from_micros(round * 5);
                    let _ =
                        tokio::time::timeout(patience, cache.put(&format!("k{task}"), &task, 60))
                            .await;
                    let _ = tokio::time::timeout(patience, cache.get::<i64>("hit")).await;
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            if i % 3 == 0 {
                task.abort();
            }
            let _ = task.await;
        }
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache.put(&format!("k{task}"), &task, 60).await.unwrap();
                assert_eq!(cache.get::<i64>("hit").await.unwrap(), Some(1));
                assert_eq!(
                    cache.get::<i64>(&format!("k{task}")).await.unwrap(),
                    Some(task)
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "calls after the cancelled ones took {:?}",
        started.elapsed()
    );
}

/// A write whose caller gives up while it waits for a batch (a timeout, an aborted task)
/// either lands before the caller's next write or never: it never comes back later over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_given_up_while_queued_never_lands_after_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _, _) = file_cache(&dir);
    // Long enough to write that the writes behind it queue.
    let big = "x".repeat(4_000_000);
    for round in 0..20u64 {
        let (leader, value) = (cache.clone(), big.clone());
        let running = tokio::spawn(async move { leader.put("big", &value, 60).await.unwrap() });
        tokio::time::sleep(Duration::from_millis(round % 5)).await;
        if round % 2 == 0 {
            let _ = tokio::time::timeout(
                Duration::from_millis(1),
                cache.put("k", &format!("given up {round}"), 60),
            )
            .await;
        } else {
            let writer = cache.clone();
            let aborted = tokio::spawn(async move {
                writer
                    .put("k", &format!("given up {round}"), 60)
                    .await
                    .unwrap()
            });
            tokio::time::sleep(Duration::from_micros(200)).await;
            aborted.abort();
            let _ = aborted.await;
        }
        running.await.unwrap();
        cache.put("k", &format!("kept {round}"), 60).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            cache.get::<String>("k").await.unwrap(),
            Some(format!("kept {round}"))
        );
        cache.forget("k").await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            cache.get::<String>("k").await.unwrap(),
            None,
            "round {round}"
        );
    }
}

/// A write that went to wait for another connection's lock on the blocking pool runs there
/// even once its caller gives up: the caller's next write waits behind it, never overtakes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_given_up_while_waiting_for_a_lock_never_lands_after_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, file, _) = file_cache(&dir);
    cache.put("created", &0, 60).await.unwrap();
    for (round, given_up) in ["put", "put_many", "forget"].into_iter().enumerate() {
        cache.put("k", &"before", 60).await.unwrap();
        let holder = rusqlite::Connection::open(&file).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let released = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            holder.execute_batch("COMMIT").unwrap();
        });
        let patience = Duration::from_millis(100);
        let _ = match given_up {
            "put" => tokio::time::timeout(patience, cache.put("k", &"given up", 60)).await,
            "put_many" => {
                tokio::time::timeout(patience, cache.put_many(&[("k", "given up")], 60)).await
            }
            _ => tokio::time::timeout(patience, async { cache.forget("k").await.map(drop) }).await,
        };
        released.join().unwrap();
        cache.put("k", &format!("kept {round}"), 60).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            cache.get::<String>("k").await.unwrap(),
            Some(format!("kept {round}")),
            "the {given_up} given up on landed after the put that followed it"
        );
    }
}

/// `put_many` runs alone (a transaction of its own); it still yields to the runtime.
#[test]
fn sqlite_a_task_looping_over_put_many_lets_other_tasks_run() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cache, _, _) = file_cache(&dir);
    runtime.block_on(async {
        cache.put("created", &0, 60).await.unwrap();
        let ticks = std::sync::Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            })
        };
        for n in 0..2_000 {
            cache.put_many(&[("a", n), ("b", n)], 60).await.unwrap();
        }
        ticker.abort();
        assert!(
            ticks.load(Ordering::Relaxed) > 1,
            "the other task never ran while put_many looped"
        );
    });
}
