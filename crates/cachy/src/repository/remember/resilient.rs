//! Resilient `remember`: fail-safe fallbacks, factory timeouts, eager refresh, jitter, a
//! lifetime chosen by the factory, and loading many misses at once.
//!
//! The factory of one key runs in a task of its own, which holds the key's single flight:
//! a caller that stops waiting (soft timeout) leaves it running, and it stores its value and
//! hands it to every waiter when it ends. Values that need a logical expiry (fail-safe,
//! eager refresh) are stored in an [envelope](crate::envelope), for the logical lifetime
//! plus the fail-safe window; every other value is stored as `remember` stores it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Failed;
use super::across::Across;
use super::cached::{Cached, Fallback};
use super::options::{Computed, Entry, Keep, RememberOptions, Source};
use crate::codec::{decode, encode};
use crate::envelope::{self, Header, Millis, Opened};
use crate::error::{Error, ErrorKind, Result};
use crate::expiry::MAX_TTL_SECONDS;
use crate::flight::{self, Failure, Handoff, Leader, Role};
use crate::observe::{Operation, Outcome};
use crate::repository::Repository;

/// How the task computing a key ended, when it did not fail.
enum Led<T> {
    /// With this value, fresh for this long (`None`: not cached), and whether the store
    /// kept it.
    Fresh(T, Option<Duration>, bool),
    /// With the fallback, the factory having failed.
    FellBack,
}

/// What a resilient `remember` call came to beyond its result: whether the value it
/// computed was stored (for its event), and whether it failed because the factory did.
#[derive(Default)]
pub(crate) struct Report {
    /// The call failed because the factory did (here, or in the caller it waited for), or
    /// was too slow, rather than the cache: `#[cached]` must not run the function again.
    pub(crate) factory_failed: AtomicBool,
    /// The value this call computed was stored.
    stored: AtomicBool,
}

impl Report {
    /// The call's outcome, from its result.
    fn outcome<T, E: From<Error>>(
        &self,
        result: std::result::Result<&Entry<T>, &Failed<E>>,
    ) -> Outcome {
        match result {
            Ok(entry) => match entry.source {
                Source::Cache => Outcome::Hit,
                Source::Computed if self.stored.load(Ordering::Relaxed) => Outcome::Computed,
                Source::Computed => Outcome::Miss,
                Source::Stale => Outcome::Stale,
            },
            Err(failed) => failed.outcome(),
        }
    }
}

/// A uniformly random number in `[0, 1)`, from the std hasher's random keys.
fn random_unit() -> f64 {
    use std::hash::BuildHasher;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) ^ envelope::now();
    let bits = std::collections::hash_map::RandomState::new().hash_one(seed);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// `ttl`, up to `jitter` of it longer.
pub(super) fn jittered(ttl: Duration, jitter: Option<f64>) -> Duration {
    match jitter {
        Some(share) if share > 0.0 => {
            Duration::try_from_secs_f64(ttl.as_secs_f64() * (1.0 + share * random_unit()))
                .unwrap_or(ttl)
        }
        _ => ttl,
    }
}

/// A store TTL of at least `lifetime`: whole seconds, at least one, at most the longest.
pub(super) fn store_ttl(lifetime: Duration) -> u64 {
    let seconds = lifetime
        .as_secs()
        .saturating_add(u64::from(lifetime.subsec_nanos() > 0));
    seconds.clamp(1, MAX_TTL_SECONDS)
}

