//! The Redis store: the store and its connection target here; its options, TLS and URL
//! parsing (`config.rs`), connecting and bounding calls (`connection.rs`), scanning,
//! flushing a prefix and cluster nodes (`inspect.rs`), its Lua scripts (`scripts.rs`) and
//! the `Store` implementation (`store.rs`). Its circuit breaker is the one every server
//! store shares (`stores/breaker.rs`).

pub(super) mod config;
mod connection;
mod inspect;
mod scripts;
mod store;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;

use crate::stores::breaker::Breaker;

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
/// with an [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) error naming the failure, without any network I/O.
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
    connection: crate::runtime::RuntimeBound<Connection>,
    call_timeout: Duration,
    breaker: Breaker,
}

enum Target {
    Single {
        client: redis::Client,
        config: ConnectionManagerConfig,
    },
    Cluster {
        client: redis::cluster::ClusterClient,
        /// A client per configured node, for the one thing a cluster connection does not
        /// carry: a subscription. Classic pub/sub reaches every node of a cluster, so any
        /// node that answers will do.
        #[cfg(feature = "hybrid")]
        nodes: Vec<redis::Client>,
        /// The node the next subscription tries first, so that one lost with its node is
        /// taken up on the next.
        #[cfg(feature = "hybrid")]
        next_node: std::sync::atomic::AtomicUsize,
        /// The node invalidations are published on, until a publish there fails.
        #[cfg(feature = "hybrid")]
        next_publish: std::sync::atomic::AtomicUsize,
    },
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &matches!(self.target, Target::Cluster { .. }))
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The prefix put in front of every key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
    }

    pub(super) fn key<'a>(&'a self, key: &'a str) -> Prefixed<'a> {
        Prefixed {
            prefix: &self.prefix,
            key,
        }
    }
}

/// A key behind the store's prefix, written into a command's arguments as one argument
/// without first joining the two into a string of its own (an allocation on every call).
#[derive(Clone, Copy)]
pub(super) struct Prefixed<'a> {
    prefix: &'a str,
    key: &'a str,
}

impl redis::ToRedisArgs for Prefixed<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let mut argument = out.writer_for_next_arg();
        // Writing into the command's buffer cannot fail.
        let _ = std::io::Write::write_all(&mut argument, self.prefix.as_bytes());
        let _ = std::io::Write::write_all(&mut argument, self.key.as_bytes());
    }
}

impl std::fmt::Display for Prefixed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.prefix, self.key)
    }
}
