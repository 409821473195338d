mod breaker;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo, cmd};
use tokio::sync::OnceCell;

use self::breaker::Breaker;
use crate::config::{Count, Seconds, StoreConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{ForeverTracker, Lifetime, Store, Ttl};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the server stays marked down after a temporary failure (as memcached's).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Keys per `SCAN` page and per `UNLINK` when flushing a prefix.
const FLUSH_BATCH: usize = 500;

/// The Redis store (driver `redis`), on one node or a Redis Cluster.
///
/// Keys are `prefix + key`, values are the serializer's bytes (integers as decimal text), and
/// items stored forever have no TTL: the layout of Python cachy's Redis store, so both read
/// each other's values.
///
/// One multiplexed connection (redis-rs's `ConnectionManager`, or its async cluster client)
/// is shared by every task: concurrent calls are pipelined on it, and it reconnects by itself
/// after the server comes back. Every call is bounded by `connect_timeout + response_timeout`,
/// so a server that is down gives a clear error, never a hang.
///
/// A circuit breaker keeps a server that is down or hung from costing that time on every
/// call: after a call fails with a temporary error (connection refused or dropped, timeout),
/// the server is marked down for `retry_after` seconds (default 5), and calls fail at once
/// with an [`ErrorKind::Unavailable`] error naming the failure, without any network I/O.
/// Then one call at a time tries the server (the others keep failing at once): if it
/// answers, calls go through again; if not, it stays marked down for another `retry_after`.
/// Errors from a server that answers (a wrong type, a script error, a value that is not an
/// integer) never mark it down. There is one breaker per store: on a cluster, a node that
/// fails marks the whole cluster down. `circuit_breaker = false` turns it off.
///
/// | operation | commands |
/// |---|---|
/// | `get`, `get_many` | `GET`, `MGET` (split per slot on a cluster) |
/// | `put`, `put_many` | `SET .. EX`, one `MULTI` transaction for many (per key on a cluster) |
/// | `add` | `SET .. NX EX`, atomic |
/// | `increment` | `INCRBY`, atomic; keeps the TTL |
/// | `forget` | `DEL` |
/// | `flush` | with a `prefix`: `SCAN` + `UNLINK` of the prefix's keys only; without: `FLUSHDB` |
///
/// `flush` without a prefix empties the whole database (on a cluster, every primary), as
/// Python cachy does: give each application its own `prefix` or `db` if they share a server.
pub struct RedisStore {
    target: Target,
    prefix: String,
    connection: OnceCell<Connection>,
    call_timeout: Duration,
    breaker: Breaker,
}

enum Target {
    Single {
        client: redis::Client,
        config: ConnectionManagerConfig,
    },
    Cluster(redis::cluster::ClusterClient),
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &matches!(self.target, Target::Cluster(_)))
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Build from configuration (nothing is connected until the first call):
    ///
    /// - `url` (`redis://[user:password@]host:port/db`, `rediss://` for TLS when built with
    ///   TLS support), or `host` (default `localhost`), `port` (6379) and `db` (0);
    /// - `cluster`: a list of node URLs, for Redis Cluster;
    /// - `username`, `password` (override those of the URL), `prefix` (default empty);
    /// - `connect_timeout`, `response_timeout`: seconds (default 2 each);
    /// - `retry_after`: seconds the server stays marked down after a call failed with a
    ///   temporary error (connection refused or dropped, timeout), default 5; meanwhile calls
    ///   fail at once with an [`ErrorKind::Unavailable`] error, then one call tries the server
    ///   again. One breaker per store, cluster included;
    /// - `circuit_breaker`: `false` turns that off, so every call tries the server and waits
    ///   up to the timeouts (default `true`; `retry_after` then has no effect);
    /// - with the `redis-tls` feature, for `rediss://` URLs: `tls_ca_file` (a PEM CA to trust
    ///   instead of the system roots), `tls_cert_file` and `tls_key_file` (a client
    ///   certificate, for servers that require one).
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        let options: RedisOptions = config.parse()?;
        let prefix = options.prefix.clone().unwrap_or_default();
        let connect_timeout = options
            .connect_timeout
            .map_or(DEFAULT_CONNECT_TIMEOUT, Seconds::duration);
        let response_timeout = options
            .response_timeout
            .map_or(DEFAULT_RESPONSE_TIMEOUT, Seconds::duration);
        let retry_after = options
            .retry_after
            .map_or(DEFAULT_RETRY_AFTER, Seconds::duration);
        let retry_after = options
            .circuit_breaker
            .unwrap_or(true)
            .then_some(retry_after);
        let username = options.username.as_deref();
        let password = options.password.as_deref();
        let with_credentials = |info: ConnectionInfo| {
            let mut settings = info.redis_settings().clone();
            if let Some(username) = username {
                settings = settings.set_username(username);
            }
            if let Some(password) = password {
                settings = settings.set_password(password);
            }
            info.set_redis_settings(settings)
        };
        let target = if let Some(urls) = &options.cluster {
            if urls.is_empty() {
                return Err(
                    config.error("cluster", "`cluster` must be a non-empty list of node URLs")
                );
            }
            let infos = urls
                .iter()
                .map(|url| parse_url(config, "cluster", url).map(with_credentials))
                .collect::<Result<Vec<_>>>()?;
            let client = tls::cluster_builder(config, &options, infos)?
                .connection_timeout(connect_timeout)
                .response_timeout(response_timeout)
                .retries(2)
                .build()
                .map_err(|e| {
                    config.error("cluster", format!("invalid cluster configuration: {e}"))
                })?;
            Target::Cluster(client)
        } else {
            let info = match &options.url {
                Some(url) => parse_url(config, "url", url)?,
                None => {
                    let host = options
                        .host
                        .clone()
                        .unwrap_or_else(|| "localhost".to_owned());
                    let port = match options.port.map_or(6379, |c| c.0) {
                        port @ 1..=65535 => port as u16,
                        other => {
                            return Err(
                                config.error("port", format!("port {other} is out of range"))
                            );
                        }
                    };
                    ConnectionAddr::Tcp(host, port)
                        .into_connection_info()
                        .map_err(|e| config.error("host", e.to_string()))?
                }
            };
            let info = match options.db.map(|c| c.0) {
                Some(db) => {
                    let db = i64::try_from(db)
                        .ok()
                        .filter(|db| *db <= i64::from(i32::MAX))
                        .ok_or_else(|| {
                            config.error("db", format!("`db` {db} is not a database number"))
                        })?;
                    let settings = info.redis_settings().clone().set_db(db);
                    info.set_redis_settings(settings)
                }
                None => info,
            };
            let client = tls::client(config, &options, with_credentials(info))?;
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            Target::Single {
                client,
                config: manager_config,
            }
        };
        let what = match &target {
            Target::Single { client, .. } => {
                format!("the Redis server {}", client.get_connection_info().addr())
            }
            Target::Cluster(_) => "the Redis Cluster".to_owned(),
        };
        Ok(RedisStore {
            target,
            prefix,
            connection: OnceCell::new(),
            call_timeout: connect_timeout + response_timeout,
            breaker: Breaker::new(retry_after, what),
        })
    }

    /// The prefix put in front of every key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// A connection of its own subscribed to `channel` (one server, not a cluster), and its
    /// messages' payloads; the stream ends when the connection drops. Subscribing closes the
    /// circuit breaker: the server answered.
    #[cfg(feature = "hybrid")]
    pub(crate) async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<impl futures_util::Stream<Item = Vec<u8>> + Send + 'static> {
        let Target::Single { client, .. } = &self.target else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a Redis Cluster store cannot subscribe to a channel: use a single server",
            ));
        };
        let subscribe = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = bounded(self.call_timeout, subscribe)
            .await?
            .map_err(|e| redis_error("cannot subscribe to the Redis channel", e))?;
        // The server is back: calls need not wait out `retry_after` to find out.
        self.breaker.answered();
        Ok(futures_util::StreamExt::map(
            pubsub.into_on_message(),
            |message| message.get_payload_bytes().to_vec(),
        ))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn connection(&self) -> Result<Connection> {
        self.connection
            .get_or_try_init(|| async {
                match &self.target {
                    Target::Single { client, config } => {
                        ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                            .map(Connection::Single)
                            .map_err(|e| redis_error("cannot set up the Redis connection", e))
                    }
                    Target::Cluster(client) => {
                        bounded(self.call_timeout, client.get_async_connection())
                            .await?
                            .map(Connection::Cluster)
                            .map_err(|e| redis_error("cannot connect to the Redis Cluster", e))
                    }
                }
            })
            .await
            .cloned()
    }

    /// Run `call` past the circuit breaker: at once an error while the server is marked
    /// down; else the call, whose outcome the breaker learns from.
    ///
    /// A call refused at connection is made once more first: after a failure, redis-rs
    /// reconnects in the background and hands the outcome to the next call, so a refusal may
    /// be that of an attempt made while the server was still down, and one stale error must
    /// not mark a server that is back down for `retry_after`. A refused connection carried
    /// no command, so nothing is sent twice.
    async fn guarded<T, F>(&self, call: impl Fn() -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let pass = self.breaker.admit()?;
        let mut outcome = call().await;
        if self.breaker.is_enabled() && outcome.as_ref().is_err_and(is_refusal) {
            outcome = call().await;
        }
        pass.finish(&outcome);
        outcome
    }

    /// Run one command on the shared connection, bounded by the call timeout and behind the
    /// circuit breaker. Keys in `cmd` are used as given: add [`prefix`](Self::prefix)
    /// yourself. This is the hook for features above the store (tags keep their forever-key
    /// lists with it).
    pub async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T> {
        self.guarded(|| async {
            let value = match self.connection().await? {
                Connection::Single(mut c) => {
                    bounded(self.call_timeout, command.query_async(&mut c)).await?
                }
                Connection::Cluster(mut c) => {
                    bounded(self.call_timeout, command.query_async(&mut c)).await?
                }
            };
            value.map_err(|e| redis_error("the Redis command failed", e))
        })
        .await
    }

    async fn query_pipeline<T: FromRedisValue>(&self, pipeline: &redis::Pipeline) -> Result<T> {
        self.guarded(|| async {
            let value = match self.connection().await? {
                Connection::Single(mut c) => {
                    bounded(self.call_timeout, pipeline.query_async(&mut c)).await?
                }
                Connection::Cluster(mut c) => {
                    bounded(self.call_timeout, pipeline.query_async(&mut c)).await?
                }
            };
            value.map_err(|e| redis_error("the Redis transaction failed", e))
        })
        .await
    }

    /// The primaries of the cluster, as `(host, port)`, from `CLUSTER NODES`.
    async fn cluster_primaries(&self) -> Result<Vec<(String, u16)>> {
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
    async fn unlink_prefix_on(&self, node: Option<(&ClusterConnection, &str, u16)>) -> Result<()> {
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
    /// `SCAN` may return a key twice while Redis resizes its table: the walk remembers the
    /// keys it has given so as to give each once, so its memory grows with their number.
    /// Keys written or deleted during the walk may or may not be given. A key that is not
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
        let mut seen = std::collections::HashSet::new();
        if !self.is_cluster() {
            return self
                .scan_node(None, &pattern, sizes, &mut seen, &mut found)
                .await;
        }
        let primaries = self.cluster_primaries().await?;
        if let Connection::Cluster(connection) = self.connection().await? {
            for (host, port) in &primaries {
                let node = Some((&connection, host.as_str(), *port));
                self.scan_node(node, &pattern, sizes, &mut seen, &mut found)
                    .await?;
            }
        }
        Ok(())
    }

    /// Refuse a pattern that `SCAN MATCH` would read leniently: an unclosed `[`, a trailing
    /// `\`.
    fn check_glob(pattern: &str) -> Result<()> {
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
    /// the cluster node `node`, skipping the keys in `seen`.
    async fn scan_node(
        &self,
        node: Option<(&ClusterConnection, &str, u16)>,
        pattern: &str,
        sizes: bool,
        seen: &mut std::collections::HashSet<Vec<u8>>,
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
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|key| seen.insert(key.clone()))
                .collect();
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
    async fn on_node<T: FromRedisValue>(
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
    async fn value_lengths(
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

/// TLS settings, with the `redis-tls` feature.
#[cfg(feature = "redis-tls")]
mod tls {
    use redis::cluster::{ClusterClient, ClusterClientBuilder};
    use redis::{ClientTlsConfig, ConnectionInfo, TlsCertificates};

    use super::RedisOptions;
    use crate::config::StoreConfig;
    use crate::error::Result;

    fn read_pem(config: &StoreConfig, field: &str, path: Option<&str>) -> Result<Option<Vec<u8>>> {
        path.map(|path| {
            std::fs::read(path).map_err(|e| config.error(field, format!("cannot read {path}: {e}")))
        })
        .transpose()
    }

    pub(super) fn cluster_builder(
        config: &StoreConfig,
        options: &RedisOptions,
        nodes: Vec<ConnectionInfo>,
    ) -> Result<ClusterClientBuilder> {
        let builder = ClusterClient::builder(nodes);
        Ok(match certificates(config, options)? {
            Some(certificates) => builder.certs(certificates),
            None => builder,
        })
    }

    /// The certificates named by the config, if any.
    fn certificates(
        config: &StoreConfig,
        options: &RedisOptions,
    ) -> Result<Option<TlsCertificates>> {
        let root_cert = read_pem(config, "tls_ca_file", options.tls_ca_file.as_deref())?;
        let client_tls = match (
            read_pem(config, "tls_cert_file", options.tls_cert_file.as_deref())?,
            read_pem(config, "tls_key_file", options.tls_key_file.as_deref())?,
        ) {
            (Some(client_cert), Some(client_key)) => Some(ClientTlsConfig {
                client_cert,
                client_key,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(config.error("tls_key_file", "`tls_cert_file` needs `tls_key_file`"));
            }
            (None, Some(_)) => {
                return Err(config.error("tls_cert_file", "`tls_key_file` needs `tls_cert_file`"));
            }
        };
        Ok(
            (root_cert.is_some() || client_tls.is_some()).then_some(TlsCertificates {
                client_tls,
                root_cert,
            }),
        )
    }

    pub(super) fn client(
        config: &StoreConfig,
        options: &RedisOptions,
        info: ConnectionInfo,
    ) -> Result<redis::Client> {
        let client = match certificates(config, options)? {
            Some(certificates) => redis::Client::build_with_tls(info, certificates),
            None => redis::Client::open(info),
        };
        client.map_err(|e| config.error("url", format!("invalid Redis connection settings: {e}")))
    }
}

/// Without the `redis-tls` feature there are no certificates to load (`parse_url` refuses
/// `rediss://` with a message naming the feature).
#[cfg(not(feature = "redis-tls"))]
mod tls {
    use redis::ConnectionInfo;
    use redis::cluster::{ClusterClient, ClusterClientBuilder};

    use super::RedisOptions;
    use crate::config::StoreConfig;
    use crate::error::Result;

    /// Certificate files without TLS support are an error, not silently ignored.
    fn refuse_certificates(config: &StoreConfig, options: &RedisOptions) -> Result<()> {
        let given = [
            ("tls_ca_file", &options.tls_ca_file),
            ("tls_cert_file", &options.tls_cert_file),
            ("tls_key_file", &options.tls_key_file),
        ]
        .into_iter()
        .find(|(_, path)| path.is_some());
        match given {
            Some((field, _)) => Err(config.error(
                field,
                format!("`{field}` needs cachy's `redis-tls` cargo feature"),
            )),
            None => Ok(()),
        }
    }

    pub(super) fn cluster_builder(
        config: &StoreConfig,
        options: &RedisOptions,
        nodes: Vec<ConnectionInfo>,
    ) -> Result<ClusterClientBuilder> {
        refuse_certificates(config, options)?;
        Ok(ClusterClient::builder(nodes))
    }

    pub(super) fn client(
        config: &StoreConfig,
        options: &RedisOptions,
        info: ConnectionInfo,
    ) -> Result<redis::Client> {
        refuse_certificates(config, options)?;
        redis::Client::open(info)
            .map_err(|e| config.error("url", format!("invalid Redis connection settings: {e}")))
    }
}

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
                        .arg(&full_key),
                )
                .await?;
        }
        Ok(())
    }

    async fn delete_tracked(&self, tag_ids: &[String]) -> Result<()> {
        for id in tag_ids {
            let list = self.key(&format!("{id}:forever"));
            let keys: Vec<Vec<u8>> = self.query(cmd("LRANGE").arg(&list).arg(0).arg(-1)).await?;
            for batch in keys.chunks(FLUSH_BATCH) {
                let _: i64 = self.query(cmd("DEL").arg(batch)).await?;
            }
            let _: i64 = self.query(cmd("DEL").arg(&list)).await?;
        }
        Ok(())
    }
}

/// The `redis` driver's options (documented on [`RedisStore::from_config`]).
#[derive(serde::Deserialize)]
struct RedisOptions {
    url: Option<String>,
    host: Option<String>,
    port: Option<Count>,
    db: Option<Count>,
    cluster: Option<Vec<String>>,
    username: Option<String>,
    password: Option<String>,
    prefix: Option<String>,
    connect_timeout: Option<Seconds>,
    response_timeout: Option<Seconds>,
    retry_after: Option<Seconds>,
    circuit_breaker: Option<bool>,
    tls_ca_file: Option<String>,
    tls_cert_file: Option<String>,
    tls_key_file: Option<String>,
}

/// Parse a Redis URL from the config field `field`.
fn parse_url(config: &StoreConfig, field: &str, url: &str) -> Result<ConnectionInfo> {
    if url.starts_with("rediss://") && !cfg!(feature = "redis-tls") {
        return Err(config.error(
            field,
            "`rediss://` (TLS) needs cachy's `redis-tls` cargo feature",
        ));
    }
    url.into_connection_info().map_err(|e| {
        config.error(
            field,
            format!(
                "{:?} is not a Redis URL: {e}",
                crate::config::redact_url(url)
            ),
        )
    })
}

/// Await `work`, or fail with a clear error after `limit`.
async fn bounded<T>(limit: Duration, work: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, work).await.map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!("Redis did not answer within {limit:?} (is the server down or unreachable?)"),
        )
    })
}

