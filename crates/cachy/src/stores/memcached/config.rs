//! The `memcached` driver's config.

use std::ops::RangeInclusive;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::protocol::Prefix;
use super::servers::{Address, Server, ketama_ring};
use super::{DEFAULT_MAX_VALUE_SIZE, MAX_CONNECTIONS, MAX_VALUE_SIZE, MAX_WEIGHT, MemcachedStore};
use crate::config::options::fields;
use crate::error::{Error, Result};
use crate::stores::breaker::Breaker;

/// How a [`MemcachedStore`] is built: the options of the `memcached` driver, as read from a
/// config file or written in code. Nothing connects until the first call.
///
/// ```
/// use cachy::stores::{MemcachedConfig, MemcachedStore};
///
/// let mut config = MemcachedConfig::new(["10.0.0.1:11211", "10.0.0.2:11211"]);
/// config.prefix = "app:".to_owned();
/// let store = MemcachedStore::with_config(config)?;
/// # Ok::<(), cachy::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct MemcachedConfig {
    /// The servers, keys spread over them by a consistent hash (ketama): in a config file,
    /// `"host:port"`, `"unix:/path/to/socket"` or `{"address": "host:port", "weight": 2}`
    /// (required, at least one).
    #[serde(default)]
    pub servers: Vec<MemcachedServer>,
    /// Put in front of every key (default empty; no spaces or control characters, at most
    /// 199 bytes).
    #[serde(default)]
    pub prefix: String,
    /// How long a call may take (default 2 s; in a config file, seconds).
    #[serde(default, deserialize_with = "fields::seconds")]
    pub timeout: Option<Duration>,
    /// How long a failed server stays marked down (default 5 s).
    #[serde(default, deserialize_with = "fields::seconds")]
    pub retry_after: Option<Duration>,
    /// Connections per server on each tokio runtime that uses the store, opened as needed
    /// (default 64, at most 65536).
    #[serde(default, deserialize_with = "fields::count")]
    pub max_connections: Option<u64>,
    /// The largest value written or read, in bytes (default 1 MiB, at most 1 GiB): set it to
    /// the servers' item size limit (memcached's `-I`).
    #[serde(default, deserialize_with = "fields::count")]
    pub max_value_size: Option<u64>,
}

impl MemcachedConfig {
    /// The defaults, on `servers` (`"host:port"` or `"unix:/path"`, each of weight 1).
    pub fn new<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Self {
        MemcachedConfig {
            servers: servers
                .into_iter()
                .map(|address| MemcachedServer::new(address))
                .collect(),
            ..MemcachedConfig::default()
        }
    }
}

/// One server of a [`MemcachedConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemcachedServer {
    /// `"host:port"` or `"unix:/path/to/socket"`.
    pub address: String,
    /// Its share of the keys, from 1 to 100 (default 1).
    pub weight: u64,
}

impl MemcachedServer {
    /// The server at `address`, of weight 1.
    pub fn new(address: impl Into<String>) -> Self {
        MemcachedServer {
            address: address.into(),
            weight: 1,
        }
    }
}

impl<'de> Deserialize<'de> for MemcachedServer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let bad = |what: String| serde::de::Error::custom(format!("{value}: {what}"));
        match &value {
            Value::String(address) => Ok(MemcachedServer::new(address.as_str())),
            Value::Object(entry) => {
                if let Some(unknown) = entry
                    .keys()
                    .find(|k| !["address", "weight"].contains(&k.as_str()))
                {
                    return Err(bad(format!(
                        "a server has an `address` and a `weight`, not `{unknown}`"
                    )));
                }
                let address = entry
                    .get("address")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad("a server needs its `address`, \"host:port\" or \"unix:/path\"".into())
                    })?;
                let weight = match entry.get("weight") {
                    None => 1,
                    Some(weight) => crate::config::Count::from_value(weight)
                        .map(|count| count.0)
                        .ok_or_else(|| {
                            bad(format!(
                                "`weight` must be a whole number from 1 to {MAX_WEIGHT}"
                            ))
                        })?,
                };
                Ok(MemcachedServer {
                    address: address.to_owned(),
                    weight,
                })
            }
            _ => Err(bad(
                "is not \"host:port\", \"unix:/path\" or {\"address\", \"weight\"}".into(),
            )),
        }
    }
}

