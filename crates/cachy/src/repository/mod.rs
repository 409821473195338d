//! [`Repository`]: the typed cache API over one store, or over a set of tags in it.

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::expiry::Expiry;
use crate::flight::Flights;
use crate::observe::{Event, Observer, Stats};
use crate::serializer::Serializer;
use crate::store::{EvictionCallback, Store, Ttl};
use crate::tags;

mod batch;
mod counters;
pub(crate) mod lock;
mod observed;
mod reads;
pub(crate) mod remember;
mod writes;

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

/// A repository over a set of tags: what [`Repository::tags`](crate::Repository::tags) and
/// [`CacheManager::tags`](crate::CacheManager::tags) return.
///
/// It is a [`Repository`](crate::Repository), with every operation, whose keys live in the
/// tags' namespace and whose [`flush`](crate::Repository::flush) invalidates the tags instead
/// of emptying the store.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cachy::Result<()> {
/// use cachy::CacheManager;
///
/// let cache = CacheManager::from_value(serde_json::json!({
///     "stores": { "dict": { "driver": "dict" } }
/// }))?;
/// cache.tags(("people", "artists"))?.put("John", &"john", 10).await?;
/// cache.tags(["people", "authors"])?.put("Anne", &"anne", 10).await?;
///
/// cache.tags("authors")?.flush().await?;
/// assert_eq!(cache.tags(("people", "artists"))?.get::<String>("John").await?.as_deref(), Some("john"));
/// assert_eq!(cache.tags(("people", "authors"))?.get::<String>("Anne").await?, None);
///
/// cache.tags(("people", "authors"))?.flush().await?;
/// assert_eq!(cache.tags(("people", "artists"))?.get::<String>("John").await?, None);
/// # Ok(())
/// # }
/// ```
pub type TaggedCache = Repository;

