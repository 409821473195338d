//! Which entries a bounded memory store keeps: S3-FIFO (Yang et al., "FIFO queues are all
//! you need for cache eviction", SOSP 2023), with TinyLFU's frequency sketch and Caffeine's
//! hill climbing.
//!
//! - A new key enters a small FIFO queue. When it reaches the queue's front, it moves to
//!   the main queue if it was read meanwhile; else it is evicted, and remembered in a ghost
//!   table. One-hit wonders and scans pass through the small queue without pushing the hot
//!   set out. Until the first eviction, new keys fill the main queue first.
//! - A key the ghost table remembers was evicted too soon: it enters the main queue at once
//!   if the main queue has room, or if a frequency sketch says it is used more often than
//!   the key it would push out there (as TinyLFU admits). A loop a little larger than the
//!   store then keeps most of itself instead of nothing.
//! - At the main queue's front, a key read since it last passed there goes round again (its
//!   read count, at most 3, goes down by one); else it is evicted.
//! - The small queue's share of the bound starts at a tenth and moves, after each sample of
//!   four reads per entry from the first eviction on, the way that raised the hit ratio
//!   (hill climbing, from 1% to 80%).
//!
//! Reads never touch the queues: they raise a counter in the entry (see `Entry::read`) and
//! the shard's read counts, so a hit takes no lock but its shard's read lock. Writes of new
//! keys and evictions take the queues' one lock, after their shard's lock is released; the
//! sketch counts a key's uses there, on a miss and when a queue's front shows its reads.
//! The queues hold keys, not entries: an item whose entry was removed or replaced by a new
//! insertion meanwhile is skipped when it reaches the front, and the queues are compacted
//! when such items pile up.

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
    /// The small queue's share of the bound, which the climber moves.
    small_limit: u64,
    climber: Climber,
    /// Nothing was evicted yet.
    filling: bool,
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
                climber: Climber::new(limit, entries),
                filling: true,
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
        // A key evicted too soon goes to the main queue, unless it is used less than the key
        // it would push out there: a loop a little larger than the store then keeps part of
        // itself instead of none.
        let main_has_room = queues.main_weight + weight <= self.limit - queues.small_limit;
        let worthy = main_has_room
            || queues.main.front().is_none_or(|front| {
                queues.sketch.estimate(hash) > queues.sketch.estimate(front.hash)
            });
        // Until the first eviction, new keys fill the main queue, and the small one only once
        // it is full: the store keeps what it was given first, as any policy would, instead
        // of cycling it all through the small queue (a loop a little larger than the store
        // would then miss twice round before its keys came back).
        if (queues.filling && main_has_room) || (worthy && queues.ghost.take(hash)) {
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
    /// every queued item has been shown a few times without the store getting within its
    /// bound (other threads read them again between rounds), `visit` is told to evict
    /// whatever it is shown but the entry being written (`force`); after one more round of
    /// that, it gives up (only the written entry is left).
    pub(super) fn evict(
        &self,
        over: impl Fn() -> bool,
        traffic: impl Fn() -> Traffic,
        mut visit: impl FnMut(&Queued, Queue, bool) -> Found,
    ) {
        let mut queues = self.lock();
        let queues = &mut *queues;
        if let Some(limit) = queues.climber.climb(queues.small_limit, traffic) {
            queues.small_limit = limit;
        }
        let mut shown = 0;
        if over() {
            queues.filling = false;
        }
        while over() {
            let Some((queue, item)) = queues.front() else {
                return;
            };
            shown += 1;
            let queued = queues.small.len() + queues.main.len();
            let force = shown > 4 * queued + 16;
            if shown > 5 * queued + 32 {
                queues.put_back(queue, item);
                return;
            }
            match (visit(&item, queue, force), queue) {
                (Found::Gone | Found::Evicted, Queue::Main) => {}
                (Found::Gone, Queue::Small) => {}
                (Found::Evicted, Queue::Small) => queues.ghost.insert(item.hash),
                (Found::Read(reads), _) => {
                    queues.sketch.add(item.hash, reads);
                    queues.put_back(Queue::Main, item);
                }
                // The new entry waits its turn; the other queue gives way instead.
                (Found::Spared, Queue::Small) => {
                    queues.put_back(Queue::Small, item);
                    queues.turn_to = Some(Queue::Main);
                }
                (Found::Spared, Queue::Main) => {
                    queues.put_back(Queue::Main, item);
                    queues.turn_to = Some(Queue::Small);
                }
            }
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

/// Keys evicted from the small queue lately, by hash: a table of about as many slots as the
/// store holds entries, where a newer key takes the slot of an older one. A key found here
/// was evicted too soon, and goes to the main queue when it comes back.
struct Ghost {
    slots: Box<[u64]>,
}

impl Ghost {
    fn new(entries: u64) -> Self {
        let slots = entries
            .saturating_mul(4)
            .clamp(64, 1 << 22)
            .next_power_of_two() as usize;
        Ghost {
            slots: vec![0; slots].into_boxed_slice(),
        }
    }

    fn slot(&self, hash: u64) -> usize {
        // The low bits pick the slot; the whole hash (never 0 once marked) is the fingerprint.
        hash as usize & (self.slots.len() - 1)
    }

    fn insert(&mut self, hash: u64) {
        let slot = self.slot(hash);
        self.slots[slot] = hash | 1;
    }

    /// Whether `hash` is remembered; it is forgotten if so.
    fn take(&mut self, hash: u64) -> bool {
        let slot = self.slot(hash);
        let found = self.slots[slot] == hash | 1;
        if found {
            self.slots[slot] = 0;
        }
        found
    }
}

/// How often keys were used lately, by hash: a count-min sketch of 4-bit counts (Cormode and
/// Muthukrishnan), halved once it has counted ten uses per entry the store holds, so that
/// old popularity fades (as TinyLFU's, Einziger et al., with Caffeine's period). Counted under the queues' lock
/// when a key is written (a miss) and when a queue's front shows how often it was read.
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
            period: entries.max(32).saturating_mul(10),
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

/// Reads of a store so far, and how many found their key.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Traffic {
    pub(super) reads: u64,
    pub(super) hits: u64,
}

/// Moves the small queue's share of the bound towards the best hit ratio, by hill climbing
/// as Caffeine sizes its window: after each sample of reads, a step the same way if the hit
/// ratio rose, the other way if it fell, the steps shrinking as it settles. A loop a little
/// larger than the store wants a small queue of almost nothing; a workload of one-hit
/// wonders, a larger one.
struct Climber {
    limit: u64,
    /// Reads per sample.
    sample: u64,
    /// Evictions until the reads are counted again (counting reads every eviction would
    /// cost a pass over the shards each time).
    countdown: u32,
    /// The traffic at the start of the current sample, and the previous sample's hit ratio.
    start: Traffic,
    previous: Option<f64>,
    /// The next step, in units of the bound: positive grows the small queue.
    step: f64,
    /// Whether the store has evicted before: its first sample has started.
    warm: bool,
}

impl Climber {
    fn new(limit: u64, entries: u64) -> Self {
        Climber {
            limit,
            // Four reads per entry: shorter samples let noise steer (the P12 trace at
            // 131,072 entries ranged over 3 points from run to run at two per entry).
            sample: entries.saturating_mul(4).max(1024),
            countdown: 0,
            start: Traffic::default(),
            previous: None,
            step: -0.0625,
            warm: false,
        }
    }

    /// The small queue's new share of the bound, if the end of a sample moves it.
    fn climb(&mut self, small_limit: u64, traffic: impl Fn() -> Traffic) -> Option<u64> {
        if self.countdown > 0 {
            self.countdown -= 1;
            return None;
        }
        self.countdown = 64;
        let now = traffic();
        // The first sample starts with the first eviction: the reads before, while the store
        // filled, would credit the first step with the warming of the store.
        if !std::mem::replace(&mut self.warm, true) {
            self.start = now;
            return None;
        }
        let reads = now.reads.saturating_sub(self.start.reads);
        if reads < self.sample {
            return None;
        }
        let ratio = now.hits.saturating_sub(self.start.hits) as f64 / reads as f64;
        self.start = now;
        let Some(previous) = self.previous.replace(ratio) else {
            return self.moved(small_limit);
        };
        // A hit ratio that did not move says nothing of the way to go (a scan, a store
        // nobody reads): the share stays.
        if (ratio - previous).abs() < 0.002 {
            return None;
        }
        if ratio < previous {
            self.step = -self.step;
        }
        self.step *= 0.98;
        self.moved(small_limit)
    }

    /// `small_limit` moved by the step, within 1% and 80% of the bound.
    fn moved(&self, small_limit: u64) -> Option<u64> {
        let share = small_limit as f64 / self.limit as f64 + self.step;
        let share = share.clamp(0.01, 0.8);
        Some(((share * self.limit as f64) as u64).max(1))
    }
}
