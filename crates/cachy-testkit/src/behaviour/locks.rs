//! Locks: exactly one holder, release by the owner only, expiry, waiting.

use super::*;

/// Of 100 concurrent `try_acquire`s of one lock, exactly one wins.
pub async fn exactly_one_of_a_hundred_lock_tries_wins(repo: &Repository) {
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let lock = repo.lock("job", Duration::from_secs(30));
            tokio::spawn(async move { lock.try_acquire().await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

/// Only the owner releases a lock; `restore_lock` releases it from another task; the
/// fencing token grows with each acquisition.
pub async fn only_the_owner_releases_a_lock(repo: &Repository) {
    let lock = repo.lock("job", Duration::from_secs(30));
    assert!(lock.try_acquire().await.unwrap());
    let first_token = lock.fencing_token().unwrap();
    let other = repo.lock("job", Duration::from_secs(30));
    assert!(
        !other.release().await.unwrap(),
        "a non-owner cannot release it"
    );
    assert!(!other.try_acquire().await.unwrap());
    let owner = lock.owner().to_owned();
    let released = {
        let repo = repo.clone();
        tokio::spawn(async move {
            repo.restore_lock("job", Duration::from_secs(30), owner)
                .release()
                .await
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(released, "the restored owner releases it");
    assert!(!lock.release().await.unwrap(), "already released");
    assert!(other.try_acquire().await.unwrap());
    assert!(other.fencing_token().unwrap() > first_token);
    assert!(other.force_release().await.unwrap());
}

/// A lock whose holder never releases it expires after its lifetime.
pub async fn an_expired_lock_can_be_taken(repo: &Repository) {
    let holder = repo.lock("job", Duration::from_secs(1));
    assert!(holder.try_acquire().await.unwrap());
    let next = repo.lock("job", Duration::from_secs(30));
    assert!(!next.try_acquire().await.unwrap());
    next.acquire(Duration::from_secs(5)).await.unwrap();
    assert!(
        !holder.release().await.unwrap(),
        "the expired holder releases nothing"
    );
    assert!(next.release().await.unwrap());
}

/// `acquire` waits for the holder's release, and times out when it does not come.
pub async fn acquire_waits_for_the_holder_or_times_out(repo: &Repository) {
    let holder = repo.lock("job", Duration::from_secs(30));
    assert!(holder.try_acquire().await.unwrap());
    let waiter = repo.lock("job", Duration::from_secs(30));
    let started = Instant::now();
    let error = waiter
        .acquire(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        holder.release().await.unwrap()
    });
    waiter.acquire(Duration::from_secs(10)).await.unwrap();
    assert!(releaser.await.unwrap());
    let total = waiter
        .with_lock(Duration::from_millis(200), || async { 0 })
        .await;
    assert_eq!(
        total.unwrap_err().kind(),
        ErrorKind::Timeout,
        "the lock is still held by `waiter` itself"
    );
    assert!(waiter.release().await.unwrap());
    assert_eq!(
        waiter
            .with_lock(Duration::from_secs(1), || async { 42 })
            .await
            .unwrap(),
        42
    );
    assert!(
        repo.lock("job", Duration::from_secs(1))
            .try_acquire()
            .await
            .unwrap()
    );
}

/// A lock's fencing token is greater than every earlier one, across a flush of the store
/// and the loss of its counter (an eviction, a server restart).
pub async fn fencing_tokens_grow_across_a_flush_and_a_lost_counter(repo: &Repository) {
    let mut last = 0;
    for round in 0..3 {
        for _ in 0..3 {
            let lock = repo.lock("job", Duration::from_secs(30));
            assert!(lock.try_acquire().await.unwrap());
            let token = lock.fencing_token().expect("a token once acquired");
            assert!(token > last, "round {round}: {token} after {last}");
            last = token;
            assert!(lock.release().await.unwrap());
        }
        match round {
            0 => repo.flush().await.unwrap(),
            _ => {
                repo.store().forget("cachy:fence:job").await.unwrap();
            }
        }
    }
}

/// A lock's state lives apart from cache keys and from other locks' state: the lock `job`
/// and the lock `job:fence` are both taken, a value under `job` is left alone, and the
/// fencing counter expires (where the store tells lifetimes).
pub async fn lock_state_never_collides_with_keys_or_other_locks(repo: &Repository) {
    repo.put("job", &"a cache value", TEN_MINUTES)
        .await
        .unwrap();
    let job = repo.lock("job", Duration::from_secs(30));
    assert!(job.try_acquire().await.unwrap());
    let fence = repo.lock("job:fence", Duration::from_secs(30));
    assert!(
        fence.try_acquire().await.unwrap(),
        "`job:fence` is a lock of its own"
    );
    assert!(job.release().await.unwrap());
    assert!(fence.release().await.unwrap());
    assert_eq!(
        repo.get::<String>("job").await.unwrap().as_deref(),
        Some("a cache value")
    );
    if let Some((_, lifetime)) = repo
        .store()
        .get_with_lifetime("cachy:fence:job")
        .await
        .unwrap()
    {
        assert!(
            !matches!(lifetime, cachy::Lifetime::Forever),
            "the fencing counter expires"
        );
    }
}

/// Lock operations are observed: taken, held by another, timed out, released, not held.
pub async fn lock_operations_are_observed(repo: &Repository) {
    use cachy::observe::{Operation, Outcome};
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(Operation, Outcome)>>> = Default::default();
    let sink = seen.clone();
    repo.on_event(move |event| {
        if matches!(event.operation, Operation::Lock | Operation::Unlock) {
            assert_eq!(event.key, Some("job"));
            sink.lock().unwrap().push((event.operation, event.outcome));
        }
    });
    let holder = repo.lock("job", Duration::from_secs(30));
    let other = repo.lock("job", Duration::from_secs(30));
    assert!(holder.try_acquire().await.unwrap());
    assert!(!other.try_acquire().await.unwrap());
    other.acquire(Duration::from_millis(50)).await.unwrap_err();
    assert!(holder.release().await.unwrap());
    assert!(!holder.release().await.unwrap());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (Operation::Lock, Outcome::Written),
            (Operation::Lock, Outcome::Unchanged),
            (Operation::Lock, Outcome::Failed(ErrorKind::Timeout)),
            (Operation::Unlock, Outcome::Removed),
            (Operation::Unlock, Outcome::Unchanged),
        ]
    );
}
