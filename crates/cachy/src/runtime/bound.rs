//! Connections that live on a tokio runtime, one set per runtime that uses a store.
//!
//! A socket is registered with the I/O driver of the runtime that opened it, and a client's
//! background task (redis-rs's connection driver and its reconnections, sqlx's pool
//! maintenance) runs on the runtime that spawned it. Clients open and reopen connections
//! lazily, on the runtime of the call that needs one. A store is shared by every runtime of
//! the process, so when runtimes shared its connections:
//! - once the runtime that opened them shut down (a `#[tokio::test]` ended, a service rebuilt
//!   its runtime), the other runtimes' calls failed: Redis's with a broken pipe that marked a
//!   healthy server down, a PostgreSQL pool's with "a Tokio 1.x context was found, but it is
//!   being shutdown";
//! - a runtime that was alive but idle (a current-thread runtime outside its `block_on`)
//!   left the others' calls waiting for I/O that nothing drove;
//! - connections the blocking API opened lived on its one-thread runtime, and every call of
//!   the async API that used them afterwards went through that thread (with 64 callers on
//!   PostgreSQL, a quarter of the throughput), and the other way round.
//!
//! So [`RuntimeBound`] keeps a value per runtime, made on it by its first call that needs
//! one, and drops it (closing its connections) when that runtime shuts down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};

use tokio::runtime::{Handle, Id};

/// A value made on each tokio runtime that needs one (a store's connections), made by the
/// runtime's first call that needs it and dropped when the runtime shuts down.
pub(crate) struct RuntimeBound<T> {
    kept: Arc<RwLock<Vec<Made<T>>>>,
    /// A lock per runtime making its value, so that its callers arriving meanwhile wait for
    /// it instead of each making their own. Per runtime: a runtime that stops running its
    /// tasks halfway through making one must not hold up the others.
    #[cfg(any(
        feature = "redis",
        feature = "database-postgres",
        feature = "database-mysql"
    ))]
    making: Making,
}

struct Made<T> {
    /// The runtime it was made on (`None`: outside any runtime).
    runtime: Option<Id>,
    /// Which value this is, for the runtime's watch to remove it and no other.
    serial: u64,
    value: T,
    /// False once that runtime has shut down.
    alive: Arc<AtomicBool>,
    /// Dropped with the value: ends the task that watches the runtime.
    _watch: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<T: Clone + Send + Sync + 'static> RuntimeBound<T> {
    pub(crate) fn new() -> Self {
        RuntimeBound {
            kept: Arc::default(),
            #[cfg(any(
                feature = "redis",
                feature = "database-postgres",
                feature = "database-mysql"
            ))]
            making: Making::default(),
        }
    }

    /// The value of this call's runtime, if one is made.
    #[cfg(any(
        feature = "redis",
        feature = "database-postgres",
        feature = "database-mysql"
    ))]
    pub(crate) fn get(&self) -> Option<T> {
        self.get_on(current())
    }

    fn get_on(&self, runtime: Option<Id>) -> Option<T> {
        value_of(
            &self.kept.read().unwrap_or_else(PoisonError::into_inner),
            runtime,
        )
    }

    /// The value of this call's runtime, made by `make` if there is none. Calls that waited
    /// for an attempt that failed get its error rather than trying again one after the
    /// other: with the server out of reach, each would wait out its own timeout in turn.
    #[cfg(any(
        feature = "redis",
        feature = "database-postgres",
        feature = "database-mysql"
    ))]
    pub(crate) async fn get_or_make<F>(&self, make: impl FnOnce() -> F) -> crate::Result<T>
    where
        F: std::future::Future<Output = crate::Result<T>>,
    {
        let runtime = current();
        if let Some(value) = self.get_on(runtime) {
            return Ok(value);
        }
        let turn = Turn::of(&self.making, runtime);
        let tried_before = turn.attempts.attempts.load(Ordering::Acquire);
        let mut failed = turn.attempts.failed.lock().await;
        if let Some(value) = self.get_on(runtime) {
            return Ok(value);
        }
        if turn.attempts.attempts.load(Ordering::Acquire) != tried_before
            && let Some(e) = &*failed
        {
            return Err(e.copy());
        }
        let made = make().await;
        turn.attempts.attempts.fetch_add(1, Ordering::AcqRel);
        match made {
            Ok(value) => {
                *failed = None;
                Ok(self.keep(runtime, || value))
            }
            Err(e) => {
                *failed = Some(e.copy());
                Err(e)
            }
        }
    }

    /// The value of this call's runtime, made by `make` at once if there is none.
    #[cfg(feature = "memcached")]
    pub(crate) fn get_or_make_now(&self, make: impl FnOnce() -> T) -> T {
        let runtime = current();
        self.get_on(runtime)
            .unwrap_or_else(|| self.keep(runtime, make))
    }

    /// The value of `runtime`: the one kept already, else `make`'s, kept until the runtime
    /// shuts down.
    fn keep(&self, runtime: Option<Id>, make: impl FnOnce() -> T) -> T {
        let value = make();
        // Watched before the lock is taken: a runtime shutting down drops the watch at once,
        // and the watch takes the lock to remove the value.
        let made = Made::here(runtime, value.clone(), Arc::downgrade(&self.kept));
        let alive = Arc::clone(&made.alive);
        let serial = made.serial;
        let mut kept = self.kept.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = value_of(&kept, runtime) {
            return value;
        }
        kept.push(made);
        if !alive.load(Ordering::Acquire) {
            // Its runtime shut down before it was kept: the watch found nothing to remove.
            let gone = take(&mut kept, serial);
            drop(kept);
            drop(gone);
        }
        value
    }
}

