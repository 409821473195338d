//! The computation of one key for resilient `remember`: joining its single flight, leading
//! it in a task of its own (storing the value or keeping the fallback), following it within
//! the soft timeout, and falling back.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Failed;
use super::across::Across;
use super::cached::{Cached, Fallback};
use super::options::{Computed, Entry, Keep, RememberOptions, Source};
use super::resilient::{Report, jittered, store_ttl, within_cache_timeout, within_hard_timeout};
use crate::codec::{decode, encode};
use crate::envelope::{self, Header};
use crate::error::{Error, ErrorKind};

use crate::flight::{self, Failure, Handoff, Leader, Role};
use crate::observe::Operation;
use crate::repository::Repository;

/// How the task computing a key ended, when it did not fail.
pub(super) enum Led<T> {
    /// With this value, fresh for this long (`None`: not cached), and whether the store
    /// kept it.
    Fresh(T, Option<Duration>, bool),
    /// With the fallback, the factory having failed.
    FellBack,
}

impl Repository {
    /// The value of a missing or expired key: computed by this caller's task, or by the
    /// caller already computing it; `stale` is the fail-safe fallback, if any.
    pub(super) async fn compute_entry<T, E, F, Fut>(
        &self,
        key: String,
        options: &RememberOptions,
        compute: F,
        mut stale: Option<Cached<T>>,
        report: &Report,
    ) -> std::result::Result<Entry<T>, Failed<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + std::fmt::Display + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Computed<T>, E>> + Send + 'static,
    {
        if self.flights().is_computing(&key) {
            return Err(self.context(&key)(super::reentrant()).into());
        }
        let soft_timeout = options.soft_timeout.filter(|_| stale.is_some());
        // A waiter waits no longer than its own options allow, whoever leads.
        let wait_limit = soft_timeout.or(options.hard_timeout);
        loop {
            let slot = match self.flights().join(&key) {
                Role::Leader(leader) => {
                    // Another caller may have stored the value between our read and our lead.
                    if let Ok(Some(cached)) = self.read_cached::<T>(&key, options).await
                        && cached.is_fresh(envelope::now())
                    {
                        drop(leader);
                        let source = cached.fresh_source();
                        return Ok(cached.entry(source, envelope::now()));
                    }
                    let lock = match options.distributed {
                        Some((lock_ttl, wait)) => {
                            match self
                                .lock_across_processes::<T>(&key, options, lock_ttl, wait)
                                .await
                            {
                                Err(e) if options.propagate_cache_errors => return Err(e.into()),
                                // The lock's store failed: compute in this process alone.
                                Err(e) => {
                                    self.survived(Operation::Get, Some(&key), &e);
                                    None
                                }
                                Ok(Across::Locked(lock)) => Some(lock),
                                Ok(Across::Stored(cached)) => {
                                    drop(leader);
                                    let source = cached.fresh_source();
                                    return Ok(cached.entry(source, envelope::now()));
                                }
                                // Waited long enough: the fallback, else compute here.
                                Ok(Across::TimedOut) => match usable(stale.take()) {
                                    Some(stale) => {
                                        drop(leader);
                                        return Ok(stale.entry(Source::Stale, envelope::now()));
                                    }
                                    None => None,
                                },
                            }
                        }
                        None => None,
                    };
                    let fallback = stale.as_ref().and_then(Cached::fallback);
                    let task = self.clone().lead(
                        leader,
                        key.clone(),
                        options.clone(),
                        compute,
                        fallback,
                        lock,
                    );
                    return self
                        .follow(tokio::spawn(task), &key, soft_timeout, stale, report)
                        .await;
                }
                Role::Waiter(slot) => slot,
            };
            let outcome = match wait_limit {
                Some(limit) => match tokio::time::timeout(limit, flight::wait(slot)).await {
                    Ok(outcome) => outcome,
                    Err(_) => return self.fall_back(stale, &key, Some(limit)),
                },
                None => flight::wait(slot).await,
            };
            let payload = match outcome {
                Some(Handoff::Value(payload)) => payload,
                Some(Handoff::Stale(payload)) => {
                    // This caller's own fallback if it is still usable, else the leader's (for
                    // a caller that asked for fail-safe).
                    if let Some(stale) = usable(stale) {
                        return Ok(stale.entry(Source::Stale, envelope::now()));
                    }
                    if options.fail_safe_max.is_none() {
                        return self.fall_back(None, &key, None);
                    }
                    match decode(self.serializer(), &payload) {
                        Ok(value) => {
                            return Ok(Entry {
                                value,
                                source: Source::Stale,
                                age: None,
                                expires_in: None,
                            });
                        }
                        Err(e) => {
                            self.survived(Operation::Get, Some(&key), &self.context(&key)(e));
                            return self.fall_back(None, &key, None);
                        }
                    }
                }
                Some(Handoff::Failed(failure)) => {
                    return match usable(stale) {
                        Some(stale) => Ok(stale.entry(Source::Stale, envelope::now())),
                        None => Err(Failed::Factory(failure.error(self.context(&key)))),
                    };
                }
                Some(Handoff::Absent) | None => continue,
            };
            match decode(self.serializer(), &payload) {
                Ok(value) => {
                    return Ok(Entry {
                        value,
                        source: Source::Computed,
                        age: Some(Duration::ZERO),
                        expires_in: None,
                    });
                }
                // The leader's value is not a `T` for this caller: it computes its own.
                Err(e) if !options.propagate_cache_errors => {
                    self.survived(Operation::Get, Some(&key), &self.context(&key)(e));
                }
                Err(e) => return Err(self.context(&key)(e).into()),
            }
        }
    }

