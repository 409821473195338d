//! `remember`'s machinery, shared by [`Repository::remember`] and its variants and by the
//! memoizer behind `#[cached]`: read, single flight in this process, compute, store.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode, encode};
use crate::error::{Error, ErrorKind};
use crate::expiry::Expiry;
use crate::flight::{self, Failure, Role, ShareErrors};
use crate::observe::{Operation, Outcome, Record};
use crate::repository::Repository;
use crate::store::Ttl;

mod across;
mod cached;
mod lead;
mod many;
pub(crate) mod options;
mod resilient;

pub(crate) use options::versioned_key;
pub(crate) use resilient::Report;

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

/// Why a `remember` failed: the cache (cachy's own error, whatever the caller's error type:
/// its kind is what the call's event reports) or the factory (here, or in the caller this
/// one waited for). A cachy [`Error`] converts into the first, so `?` on a cache operation
/// says where the failure came from.
pub(crate) enum Failed<E> {
    Cache(Error),
    Factory(E),
}

impl<E> From<Error> for Failed<E> {
    fn from(error: Error) -> Self {
        Failed::Cache(error)
    }
}

impl<E: From<Error>> Failed<E> {
    /// The outcome of a call that failed so.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Failed::Cache(e) => Outcome::Failed(e.kind()),
            Failed::Factory(_) => Outcome::FactoryFailed,
        }
    }

    /// The error the caller gets.
    pub(crate) fn into_error(self) -> E {
        match self {
            Failed::Cache(e) => e.into(),
            Failed::Factory(e) => e,
        }
    }
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
    /// Why the call failed; `context` names the store and key of an error from elsewhere.
    pub(crate) fn into_failed(self, context: impl FnOnce(Error) -> Error) -> Failed<E> {
        match self {
            Remembered::Cache(e, _) | Remembered::Store(e, _) => Failed::Cache(e),
            Remembered::Computed(e) => Failed::Factory(e),
            Remembered::Elsewhere(failure, _) => Failed::Factory(failure.error(context)),
        }
    }
}

impl Repository {
    /// A cache failure a `remember` computed around (the caller still gets its value): the
    /// failure of `operation` (`Get` for a read or a value that did not decode, `Put` for a
    /// write or a value that did not encode; `Many` and `PutMany` in `remember_many`) on the
    /// store key `stored` (`None`: a batch), observed as every
    /// failure is (event, stats, metric) and logged at `WARN`, at most once every ten
    /// seconds a repository.
    pub(crate) fn survived(&self, operation: Operation, stored: Option<&str>, error: &Error) {
        self.survived_given(operation, stored.map(|key| self.given_key(key)), error);
    }

    /// [`survived`](Self::survived), on the caller's own `key` (not a store key).
    pub(crate) fn survived_given(&self, operation: Operation, key: Option<&str>, error: &Error) {
        #[cfg(feature = "tracing")]
        if let Some(unlogged) = self.observer().warning_due() {
            tracing::warn!(
                store = self.name(),
                operation = operation.name(),
                kind = error.kind().name(),
                %error,
                unlogged,
                "cache failure: the value was computed without the cache",
            );
        }
        self.observer()
            .record(self.name(), operation, key, Outcome::Failed(error.kind()));
    }

