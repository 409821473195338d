//! `remember`'s machinery, shared by [`Repository::remember`] and its variants and by the
//! memoizer behind `#[cached]`: read, single flight in this process, compute, store.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode, encode};
use crate::error::Error;
use crate::flight::{self, Failure, Role, ShareErrors};
use crate::observe::{Operation, Outcome};
use crate::repository::Repository;
use crate::store::Ttl;

mod across;
mod many;
pub(crate) mod options;
mod resilient;

/// What `remember_in_process` does when the cache itself fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheErrors {
    /// Return the error (`remember`).
    Return,
    /// Compute as if uncached (`#[cached]`: memoization must not break the function).
    Bypass,
}

/// Why `remember_in_process` did not return a value. Where `compute` did not run, it is handed
/// back, so a caller that bypasses the cache can still run it.
pub(crate) enum Remembered<T, E, F> {
    /// The cache failed before `compute` ran.
    Cache(Error, F),
    /// Storing the computed value failed (the value is here).
    Store(Error, T),
    /// This caller's computation failed.
    Computed(E),
    /// The computation failed in the caller that ran it.
    Elsewhere(Failure, F),
}

/// The error of a `remember` of a key from inside its own computation.
pub(crate) fn reentrant() -> Error {
    Error::new(
        crate::ErrorKind::Remember,
        "`remember` was called for this key from inside its own computation, which would \
         wait for itself forever",
    )
}

impl<T, E: From<Error> + 'static, F> Remembered<T, E, F> {
    /// The error to return; `context` names the store and key of an error from elsewhere.
    pub(crate) fn into_error(self, context: impl FnOnce(Error) -> Error) -> E {
        match self {
            Remembered::Cache(e, _) | Remembered::Store(e, _) => e.into(),
            Remembered::Computed(e) => e,
            Remembered::Elsewhere(failure, _) => failure.error(context),
        }
    }
}

impl Repository {
    /// A cache failure that `#[cached]` ignores (it computes as if uncached), reported so
    /// that it is not silent: counted as an error, handed to the hooks, logged at `DEBUG`.
    fn bypassed(&self, key: &str, error: &Error) {
        #[cfg(feature = "tracing")]
        tracing::debug!(store = self.name(), %error, "cache failure ignored: computing without the cache");
        self.observer().record(
            self.name(),
            Operation::Remember,
            Some(key),
            Outcome::Failed(error.kind()),
        );
    }

    /// The one implementation of `remember`, for the repository's methods and for
    /// `#[cached]`; `key` is the store key (already in the repository's tag namespace).
    ///
    /// `ttl` is `None` when the value must not be kept (a zero or past expiry). With
    /// `CacheErrors::Bypass`, a failing cache is treated as a miss and a failing store is
    /// ignored: the value is computed as if there were no cache. Waiters get copies of a
    /// failed computation's error as `share` allows.
    pub(crate) async fn remember_in_process<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Ttl>,
        cache_errors: CacheErrors,
        share: Option<ShareErrors>,
        compute: F,
    ) -> Result<(T, Outcome), Remembered<T, E, F>>
    where
        T: Serialize + DeserializeOwned,
        E: std::fmt::Display + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let bypass = cache_errors == CacheErrors::Bypass;
        loop {
            match self.get_stored::<T>(key).await {
                Ok(Some(value)) => return Ok((value, Outcome::Hit)),
                Ok(None) => {}
                Err(e) if bypass => self.bypassed(key, &e),
                Err(e) => return Err(Remembered::Cache(e, compute)),
            }
            if self.flights().is_computing(key) {
                return Err(Remembered::Cache(self.context(key)(reentrant()), compute));
            }
            let leader = match self.flights().join(key) {
                Role::Leader(leader) => leader,
                Role::Waiter(slot) => match flight::wait(slot).await {
                    Some(flight::Handoff::Value(bytes) | flight::Handoff::Stale(bytes)) => {
                        match decode(self.serializer(), &bytes) {
                            Ok(value) => return Ok((value, Outcome::Miss)),
                            Err(e) if bypass => {
                                self.bypassed(key, &e);
                                continue;
                            }
                            Err(e) => return Err(Remembered::Cache(self.context(key)(e), compute)),
                        }
                    }
                    Some(flight::Handoff::Failed(failure)) => {
                        return Err(Remembered::Elsewhere(failure, compute));
                    }
                    Some(flight::Handoff::Absent) | None => continue,
                },
            };
            // Another caller may have stored the value between our miss and our lead.
            if let Ok(Some(value)) = self.get_stored::<T>(key).await {
                return Ok((value, Outcome::Hit));
            }
            let value = match leader.compute(compute()).await {
                Ok(value) => value,
                Err(e) => {
                    leader.finish(flight::Handoff::Failed(Failure::of(&e, share)));
                    return Err(Remembered::Computed(e));
                }
            };
            let bytes = match encode(self.serializer(), &value) {
                Ok(bytes) => bytes,
                // Waiters retry (the leader is dropped) and compute their own copy.
                Err(e) if bypass => {
                    self.bypassed(key, &e);
                    return Ok((value, Outcome::Miss));
                }
                Err(e) => {
                    let e = self.context(key)(e);
                    leader.finish(flight::Handoff::Failed(Failure::of(&e, None)));
                    return Err(Remembered::Store(e, value));
                }
            };
            match self.store_bytes(key, &bytes, ttl).await {
                Err(e) if !bypass => {
                    leader.finish(flight::Handoff::Failed(Failure::of(&e, None)));
                    return Err(Remembered::Store(e, value));
                }
                // Bypassing a failing cache: the waiters still get the value at once.
                stored => {
                    if let Err(e) = &stored {
                        self.bypassed(key, e);
                    }
                    leader.finish(flight::Handoff::Value(bytes.into()));
                }
            }
            return Ok((value, Outcome::Miss));
        }
    }
}
