//! Drivers: how a store's configuration becomes a store. The built-in drivers are listed
//! in `stores/mod.rs`, next to their modules, one line each;
//! [`CacheManager::extend`](crate::CacheManager::extend) adds more.

use std::sync::Arc;

use crate::config::StoreConfig;
use crate::error::Result;
use crate::repository::Repository;
use crate::store::Store;

/// What a driver factory builds: a bare store (the manager wraps it in a repository with the
/// configured serializer) or a ready repository (used as it is), as Python cachy allows both.
pub enum Created {
    /// A store; the manager adds the configured serializer.
    Store(Arc<dyn Store>),
    /// A repository, used as returned.
    Repository(Repository),
}

impl<S: Store> From<S> for Created {
    fn from(store: S) -> Self {
        Created::Store(Arc::new(store))
    }
}

impl From<Arc<dyn Store>> for Created {
    fn from(store: Arc<dyn Store>) -> Self {
        Created::Store(store)
    }
}

impl From<Repository> for Created {
    fn from(repository: Repository) -> Self {
        Created::Repository(repository)
    }
}

/// A driver factory: builds a store from its configuration.
pub type DriverFactory = Arc<dyn Fn(&StoreConfig) -> Result<Created> + Send + Sync>;

/// A driver factory from a store's `from_config`.
pub(crate) fn factory<S: Into<Created> + 'static>(
    build: fn(&StoreConfig) -> Result<S>,
) -> DriverFactory {
    Arc::new(move |config| build(config).map(Into::into))
}

/// The other stores of a configuration, by name: what a composite driver builds on. The
/// manager hands itself in as one, so that no store depends on the manager.
pub(crate) trait StoreResolver {
    /// The repository of the store `name`, built on first use.
    #[cfg_attr(
        not(feature = "hybrid"),
        expect(dead_code, reason = "the hybrid store is the one composite driver")
    )]
    fn resolve(&self, name: &str) -> Result<crate::Repository>;
}

/// A driver built over other stores of its configuration.
pub(crate) type CompositeFactory = fn(&dyn StoreResolver, &StoreConfig) -> Result<Created>;
