//! Who hears of the entries a memory store drops, and the drops a locked shard collects
//! for them: listeners are called only once every lock is released, so a listener may use
//! the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::observe::EvictionCause;
use crate::store::EvictionListener;

/// The listeners of one store.
#[derive(Default)]
pub(super) struct Listeners {
    /// Whether there is any: without, nothing is collected.
    any: AtomicBool,
    /// Replaced whole on each registration, so that telling takes the lock only to clone it.
    list: RwLock<Arc<[EvictionListener]>>,
}

impl Listeners {
    /// Add `listener`, forgetting those no longer alive.
    pub(super) fn add(&self, listener: EvictionListener) {
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        let alive = list.iter().filter(|listener| listener.strong_count() > 0);
        *list = alive.cloned().chain([listener]).collect();
        self.any.store(true, Ordering::Release);
    }

    /// An empty collection of drops, which collects only if anyone listens.
    pub(super) fn collect(&self) -> Dropped {
        Dropped {
            listening: self.any.load(Ordering::Acquire),
            first: None,
            rest: Vec::new(),
        }
    }

    /// Tell every listener of the `dropped` entries.
    pub(super) fn tell(&self, dropped: Dropped) {
        let Some(first) = dropped.first else {
            return;
        };
        let list = Arc::clone(&self.list.read().unwrap_or_else(PoisonError::into_inner));
        for (key, cause) in std::iter::once(first).chain(dropped.rest) {
            for listener in list.iter().filter_map(|listener| listener.upgrade()) {
                listener(&key, cause);
            }
        }
    }
}

/// Entries dropped while a shard was locked. The first is kept inline: a write drops at
/// most one entry of its own.
pub(super) struct Dropped {
    listening: bool,
    first: Option<(Arc<str>, EvictionCause)>,
    rest: Vec<(Arc<str>, EvictionCause)>,
}

impl Dropped {
    /// Note that `key` was dropped for `cause`.
    pub(super) fn note(&mut self, key: &Arc<str>, cause: EvictionCause) {
        if !self.listening {
            return;
        }
        let drop = (Arc::clone(key), cause);
        if self.first.is_none() {
            self.first = Some(drop);
        } else {
            self.rest.push(drop);
        }
    }
}
