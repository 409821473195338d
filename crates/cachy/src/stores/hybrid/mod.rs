//! The hybrid store (driver `hybrid`): an in-process first level over any shared store,
//! kept coherent across processes by invalidation messages on Redis.

mod backplane;
pub(super) mod config;
mod levels;

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;

use self::backplane::Backplane;
use self::levels::Levels;
use crate::decoded::Decoded;
use crate::error::Result;
use crate::serializer::Serializer;
use crate::store::{EvictionListener, ForeverTracker, Store, Ttl};

/// How long a first-level copy lives at most, unless `l1_ttl` says otherwise.
const DEFAULT_L1_TTL: Duration = Duration::from_secs(60);
/// How many items the first level holds at most, unless `l1.max_entries` says otherwise.
const DEFAULT_L1_MAX_ENTRIES: u64 = 10_000;
/// How long a lock's new holder waits to hear its marker back on the backplane before it
/// drops its whole L1 instead.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(1);
/// Independent locks guarding the first level's copies, by key hash.
const STRIPES: usize = 64;

/// The hybrid store (driver `hybrid`): reads come from an in-process first level (L1, a
/// bounded memory store) when it holds the key, else from the shared second level (L2, any
/// configured store), whose answer L1 then keeps; writes and removals go to L2, then drop
/// the key from L1, then tell every other process on a Redis channel (the backplane) to drop
/// it from theirs. Messages carry keys and the sender's id, never values.
///
/// ```toml
/// [stores.redis]
/// driver = "redis"
/// url = "redis://127.0.0.1:6379/0"
///
/// [stores.shared]
/// driver = "hybrid"
/// l2 = "redis"          # any configured store
/// backplane = "redis"   # a Redis store (default: `l2`, when it is one)
/// l1_ttl = 60           # seconds an L1 copy is kept at most (default 60)
/// l1 = { max_entries = 10000 }
/// ```
///
/// What may be stale, and for how long:
///
/// - After a write or removal through a hybrid store, the writing process reads the new
///   value at once; other processes read it once the invalidation reaches them (well under
///   a millisecond on a local network; measured in the performance guide, `docs/performance.md`).
/// - An L1 copy never outlives the L2 item it copies (its remaining lifetime is read with the
///   value, [`Store::get_with_lifetime`], on every built-in store; a custom store that cannot
///   tell it gets copies that live `l1_ttl`), and never lives longer than `l1_ttl`.
/// - While the backplane is unreachable, each process keeps serving its L1 copies, which may
///   miss changes made elsewhere meanwhile: for at most `l1_ttl`. Invalidations this
///   process could not send are queued (one per key) and sent when Redis answers again;
///   past 10,000 keys they become one flush, and every other process drops its whole L1.
///   Whenever the subscription starts, the first time included (shortly after the store is
///   built), the process drops its whole L1, since it may have missed messages: copies
///   taken before the first subscription were read while it could not hear of changes.
/// - A write to L2 that fails still drops the key from L1 and tells the others (the write
///   may have reached L2 before failing); the error is returned. A resilient `remember`
///   (`remember_with`, `#[cached]`) whose write failed then keeps its value in this
///   process's L1 for at most `l1_ttl` ([`Store::keep_after_failed_write`]), so that a
///   process whose L2 is down goes on serving what it computed, from memory.
/// - Writes made to L2 directly, bypassing the hybrid store, are not announced: other
///   processes see them when their copies expire (`l1_ttl` at most).
pub struct HybridStore {
    levels: Arc<Levels>,
    backplane: Arc<Backplane>,
    /// Dropped with the store, which stops its background tasks.
    _running: tokio::sync::watch::Sender<()>,
}

impl HybridStore {
    /// Whether this process is subscribed to the backplane now (and so hears of changes
    /// made elsewhere).
    pub fn is_subscribed(&self) -> bool {
        self.backplane.is_subscribed()
    }

    /// How many changes made here wait to be announced to the other processes (one per key,
    /// one for a flush): zero while the backplane keeps up, more while it is unreachable.
    pub fn unsent_invalidations(&self) -> usize {
        self.backplane.unsent()
    }

    /// After a write to L2 (failed or not): drop `key` here and tell the others.
    fn written(&self, key: &str) {
        self.levels.changed(key);
        self.backplane.announce(key);
    }
}

/// Whether a conditional write may have changed the key: it did, or it failed midway.
fn may_have_written(outcome: &Result<bool>) -> bool {
    !matches!(outcome, Ok(false))
}

