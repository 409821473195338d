//! Cache tags: [`TaggedCache`], the whole repository API over a set of tags, and flushing
//! everything stored under any of them.
//!
//! The scheme is Python cachy's (and Laravel's), so both sides share tagged items: each tag
//! has a random id stored forever under `tag:{name}:key`; a tagged item's key is
//! `sha1(ids joined by '|') + ":" + key`. Flushing a tag gives it a new id, so every item
//! stored under it becomes unreachable at once; the old items then expire by their own TTL.
//! Items stored *forever* under tags are listed, on stores that can keep such lists (Redis:
//! `{prefix}{tag id}:forever`), and deleted by the flush; elsewhere they stay until the store
//! evicts them (memory with `max_entries`, memcached) or the cache is flushed.
//!
//! A tagged read costs one `get_many` for all the tag ids (one `MGET` on Redis) and one `get`
//! for the item: two round trips, whatever the number of tags.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha1::{Digest, Sha1};

use crate::codec::{decode, encode};
use crate::error::{Error, Result};
use crate::expiry::Expiry;
use crate::repository::{CacheErrors, Remembered, Repository};

/// Tag names, given as one name, an array, a `Vec`, a slice, or a tuple of names (Python cachy's
/// `tags('people', 'artists')` is `tags(("people", "artists"))`).
pub trait TagNames {
    /// The names, in order (order matters: it is part of the namespace).
    fn into_names(self) -> Vec<String>;
}

impl TagNames for &str {
    fn into_names(self) -> Vec<String> {
        vec![self.to_owned()]
    }
}

impl TagNames for String {
    fn into_names(self) -> Vec<String> {
        vec![self]
    }
}

impl<S: AsRef<str>, const N: usize> TagNames for [S; N] {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}

impl<S: AsRef<str>> TagNames for Vec<S> {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}

impl<S: AsRef<str>> TagNames for &[S] {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}

macro_rules! tuple_tag_names {
    ($($name:ident),+) => {
        impl<$($name: AsRef<str>),+> TagNames for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_names(self) -> Vec<String> {
                let ($($name,)+) = self;
                vec![$($name.as_ref().to_owned()),+]
            }
        }
    };
}

tuple_tag_names!(A);
tuple_tag_names!(A, B);
tuple_tag_names!(A, B, C);
tuple_tag_names!(A, B, C, D);
tuple_tag_names!(A, B, C, D, E);
tuple_tag_names!(A, B, C, D, E, G);

/// The repository API over a set of tags: what [`Repository::tags`] returns.
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
#[derive(Debug, Clone)]
pub struct TaggedCache {
    repository: Repository,
    names: Vec<String>,
}

/// The key that holds a tag's id.
fn tag_key(name: &str) -> String {
    format!("tag:{name}:key")
}

/// A fresh tag id: 32 hex digits, unique across processes (time, process, counter and the
/// std hasher's random keys, through SHA-1), like Python cachy's `uuid4().hex`.
fn new_tag_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha1::new();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let random =
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), nanos);
    hasher.update(random.to_le_bytes());
    hex::encode(hasher.finalize())[..32].to_owned()
}

impl TaggedCache {
    pub(crate) fn new(repository: Repository, names: Vec<String>) -> Self {
        TaggedCache { repository, names }
    }

    /// The tag names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The current id of every tag, creating the missing ones: one `get_many`, plus one atomic
    /// `add` per tag that has no id yet.
    async fn tag_ids(&self) -> Result<Vec<String>> {
        let keys: Vec<String> = self.names.iter().map(|n| tag_key(n)).collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let stored: Vec<Option<String>> = self.repository.many(&key_refs).await?;
        let mut ids = Vec::with_capacity(stored.len());
        for (key, id) in keys.iter().zip(stored) {
            ids.push(match id {
                Some(id) => id,
                None => self.create_tag_id(key).await?,
            });
        }
        Ok(ids)
    }

    /// Give the tag stored under `key` an id, unless another caller just did.
    async fn create_tag_id(&self, key: &str) -> Result<String> {
        let id = new_tag_id();
        let store = self.repository.store();
        let bytes = encode(self.repository.serializer(), &id).map_err(|e| self.context(e, key))?;
        if store
            .add(key, &bytes, None)
            .await
            .map_err(|e| self.context(e, key))?
        {
            return Ok(id);
        }
        match store.get(key).await.map_err(|e| self.context(e, key))? {
            Some(bytes) => {
                decode(self.repository.serializer(), &bytes).map_err(|e| self.context(e, key))
            }
            None => Err(self.context(
                Error::new(
                    crate::ErrorKind::Backend,
                    "the tag id vanished while it was being created",
                ),
                key,
            )),
        }
    }

    fn context(&self, e: Error, key: &str) -> Error {
        e.with_store(self.repository.name()).with_key(key)
    }

    /// The prefix of every item key under the current tag ids: `sha1(namespace) + ":"`.
    fn namespace_prefix(ids: &[String]) -> String {
        format!("{}:", hex::encode(Sha1::digest(ids.join("|"))))
    }

    /// The store key of `key` under these tags.
    pub async fn tagged_key(&self, key: &str) -> Result<String> {
        let ids = self.tag_ids().await?;
        Ok(format!("{}{key}", Self::namespace_prefix(&ids)))
    }

