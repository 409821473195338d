//! `Store` and `ForeverTracker` for the Redis store.

use std::time::Duration;

use async_trait::async_trait;
use redis::cmd;

use super::scripts::*;
use super::*;
use crate::error::Result;
use crate::inspect::Inspect;
use crate::store::{ForeverTracker, Lifetime, Store, Ttl};

/// Python cachy's lists: `{prefix}{tag id}:forever` holds the full keys (with the prefix)
/// of the items stored forever under that tag id.
#[async_trait]
impl ForeverTracker for RedisStore {
    async fn track(&self, tag_ids: &[String], key: &str) -> Result<()> {
        let full_key = self.key(key);
        for id in tag_ids {
            let _: i64 = self
                .query(
                    cmd("LPUSH")
                        .arg(self.key(&format!("{id}:forever")))
                        .arg(full_key),
                )
                .await?;
        }
        Ok(())
    }

    /// A page of the list at a time, each page's `DEL` sent with the read of the next: the
    /// memory a flush takes and the time it holds the server stay those of one page,
    /// however many items the tag has.
    async fn delete_tracked(&self, tag_ids: &[String]) -> Result<()> {
        for id in tag_ids {
            let list = self.key(&format!("{id}:forever")).to_string();
            let page_from = |start: usize| {
                cmd("LRANGE")
                    .arg(&list)
                    .arg(start)
                    .arg(start + FLUSH_BATCH - 1)
                    .clone()
            };
            let mut start = 0;
            let mut page: Vec<Vec<u8>> = self.query(&page_from(start)).await?;
            while !page.is_empty() {
                start += page.len();
                let delete = cmd("DEL").arg(&page).clone();
                if page.len() < FLUSH_BATCH {
                    let _: i64 = self.query(&delete).await?;
                    break;
                }
                let (_, next): (i64, Vec<Vec<u8>>) = futures_util::future::try_join(
                    self.query(&delete),
                    self.query(&page_from(start)),
                )
                .await?;
                page = next;
            }
            let _: i64 = self.query(cmd("DEL").arg(&list)).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.query(cmd("GET").arg(self.key(key))).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Prefixed<'_>> = keys.iter().map(|k| self.key(k)).collect();
        self.query(cmd("MGET").arg(&keys)).await
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        let key = self.key(key);
        let mut pipeline = redis::pipe();
        pipeline.cmd("GET").arg(key).cmd("PTTL").arg(key);
        let (value, millis): (Option<Vec<u8>>, i64) = self.query_pipeline(&pipeline).await?;
        let lifetime = match millis {
            -1 => Lifetime::Forever,
            // -2: it expired between the two commands.
            millis => Lifetime::Remaining(Duration::from_millis(millis.max(0).unsigned_abs())),
        };
        Ok(value.map(|value| (value, lifetime)))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.query(&set_command(self.key(key), value, ttl)).await
    }

    async fn put_many(&self, items: &[(&str, Vec<u8>)], ttl: Ttl) -> Result<()> {
        if self.is_cluster() {
            // A cluster transaction cannot span slots: send each SET, pipelined on the
            // multiplexed connection.
            let sets = items.iter().map(|(key, value)| self.put(key, value, ttl));
            futures_util::future::try_join_all(sets).await?;
            return Ok(());
        }
        let mut transaction = redis::pipe();
        transaction.atomic();
        for (key, value) in items {
            transaction
                .add_command(set_command(self.key(key), value, ttl))
                .ignore();
        }
        self.query_pipeline(&transaction).await
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let mut set = set_command(self.key(key), value, ttl);
        set.arg("NX");
        let reply: Option<String> = self.query(&set).await?;
        Ok(reply.is_some())
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        self.query(cmd("INCRBY").arg(self.key(key)).arg(by))
            .await
            .map_err(counter_error)
    }

    async fn increment_expiring(&self, key: &str, by: i64, ttl: Ttl) -> Result<i64> {
        let Some(seconds) = ttl else {
            return self.increment(key, by).await;
        };
        let mut count = cmd("EVAL");
        count
            .arg(INCREMENT_EXPIRING)
            .arg(1)
            .arg(self.key(key))
            .arg(by)
            .arg(seconds);
        self.query(&count).await.map_err(counter_error)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        let mut swap = cmd("EVAL");
        swap.arg(COMPARE_AND_SWAP).arg(1).arg(self.key(key));
        match current {
            Some(current) => swap.arg("replace").arg(current),
            None => swap.arg("create").arg(""),
        };
        let swapped: i64 = self.query(swap.arg(new)).await?;
        Ok(swapped == 1)
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let mut delete = cmd("EVAL");
        delete
            .arg(COMPARE_AND_DELETE)
            .arg(1)
            .arg(self.key(key))
            .arg(expected);
        let deleted: i64 = self.query(&delete).await?;
        Ok(deleted == 1)
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool> {
        let touched: i64 = match ttl {
            Some(seconds) => {
                self.query(cmd("EXPIRE").arg(self.key(key)).arg(seconds))
                    .await?
            }
            // PERSIST answers 0 for a key without a TTL as for a missing one.
            None => {
                self.query(cmd("EVAL").arg(PERSIST).arg(1).arg(self.key(key)))
                    .await?
            }
        };
        Ok(touched == 1)
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        let removed: i64 = self.query(cmd("DEL").arg(self.key(key))).await?;
        Ok(removed > 0)
    }

    fn forever_tracker(&self) -> Option<&dyn ForeverTracker> {
        Some(self)
    }

    fn inspector(&self) -> std::result::Result<&dyn Inspect, &'static str> {
        Ok(self)
    }

    #[cfg(feature = "hybrid")]
    fn pubsub(
        self: std::sync::Arc<Self>,
    ) -> std::result::Result<std::sync::Arc<dyn crate::store::PubSub>, &'static str> {
        Ok(self)
    }

    async fn flush(&self) -> Result<()> {
        match (self.prefix.is_empty(), self.is_cluster()) {
            (true, _) => self.query(&cmd("FLUSHDB")).await,
            (false, false) => self.unlink_prefix_on(None).await,
            (false, true) => {
                let primaries = self.cluster_primaries().await?;
                if let Connection::Cluster(connection) = self.connection().await? {
                    for (host, port) in &primaries {
                        self.unlink_prefix_on(Some((&connection, host, *port)))
                            .await?;
                    }
                }
                Ok(())
            }
        }
    }
}
