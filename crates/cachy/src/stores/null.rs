use async_trait::async_trait;

use crate::config::StoreConfig;
use crate::error::Result;
use crate::store::{Store, Ttl};

/// A store that keeps nothing (driver `null`): every read misses, `add` reports that nothing
/// was added, and counters behave as if they started at 0 each time. For turning caching off
/// by configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullStore;

impl NullStore {
    /// Build from configuration; the `null` driver takes no options.
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        let NullOptions {} = config.parse()?;
        Ok(NullStore)
    }
}

/// The `null` driver's options: none.
#[derive(serde::Deserialize)]
struct NullOptions {}

#[async_trait]
impl Store for NullStore {
    fn inspector(&self) -> std::result::Result<&dyn crate::inspect::Inspect, &'static str> {
        Err("it is the null store, which keeps nothing")
    }

    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    async fn put(&self, _: &str, _: &[u8], _: Ttl) -> Result<()> {
        Ok(())
    }

    async fn add(&self, _: &str, _: &[u8], _: Ttl) -> Result<bool> {
        Ok(false)
    }

    async fn increment(&self, _: &str, by: i64) -> Result<i64> {
        Ok(by)
    }

    /// Like `increment`, answers as if it had stored the value.
    async fn increment_expiring(&self, _: &str, by: i64, _: Ttl) -> Result<i64> {
        Ok(by)
    }

    async fn compare_and_swap(&self, _: &str, _: Option<&[u8]>, _: &[u8]) -> Result<bool> {
        Ok(true)
    }

    async fn compare_and_delete(&self, _: &str, _: &[u8]) -> Result<bool> {
        Ok(false)
    }

    async fn touch(&self, _: &str, _: Ttl) -> Result<bool> {
        Ok(false)
    }

    async fn forget(&self, _: &str) -> Result<bool> {
        Ok(false)
    }

    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}
