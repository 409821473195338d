//! A SQLite store's connections: opened as needed up to a maximum, handed to one call at a
//! time, and given back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::{BUSY_TIMEOUT, Connections, DbError, Target, on_blocking_pool};

/// Prepared statements kept per connection: every statement of the store, and a few
/// `get_many` sizes.
const CACHED_STATEMENTS: usize = 32;

/// The log's size in pages (40 MB) past which a commit checkpoints it itself, as SQLite
/// does at 1,000 by default: reached only if the background checkpoints keep failing.
pub(super) const SAFETY_CHECKPOINT_PAGES: u32 = 10_000;

/// An open connection, with its slot.
pub(super) struct Lease {
    pub(super) connection: Connection,
    _slot: Slot,
}

/// Leave for one connection to be open. Dropped, when its connection closes or its opening
/// is cancelled, it wakes a caller waiting for a connection, who may then open one.
struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    idle: std::sync::Weak<Idle>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The permit first: the caller woken must find it free.
        drop(self.permit.take());
        if let Some(idle) = self.idle.upgrade() {
            idle.changed.notify_one();
        }
    }
}

/// The open connections not in use, and a signal when one comes back or closes.
///
/// A call takes an idle connection without queueing: with a fair queue in front of every
/// call (a semaphore per use), the first burst of callers left a queue that never drained,
/// and every later call handed its connection to a waiter and waited in turn, a task switch
/// per statement. Callers wait only when every connection that may be open is in use.
///
/// A thread gives a connection back to a place of its own, and takes it from there first:
/// the connection's memory (its statements, its pages) stays in that core's caches, and
/// threads do not take turns at one lock twice per call.
#[derive(Default)]
pub(super) struct Idle {
    near: [Near; NEAR_PLACES],
    leases: Mutex<Vec<Lease>>,
    changed: Notify,
    /// Callers waiting for a connection: a connection given back wakes one only if there
    /// are any (a wake-up stored for no one would be one more write, on every call, to a
    /// word every thread reads).
    waiting: AtomicUsize,
}

/// Places for connections near the threads that used them last, shared by threads beyond
/// this many.
const NEAR_PLACES: usize = 8;

/// A place for one idle connection, on a cache line of its own.
#[derive(Default)]
#[repr(align(128))]
struct Near(Mutex<Option<Lease>>);

thread_local! {
    /// This thread's place in every store's [`Idle::near`].
    static NEAR_PLACE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % NEAR_PLACES
    };
}

/// A caller counted in [`Idle::waiting`] while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Idle {
    /// An idle connection: this thread's, else any.
    pub(super) fn take(&self) -> Option<Lease> {
        let here = NEAR_PLACE.with(|place| *place);
        if let Ok(mut near) = self.near[here].0.try_lock()
            && let Some(lease) = near.take()
        {
            return Some(lease);
        }
        if let Some(lease) = self
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            return Some(lease);
        }
        // A place being filled as this looks is no loss: its thread then wakes any waiter.
        self.near
            .iter()
            .find_map(|near| near.0.try_lock().ok().and_then(|mut near| near.take()))
    }

    pub(super) fn give_back(&self, lease: Lease) {
        let here = NEAR_PLACE.with(|place| *place);
        let lease = match self.near[here].0.try_lock() {
            Ok(mut near) if near.is_none() => {
                *near = Some(lease);
                None
            }
            _ => Some(lease),
        };
        if let Some(lease) = lease {
            self.leases
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(lease);
        }
        // Counted before it looked for a connection: if it looked before this one came back,
        // it is seen here.
        if self.waiting.load(Ordering::SeqCst) != 0 {
            self.changed.notify_one();
        }
    }
}

impl Connections {
    /// A free connection: an idle one, or a new one if fewer than the maximum are open, or
    /// the first to come free within the store's `timeout`.
    pub(super) async fn lease(&self) -> Result<Lease, DbError> {
        match self.idle.take() {
            Some(lease) => Ok(lease),
            // Boxed: opening a connection or waiting for one would add its state to every
            // call's future, though few calls need it.
            None => Box::pin(self.open_or_wait()).await,
        }
    }

    async fn open_or_wait(&self) -> Result<Lease, DbError> {
        // Read the clock only once a call has to wait: most find a connection at once.
        let mut deadline = None;
        let _waiting = Waiting::count(&self.idle.waiting);
        loop {
            // Made before looking: a connection given back after the look still wakes it.
            let changed = self.idle.changed.notified();
            if let Some(lease) = self.idle.take() {
                return Ok(lease);
            }
            if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
                let slot = Slot {
                    permit: Some(permit),
                    idle: Arc::downgrade(&self.idle),
                };
                let target = self.target.clone();
                let synchronous = self.synchronous;
                let connection = on_blocking_pool()?
                    .spawn_blocking(move || open(&target, synchronous))
                    .await
                    .map_err(|e| {
                        DbError::Worker(format!("opening a SQLite connection failed: {e}"))
                    })??;
                return Ok(Lease {
                    connection,
                    _slot: slot,
                });
            }
            let deadline =
                *deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.timeout);
            tokio::time::timeout_at(deadline, changed)
                .await
                .map_err(|_| DbError::NoConnection(self.timeout))?;
        }
    }
}

/// Open a connection to `target`: WAL mode (readers never wait for the writer), the given
/// `PRAGMA synchronous`, and no busy wait (see [`Connections::run`]).
pub(super) fn open(target: &Target, synchronous: &str) -> Result<Connection, DbError> {
    let connection = match target {
        Target::Memory => Connection::open_in_memory()?,
        Target::File { path, read_only } => {
            let access = if *read_only {
                OpenFlags::SQLITE_OPEN_READ_ONLY
            } else {
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
            };
            let connection =
                Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            connection.busy_timeout(BUSY_TIMEOUT)?;
            if !read_only {
                switch_to_wal(&connection)?;
                // Checkpoints run in the background (see `Checkpoints`); SQLite's own, on a
                // caller's commit, only if those fail until the log holds 10,000 pages.
                connection.pragma_update(None, "wal_autocheckpoint", SAFETY_CHECKPOINT_PAGES)?;
            }
            connection
        }
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.busy_timeout(Duration::ZERO)?;
    connection.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
    Ok(connection)
}

/// Put the database in WAL mode (once per file; a no-op after). SQLite takes the exclusive
/// lock for the switch in one try, without its busy handler, so a process opening a new
/// file at the same moment as another (or while another program writes it) finds it busy:
/// the switch is tried again until [`BUSY_TIMEOUT`].
fn switch_to_wal(connection: &Connection) -> Result<(), DbError> {
    let started = Instant::now();
    loop {
        let switched = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0));
        match switched {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == ErrorCode::DatabaseBusy && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            switched => return Ok(switched.map(drop)?),
        }
    }
}
