//! memcached's meta protocol as the store speaks it: keys that are safe on a command line,
//! commands, and replies read within bounds and tied to the request they answer.
//!
//! Every exchange is a batch: its commands, each tagged with an opaque token (`O<n>`) that
//! memcached echoes in the reply, then the no-op `mn`, whose `MN` closes the replies. A reply
//! with a token of another request, a reply too many or missing, a reply code the command
//! cannot get, a line longer than [`MAX_LINE`] or a value longer than the store's
//! `max_value_size` means the connection is out of step with the server: the exchange fails
//! with [`Failure::Garbled`] and the connection is not used again.

use futures_util::FutureExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::error::{Error, ErrorKind, Result};
use crate::stores::{MAX_PLAIN_KEY, backend_key};

/// The longest reply line read, line end included. memcached's reply lines are a code, a
/// size and a few short flags (under 100 bytes); the bound stops a server that never ends a
/// line from filling memory.
const MAX_LINE: usize = 4096;

/// The most `STAT` lines read in answer to `stats` (memcached sends under 100): the bound
/// stops a server that never ends them from filling memory.
const MAX_STATS: usize = 1000;

/// How every hashed key starts, after the prefix (see [`backend_key`]).
const DIGEST_MARKER: &str = "cachy:sha1:";

/// The longest prefix: a hashed key (prefix, marker and 40 hex digits) must still fit in
/// memcached's 250 bytes.
const MAX_PREFIX: usize = MAX_PLAIN_KEY - DIGEST_MARKER.len() - 40;

/// Whether memcached takes `byte` in a key: its command lines are split at spaces and end at
/// a newline, so spaces and control characters would end the key (or the command).
fn is_key_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() || byte >= 0x80
}

/// A key prefix checked to be safe on a command line and short enough for hashed keys.
#[derive(Debug, Clone)]
pub(super) struct Prefix(String);

impl Prefix {
    /// Check `prefix`; the error says what is wrong with it.
    pub(super) fn new(prefix: &str) -> std::result::Result<Self, String> {
        if let Some(byte) = prefix.bytes().find(|b| !is_key_byte(*b)) {
            return Err(format!(
                "`prefix` must not contain spaces or control characters (it has byte 0x{byte:02x}): memcached would read them as the end of the key or of the command"
            ));
        }
        if prefix.len() > MAX_PREFIX {
            return Err(format!(
                "`prefix` is {} bytes; memcached keys are at most {MAX_PLAIN_KEY}, so a prefix may have {MAX_PREFIX} to leave room for hashed keys",
                prefix.len()
            ));
        }
        Ok(Prefix(prefix.to_owned()))
    }

    /// The prefix as configured.
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key as memcached sees it: 1 to 250 bytes without spaces or control characters, so it
/// cannot end a command early or start another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WireKey(String);

impl WireKey {
    /// `prefix + key` when memcached can take it, else `prefix + cachy:sha1:<digest of key>`
    /// (also for a key that itself starts with the marker: see [`backend_key`]).
    pub(super) fn new(prefix: &Prefix, key: &str) -> Self {
        WireKey(backend_key(&prefix.0, key, |full| {
            !full.is_empty() && full.len() <= MAX_PLAIN_KEY && full.bytes().all(is_key_byte)
        }))
    }

    /// The key as sent.
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a command does: it decides the replies the command may get and whether it may be
/// sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    /// A get in quiet mode: a miss sends nothing.
    QuietGet,
    Set,
    Add,
    CompareAndSwap,
    Delete,
    /// A delete that applies only if the CAS value still matches.
    DeleteIf,
    /// A get that only sets the exptime.
    Touch,
    FlushAll,
    /// The text protocol's `stats`: `STAT` lines, then `END`.
    Stats,
}

/// How a set applies.
#[derive(Debug, Clone, Copy)]
pub(super) enum SetMode {
    /// Store whatever is there.
    Plain,
    /// Store only if the key is missing.
    Add,
    /// Store only if the item still has this CAS value.
    CompareAndSwap(u64),
}

/// One command of a batch.
#[derive(Debug)]
pub(super) struct Command<'a> {
    /// The command line, without token and line end.
    line: String,
    /// The data block of a set.
    data: Option<&'a [u8]>,
    kind: Kind,
}

