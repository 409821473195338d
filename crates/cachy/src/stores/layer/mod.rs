//! The layer every store is built in, between the repository and the driver's store: what a
//! store's config says about its keys (`namespace`, `version`, `max_key_bytes`) and its
//! stored values (`compress`, `encrypt`, `max_value_bytes`), applied the same way to every
//! backend.
//!
//! A value is compressed, then encrypted, then checked against `max_value_bytes`; reading
//! undoes what its stored form says was done, whatever the config says now (see
//! [`compress`] and [`encrypt`] for the forms). Integers and lock tokens never shrink when
//! compressed, so they are stored as they are unless the store encrypts, and a store's own
//! atomic increment keeps working on them. An encrypting store increments by compare and
//! swap instead.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;

use crate::decoded::Decoded;
use crate::error::{Error, ErrorKind, Result};
use crate::inspect::Inspect;
use crate::store::{
    EvictionListener, ForeverTracker, Lifetime, Store, Ttl, increment_by_swapping,
    increment_counter,
};

pub(crate) mod compress;
pub(crate) mod config;
#[cfg(feature = "encrypt")]
mod encrypt;
#[cfg(test)]
mod tests;

/// What a store's config asks of its keys and values.
#[derive(Debug, Default)]
pub(crate) struct Layer {
    keys: Keys,
    values: Values,
}

impl Layer {
    /// `store` in this layer, whatever the layer does.
    pub(crate) fn around(self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(LayeredStore {
            inner: store,
            layer: self,
        })
    }

    /// `store` in this layer, unless it is process-local and the layer does nothing (no
    /// other program writes its values, so there is nothing to read that it did not write).
    pub(crate) fn over(self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        if store.is_process_local() && self.keys.is_plain() && self.values.is_plain() {
            return store;
        }
        self.around(store)
    }
}

/// The keys of a store: a prefix for its namespace and version, a limit on their length.
#[derive(Debug, Default)]
struct Keys {
    prefix: String,
    max_bytes: Option<usize>,
}

impl Keys {
    fn new(
        namespace: Option<&str>,
        version: Option<u64>,
        max_bytes: Option<usize>,
    ) -> std::result::Result<Self, String> {
        let mut prefix = String::new();
        if let Some(namespace) = namespace {
            // A `:` would let two namespaces, or a namespace and a version, make the same
            // prefix; `cachy` is the start of cachy's own keys.
            if namespace.is_empty() || namespace.contains(':') || namespace == "cachy" {
                return Err(format!(
                    "`namespace` must be a non-empty name without `:`, other than `cachy`, not \
                     {namespace:?}"
                ));
            }
            prefix.push_str(namespace);
            prefix.push(':');
        }
        if let Some(version) = version {
            // In cachy's own key space, so that no key of a store without a version is one.
            prefix.push_str(&format!("cachy:store-v{version}:"));
        }
        Ok(Keys { prefix, max_bytes })
    }

    fn is_plain(&self) -> bool {
        self.prefix.is_empty() && self.max_bytes.is_none()
    }

    /// The key the driver's store is given for `key`.
    fn key<'k>(&self, key: &'k str) -> Result<Cow<'k, str>> {
        if self.is_plain() {
            return Ok(Cow::Borrowed(key));
        }
        let stored = if self.prefix.is_empty() {
            Cow::Borrowed(key)
        } else {
            Cow::Owned(format!("{}{key}", self.prefix))
        };
        match self.max_bytes {
            Some(max) if stored.len() > max => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the key is {} bytes long{}, over the store's `max_key_bytes` of {max}",
                    stored.len(),
                    if self.prefix.is_empty() {
                        String::new()
                    } else {
                        format!(" with its prefix {:?}", self.prefix)
                    }
                ),
            )),
            _ => Ok(stored),
        }
    }
}

/// How a store's values are stored: compressed, encrypted, bounded.
#[derive(Debug, Default)]
struct Values {
    compression: Option<compress::Compression>,
    limits: compress::Limits,
    #[cfg(feature = "encrypt")]
    encryption: Option<encrypt::Encryption>,
    max_value_bytes: Option<usize>,
}

/// Whether stored bytes are a compressed or encrypted value (no serializer's output starts
/// with the envelope's mark, which both forms start with).
fn is_frame(bytes: &[u8]) -> bool {
    bytes.starts_with(&compress::MAGIC) || bytes.starts_with(&ENCRYPTED)
}

pub(crate) const ENCRYPTED: [u8; 4] = [crate::envelope::MARK, b'c', b'e', 1];

/// Why `bytes` cannot be decoded, if they are a compressed or encrypted value that reached
/// the serializer: read through a store without the keys to open it (or not built by a
/// [`CacheManager`](crate::CacheManager), which puts every store in its layer).
pub(crate) fn unopened(bytes: &[u8]) -> Option<Error> {
    let why = if bytes.starts_with(&ENCRYPTED) {
        "the stored value is encrypted: give this store the `encrypt` keys it was written with \
         (cargo feature `encrypt`)"
    } else if bytes.starts_with(&compress::MAGIC) {
        "the stored value is compressed, and this in-process store reads values as they are \
         (it has none of the options): give it `compress` (any algorithm, or \"none\")"
    } else {
        return None;
    };
    Some(Error::new(ErrorKind::Deserialize, why))
}

