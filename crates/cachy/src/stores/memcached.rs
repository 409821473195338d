use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use md5::{Digest, Md5};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::codec::{incremented, parse_integer};
use crate::config::StoreConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Store, Ttl};

/// Relative TTLs above this are taken by memcached as absolute unix times.
const MAX_RELATIVE_TTL: u64 = 60 * 60 * 24 * 30;
/// Points on the ring per server (per unit of weight), as ketama.
const POINTS_PER_SERVER: usize = 160;
/// python-memcached's flags (version 1.62).
const FLAG_PICKLE: u32 = 1;
const FLAG_INTEGER: u32 = 1 << 1;
const FLAG_LONG: u32 = 1 << 2;
const FLAG_COMPRESSED: u32 = 1 << 3;
const FLAG_TEXT: u32 = 1 << 4;

/// The memcached store (driver `memcached`): a pool of servers, keys spread over them by
/// consistent hashing (ketama), spoken to with memcached's meta protocol by a small client of
/// our own (see the README for why).
///
/// - A key that memcached cannot take (over 250 bytes with its prefix, or with spaces or
///   control characters) is stored as `{prefix}cachy:sha1:{hex digest of the key}`, so every
///   key the other stores accept works here.
/// - TTLs over 30 days are sent as absolute unix times, as memcached requires.
/// - `add` is memcached's add (atomic); `increment` is native (`ma`) for non-negative amounts
///   on non-negative counters, and a compare-and-swap loop otherwise, so counters go below
///   zero as on every store, keeping their TTL.
/// - `get_many` sends one pipelined multi-get per server.
/// - A server that fails is marked down for `retry_after` seconds: calls on its keys fail at
///   once with a clear error (keys of the other servers keep working), then it is tried again.
/// - With the pickle serializer, values use python-memcached's flags (text, int, bytes,
///   pickle), so Python cachy and this store read each other's values.
/// - `flush` is `flush_all` on every server: memcached cannot flush one prefix.
pub struct MemcachedStore {
    servers: Vec<Server>,
    ring: Vec<(u32, usize)>,
    prefix: String,
    python_flags: bool,
    timeout: Duration,
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field(
                "servers",
                &self.servers.iter().map(|s| &s.address).collect::<Vec<_>>(),
            )
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Where a server listens.
#[derive(Debug, Clone)]
enum Address {
    Tcp(String),
    Unix(String),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => f.write_str(a),
            Address::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

struct Server {
    address: Address,
    idle: Mutex<Vec<Connection>>,
    slots: Semaphore,
    down_until: Mutex<Option<Instant>>,
    retry_after: Duration,
}

type Stream = BufReader<Box<dyn Duplex>>;

trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

struct Connection {
    stream: Stream,
}

/// One reply to a meta command.
#[derive(Debug)]
enum Reply {
    /// `VA <size> <flags>` and the value.
    Value { flags: Vec<String>, data: Vec<u8> },
    /// `HD`, `NS`, `EX`, `NF`, `EN`, `MN`, `OK` with their flags.
    Status { code: String, flags: Vec<String> },
    /// `CLIENT_ERROR`, `SERVER_ERROR` or `ERROR`: the server refused this request (the
    /// connection and the server are fine).
    Refused(Error),
}

impl Reply {
    fn code(&self) -> &str {
        match self {
            Reply::Value { .. } => "VA",
            Reply::Status { code, .. } => code,
            Reply::Refused(_) => "ERROR",
        }
    }

    fn flag(&self, name: char) -> Option<&str> {
        match self {
            Reply::Value { flags, .. } | Reply::Status { flags, .. } => {
                flags.iter().find_map(|f| f.strip_prefix(name))
            }
            Reply::Refused(_) => None,
        }
    }
}

fn protocol_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Backend, message)
}

impl Connection {
    async fn open(address: &Address) -> std::io::Result<Self> {
        let stream: Box<dyn Duplex> = match address {
            Address::Tcp(address) => {
                let stream = TcpStream::connect(address).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
            Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        };
        Ok(Connection {
            stream: BufReader::new(stream),
        })
    }

    async fn send(&mut self, request: &[u8]) -> Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(request).await.map_err(io_error)?;
        stream.flush().await.map_err(io_error)
    }

