//! Connections that live on a tokio runtime, made again when that runtime is gone.
//!
//! A socket is registered with the I/O driver of the runtime that opened it, and a client's
//! background task (redis-rs's connection driver, sqlx's pool maintenance) runs on the
//! runtime that spawned it. Clients open connections lazily, on the runtime of the call
//! that needs one. A store is shared by every runtime of the process, so:
//! - once that runtime shuts down (a `#[tokio::test]` ends, a service rebuilds its runtime),
//!   its connections fail: Redis's with a broken pipe that marked a healthy server down, a
//!   PostgreSQL pool's with "a Tokio 1.x context was found, but it is being shutdown";
//! - connections the blocking API opened live on its one-thread runtime, and every call of
//!   the async API that used them afterwards went through that thread (with 64 callers on
//!   PostgreSQL, a quarter of the throughput), and the other way round.
//!
//! So [`RuntimeBound`] keeps one value for the application's runtimes and one for the
//! blocking API's ([`PerSide`]), each made on a runtime of its side, and makes a value again
//! once the runtime it was made on has shut down.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use super::PerSide;

/// A value made on a tokio runtime (a store's connections): one for the calls on the
/// application's runtimes and one for those on the blocking API's, each made by the first
/// call of its side that needs it, and again by the first call after the runtime it was made
/// on has shut down.
pub(crate) struct RuntimeBound<T> {
    sides: PerSide<Side<T>>,
}

struct Side<T> {
    /// The first value made, read on every call without a lock or a count while its runtime
    /// runs. It stays until the store is dropped, as a call may be cloning it when its
    /// runtime shuts down.
    first: OnceLock<Made<T>>,
    /// The last value made after the first one's runtime shut down.
    later: RwLock<Option<Made<T>>>,
    /// Held while a value is made, so that callers arriving meanwhile wait for it instead
    /// of each making their own.
    making: tokio::sync::Mutex<()>,
}

struct Made<T> {
    value: T,
    /// False once the runtime the value was made on has shut down.
    alive: Arc<AtomicBool>,
    /// Dropped with the value: ends the task that watches the runtime.
    _watch: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<T: Clone> RuntimeBound<T> {
    pub(crate) fn new() -> Self {
        RuntimeBound {
            sides: PerSide::new(|| Side {
                first: OnceLock::new(),
                later: RwLock::new(None),
                making: tokio::sync::Mutex::const_new(()),
            }),
        }
    }

    /// The value of this call's side, if one is made and its runtime is running.
    pub(crate) fn get(&self) -> Option<T> {
        self.sides.here().get()
    }

    /// The value of this call's side, made by `make` on this call's runtime if there is none
    /// or its runtime has shut down.
    pub(crate) async fn get_or_make<E, F>(&self, make: impl FnOnce() -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let side = self.sides.here();
        if let Some(value) = side.get() {
            return Ok(value);
        }
        let _making = side.making.lock().await;
        if let Some(value) = side.get() {
            return Ok(value);
        }
        let value = make().await?;
        if let Err(made) = side.first.set(Made::here(value.clone())) {
            *side.later.write().unwrap_or_else(PoisonError::into_inner) = Some(made);
        }
        Ok(value)
    }
}

impl<T: Clone> Side<T> {
    fn get(&self) -> Option<T> {
        let first = self.first.get()?;
        if first.is_alive() {
            return Some(first.value.clone());
        }
        let later = self.later.read().unwrap_or_else(PoisonError::into_inner);
        later
            .as_ref()
            .filter(|made| made.is_alive())
            .map(|made| made.value.clone())
    }
}

impl<T> Made<T> {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// `value`, made on this call's runtime (if any), which a task of it watches.
    fn here(value: T) -> Self {
        let alive = Arc::new(AtomicBool::new(true));
        let watch = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (watch, ended) = tokio::sync::oneshot::channel::<()>();
            let flag = RuntimeGone(Arc::clone(&alive));
            // Ends when the value is dropped; dropped unfinished when the runtime shuts down,
            // and either way `flag` marks the value unusable.
            runtime.spawn(async move {
                let _flag = flag;
                let _ = ended.await;
            });
            watch
        });
        Made {
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