    /// The one implementation of `remember`, for the repository's methods and for
    /// `#[cached]`; `key` is the store key (already in the repository's tag namespace).
    ///
    /// `ttl` is `None` when the value must not be kept (a zero or past expiry). A stored
    /// value that does not decode as `T` is a miss: computed again and overwritten (the
    /// failure observed). With `CacheErrors::Bypass`, every other cache failure is also
    /// computed around: a failing read is a miss and a failing write is ignored. Waiters get
    /// copies of a failed computation's error as `share` allows.
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
        let survivable = |e: &Error| bypass || e.kind() == ErrorKind::Deserialize;
        loop {
            match self.get_stored::<T>(key).await {
                Ok(Some(value)) => return Ok((value, Outcome::Hit)),
                Ok(None) => {}
                Err(e) if survivable(&e) => self.survived(Operation::Get, Some(key), &e),
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
                            Err(e) if survivable(&e) => {
                                self.survived(Operation::Get, Some(key), &self.context(key)(e));
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
                    self.survived(Operation::Put, Some(key), &self.context(key)(e));
                    return Ok((value, Outcome::Miss));
                }
                Err(e) => {
                    let e = self.context(key)(e);
                    leader.finish(flight::Handoff::Failed(Failure::of(&e, None)));
                    return Err(Remembered::Store(e, value));
                }
            };
            let outcome = match self.store_bytes(key, &bytes, ttl).await {
                Err(e) if !bypass => {
                    leader.finish(flight::Handoff::Failed(Failure::of(&e, None)));
                    return Err(Remembered::Store(e, value));
                }
                Err(e) => {
                    self.survived(Operation::Put, Some(key), &e);
                    if let Some(ttl) = ttl {
                        self.store().keep_after_failed_write(
                            key,
                            &bytes,
                            ttl.map(Duration::from_secs),
                        );
                    }
                    Outcome::Miss
                }
                Ok(()) if ttl.is_some() => Outcome::Computed,
                Ok(()) => Outcome::Miss,
            };
            // The waiters get the value at once, stored or not.
            leader.finish(flight::Handoff::Value(bytes.into()));
            return Ok((value, outcome));
        }
    }

    /// The value under `key`; on a miss, run `compute`, store its `Ok` value until `expiry`,
    /// and return it. An `Err` from `compute` is returned and nothing is cached.
    ///
    /// Stampede-safe: while one caller in this process computes a missing key, the other
    /// callers of `remember` on the same key (through any clone of this repository, from
    /// tasks or from threads through the blocking API) wait and get its value; `compute` runs
    /// once. If it fails, nothing is cached and every waiter gets the same error when it is a
    /// cachy [`Error`]; an error of another type reaches the waiters as an
    /// [`ErrorKind::Remember`](crate::ErrorKind::Remember) error carrying its message (to give
    /// them copies of your own `Clone` error, use [`remember_with`](Self::remember_with) and
    /// [`RememberOptions::share_errors`](crate::RememberOptions::share_errors)). Callers in
    /// other processes are not coordinated. A `remember` of a key from inside its own
    /// computation is an [`ErrorKind::Remember`](crate::ErrorKind::Remember) error; two keys
    /// whose computations `remember` each other from two tasks wait for each other (use
    /// [`remember_with`](Self::remember_with) with a hard timeout where that can happen).
    ///
    /// The error type is yours, as long as a cachy [`Error`] converts into it and it can be
    /// displayed (`cachy::Error` itself, `anyhow::Error`, or your own enum with a `From`).
    pub async fn remember<T, E, F, Fut>(
        &self,
        key: &str,
        expiry: impl Into<Expiry>,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.remember_ttl(key, expiry.into().ttl(), compute).await
    }

    /// Like [`remember`](Self::remember), storing the computed value forever.
    pub async fn remember_forever<T, E, F, Fut>(&self, key: &str, compute: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.remember_ttl(key, Some(None), compute).await
    }

    async fn remember_ttl<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Ttl>,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let work = async {
            let scope = self.scope(Some(key)).await?;
            let stored = scope.key(key);
            let compute_and_track = || async {
                let value = compute().await?;
                self.track_if_forever(&scope, &stored, ttl).await?;
                Ok::<T, E>(value)
            };
            self.remember_in_process(&stored, ttl, CacheErrors::Return, None, compute_and_track)
                .await
                .map_err(|e| e.into_failed(self.context(&stored)))
        };
        let report = |result: std::result::Result<&(T, Outcome), &Failed<E>>,
                      record: &mut Record<'_>| {
            record(Some(key), result.map_or_else(Failed::outcome, |(_, o)| *o));
        };
        self.observed_each(Operation::Remember, Some(key), work, report)
            .await
            .map(|(value, _)| value)
            .map_err(Failed::into_error)
    }
}
