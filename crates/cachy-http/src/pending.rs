//! Writes whose drop of the kept responses failed (the store was down): until a retry
//! succeeds, this process does not use what it kept for their URLs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Writes whose invalidation failed, by target, with when it was last tried: until one
/// succeeds, the target's kept responses are not used (in this process).
#[derive(Default)]
pub(crate) struct Pending {
    any: std::sync::atomic::AtomicBool,
    targets: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    kept_since: AtomicU64,
}

/// Whether a target is pending, and whether to try its invalidation again.
pub(crate) enum Due {
    Settled,
    Waiting,
    Now,
}

/// The most targets kept pending (see [`Pending::record`] for what happens past it).
const MOST_PENDING: usize = 10_000;

/// How often a pending invalidation is tried again, at most.
const RETRY_EVERY: Duration = Duration::from_secs(1);

impl Pending {
    pub(crate) fn due(&self, target: &str) -> Due {
        if !self.any.load(Ordering::Acquire) {
            return Due::Settled;
        }
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        match targets.get_mut(target) {
            None => Due::Settled,
            Some(tried) if tried.elapsed() < RETRY_EVERY => Due::Waiting,
            Some(tried) => {
                *tried = std::time::Instant::now();
                Due::Now
            }
        }
    }

    pub(crate) fn record(&self, target: &str, done: bool) {
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        if done {
            targets.remove(target);
        } else if targets.len() < MOST_PENDING || targets.contains_key(target) {
            targets.insert(target.to_owned(), std::time::Instant::now());
        } else {
            // More than it can remember: from now on this process keys what it keeps with
            // the time, so that nothing kept before, by anyone, is used again here; the
            // targets it remembered are covered by that too.
            targets.clear();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos().max(1) as u64);
            self.kept_since.store(now, Ordering::Release);
        }
        self.any.store(!targets.is_empty(), Ordering::Release);
    }

    /// Since when this process uses only what it kept itself (nanoseconds since the Unix
    /// epoch), after more failed drops than it could remember.
    pub(crate) fn kept_since(&self) -> Option<u64> {
        Some(self.kept_since.load(Ordering::Acquire)).filter(|since| *since != 0)
    }
}
