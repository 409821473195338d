//! Which entries a bounded memory store keeps: S3-FIFO (Yang et al., "FIFO queues are all
//! you need for cache eviction", SOSP 2023), with TinyLFU's frequency sketch, and the queues'
//! shares set as ARC sets them (Megiddo and Modha, FAST 2003) by the keys that come back.
//!
//! - A new key enters a small FIFO queue. When it reaches the queue's front, it moves to
//!   the main queue if it was read meanwhile; else it is evicted, and remembered in a ghost
//!   table (as are the keys the main queue evicts, below). One-hit wonders and scans pass
//!   through the small queue without pushing the hot set out. Until the first eviction, new
//!   keys fill the main queue first.
//! - A key the ghost table remembers was evicted too soon (from either queue): it enters the
//!   main queue at once if the main queue has room, or if a frequency sketch says it is used
//!   more often than the key it would push out there (as TinyLFU admits). A tie goes to a
//!   key the small queue evicted fewer of its evictions ago than the main queue holds
//!   entries (a FIFO queue of the main queue's size would still have held it). A loop a
//!   little larger than the store then keeps most of itself instead of nothing, and what
//!   the main queue let go of a loop when the store first filled comes back to it.
//! - At the main queue's front, a key read since it last passed there goes round again (its
//!   read count, at most 3, goes down by one); else it is evicted.
//! - The small queue's share of the bound starts at a tenth and moves with each key that
//!   comes back soon after either queue evicted it: within as many of that queue's evictions
//!   as the smaller of the two queues holds entries (the small queue counted as holding at
//!   least 1% of them), so that the queue grown by that many entries would have kept it; both
//!   queues are judged over the same number, so that as many keys coming back from each mean
//!   as much to gain per entry from either. Such a key moves the share by its weight towards
//!   the queue that evicted it (up to 80% of the bound). As in ARC, the queue whose last
//!   evictions come back more often grows, and at once: a hot set that moves makes its new
//!   keys come back from the small queue, which grows until they are read there, while the
//!   old keys leave the main one; a loop a little larger than the store comes back from the
//!   main queue, which keeps all it can.
//! - The share stays at 1% of the bound or more while the small queue serves: while a key
//!   came back that soon from it within its last evictions of a tenth of the entries. When
//!   none has, as in a loop several times the store or a mix of a loop and a hot set, whose
//!   keys never come back while they could still be in the small queue, it goes on
//!   shrinking to 0.1%, and the main queue keeps that much more.
//!
//! Reads never touch the queues: they raise a counter in the entry (see `Entry::read`), so a
//! hit takes no lock but its shard's read lock. Writes of new keys and evictions take the
//! queues' one lock, after their shard's lock is released; the sketch counts a key's uses
//! there, on a miss and when a queue's front shows its reads. The queues hold keys, not
//! entries: an item whose entry was removed or replaced by a new insertion meanwhile is
//! skipped when it reaches the front, and the queues are compacted when such items pile up.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Which queue an item is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Queue {
    Small,
    Main,
}

/// What the store found of an item at a queue's front.
pub(super) enum Found {
    /// Its entry is gone, or is another insertion of the key: the item is dropped.
    Gone,
    /// The entry was read this many times since it last passed the front (the store lowered
    /// its count): it stays, in the main queue.
    Read(u8),
    /// The entry was evicted.
    Evicted,
    /// The entry is the one the current write stored, which is never evicted for it.
    Spared,
}

/// One key in a queue, as it was when it was queued.
pub(super) struct Queued {
    pub(super) key: Arc<str>,
    /// Which insertion of the key this is (an entry replaced by a later `put` keeps it).
    pub(super) id: u64,
    pub(super) weight: u64,
    hash: u64,
}

pub(super) struct Policy {
    queues: Mutex<Queues>,
    limit: u64,
}

struct Queues {
    small: VecDeque<Queued>,
    main: VecDeque<Queued>,
    /// The weights queued in each, as they were when queued (gone items included until
    /// they are dropped).
    small_weight: u64,
    main_weight: u64,
    ghost: Ghost,
    /// How often each key was used lately.
    sketch: Sketch,
    /// The queues' length after the last compaction: they are compacted again once they
    /// hold twice as many items.
    compacted_at: usize,
    /// The front just looked at was the entry the current write stored, which is spared:
    /// the other queue's front goes next (if it has one).
    turn_to: Option<Queue>,
    /// The small queue's share of the bound, which the keys coming back move.
    small_limit: u64,
    /// About how many entries the store holds at its bound.
    entries: u64,
    /// Nothing was evicted yet.
    filling: bool,
    /// The small queue's count of evictions when a key last came back soon after it evicted
    /// it (see `came_back`).
    small_served_at: u64,
}