/// The locks of the runtimes making their values.
#[cfg(any(
    feature = "redis",
    feature = "database-postgres",
    feature = "database-mysql"
))]
type Making = std::sync::Mutex<Vec<(Option<Id>, Arc<Attempts>)>>;

/// A runtime's attempts at making its value: how many ended, and the last one's error if it
/// failed, behind the lock its callers take turns with.
#[cfg(any(
    feature = "redis",
    feature = "database-postgres",
    feature = "database-mysql"
))]
#[derive(Default)]
struct Attempts {
    attempts: AtomicU64,
    failed: tokio::sync::Mutex<Option<crate::Error>>,
}

/// A runtime's lock for making its value, taken out of the store's list by its last holder
/// (even one cancelled while it waits).
#[cfg(any(
    feature = "redis",
    feature = "database-postgres",
    feature = "database-mysql"
))]
struct Turn<'a> {
    making: &'a Making,
    attempts: Arc<Attempts>,
}

#[cfg(any(
    feature = "redis",
    feature = "database-postgres",
    feature = "database-mysql"
))]
impl<'a> Turn<'a> {
    fn of(making: &'a Making, runtime: Option<Id>) -> Self {
        let mut list = making.lock().unwrap_or_else(PoisonError::into_inner);
        let attempts = match list.iter().find(|(id, _)| *id == runtime) {
            Some((_, attempts)) => Arc::clone(attempts),
            None => {
                let attempts = Arc::default();
                list.push((runtime, Arc::clone(&attempts)));
                attempts
            }
        };
        Turn { making, attempts }
    }
}

#[cfg(any(
    feature = "redis",
    feature = "database-postgres",
    feature = "database-mysql"
))]
impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut list = self.making.lock().unwrap_or_else(PoisonError::into_inner);
        // Held by the list and by this turn alone: nobody else waits on it (and the next
        // call tries afresh).
        if Arc::strong_count(&self.attempts) == 2 {
            list.retain(|(_, attempts)| !Arc::ptr_eq(attempts, &self.attempts));
        }
    }
}

/// The value kept for `runtime`, if its runtime still runs.
fn value_of<T: Clone + Send + Sync + 'static>(kept: &[Made<T>], runtime: Option<Id>) -> Option<T> {
    kept.iter()
        .find(|made| made.runtime == runtime && made.is_alive())
        .map(|made| made.value.clone())
}

/// The runtime running this call.
fn current() -> Option<Id> {
    Handle::try_current().ok().map(|runtime| runtime.id())
}

/// The value numbered `serial`, taken out of `kept`.
fn take<T>(kept: &mut Vec<Made<T>>, serial: u64) -> Vec<Made<T>> {
    let (gone, left) = std::mem::take(kept)
        .into_iter()
        .partition(|made| made.serial == serial);
    *kept = left;
    gone
}

impl<T: Send + Sync + 'static> Made<T> {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// `value`, made on `runtime` (this call's), which a task of it watches: when the
    /// runtime shuts down, the task is dropped and removes the value from `kept`.
    fn here(runtime: Option<Id>, value: T, kept: Weak<RwLock<Vec<Made<T>>>>) -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let alive = Arc::new(AtomicBool::new(true));
        let watch = Handle::try_current().ok().map(|handle| {
            let (watch, ended) = tokio::sync::oneshot::channel::<()>();
            let gone = RuntimeGone {
                alive: Arc::clone(&alive),
                kept,
                serial,
            };
            // Ends when the value is dropped; dropped unfinished when the runtime shuts down.
            handle.spawn(async move {
                let _gone = gone;
                let _ = ended.await;
            });
            watch
        });
        Made {
            runtime,
            serial,
            value,
            alive,
            _watch: watch,
        }
    }
}

/// Marks a value unusable when dropped, and removes it from its store's values.
struct RuntimeGone<T> {
    alive: Arc<AtomicBool>,
    kept: Weak<RwLock<Vec<Made<T>>>>,
    serial: u64,
}

impl<T> Drop for RuntimeGone<T> {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
        let Some(kept) = self.kept.upgrade() else {
            return;
        };
        // Never under the lock: a watch ends on its runtime's thread, or in `Made::here`
        // before the lock is taken.
        let gone = take(
            &mut kept.write().unwrap_or_else(PoisonError::into_inner),
            self.serial,
        );
        // Dropped outside the lock: closing a pool's connections takes time.
        drop(gone);
    }
}