    /// [`Repository::get`] under these tags.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.repository.get(&self.tagged_key(key).await?).await
    }

    /// [`Repository::get_or`] under these tags.
    pub async fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T> {
        Ok(self.get(key).await?.unwrap_or(default))
    }

    /// [`Repository::get_or_else`] under these tags.
    pub async fn get_or_else<T: DeserializeOwned>(
        &self,
        key: &str,
        default: impl FnOnce() -> T,
    ) -> Result<T> {
        Ok(self.get(key).await?.unwrap_or_else(default))
    }

    /// [`Repository::get_or_else_async`] under these tags.
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

    /// [`Repository::has`] under these tags.
    pub async fn has(&self, key: &str) -> Result<bool> {
        self.repository.has(&self.tagged_key(key).await?).await
    }

    /// [`Repository::pull`] under these tags.
    pub async fn pull<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.repository.pull(&self.tagged_key(key).await?).await
    }

    /// [`Repository::put`] under these tags.
    pub async fn put<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<()> {
        self.repository
            .put(&self.tagged_key(key).await?, value, expiry)
            .await
    }

    /// [`Repository::add`] under these tags.
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<bool> {
        self.repository
            .add(&self.tagged_key(key).await?, value, expiry)
            .await
    }

    /// [`Repository::forever`] under these tags; on Redis the key is also listed under each
    /// tag so that flushing the tag deletes it.
    pub async fn forever<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let ids = self.tag_ids().await?;
        let tagged = format!("{}{key}", Self::namespace_prefix(&ids));
        self.track_forever(&ids, &tagged).await?;
        self.repository.forever(&tagged, value).await
    }

    async fn track_forever(&self, ids: &[String], tagged_key: &str) -> Result<()> {
        match self.repository.store().forever_tracker() {
            Some(tracker) => tracker
                .track(ids, tagged_key)
                .await
                .map_err(|e| self.context(e, tagged_key)),
            None => Ok(()),
        }
    }

    /// [`Repository::forget`] under these tags.
    pub async fn forget(&self, key: &str) -> Result<bool> {
        self.repository.forget(&self.tagged_key(key).await?).await
    }

    /// [`Repository::increment`] under these tags.
    pub async fn increment(&self, key: &str) -> Result<i64> {
        self.increment_by(key, 1).await
    }

    /// [`Repository::increment_by`] under these tags.
    pub async fn increment_by(&self, key: &str, amount: i64) -> Result<i64> {
        self.repository
            .increment_by(&self.tagged_key(key).await?, amount)
            .await
    }

    /// [`Repository::decrement`] under these tags.
    pub async fn decrement(&self, key: &str) -> Result<i64> {
        self.decrement_by(key, 1).await
    }

    /// [`Repository::decrement_by`] under these tags.
    pub async fn decrement_by(&self, key: &str, amount: i64) -> Result<i64> {
        self.repository
            .decrement_by(&self.tagged_key(key).await?, amount)
            .await
    }

    /// [`Repository::remember`] under these tags (stampede-safe as well).
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
        let tagged = self.tagged_key(key).await?;
        self.repository.remember(&tagged, expiry, compute).await
    }

    /// [`Repository::remember_forever`] under these tags; a computed value is listed for the
    /// tags' flush as [`forever`](Self::forever) does.
    pub async fn remember_forever<T, E, F, Fut>(&self, key: &str, compute: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let ids = self.tag_ids().await?;
        let tagged = format!("{}{key}", Self::namespace_prefix(&ids));
        let track = || async {
            let value = compute().await?;
            self.track_forever(&ids, &tagged).await?;
            Ok(value)
        };
        self.repository
            .remember_with(&tagged, Some(None), CacheErrors::Return, track)
            .await
            .map_err(Remembered::into_error)
    }

    /// [`Repository::many`] under these tags: the tag ids are read once for all the keys.
    pub async fn many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        let prefix = Self::namespace_prefix(&self.tag_ids().await?);
        let tagged: Vec<String> = keys.iter().map(|k| format!("{prefix}{k}")).collect();
        let refs: Vec<&str> = tagged.iter().map(String::as_str).collect();
        self.repository.many(&refs).await
    }

    /// [`Repository::put_many`] under these tags.
    pub async fn put_many<K, T>(&self, items: &[(K, T)], expiry: impl Into<Expiry>) -> Result<()>
    where
        K: AsRef<str>,
        T: Serialize,
    {
        let prefix = Self::namespace_prefix(&self.tag_ids().await?);
        let tagged: Vec<(String, &T)> = items
            .iter()
            .map(|(k, v)| (format!("{prefix}{}", k.as_ref()), v))
            .collect();
        self.repository.put_many(&tagged, expiry).await
    }

    /// Invalidate every item stored under any of these tags: each tag gets a new id (and on
    /// Redis the items stored forever under them are deleted).
    pub async fn flush(&self) -> Result<()> {
        let tracker = self.repository.store().forever_tracker();
        let old_ids = match tracker {
            Some(_) => Some(self.tag_ids().await?),
            None => None,
        };
        // New ids first: a `forever` racing the flush then lists its key under the new ids
        // (reachable) rather than under old ids whose lists were already deleted.
        for name in &self.names {
            self.repository
                .forever(&tag_key(name), &new_tag_id())
                .await?;
        }
        if let (Some(tracker), Some(old_ids)) = (tracker, old_ids) {
            tracker
                .delete_tracked(&old_ids)
                .await
                .map_err(|e| e.with_store(self.repository.name()))?;
        }
        Ok(())
    }
}
