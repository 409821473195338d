pub(super) mod config;
mod flags;
mod inspect;
mod protocol;
mod servers;
mod store;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

use self::protocol::{Batch, Command, Failure, Prefix, Reply, WireKey};
use crate::codec::{incremented, parse_integer};
use crate::config::StoreConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::store::Ttl;
use crate::stores::breaker::bounded;
use servers::*;

/// Relative TTLs above this are taken by memcached as absolute unix times.
const MAX_RELATIVE_TTL: u64 = 60 * 60 * 24 * 30;
/// The default `max_value_size`: memcached's default item size limit (`-I 1m`).
const DEFAULT_MAX_VALUE_SIZE: u64 = 1024 * 1024;
/// The largest `max_value_size`: memcached's largest item size limit (`-I 1024m`).
const MAX_VALUE_SIZE: u64 = 1024 * 1024 * 1024;
/// The most connections per server (memcached itself takes 1024 in all by default).
const MAX_CONNECTIONS: u64 = 65_536;
/// The largest server weight: the ring holds 160 points per server and unit of weight.
const MAX_WEIGHT: u64 = 100;

/// The memcached store (driver `memcached`): a pool of servers, keys spread over them by
/// consistent hashing (ketama), spoken to with memcached's meta protocol by a small client of
/// our own (`docs/stores.md` says why).
///
/// - A key that memcached cannot take (over 250 bytes with its prefix, or with spaces or
///   control characters), or that starts with `cachy:sha1:`, is stored as
///   `{prefix}cachy:sha1:{hex digest of the key}`, so every key the other stores accept works
///   here and no two keys share an item. The `prefix` itself is checked when the store is
///   built.
/// - TTLs over 30 days are sent as absolute unix times, as memcached requires.
/// - `add` is memcached's add (atomic). `increment` reads the counter and writes the sum
///   back with compare-and-swap, so a sum out of the 64-bit signed range is refused before
///   anything is stored, counters go below zero as on every store, and they keep their TTL.
/// - `get_many` sends one pipelined multi-get per server.
/// - Every request carries an opaque token that the reply must echo, and ends with a no-op
///   whose reply closes the replies: a reply that is not the request's (one too many, a
///   stale one), a reply line over 4 KiB or a value over `max_value_size` (default 1 MiB)
///   is a protocol error ([`ErrorKind::Backend`]) and the connection is dropped.
/// - A server that fails or times out is marked down for `retry_after` seconds: calls on its
///   keys fail at once with an [`ErrorKind::Unavailable`] error (keys of the other servers
///   keep working); then one call at a time tries it again, the others still failing at
///   once, until it answers. This is the circuit breaker the Redis store has, one per
///   server. A pooled connection that fails before any byte of a reply is replaced
///   and the request sent again only for gets, plain sets and `flush`: an add, a
///   compare-and-swap or a delete may already have been applied.
/// - With the pickle serializer, values use python-memcached's flags (text, int, bytes,
///   pickle), so Python cachy and this store read each other's values.
/// - `flush` is `flush_all` on every server: memcached cannot flush one prefix.
pub struct MemcachedStore {
    servers: Vec<Server>,
    ring: Vec<(u32, usize)>,
    prefix: Prefix,
    python_flags: bool,
    timeout: Duration,
    max_value_size: usize,
    /// The opaque token of the next command: every command gets its own.
    next_token: AtomicU64,
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field(
                "servers",
                &self.servers.iter().map(|s| &s.address).collect::<Vec<_>>(),
            )
            .field("prefix", &self.prefix.as_str())
            .finish_non_exhaustive()
    }
}

fn protocol_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Backend, message)
}

fn ttl_argument(ttl: Ttl) -> u64 {
    match ttl {
        None => 0,
        // memcached reads an absolute time as a signed 32-bit number: later ones (after 2038)
        // are clamped to the latest it can take.
        Some(seconds) if seconds > MAX_RELATIVE_TTL => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_add(seconds)
            .min(i32::MAX as u64),
        Some(seconds) => seconds,
    }
}

/// The client flags and bytes of a get's reply (which asked for `f`); `None` for a miss.
fn stored_value(reply: Reply) -> Result<Option<(u32, Vec<u8>)>> {
    if reply.code() != "VA" {
        return Ok(None);
    }
    let flags = reply.number_flag('f')?;
    Ok(reply.into_data().map(|data| (flags, data)))
}