    /// Wait for this caller's task, up to `soft_timeout` when there is a fallback.
    pub(super) async fn follow<T, E>(
        &self,
        mut task: tokio::task::JoinHandle<std::result::Result<Led<T>, E>>,
        key: &str,
        soft_timeout: Option<Duration>,
        stale: Option<Cached<T>>,
        report: &Report,
    ) -> std::result::Result<Entry<T>, Failed<E>>
    where
        E: From<Error>,
    {
        let joined = match soft_timeout {
            Some(limit) => match tokio::time::timeout(limit, &mut task).await {
                Ok(joined) => joined,
                // The task goes on, and stores its value when it has one.
                Err(_) => return self.fall_back(stale, key, Some(limit)),
            },
            None => task.await,
        };
        match joined {
            Ok(Ok(Led::Fresh(value, expires_in, stored))) => {
                report.stored.store(stored, Ordering::Relaxed);
                Ok(Entry {
                    value,
                    source: Source::Computed,
                    age: Some(Duration::ZERO),
                    expires_in,
                })
            }
            Ok(Ok(Led::FellBack)) => self.fall_back(stale, key, None),
            Ok(Err(e)) => Err(Failed::Factory(e)),
            // As if it had run in the caller: the caller it ran for panics with its payload
            // (and its waiters, handed nothing, compute their own).
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(e) => Err(Failed::Factory(
                Error::new(
                    ErrorKind::Remember,
                    format!("the factory's task ended without a value: {e}"),
                )
                .with_store(self.name())
                .with_key(self.given_key(key))
                .into(),
            )),
        }
    }

    /// Run `compute` as the leader of `key`'s flight: store and hand out its value, or, if it
    /// fails or times out, keep `fallback` for the fail-safe throttle and hand that out.
    pub(super) async fn lead<T, E, F, Fut>(
        self,
        leader: Leader,
        key: String,
        options: RememberOptions,
        compute: F,
        fallback: Option<Fallback>,
        lock: Option<crate::Lock>,
    ) -> std::result::Result<Led<T>, E>
    where
        T: Serialize + Send + 'static,
        E: From<Error> + std::fmt::Display + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Computed<T>, E>> + Send + 'static,
    {
        let computed = leader
            .compute(CatchPanic(Box::pin(async {
                within_hard_timeout(&options, compute()).await
            })))
            .await;
        let computed = match computed {
            Ok(computed) => computed,
            Err(panic) => {
                // The waiters are told at once, as of a failure (each would otherwise lead in
                // turn, one run of the factory after another); the caller it ran for panics.
                let failed = Error::new(ErrorKind::Remember, "the factory panicked")
                    .with_store(self.name())
                    .with_key(self.given_key(&key));
                leader.finish(Handoff::Failed(Failure::of(&failed, None)));
                if let Some(lock) = lock {
                    let _ = lock.release().await;
                }
                std::panic::resume_unwind(panic);
            }
        };
        let led = self
            .finish_lead(leader, &key, &options, computed, fallback)
            .await;
        if let Some(lock) = lock {
            // Released once the value is stored (or the fallback kept), so that the next
            // process to take it finds the value; if this fails, the lock expires by itself.
            let _ = lock.release().await;
        }
        led
    }

    /// Store what the factory computed, or keep the fallback, and hand it out.
    pub(super) async fn finish_lead<T, E>(
        &self,
        leader: Leader,
        key: &str,
        options: &RememberOptions,
        computed: std::result::Result<Computed<T>, E>,
        fallback: Option<Fallback>,
    ) -> std::result::Result<Led<T>, E>
    where
        T: Serialize,
        E: From<Error> + std::fmt::Display + 'static,
    {
        match computed {
            Ok(computed) => self.store_computed(leader, key, options, computed).await,
            Err(e) => match fallback {
                Some(fallback)
                    if options.fail_safe_max.is_some()
                        && envelope::now() < fallback.header.fail_safe_until =>
                {
                    self.keep_fallback(key, options, &fallback).await;
                    leader.finish(Handoff::Stale(fallback.payload.into()));
                    Ok(Led::FellBack)
                }
                _ => {
                    leader.finish(Handoff::Failed(Failure::of(&e, options.share_errors)));
                    Err(e)
                }
            },
        }
    }

