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
//! holds the mark the store's reads take. Each read still starts its own transaction and
//! sees every write ended before it began; the anchor only holds the lock. It holds only
//! read mark 0, the one readers take when the whole log is copied into the database: a
//! reader of the log itself (marks 1 and up) keeps checkpoints, of this process and every
//! other, from copying the log past its snapshot, and keeps writers from starting the log
//! again from its beginning, so a writer in another process that never paused found its log
//! growing without end. While reads go on, a thread of its own ends the anchor's
//! transaction every [`RENEW_EVERY`], runs a `PASSIVE` checkpoint (it waits for no one)
//! and, if that copied the whole log, begins a new one, which then takes mark 0. After a
//! write the log is not wholly copied until the next renewal: reads meanwhile take their
//! locks themselves. Once no read came for [`IDLE_AFTER`], the thread ends the anchor and
//! stops. Only a database in WAL mode has an anchor: in the other journal modes a read
//! transaction held open would keep every other process from writing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use rusqlite::Connection;

use super::Target;
use super::leases::open;

/// How often the anchor is renewed while reads go on.
const RENEW_EVERY: Duration = Duration::from_millis(1);

/// How long after the last read the anchor ends (in renewals).
const IDLE_AFTER: u32 = 20;

pub(super) struct Anchor {
    target: Target,
    synchronous: &'static str,
    held: Mutex<Held>,
    /// A thread renews the anchor (read without the lock, on every read).
    watched: AtomicBool,
    /// A read came since the thread last looked (written only when it was not set, so that
    /// reads on several threads do not write the same word back and forth).
    read_lately: AtomicBool,
    /// The database is not in WAL mode: no anchor, ever.
    unusable: AtomicBool,
}

#[derive(Default)]
struct Held {
    connection: Option<Connection>,
    /// The connection is in the anchor's read transaction.
    holding: bool,
}

impl Anchor {
    pub(super) fn new(target: Target, synchronous: &'static str) -> Arc<Self> {
        Arc::new(Anchor {
            target,
            synchronous,
            held: Mutex::default(),
            watched: AtomicBool::new(false),
            read_lately: AtomicBool::new(false),
            unusable: AtomicBool::new(false),
        })
    }

    /// Whether the store's reads have an anchor (they then need no batches to share the
    /// lock; until the database was first opened, it is assumed).
    pub(super) fn usable(&self) -> bool {
        !self.unusable.load(Ordering::Relaxed)
    }

    /// Before a read: note it, and start the thread that keeps the anchor if none runs.
    pub(super) fn before_read(self: &Arc<Self>) {
        if !self.read_lately.load(Ordering::Relaxed) {
            self.read_lately.store(true, Ordering::Relaxed);
        }
        if self.watched.load(Ordering::Relaxed) || !self.usable() {
            return;
        }
        // Whoever holds the lock is starting or stopping the thread.
        let Ok(_held) = self.held.try_lock() else {
            return;
        };
        if !self.watched.load(Ordering::Relaxed) {
            let anchor = Arc::downgrade(self);
            let started = std::thread::Builder::new()
                .name("cachy-sqlite-anchor".into())
                .spawn(move || keep(&anchor))
                .is_ok();
            self.watched.store(started, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // Nothing panics while it is locked; the state is whole.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// End the anchor's transaction and, if a checkpoint copies the whole log, begin
    /// another (on read mark 0). Opens the connection first if needed. Best effort: on a
    /// failure the connection is closed (which ends any transaction) and opened again at a
    /// later renewal; reads meanwhile take their locks themselves.
    fn renew(&self, held: &mut Held) {
        held.end();
        if held.connection.is_none() {
            self.open(held);
        }
        let Some(connection) = &held.connection else {
            return;
        };
        let began = begin_on_mark_zero(connection);
        match began {
            Ok(holding) => held.holding = holding,
            Err(_) => held.connection = None,
        }
    }

    /// Open the anchor's connection, if the database is in WAL mode.
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
}

impl Held {
    fn end(&mut self) {
        if !std::mem::take(&mut self.holding) {
            return;
        }
        if let Some(connection) = &self.connection
            && connection.execute_batch("COMMIT").is_err()
        {
            // Closing it ends the transaction.
            self.connection = None;
        }
    }
}

/// Begin a read transaction on read mark 0, if a checkpoint copies the whole log; whether
/// it did.
fn begin_on_mark_zero(connection: &Connection) -> rusqlite::Result<bool> {
    let before = data_version(connection)?;
    if !copied_whole_log(connection)? {
        return Ok(false);
    }
    connection.execute_batch("BEGIN")?;
    // A transaction takes its read mark on its first read. A write that landed after the
    // checkpoint (another connection's, so the version moved) may have put it on a mark of
    // the log: then it is not held.
    if data_version(connection)? == before {
        return Ok(true);
    }
    connection.execute_batch("COMMIT")?;
    Ok(false)
}

/// The version of the database as the connection sees it (in a transaction, as of its
/// snapshot): it moves with every commit of another connection. Reading it begins the
/// transaction's read.
fn data_version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row("PRAGMA data_version", [], |row| row.get(0))
}

/// A `PASSIVE` checkpoint (it waits for no reader or writer): whether the whole log is
/// copied into the database (a new reader then takes read mark 0).
fn copied_whole_log(connection: &Connection) -> rusqlite::Result<bool> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        let (busy, pages, copied): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        // Not in WAL mode, it answers -1 for both.
        Ok(busy == 0 && pages >= 0 && pages == copied)
    })
}

/// The thread that keeps the anchor: every [`RENEW_EVERY`] while reads come, renew it;
/// once no read came for [`IDLE_AFTER`] renewals (or the store is gone), end it and stop.
fn keep(anchor: &Weak<Anchor>) {
    let mut idle = 0;
    loop {
        {
            let Some(anchor) = anchor.upgrade() else {
                return;
            };
            let mut held = anchor.lock();
            idle = if anchor.read_lately.swap(false, Ordering::Relaxed) {
                0
            } else {
                idle + 1
            };
            if idle >= IDLE_AFTER || !anchor.usable() {
                held.end();
                anchor.watched.store(false, Ordering::Relaxed);
                return;
            }
            anchor.renew(&mut held);
        }
        std::thread::sleep(RENEW_EVERY);
    }
}