    async fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let read = self.stream.read_line(&mut line).await.map_err(io_error)?;
        if read == 0 {
            return Err(protocol_error("memcached closed the connection"));
        }
        Ok(line.trim_end().to_owned())
    }

    async fn reply(&mut self) -> Result<Reply> {
        let line = self.line().await?;
        let mut parts = line.split(' ');
        let code = parts.next().unwrap_or_default().to_owned();
        if code == "VA" {
            let size: usize = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| protocol_error(format!("bad memcached reply: {line}")))?;
            let flags = parts.map(str::to_owned).collect();
            let mut data = vec![0; size + 2];
            self.stream.read_exact(&mut data).await.map_err(io_error)?;
            data.truncate(size);
            return Ok(Reply::Value { flags, data });
        }
        if code.ends_with("ERROR")
            || line.starts_with("CLIENT_ERROR")
            || line.starts_with("SERVER_ERROR")
        {
            let kind = if line.contains("non-numeric") {
                ErrorKind::NotAnInteger
            } else if line.starts_with("SERVER_ERROR") && !line.contains("too large") {
                ErrorKind::Backend
            } else {
                ErrorKind::InvalidInput
            };
            return Ok(Reply::Refused(Error::new(
                kind,
                format!("memcached answered: {line}"),
            )));
        }
        Ok(Reply::Status {
            code,
            flags: parts.map(str::to_owned).collect(),
        })
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::backend("memcached I/O failed", e)
}

impl Server {
    fn is_down(&self) -> bool {
        let mut down = self
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *down {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *down = None;
                false
            }
            None => false,
        }
    }

    fn mark_down(&self) {
        *self
            .down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + self.retry_after);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Whether memcached can take `key` as it is.
fn is_plain_key(key: &str) -> bool {
    key.len() <= super::MAX_PLAIN_KEY
        && !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80)
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

