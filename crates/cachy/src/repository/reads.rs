//! Reading one key: `get` and its variants, `has`, `pull`.

use std::any::TypeId;
use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::Repository;
use crate::codec::decode;
use crate::decoded::Decoded;
use crate::envelope;
use crate::error::Result;

use crate::observe::{Operation, Outcome, found, reporting};

impl Repository {
    /// The value under `key`, or `None` if there is none.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let observation = self.start_observation(Operation::Get, Some(key));
        // An in-process hit is answered here, without making (and moving) the futures of the
        // general path.
        if self.tags.is_none() {
            let in_process = observation.in_scope(|| {
                let shared = self.inner.store.get_in_process(key)?;
                Some(
                    self.decode_fresh(shared.as_deref())
                        .map_err(self.context(key)),
                )
            });
            if let Some(result) = in_process {
                return self.finish_observation(observation, result, reporting(Some(key), found));
            }
        }
        let work = async {
            if self.tags.is_none() {
                // The store's keyspace, which was asked for an in-process copy above.
                let stored = self.inner.store.get(key).await;
                return stored
                    .and_then(|stored| self.decode_fresh(stored.as_deref()))
                    .map_err(self.context(key));
            }
            let scope = self.scope(Some(key)).await?;
            self.get_stored(&scope.key(key)).await
        };
        self.observe_until(observation, work, reporting(Some(key), found))
            .await
    }

    /// The value under `key`, shared: as [`get`](Self::get), but an `Arc<T>`, which lets an
    /// in-process store keep it.
    ///
    /// On the memory store and a hybrid store's first level, the value the first read
    /// decodes is kept beside the stored bytes, and later reads of the same type (with the
    /// same serializer) answer it without decoding again: a hit costs a lookup, whatever the
    /// format and the size of the value. The bytes stay the truth: a read of another type
    /// decodes them (and fails on a mismatch), a write replaces both, and a value past its
    /// logical expiry is not answered. Only the first type read is kept per stored value. A
    /// store bounded by `max_bytes` keeps no decoded value (what one takes in memory cannot
    /// be known from outside it, and the bound must hold): there, as on the other stores,
    /// this is `get` wrapped in an `Arc`.
    ///
    /// Every reader shares the kept value: a `T` that can change behind a shared reference
    /// (a `Mutex`, an atomic, a `Cell`-like type) changed by one reader is what the next
    /// readers get, until the key is written again. Read such types with `get`, which
    /// decodes a value of the caller's own.
    pub async fn get_shared<T>(&self, key: &str) -> Result<Option<Arc<T>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let observation = self.start_observation(Operation::Get, Some(key));
        if self.tags.is_none() {
            let in_process = observation.in_scope(|| {
                self.get_shared_in_process(key)
                    .map(|result| result.map_err(self.context(key)))
            });
            if let Some(result) = in_process {
                return self.finish_observation(observation, result, reporting(Some(key), found));
            }
        }
        let work = async {
            let scope = self.scope(Some(key)).await?;
            let key = scope.key(key);
            // Untagged, the store was asked above already.
            if self.tags.is_some()
                && let Some(result) = self.get_shared_in_process(&key)
            {
                return result.map_err(self.context(&key));
            }
            let context = self.context(&key);
            let stored = self.inner.store.get(&key).await.map_err(&context)?;
            Ok(self
                .decode_fresh(stored.as_deref())
                .map_err(context)?
                .map(Arc::new))
        };
        self.observe_until(observation, work, reporting(Some(key), found))
            .await
    }

    /// The value under the store key `key` if the store has it in process: the copy it
    /// keeps decoded, or its bytes decoded now (and the copy handed to it to keep).
    fn get_shared_in_process<T>(&self, key: &str) -> Option<Result<Option<Arc<T>>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let (store, serializer) = (&self.inner.store, &self.inner.serializer);
        let kept = store.get_decoded_in_process(key, TypeId::of::<T>(), serializer);
        if let Some(Ok(value)) = kept.map(|kept| kept.downcast::<T>()) {
            return Some(Ok(Some(value)));
        }
        let Some(bytes) = store.get_in_process(key)? else {
            return Some(Ok(None));
        };
        let Some((payload, fresh_until)) = envelope::fresh_payload_until(&bytes) else {
            return Some(Ok(None));
        };
        Some(decode::<T>(serializer, payload).map(|value| {
            let value = Arc::new(value);
            let kept = Decoded::new(Arc::clone(&value), serializer, fresh_until);
            store.keep_decoded(key, &bytes, kept);
            Some(value)
        }))
    }

    /// The value under the store key `key`.
    pub(crate) async fn get_stored<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let context = self.context(key);
        if let Some(shared) = self.inner.store.get_in_process(key) {
            return self.decode_fresh(shared.as_deref()).map_err(context);
        }
        let stored = self.inner.store.get(key).await.map_err(&context)?;
        self.decode_fresh(stored.as_deref()).map_err(context)
    }

    /// The value in `stored` bytes, `None` for none or for a value past its logical expiry
    /// (see [`crate::envelope`]).
    pub(super) fn decode_fresh<T: DeserializeOwned>(
        &self,
        stored: Option<&[u8]>,
    ) -> Result<Option<T>> {
        match stored.and_then(|bytes| envelope::fresh_payload(bytes)) {
            Some(payload) => decode(&self.inner.serializer, payload).map(Some),
            None => Ok(None),
        }
    }

    /// The value under `key`, or `default` if there is none.
    pub async fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T> {
        Ok(self.get(key).await?.unwrap_or(default))
    }

    /// The value under `key`, or what `default` returns if there is none (only then is it
    /// called). Nothing is stored; see [`remember`](Self::remember) for that.
    pub async fn get_or_else<T: DeserializeOwned>(
        &self,
        key: &str,
        default: impl FnOnce() -> T,
    ) -> Result<T> {
        Ok(self.get(key).await?.unwrap_or_else(default))
    }

    /// The value under `key`, or what the async `default` resolves to if there is none.
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

    /// Whether a live item is stored under `key`, whatever its type.
    pub async fn has(&self, key: &str) -> Result<bool> {
        let outcome = |has: &bool| if *has { Outcome::Hit } else { Outcome::Miss };
        self.observed(Operation::Has, Some(key), outcome, async {
            let scope = self.scope(Some(key)).await?;
            let key = scope.key(key);
            let fresh = |bytes: &[u8]| envelope::fresh_payload(bytes).is_some();
            if let Some(shared) = self.inner.store.get_in_process(&key) {
                return Ok(shared.is_some_and(|bytes| fresh(&bytes)));
            }
            let stored = self
                .inner
                .store
                .get(&key)
                .await
                .map_err(self.context(&key))?;
            Ok(stored.is_some_and(|bytes| fresh(&bytes)))
        })
        .await
    }

    /// The value under `key`, removed from the cache. Not atomic: a value written between the
    /// read and the removal is removed too.
    ///
    /// A value of the wrong type is an error and is left in the cache.
    pub async fn pull<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.observed(Operation::Pull, Some(key), found, async {
            let scope = self.scope(Some(key)).await?;
            let key = scope.key(key);
            let value = self.get_stored(&key).await?;
            if value.is_some() {
                self.forget_stored(&key).await?;
            }
            Ok(value)
        })
        .await
    }
}
