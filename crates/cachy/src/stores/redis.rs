use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo, cmd};
use tokio::sync::OnceCell;

use crate::config::StoreConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{ForeverTracker, Store, Ttl};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
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
    /// - with the `redis-tls` feature, for `rediss://` URLs: `tls_ca_file` (a PEM CA to trust
    ///   instead of the system roots), `tls_cert_file` and `tls_key_file` (a client
    ///   certificate, for servers that require one).
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        config.check_fields(&[
            "url",
            "host",
            "port",
            "db",
            "cluster",
            "username",
            "password",
            "prefix",
            "connect_timeout",
            "response_timeout",
            "tls_ca_file",
            "tls_cert_file",
            "tls_key_file",
        ])?;
        let prefix = config.str("prefix")?.unwrap_or_default().to_owned();
        let connect_timeout = config
            .seconds("connect_timeout")?
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let response_timeout = config
            .seconds("response_timeout")?
            .unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
        let username = config.str("username")?;
        let password = config.str("password")?;
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
        let target = if let Some(nodes) = config.options().get("cluster") {
            let urls = nodes
                .as_array()
                .filter(|urls| !urls.is_empty())
                .and_then(|urls| urls.iter().map(|u| u.as_str()).collect::<Option<Vec<_>>>())
                .ok_or_else(|| {
                    config.error("cluster", "`cluster` must be a non-empty list of node URLs")
                })?;
            let infos = urls
                .iter()
                .map(|url| parse_url(config, "cluster", url).map(with_credentials))
                .collect::<Result<Vec<_>>>()?;
            let client = tls::cluster_builder(config, infos)?
                .connection_timeout(connect_timeout)
                .response_timeout(response_timeout)
                .retries(2)
                .build()
                .map_err(|e| {
                    config.error("cluster", format!("invalid cluster configuration: {e}"))
                })?;
            Target::Cluster(client)
        } else {
            let info = match config.str("url")? {
                Some(url) => parse_url(config, "url", url)?,
                None => {
                    let host = config.str("host")?.unwrap_or("localhost").to_owned();
                    let port = match config.u64("port")?.unwrap_or(6379) {
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
            let info = match config.u64("db")? {
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
            let client = tls::client(config, with_credentials(info))?;
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
        Ok(RedisStore {
            target,
            prefix,
            connection: OnceCell::new(),
            call_timeout: connect_timeout + response_timeout,
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

    /// Run one command on the shared connection, bounded by the call timeout. Keys in `cmd`
    /// are used as given: add [`prefix`](Self::prefix) yourself. This is the hook for features
    /// above the store (tags keep their forever-key lists with it).
    pub async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T> {
        let connection = self.connection().await?;
        let value = match connection {
            Connection::Single(mut c) => {
                bounded(self.call_timeout, command.query_async(&mut c)).await?
            }
            Connection::Cluster(mut c) => {
                bounded(self.call_timeout, command.query_async(&mut c)).await?
            }
        };
        value.map_err(|e| redis_error("the Redis command failed", e))
    }

    async fn query_pipeline<T: FromRedisValue>(&self, pipeline: &redis::Pipeline) -> Result<T> {
        let connection = self.connection().await?;
        let value = match connection {
            Connection::Single(mut c) => {
                bounded(self.call_timeout, pipeline.query_async(&mut c)).await?
            }
            Connection::Cluster(mut c) => {
                bounded(self.call_timeout, pipeline.query_async(&mut c)).await?
            }
        };
        value.map_err(|e| redis_error("the Redis transaction failed", e))
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
    async fn unlink_prefix_on(
        &self,
        node: Option<(&mut ClusterConnection, &str, u16)>,
    ) -> Result<()> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut node = node;
        let mut cursor = 0u64;
        loop {
            let mut scan = cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(FLUSH_BATCH);
            let (next, keys): (u64, Vec<Vec<u8>>) = match node.as_mut() {
                None => self.query(&scan).await?,
                Some((connection, host, port)) => {
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: (*host).to_owned(),
                        port: *port,
                    });
                    let value = bounded(self.call_timeout, connection.route_command(scan, routing))
                        .await?
                        .map_err(|e| redis_error("SCAN failed", e))?;
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
}

/// TLS settings, with the `redis-tls` feature.
#[cfg(feature = "redis-tls")]
mod tls {
    use redis::cluster::{ClusterClient, ClusterClientBuilder};
    use redis::{ClientTlsConfig, ConnectionInfo, TlsCertificates};

    use crate::config::StoreConfig;
    use crate::error::Result;

    fn read_pem(config: &StoreConfig, field: &str) -> Result<Option<Vec<u8>>> {
        config
            .str(field)?
            .map(|path| {
                std::fs::read(path)
                    .map_err(|e| config.error(field, format!("cannot read {path}: {e}")))
            })
            .transpose()
    }

    pub(super) fn cluster_builder(
        config: &StoreConfig,
        nodes: Vec<ConnectionInfo>,
    ) -> Result<ClusterClientBuilder> {
        let builder = ClusterClient::builder(nodes);
        Ok(match certificates(config)? {
            Some(certificates) => builder.certs(certificates),
            None => builder,
        })
    }

    /// The certificates named by the config, if any.
    fn certificates(config: &StoreConfig) -> Result<Option<TlsCertificates>> {
        let root_cert = read_pem(config, "tls_ca_file")?;
        let client_tls = match (
            read_pem(config, "tls_cert_file")?,
            read_pem(config, "tls_key_file")?,
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

    pub(super) fn client(config: &StoreConfig, info: ConnectionInfo) -> Result<redis::Client> {
        let client = match certificates(config)? {
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

    use crate::config::StoreConfig;
    use crate::error::Result;

    pub(super) fn cluster_builder(
        _: &StoreConfig,
        nodes: Vec<ConnectionInfo>,
    ) -> Result<ClusterClientBuilder> {
        Ok(ClusterClient::builder(nodes))
    }

    pub(super) fn client(config: &StoreConfig, info: ConnectionInfo) -> Result<redis::Client> {
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
            .map_err(|e| {
                // Redis answers both refusals with a plain `ERR` and a fixed text.
                let message = e.to_string();
                let kind = if message.contains("would overflow") {
                    ErrorKind::Overflow
                } else if message.contains("not an integer") {
                    ErrorKind::NotAnInteger
                } else {
                    return e;
                };
                Error::new(
                    kind,
                    "the stored value is not an integer, or the result overflows a 64-bit counter",
                )
                .with_source(e)
            })
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
                if let Connection::Cluster(mut connection) = self.connection().await? {
                    for (host, port) in &primaries {
                        self.unlink_prefix_on(Some((&mut connection, host, *port)))
                            .await?;
                    }
                }
                Ok(())
            }
        }
    }
}
