//! The public types of resilient `remember`: [`RememberOptions`], [`Computed`], [`Entry`]
//! and [`Source`].

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::flight::ShareErrors;

/// How [`Repository::remember_with`](crate::Repository::remember_with) keeps a value and
/// what it does when the value's source is slow or failing. Cheap to clone; build it once
/// and reuse it.
///
/// ```
/// use std::time::Duration;
/// use cachy::RememberOptions;
///
/// let options = RememberOptions::new(Duration::from_secs(60))
///     .fail_safe(Duration::from_secs(3600))          // serve the last value up to an hour
///     .fail_safe_throttle(Duration::from_secs(30))   // then retry the source every 30 s
///     .soft_timeout(Duration::from_millis(100))      // a caller with a stale value waits 100 ms
///     .hard_timeout(Duration::from_secs(2))          // the source gets 2 s at most
///     .eager_refresh(0.8)                            // refresh in the background after 48 s
///     .jitter(0.1);                                  // and keep each value 60–66 s
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RememberOptions {
    pub(crate) ttl: Duration,
    pub(crate) fail_safe_max: Option<Duration>,
    pub(crate) fail_safe_throttle: Duration,
    pub(crate) soft_timeout: Option<Duration>,
    pub(crate) hard_timeout: Option<Duration>,
    pub(crate) eager_refresh: Option<f64>,
    pub(crate) jitter: Option<f64>,
    /// The lock's lifetime and how long other processes wait for the value.
    pub(crate) distributed: Option<(Duration, Duration)>,
    /// Whether waiters get copies of a failed computation's error.
    pub(crate) share_errors: Option<ShareErrors>,
    /// Whether a failing cache fails the call instead of being computed around.
    pub(crate) propagate_cache_errors: bool,
    /// The version of the values, kept in their key.
    pub(crate) version: Option<u64>,
    /// The longest one store call waits.
    pub(crate) cache_timeout: Option<Duration>,
}

/// The key of `key`'s values of `version`: see [`RememberOptions::version`].
pub(crate) fn versioned_key(key: &str, version: u64) -> String {
    format!("cachy:v{version}:{key}")
}

/// How long a fail-safe fallback is served before the source is tried again, unless set.
const DEFAULT_FAIL_SAFE_THROTTLE: Duration = Duration::from_secs(30);

impl RememberOptions {
    /// Keep computed values fresh for `ttl` (at least a millisecond).
    pub fn new(ttl: Duration) -> Self {
        RememberOptions {
            ttl,
            fail_safe_max: None,
            fail_safe_throttle: DEFAULT_FAIL_SAFE_THROTTLE,
            soft_timeout: None,
            hard_timeout: None,
            eager_refresh: None,
            jitter: None,
            distributed: None,
            share_errors: None,
            propagate_cache_errors: false,
            version: None,
            cache_timeout: None,
        }
    }

    /// Keep computed values fresh for `minutes` minutes.
    pub fn minutes(minutes: u64) -> Self {
        Self::new(Duration::from_secs(minutes.saturating_mul(60)))
    }

    /// Fail-safe: keep each value for `max` after it expires, as a fallback served when the
    /// factory fails (returns `Err`) or times out. Without a fallback the error is returned
    /// and nothing is cached.
    pub fn fail_safe(mut self, max: Duration) -> Self {
        self.fail_safe_max = Some(max);
        self
    }

    /// How long a fallback is served, once the factory failed, before the factory is tried
    /// again (default 30 s), so that a failing source is not hammered.
    pub fn fail_safe_throttle(mut self, throttle: Duration) -> Self {
        self.fail_safe_throttle = throttle;
        self
    }

    /// A caller that has an expired value (see [`fail_safe`](Self::fail_safe)) waits at most
    /// this long for the factory, then gets the expired value while the factory keeps running
    /// in the background and updates the cache when it is done.
    pub fn soft_timeout(mut self, timeout: Duration) -> Self {
        self.soft_timeout = Some(timeout);
        self
    }

    /// The factory is abandoned after this long: its callers get the fail-safe fallback if
    /// there is one, else an [`ErrorKind::Timeout`] error.
    pub fn hard_timeout(mut self, timeout: Duration) -> Self {
        self.hard_timeout = Some(timeout);
        self
    }

