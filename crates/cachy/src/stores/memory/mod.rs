pub(super) mod config;
pub(crate) mod listeners;
mod map;
mod policy;

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Instant;

use async_trait::async_trait;

use self::map::{Bound, Change, Entry, Map};
use crate::codec::incremented;
use crate::config::StoreConfig;
use crate::decoded::Decoded;
use crate::error::Result;
use crate::serializer::Serializer;
use crate::store::{EvictionListener, Lifetime, Store, Ttl};

/// The in-process store (driver `dict`, alias `memory`).
///
/// Thread-safe, with a per-entry TTL and an optional bound on the number of entries
/// (`max_entries`) or on the memory they take (`max_bytes`: keys, values and about 200 bytes
/// of bookkeeping per entry, so that the process grows by about the bound). Beyond the bound it
/// evicts expired entries first, then what S3-FIFO chooses: a new key waits in a small queue
/// and is evicted from there unless it is read again, so a scan or one-hit wonders never
/// push out the keys read often; the hit ratio is measured against moka, quick_cache and an
/// exact LRU on published traces (`./scripts/bench-hitratio`). A single value larger than
/// `max_bytes` is not kept, and a put of one removes what the key held. The table is split into shards, each behind its own
/// reader-writer lock: a hit takes one shard's read lock and hands the repository the stored
/// bytes without copying them ([`Store::get_in_process`]). Values are kept serialized, so a
/// value read as the wrong type is an error here exactly as on a remote store. `add`,
/// `increment` and the compare-and-swap family are atomic (one shard's write lock). Expired
/// entries are never read, and are dropped as writes go on.
#[derive(Clone)]
pub struct MemoryStore {
    map: Arc<Map>,
}

/// The deadline of a lifetime of `ttl` seconds from now.
fn deadline(ttl: Ttl) -> Option<Instant> {
    // Clamped like every lifetime, so a store called directly with `u64::MAX` cannot overflow
    // `Instant`.
    ttl.map(|seconds| Instant::now() + Duration::from_secs(seconds.min(crate::MAX_TTL_SECONDS)))
}

impl MemoryStore {
    /// An unbounded memory store.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A memory store holding at most `max_entries` items.
    pub fn with_max_entries(max_entries: u64) -> Self {
        Self::build(Some(Bound::Entries(max_entries)))
    }

