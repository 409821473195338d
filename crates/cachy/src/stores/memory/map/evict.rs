//! Keeping a bounded store within its bound: evicting, after a write that passed it, the
//! expired entries first and then the entries the policy chooses.

use std::sync::atomic::Ordering;

use super::{Bound, Map};
use crate::observe::EvictionCause;
use crate::stores::memory::policy::{Found, Queue, Queued};

impl Map {
    /// Whether the entry `item` was queued for is still in the store.
    pub(super) fn is_queued(&self, item: &Queued) -> bool {
        let table = self.shard(&item.key).read();
        table
            .entries
            .get(&*item.key)
            .is_some_and(|entry| entry.id() == item.id)
    }

    pub(super) fn is_over_bound(&self) -> bool {
        match self.bound {
            Some(Bound::Entries(limit) | Bound::Bytes(limit)) => {
                self.weight.load(Ordering::Relaxed) > limit
            }
            None => false,
        }
    }

    /// Evict until the store is within its bound, sparing the entry `written` (its id), whose
    /// write passed it: expired entries first, then those the policy chooses.
    pub(super) fn evict_beyond_bound(&self, written: u64) {
        let (Some(policy), Some(Bound::Entries(limit) | Bound::Bytes(limit))) =
            (&self.policy, self.bound)
        else {
            return;
        };
        let mut dropped = self.listeners.collect();
        if self.weight.load(Ordering::Relaxed) > limit {
            self.sweep_everywhere_if_expired(&mut dropped);
        }
        policy.evict(
            || self.weight.load(Ordering::Relaxed) > limit,
            |item, queue, force| {
                let mut table = self.shard(&item.key).write();
                let Some(index) = table.entries.get_index_of(&*item.key) else {
                    return Found::Gone;
                };
                let entry = &table.entries[index];
                if entry.id() != item.id {
                    return Found::Gone;
                }
                if entry.id() == written {
                    return Found::Spared;
                }
                let reads = entry.reads();
                if reads > 0 && entry.is_live() && !force {
                    // Out of the small queue with a clean count; a round less in the main.
                    let left = if queue == Queue::Small { 0 } else { reads - 1 };
                    entry.set_reads(left);
                    return Found::Read(reads);
                }
                let removed =
                    self.remove_at(&mut table, Some(index), EvictionCause::Size, &mut dropped);
                self.weight.fetch_sub(removed, Ordering::Relaxed);
                Found::Evicted
            },
        );
        self.listeners.tell(dropped);
    }
}