impl<'a> Command<'a> {
    /// `mg`: `key` with the return flags `flags` (such as `v f`).
    pub(super) fn get(key: &WireKey, flags: &str) -> Self {
        Command {
            line: format!("mg {} {flags}", key.0),
            data: None,
            kind: Kind::Get,
        }
    }

    /// `mg` in quiet mode, for batches of gets: a miss sends no reply.
    pub(super) fn quiet_get(key: &WireKey, flags: &str) -> Self {
        Command {
            line: format!("mg {} {flags} q", key.0),
            data: None,
            kind: Kind::QuietGet,
        }
    }

    /// `ms`: store `data` with the client flags `flags` for `ttl` (memcached's exptime).
    pub(super) fn set(key: &WireKey, flags: u32, data: &'a [u8], ttl: u64, mode: SetMode) -> Self {
        let (mode, kind) = match mode {
            SetMode::Plain => (String::new(), Kind::Set),
            SetMode::Add => (" ME".to_owned(), Kind::Add),
            SetMode::CompareAndSwap(cas) => (format!(" C{cas}"), Kind::CompareAndSwap),
        };
        Command {
            line: format!("ms {} {} T{ttl} F{flags}{mode}", key.0, data.len()),
            data: Some(data),
            kind,
        }
    }

    /// `mg` with only `T`: give `key` the exptime `ttl`, without reading it.
    pub(super) fn touch(key: &WireKey, ttl: u64) -> Self {
        Command {
            line: format!("mg {} T{ttl}", key.0),
            data: None,
            kind: Kind::Touch,
        }
    }

    /// `md` with `C`: delete `key` only if its CAS value is still `cas`.
    pub(super) fn delete_if(key: &WireKey, cas: u64) -> Self {
        Command {
            line: format!("md {} C{cas}", key.0),
            data: None,
            kind: Kind::DeleteIf,
        }
    }

    /// `md`: delete `key`.
    pub(super) fn delete(key: &WireKey) -> Self {
        Command {
            line: format!("md {}", key.0),
            data: None,
            kind: Kind::Delete,
        }
    }

    /// `flush_all`: empty the server.
    pub(super) fn flush_all() -> Self {
        Command {
            line: "flush_all".to_owned(),
            data: None,
            kind: Kind::FlushAll,
        }
    }

    /// `stats`: the server's general counters.
    pub(super) fn stats() -> Self {
        Command {
            line: "stats".to_owned(),
            data: None,
            kind: Kind::Stats,
        }
    }

    /// The command's name, for messages.
    fn name(&self) -> &str {
        self.line.split(' ').next().unwrap_or_default()
    }

    /// The reply codes this command may get.
    fn codes(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::Get | Kind::QuietGet => &["VA", "EN"],
            Kind::Set | Kind::Add => &["HD", "NS"],
            Kind::CompareAndSwap => &["HD", "NS", "EX", "NF"],
            Kind::Delete => &["HD", "NF"],
            Kind::DeleteIf => &["HD", "NF", "EX"],
            Kind::Touch => &["HD", "EN"],
            Kind::FlushAll => &["OK"],
            Kind::Stats => &["STAT"],
        }
    }

    /// Whether a miss may send nothing.
    fn is_quiet(&self) -> bool {
        self.kind == Kind::QuietGet
    }

    /// Whether the command takes an opaque token (the meta commands do; `flush_all` and
    /// `stats` do not).
    fn has_token(&self) -> bool {
        !matches!(self.kind, Kind::FlushAll | Kind::Stats)
    }

    /// Whether sending the command twice does no harm. An add, a compare-and-swap (which
    /// increments use) or a delete may have been applied before a connection broke: sending
    /// it again could apply it twice, or report a change as a miss.
    fn may_repeat(&self) -> bool {
        matches!(
            self.kind,
            Kind::Get | Kind::QuietGet | Kind::Set | Kind::Touch | Kind::FlushAll | Kind::Stats
        )
    }
}