    /// Store what the factory computed, as the options and the factory say, and hand it to
    /// the waiters.
    pub(super) async fn store_computed<T, E>(
        &self,
        leader: Leader,
        key: &str,
        options: &RememberOptions,
        computed: Computed<T>,
    ) -> std::result::Result<Led<T>, E>
    where
        T: Serialize,
        E: From<Error> + std::fmt::Display,
    {
        let Computed {
            value,
            keep,
            fail_safe,
        } = computed;
        let payload = match encode(self.serializer(), &value) {
            Ok(payload) => payload,
            Err(e) => {
                // The caller has its value; the cache cannot keep it, and the waiters, who
                // would have decoded it, compute their own.
                self.survived(Operation::Put, Some(key), &self.context(key)(e));
                drop(leader);
                return Ok(Led::Fresh(value, None, false));
            }
        };
        let ttl = match keep {
            Keep::AsOptions => Some(jittered(options.ttl, options.jitter)),
            Keep::For(ttl) => Some(ttl).filter(|ttl| *ttl >= Duration::from_millis(1)),
            Keep::Not => None,
        };
        let mut stored = false;
        if let Some(ttl) = ttl {
            let (bytes, lifetime) = self.stored_form(options, &payload, ttl, fail_safe);
            // The caller has its value whether or not the cache keeps it.
            stored = self
                .put_or_keep(key, &bytes, lifetime, options.cache_timeout)
                .await;
        }
        leader.finish(Handoff::Value(payload.into()));
        Ok(Led::Fresh(value, ttl, stored))
    }

    /// Store `bytes` under the store key `key` for `lifetime`; if the store fails, observe
    /// the failure and keep the bytes in this process if the store can
    /// ([`Store::keep_after_failed_write`](crate::Store::keep_after_failed_write)). Whether
    /// the store kept them.
    pub(super) async fn put_or_keep(
        &self,
        key: &str,
        bytes: &[u8],
        lifetime: Duration,
        timeout: Option<Duration>,
    ) -> bool {
        let put = self.store().put(key, bytes, Some(store_ttl(lifetime)));
        match within_cache_timeout(timeout, put).await {
            Ok(()) => true,
            Err(e) => {
                self.survived(Operation::Put, Some(key), &self.context(key)(e));
                self.store()
                    .keep_after_failed_write(key, bytes, Some(lifetime));
                false
            }
        }
    }

    /// The bytes to store for `payload`, fresh for `ttl` and a fallback up to the options'
    /// fail-safe window (or the value's own, if shorter) after, and how long the store keeps
    /// them.
    pub(super) fn stored_form(
        &self,
        options: &RememberOptions,
        payload: &[u8],
        ttl: Duration,
        value_fail_safe: Option<Duration>,
    ) -> (Vec<u8>, Duration) {
        if !options.needs_envelope() {
            return (payload.to_vec(), ttl);
        }
        let fail_safe = options
            .fail_safe_max
            .unwrap_or_default()
            .min(value_fail_safe.unwrap_or(Duration::MAX));
        let now = envelope::now();
        let expires_at = envelope::after(now, ttl);
        let header = Header {
            expires_at,
            written_at: now,
            fail_safe_until: envelope::after(expires_at, fail_safe),
            stale: false,
            expired_at: expires_at,
        };
        (
            envelope::wrap(&header, payload),
            ttl.saturating_add(fail_safe),
        )
    }

    /// Store `fallback` as the value for the fail-safe throttle, marked as a fallback.
    pub(super) async fn keep_fallback(
        &self,
        key: &str,
        options: &RememberOptions,
        fallback: &Fallback,
    ) {
        let now = envelope::now();
        let until =
            envelope::after(now, options.fail_safe_throttle).min(fallback.header.fail_safe_until);
        if until <= now {
            return;
        }
        let header = Header {
            expires_at: until,
            stale: true,
            ..fallback.header
        };
        let lifetime = envelope::between(now, fallback.header.fail_safe_until);
        // A failing store only means the next caller tries the factory sooner.
        let bytes = envelope::wrap(&header, &fallback.payload);
        self.put_or_keep(key, &bytes, lifetime, options.cache_timeout)
            .await;
    }
}

/// `stale` if its fail-safe window is still open.
pub(super) fn usable<T>(stale: Option<Cached<T>>) -> Option<Cached<T>> {
    stale.filter(|stale| stale.can_fall_back(envelope::now()))
}

impl Repository {
    /// The fail-safe fallback, as the entry a caller gets; without one (or once its window has
    /// closed), the factory's failure: a timeout if the caller stopped waiting after `waited`.
    fn fall_back<T, E: From<Error>>(
        &self,
        stale: Option<Cached<T>>,
        stored: &str,
        waited: Option<Duration>,
    ) -> std::result::Result<Entry<T>, Failed<E>> {
        if let Some(stale) = usable(stale) {
            return Ok(stale.entry(Source::Stale, envelope::now()));
        }
        let error = match waited {
            Some(limit) => Error::new(
                ErrorKind::Timeout,
                format!(
                    "the value was still being computed after {limit:?}, and there is no fallback"
                ),
            ),
            None => Error::new(
                ErrorKind::Remember,
                "the factory failed and there is no fallback",
            ),
        };
        Err(Failed::Factory(self.context(stored)(error).into()))
    }
}

/// A future, with a panic while polling it caught as its output.
struct CatchPanic<F>(std::pin::Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // The future is not polled again after a panic: nothing sees it half-changed.
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}
