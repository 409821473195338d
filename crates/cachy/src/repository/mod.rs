//! [`Repository`]: the typed cache API over one store, or over a set of tags in it.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode, encode};
use crate::envelope;
use crate::error::{Error, Result};
use crate::expiry::Expiry;
use crate::flight::Flights;
use crate::observe::{
    Event, Observer, Operation, Outcome, Record, Stats, found, removed, reporting, written,
};
use crate::serializer::Serializer;
use crate::store::{Store, Ttl};
use crate::tags;
use remember::{CacheErrors, Failed};

mod batch;
mod counters;
pub(crate) mod lock;
mod observed;
pub(crate) mod remember;

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
    /// The tags this repository's keys live under (see [`crate::tags`]); `None` for the
    /// store's own keyspace.
    tags: Option<Arc<[String]>>,
}

struct Inner {
    name: String,
    store: Arc<dyn Store>,
    serializer: Serializer,
    /// The default lifetime of `#[cached]` values (Python cachy's default cache time).
    default_expiry: std::sync::RwLock<Expiry>,
    flights: Flights,
    observer: Observer,
}

/// Where a repository's keys live in its store for one operation: the store's own keyspace,
/// or the namespace of the tags' current ids.
#[derive(Default)]
pub(crate) struct Scope {
    /// The tags' current ids; empty when untagged.
    ids: Vec<String>,
    /// What goes before each key; empty when untagged.
    prefix: String,
}

impl Scope {
    /// The store key of `key`.
    pub(crate) fn key<'k>(&self, key: &'k str) -> Cow<'k, str> {
        if self.prefix.is_empty() {
            Cow::Borrowed(key)
        } else {
            Cow::Owned(format!("{}{key}", self.prefix))
        }
    }
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Repository");
        debug
            .field("name", &self.inner.name)
            .field("default_expiry", &self.default_expiry());
        if let Some(tags) = &self.tags {
            debug.field("tags", tags);
        }
        debug.finish_non_exhaustive()
    }
}

