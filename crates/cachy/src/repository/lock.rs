//! Atomic locks on any store, as Laravel's `Cache::lock`: see [`Lock`].

use std::borrow::Cow;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::observe::{Operation, Outcome, removed};
use crate::repository::Repository;

/// How long a waiting [`Lock::acquire`] sleeps at first between tries, and at most.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const LONGEST_BACKOFF: Duration = Duration::from_millis(250);

/// Where a lock's item lives: under a prefix of cachy's own, apart from the lock's fencing
/// counter, so that no lock name makes the key of another lock's state.
const LOCK_PREFIX: &str = "cachy:lock:";
/// Where a lock's fencing counter lives.
const FENCE_PREFIX: &str = "cachy:fence:";
/// How long a fencing counter lives after it is created (a lock that is not used for this
/// long leaves nothing behind). A counter created again later starts from the clock, above
/// every token of the one before.
const FENCE_TTL_SECONDS: u64 = 24 * 60 * 60;

/// A lock named `name` in a store, shared by every task and process using that store: what
/// [`Repository::lock`] returns.
///
/// The lock is an item under its name holding its owner's random token, created with the
/// store's atomic `add` and kept for the lock's lifetime, so a holder that dies releases it
/// by expiring. Only the owner releases it (an atomic compare-and-delete), so a lock that
/// expired and was taken by another owner is never released by the first.
///
/// A holder that stalls past the lifetime can overlap with the next owner: for work that
/// must not, each acquisition also takes a [fencing token](Self::fencing_token), a number
/// that grows with every acquisition of the lock, to pass to the resource guarded, which
/// refuses writes carrying a smaller token than one it has seen.
///
/// The lock's state lives under keys of cachy's own, `cachy:lock:{name}` and
/// `cachy:fence:{name}` (keep your own keys out of the `cachy:` prefix): no lock name and no
/// key of another lock can be the key of a lock's state. Every acquisition, release and
/// time-out is observed like any operation ([`Operation::Lock`],
/// [`Operation::Unlock`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cachy::Result<()> {
/// use std::time::Duration;
///
/// let cache = cachy::CacheManager::from_value(serde_json::json!({
///     "stores": { "dict": { "driver": "dict" } }
/// }))?;
/// let lock = cache.lock("reports", Duration::from_secs(30))?;
/// assert!(lock.try_acquire().await?);
/// assert!(!cache.lock("reports", Duration::from_secs(30))?.try_acquire().await?);
///
/// // Another task or process releases it knowing the owner.
/// let owner = lock.owner().to_owned();
/// assert!(cache.restore_lock("reports", Duration::from_secs(30), owner)?.release().await?);
///
/// let total = lock
///     .with_lock(Duration::from_secs(5), || async { 40 + 2 })
///     .await?;
/// assert_eq!(total, 42);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Lock {
    repository: Repository,
    name: String,
    ttl: Duration,
    owner: String,
    fencing_token: AtomicI64,
}

impl Repository {
    /// The lock `name` in this store, kept by each holder for `ttl` (up to a second longer on
    /// stores that count whole seconds), with a new random owner token. Nothing is taken
    /// until [`Lock::try_acquire`] or [`Lock::acquire`]. The lock is the item
    /// `cachy:lock:{name}` (under the tags' namespace for a tagged repository).
    pub fn lock(&self, name: impl Into<String>, ttl: Duration) -> Lock {
        self.restore_lock(name, ttl, new_owner())
    }

    /// The lock `name` as held by `owner` (another task's or process's
    /// [`Lock::owner`]), to release it from here.
    pub fn restore_lock(
        &self,
        name: impl Into<String>,
        ttl: Duration,
        owner: impl Into<String>,
    ) -> Lock {
        Lock {
            repository: self.clone(),
            name: name.into(),
            ttl,
            owner: owner.into(),
            fencing_token: AtomicI64::new(0),
        }
    }
}

/// A random owner token: 32 hex digits.
pub(crate) fn new_owner() -> String {
    use std::hash::BuildHasher;
    let random = || std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    format!("{:016x}{:016x}", random(), random())
}

impl Lock {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The owner token this lock takes and releases with.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The fencing token of this owner's last acquisition: a number greater than that of any
    /// earlier acquisition of the lock (`None` before one).
    ///
    /// Tokens come from a counter in the store. When the store loses it (a flush, an
    /// eviction, a restart without persistence, or the counter's own lifetime of a day
    /// without use), the next acquisition starts it again from the clock (microseconds since
    /// the Unix epoch), above every token of the lost counter as long as the wall clocks of
    /// the processes sharing the lock do not disagree by more than the time between the
    /// counter's creation and its loss, and fewer than a million acquisitions a second were
    /// made: any hosts kept in time by NTP.
    pub fn fencing_token(&self) -> Option<i64> {
        Some(self.fencing_token.load(Ordering::Acquire)).filter(|token| *token > 0)
    }

    /// The store TTL: whole seconds, one more than `ttl` rounded up, because stores that keep
    /// expiries in whole seconds (SQL) may end an item up to a second early, and a lock must
    /// never end before its lifetime.
    fn ttl_seconds(&self) -> u64 {
        let seconds = self.ttl.as_secs() + u64::from(self.ttl.subsec_nanos() > 0);
        seconds.saturating_add(1).clamp(2, crate::MAX_TTL_SECONDS)
    }

    fn context(&self, e: Error) -> Error {
        e.with_store(self.repository.name()).with_key(&self.name)
    }

