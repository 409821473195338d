//! Cluster nodes, scanning a prefix (keys, flush) and value sizes: what [`Inspect`] offers
//! of a Redis store.

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, cmd};

use super::connection::*;
use super::*;
use crate::error::{Error, ErrorKind, Result};
use crate::inspect::{Census, Inspect, Location, OnProgress, Progress, Pruned, unsupported};
use crate::store::Store;

impl RedisStore {
    /// The primaries of the cluster, as `(host, port)`, from `CLUSTER NODES`.
    pub(super) async fn cluster_primaries(&self) -> Result<Vec<(String, u16)>> {
        let nodes: String = self.query(cmd("CLUSTER").arg("NODES")).await?;
        let primaries = nodes
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let flags = fields.get(2)?;
                if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                    return None;
                }
                let address = fields.get(1)?.split('@').next()?;
                let (host, port) = address.rsplit_once(':')?;
                Some((host.to_owned(), port.parse().ok()?))
            })
            .collect();
        Ok(primaries)
    }

    /// Delete every key under the prefix: on the one node, or on the cluster node `node`.
    pub(super) async fn unlink_prefix_on(
        &self,
        node: Option<(&ClusterConnection, &str, u16)>,
    ) -> Result<()> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut cursor = 0u64;
        loop {
            let mut scan = cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(FLUSH_BATCH);
            let (next, keys): (u64, Vec<Vec<u8>>) = match node {
                None => self.query(&scan).await?,
                Some((connection, host, port)) => {
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.to_owned(),
                        port,
                    });
                    let value = self
                        .guarded(|| {
                            let (mut connection, scan) = (connection.clone(), scan.clone());
                            let routing = routing.clone();
                            async move {
                                let scan = connection.route_command(scan, routing);
                                bounded(self.call_timeout, scan)
                                    .await?
                                    .map_err(|e| redis_error("SCAN failed", e))
                            }
                        })
                        .await?;
                    FromRedisValue::from_redis_value(value)
                        .map_err(|e| Error::backend("unexpected SCAN reply", e))?
                }
            };
            if !keys.is_empty() {
                let _: i64 = self.query(cmd("UNLINK").arg(&keys)).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Walk the keys under [`prefix`](Self::prefix) whose rest matches the glob `pattern`
    /// (Redis's: `*`, `?` for one byte, `[abc]`, `[^a-z]`, `\` to take the next character
    /// as itself): `SCAN` with `MATCH` (the prefix's own glob characters escaped) and
    /// `COUNT 1000`, on every primary of a cluster. `found` is called once per key with the
    /// key without the prefix and, when `sizes` is true, the bytes of its value (`STRLEN`,
    /// one pipeline per page of keys; 0 for a key that is not a string, such as the lists
    /// tags keep, or that expired meanwhile), else `None`.
    ///
    /// The walk takes the memory of one page, however many keys there are: so it does not
    /// remember what it gave, and a key may be given twice when Redis resizes its table
    /// during the walk (`SCAN`'s own guarantee; [`Inspect::list_keys`] sorts and drops the
    /// repeats, a census may count them). Keys written or deleted during the walk may or may
    /// not be given. A key that is not
    /// UTF-8 (written by another program) is given with its invalid bytes replaced by
    /// U+FFFD. A malformed pattern (an unclosed `[`, a trailing `\`) is an
    /// [`ErrorKind::InvalidInput`] error.
    pub async fn scan_prefix(
        &self,
        pattern: &str,
        sizes: bool,
        mut found: impl FnMut(&str, Option<u64>) + Send,
    ) -> Result<()> {
        Self::check_glob(pattern)?;
        let pattern = format!("{}{pattern}", glob_escape(&self.prefix));
        if !self.is_cluster() {
            return self.scan_node(None, &pattern, sizes, &mut found).await;
        }
        let primaries = self.cluster_primaries().await?;
        if let Connection::Cluster(connection) = self.connection().await? {
            for (host, port) in &primaries {
                let node = Some((&connection, host.as_str(), *port));
                self.scan_node(node, &pattern, sizes, &mut found).await?;
            }
        }
        Ok(())
    }

    /// Refuse a pattern that `SCAN MATCH` would read leniently: an unclosed `[`, a trailing
    /// `\`.
    pub(super) fn check_glob(pattern: &str) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!("bad key pattern: the pattern {pattern:?} {what}"),
            ))
        };
        let mut bytes = pattern.bytes();
        let mut in_class = false;
        while let Some(byte) = bytes.next() {
            match byte {
                b'\\' if bytes.next().is_none() => return bad("ends with a lone `\\`"),
                b'[' if !in_class => in_class = true,
                b']' => in_class = false,
                _ => {}
            }
        }
        if in_class {
            return bad("has a `[` without its `]`");
        }
        Ok(())
    }

    /// [`scan_prefix`](Self::scan_prefix) for the full-key `pattern` on the one node, or on
    /// the cluster node `node`.
    pub(super) async fn scan_node(
        &self,
        node: Option<(&ClusterConnection, &str, u16)>,
        pattern: &str,
        sizes: bool,
        found: &mut (dyn FnMut(&str, Option<u64>) + Send),
    ) -> Result<()> {
        let mut cursor = 0u64;
        loop {
            let mut scan = cmd("SCAN");
            // 1000 keys a page: few round trips, and each command stays short for the server.
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, keys): (u64, Vec<Vec<u8>>) = self.on_node(node, &scan).await?;
            let lengths = if sizes && !keys.is_empty() {
                Some(self.value_lengths(node, &keys).await?)
            } else {
                None
            };
            for (index, key) in keys.iter().enumerate() {
                let rest = key.get(self.prefix.len()..).unwrap_or_default();
                let length = lengths
                    .as_ref()
                    .and_then(|lengths| lengths.get(index).copied());
                found(&String::from_utf8_lossy(rest), length);
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Run `command` on the one node, or on the cluster node `node`, past the circuit
    /// breaker.
    pub(super) async fn on_node<T: FromRedisValue>(
        &self,
        node: Option<(&ClusterConnection, &str, u16)>,
        command: &Cmd,
    ) -> Result<T> {
        let Some((connection, host, port)) = node else {
            return self.query(command).await;
        };
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.to_owned(),
            port,
        });
        let value = self
            .guarded(|| {
                let (mut connection, command) = (connection.clone(), command.clone());
                let routing = routing.clone();
                async move {
                    bounded(
                        self.call_timeout,
                        connection.route_command(command, routing),
                    )
                    .await?
                    .map_err(|e| redis_error("the Redis command failed", e))
                }
            })
            .await?;
        FromRedisValue::from_redis_value(value)
            .map_err(|e| Error::backend("unexpected Redis reply", e))
    }

    /// The bytes of the values under the full keys `keys`, all on the one node or on the
    /// cluster node `node`: `STRLEN` in one pipeline, 0 for a key that is not a string or
    /// is gone.
    pub(super) async fn value_lengths(
        &self,
        node: Option<(&ClusterConnection, &str, u16)>,
        keys: &[Vec<u8>],
    ) -> Result<Vec<u64>> {
        let mut pipeline = redis::pipe();
        // A key of another type answers WRONGTYPE, which must not fail the others.
        pipeline.ignore_errors();
        for key in keys {
            pipeline.cmd("STRLEN").arg(key);
        }
        let replies: Vec<redis::Value> = match node {
            None => self.query_pipeline(&pipeline).await?,
            Some((connection, host, port)) => {
                let routing = SingleNodeRoutingInfo::ByAddress {
                    host: host.to_owned(),
                    port,
                };
                self.guarded(|| {
                    let (mut connection, pipeline) = (connection.clone(), pipeline.clone());
                    let routing = routing.clone();
                    async move {
                        let lengths = connection.route_pipeline(pipeline, 0, keys.len(), routing);
                        bounded(self.call_timeout, lengths)
                            .await?
                            .map_err(|e| redis_error("STRLEN failed", e))
                    }
                })
                .await?
            }
        };
        Ok(replies
            .iter()
            .map(|reply| match reply {
                redis::Value::Int(length) => u64::try_from(*length).unwrap_or(0),
                _ => 0,
            })
            .collect())
    }
}

