//! The behaviour suite on a store registered through `extend`, returned both as a bare store
//! and as a ready repository (Python cachy accepts both).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachy::{CacheManager, ErrorKind, Repository, Result, Store, StoreConfig, Ttl};
use cachy_testkit::Fixture;

/// A deliberately plain store: one map behind one lock. It leaves `increment` to the trait's
/// default (read, add, compare and swap), so the behaviour suite checks that default too.
#[derive(Default)]
struct MapStore(Mutex<Map>);

type Map = HashMap<String, (Vec<u8>, Option<Instant>)>;

impl MapStore {
    fn live<'a>(map: &'a Map, key: &str) -> Option<&'a (Vec<u8>, Option<Instant>)> {
        map.get(key)
            .filter(|(_, deadline)| deadline.is_none_or(|d| d > Instant::now()))
    }

    fn deadline(ttl: Ttl) -> Option<Instant> {
        ttl.map(|s| Instant::now() + Duration::from_secs(s))
    }

    fn map(&self) -> std::sync::MutexGuard<'_, Map> {
        self.0.lock().unwrap()
    }
}

#[cachy::async_trait]
impl Store for MapStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(Self::live(&self.map(), key).map(|(v, _)| v.clone()))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.map()
            .insert(key.to_owned(), (value.to_vec(), Self::deadline(ttl)));
        Ok(())
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let mut map = self.map();
        if Self::live(&map, key).is_some() {
            return Ok(false);
        }
        map.insert(key.to_owned(), (value.to_vec(), Self::deadline(ttl)));
        Ok(true)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        let mut map = self.map();
        let live = Self::live(&map, key);
        if live.map(|(bytes, _)| bytes.as_slice()) != current {
            return Ok(false);
        }
        let deadline = live.and_then(|(_, deadline)| *deadline);
        map.insert(key.to_owned(), (new.to_vec(), deadline));
        Ok(true)
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let mut map = self.map();
        if Self::live(&map, key).map(|(bytes, _)| bytes.as_slice()) != Some(expected) {
            return Ok(false);
        }
        map.remove(key);
        Ok(true)
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        let mut map = self.map();
        let live = Self::live(&map, key).is_some();
        map.remove(key);
        Ok(live)
    }

    async fn flush(&self) -> Result<()> {
        self.map().clear();
        Ok(())
    }
}

fn manager() -> CacheManager {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": {
            "as-store": { "driver": "map" },
            "as-repository": { "driver": "map-repository", "serializer": "json" }
        }
    }))
    .unwrap();
    manager.extend("map", |_: &StoreConfig| Ok(MapStore::default()));
    manager.extend("map-repository", |config: &StoreConfig| {
        Ok(Repository::new(
            config.name(),
            Arc::new(MapStore::default()),
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

#[tokio::test]
async fn a_factory_error_names_the_store_and_field() {
    let manager = CacheManager::from_value(serde_json::json!({
        "stores": { "mongo": { "driver": "mongo" } }
    }))
    .unwrap();
    manager.extend("mongo", |config: &StoreConfig| {
        config.required_str("collection")?;
        Ok(MapStore::default())
    });
    let err = manager.store("mongo").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.store(), Some("mongo"));
    assert_eq!(err.field(), Some("stores.mongo.collection"));
    assert!(err.to_string().contains("collection"), "{err}");
}