/// Commands to send in one round trip, with their tokens, as bytes ready for the wire.
#[derive(Debug)]
pub(super) struct Batch<'a> {
    commands: Vec<Command<'a>>,
    /// The token of the first command; the others follow it.
    first_token: u64,
    bytes: Vec<u8>,
}

impl<'a> Batch<'a> {
    /// `commands` tagged with the tokens from `first_token` on, then `mn`.
    pub(super) fn new(commands: Vec<Command<'a>>, first_token: u64) -> Self {
        let mut bytes = Vec::new();
        for (n, command) in (0u64..).zip(&commands) {
            bytes.extend_from_slice(command.line.as_bytes());
            if command.has_token() {
                bytes.extend_from_slice(format!(" O{}", first_token.wrapping_add(n)).as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
            if let Some(data) = command.data {
                bytes.extend_from_slice(data);
                bytes.extend_from_slice(b"\r\n");
            }
        }
        bytes.extend_from_slice(b"mn\r\n");
        Batch {
            commands,
            first_token,
            bytes,
        }
    }

    /// Whether the whole batch may be sent again on another connection.
    pub(super) fn may_repeat(&self) -> bool {
        self.commands.iter().all(Command::may_repeat)
    }
}

/// One reply to a command.
#[derive(Debug)]
pub(super) enum Reply {
    /// `VA <size> <flags>` and the value.
    Value { flags: Vec<String>, data: Vec<u8> },
    /// `HD`, `NS`, `EX`, `NF`, `EN` or `OK`, with their flags.
    Status {
        code: &'static str,
        flags: Vec<String>,
    },
    /// The `STAT <name> <value>` lines answering `stats`, in order.
    Stats(Vec<(String, String)>),
}

impl Reply {
    /// The reply code.
    pub(super) fn code(&self) -> &'static str {
        match self {
            Reply::Value { .. } => "VA",
            Reply::Status { code, .. } => code,
            Reply::Stats(_) => "STAT",
        }
    }

    /// The value of the return flag `name`, if the reply has it.
    pub(super) fn flag(&self, name: char) -> Option<&str> {
        let (Reply::Value { flags, .. } | Reply::Status { flags, .. }) = self else {
            return None;
        };
        flags.iter().find_map(|f| f.strip_prefix(name))
    }

    /// The number in the return flag `name`, which the command asked for.
    pub(super) fn number_flag<T: std::str::FromStr>(&self, name: char) -> Result<T> {
        self.flag(name)
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Backend,
                    format!(
                        "memcached protocol error: a `{}` reply lacks a valid `{name}` flag",
                        self.code()
                    ),
                )
            })
    }

    /// The value of a `VA` reply.
    pub(super) fn into_data(self) -> Option<Vec<u8>> {
        match self {
            Reply::Value { data, .. } => Some(data),
            Reply::Status { .. } | Reply::Stats(_) => None,
        }
    }
}

/// A reply line, read before the value it announces.
#[derive(Debug)]
enum Head {
    Value {
        size: usize,
        flags: Vec<String>,
    },
    Status {
        code: &'static str,
        flags: Vec<String>,
    },
    /// `MN`: the end of a batch's replies.
    End,
    /// `STAT <name> <value>`: one line of the answer to `stats`.
    Stat {
        name: String,
        value: String,
    },
    /// `END`: the end of the answer to `stats`.
    StatsEnd,
    /// `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR`: the server refused a command (the
    /// connection and the server are fine).
    Refused(Error),
}