impl MemcachedStore {
    /// A memcached store as `config` describes it (nothing connects until the first call);
    /// an error names the field that is wrong. Values carry python-memcached's flags; see
    /// [`with_python_flags`](Self::with_python_flags).
    pub fn with_config(config: MemcachedConfig) -> Result<Self> {
        if config.servers.is_empty() {
            return Err(Error::config(
                "servers",
                "`servers` must be a non-empty list of \"host:port\"",
            ));
        }
        let mut addresses = Vec::new();
        let mut weights = Vec::new();
        for server in &config.servers {
            let bad = |what: &str| {
                Error::config(
                    "servers",
                    format!(
                        "server {:?} (weight {}): {what}",
                        server.address, server.weight
                    ),
                )
            };
            let weight = Some(server.weight)
                .filter(|w| (1..=MAX_WEIGHT).contains(w))
                .and_then(|w| usize::try_from(w).ok())
                .ok_or_else(|| {
                    bad(&format!(
                        "`weight` must be a whole number from 1 to {MAX_WEIGHT}"
                    ))
                })?;
            let address = if let Some(path) = server.address.strip_prefix("unix:") {
                if path.is_empty() {
                    return Err(bad("`unix:` needs the socket's path"));
                }
                #[cfg(unix)]
                {
                    Address::Unix(path.to_owned())
                }
                #[cfg(not(unix))]
                return Err(bad(&format!(
                    "unix:{path}: unix sockets are only available on unix systems"
                )));
            } else if server.address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && !host.contains(char::is_whitespace)
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && port.parse::<u16>().is_ok_and(|port| port > 0)
            }) {
                Address::Tcp(server.address.clone())
            } else {
                return Err(bad(
                    "the address is not \"host:port\" (a port from 1 to 65535) or \"unix:/path\"",
                ));
            };
            addresses.push(address);
            weights.push(weight);
        }
        let timeout = fields::checked("timeout", config.timeout)?.unwrap_or(Duration::from_secs(2));
        let retry_after =
            fields::checked("retry_after", config.retry_after)?.unwrap_or(Duration::from_secs(5));
        let max_connections = within(
            "max_connections",
            config.max_connections.unwrap_or(64),
            1..=MAX_CONNECTIONS,
        )?;
        let max_value_size = within(
            "max_value_size",
            config.max_value_size.unwrap_or(DEFAULT_MAX_VALUE_SIZE),
            1..=MAX_VALUE_SIZE,
        )?;
        let prefix =
            Prefix::new(&config.prefix).map_err(|message| Error::config("prefix", message))?;
        Ok(MemcachedStore {
            ring: ketama_ring(&weights),
            servers: addresses
                .into_iter()
                .map(|address| {
                    let breaker =
                        Breaker::new(Some(retry_after), format!("the memcached server {address}"));
                    Server::new(address, max_connections, breaker)
                })
                .collect(),
            prefix,
            python_flags: true,
            timeout,
            max_value_size,
            next_token: AtomicU64::new(0),
        })
    }

    /// Whether values carry python-memcached's flags (pickled values flagged as such,
    /// integers as text), as they should when the store's serializer is pickle, so that a
    /// Python service reads them; a config file decides it from the store's serializer. On
    /// (`true`) by default.
    pub fn with_python_flags(mut self, python_flags: bool) -> Self {
        self.python_flags = python_flags;
        self
    }
}

/// `value` as a `usize` if `range` holds it, else an error naming `field`.
fn within(field: &str, value: u64, range: RangeInclusive<u64>) -> Result<usize> {
    usize::try_from(value)
        .ok()
        .filter(|_| range.contains(&value))
        .ok_or_else(|| {
            Error::config(
                field,
                format!(
                    "`{field}` must be from {} to {}, not {value}",
                    range.start(),
                    range.end()
                ),
            )
        })
}
