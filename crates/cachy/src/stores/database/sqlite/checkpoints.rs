//! Checkpoints of a SQLite store's write-ahead log, on tokio's blocking pool.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use super::Target;
use super::leases::open;

/// Writes between two checkpoints of the write-ahead log (each write adds a few pages;
/// SQLite's own default is every 1,000 pages).
const CHECKPOINT_EVERY: u64 = 256;

/// Checkpoints of the write-ahead log, off every caller's path. SQLite's own run in the
/// commit that crosses 1,000 pages of log, on whichever caller made it: 12 to 14 ms at 1M
/// rows, the slowest put of all. Connections here leave that to a log ten times as long
/// ([`SAFETY_CHECKPOINT_PAGES`](super::leases::SAFETY_CHECKPOINT_PAGES)); every [`CHECKPOINT_EVERY`]
/// writes, one `PASSIVE` checkpoint (it waits for no reader or writer) runs on the blocking
/// pool, on a connection of its own.
#[derive(Default)]
pub(super) struct Checkpoints {
    writes: AtomicU64,
    running: AtomicBool,
    connection: Mutex<Option<Connection>>,
}

impl Checkpoints {
    /// Count a write; start a checkpoint if one is due and none is running.
    pub(super) fn wrote(self: &Arc<Self>, target: &Target, synchronous: &'static str) {
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
        runtime.spawn_blocking(move || {
            let mut connection = checkpoints
                .connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if connection.is_none() {
                *connection = open(&target, synchronous).ok();
            }
            // Best effort: a checkpoint that cannot run now runs with a later one.
            if let Some(open) = connection.as_ref()
                && open
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    .is_err()
            {
                *connection = None;
            }
            drop(connection);
            checkpoints.running.store(false, Ordering::Release);
        });
    }
}
