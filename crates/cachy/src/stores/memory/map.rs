//! The memory store's table: a hash map split into shards, each behind its own
//! reader-writer lock, with a deadline per entry and an optional bound.
//!
//! - A read takes one shard's read lock: readers of different shards never meet, and readers
//!   of one shard share it.
//! - Expired entries are never returned. Each shard knows when its first entry expires; once
//!   one has, the shard is swept by a write after as many writes as it holds entries (each
//!   sweep is paid for by the writes before it), or at once when the bound needs room.
//! - The bound (entries, or bytes of keys and values) is kept by evicting, after each write
//!   that passed it: expired entries first (the store knows when its first entry expires,
//!   and once one has, at most once per 64 writes, sweeps the shards whose sweep the writes
//!   since their last have paid for), then an expired entry or else the least recently used
//!   of 5 entries sampled at random across the shards, as Redis's `allkeys-lru` does. The
//!   entry just written is never the one evicted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use foldhash::fast::RandomState;
use indexmap::IndexMap;

/// Shards per store: enough that callers on different threads rarely share one.
const SHARDS: usize = 64;

/// Entries sampled to choose one to evict.
const EVICTION_SAMPLES: usize = 5;

/// Writes to a shard before its expired entries are swept, at least.
const MIN_WRITES_PER_SWEEP: usize = 64;

/// One stored value.
pub(super) struct Entry {
    pub(super) value: Arc<[u8]>,
    /// `None`: until removed or evicted.
    pub(super) deadline: Option<Instant>,
    /// The store's write tick when it was last written or read (kept for bounded stores
    /// only): the recency that eviction compares.
    last_used: AtomicU64,
}

impl Entry {
    pub(super) fn new(value: Arc<[u8]>, deadline: Option<Instant>) -> Self {
        Entry {
            value,
            deadline,
            last_used: AtomicU64::new(0),
        }
    }

    fn is_live_at(&self, now: &mut Option<Instant>) -> bool {
        match self.deadline {
            None => true,
            Some(deadline) => deadline > *now.get_or_insert_with(Instant::now),
        }
    }

    fn is_live(&self) -> bool {
        self.is_live_at(&mut None)
    }
}

/// What bounds a memory store.
#[derive(Clone, Copy)]
pub(super) enum Bound {
    Entries(u64),
    Bytes(u64),
}

/// What an [`update`](Map::update) does to the entry it was shown.
pub(super) enum Change {
    Keep,
    Put(Entry),
    Remove,
}

#[repr(align(128))]
struct Shard(RwLock<Table>);

#[derive(Default)]
struct Table {
    entries: IndexMap<Box<str>, Entry, RandomState>,
    writes_since_sweep: usize,
    /// No entry expires before this (it may be earlier than the first that does: removals
    /// leave it alone, and a sweep sets it exactly).
    first_deadline: Option<Instant>,
}

impl Table {
    fn has_expired(&self) -> bool {
        self.first_deadline
            .is_some_and(|first| first <= Instant::now())
    }
}

pub(super) struct Map {
    shards: Box<[Shard]>,
    hasher: RandomState,
    bound: Option<Bound>,
    /// The bound's measure of everything stored: entries, or bytes of keys and values.
    weight: AtomicU64,
    /// Advances on every write; see [`Entry::last_used`].
    ticks: AtomicU64,
    /// The state of the eviction's sampling (a Weyl sequence, mixed).
    random: AtomicU64,
    /// No entry expires before this many nanoseconds after `epoch` (`u64::MAX`: none
    /// expires); like [`Table::first_deadline`], possibly early.
    first_deadline: AtomicU64,
    epoch: Instant,
    /// The write tick of the last store-wide sweep.
    last_store_sweep: AtomicU64,
}

