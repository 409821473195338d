//! [`CacheManager`]: named stores built from configuration.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::config::{CacheConfig, StoreConfig};
use crate::driver::{Created, DriverFactory, StoreResolver};
use crate::error::{Error, ErrorKind, Result};
use crate::repository::Repository;
use crate::serializer::{self, CustomSerializer, DecodeLimits, IntegerFormat, Serializer};
use crate::store::Store;

/// A pool of named cache stores, built from configuration.
///
/// Stores are built lazily, on first use, once, and shared by every clone of the manager
/// (cloning is cheap). Every repository method is also a method of the manager and goes to
/// the default store: the one named by `default`, else the only store, else an error.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cachy::Result<()> {
/// use cachy::CacheManager;
///
/// let dir = tempfile::tempdir().unwrap();
/// let cache = CacheManager::from_value(serde_json::json!({
///     "default": "dict",
///     "serializer": "pickle",
///     "stores": {
///         "dict": { "driver": "dict" },
///         "file": { "driver": "file", "path": dir.path(), "serializer": "json" }
///     }
/// }))?;
///
/// cache.store("file")?.put("foo", &"bar", 10).await?;
/// let value: Option<String> = cache.store("file")?.get("foo").await?;
/// assert_eq!(value.as_deref(), Some("bar"));
///
/// cache.put("greeting", &"hello", 10).await?; // the default store
/// assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct CacheManager {
    inner: Arc<Inner>,
}

struct Inner {
    config: CacheConfig,
    default: RwLock<Option<String>>,
    /// The default store's repository once resolved, so that an operation on the manager's
    /// face costs neither a lock nor an allocation to find it; unused once the default was
    /// changed with `set_default_driver` (then it is looked up each time).
    default_repository: std::sync::OnceLock<Repository>,
    default_changed: std::sync::atomic::AtomicBool,
    stores: Mutex<HashMap<String, Repository>>,
    /// One lock per store name, held while that store is built, so it is built once even
    /// when first used from many threads, without holding `stores` meanwhile.
    builds: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    drivers: RwLock<HashMap<String, DriverFactory>>,
    serializers: RwLock<HashMap<String, Serializer>>,
    /// Event hooks of every store of this manager.
    hooks: Arc<crate::observe::Hooks>,
}

