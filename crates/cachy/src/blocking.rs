//! The same API for plain threads, with no async runtime of the caller's.
//!
//! Like `reqwest::blocking`, this is a facade: each call drives the async core on a small
//! runtime (one worker thread, one per process, shared by every facade). There is no second
//! implementation of any store.
//!
//! Call it from threads: plain threads, `tokio::task::spawn_blocking`, or anywhere on a
//! multi-thread tokio runtime (a call from an async task there goes through
//! `tokio::task::block_in_place`, so the runtime's other tasks keep running, but the task
//! itself waits: prefer the async API in async code). On a current-thread runtime every
//! method returns an [`ErrorKind::Runtime`](crate::ErrorKind::Runtime) error instead of stalling its only thread.
//!
//! ```
//! use cachy::blocking::CacheManager;
//!
//! let cache = CacheManager::from_value(serde_json::json!({
//!     "stores": { "dict": { "driver": "dict" } }
//! }))?;
//!
//! let handles: Vec<_> = (0..4)
//!     .map(|_| {
//!         let cache = cache.clone();
//!         std::thread::spawn(move || cache.increment("hits"))
//!     })
//!     .collect();
//! for handle in handles {
//!     handle.join().unwrap()?;
//! }
//! assert_eq!(cache.get::<i64>("hits")?, Some(4));
//!
//! let users: Vec<String> =
//!     cache.remember("users", 10, || Ok::<_, cachy::Error>(vec!["ann".into()]))?;
//! assert_eq!(users, ["ann"]);
//! # Ok::<(), cachy::Error>(())
//! ```

use std::path::Path;

use crate::config::{CacheConfig, StoreConfig};
use crate::driver::Created;
use crate::error::Result;
use crate::runtime::Driver;
use crate::serializer::CustomSerializer;

/// The blocking face of [`crate::CacheManager`]: the same methods, without `.await`.
#[derive(Clone, Debug)]
pub struct CacheManager {
    inner: crate::CacheManager,
    driver: &'static Driver,
}

/// The blocking face of [`crate::Repository`].
#[derive(Clone, Debug)]
pub struct Repository {
    inner: crate::Repository,
    driver: &'static Driver,
}

impl CacheManager {
    /// Wrap an async manager; both share the same stores.
    pub fn from_async(inner: crate::CacheManager) -> Result<Self> {
        Ok(CacheManager {
            inner,
            driver: Driver::shared()?,
        })
    }

    /// A manager over `config` (see [`crate::CacheManager::new`]).
    pub fn new(config: CacheConfig) -> Result<Self> {
        Self::from_async(crate::CacheManager::new(config)?)
    }

    /// A manager over a config shaped like Python cachy's dict.
    pub fn from_value(config: serde_json::Value) -> Result<Self> {
        Self::from_async(crate::CacheManager::from_value(config)?)
    }

    /// A manager over a TOML, JSON or YAML config file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_async(crate::CacheManager::from_file(path)?)
    }

    /// The async manager underneath.
    pub fn as_async(&self) -> &crate::CacheManager {
        &self.inner
    }

    /// The repository of store `name`, or of the default store for `None`.
    pub fn store<'a>(&self, name: impl Into<Option<&'a str>>) -> Result<Repository> {
        Ok(Repository {
            inner: self.inner.store(name)?,
            driver: self.driver,
        })
    }

    /// See [`crate::CacheManager::config`].
    pub fn config(&self) -> &CacheConfig {
        self.inner.config()
    }

    /// See [`crate::CacheManager::default_cache_time`].
    pub fn default_cache_time(&self) -> Result<i64> {
        self.inner.default_cache_time()
    }

    /// See [`crate::CacheManager::set_default_cache_time`].
    pub fn set_default_cache_time(&self, expiry: impl Into<crate::Expiry>) -> Result<()> {
        self.inner.set_default_cache_time(expiry)
    }

    /// See [`crate::CacheManager::default_store_name`].
    pub fn default_store_name(&self) -> Result<String> {
        self.inner.default_store_name()
    }

    /// See [`crate::CacheManager::set_default_driver`].
    pub fn set_default_driver(&self, name: impl Into<String>) {
        self.inner.set_default_driver(name);
    }

    /// See [`crate::CacheManager::extend`].
    pub fn extend<F, R>(&self, driver: impl Into<String>, factory: F) -> &Self
    where
        F: Fn(&StoreConfig) -> Result<R> + Send + Sync + 'static,
        R: Into<Created>,
    {
        self.inner.extend(driver, factory);
        self
    }

    /// See [`crate::CacheManager::register_serializer`].
    pub fn register_serializer(
        &self,
        name: impl Into<String>,
        serializer: impl CustomSerializer,
    ) -> &Self {
        self.inner.register_serializer(name, serializer);
        self
    }
}

/// Runs a repository operation on the default store, blocking.
macro_rules! on_default_store {
    ($manager:expr, $repository:ident => $call:expr) => {{
        let $repository = $manager.inner.store(None)?;
        $manager.driver.block_on($call)
    }};
}

