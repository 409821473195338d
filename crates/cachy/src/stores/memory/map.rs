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
//!   since their last have paid for), then the entries the policy chooses (S3-FIFO, see
//!   `policy.rs`). The entry just written is never the one evicted.

use crate::clock::Instant;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use foldhash::fast::RandomState;
use indexmap::IndexMap;
use once_cell::race::OnceBox;

use super::listeners::{Dropped, Listeners};
use super::policy::Policy;
use crate::decoded::Decoded;
use crate::observe::EvictionCause;
use crate::store::EvictionListener;

/// Shards per store: enough that callers on different threads rarely share one.
const SHARDS: usize = 64;

/// What an entry costs beyond its key and value, in bytes, for a store bounded by bytes:
/// its slot in the table and the index, the headers of its key's and value's allocations,
/// its item in the eviction queues and its share of the ghost table and the sketch.
/// Measured: 400,000 entries of 8-byte values grew a process by 205 bytes each, 17 of them
/// key and value.
pub(super) const ENTRY_OVERHEAD: u64 = 192;

/// The most reads an entry's count remembers: a key read this often survives that many
/// rounds of the main queue unread.
const MAX_READS: u8 = 3;

/// The low bits of an entry's `meta` that count its reads.
const READ_BITS: u32 = 8;
const READS_MASK: u64 = (1 << READ_BITS) - 1;

/// Writes to a shard before its expired entries are swept, at least.
const MIN_WRITES_PER_SWEEP: usize = 64;

/// One stored value.
pub(super) struct Entry {
    pub(super) value: Arc<[u8]>,
    /// `None`: until removed or evicted.
    pub(super) deadline: Option<Instant>,
    /// Two numbers in one word, as every byte of an entry counts: which insertion of its
    /// key this is, for the policy's queues (a `put` over a live entry keeps it: the key
    /// keeps its place), above the low [`READ_BITS`]; and below them, the reads since it
    /// last passed a queue's front, up to [`MAX_READS`] (bounded stores only).
    meta: AtomicU64,
    /// The first value decoded from `value` and kept (boxed, in one word: most entries
    /// never have one).
    pub(super) decoded: OnceBox<Decoded>,
}

impl Entry {
    pub(super) fn new(value: Arc<[u8]>, deadline: Option<Instant>) -> Self {
        Entry {
            value,
            deadline,
            meta: AtomicU64::new(0),
            decoded: OnceBox::new(),
        }
    }

    /// Which insertion of its key this is.
    fn id(&self) -> u64 {
        self.meta.load(Ordering::Relaxed) >> READ_BITS
    }

    /// Reads since it last passed a queue's front.
    fn reads(&self) -> u8 {
        (self.meta.load(Ordering::Relaxed) & READS_MASK) as u8
    }

    /// Mark it as insertion `id` of its key, read `reads` times.
    fn set_meta(&mut self, id: u64, reads: u8) {
        *self.meta.get_mut() = id << READ_BITS | u64::from(reads);
    }

    /// Set its reads, under the shard's write lock (the id changes only under it too).
    fn set_reads(&self, reads: u8) {
        let meta = self.meta.load(Ordering::Relaxed);
        self.meta
            .store(meta & !READS_MASK | u64::from(reads), Ordering::Relaxed);
    }