impl Map {
    pub(super) fn new(bound: Option<Bound>) -> Self {
        Map {
            shards: (0..SHARDS).map(|_| Shard(RwLock::default())).collect(),
            hasher: RandomState::default(),
            bound,
            weight: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            random: AtomicU64::new(u64::from(std::process::id())),
            first_deadline: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            last_store_sweep: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &str) -> &Shard {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        // The high bits: the table inside the shard uses its own hasher.
        &self.shards[(hash >> 58) as usize % SHARDS]
    }

    /// `read` of the live entry under `key`.
    pub(super) fn read<R>(&self, key: &str, read: impl FnOnce(&Entry) -> R) -> Option<R> {
        let table = self.shard(key).read();
        let entry = table.entries.get(key).filter(|entry| entry.is_live())?;
        if self.bound.is_some() {
            let now = self.ticks.load(Ordering::Relaxed);
            // Written only when it changes, so hot entries read on several cores are not
            // written back and forth between them.
            if entry.last_used.load(Ordering::Relaxed) != now {
                entry.last_used.store(now, Ordering::Relaxed);
            }
        }
        Some(read(entry))
    }

    /// Store `entry` under `key`, replacing what was there.
    pub(super) fn insert(&self, key: &str, entry: Entry) {
        self.update(key, |_| (Change::Put(entry), ()));
    }

    /// Decide, under the shard's write lock, what becomes of `key` from its live entry (if
    /// any): the atomic step of `add`, `increment`, compare-and-swap and the like.
    pub(super) fn update<R>(
        &self,
        key: &str,
        decide: impl FnOnce(Option<&Entry>) -> (Change, R),
    ) -> R {
        let (grew, outcome) = {
            let mut table = self.shard(key).write();
            let index = table.entries.get_index_of(key);
            let live = index
                .map(|i| &table.entries[i])
                .filter(|entry| entry.is_live());
            let (change, outcome) = decide(live);
            let (mut added, mut removed) = (0, 0);
            match change {
                Change::Keep => {}
                // It could never be kept; what it replaces must not be read instead.
                Change::Put(entry) if self.exceeds_bound_alone(key, &entry) => {
                    removed = self.remove_at(&mut table, index);
                }
                Change::Put(entry) => {
                    added = self.weight_of(key, &entry);
                    if let Some(deadline) = entry.deadline {
                        table.first_deadline = Some(
                            table
                                .first_deadline
                                .map_or(deadline, |first| first.min(deadline)),
                        );
                    }
                    if self.bound.is_some() {
                        let tick = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
                        entry.last_used.store(tick, Ordering::Relaxed);
                        if let Some(deadline) = entry.deadline {
                            self.note_deadline(deadline);
                        }
                    }
                    if let Some(i) = index {
                        let old = std::mem::replace(&mut table.entries[i], entry);
                        removed = self.weight_of(key, &old);
                    } else {
                        table.entries.insert(key.into(), entry);
                    }
                    removed += self.sweep_if_due(&mut table);
                }
                Change::Remove => removed = self.remove_at(&mut table, index),
            }
            // Under the shard's lock, so that an entry's weight is always added before
            // another writer of the key takes it away: the total never wraps.
            self.weight.fetch_add(added, Ordering::Relaxed);
            self.weight.fetch_sub(removed, Ordering::Relaxed);
            (added > removed, outcome)
        };
        if grew {
            self.evict_beyond_bound(key);
        }
        outcome
    }

    /// Remove every entry.
    pub(super) fn clear(&self) {
        for shard in &self.shards {
            let mut table = shard.write();
            let removed: u64 = table
                .entries
                .iter()
                .map(|(key, entry)| self.weight_of(key, entry))
                .sum();
            *table = Table::default();
            self.weight.fetch_sub(removed, Ordering::Relaxed);
        }
    }

    /// Remove the entry at `index`, if any; the weight removed.
    fn remove_at(&self, table: &mut Table, index: Option<usize>) -> u64 {
        index
            .and_then(|i| table.entries.swap_remove_index(i))
            .map_or(0, |(key, old)| self.weight_of(&key, &old))
    }

    fn exceeds_bound_alone(&self, key: &str, entry: &Entry) -> bool {
        match self.bound {
            Some(Bound::Entries(limit) | Bound::Bytes(limit)) => self.weight_of(key, entry) > limit,
            None => false,
        }
    }

    fn weight_of(&self, key: &str, entry: &Entry) -> u64 {
        match self.bound {
            None => 0,
            Some(Bound::Entries(_)) => 1,
            Some(Bound::Bytes(_)) => (key.len() + entry.value.len()) as u64,
        }
    }

    /// Drop the shard's expired entries, if it has any, once it has taken as many writes as
    /// it holds entries; the weight removed.
    fn sweep_if_due(&self, table: &mut Table) -> u64 {
        table.writes_since_sweep += 1;
        if table.writes_since_sweep < table.entries.len().max(MIN_WRITES_PER_SWEEP)
            || !table.has_expired()
        {
            return 0;
        }
        self.sweep(table)
    }

    /// Drop the shard's expired entries; the weight removed.
    fn sweep(&self, table: &mut Table) -> u64 {
        table.writes_since_sweep = 0;
        let now = Instant::now();
        let (mut removed, mut first) = (0, None::<Instant>);
        table.entries.retain(|key, entry| match entry.deadline {
            Some(deadline) if deadline <= now => {
                removed += self.weight_of(key, entry);
                false
            }
            Some(deadline) => {
                first = Some(first.map_or(deadline, |first| first.min(deadline)));
                true
            }
            None => true,
        });
        table.first_deadline = first;
        removed
    }

    /// Evict until the store is within its bound, sparing `written`, the key whose write
    /// passed it.
    fn evict_beyond_bound(&self, written: &str) {
        let limit = match self.bound {
            None => return,
            Some(Bound::Entries(limit) | Bound::Bytes(limit)) => limit,
        };
        if self.weight.load(Ordering::Relaxed) > limit {
            self.sweep_everywhere_if_expired();
        }
        // Every try that finds nothing to evict counts, so a store whose other writers
        // race this one cannot keep it here.
        let mut fruitless = 0;
        while self.weight.load(Ordering::Relaxed) > limit && fruitless < SHARDS {
            if !self.evict_one(written) {
                fruitless += 1;
            }
        }
    }

    /// The nanoseconds from `epoch` to `deadline`.
    fn nanos(&self, deadline: Instant) -> u64 {
        u64::try_from(deadline.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn note_deadline(&self, deadline: Instant) {
        let nanos = self.nanos(deadline);
        // A load first: the first deadline is nearly always earlier already, and then no
        // write contends for the line.
        if nanos < self.first_deadline.load(Ordering::Relaxed) {
            self.first_deadline.fetch_min(nanos, Ordering::Relaxed);
        }
    }

    /// Sweep every shard holding an expired entry, if any entry has expired since the last
    /// time.
    fn sweep_everywhere_if_expired(&self) {
        let now = Instant::now();
        if self.first_deadline.load(Ordering::Relaxed) > self.nanos(now) {
            return;
        }
        // At most once per `SHARDS` writes, by one writer at a time: the others, and this
        // one in between, find expired entries by sampling.
        let ticks = self.ticks.load(Ordering::Relaxed);
        let last = self.last_store_sweep.load(Ordering::Relaxed);
        if ticks < last.saturating_add(SHARDS as u64)
            || self
                .last_store_sweep
                .compare_exchange(last, ticks, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // Deadlines noted during the sweep are kept: the new first is the earliest of both.
        self.first_deadline.store(u64::MAX, Ordering::Relaxed);
        for shard in &self.shards {
            let (mut first, paid_for) = {
                let table = shard.read();
                let paid_for = table.writes_since_sweep >= table.entries.len();
                (table.first_deadline, paid_for)
            };
            // Only a shard that has taken as many writes as it holds entries since its last
            // sweep: sweeps stay paid for by the writes before them.
            if paid_for && first.is_some_and(|first| first <= now) {
                let mut table = shard.write();
                let removed = self.sweep(&mut table);
                self.weight.fetch_sub(removed, Ordering::Relaxed);
                first = table.first_deadline;
            }
            if let Some(first) = first {
                self.note_deadline(first);
            }
        }
    }

    /// Evict an expired entry or else the least recently used of the entries sampled, never
    /// `spared`; `false` if nothing was (the chosen entry changed before it could be
    /// removed, every sample was `spared`, or the store is empty).
    fn evict_one(&self, spared: &str) -> bool {
        let mut now = None;
        let mut best: Option<(usize, usize, u64)> = None;
        for _ in 0..EVICTION_SAMPLES {
            let random = self.next_random();
            let start = (random >> 32) as usize;
            // From a random shard on to the first that holds anything but `spared`: a sample
            // that could land on it again and again would leave the store over its bound.
            let Some((shard, table)) = (0..SHARDS)
                .map(|offset| start.wrapping_add(offset) % SHARDS)
                .map(|shard| (shard, self.shards[shard].read()))
                .find(|(_, table)| match table.entries.len() {
                    0 => false,
                    1 => table
                        .entries
                        .get_index(0)
                        .is_some_and(|(key, _)| &**key != spared),
                    _ => true,
                })
            else {
                return false;
            };
            let mut index = (random as u32 as usize) % table.entries.len();
            if table
                .entries
                .get_index(index)
                .is_some_and(|(key, _)| &**key == spared)
            {
                index = (index + 1) % table.entries.len();
            }
            let Some((_, entry)) = table.entries.get_index(index) else {
                continue;
            };
            let recency = if entry.is_live_at(&mut now) {
                entry.last_used.load(Ordering::Relaxed)
            } else {
                0
            };
            if best.is_none_or(|(_, _, best)| recency < best) {
                best = Some((shard, index, recency));
            }
        }
        let Some((shard, index, recency)) = best else {
            return false;
        };
        let mut table = self.shards[shard].write();
        let still_chosen = table.entries.get_index(index).is_some_and(|(key, entry)| {
            &**key != spared
                && (!entry.is_live_at(&mut now)
                    || entry.last_used.load(Ordering::Relaxed) == recency)
        });
        if !still_chosen {
            return false;
        }
        let removed = self.remove_at(&mut table, Some(index));
        self.weight.fetch_sub(removed, Ordering::Relaxed);
        true
    }

    fn next_random(&self) -> u64 {
        // splitmix64
        let mut z = self
            .random
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Shard {
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        // Nothing panics while a shard is locked; a poisoned lock's table is whole.
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