fn ketama_ring(weights: &[u64]) -> Vec<(u32, usize)> {
    let mut ring = Vec::new();
    for (index, weight) in weights.iter().enumerate() {
        for point in 0..(POINTS_PER_SERVER * (*weight as usize)).div_ceil(4) {
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

impl MemcachedStore {
    /// Build from configuration (nothing connects until the first call):
    ///
    /// - `servers`: a list of `"host:port"`, `"unix:/path/to/socket"`, or
    ///   `{"address": "host:port", "weight": 2}` (weights default to 1);
    /// - `prefix` (default empty), `timeout` (seconds per call, default 2),
    ///   `retry_after` (seconds a failed server stays marked down, default 5),
    ///   `max_connections` (per server, opened as needed, default 64).
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        let servers = config
            .options()
            .get("servers")
            .and_then(|s| s.as_array())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                config.error(
                    "servers",
                    "`servers` must be a non-empty list of \"host:port\"",
                )
            })?;
        let mut addresses = Vec::new();
        let mut weights = Vec::new();
        for server in servers {
            let (address, weight) = match server {
                serde_json::Value::String(address) => (address.as_str(), 1),
                serde_json::Value::Object(entry) => (
                    entry
                        .get("address")
                        .and_then(|a| a.as_str())
                        .unwrap_or_default(),
                    entry.get("weight").and_then(|w| w.as_u64()).unwrap_or(1),
                ),
                _ => ("", 0),
            };
            let address = if let Some(path) = address.strip_prefix("unix:") {
                Address::Unix(path.to_owned())
            } else if address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            {
                Address::Tcp(address.to_owned())
            } else {
                return Err(config.error("servers", format!("{server} is not \"host:port\", \"unix:/path\" or {{\"address\", \"weight\"}}")));
            };
            if weight == 0 {
                return Err(
                    config.error("servers", format!("{server}: weights must be at least 1"))
                );
            }
            addresses.push(address);
            weights.push(weight);
        }
        let seconds = |field: &str, default: u64| -> Result<Duration> {
            Ok(Duration::from_secs_f64(match config.options().get(field) {
                None => default as f64,
                Some(v) => v.as_f64().filter(|s| *s > 0.0).ok_or_else(|| {
                    config.error(
                        field,
                        format!("`{field}` must be a positive number of seconds"),
                    )
                })?,
            }))
        };
        let timeout = seconds("timeout", 2)?;
        let retry_after = seconds("retry_after", 5)?;
        let max_connections = config.u64("max_connections")?.unwrap_or(64).max(1) as usize;
        Ok(MemcachedStore {
            ring: ketama_ring(&weights),
            servers: addresses
                .into_iter()
                .map(|address| Server {
                    address,
                    idle: Mutex::new(Vec::new()),
                    slots: Semaphore::new(max_connections),
                    down_until: Mutex::new(None),
                    retry_after,
                })
                .collect(),
            prefix: config.str("prefix")?.unwrap_or_default().to_owned(),
            python_flags: config.effective_serializer() == "pickle",
            timeout,
        })
    }

    /// The key memcached sees for `key`.
    pub fn server_key(&self, key: &str) -> String {
        let full = format!("{}{key}", self.prefix);
        if is_plain_key(&full) {
            full
        } else {
            use sha1::Digest as _;
            format!(
                "{}cachy:sha1:{}",
                self.prefix,
                hex::encode(sha1::Sha1::digest(key))
            )
        }
    }

    /// The index of the server that holds `server_key`.
    fn server_of(&self, server_key: &str) -> usize {
        let digest = Md5::digest(server_key);
        let point = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let at = self.ring.partition_point(|(p, _)| *p < point);
        self.ring
            .get(at)
            .or_else(|| self.ring.first())
            .map_or(0, |(_, index)| *index)
    }

    /// The address of the server that holds `key`.
    pub fn server_for(&self, key: &str) -> String {
        self.servers[self.server_of(&self.server_key(key))]
            .address
            .to_string()
    }

    /// Send `request` to server `index` and read `replies` replies (until `MN` when `None`).
    async fn exchange(
        &self,
        index: usize,
        request: Vec<u8>,
        replies: Option<usize>,
    ) -> Result<Vec<Reply>> {
        let server = &self.servers[index];
        if server.is_down() {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "memcached server {} is marked down after a failure; it is retried later",
                    server.address
                ),
            ));
        }
        // Waiting for a free connection is not the server's fault: it is outside the timeout.
        let _slot = server
            .slots
            .acquire()
            .await
            .map_err(|e| Error::backend("the connection pool is closed", e))?;
        let work = async {
            let pooled = server
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let reused = pooled.is_some();
            let mut connection = match pooled {
                Some(connection) => connection,
                None => Connection::open(&server.address).await.map_err(io_error)?,
            };
            let outcome = match converse(&mut connection, &request, replies).await {
                // A pooled connection the server (or a firewall) closed while it was idle
                // fails before any reply: one more try on a fresh connection.
                Err(Silent(_)) if reused => {
                    connection = Connection::open(&server.address).await.map_err(io_error)?;
                    converse(&mut connection, &request, replies)
                        .await
                        .map_err(Failure::into_error)?
                }
                other => other.map_err(Failure::into_error)?,
            };
            server
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
            Ok::<_, Error>(outcome)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(Ok(replies))) => Ok(replies),
            Ok(Ok(Err(refused))) => Err(refused),
            Ok(Err(e)) => {
                server.mark_down();
                Err(Error::new(
                    ErrorKind::Backend,
                    format!("memcached server {} failed: {e}", server.address),
                ))
            }
            Err(_) => {
                server.mark_down();
                Err(Error::new(
                    ErrorKind::Backend,
                    format!(
                        "memcached server {} did not answer within {:?}",
                        server.address, self.timeout
                    ),
                ))
            }
        }
    }

    async fn one(&self, key: &str, request: Vec<u8>) -> Result<Reply> {
        let index = self.server_of(key);
        self.exchange(index, request, Some(1))
            .await?
            .pop()
            .ok_or_else(|| protocol_error("memcached sent no reply"))
    }

    /// Flags and bytes for a value, in python-memcached's layout under pickle.
    fn encode_wire(&self, value: &[u8]) -> (u32, Vec<u8>) {
        if parse_integer(value).is_some() {
            return (FLAG_INTEGER, value.to_vec());
        }
        if !self.python_flags {
            return (0, value.to_vec());
        }
        match serde_pickle::value_from_slice(value, serde_pickle::DeOptions::new()) {
            Ok(serde_pickle::Value::String(text)) => (FLAG_TEXT, text.into_bytes()),
            Ok(serde_pickle::Value::Bytes(bytes)) => (0, bytes),
            Ok(serde_pickle::Value::I64(integer)) => {
                (FLAG_INTEGER, integer.to_string().into_bytes())
            }
            _ => (FLAG_PICKLE, value.to_vec()),
        }
    }

    /// The bytes the serializer reads, from flags and stored bytes.
    fn decode_wire(&self, flags: u32, data: Vec<u8>) -> Result<Vec<u8>> {
        if flags & FLAG_COMPRESSED != 0 {
            return Err(Error::new(
                ErrorKind::Deserialize,
                "the value was stored compressed (python-memcached's min_compress_len), which this store does not read",
            ));
        }
        if !self.python_flags || flags & (FLAG_INTEGER | FLAG_LONG | FLAG_PICKLE) != 0 {
            return Ok(data);
        }
        let value = if flags & FLAG_TEXT != 0 {
            let text = String::from_utf8(data).map_err(|e| {
                Error::new(ErrorKind::Deserialize, "a text value is not UTF-8").with_source(e)
            })?;
            serde_pickle::Value::String(text)
        } else {
            serde_pickle::Value::Bytes(data)
        };
        serde_pickle::value_to_vec(&value, serde_pickle::SerOptions::new()).map_err(|e| {
            Error::new(
                ErrorKind::Deserialize,
                "cannot re-encode a python-memcached value",
            )
            .with_source(e)
        })
    }

    fn set_request(key: &str, flags: u32, data: &[u8], ttl: Ttl, extra: &str) -> Vec<u8> {
        let mut request = format!(
            "ms {key} {} T{} F{flags}{extra}\r\n",
            data.len(),
            ttl_argument(ttl)
        )
        .into_bytes();
        request.extend_from_slice(data);
        request.extend_from_slice(b"\r\n");
        request
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Ttl, mode: &str) -> Result<Reply> {
        let server_key = self.server_key(key);
        let (flags, data) = self.encode_wire(value);
        self.one(
            &server_key,
            Self::set_request(&server_key, flags, &data, ttl, mode),
        )
        .await
    }

    /// Read a counter with its CAS token, remaining TTL and flags.
    async fn read_for_update(&self, server_key: &str) -> Result<Option<(Vec<u8>, u64, Ttl, u32)>> {
        match self
            .one(
                server_key,
                format!("mg {server_key} v c t f\r\n").into_bytes(),
            )
            .await?
        {
            Reply::Value { data, flags } => {
                let reply = Reply::Value {
                    data: Vec::new(),
                    flags,
                };
                let cas = reply.flag('c').and_then(|c| c.parse().ok()).unwrap_or(0);
                let ttl = match reply.flag('t').and_then(|t| t.parse::<i64>().ok()) {
                    Some(seconds) if seconds > 0 => Some(seconds as u64),
                    _ => None,
                };
                let flags = reply.flag('f').and_then(|f| f.parse().ok()).unwrap_or(0);
                Ok(Some((data, cas, ttl, flags)))
            }
            _ => Ok(None),
        }
    }

    async fn increment_with_cas(&self, server_key: &str, by: i64) -> Result<i64> {
        for _ in 0..100 {
            let Some((data, cas, ttl, flags)) = self.read_for_update(server_key).await? else {
                let next = incremented(None, by)?;
                let data = next.to_string();
                let reply = self
                    .one(
                        server_key,
                        Self::set_request(server_key, FLAG_INTEGER, data.as_bytes(), None, " ME"),
                    )
                    .await?;
                if reply.code() == "HD" {
                    return Ok(next);
                }
                continue;
            };
            let next = incremented(Some(&data), by)?;
            let text = next.to_string();
            let reply = self
                .one(
                    server_key,
                    Self::set_request(server_key, flags, text.as_bytes(), ttl, &format!(" C{cas}")),
                )
                .await?;
            if reply.code() == "HD" {
                return Ok(next);
            }
        }
        Err(Error::new(
            ErrorKind::Backend,
            "the counter kept changing: 100 compare-and-swap attempts failed",
        ))
    }
}