impl Values {
    fn is_plain(&self) -> bool {
        self.compression.is_none() && !self.encrypts() && self.max_value_bytes.is_none()
    }

    /// Whether stored values may be another form of what was given (compressed, sealed).
    fn transforms(&self) -> bool {
        self.compression.is_some() || self.encrypts()
    }

    /// Whether counters are incremented here, by compare and swap, instead of by the
    /// store: when they are sealed, or when a limit is shorter than the longest counter.
    fn counts_by_swapping(&self) -> bool {
        const LONGEST_COUNTER: usize = "-9223372036854775808".len();
        self.encrypts()
            || self
                .max_value_bytes
                .is_some_and(|max| max < LONGEST_COUNTER)
    }

    fn encrypts(&self) -> bool {
        #[cfg(feature = "encrypt")]
        return self.encryption.is_some();
        #[cfg(not(feature = "encrypt"))]
        false
    }

    /// What is stored under `key` (the driver's key) for `value`.
    fn seal<'v>(&self, key: &str, value: &'v [u8]) -> Result<Cow<'v, [u8]>> {
        let mut stored = Cow::Borrowed(value);
        if let Some(compression) = &self.compression
            && let Some(compressed) = compression.compress(value, &self.limits)?
        {
            stored = Cow::Owned(compressed);
        }
        #[cfg(feature = "encrypt")]
        if let Some(encryption) = &self.encryption {
            stored = Cow::Owned(encryption.seal(key, &stored)?);
        }
        #[cfg(not(feature = "encrypt"))]
        let _ = key;
        match self.max_value_bytes {
            Some(max) if stored.len() > max => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the value is {} bytes as stored, over the store's `max_value_bytes` of \
                     {max}: it was not stored",
                    stored.len()
                ),
            )),
            _ => Ok(stored),
        }
    }

    /// The value in the bytes `stored` under `key` (the driver's key).
    fn open(&self, key: &str, stored: Vec<u8>) -> Result<Vec<u8>> {
        if stored.starts_with(&ENCRYPTED) {
            // Without keys, an encrypted value goes up as it is: to a layer above that has
            // them (a store in front of this one), or to the decoder, which says what it is.
            #[cfg(feature = "encrypt")]
            if let Some(encryption) = &self.encryption {
                return self.decompressed(encryption.open(key, &stored)?);
            }
            #[cfg(not(feature = "encrypt"))]
            let _ = key;
            return Ok(stored);
        }
        #[cfg(feature = "encrypt")]
        if let Some(encryption) = &self.encryption
            && !encryption.allow_plaintext
        {
            return Err(encryption.plaintext_refused());
        }
        self.decompressed(stored)
    }

    fn decompressed(&self, value: Vec<u8>) -> Result<Vec<u8>> {
        if value.starts_with(&compress::MAGIC) {
            compress::decompress(&value, &self.limits)
        } else if value.starts_with(&ENCRYPTED) {
            Err(Error::new(
                ErrorKind::Deserialize,
                "the stored value is not valid: an encrypted value inside another",
            ))
        } else {
            Ok(value)
        }
    }

    /// [`open`](Self::open) for bytes an in-process store shares: the same allocation when
    /// they are stored as they are.
    fn open_shared(&self, key: &str, stored: Arc<[u8]>) -> Result<Arc<[u8]>> {
        if !is_frame(&stored) && !self.encrypts() {
            return Ok(stored);
        }
        self.open(key, stored.to_vec()).map(Arc::from)
    }
}

/// A driver's store in its [`Layer`].
struct LayeredStore {
    inner: Arc<dyn Store>,
    layer: Layer,
}

impl LayeredStore {
    fn key<'k>(&self, key: &'k str) -> Result<Cow<'k, str>> {
        self.layer.keys.key(key)
    }

    fn open(&self, key: &str, stored: Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        stored
            .map(|bytes| self.layer.values.open(key, bytes))
            .transpose()
    }
}

