//! Whether an embedded store's work runs on the caller's thread or on tokio's blocking pool.
//!
//! A small read or write that the kernel or SQLite answers from memory takes a few
//! microseconds, less than the hop to the blocking pool (tens of microseconds here); a slow
//! disk or a network file system takes longer, and must not hold up the runtime's threads.
//! So the work runs where it was called until it proves slow, then on the blocking pool,
//! with one call in [`PROBE_EVERY`] run where it was called again to see whether that is
//! still so: slowness measured in wall time may also have been a busy machine preempting
//! the thread.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long work on the caller's thread may take before it counts as slow.
const INLINE_LIMIT: Duration = Duration::from_millis(1);

/// How many slow calls in a row mean a slow disk: one proves nothing, the thread may just
/// have been preempted.
const SLOW_IN_A_ROW: u32 = 4;

/// Once work is on the blocking pool, one call in this many tries the caller's thread again.
const PROBE_EVERY: u32 = 256;

/// Calls on the caller's thread per unit of tokio's cooperative budget (128 units a turn):
/// a yield wakes another worker to take the task, and a turn of 512 calls of a few
/// microseconds each still yields within a few milliseconds.
const CALLS_PER_BUDGET_UNIT: u32 = 4;

thread_local! {
    /// Calls that asked to run on this thread, for the cooperative budget.
    static CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The record of how long work on the caller's thread took, shared by one store's clones.
#[derive(Debug, Default)]
pub(crate) struct InlineWhileFast {
    slow_in_a_row: AtomicU32,
    /// Calls sent to the blocking pool since work moved there.
    sent_away: AtomicU32,
}

impl InlineWhileFast {
    /// Whether the next call may run on the caller's thread.
    pub(crate) fn allowed(&self) -> bool {
        self.slow_in_a_row.load(Ordering::Relaxed) < SLOW_IN_A_ROW
            || self.sent_away.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY == PROBE_EVERY - 1
    }

    /// [`allowed`](Self::allowed), once the call has spent its share of tokio's cooperative
    /// budget, as a call on a tokio socket does. Work that never waits would otherwise let
    /// a task loop over calls for as long as it likes, holding its thread, while the tasks
    /// queued on that thread (which another thread takes over only once woken) wait: with
    /// 64 tasks looping over SQLite reads, one task ran at a time. A call spends one unit in
    /// [`CALLS_PER_BUDGET_UNIT`], so a looping task yields every 512 calls or so; outside
    /// a tokio runtime it never does.
    pub(crate) async fn allowed_cooperatively(&self) -> bool {
        let calls = CALLS.with(|calls| {
            let next = calls.get().wrapping_add(1);
            calls.set(next);
            next
        });
        if calls.is_multiple_of(CALLS_PER_BUDGET_UNIT) {
            tokio::task::coop::consume_budget().await;
        }
        self.allowed()
    }

    /// Note that a call on the caller's thread took `took`; true when that made the work
    /// move to the blocking pool (for the store to say so, once each time).
    pub(crate) fn record(&self, took: Duration) -> bool {
        if took > INLINE_LIMIT {
            self.slow_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 == SLOW_IN_A_ROW
        } else {
            // A fast call (a probe, say) brings the work back.
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
        assert!(!inline.record(slow), "said once");
        let probes = (0..PROBE_EVERY * 2).filter(|_| inline.allowed()).count();
        assert_eq!(
            probes, 2,
            "one call in {PROBE_EVERY} tries the caller's thread"
        );
        assert!(!inline.record(slow), "a slow probe keeps the work away");
        assert!(!inline.allowed());
        assert!(!inline.record(Duration::ZERO));
        assert!(inline.allowed(), "a fast probe brings it back");
    }
}