/// An I/O failure; `Silent` when it came before any reply (the request may be retried).
enum Failure {
    Silent(Error),
    Midway(Error),
}

use Failure::{Midway, Silent};

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Silent(e) | Midway(e) => e,
        }
    }
}

/// Send `request` and read `replies` replies (until `MN` when `None`). The outer error is an
/// I/O failure; the inner one, the server refusing the request (then the rest of the replies
/// are read, so the connection can be reused).
async fn converse(
    connection: &mut Connection,
    request: &[u8],
    replies: Option<usize>,
) -> std::result::Result<Result<Vec<Reply>>, Failure> {
    connection.send(request).await.map_err(Silent)?;
    let mut out: Vec<Reply> = Vec::new();
    loop {
        let reply = match connection.reply().await {
            Ok(reply) => reply,
            Err(e) if out.is_empty() => return Err(Silent(e)),
            Err(e) => return Err(Midway(e)),
        };
        if let Reply::Refused(refused) = reply {
            let left = replies.map(|n| n - out.len() - 1);
            drain(connection, left).await.map_err(Midway)?;
            return Ok(Err(refused));
        }
        let done = match replies {
            Some(n) => out.len() + 1 == n,
            None => reply.code() == "MN",
        };
        out.push(reply);
        if done {
            return Ok(Ok(out));
        }
    }
}