impl Policy {
    /// The policy of a store bounded at `limit`, expected to hold about `entries` entries.
    pub(super) fn new(limit: u64, entries: u64) -> Self {
        Policy {
            queues: Mutex::new(Queues {
                small: VecDeque::new(),
                main: VecDeque::new(),
                small_weight: 0,
                main_weight: 0,
                ghost: Ghost::new(entries),
                sketch: Sketch::new(entries),
                compacted_at: 0,
                turn_to: None,
                small_limit: (limit / 10).max(1),
                entries,
                filling: true,
                small_served_at: 0,
            }),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Nothing panics while the queues are locked; poisoned queues are whole.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue a new insertion of `key`: in the main queue if the ghost table remembers it,
    /// else in the small one. `live` says whether a queued item's entry is still there, for
    /// compaction.
    pub(super) fn admit(
        &self,
        key: Arc<str>,
        id: u64,
        weight: u64,
        hash: u64,
        live: impl Fn(&Queued) -> bool,
    ) {
        let mut queues = self.lock();
        let item = Queued {
            key,
            id,
            weight,
            hash,
        };
        queues.sketch.add(hash, 1);
        let main_has_room = queues.main_weight + weight <= self.limit - queues.small_limit;
        // Until the first eviction, new keys fill the main queue, and the small one only once
        // it is full: the store keeps what it was given first, as any policy would, instead
        // of cycling it all through the small queue (a loop a little larger than the store
        // would then miss twice round before its keys came back).
        let filling = queues.filling && main_has_room;
        let evicted_from = if filling {
            None
        } else {
            queues.ghost.take(hash)
        };
        if let Some((queue, ago)) = evicted_from {
            queues.came_back(queue, ago, weight, self.limit);
        }
        // A key evicted too soon, from either queue, goes to the main queue, unless it is
        // used less than the key it would push out there: a loop a little larger than the
        // store then keeps part of itself instead of none, and the part of a loop the main
        // queue let go when the store first filled comes back to it. A tie goes to a key the
        // small queue evicted fewer of its evictions ago than the main queue holds entries:
        // a FIFO queue of the main queue's size would still have held it.
        let main_has_room = queues.main_weight + weight <= self.limit - queues.small_limit;
        let main_entries = queues.entries - queues.small_entries(self.limit);
        let soon = matches!(evicted_from, Some((Queue::Small, ago)) if ago <= main_entries);
        let worthy = main_has_room
            || queues.main.front().is_none_or(|front| {
                let (used, front_used) = (
                    queues.sketch.estimate(hash),
                    queues.sketch.estimate(front.hash),
                );
                used > front_used || (soon && used == front_used)
            });
        if filling || (worthy && evicted_from.is_some()) {
            queues.main_weight += weight;
            queues.main.push_back(item);
        } else {
            queues.small_weight += weight;
            queues.small.push_back(item);
        }
        let queued = queues.small.len() + queues.main.len();
        if queued > (2 * queues.compacted_at).max(1024) {
            queues.compact(&live);
        }
    }

    /// Evict while `over` says the store is beyond its bound, showing each item at a
    /// queue's front to `visit`, which looks at its entry and says what became of it. Once
    /// the items queued when it began have been shown a few times over without the store
    /// getting within its bound (other threads read them again between rounds), `visit` is
    /// told to evict whatever it is shown but the entry being written (`force`), so that
    /// each item shown from then on leaves the queues. It stops once the queues hold nothing
    /// else to show: they are empty, or hold only the entry being written. The written
    /// entry's own turns are not counted: when it alone fills its queue's share, every other
    /// item shown is that entry again, and counting those turns made the store force, and
    /// then give up, halfway through its round, over its bound.
    pub(super) fn evict(
        &self,
        over: impl Fn() -> bool,
        mut visit: impl FnMut(&Queued, Queue, bool) -> Found,
    ) {
        let mut queues = self.lock();
        let queues = &mut *queues;
        let rounds_before_force = 4 * (queues.small.len() + queues.main.len()) + 16;
        let mut shown = 0;
        if over() {
            queues.filling = false;
        }
        while over() {
            let Some((queue, item)) = queues.front() else {
                return;
            };
            let force = shown >= rounds_before_force;
            match (visit(&item, queue, force), queue) {
                (Found::Gone, _) => {}
                (Found::Evicted, queue) => queues.ghost.insert(item.hash, queue),
                (Found::Read(reads), _) => {
                    queues.sketch.add(item.hash, reads);
                    queues.put_back(Queue::Main, item);
                }
                // The new entry waits its turn; the other queue gives way instead.
                (Found::Spared, queue) => {
                    queues.put_back(queue, item);
                    if queues.small.len() + queues.main.len() == 1 {
                        return;
                    }
                    queues.turn_to = Some(match queue {
                        Queue::Small => Queue::Main,
                        Queue::Main => Queue::Small,
                    });
                    continue;
                }
            }
            shown += 1;
        }
    }
}

#[cfg(test)]
impl Policy {
    /// How many items the queues hold, gone ones included.
    pub(super) fn queued(&self) -> usize {
        let queues = self.lock();
        queues.small.len() + queues.main.len()
    }
}

impl Queues {
    /// A key `queue` evicted `ago` of its evictions before came back: if that queue grown by
    /// as many entries as the smaller queue holds would have kept it (it evicted fewer since;
    /// the small queue is judged as holding at least 1% of the entries), the queue grows by
    /// the key's weight, the other shrinks. Both queues are judged over the same number of
    /// evictions, so that as many keys coming back from each means as much to gain per entry
    /// from either: judged each over its own size, the larger queue won with fewer keys
    /// coming back per entry (on the ARC OLTP trace at 1,000 entries, 2.6 points of hits
    /// lost). The small queue keeps 1% of the bound while it serves (a key came back so soon
    /// from it within its last evictions of a tenth of the entries); else it may shrink to
    /// 0.1%.
    fn came_back(&mut self, queue: Queue, ago: u64, weight: u64, limit: u64) {
        let small_entries = self.small_entries(limit);
        let window = small_entries
            .max(self.entries / 100)
            .min(self.entries.saturating_sub(small_entries));
        if ago > window {
            return;
        }
        let ceiling = (limit / 10 * 8).max(1);
        self.small_limit = match queue {
            Queue::Small => {
                self.small_served_at = self.ghost.evictions[0];
                self.small_limit.saturating_add(weight).min(ceiling)
            }
            Queue::Main => {
                let since = self.ghost.evictions[0] - self.small_served_at;
                let serving = since <= self.entries / 10;
                let floor = if serving { limit / 100 } else { limit / 1000 }.max(1);
                // Already below the floor (it went there while the floor was 0.1%): it does
                // not jump back up, it grows again key by key.
                self.small_limit
                    .saturating_sub(weight)
                    .max(floor.min(self.small_limit))
            }
        };
    }

    /// About how many entries the small queue holds at its share (never more than the
    /// store holds).
    fn small_entries(&self, limit: u64) -> u64 {
        (u128::from(self.entries) * u128::from(self.small_limit.min(limit)) / u128::from(limit))
            as u64
    }

    /// The item to look at next, taken off its queue: the small queue's front while that
    /// queue holds over its share (or the main queue is empty), else the main queue's;
    /// after a spared front, the other queue's, if it has any.
    fn front(&mut self) -> Option<(Queue, Queued)> {
        let from_small = match self.turn_to.take() {
            Some(Queue::Small) if !self.small.is_empty() => true,
            Some(Queue::Main) if !self.main.is_empty() => false,
            _ => self.small_weight > self.small_limit || self.main.is_empty(),
        };
        if from_small {
            let item = self.small.pop_front()?;
            self.small_weight -= item.weight;
            Some((Queue::Small, item))
        } else {
            let item = self.main.pop_front()?;
            self.main_weight -= item.weight;
            Some((Queue::Main, item))
        }
    }

    fn put_back(&mut self, queue: Queue, item: Queued) {
        match queue {
            Queue::Small => {
                self.small_weight += item.weight;
                self.small.push_back(item);
            }
            Queue::Main => {
                self.main_weight += item.weight;
                self.main.push_back(item);
            }
        }
    }

    /// Drop the items whose entries are gone, keeping the others in order.
    fn compact(&mut self, live: &impl Fn(&Queued) -> bool) {
        for (queue, weight) in [
            (&mut self.small, &mut self.small_weight),
            (&mut self.main, &mut self.main_weight),
        ] {
            queue.retain(|item| {
                let keep = live(item);
                if !keep {
                    *weight -= item.weight;
                }
                keep
            });
        }
        self.compacted_at = self.small.len() + self.main.len();
    }
}

/// Keys evicted lately, by hash, with the queue that evicted each and when (by that queue's
/// count of evictions): a table of about four slots per entry the store holds, where a newer
/// key takes the slot of an older one.
struct Ghost {
    slots: Box<[u64]>,
    /// Evictions so far from the small queue, and from the main one.
    evictions: [u64; 2],
}

/// A slot: the hash's high half (its low bit set: 0 is an empty slot) above a bit saying
/// which queue evicted it and the low 31 bits of that queue's eviction count then.
const WHEN: u64 = (1 << 31) - 1;
const FROM_MAIN: u64 = 1 << 31;

impl Ghost {
    fn new(entries: u64) -> Self {
        let slots = entries
            .saturating_mul(4)
            .clamp(64, 1 << 22)
            .next_power_of_two() as usize;
        Ghost {
            slots: vec![0; slots].into_boxed_slice(),
            evictions: [0; 2],
        }
    }

    fn slot(&self, hash: u64) -> usize {
        // The low bits pick the slot; the high half (never 0 once marked) is the fingerprint.
        hash as usize & (self.slots.len() - 1)
    }

    fn fingerprint(hash: u64) -> u64 {
        (hash >> 32 | 1) << 32
    }

    fn insert(&mut self, hash: u64, from: Queue) {
        let slot = self.slot(hash);
        let (queue, tag) = match from {
            Queue::Small => (0, 0),
            Queue::Main => (1, FROM_MAIN),
        };
        self.slots[slot] = Self::fingerprint(hash) | tag | self.evictions[queue] & WHEN;
        self.evictions[queue] += 1;
    }

    /// Which queue evicted `hash`, and how many of its evictions ago, if it is remembered; it
    /// is forgotten if so.
    fn take(&mut self, hash: u64) -> Option<(Queue, u64)> {
        let slot = self.slot(hash);
        let marked = self.slots[slot];
        if marked & !(FROM_MAIN | WHEN) != Self::fingerprint(hash) {
            return None;
        }
        self.slots[slot] = 0;
        let (from, queue) = if marked & FROM_MAIN == 0 {
            (Queue::Small, 0)
        } else {
            (Queue::Main, 1)
        };
        Some((from, self.evictions[queue].wrapping_sub(marked) & WHEN))
    }
}

/// How often keys were used lately, by hash: a count-min sketch of 4-bit counts (Cormode and
/// Muthukrishnan), halved once it has counted five uses per entry the store holds, so that
/// old popularity fades (as TinyLFU's, Einziger et al.). Caffeine waits for ten; at ten, keys
/// coming back after the popular set changed were refused a place by yesterday's counts (the
/// ARC P12 trace played backwards: 2.5 points behind quick_cache at 131,072 entries, 0.75 at
/// five). Counted under the queues' lock when a key is written (a miss) and when a queue's
/// front shows how often it was read.
struct Sketch {
    counts: Box<[u8]>,
    added: u64,
    /// Uses counted between two halvings.
    period: u64,
}

impl Sketch {
    fn new(entries: u64) -> Self {
        let counts = entries
            .saturating_mul(2)
            .clamp(64, 1 << 24)
            .next_power_of_two() as usize;
        Sketch {
            counts: vec![0; counts].into_boxed_slice(),
            added: 0,
            period: entries.max(32).saturating_mul(5),
        }
    }

    fn slots(&self, hash: u64) -> [usize; 4] {
        let mask = self.counts.len() - 1;
        std::array::from_fn(|i| {
            let mixed = (hash ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .wrapping_mul(0xbf58_476d_1ce4_e5b9);
            (mixed >> 32) as usize & mask
        })
    }

    fn add(&mut self, hash: u64, uses: u8) {
        for slot in self.slots(hash) {
            self.counts[slot] = self.counts[slot].saturating_add(uses).min(15);
        }
        self.added += u64::from(uses);
        if self.added >= self.period {
            for count in &mut self.counts {
                *count /= 2;
            }
            self.added /= 2;
        }
    }

    fn estimate(&self, hash: u64) -> u8 {
        self.slots(hash)
            .into_iter()
            .map(|slot| self.counts[slot])
            .min()
            .unwrap_or(0)
    }
}
