//! The `redis` driver's options, URLs and TLS.

use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use tokio::sync::OnceCell;

use super::*;
use crate::config::{Count, Seconds, StoreConfig};
use crate::error::Result;

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

/// The `redis` driver's options (documented on [`RedisStore::from_config`]).
#[derive(serde::Deserialize)]
pub(super) struct RedisOptions {
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
pub(super) fn parse_url(config: &StoreConfig, field: &str, url: &str) -> Result<ConnectionInfo> {
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
                crate::config::redact::redact_url(url)
            ),
        )
    })
}