/// Read and discard the replies left after a refused one (`None`: until `MN`).
async fn drain(connection: &mut Connection, left: Option<usize>) -> Result<()> {
    match left {
        Some(n) => {
            for _ in 0..n {
                connection.reply().await?;
            }
        }
        None => loop {
            if connection.reply().await?.code() == "MN" {
                break;
            }
        },
    }
    Ok(())
}

#[async_trait]
impl Store for MemcachedStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let server_key = self.server_key(key);
        match self
            .one(&server_key, format!("mg {server_key} v f\r\n").into_bytes())
            .await?
        {
            Reply::Value { data, flags } => {
                let flags = flags
                    .iter()
                    .find_map(|f| f.strip_prefix('f'))
                    .and_then(|f| f.parse().ok())
                    .unwrap_or(0);
                self.decode_wire(flags, data).map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut by_server: BTreeMap<usize, Vec<(usize, String)>> = BTreeMap::new();
        for (position, key) in keys.iter().enumerate() {
            let server_key = self.server_key(key);
            by_server
                .entry(self.server_of(&server_key))
                .or_default()
                .push((position, server_key));
        }
        let requests = by_server.into_iter().map(|(server, keys)| async move {
            let mut request = Vec::new();
            for (position, key) in &keys {
                request.extend_from_slice(format!("mg {key} v f q O{position}\r\n").as_bytes());
            }
            request.extend_from_slice(b"mn\r\n");
            self.exchange(server, request, None).await
        });
        let mut values = vec![None; keys.len()];
        for replies in futures_util::future::try_join_all(requests).await? {
            for reply in replies {
                let position = reply.flag('O').and_then(|o| o.parse::<usize>().ok());
                let flags = reply.flag('f').and_then(|f| f.parse().ok()).unwrap_or(0);
                if let (Reply::Value { data, .. }, Some(position)) = (reply, position)
                    && position < values.len()
                {
                    values[position] = Some(self.decode_wire(flags, data)?);
                }
            }
        }
        Ok(values)
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        match self.set(key, value, ttl, "").await?.code() {
            "HD" => Ok(()),
            other => Err(protocol_error(format!(
                "memcached did not store the value: {other}"
            ))),
        }
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        Ok(self.set(key, value, ttl, " ME").await?.code() == "HD")
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        let server_key = self.server_key(key);
        if by < 0 {
            return self.increment_with_cas(&server_key, by).await;
        }
        let native = self
            .one(
                &server_key,
                format!("ma {server_key} D{by} v\r\n").into_bytes(),
            )
            .await;
        match native {
            Ok(Reply::Value { data, .. }) => {
                match std::str::from_utf8(&data)
                    .ok()
                    .and_then(|n| n.parse::<i64>().ok())
                {
                    Some(next) => Ok(next),
                    None => {
                        // memcached counts unsigned and has already stored the sum: take it back.
                        self.one(
                            &server_key,
                            format!("ma {server_key} MD D{by}\r\n").into_bytes(),
                        )
                        .await?;
                        Err(Error::new(
                            ErrorKind::NotAnInteger,
                            "the counter would overflow a 64-bit signed integer",
                        ))
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::Backend => Err(e),
            // Missing, a negative counter (memcached counts unsigned) or text: the CAS loop
            // creates, updates or refuses it with the common semantics.
            Ok(_) | Err(_) => self.increment_with_cas(&server_key, by).await,
        }
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        let server_key = self.server_key(key);
        Ok(self
            .one(&server_key, format!("md {server_key}\r\n").into_bytes())
            .await?
            .code()
            == "HD")
    }

    async fn flush(&self) -> Result<()> {
        let flushes = (0..self.servers.len())
            .map(|index| self.exchange(index, b"flush_all\r\n".to_vec(), Some(1)));
        futures_util::future::try_join_all(flushes).await?;
        Ok(())
    }
}