impl Repository {
    /// [`remember`](Self::remember) with [`RememberOptions`]: fail-safe fallbacks, factory
    /// timeouts, eager refresh and jitter. The value under `key` if it is fresh; else the
    /// value `compute` returns, stored for the options' lifetime. Concurrent callers of one
    /// key in this process share one run of `compute`, background refreshes included.
    ///
    /// `compute` runs in a task of its own (so that it can finish after a soft timeout):
    /// it must be `Send + 'static`, as for `tokio::spawn`.
    ///
    /// A failure to store the computed value does not fail the call: the caller gets the
    /// value, and the next call computes again.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// use std::time::Duration;
    /// use cachy::RememberOptions;
    ///
    /// let cache = cachy::CacheManager::from_value(serde_json::json!({
    ///     "stores": { "dict": { "driver": "dict" } }
    /// }))?;
    /// let options = RememberOptions::new(Duration::from_secs(60))
    ///     .fail_safe(Duration::from_secs(3600))
    ///     .soft_timeout(Duration::from_millis(100));
    /// let price: u32 = cache
    ///     .remember_with("price:42", &options, || async { Ok::<_, cachy::Error>(990) })
    ///     .await?;
    /// assert_eq!(price, 990);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remember_with<T, E, F, Fut>(
        &self,
        key: &str,
        options: &RememberOptions,
        compute: F,
    ) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + std::fmt::Display + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        let computed = move || async move { compute().await.map(Computed::new) };
        Ok(self.remember_entry(key, options, computed).await?.value)
    }

    /// [`remember_with`](Self::remember_with), with a factory that may choose the value's
    /// lifetime ([`Computed::ttl`], or [`Computed::uncached`]), returning the value with
    /// where it came from ([`Source`]) and its age.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// use std::time::Duration;
    /// use cachy::{Computed, RememberOptions, Source};
    ///
    /// let cache = cachy::CacheManager::from_value(serde_json::json!({
    ///     "stores": { "dict": { "driver": "dict" } }
    /// }))?;
    /// let options = RememberOptions::new(Duration::from_secs(3600));
    /// let lookup = || async {
    ///     let user: Option<String> = None; // not found in the database
    ///     Ok::<_, cachy::Error>(match user {
    ///         Some(user) => Computed::new(Some(user)),
    ///         None => Computed::new(None).ttl(Duration::from_secs(10)), // negative caching
    ///     })
    /// };
    /// let first = cache.remember_entry("user:9", &options, lookup).await?;
    /// assert_eq!((first.value, first.source), (None::<String>, Source::Computed));
    /// let second = cache.remember_entry("user:9", &options, lookup).await?;
    /// assert_eq!(second.source, Source::Cache);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remember_entry<T, E, F, Fut>(
        &self,
        key: &str,
        options: &RememberOptions,
        compute: F,
    ) -> std::result::Result<Entry<T>, E>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + std::fmt::Display + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Computed<T>, E>> + Send + 'static,
    {
        self.remember_entry_reporting(key, options, compute, &Report::default())
            .await
    }

    /// [`remember_entry`](Self::remember_entry), telling `report` what the call came to (a
    /// factory that failed, here or in another caller, must not run again for `#[cached]`).
    pub(crate) async fn remember_entry_reporting<T, E, F, Fut>(
        &self,
        key: &str,
        options: &RememberOptions,
        compute: F,
        report: &Report,
    ) -> std::result::Result<Entry<T>, E>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + std::fmt::Display + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Computed<T>, E>> + Send + 'static,
    {
        let work = async move {
            options.check().map_err(self.context(key))?;
            let key = match self.store_key(key).await {
                Ok(key) => key,
                Err(e) if options.propagate_cache_errors => return Err(e.into()),
                // The tags' namespace cannot be read: nothing can be cached.
                Err(e) => {
                    self.survived(Operation::Get, Some(key), &self.context(key)(e));
                    return Box::pin(self.compute_uncached(options, compute)).await;
                }
            };
            let cached = match self.read_cached::<T>(&key, options).await {
                Ok(cached) => cached,
                Err(e) if options.propagate_cache_errors => return Err(e.into()),
                // A failing read or a value that no longer decodes: computed (and overwritten).
                Err(e) => {
                    self.survived(Operation::Get, Some(&key), &e);
                    None
                }
            };
            let now = envelope::now();
            let stale = match cached {
                Some(cached) if cached.is_fresh(now) => {
                    let source = cached.fresh_source();
                    if source == Source::Cache && refresh_is_due(&cached, options, now) {
                        let written_at = cached.header.map(|h| h.written_at);
                        self.refresh_in_background(key.into_owned(), options, compute, written_at);
                    }
                    return Ok(cached.entry(source, now));
                }
                Some(cached) => Some(cached).filter(|c| c.can_fall_back(now)),
                None => None,
            };
            // Boxed: a miss's future is large and deep, and a hit never makes it.
            Box::pin(self.compute_entry(key.into_owned(), options, compute, stale, report)).await
        };
        let observation = self.start_observation(Operation::Remember, Some(key));
        let observed = self.observe_until(observation, work, |result, record| {
            let outcome = report.outcome(result);
            #[cfg(feature = "tracing")]
            if outcome == Outcome::Stale {
                tracing::debug!(
                    store = self.name(),
                    key = crate::observe::shown_key(key),
                    "fail-safe: serving an expired value"
                );
            }
            record(Some(key), outcome);
        });
        observed.await.map_err(|failed| {
            if let Failed::Factory(_) = failed {
                report.factory_failed.store(true, Ordering::Relaxed);
            }
            failed.into_error()
        })
    }

    /// The value of `compute`, without the cache (which failed), within the hard timeout.
    async fn compute_uncached<T, E, F, Fut>(
        &self,
        options: &RememberOptions,
        compute: F,
    ) -> std::result::Result<Entry<T>, Failed<E>>
    where
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Computed<T>, E>>,
    {
        let computed = within_hard_timeout(options, compute()).await;
        Ok(Entry {
            value: computed.map_err(Failed::Factory)?.value,
            source: Source::Computed,
            age: Some(Duration::ZERO),
            expires_in: None,
        })
    }

    /// The value under the store key `key`, with its envelope's header bounded by the
    /// reader's `options` (see [`Cached::bounded_by`]).
    pub(super) async fn read_cached<T: DeserializeOwned>(
        &self,
        key: &str,
        options: &RememberOptions,
    ) -> Result<Option<Cached<T>>> {
        match self.store().get(key).await.map_err(self.context(key))? {
            Some(bytes) => self.open_cached(key, bytes, options).map(Some),
            None => Ok(None),
        }
    }

    /// Stored `bytes` of the store key `key`, decoded, with their envelope's header bounded
    /// by the reader's `options`.
    pub(super) fn open_cached<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: &RememberOptions,
    ) -> Result<Cached<T>> {
        let (header, payload) = match envelope::open(&bytes) {
            Opened::Plain(payload) => (None, payload),
            Opened::Enveloped(header, payload) => (Some(header), payload),
        };
        let value = decode(self.serializer(), payload).map_err(self.context(key))?;
        let payload_start = bytes.len() - payload.len();
        let cached = Cached {
            value,
            header,
            bytes,
            payload_start,
        };
        Ok(cached.bounded_by(options))
    }

    /// Start one background run of `compute` for `key`, unless one is running or the value
    /// written at `written_at` was refreshed meanwhile.
    fn refresh_in_background<T, E, F, Fut>(
        &self,
        key: String,
        options: &RememberOptions,
        compute: F,
        written_at: Option<Millis>,
    ) where
        T: Serialize + Send + 'static,
        E: From<Error> + std::fmt::Display + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Computed<T>, E>> + Send + 'static,
    {
        if let Role::Leader(leader) = self.flights().join(&key) {
            let (repository, options) = (self.clone(), options.clone());
            tokio::spawn(async move {
                // Another refresh may have ended between our read and our lead.
                if repository.read_header(&key).await != written_at {
                    return;
                }
                // A failed refresh leaves the fresh value alone: no fallback to keep.
                drop(
                    repository
                        .lead(leader, key, options, compute, None, None)
                        .await,
                );
            });
        }
    }

    /// When the value under the store key `key` was written, if it has an envelope.
    async fn read_header(&self, key: &str) -> Option<Millis> {
        let bytes = self.store().get(key).await.ok()??;
        match envelope::open(&bytes) {
            Opened::Enveloped(header, _) => Some(header.written_at),
            Opened::Plain(_) => None,
        }
    }

    /// The value of a missing or expired key: computed by this caller's task, or by the
    /// caller already computing it; `stale` is the fail-safe fallback, if any.
    async fn compute_entry<T, E, F, Fut>(
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
                    Err(_) => return fall_back(stale, &key, Some(limit)),
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
                        return fall_back(None, &key, None);
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
                            return fall_back(None, &key, None);
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
    async fn follow<T, E>(
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
                Err(_) => return fall_back(stale, key, Some(limit)),
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
            Ok(Ok(Led::FellBack)) => fall_back(stale, key, None),
            Ok(Err(e)) => Err(Failed::Factory(e)),
            // The factory panicked or was cancelled.
            Err(e) => Err(Failed::Factory(
                Error::new(
                    ErrorKind::Remember,
                    format!("the factory's task ended without a value: {e}"),
                )
                .with_store(self.name())
                .with_key(key)
                .into(),
            )),
        }
    }

    /// Run `compute` as the leader of `key`'s flight: store and hand out its value, or, if it
    /// fails or times out, keep `fallback` for the fail-safe throttle and hand that out.
    async fn lead<T, E, F, Fut>(
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
            .compute(async { within_hard_timeout(&options, compute()).await })
            .await;
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
    async fn finish_lead<T, E>(
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
    async fn store_computed<T, E>(
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
        let Computed { value, keep } = computed;
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
            let (bytes, lifetime) = self.stored_form(options, &payload, ttl);
            // The caller has its value whether or not the cache keeps it.
            stored = self.put_or_keep(key, &bytes, lifetime).await;
        }
        leader.finish(Handoff::Value(payload.into()));
        Ok(Led::Fresh(value, ttl, stored))
    }

    /// Store `bytes` under the store key `key` for `lifetime`; if the store fails, observe
    /// the failure and keep the bytes in this process if the store can
    /// ([`Store::keep_after_failed_write`](crate::Store::keep_after_failed_write)). Whether
    /// the store kept them.
    pub(super) async fn put_or_keep(&self, key: &str, bytes: &[u8], lifetime: Duration) -> bool {
        match self
            .store()
            .put(key, bytes, Some(store_ttl(lifetime)))
            .await
        {
            Ok(()) => true,
            Err(e) => {
                self.survived(Operation::Put, Some(key), &self.context(key)(e));
                self.store()
                    .keep_after_failed_write(key, bytes, Some(lifetime));
                false
            }
        }
    }

    /// The bytes to store for `payload`, fresh for `ttl`, and how long the store keeps them.
    pub(super) fn stored_form(
        &self,
        options: &RememberOptions,
        payload: &[u8],
        ttl: Duration,
    ) -> (Vec<u8>, Duration) {
        if !options.needs_envelope() {
            return (payload.to_vec(), ttl);
        }
        let fail_safe = options.fail_safe_max.unwrap_or_default();
        let now = envelope::now();
        let expires_at = envelope::after(now, ttl);
        let header = Header {
            expires_at,
            written_at: now,
            fail_safe_until: envelope::after(expires_at, fail_safe),
            stale: false,
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
        self.put_or_keep(key, &envelope::wrap(&header, &fallback.payload), lifetime)
            .await;
    }
}

/// Whether a fresh value is old enough for an eager refresh.
fn refresh_is_due<T>(cached: &Cached<T>, options: &RememberOptions, now: Millis) -> bool {
    let (Some(fraction), Some(header)) = (options.eager_refresh, cached.header) else {
        return false;
    };
    let lifetime = header.expires_at.saturating_sub(header.written_at) as f64;
    now >= header
        .written_at
        .saturating_add((lifetime * fraction) as u64)
}

/// `stale` if its fail-safe window is still open.
pub(super) fn usable<T>(stale: Option<Cached<T>>) -> Option<Cached<T>> {
    stale.filter(|stale| stale.can_fall_back(envelope::now()))
}

/// The fail-safe fallback, as the entry a caller gets; without one (or once its window has
/// closed), the factory's failure: a timeout if the caller stopped waiting after `waited`.
fn fall_back<T, E: From<Error>>(
    stale: Option<Cached<T>>,
    key: &str,
    waited: Option<Duration>,
) -> std::result::Result<Entry<T>, Failed<E>> {
    if let Some(stale) = usable(stale) {
        return Ok(stale.entry(Source::Stale, envelope::now()));
    }
    let error = match waited {
        Some(limit) => Error::new(
            ErrorKind::Timeout,
            format!("the value was still being computed after {limit:?}, and there is no fallback"),
        ),
        None => Error::new(
            ErrorKind::Remember,
            "the factory failed and there is no fallback",
        ),
    };
    Err(Failed::Factory(error.with_key(key).into()))
}

/// `computing`, abandoned with an [`ErrorKind::Timeout`] error after the options' hard
/// timeout.
async fn within_hard_timeout<T, E: From<Error>>(
    options: &RememberOptions,
    computing: impl Future<Output = std::result::Result<T, E>>,
) -> std::result::Result<T, E> {
    match options.hard_timeout {
        Some(limit) => tokio::time::timeout(limit, computing)
            .await
            .unwrap_or_else(|_| {
                Err(E::from(Error::new(
                    ErrorKind::Timeout,
                    format!("the factory did not finish within its hard timeout of {limit:?}"),
                )))
            }),
        None => computing.await,
    }
}
