//! Who hears of the entries a memory store drops, and the drops a locked shard collects
//! for them: listeners are called only once every lock is released, so a listener may use
//! the store.

use std::cell::RefCell;
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

    /// Tell every listener of the `dropped` entries, now or, while this thread defers
    /// (see [`defer`]), once it stops.
    pub(super) fn tell(&self, dropped: Dropped) {
        if dropped.first.is_none() {
            return;
        }
        let list = Arc::clone(&self.list.read().unwrap_or_else(PoisonError::into_inner));
        let pending = DEFERRED.with(|deferred| match deferred.borrow_mut().as_mut() {
            Some(pending) => {
                pending.push((list, dropped));
                None
            }
            None => Some((list, dropped)),
        });
        if let Some((list, dropped)) = pending {
            tell_now(&list, dropped);
        }
    }
}

fn tell_now(list: &[EvictionListener], dropped: Dropped) {
    for (key, cause) in dropped.first.into_iter().chain(dropped.rest) {
        for listener in list.iter().filter_map(|listener| listener.upgrade()) {
            listener(&key, cause);
        }
    }
}

/// Drops held back, with the listeners to tell of them.
type Pending = Vec<(Arc<[EvictionListener]>, Dropped)>;

thread_local! {
    /// The drops this thread holds back, while it defers.
    static DEFERRED: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// Hold back the listeners' calls made on this thread until the returned guard is dropped:
/// for a caller that holds a lock of its own around the store's writes (the hybrid store's
/// stripes), so that a listener using the store again cannot wait for that lock. Declare the
/// guard before the lock, so that it is dropped after it.
#[cfg(feature = "hybrid")]
pub(crate) fn defer() -> Deferral {
    let outermost = DEFERRED.with(|deferred| {
        let mut deferred = deferred.borrow_mut();
        deferred.is_none() && {
            *deferred = Some(Vec::new());
            true
        }
    });
    Deferral { outermost }
}

/// See [`defer`].
#[cfg(feature = "hybrid")]
pub(crate) struct Deferral {
    outermost: bool,
}

#[cfg(feature = "hybrid")]
impl Drop for Deferral {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        let pending = DEFERRED.with(|deferred| deferred.borrow_mut().take());
        for (list, dropped) in pending.into_iter().flatten() {
            tell_now(&list, dropped);
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
