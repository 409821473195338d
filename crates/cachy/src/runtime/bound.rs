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
//! - connections the blocking API opened lived on its one-thread runtime, and every call of
//!   the async API that used them afterwards went through that thread (with 64 callers on
//!   PostgreSQL, a quarter of the throughput), and the other way round.
//!
//! So [`RuntimeBound`] keeps a value per runtime, made on it by its first call that needs
//! one, and forgets it once that runtime has shut down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use tokio::runtime::{Handle, Id};

/// A value made on each tokio runtime that needs one (a store's connections), made by the
/// runtime's first call that needs it and dropped after the runtime has shut down.
pub(crate) struct RuntimeBound<T> {
    /// The value of the first runtime that made one, read on every call without a lock or a
    /// count. It stays until the store is dropped, as a call may be cloning it when its
    /// runtime shuts down.
    first: OnceLock<Made<T>>,
    /// The values of the other runtimes (and of calls outside any runtime).
    others: RwLock<Vec<Made<T>>>,
    /// Held while a value is made, so that callers arriving meanwhile wait for it instead
    /// of each making their own.
    #[cfg(any(
        feature = "redis",
        feature = "database-postgres",
        feature = "database-mysql"
    ))]
    making: tokio::sync::Mutex<()>,
}

struct Made<T> {
    /// The runtime it was made on (`None`: outside any runtime).
    runtime: Option<Id>,
    value: T,
    /// False once that runtime has shut down.
    alive: Arc<AtomicBool>,
    /// Dropped with the value: ends the task that watches the runtime.
    _watch: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<T: Clone> RuntimeBound<T> {
    pub(crate) fn new() -> Self {
        RuntimeBound {
            first: OnceLock::new(),
            others: RwLock::new(Vec::new()),
            #[cfg(any(
                feature = "redis",
                feature = "database-postgres",
                feature = "database-mysql"
            ))]
            making: tokio::sync::Mutex::const_new(()),
        }
    }

    /// The value of this call's runtime, if one is made.
    pub(crate) fn get(&self) -> Option<T> {
        self.get_on(current())
    }

    fn get_on(&self, runtime: Option<Id>) -> Option<T> {
        let first = self.first.get()?;
        if first.serves(runtime) {
            return Some(first.value.clone());
        }
        let others = self.others.read().unwrap_or_else(PoisonError::into_inner);
        self.get_kept(runtime, &others)
    }

    /// The value of this call's runtime, made by `make` if there is none.
    #[cfg(any(
        feature = "redis",
        feature = "database-postgres",
        feature = "database-mysql"
    ))]
    pub(crate) async fn get_or_make<E, F>(&self, make: impl FnOnce() -> F) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        let runtime = current();
        if let Some(value) = self.get_on(runtime) {
            return Ok(value);
        }
        let _making = self.making.lock().await;
        if let Some(value) = self.get_on(runtime) {
            return Ok(value);
        }
        let value = make().await?;
        Ok(self.keep(runtime, || value))
    }

    /// The value of this call's runtime, made by `make` at once if there is none.
    #[cfg(feature = "memcached")]
    pub(crate) fn get_or_make_now(&self, make: impl FnOnce() -> T) -> T {
        let runtime = current();
        self.get_on(runtime)
            .unwrap_or_else(|| self.keep(runtime, make))
    }

    /// The value of `runtime`: the one kept already, else `make`'s, kept from now on.
    fn keep(&self, runtime: Option<Id>, make: impl FnOnce() -> T) -> T {
        let mut others = self.others.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = self.get_kept(runtime, &others) {
            return value;
        }
        let value = make();
        if let Err(made) = self.first.set(Made::here(runtime, value.clone())) {
            others.retain(Made::is_alive);
            others.push(made);
        }
        value
    }

    fn get_kept(&self, runtime: Option<Id>, others: &[Made<T>]) -> Option<T> {
        self.first
            .get()
            .into_iter()
            .chain(others)
            .find(|made| made.serves(runtime))
            .map(|made| made.value.clone())
    }
}

/// The runtime running this call.
fn current() -> Option<Id> {
    Handle::try_current().ok().map(|runtime| runtime.id())
}

impl<T> Made<T> {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    fn serves(&self, runtime: Option<Id>) -> bool {
        self.runtime == runtime && self.is_alive()
    }

    /// `value`, made on `runtime` (this call's), which a task of it watches.
    fn here(runtime: Option<Id>, value: T) -> Self {
        let alive = Arc::new(AtomicBool::new(true));
        let watch = Handle::try_current().ok().map(|handle| {
            let (watch, ended) = tokio::sync::oneshot::channel::<()>();
            let flag = RuntimeGone(Arc::clone(&alive));
            // Ends when the value is dropped; dropped unfinished when the runtime shuts down,
            // and either way `flag` marks the value unusable.
            handle.spawn(async move {
                let _flag = flag;
                let _ = ended.await;
            });
            watch
        });
        Made {
            runtime,
            value,
            alive,
            _watch: watch,
        }
    }
}

/// Marks a value unusable when dropped.
struct RuntimeGone(Arc<AtomicBool>);

impl Drop for RuntimeGone {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
