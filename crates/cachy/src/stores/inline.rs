//! Whether an embedded store's work runs on the caller's thread or on tokio's blocking pool.
//!
//! A small read or write that the kernel or SQLite answers from memory takes a few
//! microseconds, less than the hop to the blocking pool (tens of microseconds here); a slow
//! disk or a network file system takes longer, and must not hold up the runtime's threads.
//! So the work runs where it was called until it proves slow, then on the blocking pool for
//! good.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long work on the caller's thread may take before it counts as slow.
const INLINE_LIMIT: Duration = Duration::from_millis(1);

/// How many slow calls in a row mean a slow disk: one proves nothing, the thread may just
/// have been preempted.
const SLOW_IN_A_ROW: u32 = 4;

/// The record of how long work on the caller's thread took, shared by one store's clones.
#[derive(Debug, Default)]
pub(crate) struct InlineWhileFast {
    slow_in_a_row: AtomicU32,
}

impl InlineWhileFast {
    /// Whether the next call may run on the caller's thread.
    pub(crate) fn allowed(&self) -> bool {
        self.slow_in_a_row.load(Ordering::Relaxed) < SLOW_IN_A_ROW
    }

    /// Note that a call on the caller's thread took `took`; true when that made the work
    /// move to the blocking pool (for the store to say so once).
    pub(crate) fn record(&self, took: Duration) -> bool {
        if took > INLINE_LIMIT {
            self.slow_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 == SLOW_IN_A_ROW
        } else {
            if self.slow_in_a_row.load(Ordering::Relaxed) != 0 {
                self.slow_in_a_row.store(0, Ordering::Relaxed);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slow_calls_in_a_row_move_the_work() {
        let inline = InlineWhileFast::default();
        let slow = INLINE_LIMIT * 2;
        for _ in 0..SLOW_IN_A_ROW - 1 {
            assert!(!inline.record(slow));
        }
        assert!(
            !inline.record(Duration::ZERO),
            "a fast call starts the count again"
        );
        for _ in 0..SLOW_IN_A_ROW - 1 {
            assert!(!inline.record(slow));
            assert!(inline.allowed());
        }
        assert!(inline.record(slow), "the fourth in a row moves it");
        assert!(!inline.allowed());
        assert!(!inline.record(slow), "said once");
    }
}