/// Escape the glob metacharacters of a prefix for `SCAN MATCH`.
pub(super) fn glob_escape(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[async_trait::async_trait]
impl Inspect for RedisStore {
    fn driver(&self) -> &'static str {
        "redis"
    }

    fn location(&self) -> Location {
        Location::Prefix(self.prefix.clone())
    }

    /// Every key under the prefix and the bytes of its value: a
    /// [`scan_prefix`](RedisStore::scan_prefix) of `*` with sizes, in the memory of one page
    /// of keys. A key `SCAN` gives twice (while Redis resizes its table) is counted twice:
    /// exact on a store whose size does not change meanwhile.
    async fn census(&self, progress: OnProgress) -> Result<Census> {
        let (mut keys, mut bytes) = (0u64, 0u64);
        self.scan_prefix("*", true, |_, size| {
            keys += 1;
            bytes += size.unwrap_or(0);
            progress(Progress::new(keys, None, keys));
        })
        .await?;
        Ok(Census::Keys { keys, bytes })
    }

    async fn list_keys(&self, pattern: &str, progress: OnProgress) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        self.scan_prefix(pattern, false, |key, _| {
            keys.push(key.to_owned());
            let found = keys.len() as u64;
            progress(Progress::new(found, None, found));
        })
        .await?;
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    /// In the memory of one page of `SCAN`.
    async fn for_each_key(
        &self,
        pattern: &str,
        progress: OnProgress,
        each: &mut (dyn for<'k> FnMut(&'k str) + Send),
    ) -> Result<()> {
        let mut found = 0u64;
        self.scan_prefix(pattern, false, |key, _| {
            each(key);
            found += 1;
            progress(Progress::new(found, None, found));
        })
        .await
    }

    async fn prune(&self, _: OnProgress) -> Result<Pruned> {
        Err(unsupported(
            "prune",
            "Redis removes expired items itself; there is nothing to prune",
        ))
    }

    async fn flush_with_progress(&self, _: OnProgress) -> Result<()> {
        Store::flush(self).await
    }
}

