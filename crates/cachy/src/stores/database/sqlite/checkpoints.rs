//! Checkpoints of a SQLite store's write-ahead log, on tokio's blocking pool.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::Target;
use super::leases::open;

/// Writes between two checkpoints of the write-ahead log (each write adds a few pages;
/// SQLite's own default is every 1,000 pages).
const CHECKPOINT_EVERY: u64 = 256;

/// The log's length in pages (16 MB of 4 KB pages) from which a checkpoint makes sure the
/// log starts again from its beginning (see [`Checkpoints`]).
const RESTART_FROM_PAGES: i64 = 4_000;

/// Checkpoints of the write-ahead log, off every caller's path. SQLite's own run in the
/// commit that crosses 1,000 pages of log, on whichever caller made it: 12 to 14 ms at 1M
/// rows, the slowest put of all. Connections here leave that to a log ten times as long
/// ([`SAFETY_CHECKPOINT_PAGES`](super::leases::SAFETY_CHECKPOINT_PAGES)); every [`CHECKPOINT_EVERY`]
/// writes, one `PASSIVE` checkpoint (it waits for no reader or writer) runs on the blocking
/// pool, on a connection of its own.
///
/// SQLite starts the log again from its beginning only when a write begins while all of it
/// is copied into the database and no reader is in it. With writes going on without a
/// pause, that never happens: a checkpoint copies the log, and writes made meanwhile are
/// still in it when the next write begins, so the log grew with every write (40 MB in 3 s of
/// 4 writers and 4 readers, and on). So once it holds [`RESTART_FROM_PAGES`], a checkpoint
/// takes the store's turn to write (its writes wait for it, as for a batch) and copies the
/// rest; readers that begin then read the database, and the next write starts the log
/// again. SQLite's own `RESTART` checkpoint would wait for the readers too, holding the
/// database's write lock, and the store's writes finding it locked would each go to wait on
/// the blocking pool: with 64 writers, a fifth of the throughput.
#[derive(Default)]
pub(super) struct Checkpoints {
    writes: AtomicU64,
    running: AtomicBool,
    connection: Mutex<Option<Connection>>,
}

impl Checkpoints {
    /// Count a write; start a checkpoint if one is due and none is running.
    pub(super) fn wrote(
        self: &Arc<Self>,
        target: &Target,
        synchronous: &'static str,
        write_turns: &Arc<Semaphore>,
    ) {
        let writes = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        if !writes.is_multiple_of(CHECKPOINT_EVERY) || self.running.swap(true, Ordering::Acquire) {
            return;
        }
        // Outside a tokio runtime, SQLite's own checkpoint (at SAFETY_CHECKPOINT_PAGES) runs.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.running.store(false, Ordering::Release);
            return;
        };
        let (checkpoints, target) = (Arc::clone(self), target.clone());
        let write_turns = Arc::clone(write_turns);
        runtime.clone().spawn_blocking(move || {
            let mut connection = checkpoints
                .connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if connection.is_none() {
                *connection = open(&target, synchronous).ok();
            }
            // Best effort: a checkpoint that cannot run now runs with a later one.
            let checkpointed = connection.as_ref().map(|open| {
                let pages = checkpoint(open)?;
                if pages >= RESTART_FROM_PAGES {
                    // A closed semaphore (never, while the store is) just skips the turn.
                    let _turn = runtime.block_on(write_turns.acquire());
                    checkpoint(open)?;
                }
                Ok::<_, rusqlite::Error>(())
            });
            if matches!(checkpointed, Some(Err(_))) {
                *connection = None;
            }
            drop(connection);
            checkpoints.running.store(false, Ordering::Release);
        });
    }
}

/// A `PASSIVE` checkpoint (it waits for no reader or writer): how many pages the log holds.
fn checkpoint(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}
