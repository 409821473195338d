//! The counters: `increment`, `decrement` and their variants.

use crate::codec::{encode, incremented_in_format};
use crate::error::{Error, Result};
use crate::expiry::Expiry;
use crate::observe::{Operation, Outcome};
use crate::serializer::IntegerFormat;
use crate::store::{Ttl, increment_by_swapping};

impl super::Repository {
    /// Add one to the counter under `key` and return the new value. A missing key starts at 0
    /// and is kept without expiry; an existing TTL is kept; a value that is not an integer is
    /// an [`ErrorKind::NotAnInteger`](crate::ErrorKind::NotAnInteger) error.
    pub async fn increment(&self, key: &str) -> Result<i64> {
        self.increment_by(key, 1).await
    }

    /// Add `amount` to the counter under `key` (see [`increment`](Self::increment)).
    pub async fn increment_by(&self, key: &str, amount: i64) -> Result<i64> {
        self.count(key, amount, None).await
    }

    /// Add `amount` to the counter under `key`; a missing counter is created holding
    /// `amount`, kept until `expiry`, atomically on every store: the counter of a rate
    /// window, in one call. An existing counter keeps its own expiry. An expiry of zero or
    /// less is an [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// use std::time::Duration;
    ///
    /// let cache = cachy::CacheManager::from_value(serde_json::json!({
    ///     "stores": { "dict": { "driver": "dict" } }
    /// }))?;
    /// let window = Duration::from_secs(60);
    /// assert_eq!(cache.increment_expiring("requests:ann", 1, window).await?, 1);
    /// assert_eq!(cache.increment_expiring("requests:ann", 1, window).await?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn increment_expiring(
        &self,
        key: &str,
        amount: i64,
        expiry: impl Into<Expiry>,
    ) -> Result<i64> {
        let Some(ttl @ Some(_)) = expiry.into().ttl() else {
            return Err(Error::new(
                crate::ErrorKind::InvalidInput,
                "an expiring counter needs a lifetime above zero",
            )
            .with_store(&self.inner.name)
            .with_key(key));
        };
        self.count(key, amount, ttl).await
    }

    /// Add `amount` to the counter under `key`, creating a missing one for `ttl`.
    async fn count(&self, key: &str, amount: i64, ttl: Ttl) -> Result<i64> {
        let work = self.count_stored(key, amount, ttl);
        self.observed(Operation::Increment, Some(key), |_| Outcome::Done, work)
            .await
    }

    async fn count_stored(&self, key: &str, amount: i64, ttl: Ttl) -> Result<i64> {
        let scope = self.scope(Some(key)).await?;
        let key = scope.key(key);
        let store = &**self.store();
        let counted = if self.inner.serializer.integer_format() == IntegerFormat::Serializer {
            let serializer = &self.inner.serializer;
            increment_by_swapping(
                store,
                &key,
                amount,
                ttl,
                |current, by| incremented_in_format(serializer, current, by),
                |next| encode(serializer, &next),
            )
            .await
        } else if ttl.is_some() {
            store.increment_expiring(&key, amount, ttl).await
        } else {
            store.increment(&key, amount).await
        };
        counted.map_err(self.context(&key))
    }

    /// Subtract one from the counter under `key`; counters may go below zero.
    pub async fn decrement(&self, key: &str) -> Result<i64> {
        self.decrement_by(key, 1).await
    }

    /// Subtract `amount` from the counter under `key`.
    pub async fn decrement_by(&self, key: &str, amount: i64) -> Result<i64> {
        let negated = amount.checked_neg().ok_or_else(|| {
            Error::new(
                crate::ErrorKind::InvalidInput,
                format!("cannot decrement by {amount}: its negation overflows"),
            )
            .with_store(&self.inner.name)
            .with_key(key)
        })?;
        self.increment_by(key, negated).await
    }
}
