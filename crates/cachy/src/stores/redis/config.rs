//! The `redis` driver's config, URLs and TLS.

use std::path::PathBuf;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use serde::Deserialize;

use super::*;
use crate::config::StoreConfig;
use crate::config::options::fields;
use crate::error::{Error, Result};

/// How many commands may wait in a connection's queue for its writer. redis-rs's default,
/// 50, is fewer than the calls a busy service has in flight: the calls beyond it each waited
/// for a place (a semaphore's waker, and one more wake-up), which cost about 4% of the
/// throughput of `get` with 64 callers. The queue takes no memory for places it does not
/// use.
const PIPELINE_BUFFER: usize = 256;

/// How a [`RedisStore`] is built: the options of the `redis` driver, as read from a config
/// file or written in code. Nothing connects until the first call.
///
/// ```
/// use std::time::Duration;
/// use cachy::stores::{RedisConfig, RedisStore};
///
/// let mut config = RedisConfig::default();
/// config.url = Some("redis://127.0.0.1:6379/0".to_owned());
/// config.prefix = "app:".to_owned();
/// config.response_timeout = Some(Duration::from_millis(500));
/// let store = RedisStore::with_config(config)?;
/// # Ok::<(), cachy::Error>(())
/// ```
///
/// Its `Debug` output hides the password, in `password` and in the URLs.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` (`rediss://` for TLS, with the `redis-tls`
    /// feature); else `host`, `port` and `db`.
    pub url: Option<String>,
    /// The server's host, when there is no `url` (default `localhost`).
    pub host: Option<String>,
    /// Its port (default 6379).
    #[serde(default, deserialize_with = "fields::count")]
    pub port: Option<u64>,
    /// The database number (default 0; with `url`, it overrides the URL's).
    #[serde(default, deserialize_with = "fields::count")]
    pub db: Option<u64>,
    /// The URLs of some nodes of a Redis Cluster, instead of one server.
    pub cluster: Option<Vec<String>>,
    /// The user, over the URL's.
    pub username: Option<String>,
    /// The password, over the URL's.
    pub password: Option<String>,
    /// Put in front of every key (default empty).
    #[serde(default)]
    pub prefix: String,
    /// How long connecting may take (default 2 s; in a config file, seconds).
    #[serde(default, deserialize_with = "fields::seconds")]
    pub connect_timeout: Option<Duration>,
    /// How long a reply may take (default 2 s).
    #[serde(default, deserialize_with = "fields::seconds")]
    pub response_timeout: Option<Duration>,
    /// How long the server stays marked down after a call failed with a temporary error
    /// (default 5 s): meanwhile calls fail at once with an
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) error, then one call tries
    /// the server again. One breaker per store, cluster included.
    #[serde(default, deserialize_with = "fields::seconds")]
    pub retry_after: Option<Duration>,
    /// `Some(false)` turns the circuit breaker off, so every call tries the server and waits
    /// up to the timeouts (default on; `retry_after` then has no effect).
    pub circuit_breaker: Option<bool>,
    /// A PEM CA to trust instead of the system roots (`rediss://`, `redis-tls` feature).
    pub tls_ca_file: Option<PathBuf>,
    /// A client certificate, for servers that require one (with `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// The client certificate's key.
    pub tls_key_file: Option<PathBuf>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::config::redact::redact_url;
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field(
                "cluster",
                &self
                    .cluster
                    .as_ref()
                    .map(|urls| urls.iter().map(|url| redact_url(url)).collect::<Vec<_>>()),
            )
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("retry_after", &self.retry_after)
            .field("circuit_breaker", &self.circuit_breaker)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .finish()
    }
}