    /// The lock's key in the store; a failure to read the tags' ids names the lock.
    async fn store_key(&self) -> Result<String> {
        self.repository
            .store_key(&format!("{LOCK_PREFIX}{}", self.name))
            .await
            .map(Cow::into_owned)
            .map_err(|e| self.context(e))
    }

    /// Run `work`, the lock operation `operation`, observed like every repository operation.
    async fn observed<T>(
        &self,
        operation: Operation,
        outcome: impl FnOnce(&T) -> Outcome,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.repository
            .observed(operation, Some(&self.name), outcome, work)
            .await
    }

    /// Take the lock if it is free; `true` if this owner now holds it. Of many concurrent
    /// tries, in any number of processes, exactly one wins.
    pub async fn try_acquire(&self) -> Result<bool> {
        self.observed(Operation::Lock, taken, self.try_acquire_unobserved())
            .await
    }

    async fn try_acquire_unobserved(&self) -> Result<bool> {
        let key = self.store_key().await?;
        let store = self.repository.store();
        let taken = store
            .add(&key, self.owner.as_bytes(), Some(self.ttl_seconds()))
            .await
            .map_err(|e| self.context(e))?;
        if !taken {
            return Ok(false);
        }
        let token = async {
            let fence = self
                .repository
                .tagged_key(&format!("{FENCE_PREFIX}{}", self.name))
                .await?;
            let token = next_token(&**store, &fence).await?;
            store.catch_up().await?;
            Ok(token)
        };
        match token.await {
            Ok(token) => {
                self.fencing_token.store(token, Ordering::Release);
                Ok(true)
            }
            Err(e) => {
                // Without its token, or unsure to read what the last holder wrote, the lock is
                // not usable: give it back.
                let _ = store.compare_and_delete(&key, self.owner.as_bytes()).await;
                Err(self.context(e))
            }
        }
    }

    /// Take the lock, waiting up to `wait` for its holder to release it (trying again with
    /// a growing pause, at most 250 ms); an [`ErrorKind::Timeout`] error after that.
    pub async fn acquire(&self, wait: Duration) -> Result<()> {
        let waiting = async {
            let started = Instant::now();
            let mut pause = FIRST_BACKOFF;
            loop {
                if self.try_acquire_unobserved().await? {
                    return Ok(());
                }
                let waited = started.elapsed();
                if waited >= wait {
                    return Err(self.context(Error::new(
                        ErrorKind::Timeout,
                        format!("the lock `{}` was still held after {wait:?}", self.name),
                    )));
                }
                tokio::time::sleep(pause.min(wait - waited)).await;
                pause = (pause * 2).min(LONGEST_BACKOFF);
            }
        };
        self.observed(Operation::Lock, |()| Outcome::Written, waiting)
            .await
    }

    /// Release the lock if this owner holds it; `false` if it did not (never taken, expired,
    /// or taken by another owner since).
    ///
    /// On a store whose processes keep copies of items (the hybrid store), what this process
    /// changed is announced to the others first, so that the next holder reads it; if that
    /// cannot be done (the backplane is unreachable), the error is returned and the lock is
    /// left to expire.
    pub async fn release(&self) -> Result<bool> {
        let releasing = async {
            let key = self.store_key().await?;
            let store = self.repository.store();
            store.publish_changes().await.map_err(|e| self.context(e))?;
            store
                .compare_and_delete(&key, self.owner.as_bytes())
                .await
                .map_err(|e| self.context(e))
        };
        self.observed(Operation::Unlock, removed, releasing).await
    }

    /// Release the lock whoever holds it; `true` if it was held.
    pub async fn force_release(&self) -> Result<bool> {
        let releasing = async {
            let key = self.store_key().await?;
            let store = self.repository.store();
            store.publish_changes().await.map_err(|e| self.context(e))?;
            store.forget(&key).await.map_err(|e| self.context(e))
        };
        self.observed(Operation::Unlock, removed, releasing).await
    }

    /// Run `work` holding the lock: acquire it (waiting up to `wait`), run `work`, release
    /// it. If `work` panics or is cancelled, the lock is released by its lifetime instead.
    pub async fn with_lock<T, F, Fut>(&self, wait: Duration, work: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.acquire(wait).await?;
        let output = work().await;
        self.release().await?;
        Ok(output)
    }
}

/// An acquisition's outcome: the lock was taken (its item written), or held by another.
fn taken(taken: &bool) -> Outcome {
    if *taken {
        Outcome::Written
    } else {
        Outcome::Unchanged
    }
}

/// The next fencing token from the counter under `fence`, which lives a day from its
/// creation. A counter created by this call (lost, expired or never made) starts from the
/// clock, so that its tokens stay above the lost counter's (see [`Lock::fencing_token`]).
async fn next_token(store: &dyn crate::Store, fence: &str) -> Result<i64> {
    let ttl = Some(FENCE_TTL_SECONDS);
    let token = store.increment_expiring(fence, 1, ttl).await?;
    // Every counter alive was started from the clock at most a day ago, so a smaller token
    // is one this call started (a counter that existed holds at least its start).
    let floor = clock_micros()
        .saturating_sub(i64::try_from(FENCE_TTL_SECONDS * 1_000_000).unwrap_or(i64::MAX));
    if token >= floor {
        return Ok(token);
    }
    store.increment_expiring(fence, clock_micros(), ttl).await
}

/// Microseconds since the Unix epoch.
fn clock_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
