//! Operations on many keys at once: `many` and `put_many`.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::encode;
use crate::error::Result;
use crate::expiry::Expiry;
use crate::observe::{Operation, error_outcome, found, written};
use crate::store::Ttl;

impl super::Repository {
    /// The values under `keys`, in the same order, `None` for each miss. One round trip on
    /// stores that can (Redis `MGET`, memcached multi-get, one SQL query); under tags, the
    /// tag ids are read once for all the keys.
    pub async fn many<T: DeserializeOwned>(
        &self,
        keys: &[impl AsRef<str>],
    ) -> Result<Vec<Option<T>>> {
        let work = self.many_stored(keys);
        self.observed_each(Operation::Many, None, work, |result, record| match result {
            Ok(values) => {
                for (key, value) in keys.iter().zip(values) {
                    record(Some(key.as_ref()), found(value));
                }
            }
            Err(e) => record(None, error_outcome(e)),
        })
        .await
    }

    async fn many_stored<T: DeserializeOwned>(
        &self,
        keys: &[impl AsRef<str>],
    ) -> Result<Vec<Option<T>>> {
        let scope = self.scope(None).await?;
        let stored: Vec<Cow<'_, str>> = keys.iter().map(|key| scope.key(key.as_ref())).collect();
        let stored: Vec<&str> = stored.iter().map(|key| &**key).collect();
        let values = self
            .inner
            .store
            .get_many(&stored)
            .await
            .map_err(|e| e.with_store(&self.inner.name))?;
        stored
            .iter()
            .zip(values)
            .map(|(key, bytes)| {
                self.decode_fresh(bytes.as_deref())
                    .map_err(self.context(key))
            })
            .collect()
    }

    /// Store every `(key, value)` pair until `expiry`, with the same rules as
    /// [`put`](Self::put).
    pub async fn put_many<K, T>(&self, items: &[(K, T)], expiry: impl Into<Expiry>) -> Result<()>
    where
        K: AsRef<str>,
        T: Serialize,
    {
        let ttl = expiry.into().ttl();
        let work = self.put_many_stored(items, ttl);
        self.observed_each(
            Operation::PutMany,
            None,
            work,
            |result, record| match result {
                Ok(()) => {
                    for (key, _) in items {
                        record(Some(key.as_ref()), written(ttl));
                    }
                }
                Err(e) => record(None, error_outcome(e)),
            },
        )
        .await
    }

    async fn put_many_stored<K, T>(&self, items: &[(K, T)], ttl: Option<Ttl>) -> Result<()>
    where
        K: AsRef<str>,
        T: Serialize,
    {
        let scope = self.scope(None).await?;
        let Some(ttl) = ttl else {
            for (key, _) in items {
                self.forget_stored(&scope.key(key.as_ref())).await?;
            }
            return Ok(());
        };
        let keys: Vec<Cow<'_, str>> = items
            .iter()
            .map(|(key, _)| scope.key(key.as_ref()))
            .collect();
        let encoded = keys
            .iter()
            .zip(items)
            .map(|(key, (_, value))| {
                encode(&self.inner.serializer, value)
                    .map(|bytes| (&**key, bytes))
                    .map_err(self.context(key))
            })
            .collect::<Result<Vec<_>>>()?;
        self.inner
            .store
            .put_many(&encoded, ttl)
            .await
            .map_err(|e| e.with_store(&self.inner.name))
    }
}
