//! [`Repository`]: the typed cache API over one store.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode, encode, incremented_in_format};
use crate::error::{Error, Result};
use crate::expiry::Expiry;
use crate::flight::{self, Flights, Outcome, Role};
use crate::serializer::{IntegerFormat, Serializer};
use crate::store::{Store, Ttl, increment_by_swapping};

/// What `remember_with` does when the cache itself fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheErrors {
    /// Return the error (`remember`).
    Return,
    /// Compute as if uncached (`#[cached]`: memoization must not break the function).
    Bypass,
}

/// Why `remember_with` did not return a value. Where `compute` did not run, it is handed
/// back, so a caller that bypasses the cache can still run it.
pub(crate) enum Remembered<T, E, F> {
    /// The cache failed before `compute` ran.
    Cache(Error, F),
    /// Storing the computed value failed (the value is here).
    Store(Error, T),
    /// This caller's computation failed.
    Computed(E),
    /// The computation failed in the caller that ran it; this is its message.
    Elsewhere(Arc<str>, F),
}

/// The error a waiter gets when the computation it waited for failed elsewhere.
pub(crate) fn failed_elsewhere(message: &str) -> Error {
    Error::new(
        crate::ErrorKind::Remember,
        format!("computing the value failed in the caller that ran it: {message}"),
    )
}

impl<T, E: From<Error>, F> Remembered<T, E, F> {
    pub(crate) fn into_error(self) -> E {
        match self {
            Remembered::Cache(e, _) | Remembered::Store(e, _) => e.into(),
            Remembered::Computed(e) => e,
            Remembered::Elsewhere(message, _) => failed_elsewhere(&message).into(),
        }
    }
}

/// The default cache time, as in Python cachy: 60 minutes.
pub const DEFAULT_CACHE_MINUTES: i64 = 60;

/// The typed cache API over one store: what [`CacheManager::store`](crate::CacheManager::store)
/// returns.
///
/// Cheap to clone (an `Arc` inside); every clone shares the store, the serializer and the
/// default cache time. Values are anything `Serialize` / `DeserializeOwned`; reading a value as
/// the wrong type is an [`ErrorKind::Deserialize`](crate::ErrorKind::Deserialize) error, never
/// a panic and never a silent miss.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cachy::Result<()> {
/// use std::time::Duration;
/// use cachy::CacheManager;
///
/// let cache = CacheManager::from_value(serde_json::json!({
///     "stores": { "dict": { "driver": "dict" } }
/// }))?;
/// let repo = cache.store("dict")?;
///
/// repo.put("foo", &"bar", 10).await?; // ten minutes, as in Python cachy
/// assert_eq!(repo.get::<String>("foo").await?, Some("bar".to_owned()));
/// assert!(repo.has("foo").await?);
/// assert_eq!(repo.get_or("missing", "default".to_owned()).await?, "default");
///
/// assert!(repo.add("once", &1, Duration::from_secs(30)).await?);
/// assert!(!repo.add("once", &2, Duration::from_secs(30)).await?);
///
/// assert_eq!(repo.increment("hits").await?, 1);
/// assert_eq!(repo.increment_by("hits", 3).await?, 4);
/// assert_eq!(repo.decrement("hits").await?, 3);
///
/// let users: Vec<String> = repo
///     .remember("users", 10, || async { Ok::<_, cachy::Error>(vec!["ann".to_owned()]) })
///     .await?;
/// assert_eq!(users, ["ann"]);
///
/// assert_eq!(repo.pull::<String>("foo").await?, Some("bar".to_owned()));
/// assert!(!repo.has("foo").await?);
/// repo.forever("pi", &3.14).await?;
/// assert!(repo.forget("pi").await?);
/// repo.flush().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Repository {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    store: Arc<dyn Store>,
    serializer: Serializer,
    default_minutes: AtomicI64,
    flights: Flights,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("name", &self.inner.name)
            .field("default_minutes", &self.default_cache_time())
            .finish_non_exhaustive()
    }
}

