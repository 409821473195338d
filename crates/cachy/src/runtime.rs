//! The runtime cachy's synchronous faces and background tasks run on: one per process,
//! started on first use, and whether the calling thread may block on it.

use std::future::Future;
use std::sync::OnceLock;

use crate::error::{Error, ErrorKind, Result};

#[cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "database-postgres",
    feature = "database-mysql"
))]
mod bound;
#[cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "database-postgres",
    feature = "database-mysql"
))]
pub(crate) use bound::RuntimeBound;

/// The runtime the blocking API drives the async core on: one per process, shared by every
/// facade and by sync `#[cached]` functions, and never shut down. Stores are shared between
/// a facade and the async manager it wraps, and a store's connections keep background tasks
/// on the runtime that opened them; a runtime per facade would take those connections down
/// with the facade, breaking the async manager's next call.
#[derive(Debug)]
pub(crate) struct Driver {
    runtime: tokio::runtime::Runtime,
}

impl Driver {
    /// The process's driver, started on first use.
    pub(crate) fn shared() -> Result<&'static Self> {
        static SHARED: OnceLock<std::result::Result<Driver, String>> = OnceLock::new();
        let started = SHARED.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("cachy-blocking")
                .enable_all()
                .build()
                .map(|runtime| Driver { runtime })
                .map_err(|e| e.to_string())
        });
        started.as_ref().map_err(|e| {
            Error::new(
                ErrorKind::Runtime,
                format!("cannot start the blocking API's runtime: {e}"),
            )
        })
    }

    pub(crate) fn block_on<T, E: From<Error>>(
        &self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        // A call from inside a blocking `remember` closure runs within the outer call's
        // `block_on` on the driver's runtime: `InPlace`, as `block_in_place` leaves that
        // runtime's context for the nested `block_on`.
        match Blocking::here() {
            Blocking::Free => Ok(self.run(work)?),
            Blocking::InPlace => Ok(tokio::task::block_in_place(|| self.run(work))?),
            Blocking::Refused => Err(Error::new(
                ErrorKind::Runtime,
                "the blocking API was called on a current-thread tokio runtime, whose one \
                 thread it would stall; use the async API (cachy::CacheManager) there, or call \
                 it from a plain thread or a multi-thread runtime",
            )
            .into()),
        }
    }

    /// Drive `work` to completion on this thread, where [`Blocking::here`] allows it.
    pub(crate) fn run<T>(&self, work: impl Future<Output = T>) -> T {
        self.runtime.block_on(work)
    }
}

/// Whether the runtime running this call is shutting down: a task spawned on it then ends
/// at once. For failures, which its connections going down with it explain.
#[cfg(any(feature = "redis", feature = "memcached"))]
pub(crate) fn shutting_down() -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    // A task that never finishes by itself: finished at once only if the runtime refused it.
    let probe = runtime.spawn(std::future::pending::<()>());
    let refused = probe.is_finished();
    probe.abort();
    refused
}

/// A blocking factory as the async one `remember_with` takes: run on tokio's blocking pool,
/// so that a slow factory neither stalls the blocking API's one worker thread nor holds up
/// the timers of soft and hard timeouts.
pub(crate) async fn off_the_runtime<T, E, F>(compute: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    tokio::task::spawn_blocking(crate::flight::carry_computing(compute))
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Remember,
                format!("the factory ended without a value: {e}"),
            )
        })?
}

/// The tokio runtime running this call, for work that has to wait on its blocking pool.
/// The embedded stores (file, SQLite) answer on the caller's thread while they can, so a
/// caller polling them outside tokio meets the need for it only when a call has to wait (for
/// a lock, or a slow disk): an [`ErrorKind::Runtime`] error naming `store` then, not a panic.
#[cfg(any(feature = "file", feature = "database-sqlite"))]
pub(crate) fn blocking_pool(store: &str) -> Result<tokio::runtime::Handle> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        Error::new(
            ErrorKind::Runtime,
            format!(
                "the {store} has to wait for this call (for a lock, or a slow disk) on tokio's \
                 blocking pool, and the call runs outside a tokio runtime"
            ),
        )
    })
}

/// Whether, and how, the calling thread may block on the blocking API's runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocking {
    /// No tokio runtime here: block.
    Free,
    /// A multi-thread tokio runtime is here: block through `block_in_place`, which hands a
    /// worker's other tasks to another thread first and does nothing more on threads that
    /// may block anyway (`spawn_blocking`, threads that merely entered the runtime).
    InPlace,
    /// A current-thread runtime is here. Blocking its thread would stall it (and could wait
    /// for a connection task that only that thread runs), and tokio offers no way to tell
    /// that thread from its `spawn_blocking` threads, so blocking is refused on all of them.
    Refused,
}

impl Blocking {
    pub(crate) fn here() -> Self {
        match tokio::runtime::Handle::try_current() {
            Err(_) => Blocking::Free,
            Ok(handle) => match handle.runtime_flavor() {
                tokio::runtime::RuntimeFlavor::CurrentThread => Blocking::Refused,
                _ => Blocking::InPlace,
            },
        }
    }
}

/// The process's runtime, for background tasks that must outlive whichever runtime their
/// store was first used from (the hybrid store's backplane).
#[cfg(feature = "hybrid")]
pub(crate) fn background() -> Result<tokio::runtime::Handle> {
    Ok(Driver::shared()?.runtime.handle().clone())
}

/// The process's runtime for the blocking calls of `#[cached]` functions; `None` if it
/// cannot be started.
pub(crate) fn shared_driver() -> Option<&'static Driver> {
    Driver::shared().ok()
}