#[async_trait]
impl Store for LayeredStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = self.key(key)?;
        let stored = self.inner.get(&key).await?;
        self.open(&key, stored)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let keys = keys
            .iter()
            .map(|key| self.key(key))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&str> = keys.iter().map(|key| &**key).collect();
        let stored = self.inner.get_many(&refs).await?;
        refs.iter()
            .zip(stored)
            .map(|(key, bytes)| self.open(key, bytes))
            .collect()
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        let key = self.key(key)?;
        let value = self.layer.values.seal(&key, value)?;
        self.inner.put(&key, &value, ttl).await
    }

    async fn put_many(&self, items: &[(&str, Vec<u8>)], ttl: Ttl) -> Result<()> {
        let keys = items
            .iter()
            .map(|(key, _)| self.key(key))
            .collect::<Result<Vec<_>>>()?;
        let values = keys
            .iter()
            .zip(items)
            .map(|(key, (_, value))| Ok(self.layer.values.seal(key, value)?.into_owned()))
            .collect::<Result<Vec<_>>>()?;
        let items: Vec<(&str, Vec<u8>)> = keys.iter().map(|key| &**key).zip(values).collect();
        self.inner.put_many(&items, ttl).await
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let key = self.key(key)?;
        let value = self.layer.values.seal(&key, value)?;
        self.inner.add(&key, &value, ttl).await
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        if self.layer.values.counts_by_swapping() {
            return increment_by_swapping(self, key, by, None, increment_counter, decimal).await;
        }
        self.inner.increment(&self.key(key)?, by).await
    }

    async fn increment_expiring(&self, key: &str, by: i64, ttl: Ttl) -> Result<i64> {
        if self.layer.values.counts_by_swapping() {
            return increment_by_swapping(self, key, by, ttl, increment_counter, decimal).await;
        }
        self.inner
            .increment_expiring(&self.key(key)?, by, ttl)
            .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        let key = self.key(key)?;
        let new = self.layer.values.seal(&key, new)?;
        if !self.layer.values.transforms()
            && self.inner.compare_and_swap(&key, current, &new).await?
        {
            return Ok(true);
        }
        // The stored bytes may be another form of `current` (sealed, or compressed by
        // another writer): compare what they hold, then swap those very bytes.
        let stored = self.inner.get(&key).await?;
        if self.open(&key, stored.clone())?.as_deref() != current {
            return Ok(false);
        }
        self.inner
            .compare_and_swap(&key, stored.as_deref(), &new)
            .await
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let key = self.key(key)?;
        if !self.layer.values.transforms() && self.inner.compare_and_delete(&key, expected).await? {
            return Ok(true);
        }
        let Some(stored) = self.inner.get(&key).await? else {
            return Ok(false);
        };
        if self.layer.values.open(&key, stored.clone())? != expected {
            return Ok(false);
        }
        self.inner.compare_and_delete(&key, &stored).await
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        let key = self.key(key)?;
        match self.inner.get_with_lifetime(&key).await? {
            Some((bytes, lifetime)) => Ok(Some((self.layer.values.open(&key, bytes)?, lifetime))),
            None => Ok(None),
        }
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        self.inner.touch(&self.key(key)?, ttl).await
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        self.inner.forget(&self.key(key)?).await
    }

    async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }

    fn get_in_process(&self, key: &str) -> Option<Option<Arc<[u8]>>> {
        // A key or value that cannot be read here is left to `get`, which says why.
        let key = self.key(key).ok()?;
        match self.inner.get_in_process(&key)? {
            Some(bytes) => self.layer.values.open_shared(&key, bytes).ok().map(Some),
            None => Some(None),
        }
    }

    fn get_decoded_in_process(
        &self,
        key: &str,
        type_id: std::any::TypeId,
        serializer: &crate::serializer::Serializer,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        // A kept value was decoded from the stored bytes without this layer's checks (a
        // repository over the same store without encryption may have kept it).
        if self.layer.values.encrypts() {
            return None;
        }
        let key = self.key(key).ok()?;
        self.inner.get_decoded_in_process(&key, type_id, serializer)
    }

    fn keep_decoded(&self, key: &str, bytes: &Arc<[u8]>, decoded: Decoded) {
        if let Ok(key) = self.key(key) {
            self.inner.keep_decoded(&key, bytes, decoded);
        }
    }

    fn listen_evictions(&self, listener: EvictionListener) {
        self.inner.listen_evictions(listener);
    }

    async fn publish_changes(&self) -> Result<()> {
        self.inner.publish_changes().await
    }

    async fn catch_up(&self) -> Result<()> {
        self.inner.catch_up().await
    }

    fn keep_after_failed_write(&self, key: &str, value: &[u8], ttl: Option<std::time::Duration>) {
        if let Ok(key) = self.key(key)
            && let Ok(value) = self.layer.values.seal(&key, value)
        {
            self.inner.keep_after_failed_write(&key, &value, ttl);
        }
    }

    fn is_process_local(&self) -> bool {
        self.inner.is_process_local()
    }

    fn forever_tracker(&self) -> Option<&dyn ForeverTracker> {
        self.inner.forever_tracker()?;
        Some(self)
    }

    fn inspector(&self) -> std::result::Result<&dyn Inspect, &'static str> {
        self.inner.inspector()
    }

    #[cfg(feature = "hybrid")]
    fn pubsub(self: Arc<Self>) -> std::result::Result<Arc<dyn crate::store::PubSub>, &'static str> {
        Arc::clone(&self.inner).pubsub()
    }
}

#[async_trait]
impl ForeverTracker for LayeredStore {
    async fn track(&self, tag_ids: &[String], key: &str) -> Result<()> {
        match self.inner.forever_tracker() {
            Some(tracker) => tracker.track(tag_ids, &self.key(key)?).await,
            None => Ok(()),
        }
    }

    async fn delete_tracked(&self, tag_ids: &[String]) -> Result<()> {
        match self.inner.forever_tracker() {
            Some(tracker) => tracker.delete_tracked(tag_ids).await,
            None => Ok(()),
        }
    }
}

fn decimal(value: i64) -> Result<Vec<u8>> {
    Ok(value.to_string().into_bytes())
}
