//! A read lock the store keeps on the write-ahead log while it reads, so that its reads
//! need no file lock of their own.
//!
//! A read in WAL mode takes a shared lock on one of the log's read marks, in the `-shm`
//! file, and releases it at the end: two `fcntl` system calls under a process-wide mutex,
//! over half of a point lookup's time. SQLite counts these locks per process and makes the
//! system call only for the first holder and the last, so a read whose mark another
//! connection of the process already holds skips both. This is why many threads reading
//! at once read faster than a few: one of them nearly always holds the mark.
//!
//! The anchor is a connection of the store's own, in a read transaction of its own, so it
//! holds the newest mark for the store's reads. Each read still starts its own transaction
//! and sees every write ended before it began; the anchor only holds the lock. Its
//! transaction is renewed at least every [`RENEW_EVERY`] while reads go on, so that it
//! holds the newest mark after writes (a read whose mark is newer than the anchor's makes
//! the system calls again) and so that it keeps no checkpoint, of this process or another,
//! from copying the log into the database for longer than that. A thread of its own ends
//! it once no read came for [`IDLE_AFTER`], and the store's checkpoints end it before they
//! run. Only a database in WAL mode has an anchor: in the other journal modes a read
//! transaction held open would keep every other process from writing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::Target;
use super::leases::open;

/// The longest the anchor keeps one transaction while reads go on.
const RENEW_EVERY: Duration = Duration::from_millis(1);

/// How long after the last read the anchor's transaction ends.
const IDLE_AFTER: Duration = Duration::from_millis(20);

/// Reads (on one thread) between two looks at the clock, to see whether the anchor is due
/// for renewal.
const READS_PER_LOOK: u64 = 64;

thread_local! {
    /// Reads on this thread, of any store, for [`READS_PER_LOOK`].
    static READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

pub(super) struct Anchor {
    target: Target,
    synchronous: &'static str,
    held: Mutex<Held>,
    /// Whether the anchor is in a read transaction (read without the lock).
    holding: AtomicBool,
    /// A read came since the idle thread last looked (written only when it was not set, so
    /// that reads on several threads do not write the same word back and forth).
    read_lately: AtomicBool,
    /// The database is not in WAL mode: no anchor, ever.
    unusable: AtomicBool,
}

#[derive(Default)]
struct Held {
    connection: Option<Connection>,
    /// When the anchor was last taken, or tried and failed; `None` once it ended, so the
    /// next read takes it at once.
    taken: Option<Instant>,
    /// A thread is watching for reads to stop.
    watched: bool,
}

impl Anchor {
    pub(super) fn new(target: Target, synchronous: &'static str) -> Arc<Self> {
        Arc::new(Anchor {
            target,
            synchronous,
            held: Mutex::default(),
            holding: AtomicBool::new(false),
            read_lately: AtomicBool::new(false),
            unusable: AtomicBool::new(false),
        })
    }

    /// Whether the store's reads have an anchor (they then need no batches to share the
    /// lock; until the database was first opened, it is assumed).
    pub(super) fn usable(&self) -> bool {
        !self.unusable.load(Ordering::Relaxed)
    }

    /// Before a read: renew the anchor if it is due; start the thread that opens it and
    /// ends it once reads stop, if none runs.
    pub(super) fn before_read(self: &Arc<Self>) {
        if !self.read_lately.load(Ordering::Relaxed) {
            self.read_lately.store(true, Ordering::Relaxed);
        }
        let reads = READS.with(|reads| {
            let next = reads.get().wrapping_add(1);
            reads.set(next);
            next
        });
        if self.holding.load(Ordering::Relaxed) && !reads.is_multiple_of(READS_PER_LOOK) {
            return;
        }
        if !self.usable() {
            return;
        }
        // Whoever holds the lock is taking or ending the anchor already.
        let Ok(mut held) = self.held.try_lock() else {
            return;
        };
        if !held.watched {
            held.watched = self.watch();
            return;
        }
        let due = held
            .taken
            .is_none_or(|taken| taken.elapsed() >= RENEW_EVERY);
        if due && held.connection.is_some() {
            self.take(&mut held);
        }
    }

    /// End the anchor's transaction (before a checkpoint, which it would hold back); the
    /// next read takes it again.
    pub(super) fn release(&self) {
        let mut held = self.lock();
        Self::end(&mut held, &self.holding);
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // Nothing panics while it is locked; the state is whole.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open the anchor's connection, if the database is in WAL mode. Best effort: a
    /// connection that cannot be opened now is tried again later.
    fn open(&self, held: &mut Held) {
        let Ok(connection) = open(&self.target, self.synchronous) else {
            return;
        };
        let wal = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get::<_, String>(0))
            .is_ok_and(|mode| mode.eq_ignore_ascii_case("wal"));
        if wal {
            held.connection = Some(connection);
        } else {
            self.unusable.store(true, Ordering::Relaxed);
        }
    }

    /// Begin a new transaction on the anchor's connection, ending the one it is in. Best
    /// effort: on a failure the connection is closed (which ends any transaction), and the
    /// reads take their locks themselves until it is opened again.
    fn take(&self, held: &mut Held) {
        Self::end(held, &self.holding);
        held.taken = Some(Instant::now());
        let Some(connection) = &held.connection else {
            return;
        };
        // A transaction takes its read mark on its first read.
        let began = connection.execute_batch("BEGIN").and_then(|()| {
            connection.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        });
        match began {
            Ok(()) => self.holding.store(true, Ordering::Relaxed),
            Err(_) => held.connection = None,
        }
    }

    fn end(held: &mut Held, holding: &AtomicBool) {
        held.taken = None;
        if !holding.swap(false, Ordering::Relaxed) {
            return;
        }
        if let Some(connection) = &held.connection
            && connection.execute_batch("COMMIT").is_err()
        {
            // Closing it ends the transaction.
            held.connection = None;
        }
    }

    /// Start the thread that opens the anchor and ends it once reads stop (opening a file
    /// is no work for a caller's thread); whether it started.
    fn watch(self: &Arc<Self>) -> bool {
        let anchor = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("cachy-sqlite-anchor".into())
            .spawn(move || watch_reads(&anchor))
            .is_ok()
    }
}

/// While reads come, every [`IDLE_AFTER`]: open the anchor's connection and take the anchor
/// if either is missing (after a failure, or a checkpoint that ended it). Once no read came
/// since the last look (or the store is gone), end it and stop.
fn watch_reads(anchor: &Weak<Anchor>) {
    loop {
        {
            let Some(anchor) = anchor.upgrade() else {
                return;
            };
            let mut held = anchor.lock();
            if !anchor.read_lately.swap(false, Ordering::Relaxed) {
                Anchor::end(&mut held, &anchor.holding);
                held.watched = false;
                return;
            }
            if held.connection.is_none() {
                anchor.open(&mut held);
                if !anchor.usable() {
                    held.watched = false;
                    return;
                }
            }
            if !anchor.holding.load(Ordering::Relaxed) {
                anchor.take(&mut held);
            }
        }
        std::thread::sleep(IDLE_AFTER);
    }
}
