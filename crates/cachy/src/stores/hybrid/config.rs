//! The `hybrid` driver's config, and building a hybrid store from it.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::backplane::{self, Backplane};
use super::levels::{Levels, Stripe};
use super::{DEFAULT_L1_MAX_ENTRIES, DEFAULT_L1_TTL, HybridStore, STRIPES};
use crate::config::StoreConfig;
use crate::config::options::fields;
use crate::driver::{Created, StoreResolver};
use crate::error::{Error, Result};
use crate::repository::Repository;
use crate::store::Store;
use crate::stores::MemoryStore;

/// How a [`HybridStore`] is built: the options of the `hybrid` driver, as read from a
/// config file. In code, [`HybridStore::with_config`] takes the stores themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct HybridConfig {
    /// The configured store under it, the second level: any store but another hybrid one
    /// (required in a config file).
    #[serde(default)]
    pub l2: String,
    /// The configured store whose server carries the invalidations between processes: a
    /// Redis store, on one server or a Redis Cluster (default: `l2`, when it is one).
    pub backplane: Option<String>,
    /// How long a first-level copy is kept at most (default 60 s; in a config file,
    /// seconds).
    #[serde(default, deserialize_with = "fields::seconds")]
    pub l1_ttl: Option<Duration>,
    /// The first level's bound.
    #[serde(default)]
    pub l1: L1Config,
    /// The channel of the invalidations: every process sharing the store must use the same
    /// (in a config file, the default is the backplane store's prefix, `cachy:hybrid:` and
    /// this store's name; in code it is required).
    pub channel: Option<String>,
}

/// The first level of a [`HybridConfig`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct L1Config {
    /// The most copies it holds (default 10,000).
    #[serde(default, deserialize_with = "fields::count")]
    pub max_entries: Option<u64>,
}

impl HybridStore {
    /// A hybrid store over `l2`, announcing its changes through `backplane` (a store whose
    /// [`Store::pubsub`] works: a Redis store), as `config` describes; its
    /// `l2` and `backplane` names are not used here, and its `channel` is required. Values
    /// must be encoded as they are through `l2`, so give its repository the same serializer.
    /// Must be called within a tokio runtime or with cachy's background runtime available.
    ///
    /// ```no_run
    /// # async fn run() -> cachy::Result<()> {
    /// use std::sync::Arc;
    /// use cachy::stores::{HybridConfig, HybridStore, RedisConfig, RedisStore};
    ///
    /// let mut redis = RedisConfig::default();
    /// redis.url = Some("redis://127.0.0.1:6379/0".to_owned());
    /// let redis = Arc::new(RedisStore::with_config(redis)?);
    /// let mut config = HybridConfig::default();
    /// config.channel = Some("app:cachy:hybrid".to_owned());
    /// let store = HybridStore::with_config(config, redis.clone(), redis)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_config(
        config: HybridConfig,
        l2: Arc<dyn Store>,
        backplane: Arc<dyn Store>,
    ) -> Result<Self> {
        if (&*l2 as &dyn std::any::Any).is::<HybridStore>() {
            let named = match config.l2.as_str() {
                "" => String::new(),
                name => format!(" (`{name}`)"),
            };
            return Err(Error::config(
                "l2",
                format!("`l2`{named} is itself a hybrid store; a hybrid store's l2 cannot be"),
            ));
        }
        let pubsub = backplane.pubsub().map_err(|why| {
            Error::config(
                "backplane",
                format!(
                    "a hybrid store needs a store that carries messages between processes (a \
                     Redis store) as its `backplane`, and {} cannot: {why}",
                    config
                        .backplane
                        .as_deref()
                        .map_or_else(|| "this one".to_owned(), |name| format!("`{name}`"))
                ),
            )
        })?;
        if config.channel.as_deref() == Some("") {
            return Err(Error::config("channel", "`channel` must not be empty"));
        }
        let channel = config.channel.ok_or_else(|| {
            Error::config(
                "channel",
                "a hybrid store built in code needs its `channel`: every process sharing the \
                 store must use the same",
            )
        })?;
        let levels = Arc::new(Levels {
            l1: MemoryStore::with_max_entries(
                config.l1.max_entries.unwrap_or(DEFAULT_L1_MAX_ENTRIES),
            ),
            l2,
            l1_ttl: fields::checked("l1_ttl", config.l1_ttl)?.unwrap_or(DEFAULT_L1_TTL),
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            hasher: Default::default(),
        });
        let backplane = Arc::new(Backplane::new(pubsub, channel));
        let (running, stopped) = tokio::sync::watch::channel(());
        backplane::start(&backplane, &levels, stopped)?;
        Ok(HybridStore {
            levels,
            backplane,
            _running: running,
        })
    }

    /// Build the store `config` describes over the stores of its configuration it names,
    /// which `stores` resolves: the fields of [`HybridConfig`]. Values are encoded with the
    /// serializer of `l2`, so they read the same through either store.
    pub(crate) fn build(stores: &dyn StoreResolver, config: &StoreConfig) -> Result<Created> {
        let store_named = |field: &str, name: &str| {
            stores.resolve(name).map_err(|e| {
                let message = format!("`{field}` names store `{name}`, which failed: {e}");
                Error::new(e.kind(), message).with_field(field)
            })
        };
        // The store reads and writes through `l2`'s repository: settings of its own for the
        // encoding would silently do nothing.
        if config.serializer_name().is_some() {
            return Err(config.error(
                "serializer",
                format!(
                    "a hybrid store encodes values as its `l2` does: set `serializer` on store \
                     `{}` instead",
                    config
                        .options()
                        .get("l2")
                        .and_then(|l2| l2.as_str())
                        .unwrap_or("l2")
                ),
            ));
        }
        if let Some(field) =
            crate::config::common_fields().find(|field| config.options().contains_key(*field))
        {
            return Err(config.error(
                field,
                format!(
                    "a hybrid store reads and writes values through its `l2`: set `{field}` \
                     there"
                ),
            ));
        }
        let (store, serializer) = config.build(|mut options: HybridConfig| {
            if options.l2.is_empty() {
                return Err(Error::config("l2", "the `hybrid` driver needs `l2`"));
            }
            let l2 = store_named("l2", &options.l2)?;
            let backplane = match &options.backplane {
                Some(name) => store_named("backplane", name)?,
                None => l2.clone(),
            };
            if options.backplane.is_none() {
                options.backplane = Some(options.l2.clone());
            }
            if options.channel.is_none() {
                let prefix = Arc::clone(backplane.store())
                    .pubsub()
                    .map(|pubsub| pubsub.prefix().to_owned())
                    .unwrap_or_default();
                options.channel = Some(format!("{prefix}cachy:hybrid:{}", config.name()));
            }
            let store = HybridStore::with_config(
                options,
                Arc::clone(l2.store()),
                Arc::clone(backplane.store()),
            )?;
            Ok((store, l2.serializer().clone()))
        })?;
        Ok(Created::Repository(Repository::new(
            config.name(),
            Arc::new(store),
            serializer,
        )))
    }
}
