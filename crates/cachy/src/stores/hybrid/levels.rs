//! The two levels of a hybrid store and the stripes of locks that keep them coherent.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::store::{Lifetime, Store};
use crate::stores::MemoryStore;
pub(super) use crate::stores::memory::listeners::defer;

/// The two levels, and the locks that keep L1 from taking a copy older than a change it
/// already saw.
pub(super) struct Levels {
    pub(super) l1: MemoryStore,
    pub(super) l2: Arc<dyn Store>,
    pub(super) l1_ttl: Duration,
    pub(super) stripes: Box<[Stripe]>,
    pub(super) hasher: std::collections::hash_map::RandomState,
}

/// A key's generation (bumped by every change to one of its keys) and the lock under which
/// a change and a copy into L1 happen.
#[derive(Default)]
pub(super) struct Stripe {
    pub(super) generation: AtomicU64,
    lock: Mutex<()>,
}

impl Stripe {
    pub(super) fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Levels {
    pub(super) fn stripe(&self, key: &str) -> &Stripe {
        let hash = self.hasher.hash_one(key) as usize;
        &self.stripes[hash % self.stripes.len()]
    }

    /// `key` changed (here or elsewhere): drop it from L1, and make copies being read
    /// meanwhile stale.
    pub(super) fn changed(&self, key: &str) {
        let stripe = self.stripe(key);
        let _told_after = defer();
        let _guard = stripe.lock();
        stripe.generation.fetch_add(1, Ordering::AcqRel);
        self.l1.drop_key(key);
    }

    /// Anything may have changed: drop all of L1.
    pub(super) fn changed_all(&self) {
        let _guards: Vec<_> = self.stripes.iter().map(Stripe::lock).collect();
        for stripe in &self.stripes {
            stripe.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.l1.drop_all();
    }

    /// Keep a copy of `value`, read from L2 when the key's stripe was at `generation`,
    /// unless the key may have changed since.
    pub(super) fn keep(&self, key: &str, value: &[u8], lifetime: Lifetime, generation: u64) {
        let lifetime = match lifetime {
            Lifetime::Remaining(left) => left.min(self.l1_ttl),
            Lifetime::Forever | Lifetime::Unknown => self.l1_ttl,
        };
        if lifetime.is_zero() {
            return;
        }
        let stripe = self.stripe(key);
        let _told_after = defer();
        let _guard = stripe.lock();
        if stripe.generation.load(Ordering::Acquire) == generation {
            self.l1.keep(key, value, Some(lifetime));
        }
    }
}

/// The error of a hybrid store whose background tasks cannot start.
pub(super) fn cannot_start(e: Error) -> Error {
    Error::new(
        ErrorKind::Runtime,
        format!("the hybrid store cannot start listening for changes: {e}"),
    )
}
