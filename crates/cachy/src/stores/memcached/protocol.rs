//! memcached's meta protocol as the store speaks it: keys that are safe on a command line,
//! commands, and replies read within bounds and tied to the request they answer.
//!
//! Every exchange is a batch: its commands, each tagged with an opaque token (`O<n>`) that
//! memcached echoes in the reply, then the no-op `mn`, whose `MN` closes the replies. A reply
//! with a token of another request, a reply too many or missing, a reply code the command
//! cannot get, a line longer than [`MAX_LINE`] or a value longer than the store's
//! `max_value_size` means the connection is out of step with the server: the exchange fails
//! with [`Failure::Garbled`] and the connection is not used again.

use crate::error::{Error, ErrorKind, Result};
use crate::stores::backend_key::{MAX_PLAIN_KEY, backend_key};

mod connection;
mod replies;

pub(super) use connection::{Connection, Duplex, Failure};

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
        use std::io::Write as _;
        // Each command's token (" O" and up to 20 digits) and line ends, then "mn\r\n".
        let capacity = commands
            .iter()
            .map(|command| command.line.len() + command.data.map_or(0, <[u8]>::len) + 26)
            .sum::<usize>()
            + 4;
        let mut bytes = Vec::with_capacity(capacity);
        for (n, command) in (0u64..).zip(&commands) {
            bytes.extend_from_slice(command.line.as_bytes());
            if command.has_token() {
                // Writing into a Vec cannot fail.
                let _ = write!(bytes, " O{}", first_token.wrapping_add(n));
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

#[cfg(test)]
mod tests;
