//! A connection to a server: a batch written, and its replies read off the stream within
//! bounds.

use futures_util::FutureExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::replies::{Head, Incoming, Matcher, parse_head};
use super::{Batch, MAX_LINE, MAX_STATS, Reply};
use crate::error::{Error, ErrorKind, Result};

/// Why an exchange failed, which decides what becomes of the connection and the server.
#[derive(Debug)]
pub(in crate::stores::memcached) enum Failure {
    /// The connection failed or was closed. `answered`: whether any byte of a reply had
    /// arrived (if not, the server may never have read the request).
    Io { error: Error, answered: bool },
    /// The server sent something that is not a reply to the request: the connection is out
    /// of step and is dropped.
    Garbled(String),
}

/// Both directions of a connection to a server.
pub(in crate::stores::memcached) trait Duplex:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

/// A connection to a server.
pub(in crate::stores::memcached) struct Connection {
    stream: BufReader<Box<dyn Duplex>>,
    /// Whether any byte of a reply has arrived since the last request was sent.
    answered: bool,
}

impl Connection {
    /// A connection over `stream`.
    pub(in crate::stores::memcached) fn new(stream: Box<dyn Duplex>) -> Self {
        Connection {
            stream: BufReader::new(stream),
            answered: false,
        }
    }

    /// Whether the connection can take a request: nothing can be read from it now. The end
    /// of the stream means the server closed it while it was idle; bytes mean a reply nobody
    /// asked for, which would be taken for the next request's.
    pub(in crate::stores::memcached) fn is_idle(&mut self) -> bool {
        self.stream.fill_buf().now_or_never().is_none()
    }

    /// Send `batch` and read its replies: by command, `None` for a quiet miss. The inner
    /// error is the server refusing a command (the replies are all read, so the connection
    /// can be used again); the outer one, a failure of the connection.
    pub(in crate::stores::memcached) async fn exchange(
        &mut self,
        batch: &Batch<'_>,
        max_value: usize,
    ) -> std::result::Result<Result<Vec<Option<Reply>>>, Failure> {
        self.answered = false;
        let stream = self.stream.get_mut();
        let sent = match stream.write_all(&batch.bytes).await {
            Ok(()) => stream.flush().await,
            Err(e) => Err(e),
        };
        sent.map_err(|e| self.io_failure(e))?;
        let mut matcher = Matcher::new(batch);
        loop {
            let incoming = self.incoming(max_value).await?;
            if matcher.accept(incoming).map_err(Failure::Garbled)? {
                return Ok(matcher.finish());
            }
        }
    }

    fn io_failure(&self, error: std::io::Error) -> Failure {
        Failure::Io {
            error: Error::backend("memcached I/O failed", error),
            answered: self.answered,
        }
    }

    /// The next reply line, without its line end, at most [`MAX_LINE`] bytes long.
    async fn line(&mut self) -> std::result::Result<String, Failure> {
        let mut line = Vec::new();
        loop {
            let buffer = match self.stream.fill_buf().await {
                Ok(buffer) => buffer,
                Err(e) => return Err(self.io_failure(e)),
            };
            if buffer.is_empty() {
                return Err(Failure::Io {
                    error: Error::new(ErrorKind::Backend, "memcached closed the connection"),
                    answered: self.answered,
                });
            }
            self.answered = true;
            let (end, complete) = match buffer.iter().position(|b| *b == b'\n') {
                Some(newline) => (newline + 1, true),
                None => (buffer.len(), false),
            };
            if line.len() + end > MAX_LINE {
                return Err(Failure::Garbled(format!(
                    "a reply line is longer than {MAX_LINE} bytes"
                )));
            }
            line.extend_from_slice(&buffer[..end]);
            self.stream.consume(end);
            if complete {
                break;
            }
        }
        if !line.ends_with(b"\r\n") {
            return Err(Failure::Garbled(
                "a reply line does not end in \\r\\n".to_owned(),
            ));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line)
            .map_err(|_| Failure::Garbled("a reply line is not UTF-8 text".to_owned()))
    }

    /// The next reply, with its value.
    async fn incoming(&mut self, max_value: usize) -> std::result::Result<Incoming, Failure> {
        let line = self.line().await?;
        match parse_head(&line, max_value).map_err(Failure::Garbled)? {
            Head::Value { size, flags } => {
                // Memory follows the bytes that arrive, not the size announced.
                let mut data = Vec::with_capacity(size.min(64 * 1024) + 2);
                let wanted = size + 2;
                let read = (&mut self.stream)
                    .take(wanted as u64)
                    .read_to_end(&mut data)
                    .await;
                let read = read.map_err(|e| self.io_failure(e))?;
                if read < wanted {
                    return Err(Failure::Io {
                        error: Error::new(
                            ErrorKind::Backend,
                            "memcached closed the connection in the middle of a value",
                        ),
                        answered: true,
                    });
                }
                if !data.ends_with(b"\r\n") {
                    return Err(Failure::Garbled(format!(
                        "a value of {size} bytes is not followed by a line end"
                    )));
                }
                data.truncate(size);
                Ok(Incoming::Reply(Reply::Value { flags, data }))
            }
            Head::Status { code, flags } => Ok(Incoming::Reply(Reply::Status { code, flags })),
            Head::Stat { name, value } => {
                let mut stats = vec![(name, value)];
                loop {
                    let line = self.line().await?;
                    match parse_head(&line, max_value).map_err(Failure::Garbled)? {
                        Head::Stat { name, value } if stats.len() < MAX_STATS => {
                            stats.push((name, value));
                        }
                        Head::StatsEnd => return Ok(Incoming::Reply(Reply::Stats(stats))),
                        _ => {
                            return Err(Failure::Garbled(format!(
                                "the answer to `stats` has more than {MAX_STATS} lines, or a line that is not a `STAT` ({line:?})"
                            )));
                        }
                    }
                }
            }
            Head::StatsEnd => Ok(Incoming::Reply(Reply::Stats(Vec::new()))),
            Head::End => Ok(Incoming::End),
            Head::Refused(error) => Ok(Incoming::Refused(error)),
        }
    }
}
