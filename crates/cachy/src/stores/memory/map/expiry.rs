//! Dropping expired entries: the sweeps a shard's writes pay for, and the store-wide sweep a
//! bounded store makes before it evicts anything the policy would choose.

use crate::clock::Instant;
use std::sync::atomic::Ordering;

use super::{MIN_WRITES_PER_SWEEP, Map, SHARDS, Table};
use crate::observe::EvictionCause;
use crate::stores::memory::listeners::Dropped;

/// Entries a write looks at, at most, for its shard's sweep: the sweep's cost is spread over
/// the writes after it instead of landing on one (a shard of a store of a million entries
/// holds about 16,000, a fraction of a millisecond to look through).
pub(super) const SWEEP_STEP: usize = 256;

/// A shard's sweep under way: the next entry to look at, the earliest deadline of the
/// entries it kept, and whether a removal moved an entry it had not looked at behind it.
#[derive(Default)]
pub(super) struct Pass {
    next: usize,
    first: Option<Instant>,
    skipped: bool,
}

impl Pass {
    pub(super) fn note(&mut self, deadline: Instant) {
        self.first = Some(self.first.map_or(deadline, |first| first.min(deadline)));
    }

    /// The entry at `index` is about to be removed, and the last one moved in its place.
    pub(super) fn removed_at(&mut self, index: usize) {
        if index < self.next {
            self.skipped = true;
        }
    }
}

impl Map {
    /// Drop the shard's expired entries, if it has any, once it has taken as many writes as
    /// it holds entries: `SWEEP_STEP` entries per write from then on, until the sweep has
    /// looked at them all; the weight removed.
    pub(super) fn sweep_if_due(&self, table: &mut Table, dropped: &mut Dropped) -> u64 {
        table.writes_since_sweep += 1;
        if table.sweep.is_none() {
            if table.writes_since_sweep < table.entries.len().max(MIN_WRITES_PER_SWEEP)
                || !table.has_expired()
            {
                return 0;
            }
            table.sweep = Some(Pass::default());
        }
        let Some(mut pass) = table.sweep.take() else {
            return 0;
        };
        let now = Instant::now();
        let mut removed = 0;
        for _ in 0..SWEEP_STEP {
            let Some((key, entry)) = table.entries.get_index(pass.next) else {
                break;
            };
            let expired = match entry.deadline {
                Some(deadline) if deadline <= now => {
                    removed += self.weight_of(key, entry);
                    dropped.note(key, EvictionCause::Expired);
                    true
                }
                Some(deadline) => {
                    pass.note(deadline);
                    false
                }
                None => false,
            };
            if expired {
                // The last entry moves here, to be looked at next.
                table.entries.swap_remove_index(pass.next);
            } else {
                pass.next += 1;
            }
        }
        if pass.next < table.entries.len() {
            table.sweep = Some(pass);
        } else {
            table.writes_since_sweep = 0;
            // An entry moved behind the sweep was not looked at: another sweep, when due.
            table.first_deadline = if pass.skipped { Some(now) } else { pass.first };
        }
        removed
    }

    /// Drop the shard's expired entries, all at once; the weight removed.
    pub(super) fn sweep(&self, table: &mut Table, dropped: &mut Dropped) -> u64 {
        table.writes_since_sweep = 0;
        table.sweep = None;
        let now = Instant::now();
        let (mut removed, mut first) = (0, None::<Instant>);
        table.entries.retain(|key, entry| match entry.deadline {
            Some(deadline) if deadline <= now => {
                removed += self.weight_of(key, entry);
                dropped.note(key, EvictionCause::Expired);
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

    /// The nanoseconds from `epoch` to `deadline`.
    fn nanos(&self, deadline: Instant) -> u64 {
        u64::try_from(deadline.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    pub(super) fn note_deadline(&self, deadline: Instant) {
        let nanos = self.nanos(deadline);
        // A load first: the first deadline is nearly always earlier already, and then no
        // write contends for the line.
        if nanos < self.first_deadline.load(Ordering::Relaxed) {
            self.first_deadline.fetch_min(nanos, Ordering::Relaxed);
        }
    }

    /// Sweep every shard holding an expired entry, if any entry has expired since the last
    /// time.
    pub(super) fn sweep_everywhere_if_expired(&self, dropped: &mut Dropped) {
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
                let removed = self.sweep(&mut table, dropped);
                self.weight.fetch_sub(removed, Ordering::Relaxed);
                first = table.first_deadline;
            }
            if let Some(first) = first {
                self.note_deadline(first);
            }
        }
    }
}