impl Repository {
    /// A repository named `name` over `store`, writing values with `serializer`.
    pub fn new(name: impl Into<String>, store: Arc<dyn Store>, serializer: Serializer) -> Self {
        let name = name.into();
        Repository {
            inner: Arc::new(Inner {
                flights: Flights::new(&name),
                name,
                store,
                serializer,
                default_expiry: std::sync::RwLock::new(Expiry::Minutes(DEFAULT_CACHE_MINUTES)),
                observer: Observer::default(),
            }),
            tags: None,
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

    /// The default cache time in whole minutes (60 unless changed; a lifetime set as a
    /// `Duration` is rounded up), as Python cachy reports it. See
    /// [`default_expiry`](Self::default_expiry) for the lifetime itself.
    pub fn default_cache_time(&self) -> i64 {
        match self.default_expiry() {
            Expiry::Minutes(minutes) => minutes,
            other => other.ttl().flatten().map_or(0, |seconds| {
                i64::try_from(seconds.div_ceil(60)).unwrap_or(i64::MAX)
            }),
        }
    }

    /// The lifetime `#[cached]` functions keep their values when they name none.
    pub fn default_expiry(&self) -> Expiry {
        *self
            .inner
            .default_expiry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Change the default cache time for every clone of this repository: whole minutes, as
    /// in Python cachy, or a `Duration`.
    pub fn set_default_cache_time(&self, expiry: impl Into<Expiry>) -> &Self {
        *self
            .inner
            .default_expiry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = expiry.into();
        self
    }

    /// The same store under the tags `names` (see [`crate::tags`]): one name, an array, a
    /// `Vec` or a tuple of names. On a repository that already has tags, `names` are added
    /// after them.
    pub fn tags(&self, names: impl crate::tags::TagNames) -> crate::tags::TaggedCache {
        let mut all: Vec<String> = self.tag_names().to_vec();
        all.extend(names.into_names());
        Repository {
            inner: Arc::clone(&self.inner),
            tags: Some(all.into()),
        }
    }

    /// The tag names this repository's keys live under, in order; empty for the store's own
    /// keyspace.
    pub fn tag_names(&self) -> &[String] {
        self.tags.as_deref().unwrap_or_default()
    }

    /// This repository over the store's own keyspace (for keys already in a tag namespace).
    pub(crate) fn untagged(&self) -> Repository {
        Repository {
            inner: Arc::clone(&self.inner),
            tags: None,
        }
    }

    pub(crate) fn flights(&self) -> &Flights {
        &self.inner.flights
    }

    /// What this repository counted since it was built (shared by its clones and tagged
    /// views): hits, misses, stale hits, writes, removals and errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// let cache = cachy::CacheManager::from_value(serde_json::json!({
    ///     "stores": { "dict": { "driver": "dict" } }
    /// }))?;
    /// let repo = cache.store(None)?;
    /// repo.put("a", &1, 10).await?;
    /// repo.get::<i32>("a").await?;
    /// repo.get::<i32>("b").await?;
    /// let stats = repo.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.writes), (1, 1, 1));
    /// assert_eq!(stats.hit_ratio(), Some(0.5));
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.observer.stats()
    }

    /// Call `hook` after every operation of this repository (and of its clones and tagged
    /// views), with its store, operation, key and outcome: hits, misses, writes, removals,
    /// errors, fail-safe fallbacks (`Outcome::Stale`). Hooks run on the caller's task, so
    /// they must be quick; a repository without hooks pays one atomic load per operation.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use cachy::observe::Outcome;
    ///
    /// let cache = cachy::CacheManager::from_value(serde_json::json!({
    ///     "stores": { "dict": { "driver": "dict" } }
    /// }))?;
    /// let repo = cache.store(None)?;
    /// let misses = Arc::new(AtomicUsize::new(0));
    /// let counted = Arc::clone(&misses);
    /// repo.on_event(move |event| {
    ///     if event.outcome == Outcome::Miss {
    ///         counted.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// });
    /// repo.get::<i32>("nothing here").await?;
    /// assert_eq!(misses.load(Ordering::Relaxed), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_event(&self, hook: impl Fn(&Event<'_>) + Send + Sync + 'static) -> &Self {
        self.inner.observer.add_hook(Arc::new(hook));
        self
    }

    pub(crate) fn observer(&self) -> &Observer {
        &self.inner.observer
    }

    pub(crate) fn context<'a>(&'a self, key: &'a str) -> impl Fn(Error) -> Error + 'a {
        move |e| e.with_store(&self.inner.name).with_key(key)
    }

    /// Where this repository's keys live now: for tags, one read of their current ids.
    pub(crate) async fn scope(&self) -> Result<Scope> {
        let Some(names) = &self.tags else {
            return Ok(Scope::default());
        };
        // Boxed, so that the future of every operation does not carry the tag reads' state
        // inline: untagged operations, the common case, stay small to create and move.
        let ids = Box::pin(tags::ids(names, &**self.store(), self.serializer()))
            .await
            .map_err(|e| e.with_store(&self.inner.name))?;
        Ok(Scope {
            prefix: tags::namespace_prefix(&ids),
            ids,
        })
    }

    /// The store key of `key` under these tags: `key` itself when there are none. Reads the
    /// tags' current ids.
    pub async fn tagged_key(&self, key: &str) -> Result<String> {
        Ok(self.store_key(key).await?.into_owned())
    }

    /// [`tagged_key`](Self::tagged_key), borrowing `key` when there are no tags.
    pub(crate) async fn store_key<'k>(&self, key: &'k str) -> Result<Cow<'k, str>> {
        match &self.tags {
            None => Ok(Cow::Borrowed(key)),
            Some(_) => Ok(Cow::Owned(self.scope().await?.key(key).into_owned())),
        }
    }

    /// The key a caller gave for the store key `stored` of this repository: `stored` less
    /// the tags' namespace prefix.
    pub(crate) fn given_key<'k>(&self, stored: &'k str) -> &'k str {
        match &self.tags {
            Some(_) => stored.get(tags::NAMESPACE_PREFIX_LEN..).unwrap_or(stored),
            None => stored,
        }
    }

    /// Before storing `key` forever under tags, list it for the tags' flush (on stores that
    /// keep such lists).
    async fn track_if_forever(&self, scope: &Scope, key: &str, ttl: Option<Ttl>) -> Result<()> {
        if scope.ids.is_empty() || ttl != Some(None) {
            return Ok(());
        }
        tags::track_forever(&**self.store(), &scope.ids, key)
            .await
            .map_err(self.context(key))
    }

    /// The value under `key`, or `None` if there is none.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let observation = self.start_observation(Operation::Get, Some(key));
        // An in-process hit is answered here, without making (and moving) the futures of the
        // general path.
        if self.tags.is_none() {
            let in_process = observation.in_scope(|| {
                let shared = self.inner.store.get_in_process(key)?;
                Some(
                    self.decode_fresh(shared.as_deref())
                        .map_err(self.context(key)),
                )
            });
            if let Some(result) = in_process {
                return self.finish_observation(observation, result, reporting(Some(key), found));
            }
        }
        let work = async {
            let scope = self.scope().await?;
            self.get_stored(&scope.key(key)).await
        };
        self.observe_until(observation, work, reporting(Some(key), found))
            .await
    }

    /// The value under the store key `key`.
    pub(crate) async fn get_stored<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let context = self.context(key);
        if let Some(shared) = self.inner.store.get_in_process(key) {
            return self.decode_fresh(shared.as_deref()).map_err(context);
        }
        let stored = self.inner.store.get(key).await.map_err(&context)?;
        self.decode_fresh(stored.as_deref()).map_err(context)
    }

    /// The value in `stored` bytes, `None` for none or for a value past its logical expiry
    /// (see [`crate::envelope`]).
    fn decode_fresh<T: DeserializeOwned>(&self, stored: Option<&[u8]>) -> Result<Option<T>> {
        match stored.and_then(|bytes| envelope::fresh_payload(bytes)) {
            Some(payload) => decode(&self.inner.serializer, payload).map(Some),
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
        let outcome = |has: &bool| if *has { Outcome::Hit } else { Outcome::Miss };
        self.observed(Operation::Has, Some(key), outcome, async {
            let scope = self.scope().await?;
            let key = scope.key(key);
            let fresh = |bytes: &[u8]| envelope::fresh_payload(bytes).is_some();
            if let Some(shared) = self.inner.store.get_in_process(&key) {
                return Ok(shared.is_some_and(|bytes| fresh(&bytes)));
            }
            let stored = self
                .inner
                .store
                .get(&key)
                .await
                .map_err(self.context(&key))?;
            Ok(stored.is_some_and(|bytes| fresh(&bytes)))
        })
        .await
    }

    /// The value under `key`, removed from the cache. Not atomic: a value written between the
    /// read and the removal is removed too.
    ///
    /// A value of the wrong type is an error and is left in the cache.
    pub async fn pull<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.observed(Operation::Pull, Some(key), found, async {
            let scope = self.scope().await?;
            let key = scope.key(key);
            let value = self.get_stored(&key).await?;
            if value.is_some() {
                self.forget_stored(&key).await?;
            }
            Ok(value)
        })
        .await
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
        let ttl = expiry.into().ttl();
        self.observed(
            Operation::Put,
            Some(key),
            |()| written(ttl),
            self.put_ttl(key, value, ttl),
        )
        .await
    }

    /// Store `value` under `key` with no expiry; it stays until forgotten, flushed or evicted
    /// (under tags, until a tag is flushed).
    pub async fn forever<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let work = self.put_ttl(key, value, Some(None));
        self.observed(Operation::Put, Some(key), |()| Outcome::Written, work)
            .await
    }

    async fn put_ttl<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Ttl>,
    ) -> Result<()> {
        let scope = self.scope().await?;
        let key = scope.key(key);
        let bytes = encode(&self.inner.serializer, value).map_err(self.context(&key))?;
        self.track_if_forever(&scope, &key, ttl).await?;
        self.store_bytes(&key, &bytes, ttl).await
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
        let outcome = |added: &bool| {
            if *added {
                Outcome::Written
            } else {
                Outcome::Unchanged
            }
        };
        self.observed(Operation::Add, Some(key), outcome, async {
            let scope = self.scope().await?;
            let key = scope.key(key);
            let context = self.context(&key);
            let bytes = encode(&self.inner.serializer, value).map_err(&context)?;
            self.inner
                .store
                .add(&key, &bytes, ttl)
                .await
                .map_err(context)
        })
        .await
    }

    /// Remove `key`; `true` if something was removed.
    pub async fn forget(&self, key: &str) -> Result<bool> {
        self.observed(Operation::Forget, Some(key), removed, async {
            let scope = self.scope().await?;
            self.forget_stored(&scope.key(key)).await
        })
        .await
    }

    /// Give the live item under `key` the lifetime `expiry` from now, without rewriting it;
    /// `true` if there was one. Native on Redis (`EXPIRE`), memcached (`touch`), SQL (one
    /// `UPDATE`) and the memory store; elsewhere the value is read and stored again. A zero or
    /// past expiry removes the item, as with `put`. (Values written by
    /// [`remember_with`](Self::remember_with) with fail-safe or eager refresh keep their
    /// logical lifetime, which is in the value.)
    pub async fn touch(&self, key: &str, expiry: impl Into<Expiry>) -> Result<bool> {
        let ttl = expiry.into().ttl();
        let outcome = |touched: &bool| match (touched, ttl) {
            (false, _) => Outcome::Unchanged,
            (true, Some(_)) => Outcome::Written,
            (true, None) => Outcome::Removed,
        };
        self.observed(Operation::Touch, Some(key), outcome, async {
            let scope = self.scope().await?;
            let key = scope.key(key);
            match ttl {
                Some(ttl) => self
                    .inner
                    .store
                    .touch(&key, ttl)
                    .await
                    .map_err(self.context(&key)),
                None => self.forget_stored(&key).await,
            }
        })
        .await
    }

    async fn forget_stored(&self, key: &str) -> Result<bool> {
        self.inner
            .store
            .forget(key)
            .await
            .map_err(self.context(key))
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
            let scope = self.scope().await?;
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

    /// Store encoded `bytes` for `ttl`, or remove `key` when `ttl` is `None`.
    pub(crate) async fn store_bytes(
        &self,
        key: &str,
        bytes: &[u8],
        ttl: Option<Ttl>,
    ) -> Result<()> {
        match ttl {
            Some(ttl) => self
                .inner
                .store
                .put(key, bytes, ttl)
                .await
                .map_err(self.context(key)),
            None => self.forget_stored(key).await.map(drop),
        }
    }

    /// Remove every item of this store; under tags, invalidate every item stored under any
    /// of them instead: each tag gets a new id (and on Redis the items stored forever under
    /// them are deleted), and the rest of the store is left alone.
    pub async fn flush(&self) -> Result<()> {
        self.observed(Operation::Flush, None, |()| Outcome::Done, async {
            let flushed = match &self.tags {
                Some(names) => tags::flush(names, &**self.store(), self.serializer()).await,
                None => self.inner.store.flush().await,
            };
            flushed.map_err(|e| e.with_store(&self.inner.name))
        })
        .await
    }
}