/// The counter in stored bytes, plus `by`. memcached's own incr and decr (python-memcached's,
/// any other client's) rewrite a shorter number in place padded with spaces, which are not
/// part of it; a number outside the 64-bit signed range is not a counter here, and is left
/// as it is.
fn incremented_counter(data: &[u8], by: i64) -> Result<i64> {
    let digits = data.trim_ascii();
    if let Some(number) = parse_integer(digits).filter(|n| i64::try_from(*n).is_err()) {
        return Err(Error::new(
            ErrorKind::NotAnInteger,
            format!("the counter holds {number}, outside the 64-bit signed range of counters"),
        ));
    }
    incremented(Some(digits), by)
}

impl MemcachedStore {
    /// Build from a store's configuration: the fields of
    /// [`MemcachedConfig`](config::MemcachedConfig), with python-memcached's flags when the
    /// store's serializer is pickle.
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        let python_flags = config.effective_serializer() == "pickle";
        config.build(|options| Ok(Self::with_config(options)?.with_python_flags(python_flags)))
    }

    fn wire_key(&self, key: &str) -> WireKey {
        WireKey::new(&self.prefix, key)
    }

    /// The key memcached sees for `key`.
    pub fn server_key(&self, key: &str) -> String {
        self.wire_key(key).as_str().to_owned()
    }

    /// The index of the server that holds `key`.
    fn server_of(&self, key: &WireKey) -> usize {
        let digest = Md5::digest(key.as_str());
        let point = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let at = self.ring.partition_point(|(p, _)| *p < point);
        self.ring
            .get(at)
            .or_else(|| self.ring.first())
            .map_or(0, |(_, index)| *index)
    }

    /// The address of the server that holds `key`.
    pub fn server_for(&self, key: &str) -> String {
        self.servers[self.server_of(&self.wire_key(key))]
            .address
            .to_string()
    }

    /// Send `commands` to server `index` in one round trip: the reply to each (`None` for a
    /// quiet miss).
    async fn exchange(
        &self,
        index: usize,
        commands: Vec<Command<'_>>,
    ) -> Result<Vec<Option<Reply>>> {
        let server = &self.servers[index];
        // Waiting for a free connection is not the server's fault: it is outside the timeout.
        let connections = server.here();
        let _slot = connections
            .slots
            .acquire()
            .await
            .map_err(|e| Error::backend("the connection pool is closed", e))?;
        // Asked once a connection is free, not before: callers queued behind calls to a
        // server that stopped answering then fail at once when the first of those calls
        // marks it down, instead of each waiting out its own timeout.
        let pass = server.breaker.admit()?;
        let first_token = self
            .next_token
            .fetch_add(commands.len() as u64, Ordering::Relaxed);
        let batch = Batch::new(commands, first_token);
        let work = async {
            let pooled = connections.pooled();
            let reused = pooled.is_some();
            let mut connection = match pooled {
                Some(connection) => connection,
                None => server.connect().await?,
            };
            let mut outcome = connection.exchange(&batch, self.max_value_size).await;
            // A pooled connection that the server (or a firewall) closed while it was idle
            // fails before any byte of a reply: one more try on a fresh connection, for
            // requests that do no harm if the first one was applied after all.
            if reused
                && batch.may_repeat()
                && matches!(
                    outcome,
                    Err(Failure::Io {
                        answered: false,
                        ..
                    })
                )
            {
                connection = server.connect().await?;
                outcome = connection.exchange(&batch, self.max_value_size).await;
            }
            if outcome.is_ok() {
                connections.release(connection);
            }
            outcome
        };
        let what = || format!("memcached server {}", server.address);
        let outcome = match bounded(self.timeout, what, work).await {
            Ok(Ok(answer)) => answer,
            // The server answers, out of step: dropping the connection is enough. Marking the
            // server down would let one bad value (say, over max_value_size) fail all its keys.
            Ok(Err(Failure::Garbled(reason))) => Err(protocol_error(format!(
                "memcached protocol error from {}: {reason}; the connection was dropped",
                server.address
            ))),
            Ok(Err(Failure::Io { error, .. })) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("memcached server {} failed: {error}", server.address),
            )),
            Err(timeout) => Err(timeout),
        };
        if outcome.as_ref().is_err_and(Error::is_temporary) {
            connections.drop_idle();
        }
        pass.finish(&outcome);
        outcome
    }

    /// Send `command` about `key` to its server: its reply.
    async fn one(&self, key: &WireKey, command: Command<'_>) -> Result<Reply> {
        self.exchange(self.server_of(key), vec![command])
            .await?
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| protocol_error("memcached sent no reply"))
    }

    /// Refuse a value that memcached would refuse or that this store could not read back.
    fn check_size(&self, data: &[u8]) -> Result<()> {
        if data.len() > self.max_value_size {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the value is too large: {} bytes, over the store's max_value_size ({})",
                    data.len(),
                    self.max_value_size
                ),
            ));
        }
        Ok(())
    }
}