    /// A memory store holding at most `max_bytes`: each entry weighs its key's and its
    /// value's length and 192 bytes of bookkeeping (its slot, queue item, ghost and sketch
    /// share, allocation headers), so that the entries take about the bound in memory.
    ///
    /// What the process keeps is the allocator's business: with several threads writing,
    /// the memory freed by evicted values stays with the allocator. Filling a store bounded
    /// at 64 MiB far past its bound grew the process by 1.06 to 1.12 times the bound from one
    /// thread, but from 8 threads writing values of 8 bytes to 200 KB:
    ///
    /// | allocator | growth over the bound, at the end (highest) |
    /// |---|---|
    /// | glibc's `malloc` | 1.69x (1.96x) |
    /// | glibc, `MALLOC_ARENA_MAX=2` | 1.28x (1.33x) |
    /// | glibc, `MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=16384` | 1.20x (1.24x) |
    /// | jemalloc 5.3 | 1.83x (2.67x) |
    /// | mimalloc 2.0 | 2.44x (3.01x) |
    ///
    /// (Debian 12, 2 cores; other workloads grew up to 4 times the bound under glibc's
    /// defaults.) Capping glibc's arenas gives every thread of the process fewer allocators to
    /// share; jemalloc and mimalloc keep freed memory for reuse a while longer.
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        Self::build(Some(Bound::Bytes(max_bytes)))
    }

    fn build(bound: Option<Bound>) -> Self {
        MemoryStore {
            map: Arc::new(Map::new(bound)),
        }
    }

    /// Build from a store's configuration: the fields of [`MemoryConfig`](config::MemoryConfig).
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        config.build(Self::with_config)
    }

    /// The live value under `key`, shared with the store.
    pub(crate) fn value(&self, key: &str) -> Option<Arc<[u8]>> {
        self.map.read(key, |entry| Arc::clone(&entry.value))
    }

    /// The value decoded from the live bytes under `key` and kept beside them, if it answers
    /// a read of `type_id` with `serializer`.
    pub(crate) fn decoded(
        &self,
        key: &str,
        type_id: TypeId,
        serializer: &Serializer,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        self.map.read_if(key, |entry| {
            entry.decoded.get()?.value_for(type_id, serializer)
        })
    }

    /// Keep `decoded` beside `bytes`, if `key` still holds them.
    pub(crate) fn keep_decoded_copy(&self, key: &str, bytes: &Arc<[u8]>, decoded: Decoded) {
        self.map.keep_decoded(key, bytes, decoded);
    }

    /// Tell `listener` of every entry dropped from now on.
    pub(crate) fn listen(&self, listener: EvictionListener) {
        self.map.listen(listener);
    }

    /// Keep `value` under `key` for `lifetime` (`None`: until evicted), to the nanosecond.
    #[cfg(feature = "hybrid")]
    pub(crate) fn keep(&self, key: &str, value: &[u8], lifetime: Option<Duration>) {
        let deadline = lifetime.and_then(|lifetime| Instant::now().checked_add(lifetime));
        self.map.insert(key, Entry::new(value.into(), deadline));
    }

    /// Drop `key`.
    #[cfg(feature = "hybrid")]
    pub(crate) fn drop_key(&self, key: &str) {
        self.map.update(key, |_| (Change::Remove, ()));
    }

    /// Drop every key.
    #[cfg(feature = "hybrid")]
    pub(crate) fn drop_all(&self) {
        self.map.clear();
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn inspector(&self) -> std::result::Result<&dyn crate::inspect::Inspect, &'static str> {
        Err(
            "it is an in-process memory store: its items live in the memory of each \
             application process, which another process cannot see",
        )
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.map.read(key, |entry| entry.value.to_vec()))
    }

    fn get_in_process(&self, key: &str) -> Option<Option<Arc<[u8]>>> {
        Some(self.value(key))
    }

    fn get_decoded_in_process(
        &self,
        key: &str,
        type_id: TypeId,
        serializer: &Serializer,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        self.decoded(key, type_id, serializer)
    }

    fn keep_decoded(&self, key: &str, bytes: &Arc<[u8]>, decoded: Decoded) {
        self.keep_decoded_copy(key, bytes, decoded);
    }

    fn listen_evictions(&self, listener: EvictionListener) {
        self.listen(listener);
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        let now = Instant::now();
        Ok(self.map.read(key, |entry| {
            let lifetime = match entry.deadline {
                Some(deadline) => Lifetime::Remaining(deadline.saturating_duration_since(now)),
                None => Lifetime::Forever,
            };
            (entry.value.to_vec(), lifetime)
        }))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.map
            .insert(key, Entry::new(value.into(), deadline(ttl)));
        Ok(())
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        Ok(self.map.update(key, |live| match live {
            Some(_) => (Change::Keep, false),
            None => (Change::Put(Entry::new(value.into(), deadline(ttl))), true),
        }))
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        self.map.update(key, |live| {
            let outcome = incremented(live.map(|entry| &*entry.value), by);
            match &outcome {
                Ok(next) => {
                    let value = next.to_string().as_bytes().into();
                    let entry = Entry::new(value, live.and_then(|entry| entry.deadline));
                    (Change::Put(entry), outcome)
                }
                Err(_) => (Change::Keep, outcome),
            }
        })
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        Ok(self.map.update(key, |live| {
            if live.map(|entry| &*entry.value) != current {
                return (Change::Keep, false);
            }
            let entry = Entry::new(new.into(), live.and_then(|entry| entry.deadline));
            (Change::Put(entry), true)
        }))
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        Ok(self.map.update(key, |live| match live {
            Some(entry) if *entry.value == *expected => (Change::Remove, true),
            _ => (Change::Keep, false),
        }))
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        Ok(self.map.update(key, |live| match live {
            Some(entry) => {
                let entry = Entry::new(Arc::clone(&entry.value), deadline(ttl));
                (Change::Put(entry), true)
            }
            None => (Change::Keep, false),
        }))
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        Ok(self
            .map
            .update(key, |live| (Change::Remove, live.is_some())))
    }

    async fn flush(&self) -> Result<()> {
        self.map.clear();
        Ok(())
    }

    fn is_process_local(&self) -> bool {
        true
    }
}