impl Repository {
    /// A repository named `name` over `store`, writing values with `serializer`.
    pub fn new(name: impl Into<String>, store: Arc<dyn Store>, serializer: Serializer) -> Self {
        Repository {
            inner: Arc::new(Inner {
                name: name.into(),
                store,
                serializer,
                default_minutes: AtomicI64::new(DEFAULT_CACHE_MINUTES),
                flights: Flights::default(),
            }),
        }
    }

    /// The name of the store, as in the configuration.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The store under this repository.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The serializer this repository writes values with.
    pub fn serializer(&self) -> &Serializer {
        &self.inner.serializer
    }

    /// The default cache time in minutes (60 unless changed), used by the `#[cached]` macro.
    pub fn default_cache_time(&self) -> i64 {
        self.inner.default_minutes.load(Ordering::Relaxed)
    }

    /// Change the default cache time, in minutes, for every clone of this repository.
    pub fn set_default_cache_time(&self, minutes: i64) -> &Self {
        self.inner.default_minutes.store(minutes, Ordering::Relaxed);
        self
    }

    fn context<'a>(&'a self, key: &'a str) -> impl Fn(Error) -> Error + 'a {
        move |e| e.with_store(&self.inner.name).with_key(key)
    }

    /// The tagged cache over `names` (see [`crate::tags`]): one name, an array, a `Vec` or a
    /// tuple of names.
    pub fn tags(&self, names: impl crate::tags::TagNames) -> crate::tags::TaggedCache {
        crate::tags::TaggedCache::new(self.clone(), names.into_names())
    }