/// Read a reply line (without its line end). The error says how the line is malformed.
fn parse_head(line: &str, max_value: usize) -> std::result::Result<Head, String> {
    let mut words = line.split(' ');
    let code = words.next().unwrap_or_default();
    let refused = |kind: ErrorKind| -> std::result::Result<Head, String> {
        Ok(Head::Refused(Error::new(
            kind,
            format!("memcached answered: {}", line.escape_debug()),
        )))
    };
    match code {
        "ERROR" => return refused(ErrorKind::Backend),
        "CLIENT_ERROR" => return refused(ErrorKind::InvalidInput),
        "SERVER_ERROR" if line.contains("too large") => return refused(ErrorKind::InvalidInput),
        "SERVER_ERROR" => return refused(ErrorKind::Backend),
        _ => {}
    }
    match code {
        "STAT" => {
            let mut stat = line.splitn(3, ' ').skip(1);
            return match (stat.next(), stat.next()) {
                (Some(name), Some(value)) if !name.is_empty() => Ok(Head::Stat {
                    name: name.to_owned(),
                    value: value.to_owned(),
                }),
                _ => Err(format!("malformed stats line {line:?}")),
            };
        }
        "END" if line == "END" => return Ok(Head::StatsEnd),
        _ => {}
    }
    let size = if code == "VA" {
        let size = words.next().unwrap_or_default();
        let parsed = size
            .parse::<usize>()
            .ok()
            .filter(|_| size.bytes().all(|b| b.is_ascii_digit()));
        match parsed {
            Some(size) if size <= max_value => Some(size),
            _ => {
                return Err(format!(
                    "a reply announces a value of {} bytes; the store's max_value_size is {max_value}",
                    size.escape_debug()
                ));
            }
        }
    } else {
        None
    };
    let flags: Vec<String> = words.map(str::to_owned).collect();
    if flags.iter().any(String::is_empty) {
        return Err(format!("malformed reply line {line:?}"));
    }
    if let Some(size) = size {
        return Ok(Head::Value { size, flags });
    }
    let code = match code {
        "MN" if flags.is_empty() => return Ok(Head::End),
        "HD" => "HD",
        "NS" => "NS",
        "EX" => "EX",
        "NF" => "NF",
        "EN" => "EN",
        "OK" => "OK",
        _ => return Err(format!("unknown reply line {line:?}")),
    };
    Ok(Head::Status { code, flags })
}

/// What the server sent next, value read.
#[derive(Debug)]
enum Incoming {
    Reply(Reply),
    Refused(Error),
    End,
}

/// Ties the replies of a batch to its commands, in order, by their tokens.
struct Matcher<'b> {
    batch: &'b Batch<'b>,
    /// The first command that has had no reply yet.
    next: usize,
    replies: Vec<Option<Reply>>,
    refusal: Option<Error>,
}

impl<'b> Matcher<'b> {
    fn new(batch: &'b Batch<'b>) -> Self {
        Matcher {
            batch,
            next: 0,
            replies: std::iter::repeat_with(|| None)
                .take(batch.commands.len())
                .collect(),
            refusal: None,
        }
    }