impl std::fmt::Debug for CacheManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheManager")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl CacheManager {
    /// A manager over `config`. Nothing is connected or created until a store is used.
    pub fn new(config: CacheConfig) -> Result<Self> {
        let drivers = crate::stores::builtin()
            .into_iter()
            .map(|(name, factory)| (name.to_owned(), factory))
            .collect();
        let serializers = serializer::builtin()
            .into_iter()
            .map(|(name, serializer)| (name.to_owned(), serializer))
            .collect();
        let manager = CacheManager {
            inner: Arc::new(Inner {
                default: RwLock::new(config.default_name().map(str::to_owned)),
                default_repository: std::sync::OnceLock::new(),
                default_changed: std::sync::atomic::AtomicBool::new(false),
                config,
                stores: Mutex::new(HashMap::new()),
                builds: Mutex::new(HashMap::new()),
                drivers: RwLock::new(drivers),
                serializers: RwLock::new(serializers),
                hooks: Arc::default(),
            }),
        };
        for (name, build) in crate::stores::composite() {
            // A weak reference: the manager owns its drivers.
            let weak = Arc::downgrade(&manager.inner);
            let factory: DriverFactory = Arc::new(move |config| {
                let inner = weak.upgrade().ok_or_else(|| {
                    Error::new(ErrorKind::Config, "the cache manager was dropped")
                })?;
                build(&CacheManager { inner } as &dyn StoreResolver, config)
            });
            write(&manager.inner.drivers).insert(name.to_owned(), factory);
        }
        Ok(manager)
    }

    /// A manager over a config shaped like Python cachy's dict (see [`CacheConfig::from_value`]).
    pub fn from_value(config: serde_json::Value) -> Result<Self> {
        Self::new(CacheConfig::from_value(config)?)
    }

    /// A manager over a TOML, JSON or YAML config file (see [`CacheConfig::from_file`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::new(CacheConfig::from_file(path)?)
    }

    /// The configuration this manager was built from.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// The repository of the store `name`, or of the default store for `None`.
    ///
    /// The store is built on first use and shared afterwards.
    pub fn store<'a>(&self, name: impl Into<Option<&'a str>>) -> Result<Repository> {
        let name = match name.into() {
            Some(name) => name.to_owned(),
            None => self.default_store_name()?,
        };
        let stores = || {
            self.inner
                .stores
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some(repository) = stores().get(&name) {
            return Ok(repository.clone());
        }
        // Built under this name's own lock, not the map's, so a driver factory may ask this
        // manager for other stores.
        let _building = Building::enter(Arc::as_ptr(&self.inner) as usize, &name)?;
        let gate = Arc::clone(
            self.inner
                .builds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(name.clone())
                .or_default(),
        );
        let _gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(repository) = stores().get(&name) {
            return Ok(repository.clone());
        }
        let repository = self.build(&name)?;
        repository.observer().attach(&self.inner.hooks);
        stores().insert(name, repository.clone());
        Ok(repository)
    }

    /// The name of the default store: the configured `default` (or the one set with
    /// [`set_default_driver`](Self::set_default_driver)), else the only store.
    pub fn default_store_name(&self) -> Result<String> {
        if let Some(name) = read(&self.inner.default).as_ref() {
            return Ok(name.clone());
        }
        let stores = self.inner.config.stores();
        match stores.keys().next() {
            Some(only) if stores.len() == 1 => Ok(only.clone()),
            None => Err(Error::config(
                "stores",
                "the configuration defines no stores",
            )),
            Some(_) => Err(Error::config(
                "default",
                format!(
                    "{} stores are configured ({}) and none is named as `default`",
                    stores.len(),
                    stores.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// Make `name` the default store.
    pub fn set_default_driver(&self, name: impl Into<String>) {
        *write(&self.inner.default) = Some(name.into());
        self.inner
            .default_changed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Register a custom driver: stores whose `driver` is `driver` are built by `factory`,
    /// which gets the store's configuration and returns a [`Store`] or a [`Repository`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// use cachy::{CacheManager, StoreConfig, stores::NullStore};
    ///
    /// let cache = CacheManager::from_value(serde_json::json!({
    ///     "stores": { "mongo": { "driver": "mongo", "collection": "cache" } }
    /// }))?;
    /// cache.extend("mongo", |config: &StoreConfig| {
    ///     let _collection = config.required_str("collection")?;
    ///     Ok(NullStore) // a real driver would connect here
    /// });
    /// assert!(cache.get::<String>("anything").await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn extend<F, R>(&self, driver: impl Into<String>, factory: F) -> &Self
    where
        F: Fn(&StoreConfig) -> Result<R> + Send + Sync + 'static,
        R: Into<Created>,
    {
        let factory: DriverFactory = Arc::new(move |config| factory(config).map(Into::into));
        write(&self.inner.drivers).insert(driver.into(), factory);
        self
    }

    /// Call `hook` after every operation of every store of this manager (see
    /// [`Repository::on_event`]), those built already and those built later.
    pub fn on_event(
        &self,
        hook: impl Fn(&crate::observe::Event<'_>) + Send + Sync + 'static,
    ) -> &Self {
        self.inner.hooks.add(Arc::new(hook));
        self
    }

    /// Register a serializer under `name`, for the `serializer` fields of the configuration.
    pub fn register_serializer(
        &self,
        name: impl Into<String>,
        serializer: impl CustomSerializer,
    ) -> &Self {
        write(&self.inner.serializers).insert(name.into(), Serializer::custom(serializer));
        self
    }

    fn build(&self, name: &str) -> Result<Repository> {
        let stores = self.inner.config.stores();
        let config = stores.get(name).ok_or_else(|| {
            let names = || stores.keys().map(String::as_str);
            let hint = match crate::config::nearest(name, names()) {
                Some(candidate) => format!("; did you mean `{candidate}`?"),
                None => String::new(),
            };
            Error::new(
                ErrorKind::UnknownStore,
                format!(
                    "cache store `{name}` is not defined in the configuration{hint} (its \
                     stores: {})",
                    names().collect::<Vec<_>>().join(", ")
                ),
            )
            .with_store(name)
        })?;
        let factory = read(&self.inner.drivers)
            .get(config.driver())
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UnknownDriver,
                    format!(
                        "driver `{}` is not built in (or its cargo feature is off) and was not \
                         registered with `extend`",
                        config.driver()
                    ),
                )
                .with_store(name)
                .with_field(config.field_path("driver"))
            })?;
        let config = &config.with_global_serializer(self.inner.config.serializer_name());
        let created = factory(config).map_err(|e| e.with_store(name))?;
        match created {
            Created::Store(store) => {
                let integers = match config.str("integers")? {
                    None => None,
                    Some("decimal") => Some(IntegerFormat::Decimal),
                    Some("serializer") => Some(IntegerFormat::Serializer),
                    Some(other) => {
                        return Err(config.error(
                            "integers",
                            format!(
                                "`integers` must be \"decimal\" or \"serializer\", not {other:?}"
                            ),
                        ));
                    }
                };
                let mut serializer = self
                    .serializer_for(config, &*store)?
                    .with_limits(decode_limits(config)?);
                if let Some(integers) = integers {
                    if integers == IntegerFormat::Decimal && serializer.decimal_is_ambiguous() {
                        return Err(config.error(
                            "integers",
                            "`integers = \"decimal\"` cannot be used with msgpack: a single \
                             decimal digit is also a msgpack integer (b\"4\" is 52), so values \
                             would read back as other numbers",
                        ));
                    }
                    serializer = serializer.with_integer_format(integers);
                }
                let layered = crate::stores::layer::config::layer(config)?.over(Arc::clone(&store));
                Ok(Repository::layered(
                    name.to_owned(),
                    layered,
                    store,
                    serializer,
                ))
            }
            Created::Repository(repository) => {
                Ok(repository.in_layer(crate::stores::layer::config::layer(config)?))
            }
        }
    }

    /// The store's own `serializer` if it names one; else msgpack for a process-local store
    /// (no other program reads its bytes, and msgpack is the fastest built-in format); else
    /// the global `serializer`. A misspelt global name is an error even where it is unused.
    fn serializer_for(&self, config: &StoreConfig, store: &dyn Store) -> Result<Serializer> {
        let lookup =
            |name: &str, field: String| {
                read(&self.inner.serializers)
                    .get(name)
                    .cloned()
                    .ok_or_else(|| {
                        Error::new(
                    ErrorKind::UnknownSerializer,
                    format!("serializer `{name}` is not pickle, json, msgpack or a registered one"),
                )
                .with_store(config.name())
                .with_field(field)
                    })
            };
        if let Some(own) = config.serializer_name() {
            return lookup(own, config.field_path("serializer"));
        }
        let global = lookup(self.inner.config.serializer_name(), "serializer".to_owned())?;
        Ok(if store.is_process_local() {
            Serializer::msgpack()
        } else {
            global
        })
    }

    /// The default store's repository.
    fn default_repository(&self) -> Result<Repository> {
        use std::sync::atomic::Ordering;
        let changed = || self.inner.default_changed.load(Ordering::Acquire);
        if changed() {
            return self.store(None);
        }
        if let Some(repository) = self.inner.default_repository.get() {
            return Ok(repository.clone());
        }
        let repository = self.store(None)?;
        if !changed() {
            let _ = self.inner.default_repository.set(repository.clone());
        }
        Ok(repository)
    }

    /// [`Repository::tags`] on the default store.
    pub fn tags(
        &self,
        names: impl crate::tags::TagNames,
    ) -> Result<crate::repository::TaggedCache> {
        Ok(self.default_repository()?.tags(names))
    }

    /// [`Repository::lock`] in the default store.
    pub fn lock(&self, name: impl Into<String>, ttl: std::time::Duration) -> Result<crate::Lock> {
        Ok(self.default_repository()?.lock(name, ttl))
    }

    /// [`Repository::restore_lock`] in the default store.
    pub fn restore_lock(
        &self,
        name: impl Into<String>,
        ttl: std::time::Duration,
        owner: impl Into<String>,
    ) -> Result<crate::Lock> {
        Ok(self.default_repository()?.restore_lock(name, ttl, owner))
    }

    /// [`Repository::default_cache_time`] of the default store.
    pub fn default_cache_time(&self) -> Result<i64> {
        Ok(self.default_repository()?.default_cache_time())
    }

    /// [`Repository::set_default_cache_time`] on the default store: whole minutes or a
    /// `Duration`.
    pub fn set_default_cache_time(&self, expiry: impl Into<crate::Expiry>) -> Result<()> {
        self.default_repository()?.set_default_cache_time(expiry);
        Ok(())
    }
}

impl StoreResolver for CacheManager {
    fn resolve(&self, name: &str) -> Result<Repository> {
        self.store(name)
    }
}

/// Runs a repository operation on the default store.
macro_rules! on_default_store {
    ($manager:expr, $repository:ident => $call:expr) => {{
        let $repository = $manager.default_repository()?;
        $call.await
    }};
}

/// The data operations, on the default store.
impl CacheManager {
    crate::facade::repository_operations!(async, on_default_store);
}

thread_local! {
    /// The stores being built on this thread, by manager, to refuse a factory that asks for
    /// the store it is building (which would recurse forever).
    static BUILDING: std::cell::RefCell<Vec<(usize, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks a store as being built on this thread until dropped.
struct Building;

impl Building {
    fn enter(manager: usize, name: &str) -> Result<Self> {
        BUILDING.with_borrow_mut(|building| {
            if building.iter().any(|(m, n)| *m == manager && n == name) {
                return Err(Error::config(
                    format!("stores.{name}.driver"),
                    format!(
                        "building store `{name}` asks the manager for `{name}` itself (its \
                         driver factory, directly or through another store)"
                    ),
                )
                .with_store(name));
            }
            building.push((manager, name.to_owned()));
            Ok(Building)
        })
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        BUILDING.with_borrow_mut(|building| building.pop());
    }
}

/// The store's `decode_max_depth` and `decode_max_expansion`, over the defaults.
fn decode_limits(config: &StoreConfig) -> Result<DecodeLimits> {
    let mut limits = DecodeLimits::default();
    let positive = |field: &str| -> Result<Option<usize>> {
        match config.u64(field)? {
            None => Ok(None),
            Some(n) if n >= 1 && n <= u32::MAX.into() => Ok(usize::try_from(n).ok()),
            Some(n) => Err(config.error(
                field,
                format!("`{field}` must be from 1 to 4294967295, not {n}"),
            )),
        }
    };
    if let Some(depth) = positive("decode_max_depth")? {
        limits = limits.with_max_depth(depth);
    }
    if let Some(factor) = positive("decode_max_expansion")? {
        limits = limits.with_max_expansion(factor);
    }
    Ok(limits)
}
