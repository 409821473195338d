//! The servers' own counters, and what [`Inspect`] offers of a memcached store.

use async_trait::async_trait;

use super::protocol::{Command, Reply};
use super::{MemcachedStore, protocol_error};
use crate::error::Result;
use crate::inspect::{Census, Inspect, Location, OnProgress, ServerStats, unsupported};
use crate::store::Store;

impl MemcachedStore {
    /// The counters of every server, in the configured order: one `stats` command each, all
    /// at once. Fails if any server fails (the error names it), as a server marked down
    /// does until `retry_after` has passed.
    pub async fn server_stats(&self) -> Result<Vec<ServerStats>> {
        let requests = self
            .servers
            .iter()
            .enumerate()
            .map(|(index, server)| async move {
                let reply = self.exchange(index, vec![Command::stats()]).await?;
                match reply.into_iter().next().flatten() {
                    Some(Reply::Stats(stats)) => parse_stats(server.address.to_string(), &stats),
                    _ => Err(protocol_error(format!(
                        "memcached server {} sent no stats",
                        server.address
                    ))),
                }
            });
        futures_util::future::try_join_all(requests).await
    }
}

/// The counters of the server at `address` from its `stats` lines; an error names the
/// one missing or malformed.
fn parse_stats(address: String, stats: &[(String, String)]) -> Result<ServerStats> {
    let number = |name: &str| {
        stats
            .iter()
            .find(|(stat, _)| stat == name)
            .and_then(|(_, value)| value.parse::<u64>().ok())
            .ok_or_else(|| {
                protocol_error(format!(
                    "memcached server {address} sent no valid `{name}` in its stats"
                ))
            })
    };
    Ok(ServerStats {
        curr_items: number("curr_items")?,
        bytes: number("bytes")?,
        limit_maxbytes: number("limit_maxbytes")?,
        get_hits: number("get_hits")?,
        get_misses: number("get_misses")?,
        evictions: number("evictions")?,
        address,
    })
}

#[async_trait]
impl Inspect for MemcachedStore {
    fn driver(&self) -> &'static str {
        "memcached"
    }

    fn location(&self) -> Location {
        Location::Servers(self.servers.iter().map(|s| s.address.to_string()).collect())
    }

    async fn census(&self, _: OnProgress) -> Result<Census> {
        Ok(Census::Servers(self.server_stats().await?))
    }

    async fn list_keys(&self, _: &str, _: OnProgress) -> Result<Vec<String>> {
        Err(unsupported(
            "list keys",
            "memcached has no command that lists them",
        ))
    }

    async fn prune(&self, _: OnProgress) -> Result<crate::inspect::Pruned> {
        Err(unsupported(
            "prune",
            "memcached removes expired items itself; there is nothing to prune",
        ))
    }

    async fn flush_with_progress(&self, _: OnProgress) -> Result<()> {
        Store::flush(self).await
    }
}