    /// Take the next thing the server sent: `Ok(true)` at the end of the batch's replies,
    /// an error saying why it does not fit the batch.
    fn accept(&mut self, incoming: Incoming) -> std::result::Result<bool, String> {
        let batch = self.batch;
        let commands = &batch.commands;
        match incoming {
            Incoming::End => match commands[self.next..].iter().find(|c| !c.is_quiet()) {
                Some(waiting) => Err(format!(
                    "the end of the replies came before the reply to `{}`",
                    waiting.name()
                )),
                None => Ok(true),
            },
            // An error line carries no token: it answers the next command waiting.
            Incoming::Refused(error) => {
                if self.next == commands.len() {
                    return Err(format!(
                        "an error after the replies to every command: {error}"
                    ));
                }
                self.next += 1;
                self.refusal.get_or_insert(error);
                Ok(false)
            }
            Incoming::Reply(reply) => {
                let index = match reply.flag('O') {
                    Some(token) => token
                        .parse::<u64>()
                        .ok()
                        .filter(|_| token.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|t| usize::try_from(t.wrapping_sub(batch.first_token)).ok())
                        .filter(|i| (self.next..commands.len()).contains(i))
                        .ok_or_else(|| {
                            format!(
                                "a `{}` reply carries the token {:?}, which is not that of a command waiting for a reply",
                                reply.code(),
                                token
                            )
                        })?,
                    None => self.next,
                };
                let Some(command) = commands.get(index) else {
                    return Err(format!(
                        "a `{}` reply after the replies to every command",
                        reply.code()
                    ));
                };
                if let Some(skipped) = commands[self.next..index].iter().find(|c| !c.is_quiet()) {
                    return Err(format!("the reply to `{}` is missing", skipped.name()));
                }
                if command.has_token() != reply.flag('O').is_some() {
                    return Err(format!(
                        "a `{}` reply without the token of `{}`",
                        reply.code(),
                        command.name()
                    ));
                }
                if !command.codes().contains(&reply.code()) {
                    return Err(format!(
                        "`{}` got a `{}` reply, which it cannot get",
                        command.name(),
                        reply.code()
                    ));
                }
                self.replies[index] = Some(reply);
                self.next = index + 1;
                Ok(false)
            }
        }
    }

    /// The replies by command (`None`: a quiet miss), or the first refusal.
    fn finish(self) -> Result<Vec<Option<Reply>>> {
        match self.refusal {
            Some(refusal) => Err(refusal),
            None => Ok(self.replies),
        }
    }
}

/// Why an exchange failed, which decides what becomes of the connection and the server.
#[derive(Debug)]
pub(super) enum Failure {
    /// The connection failed or was closed. `answered`: whether any byte of a reply had
    /// arrived (if not, the server may never have read the request).
    Io { error: Error, answered: bool },
    /// The server sent something that is not a reply to the request: the connection is out
    /// of step and is dropped.
    Garbled(String),
}

/// Both directions of a connection to a server.
pub(super) trait Duplex:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

/// A connection to a server.
pub(super) struct Connection {
    stream: BufReader<Box<dyn Duplex>>,
    /// Whether any byte of a reply has arrived since the last request was sent.
    answered: bool,
}

impl Connection {
    /// A connection over `stream`.
    pub(super) fn new(stream: Box<dyn Duplex>) -> Self {
        Connection {
            stream: BufReader::new(stream),
            answered: false,
        }
    }

    /// Whether the connection can take a request: nothing can be read from it now. The end
    /// of the stream means the server closed it while it was idle; bytes mean a reply nobody
    /// asked for, which would be taken for the next request's.
    pub(super) fn is_idle(&mut self) -> bool {
        self.stream.fill_buf().now_or_never().is_none()
    }

