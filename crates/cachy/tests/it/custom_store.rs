//! A store from outside the crate, written to the recipe every store follows (see
//! CONTRIBUTING.md): a module with the store and its typed config, `with_config` for code
//! and a `from_config` that only parses and calls it, one registration line and one
//! behaviour-suite line. The suite runs on it returned both as a bare store and as a ready
//! repository (Python cachy accepts both).

use std::sync::Arc;

use cachy::{CacheManager, ErrorKind, Repository, StoreConfig};
use cachy_testkit::Fixture;

use map::MapStore;

/// The store's own module: what a built-in store keeps in `stores/<name>/`.
mod map {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use cachy::{Error, Result, Store, StoreConfig, Ttl};

    /// The store's options, the one list of them: a misspelt option in a config file is an
    /// error naming `stores.<name>.<field>` and the nearest field.
    #[derive(Debug, Default, serde::Deserialize)]
    pub struct MapConfig {
        /// Put in front of every key.
        #[serde(default)]
        pub prefix: String,
    }

    /// A deliberately plain store: one map behind one lock. It leaves `increment` to the
    /// trait's default (read, add, compare and swap), so the behaviour suite checks that
    /// default too.
    pub struct MapStore {
        prefix: String,
        map: Mutex<Map>,
    }

    type Map = HashMap<String, (Vec<u8>, Option<Instant>)>;

    impl MapStore {
        /// A store as `config` describes it; an error names the field that is wrong.
        pub fn with_config(config: MapConfig) -> Result<Self> {
            if config.prefix.contains(char::is_whitespace) {
                return Err(Error::config("prefix", "`prefix` must not contain spaces"));
            }
            Ok(MapStore {
                prefix: config.prefix,
                map: Mutex::default(),
            })
        }

        /// Build from a store's configuration: the fields of [`MapConfig`].
        pub fn from_config(config: &StoreConfig) -> Result<Self> {
            config.build(Self::with_config)
        }

        fn live<'a>(map: &'a Map, key: &str) -> Option<&'a (Vec<u8>, Option<Instant>)> {
            map.get(key)
                .filter(|(_, deadline)| deadline.is_none_or(|d| d > Instant::now()))
        }

        fn deadline(ttl: Ttl) -> Option<Instant> {
            ttl.map(|s| Instant::now() + Duration::from_secs(s))
        }

        fn key(&self, key: &str) -> String {
            format!("{}{key}", self.prefix)
        }

        fn map(&self) -> std::sync::MutexGuard<'_, Map> {
            self.map.lock().unwrap()
        }
    }

    #[cachy::async_trait]
    impl Store for MapStore {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
            Ok(Self::live(&self.map(), &self.key(key)).map(|(v, _)| v.clone()))
        }

        async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
            self.map()
                .insert(self.key(key), (value.to_vec(), Self::deadline(ttl)));
            Ok(())
        }

        async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
            let (mut map, key) = (self.map(), self.key(key));
            if Self::live(&map, &key).is_some() {
                return Ok(false);
            }
            map.insert(key, (value.to_vec(), Self::deadline(ttl)));
            Ok(true)
        }

        async fn compare_and_swap(
            &self,
            key: &str,
            current: Option<&[u8]>,
            new: &[u8],
        ) -> Result<bool> {
            let (mut map, key) = (self.map(), self.key(key));
            let live = Self::live(&map, &key);
            if live.map(|(bytes, _)| bytes.as_slice()) != current {
                return Ok(false);
            }
            let deadline = live.and_then(|(_, deadline)| *deadline);
            map.insert(key, (new.to_vec(), deadline));
            Ok(true)
        }

        async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
            let (mut map, key) = (self.map(), self.key(key));
            if Self::live(&map, &key).map(|(bytes, _)| bytes.as_slice()) != Some(expected) {
                return Ok(false);
            }
            map.remove(&key);
            Ok(true)
        }

        async fn forget(&self, key: &str) -> Result<bool> {
            let (mut map, key) = (self.map(), self.key(key));
            let live = Self::live(&map, &key).is_some();
            map.remove(&key);
            Ok(live)
        }

        async fn flush(&self) -> Result<()> {
            self.map().clear();
            Ok(())
        }
    }
}

fn manager() -> CacheManager {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": {
            "as-store": { "driver": "map", "prefix": "app:" },
            "as-repository": { "driver": "map-repository", "serializer": "json" }
        }
    }))
    .unwrap();
    // The one registration line.
    manager.extend("map", MapStore::from_config);
    manager.extend("map-repository", |config: &StoreConfig| {
        Ok(Repository::new(
            config.name(),
            Arc::new(MapStore::from_config(config)?),
            cachy::serializer::Serializer::msgpack(),
        ))
    });
    manager
}

mod returned_as_a_store {
    use super::*;

    async fn custom() -> Fixture {
        Fixture::new(manager().store("as-store").unwrap(), ())
    }

    cachy_testkit::behaviour_suite!(custom);
}

mod returned_as_a_repository {
    use super::*;

    async fn custom() -> Fixture {
        Fixture::new(manager().store("as-repository").unwrap(), ())
    }

    cachy_testkit::behaviour_suite!(custom);
}

#[test]
fn a_config_mistake_names_the_store_and_field() {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": {
            "spaced": { "driver": "map", "prefix": "a b" },
            "misspelt": { "driver": "map", "prefx": "a" }
        }
    }))
    .unwrap();
    manager.extend("map", MapStore::from_config);
    let err = manager.store("spaced").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.field(), Some("stores.spaced.prefix"), "{err}");
    let err = manager.store("misspelt").unwrap_err();
    assert_eq!(err.field(), Some("stores.misspelt.prefx"), "{err}");
    assert!(err.to_string().contains("did you mean `prefix`"), "{err}");
}

#[tokio::test]
async fn a_factory_error_names_the_store_and_field() {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": { "mongo": { "driver": "mongo" } }
    }))
    .unwrap();
    manager.extend("mongo", |config: &StoreConfig| {
        config.required_str("collection")?;
        MapStore::from_config(config)
    });
    let err = manager.store("mongo").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.store(), Some("mongo"));
    assert_eq!(err.field(), Some("stores.mongo.collection"));
    assert!(err.to_string().contains("collection"), "{err}");
}
