//! Single flight across processes: the lock a key's computation is held under, and waiting
//! for the value another process computes.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::cached::Cached;
use super::options::RememberOptions;
use crate::envelope;
use crate::error::Result;
use crate::repository::Repository;

/// What taking the cross-process lock of a key came to.
pub(super) enum Across<T> {
    /// This process computes, holding the lock.
    Locked(crate::Lock),
    /// Another process stored the value meanwhile.
    Stored(Cached<T>),
    /// Another process held the lock past the wait, without storing the value.
    TimedOut,
}

impl Repository {
    /// Take the lock of the store key `key` for computing its value, or wait up to `wait` for
    /// the process holding it to store the value.
    pub(super) async fn lock_across_processes<T: DeserializeOwned>(
        &self,
        key: &str,
        options: &RememberOptions,
        lock_ttl: Duration,
        wait: Duration,
    ) -> Result<Across<T>> {
        let lock = self.untagged().lock(format!("{key}:computing"), lock_ttl);
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if lock.try_acquire().await? {
                // The holder before may have stored the value and released the lock between
                // our read and our try.
                return Ok(match self.read_cached::<T>(key, options).await? {
                    Some(cached) if cached.is_fresh(envelope::now()) => {
                        let _ = lock.release().await;
                        Across::Stored(cached)
                    }
                    _ => Across::Locked(lock),
                });
            }
            if let Some(cached) = self.read_cached::<T>(key, options).await?
                && cached.is_fresh(envelope::now())
            {
                return Ok(Across::Stored(cached));
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Ok(Across::TimedOut);
            }
            tokio::time::sleep(pause.min(wait - waited)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}