struct Inner {
    name: String,
    /// The store every operation goes through: the driver's, in the layer its config asks for.
    store: Arc<dyn Store>,
    /// The driver's own store.
    backend: Arc<dyn Store>,
    serializer: Serializer,
    /// The default lifetime of `#[cached]` values (Python cachy's default cache time).
    default_expiry: std::sync::RwLock<Expiry>,
    flights: Flights,
    observer: Arc<Observer>,
    /// Told by the store of the entries it drops; the store keeps it weakly, so it lives
    /// as long as this repository.
    _eviction_listener: Arc<EvictionCallback>,
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
        Repository::layered(name.into(), Arc::clone(&store), store, serializer)
    }

    /// A repository named `name` over `store`, the driver's `backend` in the layer its config
    /// asks for (namespace, version, compression, encryption, limits).
    pub(crate) fn layered(
        name: String,
        store: Arc<dyn Store>,
        backend: Arc<dyn Store>,
        serializer: Serializer,
    ) -> Self {
        let observer = Arc::new(Observer::default());
        let eviction_listener: Arc<EvictionCallback> = {
            let (observer, name) = (Arc::clone(&observer), name.clone());
            Arc::new(move |key, cause| observer.record_eviction(&name, key, cause))
        };
        store.listen_evictions(Arc::downgrade(&eviction_listener));
        Repository {
            inner: Arc::new(Inner {
                flights: Flights::new(&name),
                name,
                store,
                backend,
                serializer,
                default_expiry: std::sync::RwLock::new(Expiry::Minutes(DEFAULT_CACHE_MINUTES)),
                observer,
                _eviction_listener: eviction_listener,
            }),
            tags: None,
        }
    }

    /// A repository over the same store with other options for its keys and values
    /// (`namespace`, `version`, `max_key_bytes`, `max_value_bytes`, `compress`, `encrypt`, as
    /// in a store's config; those not given are off): for moving a store from one setting
    /// to another (read with the old keys, write with the new), and for tests. It has its own
    /// stats and hooks.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// let cache = cachy::CacheManager::from_value(serde_json::json!({
    ///     "stores": { "dict": { "driver": "dict", "version": 1 } }
    /// }))?;
    /// let v1 = cache.store(None)?;
    /// let v2 = v1.reconfigured(serde_json::json!({ "version": 2 }))?;
    /// v1.put("user:7", &"ann", 10).await?;
    /// assert_eq!(v2.get::<String>("user:7").await?, None);
    /// let typo = v1.reconfigured(serde_json::json!({ "verison": 2 })).unwrap_err();
    /// assert!(typo.to_string().contains("did you mean `version`"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reconfigured(&self, options: serde_json::Value) -> Result<Repository> {
        let layer = crate::stores::layer::config::reconfigured(self.name(), &options)?;
        let backend = Arc::clone(&self.inner.backend);
        Ok(Repository::layered(
            self.inner.name.clone(),
            layer.around(Arc::clone(&backend)),
            backend,
            self.inner.serializer.clone(),
        ))
    }

    /// This repository with its store in `layer` (a fresh repository, with this one's
    /// default lifetime): what the manager does to a repository a driver built.
    pub(crate) fn in_layer(self, layer: crate::stores::layer::Layer) -> Repository {
        let store = layer.over(Arc::clone(&self.inner.store));
        if Arc::ptr_eq(&store, &self.inner.store) {
            return self;
        }
        let layered = Repository::layered(
            self.inner.name.clone(),
            store,
            Arc::clone(&self.inner.backend),
            self.inner.serializer.clone(),
        );
        layered.set_default_cache_time(self.default_expiry());
        layered
    }

    /// The name of the store, as in the configuration.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The store under this repository, as the repository reads and writes it: with the
    /// store's `namespace` and `version` in front of its keys, and its values compressed,
    /// encrypted and bounded as its config says.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The driver's own store, below the layer of [`store`](Self::store): what to downcast to
    /// a concrete store type for operations only that backend has
    /// (`(&**repo.backend() as &dyn std::any::Any).downcast_ref::<HybridStore>()`). Keys and
    /// values here are as stored: prefixed, compressed, encrypted.
    pub fn backend(&self) -> &Arc<dyn Store> {
        &self.inner.backend
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
    pub fn tags(&self, names: impl crate::tags::TagNames) -> TaggedCache {
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

    /// Names this store, and the key the caller gave for the store key `stored`, in an
    /// error: under tags, without the tags' namespace, as the caller wrote it.
    pub(crate) fn context<'a>(&'a self, stored: &'a str) -> impl Fn(Error) -> Error + 'a {
        self.given_context(self.given_key(stored))
    }

    /// Names this store and the caller's own `key` (not a store key) in an error.
    pub(crate) fn given_context<'a>(&'a self, key: &'a str) -> impl Fn(Error) -> Error + 'a {
        move |e| e.with_store(&self.inner.name).with_key(key)
    }

    /// Where this repository's keys live now: for tags, one read of their current ids. A
    /// failure to read them names the caller's `key`, if the operation has one.
    pub(crate) async fn scope(&self, key: Option<&str>) -> Result<Scope> {
        let Some(names) = &self.tags else {
            return Ok(Scope::default());
        };
        // Boxed, so that the future of every operation does not carry the tag reads' state
        // inline: untagged operations, the common case, stay small to create and move.
        let ids = Box::pin(tags::ids(names, &**self.store(), self.serializer()))
            .await
            .map_err(|e| match key {
                Some(key) => self.given_context(key)(e),
                None => e.with_store(&self.inner.name),
            })?;
        Ok(Scope {
            prefix: tags::namespace_prefix(&ids),
            ids,
        })
    }

    /// The store key of `key` under these tags: `key` itself when there are none. Reads the
    /// tags' current ids; an error reading them names `key`.
    pub async fn tagged_key(&self, key: &str) -> Result<String> {
        let stored = self.store_key(key).await.map_err(self.given_context(key))?;
        Ok(stored.into_owned())
    }

    /// [`tagged_key`](Self::tagged_key), borrowing `key` when there are no tags.
    pub(crate) async fn store_key<'k>(&self, key: &'k str) -> Result<Cow<'k, str>> {
        match &self.tags {
            None => Ok(Cow::Borrowed(key)),
            Some(_) => Ok(Cow::Owned(self.scope(None).await?.key(key).into_owned())),
        }
    }

    /// The key a caller gave for the store key `stored` of this repository: `stored` less
    /// the tags' namespace prefix before it.
    pub(crate) fn given_key<'k>(&self, stored: &'k str) -> &'k str {
        match &self.tags {
            Some(_) => tags::without_namespace(stored),
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
}