impl RedisStore {
    /// Build from a store's configuration: the fields of [`RedisConfig`].
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        config.build(Self::with_config)
    }

    /// A Redis store as `config` describes it (nothing is connected until the first call);
    /// an error names the field that is wrong.
    pub fn with_config(options: RedisConfig) -> Result<Self> {
        let prefix = options.prefix.clone();
        let connect_timeout = fields::checked("connect_timeout", options.connect_timeout)?
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let response_timeout = fields::checked("response_timeout", options.response_timeout)?
            .unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
        let retry_after =
            fields::checked("retry_after", options.retry_after)?.unwrap_or(DEFAULT_RETRY_AFTER);
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
        // Settings that the chosen way of naming the server would silently ignore.
        let given = |field: &str| match field {
            "url" => options.url.is_some(),
            "host" => options.host.is_some(),
            "port" => options.port.is_some(),
            _ => options.db.is_some(),
        };
        let ignored = if options.cluster.is_some() {
            ["url", "host", "port", "db"]
                .into_iter()
                .find(|f| given(f))
                .map(|f| (f, "cluster"))
        } else if options.url.is_some() {
            ["host", "port"]
                .into_iter()
                .find(|f| given(f))
                .map(|f| (f, "url"))
        } else {
            None
        };
        if let Some((field, over)) = ignored {
            return Err(Error::config(
                field,
                format!("give `{over}` or `{field}`, not both: `{over}` names the server"),
            ));
        }
        let target = if let Some(urls) = &options.cluster {
            if urls.is_empty() {
                return Err(Error::config(
                    "cluster",
                    "`cluster` must be a non-empty list of node URLs",
                ));
            }
            let infos = urls
                .iter()
                .map(|url| parse_url("cluster", url).map(with_credentials))
                .collect::<Result<Vec<_>>>()?;
            #[cfg(feature = "hybrid")]
            let nodes = infos
                .iter()
                .map(|info| tls::client(&options, info.clone()))
                .collect::<Result<Vec<_>>>()?;
            let client = tls::cluster_builder(&options, infos)?
                .connection_timeout(connect_timeout)
                .response_timeout(response_timeout)
                .retries(2)
                .build()
                .map_err(|e| {
                    Error::config("cluster", format!("invalid cluster configuration: {e}"))
                })?;
            Target::Cluster {
                client,
                #[cfg(feature = "hybrid")]
                nodes,
                #[cfg(feature = "hybrid")]
                next_node: Default::default(),
                #[cfg(feature = "hybrid")]
                next_publish: Default::default(),
            }
        } else {
            let info = match &options.url {
                Some(url) => parse_url("url", url)?,
                None => {
                    let host = options
                        .host
                        .clone()
                        .unwrap_or_else(|| "localhost".to_owned());
                    let port = match options.port.unwrap_or(6379) {
                        port @ 1..=65535 => port as u16,
                        other => {
                            return Err(Error::config(
                                "port",
                                format!("port {other} is out of range"),
                            ));
                        }
                    };
                    ConnectionAddr::Tcp(host, port)
                        .into_connection_info()
                        .map_err(|e| Error::config("host", e.to_string()))?
                }
            };
            let info = match options.db {
                Some(db) => {
                    let db = i64::try_from(db)
                        .ok()
                        .filter(|db| *db <= i64::from(i32::MAX))
                        .ok_or_else(|| {
                            Error::config("db", format!("`db` {db} is not a database number"))
                        })?;
                    let settings = info.redis_settings().clone().set_db(db);
                    info.set_redis_settings(settings)
                }
                None => info,
            };
            let client = tls::client(&options, with_credentials(info))?;
            // These bound every call on one server (see `RedisStore::query`): one connection
            // attempt of at most `connect_timeout`, then at most `response_timeout` for the
            // answer.
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(0)
                .set_pipeline_buffer_size(PIPELINE_BUFFER);
            Target::Single {
                client,
                config: manager_config,
            }
        };
        let what = match &target {
            Target::Single { client, .. } => {
                format!("the Redis server {}", client.get_connection_info().addr())
            }
            Target::Cluster { .. } => "the Redis Cluster".to_owned(),
        };
        Ok(RedisStore {
            target,
            prefix,
            connection: crate::runtime::RuntimeBound::new(),
            call_timeout: connect_timeout + response_timeout,
            breaker: Breaker::new(retry_after, what),
        })
    }
}

/// TLS settings, with the `redis-tls` feature.
#[cfg(feature = "redis-tls")]
mod tls {
    use redis::cluster::{ClusterClient, ClusterClientBuilder};
    use redis::{ClientTlsConfig, ConnectionInfo, TlsCertificates};