/// The host and port a configured node's client connects to.
#[cfg(feature = "hybrid")]
fn node_address(client: &redis::Client) -> (String, u16) {
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
        other => (other.to_string(), 0),
    }
}

#[cfg(feature = "hybrid")]
#[async_trait::async_trait]
impl crate::store::PubSub for RedisStore {
    fn prefix(&self) -> &str {
        &self.prefix
    }

    /// On a cluster, `PUBLISH` goes to one configured node, the next one after a failure,
    /// and not through the circuit breaker: any node relays a message to every other, while
    /// redis-rs would route it by the channel's slot, making the node that serves the slot
    /// the one way out for every invalidation, and a node that stalls would mark the whole
    /// store down for its data calls.
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<()> {
        let command = cmd("PUBLISH").arg(channel).arg(payload).clone();
        let (
            Target::Cluster {
                nodes,
                next_publish,
                ..
            },
            Connection::Cluster(mut connection),
        ) = (&self.target, self.connection().await?)
        else {
            let _: i64 = self.query(&command).await?;
            return Ok(());
        };
        let tried = next_publish.load(std::sync::atomic::Ordering::Relaxed);
        let (host, port) = node_address(&nodes[tried % nodes.len()]);
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
        let sent = bounded(
            self.call_timeout,
            connection.route_command(command, routing),
        )
        .await
        .and_then(|sent| sent.map_err(|e| redis_error("cannot publish on the Redis channel", e)));
        if sent.is_err() {
            next_publish.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        sent.map(drop)
    }

    async fn subscribe(&self, channel: &str) -> Result<crate::store::Subscription> {
        Ok(Box::pin(self.subscribe_to(channel).await?))
    }
}
