//! The one error type of the crate.
//!
//! Every fallible call returns [`Error`]. Its [`ErrorKind`] says what went wrong in a way a
//! program can match on; its message and context (store, key, config field) say it in a way
//! a person can act on.

use std::fmt;

/// A boxed error from a lower layer (a server client, the file system, a serializer).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid: a missing or malformed field, an unreadable config file.
    Config,
    /// A store name that the configuration does not define.
    UnknownStore,
    /// A driver name that is neither built in nor registered with `extend`.
    UnknownDriver,
    /// A serializer name that is neither built in nor registered.
    UnknownSerializer,
    /// A value could not be serialized.
    Serialize,
    /// Stored bytes could not be read as the requested type: the value has another type,
    /// or the stored data is corrupted.
    Deserialize,
    /// `increment` or `decrement` on a value that is not an integer (or a number outside the
    /// 64-bit range of counters).
    NotAnInteger,
    /// `increment` or `decrement` whose result does not fit in a 64-bit counter; the counter
    /// is left as it was.
    Overflow,
    /// A key (or value) the backend cannot take.
    InvalidInput,
    /// The server cannot be reached: connection refused or reset, or marked down after a
    /// failure. Temporary: the same call may succeed later.
    Unavailable,
    /// The server did not answer in time. Temporary: the same call may succeed later.
    Timeout,
    /// The backend failed otherwise: a protocol error, a refused command, a file system
    /// error, a counter that kept changing under compare and swap.
    Backend,
    /// The blocking API was called where it must not block (a current-thread runtime), or
    /// its runtime could not start.
    Runtime,
    /// `remember` waited for another caller computing the same key, and that computation
    /// failed (the message is its error's).
    Remember,
}

impl ErrorKind {
    /// A short machine name (`unavailable`, `not_an_integer`, ...), as metric labels and
    /// `--json` output use it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::UnknownStore => "unknown_store",
            ErrorKind::UnknownDriver => "unknown_driver",
            ErrorKind::UnknownSerializer => "unknown_serializer",
            ErrorKind::Serialize => "serialize",
            ErrorKind::Deserialize => "deserialize",
            ErrorKind::NotAnInteger => "not_an_integer",
            ErrorKind::Overflow => "overflow",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Backend => "backend",
            ErrorKind::Runtime => "runtime",
            ErrorKind::Remember => "remember",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "configuration error",
            ErrorKind::UnknownStore => "unknown store",
            ErrorKind::UnknownDriver => "unknown driver",
            ErrorKind::UnknownSerializer => "unknown serializer",
            ErrorKind::Serialize => "serialization failed",
            ErrorKind::Deserialize => "deserialization failed",
            ErrorKind::NotAnInteger => "not an integer",
            ErrorKind::Overflow => "counter overflow",
            ErrorKind::Unavailable => "server unavailable",
            ErrorKind::Timeout => "timed out",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Backend => "backend error",
            ErrorKind::Runtime => "runtime error",
            ErrorKind::Remember => "computation failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from cachy, with its kind, a message and the context it happened in.
///
/// ```
/// use cachy::{CacheManager, ErrorKind};
///
/// let err = CacheManager::from_value(serde_json::json!({
///     "stores": { "a": { "driver": "dict" }, "b": { "driver": "dict" } }
/// }))
/// .unwrap()
/// .store(None)
/// .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Config);
/// assert_eq!(err.field(), Some("default"));
/// ```
pub struct Error(Box<Details>);

/// What an [`Error`] says, behind one pointer: every call returns a `Result`, which each
/// layer moves on, and a pointer-sized error keeps a successful result small (inline, these
/// 120 bytes made moving results a measurable part of a cache hit).
struct Details {
    kind: ErrorKind,
    message: String,
    store: Option<String>,
    key: Option<String>,
    field: Option<String>,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` with a message saying what was wrong.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Details {
            kind,
            message: message.into(),
            store: None,
            key: None,
            field: None,
            source: None,
        }))
    }

    /// A [`ErrorKind::Config`] error about the config field `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message).with_field(field)
    }

    /// A [`ErrorKind::Backend`] error caused by `source`.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::new(ErrorKind::Backend, message).with_source(source)
    }

    /// Attach the lower-level error that caused this one.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Name the store the error happened in, unless one is named already.
    pub fn with_store(mut self, store: &str) -> Self {
        if self.0.store.is_none() {
            self.0.store = Some(store.to_owned());
        }
        self
    }

    /// Name the key the error happened on, unless one is named already.
    pub fn with_key(mut self, key: &str) -> Self {
        if self.0.key.is_none() {
            self.0.key = Some(key.to_owned());
        }
        self
    }

    /// Name the config field at fault, unless one is named already.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        if self.0.field.is_none() {
            self.0.field = Some(field.into());
        }
        self
    }

    /// The same error about `field`, replacing the field it named.
    pub(crate) fn relocated(mut self, field: String) -> Self {
        self.0.field = Some(field);
        self
    }

    /// Whether the same call may succeed if tried again later: the server was
    /// [`Unavailable`](ErrorKind::Unavailable) or [`Timeout`](ErrorKind::Timeout). Decided by
    /// the kind alone, never by the message.
    pub fn is_temporary(&self) -> bool {
        matches!(self.0.kind, ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message, without kind or context.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The store the error happened in, if known.
    pub fn store(&self) -> Option<&str> {
        self.0.store.as_deref()
    }

    /// The cache key the error happened on, if any.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// The config field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// The same error, with its source kept as its message (sources are not `Clone`): what the
    /// callers that waited for a failed computation get.
    pub(crate) fn copy(&self) -> Error {
        Error(Box::new(Details {
            kind: self.0.kind,
            message: self.0.message.clone(),
            store: self.0.store.clone(),
            key: self.0.key.clone(),
            field: self.0.field.clone(),
            source: self.0.source.as_ref().map(|s| s.to_string().into()),
        }))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.kind, self.0.message)?;
        let mut context = Vec::new();
        if let Some(store) = &self.0.store {
            context.push(format!("store `{store}`"));
        }
        if let Some(key) = &self.0.key {
            context.push(format!("key {key:?}"));
        }
        if let Some(field) = &self.0.field {
            context.push(format!("field `{field}`"));
        }
        if !context.is_empty() {
            write!(f, " ({})", context.join(", "))?;
        }
        if let Some(source) = &self.0.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("store", &self.0.store)
            .field("key", &self.0.key)
            .field("field", &self.0.field)
            .field("source", &self.0.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