    /// Each store call of this `remember` (reading the value, writing it, keeping a
    /// fallback) waits at most this long; past it, the call is a failure of kind
    /// [`ErrorKind::Timeout`], observed as any other, and the caller goes on as after one:
    /// it computes the value, or returns the value it has without waiting for the write. A
    /// slow store then costs a request at most this long per call, however long the store's
    /// own timeouts are. (Distributed locks keep their own waits.)
    pub fn cache_timeout(mut self, timeout: Duration) -> Self {
        self.cache_timeout = Some(timeout);
        self
    }

    /// Past this fraction of a value's lifetime (0.01 to 0.99), the next hit returns the
    /// value at once and starts one background refresh; no caller waits for it.
    pub fn eager_refresh(mut self, fraction: f64) -> Self {
        self.eager_refresh = Some(fraction);
        self
    }

    /// Keep each value up to this share of the lifetime longer (0 to 1; 0.1 adds up to
    /// 10 %), chosen at random, so that keys written together do not expire together.
    pub fn jitter(mut self, share: f64) -> Self {
        self.jitter = Some(share);
        self
    }

    /// Single flight across processes: on a miss, one caller in all the processes sharing the
    /// store computes the value, holding a lock for at most `lock_ttl`; the others wait up to
    /// `wait` for the value (not for the lock, which they would then redo the work under),
    /// then fall back to the fail-safe value if there is one, or compute it themselves.
    pub fn distributed(mut self, lock_ttl: Duration, wait: Duration) -> Self {
        self.distributed = Some((lock_ttl, wait));
        self
    }

    /// When the computation fails, the callers that waited for it get a copy of its error,
    /// as the caller that ran it does, when that error is an `E`. Without this, they get an
    /// [`ErrorKind::Remember`] error carrying its message (a cachy [`Error`] is always
    /// shared). `#[cached]` shares the error of a function returning `Result<T, E>` whenever
    /// `E` is `Clone + Send + Sync`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cachy::RememberOptions;
    ///
    /// #[derive(Debug, Clone)]
    /// enum AppError {
    ///     NotFound,
    ///     Cache(String),
    /// }
    ///
    /// impl From<cachy::Error> for AppError {
    ///     fn from(e: cachy::Error) -> Self {
    ///         AppError::Cache(e.to_string())
    ///     }
    /// }
    ///
    /// let options = RememberOptions::new(Duration::from_secs(60)).share_errors::<AppError>();
    /// ```
    pub fn share_errors<E: Clone + Send + Sync + 'static>(mut self) -> Self {
        self.share_errors = Some(ShareErrors::of::<E>());
        self
    }

    /// Return the cache's failures as errors instead of computing around them.
    ///
    /// By default a resilient `remember` never fails because of the cache: when the store
    /// cannot be read, holds a value that no longer decodes as `T`, cannot be written, or
    /// the value cannot be encoded, the caller gets the factory's value (or the fail-safe
    /// fallback if the factory fails too); the failure is observed as an
    /// [`Outcome::Failed`](crate::observe::Outcome::Failed) event of the operation that
    /// failed, counted in [`Stats::errors`](crate::observe::Stats::errors) and logged at
    /// `WARN` (at most once every ten seconds a store). With this option, a failing read is
    /// returned as the error instead, as plain [`remember`](crate::Repository::remember)
    /// does (a failing write still is not: the caller has its value).
    pub fn propagate_cache_errors(mut self) -> Self {
        self.propagate_cache_errors = true;
        self
    }

    /// Keep the values of version `version` apart from those of every other version and of
    /// no version: under the key `cachy:v{version}:{key}`. Raise it when the type of the
    /// values changes, so that during a rolling deploy the old code and the new each read
    /// only what they wrote, and neither overwrites the other's items (keys starting with
    /// `cachy:` are cachy's own, as for locks). For a whole store, set its `version` (or
    /// `namespace`) option instead.
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
    /// let v1 = RememberOptions::new(Duration::from_secs(60));
    /// let v2 = v1.clone().version(2);
    /// let old: u32 = cache.remember_with("price", &v1, || async { Ok::<_, cachy::Error>(990) }).await?;
    /// let new: String = cache
    ///     .remember_with("price", &v2, || async { Ok::<_, cachy::Error>("9.90 EUR".to_owned()) })
    ///     .await?;
    /// assert_eq!((old, new.as_str()), (990, "9.90 EUR"));
    /// assert_eq!(cache.get::<u32>("price").await?, Some(990)); // version 1 is still there
    /// # Ok(())
    /// # }
    /// ```
    pub fn version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// `key` under this call's version, if it has one.
    pub(crate) fn versioned<'k>(&self, key: &'k str) -> std::borrow::Cow<'k, str> {
        match self.version {
            Some(version) => std::borrow::Cow::Owned(versioned_key(key, version)),
            None => std::borrow::Cow::Borrowed(key),
        }
    }

    /// Whether values need the envelope that records their logical expiry.
    pub(crate) fn needs_envelope(&self) -> bool {
        self.fail_safe_max.is_some() || self.eager_refresh.is_some()
    }

    /// An error naming the first option out of range.
    pub(crate) fn check(&self) -> Result<()> {
        let fraction =
            |name: &str, value: Option<f64>, range: std::ops::RangeInclusive<f64>| match value {
                Some(v) if !(v.is_finite() && range.contains(&v)) => Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "remember option `{name}` must be from {} to {}, not {v}",
                        range.start(),
                        range.end()
                    ),
                )),
                _ => Ok(()),
            };
        if self.ttl < Duration::from_millis(1) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "remember option `ttl` must be at least a millisecond",
            ));
        }
        fraction("eager_refresh", self.eager_refresh, 0.01..=0.99)?;
        fraction("jitter", self.jitter, 0.0..=1.0)
    }
}

