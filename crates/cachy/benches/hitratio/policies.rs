//! What the memory store is compared with, and the store itself, each behind one
//! `access`: look the key up, and on a miss insert it.

use std::collections::HashMap;

use cachy::Store;
use cachy::stores::{MemoryConfig, MemoryStore};
use futures_util::FutureExt;

/// A cache under test: `access` says whether the key was there, and inserts it if not.
pub trait Policy {
    fn access(&mut self, key: u64) -> bool;
}

/// Makes a policy of a capacity.
pub type Make = fn(u64) -> Box<dyn Policy>;

/// The policies measured, in table order.
pub fn all() -> Vec<(&'static str, Make)> {
    vec![
        ("cachy memory", |c| Box::new(Cachy::new(c))),
        ("exact LRU", |c| Box::new(Lru::new(c))),
        ("moka (TinyLFU)", |c| Box::new(Moka::new(c))),
        ("quick_cache (S3-FIFO)", |c| Box::new(QuickCache::new(c))),
    ]
}

/// The memory store, bounded by entries, through its `Store` methods.
struct Cachy {
    store: MemoryStore,
    value: Vec<u8>,
}

impl Cachy {
    fn new(capacity: u64) -> Self {
        let mut config = MemoryConfig::default();
        config.max_entries = Some(capacity);
        Cachy {
            store: MemoryStore::with_config(config).unwrap(),
            value: vec![1],
        }
    }
}

impl Policy for Cachy {
    fn access(&mut self, key: u64) -> bool {
        let key = key.to_string();
        // The memory store answers without waiting: its futures are ready when first polled.
        let found = self.store.get(&key).now_or_never().expect("ready").unwrap();
        if found.is_none() {
            self.store
                .put(&key, &self.value, None)
                .now_or_never()
                .expect("ready")
                .unwrap();
        }
        found.is_some()
    }
}

/// moka's synchronous cache: TinyLFU admission over an LRU.
struct Moka(moka::sync::Cache<u64, ()>);

impl Moka {
    fn new(capacity: u64) -> Self {
        Moka(moka::sync::Cache::new(capacity))
    }
}

impl Policy for Moka {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, ());
        false
    }
}

/// quick_cache's synchronous cache: S3-FIFO (CLOCK-Pro-like) with a ghost queue.
struct QuickCache(quick_cache::sync::Cache<u64, ()>);

impl QuickCache {
    fn new(capacity: u64) -> Self {
        QuickCache(quick_cache::sync::Cache::new(capacity as usize))
    }
}

impl Policy for QuickCache {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, ());
        false
    }
}

/// An exact LRU: a hash map into a doubly linked list kept in a vector.
struct Lru {
    capacity: usize,
    index: HashMap<u64, usize>,
    nodes: Vec<Node>,
    /// Most recently used.
    head: usize,
    /// Least recently used: the next to go.
    tail: usize,
}

struct Node {
    key: u64,
    previous: usize,
    next: usize,
}

const NONE: usize = usize::MAX;

impl Lru {
    fn new(capacity: u64) -> Self {
        Lru {
            capacity: capacity as usize,
            index: HashMap::with_capacity(capacity as usize),
            nodes: Vec::with_capacity(capacity as usize),
            head: NONE,
            tail: NONE,
        }
    }

    fn unlink(&mut self, at: usize) {
        let (previous, next) = (self.nodes[at].previous, self.nodes[at].next);
        match previous {
            NONE => self.head = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NONE => self.tail = previous,
            n => self.nodes[n].previous = previous,
        }
    }

    fn push_front(&mut self, at: usize) {
        self.nodes[at].previous = NONE;
        self.nodes[at].next = self.head;
        if self.head != NONE {
            self.nodes[self.head].previous = at;
        }
        self.head = at;
        if self.tail == NONE {
            self.tail = at;
        }
    }
}

impl Policy for Lru {
    fn access(&mut self, key: u64) -> bool {
        if let Some(&at) = self.index.get(&key) {
            self.unlink(at);
            self.push_front(at);
            return true;
        }
        let at = if self.nodes.len() < self.capacity {
            self.nodes.push(Node {
                key,
                previous: NONE,
                next: NONE,
            });
            self.nodes.len() - 1
        } else {
            let victim = self.tail;
            self.unlink(victim);
            self.index.remove(&self.nodes[victim].key);
            self.nodes[victim].key = key;
            victim
        };
        self.index.insert(key, at);
        self.push_front(at);
        false
    }
}