    use super::RedisConfig;
    use crate::error::Error;
    use crate::error::Result;

    fn read_pem(field: &str, path: Option<&std::path::Path>) -> Result<Option<Vec<u8>>> {
        path.map(|path| {
            std::fs::read(path)
                .map_err(|e| Error::config(field, format!("cannot read {}: {e}", path.display())))
        })
        .transpose()
    }

    pub(super) fn cluster_builder(
        options: &RedisConfig,
        nodes: Vec<ConnectionInfo>,
    ) -> Result<ClusterClientBuilder> {
        let builder = ClusterClient::builder(nodes);
        Ok(match certificates(options)? {
            Some(certificates) => builder.certs(certificates),
            None => builder,
        })
    }

    /// The certificates named by the config, if any.
    fn certificates(options: &RedisConfig) -> Result<Option<TlsCertificates>> {
        let root_cert = read_pem("tls_ca_file", options.tls_ca_file.as_deref())?;
        let client_tls = match (
            read_pem("tls_cert_file", options.tls_cert_file.as_deref())?,
            read_pem("tls_key_file", options.tls_key_file.as_deref())?,
        ) {
            (Some(client_cert), Some(client_key)) => Some(ClientTlsConfig {
                client_cert,
                client_key,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::config(
                    "tls_key_file",
                    "`tls_cert_file` needs `tls_key_file`",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    "tls_cert_file",
                    "`tls_key_file` needs `tls_cert_file`",
                ));
            }
        };
        Ok(
            (root_cert.is_some() || client_tls.is_some()).then_some(TlsCertificates {
                client_tls,
                root_cert,
            }),
        )
    }

    pub(super) fn client(options: &RedisConfig, info: ConnectionInfo) -> Result<redis::Client> {
        let client = match certificates(options)? {
            Some(certificates) => redis::Client::build_with_tls(info, certificates),
            None => redis::Client::open(info),
        };
        client.map_err(|e| Error::config("url", format!("invalid Redis connection settings: {e}")))
    }
}

/// Without the `redis-tls` feature there are no certificates to load (`parse_url` refuses
/// `rediss://` with a message naming the feature).
#[cfg(not(feature = "redis-tls"))]
mod tls {
    use redis::ConnectionInfo;
    use redis::cluster::{ClusterClient, ClusterClientBuilder};

    use super::RedisConfig;
    use crate::error::Error;
    use crate::error::Result;

    /// Certificate files without TLS support are an error, not silently ignored.
    fn refuse_certificates(options: &RedisConfig) -> Result<()> {
        let given = [
            ("tls_ca_file", &options.tls_ca_file),
            ("tls_cert_file", &options.tls_cert_file),
            ("tls_key_file", &options.tls_key_file),
        ]
        .into_iter()
        .find(|(_, path)| path.is_some());
        match given {
            Some((field, _)) => Err(Error::config(
                field,
                format!("`{field}` needs cachy's `redis-tls` cargo feature"),
            )),
            None => Ok(()),
        }
    }

    pub(super) fn cluster_builder(
        options: &RedisConfig,
        nodes: Vec<ConnectionInfo>,
    ) -> Result<ClusterClientBuilder> {
        refuse_certificates(options)?;
        Ok(ClusterClient::builder(nodes))
    }

    pub(super) fn client(options: &RedisConfig, info: ConnectionInfo) -> Result<redis::Client> {
        refuse_certificates(options)?;
        redis::Client::open(info)
            .map_err(|e| Error::config("url", format!("invalid Redis connection settings: {e}")))
    }
}

/// Parse a Redis URL from the config field `field`.
pub(super) fn parse_url(field: &str, url: &str) -> Result<ConnectionInfo> {
    if url.starts_with("rediss://") && !cfg!(feature = "redis-tls") {
        return Err(Error::config(
            field,
            "`rediss://` (TLS) needs cachy's `redis-tls` cargo feature",
        ));
    }
    url.into_connection_info().map_err(|e| {
        Error::config(
            field,
            format!(
                "{:?} is not a Redis URL: {e}",
                crate::config::redact::redact_url(url)
            ),
        )
    })
}
