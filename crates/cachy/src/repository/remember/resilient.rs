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

use super::cached::Cached;
use super::options::{Computed, Entry, RememberOptions, Source};
use crate::codec::decode;
use crate::envelope::{self, Millis, Opened};
use crate::error::{Error, ErrorKind, Result};
use crate::expiry::MAX_TTL_SECONDS;
use crate::flight::Role;
use crate::observe::{Operation, Outcome};
use crate::repository::Repository;

/// What a resilient `remember` call came to beyond its result: whether the value it
/// computed was stored (for its event), and whether it failed because the factory did.
#[derive(Default)]
pub(crate) struct Report {
    /// The call failed because the factory did (here, or in the caller it waited for), or
    /// was too slow, rather than the cache: `#[cached]` must not run the function again.
    pub(crate) factory_failed: AtomicBool,
    /// The value this call computed was stored.
    pub(super) stored: AtomicBool,
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
    /// # Panics
    ///
    /// If `compute` panics, this call panics with its payload, as if it had run `compute`
    /// itself; concurrent callers of the key waiting for it compute their own.
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
            options.check().map_err(self.given_context(key))?;
            let versioned = options.versioned(key);
            let key = match self.store_key(&versioned).await {
                Ok(key) => key,
                Err(e) if options.propagate_cache_errors => {
                    return Err(self.given_context(key)(e).into());
                }
                // The tags' namespace cannot be read: nothing can be cached.
                Err(e) => {
                    self.survived_given(Operation::Get, Some(key), &self.given_context(key)(e));
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
        let read = within_cache_timeout(options.cache_timeout, self.store().get(key)).await;
        match read.map_err(self.context(key))? {
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

/// `computing`, abandoned with an [`ErrorKind::Timeout`] error after the options' hard
/// timeout.
/// The store call `call`, failing with a `Timeout` error after `limit`, if any.
pub(super) async fn within_cache_timeout<T>(
    limit: Option<Duration>,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Timeout,
                format!("the cache did not answer within the cache timeout of {limit:?}"),
            ))
        }),
        None => call.await,
    }
}

pub(super) async fn within_hard_timeout<T, E: From<Error>>(
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
