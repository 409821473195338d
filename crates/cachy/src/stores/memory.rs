use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::ops::compute::{CompResult, Op};
use moka::sync::Cache;

use crate::codec::incremented;
use crate::config::StoreConfig;
use crate::error::Result;
use crate::store::{Lifetime, Store, Ttl};

/// The in-process store (driver `dict`, alias `memory`), built on moka.
///
/// Thread-safe, with a per-entry TTL and an optional bound on the number of entries
/// (`max_entries`) or on their size (`max_bytes`: keys and values), beyond which moka evicts
/// the entries least likely to be used again (TinyLFU). A hit hands the repository the stored
/// bytes without copying them ([`Store::get_in_process`]). Values are kept serialized, so a value read as the wrong type is an error here
/// exactly as on a remote store. `add` and `increment` are atomic (moka's per-key compute).
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<String, Entry>,
}

#[derive(Clone)]
struct Entry {
    value: Arc<[u8]>,
    deadline: Option<Instant>,
}

impl Entry {
    fn new(value: &[u8], ttl: Ttl) -> Self {
        Entry {
            value: value.into(),
            // Clamped like every lifetime, so a store called directly with `u64::MAX` cannot
            // overflow `Instant`.
            deadline: ttl.map(|seconds| {
                Instant::now() + Duration::from_secs(seconds.min(crate::MAX_TTL_SECONDS))
            }),
        }
    }

    fn is_live(&self) -> bool {
        self.deadline
            .is_none_or(|deadline| deadline > Instant::now())
    }
}

struct UntilDeadline;

impl moka::Expiry<String, Entry> for UntilDeadline {
    fn expire_after_create(&self, _: &String, entry: &Entry, now: Instant) -> Option<Duration> {
        entry.deadline.map(|d| d.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        entry.deadline.map(|d| d.saturating_duration_since(now))
    }
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

    /// A memory store holding at most `max_bytes` of keys and values (each entry weighs its
    /// key's and its value's length).
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        Self::build(Some(Bound::Bytes(max_bytes)))
    }

    fn build(bound: Option<Bound>) -> Self {
        let builder = Cache::builder().expire_after(UntilDeadline);
        let cache = match bound {
            None => builder.build(),
            Some(Bound::Entries(max)) => builder.max_capacity(max).build(),
            Some(Bound::Bytes(max)) => builder
                .weigher(|key: &String, entry: &Entry| {
                    u32::try_from(key.len() + entry.value.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(max)
                .build(),
        };
        MemoryStore { cache }
    }

    /// Build from configuration: the optional `max_entries` bounds the entry count, or
    /// `max_bytes` the bytes of keys and values (one or the other).
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        let options: MemoryOptions = config.parse()?;
        let bound = match (options.max_entries, options.max_bytes) {
            (Some(_), Some(_)) => {
                return Err(config.error(
                    "max_bytes",
                    "give `max_entries` or `max_bytes`, not both: the store is bounded by one",
                ));
            }
            (Some(entries), None) => Some(Bound::Entries(entries.0)),
            (None, Some(bytes)) => Some(Bound::Bytes(bytes.0)),
            (None, None) => None,
        };
        Ok(Self::build(bound))
    }

    /// The live value under `key`, shared with the store. moka's `get` already compares the
    /// entry's expiry (set from its deadline by [`UntilDeadline`]) with the time, so the
    /// clock is not read twice.
    pub(crate) fn value(&self, key: &str) -> Option<Arc<[u8]>> {
        self.cache.get(key).map(|entry| entry.value)
    }

    /// Keep `value` under `key` for `lifetime` (`None`: until evicted), to the nanosecond.
    #[cfg(feature = "hybrid")]
    pub(crate) fn keep(&self, key: &str, value: &[u8], lifetime: Option<Duration>) {
        let entry = Entry {
            value: value.into(),
            deadline: lifetime.and_then(|lifetime| Instant::now().checked_add(lifetime)),
        };
        self.cache.insert(key.to_owned(), entry);
    }

    /// Drop `key`.
    #[cfg(feature = "hybrid")]
    pub(crate) fn drop_key(&self, key: &str) {
        self.cache.invalidate(key);
    }

    /// Drop every key.
    #[cfg(feature = "hybrid")]
    pub(crate) fn drop_all(&self) {
        self.cache.invalidate_all();
    }
}

/// The `dict` driver's options.
#[derive(serde::Deserialize)]
struct MemoryOptions {
    max_entries: Option<crate::Count>,
    max_bytes: Option<crate::Count>,
}

/// What bounds a memory store.
enum Bound {
    Entries(u64),
    Bytes(u64),
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.value(key).map(|value| value.to_vec()))
    }

    fn get_in_process(&self, key: &str) -> Option<Option<Arc<[u8]>>> {
        Some(self.value(key))
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        let now = Instant::now();
        Ok(self.cache.get(key).filter(Entry::is_live).map(|entry| {
            let lifetime = match entry.deadline {
                Some(deadline) => Lifetime::Remaining(deadline.saturating_duration_since(now)),
                None => Lifetime::Forever,
            };
            (entry.value.to_vec(), lifetime)
        }))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.cache.insert(key.to_owned(), Entry::new(value, ttl));
        Ok(())
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let result = self.cache.entry_by_ref(key).and_compute_with(|existing| {
            match existing.filter(|e| e.value().is_live()) {
                Some(_) => Op::Nop,
                None => Op::Put(Entry::new(value, ttl)),
            }
        });
        Ok(matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        ))
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        let mut outcome = Ok(0);
        self.cache.entry_by_ref(key).and_compute_with(|existing| {
            let live = existing.map(|e| e.into_value()).filter(Entry::is_live);
            outcome = incremented(live.as_ref().map(|e| &*e.value), by);
            match &outcome {
                Ok(next) => Op::Put(Entry {
                    value: next.to_string().as_bytes().into(),
                    deadline: live.and_then(|e| e.deadline),
                }),
                Err(_) => Op::Nop,
            }
        });
        outcome
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        let mut swapped = false;
        self.cache.entry_by_ref(key).and_compute_with(|existing| {
            let live = existing.map(|e| e.into_value()).filter(Entry::is_live);
            if live.as_ref().map(|e| &*e.value) != current {
                return Op::Nop;
            }
            swapped = true;
            Op::Put(Entry {
                value: new.into(),
                deadline: live.and_then(|e| e.deadline),
            })
        });
        Ok(swapped)
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let mut deleted = false;
        self.cache.entry_by_ref(key).and_compute_with(|existing| {
            match existing.map(|e| e.into_value()).filter(Entry::is_live) {
                Some(live) if *live.value == *expected => {
                    deleted = true;
                    Op::Remove
                }
                _ => Op::Nop,
            }
        });
        Ok(deleted)
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        let mut touched = false;
        self.cache.entry_by_ref(key).and_compute_with(|existing| {
            match existing.map(|e| e.into_value()).filter(Entry::is_live) {
                Some(live) => {
                    touched = true;
                    Op::Put(Entry {
                        deadline: Entry::new(&[], ttl).deadline,
                        ..live
                    })
                }
                None => Op::Nop,
            }
        });
        Ok(touched)
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        Ok(self.cache.remove(key).is_some_and(|e| e.is_live()))
    }

    async fn flush(&self) -> Result<()> {
        self.cache.invalidate_all();
        Ok(())
    }

    fn is_process_local(&self) -> bool {
        true
    }
}