/// Whether `error` is a connection refused by redis-rs: no command reached the server.
fn is_refusal(error: &Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<redis::RedisError>())
        .is_some_and(redis::RedisError::is_connection_refusal)
}

fn redis_error(context: &str, e: redis::RedisError) -> Error {
    let auth_failed = e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH"));
    let (kind, detail) = if auth_failed {
        let detail = "authentication failed (check `username` and `password`)";
        (ErrorKind::Backend, detail)
    } else if e.is_connection_refusal() {
        let detail = "connection refused (is the server running?)";
        (ErrorKind::Unavailable, detail)
    } else if e.is_timeout() {
        (ErrorKind::Timeout, "timed out")
    } else if e.is_connection_dropped() {
        (ErrorKind::Unavailable, "the connection failed")
    } else {
        (ErrorKind::Backend, "")
    };
    let message = if detail.is_empty() {
        context.to_owned()
    } else {
        format!("{context}: {detail}")
    };
    Error::new(kind, message).with_source(e)
}

/// Escape the glob metacharacters of a prefix for `SCAN MATCH`.
fn glob_escape(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Swap a value only if it is the expected one (`ARGV[1]` = `replace`, keeping the TTL), or
/// create it only if absent (`create`, kept forever). One key, so it runs on any cluster node
/// that owns it.
const COMPARE_AND_SWAP: &str = r"
local stored = redis.call('GET', KEYS[1])
if ARGV[1] == 'create' then
  if stored then return 0 end
  redis.call('SET', KEYS[1], ARGV[3])
  return 1
end
if stored ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
return 1
";

/// Delete the key only if it holds `ARGV[1]`; 1 if it did.
const COMPARE_AND_DELETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Remove a key's TTL; 1 if the key exists (`PERSIST` alone cannot tell a key without a TTL
/// from a missing one).
const PERSIST: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PERSIST', KEYS[1])
return 1
";

/// Create the counter holding `ARGV[1]` for `ARGV[2]` seconds, or add `ARGV[1]` to it: one
/// round trip, atomic, and an existing counter keeps its TTL.
const INCREMENT_EXPIRING: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return tonumber(ARGV[1]) end
return redis.call('INCRBY', KEYS[1], ARGV[1])
";

/// Redis refuses a counter that is not an integer, and one that would overflow, with a plain
/// `ERR` and a fixed text: the text is all there is to tell them apart.
fn counter_error(e: Error) -> Error {
    let message = e.to_string();
    let (kind, what) = if message.contains("would overflow") {
        (
            ErrorKind::Overflow,
            "the result would overflow a 64-bit counter; the counter is left as it was",
        )
    } else if message.contains("not an integer") {
        (
            ErrorKind::NotAnInteger,
            "the stored value is not an integer; it is left as it was",
        )
    } else {
        return e;
    };
    Error::new(kind, what).with_source(e)
}

fn set_command(key: String, value: &[u8], ttl: Ttl) -> Cmd {
    let mut set = cmd("SET");
    set.arg(key).arg(value);
    if let Some(seconds) = ttl {
        set.arg("EX").arg(seconds);
    }
    set
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
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.query(cmd("MGET").arg(&keys)).await
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        let key = self.key(key);
        let mut pipeline = redis::pipe();
        pipeline.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
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
