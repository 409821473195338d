//! The servers of a memcached store: their addresses, connection pools and circuit breakers
//! (marked down for `retry_after` after a failure), and the ketama ring that spreads keys
//! over them.

use std::sync::{Arc, Mutex, PoisonError};

use md5::{Digest, Md5};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::protocol::{Connection, Duplex, Failure};
use crate::error::Error;
use crate::runtime::RuntimeBound;
use crate::stores::breaker::Breaker;

/// Points on the ring per server (per unit of weight), as ketama.
const POINTS_PER_SERVER: usize = 160;

/// Where a server listens.
#[derive(Debug, Clone)]
pub(super) enum Address {
    Tcp(String),
    #[cfg(unix)]
    Unix(String),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => f.write_str(a),
            #[cfg(unix)]
            Address::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

impl Address {
    pub(super) async fn connect(&self) -> std::io::Result<Connection> {
        let stream: Box<dyn Duplex> = match self {
            Address::Tcp(address) => {
                let stream = TcpStream::connect(address).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
            #[cfg(unix)]
            Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        };
        Ok(Connection::new(stream))
    }
}

pub(super) struct Server {
    pub(super) address: Address,
    /// Its connections on each runtime (see [`RuntimeBound`]): a connection serves calls on
    /// the runtime that opened it, and each runtime opens up to `max_connections`.
    connections: RuntimeBound<Arc<Connections>>,
    max_connections: usize,
    /// Marks the server down for `retry_after` after a failure.
    pub(super) breaker: Breaker,
}

/// A server's connections on one runtime.
pub(super) struct Connections {
    idle: Mutex<Vec<Connection>>,
    /// One per connection the runtime may have open.
    pub(super) slots: Semaphore,
}

impl Server {
    pub(super) fn new(address: Address, max_connections: usize, breaker: Breaker) -> Self {
        Server {
            address,
            connections: RuntimeBound::new(),
            max_connections,
            breaker,
        }
    }

    /// Its connections on this call's runtime.
    pub(super) fn here(&self) -> Arc<Connections> {
        self.connections.get_or_make_now(|| {
            Arc::new(Connections {
                idle: Mutex::default(),
                slots: Semaphore::new(self.max_connections),
            })
        })
    }

    pub(super) async fn connect(&self) -> std::result::Result<Connection, Failure> {
        self.address.connect().await.map_err(|e| Failure::Io {
            error: Error::backend("cannot connect to memcached", e),
            answered: false,
        })
    }
}

impl Connections {
    /// Close the idle connections: after a failure they are likely dead too.
    pub(super) fn drop_idle(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// An idle connection, if there is one. A connection with something to read is
    /// dropped: the server closed it, or sent a reply that no request asked for.
    pub(super) fn pooled(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(mut connection) = idle.pop() {
            if connection.is_idle() {
                return Some(connection);
            }
        }
        None
    }

    pub(super) fn release(&self, connection: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }
}

pub(super) fn ketama_ring(weights: &[usize]) -> Vec<(u32, usize)> {
    let mut ring = Vec::new();
    for (index, weight) in weights.iter().enumerate() {
        for point in 0..(POINTS_PER_SERVER * weight).div_ceil(4) {
            let digest = Md5::digest(format!("{index}-{point}"));
            for chunk in digest.chunks(4) {
                ring.push((
                    u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                    index,
                ));
            }
        }
    }
    ring.sort_unstable();
    ring
}
