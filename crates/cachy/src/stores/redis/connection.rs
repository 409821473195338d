//! Connecting, subscribing, and every call bounded in time and guarded by the breaker.

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue};

use super::*;
use crate::error::{Error, ErrorKind, Result};

impl RedisStore {
    /// A connection of its own subscribed to `channel`, and its messages' payloads; the
    /// stream ends when the connection drops. On a cluster it is one node's connection, tried
    /// in turn from the node after the last one subscribed to: a message published on any
    /// node reaches the subscribers of every node. Subscribing closes the circuit breaker:
    /// the server answered.
    #[cfg(feature = "hybrid")]
    pub(super) async fn subscribe_to(
        &self,
        channel: &str,
    ) -> Result<impl futures_util::Stream<Item = Vec<u8>> + Send + 'static> {
        let (clients, first) = match &self.target {
            Target::Single { client, .. } => (std::slice::from_ref(client), 0),
            Target::Cluster {
                nodes, next_node, ..
            } => (
                nodes.as_slice(),
                next_node.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ),
        };
        let mut refused = None;
        for client in clients
            .iter()
            .cycle()
            .skip(first % clients.len())
            .take(clients.len())
        {
            let subscribe = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match bounded(self.call_timeout, subscribe).await {
                Ok(Ok(pubsub)) => {
                    // The server is back: calls need not wait out `retry_after` to find out.
                    self.breaker.answered();
                    return Ok(futures_util::StreamExt::map(
                        pubsub.into_on_message(),
                        |message| message.get_payload_bytes().to_vec(),
                    ));
                }
                Ok(Err(e)) => {
                    refused = Some(redis_error("cannot subscribe to the Redis channel", e))
                }
                Err(timeout) => refused = Some(timeout),
            }
        }
        Err(refused.expect("a store has at least one node"))
    }

    /// The shared connection: made by the first call that needs it, and again on the
    /// caller's runtime when the one it lives on cannot serve it (see [`RuntimeBound`]).
    ///
    /// [`RuntimeBound`]: crate::runtime::RuntimeBound
    pub(super) async fn connection(&self) -> Result<Connection> {
        match self.connection.get() {
            Some(connection) => Ok(connection),
            // Boxed: the connecting futures (a cluster's above all) would otherwise be part
            // of every call's future, making it a large allocation on each call.
            None => Box::pin(self.connection.get_or_make(|| self.connect())).await,
        }
    }

    async fn connect(&self) -> Result<Connection> {
        match &self.target {
            Target::Single { client, config } => {
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map(Connection::Single)
                    .map_err(|e| redis_error("cannot set up the Redis connection", e))
            }
            Target::Cluster { client, .. } => {
                bounded(self.call_timeout, client.get_async_connection())
                    .await?
                    .map(Connection::Cluster)
                    .map_err(|e| redis_error("cannot connect to the Redis Cluster", e))
            }
        }
    }

    /// Run `call` past the circuit breaker: at once an error while the server is marked
    /// down; else the call, whose outcome the breaker learns from.
    ///
    /// A call refused at connection is made once more first: after a failure, redis-rs
    /// reconnects in the background and hands the outcome to the next call, so a refusal may
    /// be that of an attempt made while the server was still down, and one stale error must
    /// not mark a server that is back down for `retry_after`. A refused connection carried
    /// no command, so nothing is sent twice.
    pub(super) async fn guarded<T, F>(&self, call: impl Fn() -> F) -> Result<T>
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

    /// Run one command on the shared connection, bounded in time and behind the circuit
    /// breaker. Keys in `cmd` are used as given: add [`prefix`](Self::prefix) yourself. This
    /// is the hook for features above the store (tags keep their forever-key lists with it).
    ///
    /// On one server the connection manager's own timeouts bound the call (one connection
    /// attempt, then the answer; see the config), so no timer of ours is added: a second
    /// timer per call cost a sixth of the throughput with 64 callers.
    pub async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T> {
        self.guarded(|| async {
            let value = match self.connection().await? {
                Connection::Single(mut c) => command.query_async(&mut c).await,
                Connection::Cluster(mut c) => {
                    bounded(self.call_timeout, command.query_async(&mut c)).await?
                }
            };
            value.map_err(|e| redis_error("the Redis command failed", e))
        })
        .await
    }

    pub(super) async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T> {
        self.guarded(|| async {
            let value = match self.connection().await? {
                Connection::Single(mut c) => pipeline.query_async(&mut c).await,
                Connection::Cluster(mut c) => {
                    bounded(self.call_timeout, pipeline.query_async(&mut c)).await?
                }
            };
            value.map_err(|e| redis_error("the Redis transaction failed", e))
        })
        .await
    }
}

/// Await `work`, or fail with a clear error after `limit`.
pub(super) async fn bounded<T>(limit: Duration, work: impl Future<Output = T>) -> Result<T> {
    crate::stores::breaker::bounded(limit, || "Redis".to_owned(), work).await
}

/// Whether `error` is a connection refused by redis-rs: no command reached the server.
pub(super) fn is_refusal(error: &Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<redis::RedisError>())
        .is_some_and(redis::RedisError::is_connection_refusal)
}

pub(super) fn redis_error(context: &str, e: redis::RedisError) -> Error {
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