    /// Count a read. Written only when it changes, so a hot entry read on several cores is
    /// not written back and forth between them; a read counted by two readers at once may
    /// count once.
    fn read(&self) {
        let meta = self.meta.load(Ordering::Relaxed);
        if meta & READS_MASK < u64::from(MAX_READS) {
            self.meta.store(meta + 1, Ordering::Relaxed);
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
struct Shard {
    table: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    entries: IndexMap<Arc<str>, Entry, RandomState>,
    writes_since_sweep: usize,
    /// No entry expires before this (it may be earlier than the first that does: removals
    /// leave it alone, and a sweep sets it exactly).
    first_deadline: Option<Instant>,
    /// The sweep under way, a few entries per write.
    sweep: Option<expiry::Pass>,
}

impl Table {
    /// Note that an entry now expires at `deadline`.
    fn note_deadline(&mut self, deadline: Instant) {
        self.first_deadline = Some(
            self.first_deadline
                .map_or(deadline, |first| first.min(deadline)),
        );
        if let Some(pass) = &mut self.sweep {
            pass.note(deadline);
        }
    }

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
    /// Advances on every write of a bounded store: the pace of the store-wide sweeps.
    ticks: AtomicU64,
    /// Which entries a bounded store keeps.
    policy: Option<Policy>,
    /// The id of the next insertion.
    next_id: AtomicU64,
    /// No entry expires before this many nanoseconds after `epoch` (`u64::MAX`: none
    /// expires); like [`Table::first_deadline`], possibly early.
    first_deadline: AtomicU64,
    epoch: Instant,
    /// The write tick of the last store-wide sweep.
    last_store_sweep: AtomicU64,
    /// Who hears of dropped entries.
    listeners: Listeners,
}

impl Map {
    pub(super) fn new(bound: Option<Bound>) -> Self {
        Map {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    table: RwLock::default(),
                })
                .collect(),
            hasher: RandomState::default(),
            bound,
            weight: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            policy: bound.map(|bound| match bound {
                Bound::Entries(limit) => Policy::new(limit, limit),
                // About as many entries as values of 512 bytes would make: the ghost table
                // and the sketch then take about a sixteenth of the bound.
                Bound::Bytes(limit) => Policy::new(limit, limit / 512),
            }),
            next_id: AtomicU64::new(1),
            first_deadline: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            last_store_sweep: AtomicU64::new(0),
            listeners: Listeners::default(),
        }
    }

    fn shard(&self, key: &str) -> &Shard {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        // The high bits: the table inside the shard uses its own hasher.
        &self.shards[(hash >> 58) as usize % SHARDS]
    }

    /// `read` of the live entry under `key`.
    pub(super) fn read<R>(&self, key: &str, read: impl FnOnce(&Entry) -> R) -> Option<R> {
        let shard = self.shard(key);
        let table = shard.read();
        let entry = table.entries.get(key).filter(|entry| entry.is_live());
        if let (Some(_), Some(entry)) = (&self.policy, entry) {
            entry.read();
        }
        entry.map(read)
    }

    /// What `read` finds in the live entry under `key`, counted as a read (a hit) only if it
    /// finds something: a caller that then reads the entry otherwise is counted once.
    pub(super) fn read_if<R>(
        &self,
        key: &str,
        read: impl FnOnce(&Entry) -> Option<R>,
    ) -> Option<R> {
        let shard = self.shard(key);
        let table = shard.read();
        let entry = table.entries.get(key).filter(|entry| entry.is_live())?;
        let found = read(entry)?;
        if self.policy.is_some() {
            entry.read();
        }
        Some(found)
    }

    /// Keep `decoded` beside the entry under `key` if it still holds `bytes` (the same
    /// allocation) and keeps no decoded value yet. A store bounded by bytes keeps none: what
    /// a decoded value takes in memory (its own allocations, each string's and list's)
    /// cannot be known from outside it, and the bound must hold.
    pub(super) fn keep_decoded(&self, key: &str, bytes: &Arc<[u8]>, decoded: Decoded) {
        if matches!(self.bound, Some(Bound::Bytes(_))) {
            return;
        }
        let table = self.shard(key).read();
        if let Some(entry) = table
            .entries
            .get(key)
            .filter(|entry| Arc::ptr_eq(&entry.value, bytes))
        {
            // Only the first value decoded is kept: a later one is dropped.
            let _ = entry.decoded.set(Box::new(decoded));
        }
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
        let mut dropped = self.listeners.collect();
        let (grew, written, admitted, outcome) = {
            let mut table = self.shard(key).write();
            let index = table.entries.get_index_of(key);
            let live = index
                .map(|i| &table.entries[i])
                .filter(|entry| entry.is_live());
            let kept = live.map(|entry| (entry.id(), entry.reads()));
            let (change, outcome) = decide(live);
            let (mut added, mut removed) = (0, 0);
            // The entry this write stored, and the new insertion for the policy to queue.
            let (mut written, mut admitted) = (0, None);
            match change {
                Change::Keep => {}
                // It could never be kept; what it replaces must not be read instead, and goes
                // for the new value's size. With nothing live to replace, the value itself is
                // what the bound drops, and the listeners are told so: a write that keeps
                // nothing is never silent.
                Change::Put(entry) if self.exceeds_bound_alone(key, &entry) => {
                    removed = self.remove_at(&mut table, index, EvictionCause::Size, &mut dropped);
                    if kept.is_none() {
                        dropped.note(&Arc::from(key), EvictionCause::Size);
                    }
                }
                Change::Put(mut entry) => {
                    added = self.weight_of(key, &entry);
                    if let Some(deadline) = entry.deadline {
                        table.note_deadline(deadline);
                    }
                    if self.policy.is_some() {
                        self.ticks.fetch_add(1, Ordering::Relaxed);
                        if let Some(deadline) = entry.deadline {
                            self.note_deadline(deadline);
                        }
                    }
                    // A write over a live entry is a use of its key, which keeps its place
                    // in the queues; any other write is a new insertion.
                    let new_insertion = match kept {
                        Some((id, reads)) => {
                            entry.set_meta(id, reads.saturating_add(1).min(MAX_READS));
                            false
                        }
                        None => {
                            entry.set_meta(self.next_id.fetch_add(1, Ordering::Relaxed), 0);
                            true
                        }
                    };
                    written = entry.id();
                    if let Some(i) = index {
                        let old = std::mem::replace(&mut table.entries[i], entry);
                        removed = self.weight_of(key, &old);
                        let (stored, new) = table.entries.get_index(i).expect("just replaced");
                        // A `touch` keeps the value (the same allocation): nothing was dropped.
                        if !Arc::ptr_eq(&old.value, &new.value) || !old.is_live() {
                            dropped.note(stored, cause_of(&old, EvictionCause::Replaced));
                        }
                    } else {
                        table.entries.insert(key.into(), entry);
                    }
                    removed += self.sweep_if_due(&mut table, &mut dropped);
                    if new_insertion && self.policy.is_some() {
                        // The sweep may have taken it already, if it expired at once.
                        if let Some((stored, _)) = table.entries.get_key_value(key) {
                            let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
                            admitted = Some((Arc::clone(stored), written, added, hash));
                        }
                    }
                }
                Change::Remove => {
                    removed =
                        self.remove_at(&mut table, index, EvictionCause::Removed, &mut dropped);
                }
            }
            // Under the shard's lock, so that an entry's weight is always added before
            // another writer of the key takes it away: the total never wraps.
            self.weight.fetch_add(added, Ordering::Relaxed);
            self.weight.fetch_sub(removed, Ordering::Relaxed);
            (added > removed, written, admitted, outcome)
        };
        self.listeners.tell(dropped);
        // The queues are locked only once the shard is not: evictions lock them first.
        if let (Some(policy), Some((key, id, weight, hash))) = (&self.policy, admitted) {
            policy.admit(key, id, weight, hash, |item| self.is_queued(item));
        }
        // Not only after a write that grew the store: one that found it over its bound
        // (evictions gave up while readers kept every entry busy) brings it back.
        if grew || self.is_over_bound() {
            self.evict_beyond_bound(written);
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

    /// Remove the entry at `index`, if any, for `cause` (if it is live); the weight removed.
    fn remove_at(
        &self,
        table: &mut Table,
        index: Option<usize>,
        cause: EvictionCause,
        dropped: &mut Dropped,
    ) -> u64 {
        if let (Some(i), Some(pass)) = (index, &mut table.sweep) {
            pass.removed_at(i);
        }
        let Some((key, old)) = index.and_then(|i| table.entries.swap_remove_index(i)) else {
            return 0;
        };
        dropped.note(&key, cause_of(&old, cause));
        self.weight_of(&key, &old)
    }

    /// Tell the listeners of every entry the store drops from now on.
    pub(super) fn listen(&self, listener: EvictionListener) {
        self.listeners.add(listener);
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
            Some(Bound::Bytes(_)) => (key.len() + entry.value.len()) as u64 + ENTRY_OVERHEAD,
        }
    }
}

/// Why `entry` is dropped, if `cause` is the reason for a live one: an expired entry is
/// always dropped as expired.
fn cause_of(entry: &Entry, cause: EvictionCause) -> EvictionCause {
    if entry.is_live() {
        cause
    } else {
        EvictionCause::Expired
    }
}

impl Shard {
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        // Nothing panics while a shard is locked; a poisoned lock's table is whole.
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }
}

mod evict;
mod expiry;
#[cfg(test)]
mod tests;