/// Runs a repository operation, blocking.
macro_rules! on_repository {
    ($facade:expr, $repository:ident => $call:expr) => {{
        let $repository = &$facade.inner;
        $facade.driver.block_on($call)
    }};
}

/// The data operations, on the default store.
impl CacheManager {
    crate::facade::repository_operations!(blocking, on_default_store);

    /// See [`crate::CacheManager::tags`].
    pub fn tags(&self, names: impl crate::tags::TagNames) -> Result<TaggedCache> {
        Ok(Repository {
            inner: self.inner.tags(names)?,
            driver: self.driver,
        })
    }
}

/// The blocking face of [`crate::TaggedCache`]: a blocking [`Repository`] over a set of tags.
pub type TaggedCache = Repository;

impl Repository {
    crate::facade::repository_operations!(blocking, on_repository);

    /// See [`crate::Repository::tags`].
    pub fn tags(&self, names: impl crate::tags::TagNames) -> TaggedCache {
        Repository {
            inner: self.inner.tags(names),
            driver: self.driver,
        }
    }

    /// See [`crate::Repository::tag_names`].
    pub fn tag_names(&self) -> &[String] {
        self.inner.tag_names()
    }

    /// The async repository underneath.
    pub fn as_async(&self) -> &crate::Repository {
        &self.inner
    }

    /// The name of the store.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// See [`crate::Repository::store`].
    pub fn store(&self) -> &std::sync::Arc<dyn crate::Store> {
        self.inner.store()
    }

    /// See [`crate::Repository::serializer`].
    pub fn serializer(&self) -> &crate::serializer::Serializer {
        self.inner.serializer()
    }

    /// See [`crate::Repository::default_cache_time`].
    pub fn default_cache_time(&self) -> i64 {
        self.inner.default_cache_time()
    }

    /// See [`crate::Repository::default_expiry`].
    pub fn default_expiry(&self) -> crate::Expiry {
        self.inner.default_expiry()
    }

    /// See [`crate::Repository::set_default_cache_time`].
    pub fn set_default_cache_time(&self, expiry: impl Into<crate::Expiry>) -> &Self {
        self.inner.set_default_cache_time(expiry);
        self
    }
}

impl CacheManager {
    /// See [`crate::CacheManager::lock`].
    pub fn lock(&self, name: impl Into<String>, ttl: std::time::Duration) -> Result<Lock> {
        Ok(Lock {
            inner: self.inner.lock(name, ttl)?,
            driver: self.driver,
        })
    }

    /// See [`crate::CacheManager::restore_lock`].
    pub fn restore_lock(
        &self,
        name: impl Into<String>,
        ttl: std::time::Duration,
        owner: impl Into<String>,
    ) -> Result<Lock> {
        Ok(Lock {
            inner: self.inner.restore_lock(name, ttl, owner)?,
            driver: self.driver,
        })
    }
}

impl Repository {
    /// See [`crate::Repository::lock`].
    pub fn lock(&self, name: impl Into<String>, ttl: std::time::Duration) -> Lock {
        Lock {
            inner: self.inner.lock(name, ttl),
            driver: self.driver,
        }
    }

    /// See [`crate::Repository::restore_lock`].
    pub fn restore_lock(
        &self,
        name: impl Into<String>,
        ttl: std::time::Duration,
        owner: impl Into<String>,
    ) -> Lock {
        Lock {
            inner: self.inner.restore_lock(name, ttl, owner),
            driver: self.driver,
        }
    }
}

/// The blocking face of [`crate::Lock`].
#[derive(Debug)]
pub struct Lock {
    inner: crate::Lock,
    driver: &'static Driver,
}

impl Lock {
    /// See [`crate::Lock::name`].
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// See [`crate::Lock::owner`].
    pub fn owner(&self) -> &str {
        self.inner.owner()
    }

    /// See [`crate::Lock::fencing_token`].
    pub fn fencing_token(&self) -> Option<i64> {
        self.inner.fencing_token()
    }

    /// [`crate::Lock::try_acquire`], blocking.
    pub fn try_acquire(&self) -> Result<bool> {
        self.driver.block_on(self.inner.try_acquire())
    }

    /// [`crate::Lock::acquire`], blocking.
    pub fn acquire(&self, wait: std::time::Duration) -> Result<()> {
        self.driver.block_on(self.inner.acquire(wait))
    }

    /// [`crate::Lock::release`], blocking.
    pub fn release(&self) -> Result<bool> {
        self.driver.block_on(self.inner.release())
    }

    /// [`crate::Lock::force_release`], blocking.
    pub fn force_release(&self) -> Result<bool> {
        self.driver.block_on(self.inner.force_release())
    }

    /// [`crate::Lock::with_lock`], blocking, with a plain closure (run on this thread while
    /// the lock is held).
    pub fn with_lock<T>(&self, wait: std::time::Duration, work: impl FnOnce() -> T) -> Result<T> {
        self.acquire(wait)?;
        let output = work();
        self.release()?;
        Ok(output)
    }

    /// The async lock underneath.
    pub fn as_async(&self) -> &crate::Lock {
        &self.inner
    }
}