    /// The value under `key`, or `None` if there is none.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let context = self.context(key);
        match self.inner.store.get(key).await.map_err(&context)? {
            Some(bytes) => decode(&self.inner.serializer, &bytes)
                .map(Some)
                .map_err(context),
            None => Ok(None),
        }
    }

    /// The value under `key`, or `default` if there is none.
    pub async fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T> {
        Ok(self.get(key).await?.unwrap_or(default))
    }

    /// The value under `key`, or what `default` returns if there is none (only then is it
    /// called). Nothing is stored; see [`remember`](Self::remember) for that.
    pub async fn get_or_else<T: DeserializeOwned>(
        &self,
        key: &str,
        default: impl FnOnce() -> T,
    ) -> Result<T> {
        Ok(self.get(key).await?.unwrap_or_else(default))
    }

    /// The value under `key`, or what the async `default` resolves to if there is none.
    pub async fn get_or_else_async<T, F, Fut>(&self, key: &str, default: F) -> Result<T>
    where
        T: DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        match self.get(key).await? {
            Some(value) => Ok(value),
            None => Ok(default().await),
        }
    }

    /// Whether a live item is stored under `key`, whatever its type.
    pub async fn has(&self, key: &str) -> Result<bool> {
        Ok(self
            .inner
            .store
            .get(key)
            .await
            .map_err(self.context(key))?
            .is_some())
    }

    /// The value under `key`, removed from the cache. Not atomic: a value written between the
    /// read and the removal is removed too.
    ///
    /// A value of the wrong type is an error and is left in the cache.
    pub async fn pull<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let value = self.get(key).await?;
        if value.is_some() {
            self.forget(key).await?;
        }
        Ok(value)
    }

    /// Store `value` under `key` until `expiry`: a `Duration`, an absolute time, or whole
    /// minutes. A lifetime of zero or less, or a time already past, stores nothing and removes
    /// whatever `key` held.
    pub async fn put<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<()> {
        match expiry.into().ttl() {
            Some(ttl) => self.put_ttl(key, value, ttl).await,
            None => self.forget(key).await.map(drop),
        }
    }

    /// Store `value` under `key` with no expiry; it stays until forgotten, flushed or evicted.
    pub async fn forever<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.put_ttl(key, value, None).await
    }

    async fn put_ttl<T: Serialize + ?Sized>(&self, key: &str, value: &T, ttl: Ttl) -> Result<()> {
        let context = self.context(key);
        let bytes = encode(&self.inner.serializer, value).map_err(&context)?;
        self.inner
            .store
            .put(key, &bytes, ttl)
            .await
            .map_err(context)
    }

    /// Store `value` only if `key` holds nothing; `true` if it was stored. Atomic on every
    /// store: of many concurrent `add`s, exactly one wins. An expiry of zero or less stores
    /// nothing, returns `false` and leaves any existing value alone.
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<bool> {
        let Some(ttl) = expiry.into().ttl() else {
            return Ok(false);
        };
        let context = self.context(key);
        let bytes = encode(&self.inner.serializer, value).map_err(&context)?;
        self.inner
            .store
            .add(key, &bytes, ttl)
            .await
            .map_err(context)
    }

    /// Remove `key`; `true` if something was removed.
    pub async fn forget(&self, key: &str) -> Result<bool> {
        self.inner
            .store
            .forget(key)
            .await
            .map_err(self.context(key))
    }

    /// Add one to the counter under `key` and return the new value. A missing key starts at 0
    /// and is kept without expiry; an existing TTL is kept; a value that is not an integer is
    /// an [`ErrorKind::NotAnInteger`](crate::ErrorKind::NotAnInteger) error.
    pub async fn increment(&self, key: &str) -> Result<i64> {
        self.increment_by(key, 1).await
    }

    /// Add `amount` to the counter under `key` (see [`increment`](Self::increment)).
    pub async fn increment_by(&self, key: &str, amount: i64) -> Result<i64> {
        let counted = if self.inner.serializer.integer_format() == IntegerFormat::Serializer {
            self.increment_in_format(key, amount).await
        } else {
            self.inner.store.increment(key, amount).await
        };
        counted.map_err(self.context(key))
    }

    /// A counter kept in the serializer's format, incremented by compare and swap.
    async fn increment_in_format(&self, key: &str, amount: i64) -> Result<i64> {
        let serializer = &self.inner.serializer;
        increment_by_swapping(
            &**self.store(),
            key,
            amount,
            |current, by| incremented_in_format(serializer, current, by),
            |next| encode(serializer, &next),
        )
        .await
    }

    /// Subtract one from the counter under `key`; counters may go below zero.
    pub async fn decrement(&self, key: &str) -> Result<i64> {
        self.decrement_by(key, 1).await
    }

    /// Subtract `amount` from the counter under `key`.
    pub async fn decrement_by(&self, key: &str, amount: i64) -> Result<i64> {
        let negated = amount.checked_neg().ok_or_else(|| {
            Error::new(
                crate::ErrorKind::InvalidInput,
                format!("cannot decrement by {amount}: its negation overflows"),
            )
            .with_store(&self.inner.name)
            .with_key(key)
        })?;
        self.increment_by(key, negated).await
    }

    /// The value under `key`; on a miss, run `compute`, store its `Ok` value until `expiry`,
    /// and return it. An `Err` from `compute` is returned and nothing is cached.
    ///
    /// Stampede-safe: while one caller in this process computes a missing key, the other
    /// callers of `remember` on the same key (through any clone of this repository, from
    /// tasks or from threads through the blocking API) wait and get its value; `compute` runs
    /// once. If it fails, every waiter gets an [`ErrorKind::Remember`](crate::ErrorKind::Remember)
    /// error carrying its message, and nothing is cached. Callers in other processes are not
    /// coordinated.
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
        E: From<Error> + std::fmt::Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.remember_with(key, expiry.into().ttl(), CacheErrors::Return, compute)
            .await
            .map_err(Remembered::into_error)
    }

    /// Like [`remember`](Self::remember), storing the computed value forever.
    pub async fn remember_forever<T, E, F, Fut>(&self, key: &str, compute: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.remember_with(key, Some(None), CacheErrors::Return, compute)
            .await
            .map_err(Remembered::into_error)
    }

    /// The one implementation of `remember`, for the methods above and for `#[cached]`.
    ///
    /// `ttl` is `None` when the value must not be kept (a zero or past expiry). With
    /// `CacheErrors::Bypass`, a failing cache is treated as a miss and a failing store is
    /// ignored: the value is computed as if there were no cache.
    pub(crate) async fn remember_with<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Ttl>,
        cache_errors: CacheErrors,
        compute: F,
    ) -> Result<T, Remembered<T, E, F>>
    where
        T: Serialize + DeserializeOwned,
        E: std::fmt::Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let bypass = cache_errors == CacheErrors::Bypass;
        loop {
            match self.get::<T>(key).await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(_) if bypass => {}
                Err(e) => return Err(Remembered::Cache(e, compute)),
            }
            if self.inner.flights.is_computing(key) {
                let error = Error::new(
                    crate::ErrorKind::Remember,
                    "`remember` was called for this key from inside its own computation, which \
                     would wait for itself forever",
                );
                return Err(Remembered::Cache(self.context(key)(error), compute));
            }
            let leader = match self.inner.flights.join(key) {
                Role::Leader(leader) => leader,
                Role::Waiter(slot) => match flight::wait(slot).await {
                    Some(Outcome::Value(bytes)) => match decode(&self.inner.serializer, &bytes) {
                        Ok(value) => return Ok(value),
                        Err(_) if bypass => continue,
                        Err(e) => return Err(Remembered::Cache(self.context(key)(e), compute)),
                    },
                    Some(Outcome::Failed(message)) => {
                        return Err(Remembered::Elsewhere(message, compute));
                    }
                    None => continue,
                },
            };
            // Another caller may have stored the value between our miss and our lead.
            if let Ok(Some(value)) = self.get::<T>(key).await {
                return Ok(value);
            }
            let value = match leader.compute(compute()).await {
                Ok(value) => value,
                Err(e) => {
                    leader.finish(Outcome::Failed(e.to_string().into()));
                    return Err(Remembered::Computed(e));
                }
            };
            let bytes = match encode(&self.inner.serializer, &value) {
                Ok(bytes) => bytes,
                // Waiters retry (the leader is dropped) and compute their own copy.
                Err(_) if bypass => return Ok(value),
                Err(e) => {
                    let e = self.context(key)(e);
                    leader.finish(Outcome::Failed(e.to_string().into()));
                    return Err(Remembered::Store(e, value));
                }
            };
            match self.store_bytes(key, &bytes, ttl).await {
                Err(e) if !bypass => {
                    leader.finish(Outcome::Failed(e.to_string().into()));
                    return Err(Remembered::Store(e, value));
                }
                // Bypassing a failing cache: the waiters still get the value at once.
                Ok(()) | Err(_) => leader.finish(Outcome::Value(bytes.into())),
            }
            return Ok(value);
        }
    }

    /// Store encoded `bytes` for `ttl`, or remove `key` when `ttl` is `None`.
    async fn store_bytes(&self, key: &str, bytes: &[u8], ttl: Option<Ttl>) -> Result<()> {
        match ttl {
            Some(ttl) => self
                .inner
                .store
                .put(key, bytes, ttl)
                .await
                .map_err(self.context(key)),
            None => self.forget(key).await.map(drop),
        }
    }

    /// The values under `keys`, in the same order, `None` for each miss. One round trip on
    /// stores that can (Redis `MGET`, memcached multi-get, one SQL query).
    pub async fn many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        let values = self
            .inner
            .store
            .get_many(keys)
            .await
            .map_err(|e| e.with_store(&self.inner.name))?;
        keys.iter()
            .zip(values)
            .map(|(key, bytes)| match bytes {
                Some(bytes) => decode(&self.inner.serializer, &bytes)
                    .map(Some)
                    .map_err(self.context(key)),
                None => Ok(None),
            })
            .collect()
    }

    /// Store every `(key, value)` pair until `expiry`, with the same rules as
    /// [`put`](Self::put).
    pub async fn put_many<K, T>(&self, items: &[(K, T)], expiry: impl Into<Expiry>) -> Result<()>
    where
        K: AsRef<str>,
        T: Serialize,
    {
        let Some(ttl) = expiry.into().ttl() else {
            for (key, _) in items {
                self.forget(key.as_ref()).await?;
            }
            return Ok(());
        };
        let encoded = items
            .iter()
            .map(|(key, value)| {
                let key = key.as_ref();
                encode(&self.inner.serializer, value)
                    .map(|bytes| (key, bytes))
                    .map_err(self.context(key))
            })
            .collect::<Result<Vec<_>>>()?;
        self.inner
            .store
            .put_many(&encoded, ttl)
            .await
            .map_err(|e| e.with_store(&self.inner.name))
    }

    /// Remove every item of this store.
    pub async fn flush(&self) -> Result<()> {
        self.inner
            .store
            .flush()
            .await
            .map_err(|e| e.with_store(&self.inner.name))
    }
}
