//! Writing and removing: `put`, `forever`, `add`, `forget`, `touch`, `flush`.

use serde::Serialize;

use super::Repository;
use crate::codec::encode;

use crate::error::Result;
use crate::expiry::Expiry;
use crate::observe::{Operation, Outcome, removed, written};
use crate::store::Ttl;
use crate::tags;

impl Repository {
    /// Store `value` under `key` until `expiry`: a `Duration`, an absolute time, or whole
    /// minutes. A lifetime of zero or less, or a time already past, stores nothing and removes
    /// whatever `key` held.
    pub async fn put<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<()> {
        let ttl = expiry.into().ttl();
        self.observed(
            Operation::Put,
            Some(key),
            |()| written(ttl),
            self.put_ttl(key, value, ttl),
        )
        .await
    }

    /// Store `value` under `key` with no expiry; it stays until forgotten, flushed or evicted
    /// (under tags, until a tag is flushed).
    pub async fn forever<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let work = self.put_ttl(key, value, Some(None));
        self.observed(Operation::Put, Some(key), |()| Outcome::Written, work)
            .await
    }

    pub(super) async fn put_ttl<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Ttl>,
    ) -> Result<()> {
        let scope = self.scope(Some(key)).await?;
        let key = scope.key(key);
        let bytes = encode(&self.inner.serializer, value).map_err(self.context(&key))?;
        self.track_if_forever(&scope, &key, ttl).await?;
        self.store_bytes(&key, &bytes, ttl).await
    }

    /// Store `value` only if `key` holds nothing; `true` if it was stored. Atomic on every
    /// store: of many concurrent `add`s, exactly one wins. An expiry of zero or less stores
    /// nothing, returns `false` and leaves any existing value alone.
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<bool> {
        let Some(ttl) = expiry.into().ttl() else {
            return Ok(false);
        };
        let outcome = |added: &bool| {
            if *added {
                Outcome::Written
            } else {
                Outcome::Unchanged
            }
        };
        self.observed(Operation::Add, Some(key), outcome, async {
            let scope = self.scope(Some(key)).await?;
            let key = scope.key(key);
            let context = self.context(&key);
            let bytes = encode(&self.inner.serializer, value).map_err(&context)?;
            self.inner
                .store
                .add(&key, &bytes, ttl)
                .await
                .map_err(context)
        })
        .await
    }

    /// Remove `key`; `true` if something was removed.
    pub async fn forget(&self, key: &str) -> Result<bool> {
        self.observed(Operation::Forget, Some(key), removed, async {
            let scope = self.scope(Some(key)).await?;
            self.forget_stored(&scope.key(key)).await
        })
        .await
    }

    /// Give the live item under `key` the lifetime `expiry` from now, without rewriting it;
    /// `true` if there was one. Native on Redis (`EXPIRE`), memcached (`touch`), SQL (one
    /// `UPDATE`) and the memory store; elsewhere the value is read and stored again. A zero or
    /// past expiry removes the item, as with `put`. (Values written by
    /// [`remember_with`](Self::remember_with) with fail-safe or eager refresh keep their
    /// logical lifetime, which is in the value.)
    pub async fn touch(&self, key: &str, expiry: impl Into<Expiry>) -> Result<bool> {
        let ttl = expiry.into().ttl();
        let outcome = |touched: &bool| match (touched, ttl) {
            (false, _) => Outcome::Unchanged,
            (true, Some(_)) => Outcome::Written,
            (true, None) => Outcome::Removed,
        };
        self.observed(Operation::Touch, Some(key), outcome, async {
            let scope = self.scope(Some(key)).await?;
            let key = scope.key(key);
            match ttl {
                Some(ttl) => self
                    .inner
                    .store
                    .touch(&key, ttl)
                    .await
                    .map_err(self.context(&key)),
                None => self.forget_stored(&key).await,
            }
        })
        .await
    }

    pub(super) async fn forget_stored(&self, key: &str) -> Result<bool> {
        self.inner
            .store
            .forget(key)
            .await
            .map_err(self.context(key))
    }

    /// Store encoded `bytes` for `ttl`, or remove `key` when `ttl` is `None`.
    pub(crate) async fn store_bytes(
        &self,
        key: &str,
        bytes: &[u8],
        ttl: Option<Ttl>,
    ) -> Result<()> {
        match ttl {
            Some(ttl) => self
                .inner
                .store
                .put(key, bytes, ttl)
                .await
                .map_err(self.context(key)),
            None => self.forget_stored(key).await.map(drop),
        }
    }

    /// Remove every item of this store; under tags, invalidate every item stored under any
    /// of them instead: each tag gets a new id (and on Redis the items stored forever under
    /// them are deleted), and the rest of the store is left alone.
    pub async fn flush(&self) -> Result<()> {
        self.observed(Operation::Flush, None, |()| Outcome::Done, async {
            let flushed = match &self.tags {
                Some(names) => tags::flush(names, &**self.store(), self.serializer()).await,
                None => self.inner.store.flush().await,
            };
            flushed.map_err(|e| e.with_store(&self.inner.name))
        })
        .await
    }
}