#[async_trait]
impl Store for HybridStore {
    fn inspector(&self) -> std::result::Result<&dyn crate::inspect::Inspect, &'static str> {
        Err(
            "it is a hybrid store: its in-process level lives in each application process, \
             which another process cannot see; look into the store under it",
        )
    }

    fn get_in_process(&self, key: &str) -> Option<Option<Arc<[u8]>>> {
        self.levels.l1.value(key).map(Some)
    }

    fn get_decoded_in_process(
        &self,
        key: &str,
        type_id: TypeId,
        serializer: &Serializer,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        self.levels.l1.decoded(key, type_id, serializer)
    }

    fn keep_decoded(&self, key: &str, bytes: &Arc<[u8]>, decoded: Decoded) {
        self.levels.l1.keep_decoded_copy(key, bytes, decoded);
    }

    fn listen_evictions(&self, listener: EvictionListener) {
        self.levels.l1.listen(listener);
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if let Some(value) = self.levels.l1.value(key) {
            return Ok(Some(value.to_vec()));
        }
        let generation = self.levels.stripe(key).generation.load(Ordering::Acquire);
        let found = self.levels.l2.get_with_lifetime(key).await?;
        Ok(found.map(|(value, lifetime)| {
            self.levels.keep(key, &value, lifetime, generation);
            value
        }))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut values: Vec<Option<Vec<u8>>> = keys
            .iter()
            .map(|key| self.levels.l1.value(key).map(|value| value.to_vec()))
            .collect();
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| values[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(values);
        }
        // One batch read, without lifetimes: these answers are not kept in L1.
        let missing_keys: Vec<&str> = missing.iter().map(|&i| keys[i]).collect();
        let found = self.levels.l2.get_many(&missing_keys).await?;
        for (i, value) in missing.into_iter().zip(found) {
            values[i] = value;
        }
        Ok(values)
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        let outcome = self.levels.l2.put(key, value, ttl).await;
        self.written(key);
        outcome
    }

    async fn put_many(&self, items: &[(&str, Vec<u8>)], ttl: Ttl) -> Result<()> {
        let outcome = self.levels.l2.put_many(items, ttl).await;
        for (key, _) in items {
            self.written(key);
        }
        outcome
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let outcome = self.levels.l2.add(key, value, ttl).await;
        if may_have_written(&outcome) {
            self.written(key);
        }
        outcome
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        let outcome = self.levels.l2.increment(key, by).await;
        self.written(key);
        outcome
    }

    async fn increment_expiring(&self, key: &str, by: i64, ttl: Ttl) -> Result<i64> {
        let outcome = self.levels.l2.increment_expiring(key, by, ttl).await;
        self.written(key);
        outcome
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        let outcome = self.levels.l2.compare_and_swap(key, current, new).await;
        if may_have_written(&outcome) {
            self.written(key);
        }
        outcome
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let outcome = self.levels.l2.compare_and_delete(key, expected).await;
        if may_have_written(&outcome) {
            self.written(key);
        }
        outcome
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        let outcome = self.levels.l2.touch(key, ttl).await;
        if may_have_written(&outcome) {
            self.written(key);
        }
        outcome
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        let outcome = self.levels.l2.forget(key).await;
        self.written(key);
        outcome
    }

    async fn flush(&self) -> Result<()> {
        let outcome = self.levels.l2.flush().await;
        self.levels.changed_all();
        self.backplane.announce_flush();
        outcome
    }

    fn forever_tracker(&self) -> Option<&dyn ForeverTracker> {
        self.levels.l2.forever_tracker()
    }

    async fn publish_changes(&self) -> Result<()> {
        self.backplane.publish_now().await
    }

    async fn catch_up(&self) -> Result<()> {
        // Copies this process cannot vouch for are dropped: the holder reads from L2.
        if self.backplane.catch_up(CATCH_UP_LIMIT).await.is_err() {
            self.levels.changed_all();
        }
        Ok(())
    }

    fn keep_after_failed_write(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        let lifetime = ttl.map_or(self.levels.l1_ttl, |ttl| ttl.min(self.levels.l1_ttl));
        if lifetime.is_zero() {
            return;
        }
        let stripe = self.levels.stripe(key);
        let _told_after = levels::defer();
        let _guard = stripe.lock();
        self.levels.l1.keep(key, value, Some(lifetime));
    }
}

impl std::fmt::Debug for HybridStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridStore")
            .field("l1_ttl", &self.levels.l1_ttl)
            .field("backplane", &self.backplane)
            .finish_non_exhaustive()
    }
}