    /// Send `batch` and read its replies: by command, `None` for a quiet miss. The inner
    /// error is the server refusing a command (the replies are all read, so the connection
    /// can be used again); the outer one, a failure of the connection.
    pub(super) async fn exchange(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> Prefix {
        Prefix::new(text).unwrap()
    }

    #[test]
    fn the_marker_is_how_hashed_keys_start() {
        let hashed = backend_key("", "x", |_| false);
        assert!(hashed.starts_with(DIGEST_MARKER));
        assert_eq!(hashed.len(), DIGEST_MARKER.len() + 40);
    }

    #[test]
    fn prefixes_that_could_end_a_key_are_refused() {
        for bad in ["a b", "a\r\nflush_all", "\t", "\u{7f}", "\0"] {
            assert!(Prefix::new(bad).is_err(), "{bad:?}");
        }
        assert!(Prefix::new(&"p".repeat(MAX_PREFIX + 1)).is_err());
        let longest = prefix(&"p".repeat(MAX_PREFIX));
        assert_eq!(WireKey::new(&longest, &"k".repeat(300)).as_str().len(), 250);
    }

    #[test]
    fn keys_on_the_wire_are_plain_or_hashed_never_both() {
        let p = prefix("p:");
        assert_eq!(WireKey::new(&p, "plain").as_str(), "p:plain");
        let long = "x".repeat(300);
        let hashed = WireKey::new(&p, &long);
        assert!(hashed.as_str().starts_with("p:cachy:sha1:"));
        let look_alike = &hashed.as_str()["p:".len()..];
        let mapped = WireKey::new(&p, look_alike);
        assert!(mapped.as_str().starts_with("p:cachy:sha1:"));
        assert_ne!(mapped, hashed);
        for odd in ["", "a b", "line\r\nflush_all", "tab\t"] {
            let key = WireKey::new(&prefix(""), odd);
            assert!(
                key.as_str().bytes().all(is_key_byte) && !key.as_str().is_empty(),
                "{odd:?} -> {key:?}"
            );
        }
    }

    #[test]
    fn batches_tag_commands_and_end_with_a_no_op() {
        let key = WireKey::new(&prefix("p:"), "k");
        let batch = Batch::new(
            vec![
                Command::get(&key, "v f"),
                Command::set(&key, 2, b"42", 0, SetMode::CompareAndSwap(9)),
                Command::flush_all(),
            ],
            u64::MAX,
        );
        assert_eq!(
            String::from_utf8(batch.bytes.clone()).unwrap(),
            "mg p:k v f O18446744073709551615\r\nms p:k 2 T0 F2 C9 O0\r\n42\r\nflush_all\r\nmn\r\n"
        );
        assert!(!batch.may_repeat(), "a compare-and-swap is sent once");
    }

    #[test]
    fn reply_lines_are_parsed_within_bounds() {
        assert!(matches!(
            parse_head("VA 2 f0 O1", 10),
            Ok(Head::Value { size: 2, .. })
        ));
        for line in [
            "VA 11 f0",
            "VA 18446744073709551615",
            "VA 99999999999999999999999",
            "VA -1",
            "VA +2",
            "VA",
            "XX",
            "HD  O1",
            "",
        ] {
            assert!(parse_head(line, 10).is_err(), "{line:?}");
        }
        assert!(matches!(parse_head("MN", 10), Ok(Head::End)));
        assert!(matches!(
            parse_head("SERVER_ERROR object too large for cache", 10),
            Ok(Head::Refused(e)) if e.kind() == ErrorKind::InvalidInput
        ));
        assert!(matches!(
            parse_head("SERVER_ERROR out of memory", 10),
            Ok(Head::Refused(e)) if e.kind() == ErrorKind::Backend
        ));
    }

    fn value(token: &str) -> Incoming {
        Incoming::Reply(Reply::Value {
            flags: vec![format!("O{token}")],
            data: Vec::new(),
        })
    }

    #[test]
    fn replies_must_answer_the_commands_in_order() {
        let key = WireKey::new(&prefix(""), "k");
        let one = Batch::new(vec![Command::get(&key, "v")], 7);
        // Its own reply, then the end.
        let mut matcher = Matcher::new(&one);
        assert_eq!(matcher.accept(value("7")), Ok(false));
        assert_eq!(matcher.accept(Incoming::End), Ok(true));
        // A stale reply, a reply too many, a missing reply.
        assert!(Matcher::new(&one).accept(value("6")).is_err());
        let mut matcher = Matcher::new(&one);
        assert_eq!(matcher.accept(value("7")), Ok(false));
        assert!(matcher.accept(value("7")).is_err());
        assert!(Matcher::new(&one).accept(Incoming::End).is_err());
        // A reply without a token, or with a code a get cannot get.
        let bare = Incoming::Reply(Reply::Status {
            code: "EN",
            flags: Vec::new(),
        });
        assert!(Matcher::new(&one).accept(bare).is_err());
        let stored = Incoming::Reply(Reply::Status {
            code: "HD",
            flags: vec!["O7".to_owned()],
        });
        assert!(Matcher::new(&one).accept(stored).is_err());

        // Quiet gets may skip replies, in order only.
        let quiet = Batch::new(
            vec![
                Command::quiet_get(&key, "v"),
                Command::quiet_get(&key, "v"),
                Command::quiet_get(&key, "v"),
            ],
            0,
        );
        let mut matcher = Matcher::new(&quiet);
        assert_eq!(matcher.accept(value("1")), Ok(false));
        assert!(matcher.accept(value("0")).is_err());
        let mut matcher = Matcher::new(&quiet);
        assert_eq!(matcher.accept(value("2")), Ok(false));
        assert_eq!(matcher.accept(Incoming::End), Ok(true));
        let replies = matcher.finish().unwrap();
        assert!(replies[0].is_none() && replies[1].is_none() && replies[2].is_some());
    }

    #[tokio::test]
    async fn stats_are_read_to_their_end() {
        let batch = Batch::new(vec![Command::stats()], 3);
        assert_eq!(batch.bytes, b"stats\r\nmn\r\n");
        let mut connection =
            connection_to(b"STAT pid 42\r\nSTAT libevent 2.1.12-stable\r\nEND\r\nMN\r\n".to_vec())
                .await;
        let replies = connection.exchange(&batch, 10).await.unwrap().unwrap();
        let Some(Reply::Stats(stats)) = &replies[0] else {
            panic!("{replies:?}");
        };
        assert_eq!(
            stats,
            &[
                ("pid".to_owned(), "42".to_owned()),
                ("libevent".to_owned(), "2.1.12-stable".to_owned())
            ]
        );

        let endless = b"STAT a 1\r\n".repeat(MAX_STATS + 1);
        let mut connection = connection_to(endless).await;
        assert!(matches!(
            connection.exchange(&batch, 10).await,
            Err(Failure::Garbled(reason)) if reason.contains("more than")
        ));
        // A stats line where a get's reply belongs.
        let key = WireKey::new(&prefix(""), "k");
        let get = Batch::new(vec![Command::get(&key, "v")], 1);
        let mut connection = connection_to(b"STAT pid 1\r\nEND\r\nMN\r\n".to_vec()).await;
        assert!(matches!(
            connection.exchange(&get, 10).await,
            Err(Failure::Garbled(_))
        ));
    }

    /// A connection whose server sends `reply` once it has read anything.
    async fn connection_to(reply: Vec<u8>) -> Connection {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let mut request = [0u8; 256];
            if server.read(&mut request).await.is_ok() {
                let _ = server.write_all(&reply).await;
            }
        });
        Connection::new(Box::new(client))
    }

    #[tokio::test]
    async fn an_exchange_refuses_what_does_not_fit() {
        let key = WireKey::new(&prefix(""), "k");
        let batch = Batch::new(vec![Command::get(&key, "v")], 1);
        let mut connection = connection_to(b"VA 2 O1\r\nok\r\nMN\r\n".to_vec()).await;
        let replies = connection.exchange(&batch, 10).await.unwrap().unwrap();
        assert!(matches!(&replies[0], Some(Reply::Value { data, .. }) if data == b"ok"));

        for (reply, expected) in [
            (vec![b'x'; MAX_LINE + 1], "longer than"),
            (b"VA 1000 O1\r\n".to_vec(), "max_value_size"),
            (
                b"VA 2 O1\r\nokay\r\nMN\r\n".to_vec(),
                "not followed by a line end",
            ),
            (b"VA 2 O1\n".to_vec(), "\\r\\n"),
        ] {
            let mut connection = connection_to(reply).await;
            match connection.exchange(&batch, 10).await {
                Err(Failure::Garbled(reason)) => assert!(reason.contains(expected), "{reason}"),
                other => panic!("{expected}: {other:?}"),
            }
        }

        let mut closed = connection_to(Vec::new()).await;
        assert!(matches!(
            closed.exchange(&batch, 10).await,
            Err(Failure::Io {
                answered: false,
                ..
            })
        ));
    }
}