/// What a factory of [`Repository::remember_entry`](crate::Repository::remember_entry)
/// computed: the value, and how long to keep it when that depends on the value.
///
/// ```
/// use std::time::Duration;
/// use cachy::Computed;
///
/// let found: Computed<Option<String>> = Computed::new(Some("ann".to_owned()));
/// let not_found = Computed::new(None::<String>).ttl(Duration::from_secs(10)); // negative caching
/// let volatile = Computed::new(Some("draft".to_owned())).uncached();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Computed<T> {
    pub(crate) value: T,
    pub(crate) keep: Keep,
    /// The longest this value may serve as a fail-safe fallback past its expiry, if shorter
    /// than the options' window.
    pub(crate) fail_safe: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Keep {
    /// The options' lifetime.
    AsOptions,
    /// This lifetime instead.
    For(Duration),
    /// Return the value, store nothing.
    Not,
}

impl<T> Computed<T> {
    /// `value`, kept as the options say.
    pub fn new(value: T) -> Self {
        Computed {
            value,
            keep: Keep::AsOptions,
            fail_safe: None,
        }
    }

    /// Keep this value for `ttl` instead of the options' lifetime (a shorter one for a
    /// negative result, say).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.keep = Keep::For(ttl);
        self
    }

    /// Return this value without caching it.
    pub fn uncached(mut self) -> Self {
        self.keep = Keep::Not;
        self
    }

    /// Serve this value as a fail-safe fallback at most `max` after it expires (never
    /// longer than the options' [`fail_safe`](RememberOptions::fail_safe) window);
    /// `Duration::ZERO`: never serve it once expired. For a value that says itself how
    /// stale it may be served, as an HTTP response's `must-revalidate` does.
    pub fn fail_safe(mut self, max: Duration) -> Self {
        self.fail_safe = Some(max);
        self
    }
}

/// Where a value returned by [`Repository::remember_entry`](crate::Repository::remember_entry)
/// came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The factory computed it for this call (or for a concurrent one this call waited for).
    Computed,
    /// The cache held it, fresh.
    Cache,
    /// A fail-safe fallback: an expired value served because the factory failed, timed out
    /// or exceeded the soft timeout.
    Stale,
}

/// A value of [`Repository::remember_entry`](crate::Repository::remember_entry), with where
/// it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
    /// How long ago it was computed, when the cache knows (values written with fail-safe or
    /// eager refresh); zero for a value computed now.
    pub age: Option<Duration>,
    /// How long it stays fresh, when the cache knows (as for `age`).
    pub expires_in: Option<Duration>,
}
