//! The `database` driver's config.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::statements::{Dialect, Statements};
use super::{ConnectOptions, DEFAULT_MAX_CONNECTIONS, DatabaseStore};
use crate::config::options::fields;
use crate::error::{Error, Result};

/// How a [`DatabaseStore`] is built: the options of the `database` driver, as read from a
/// config file or written in code. Nothing connects until the first call.
///
/// ```
/// use cachy::stores::{DatabaseConfig, DatabaseStore};
///
/// let mut config = DatabaseConfig::new("sqlite::memory:");
/// config.create_table = true;
/// let store = DatabaseStore::with_config(config)?;
/// # Ok::<(), cachy::Error>(())
/// ```
///
/// Its `Debug` output hides the password in `url`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created if missing), `sqlite::memory:`,
    /// `postgres://user:password@host/db` or `mysql://user:password@host/db` (required).
    pub url: String,
    /// The table (default `cache`; letters, digits and `_`).
    #[serde(default = "default_table")]
    pub table: String,
    /// Put in front of every key (default empty).
    #[serde(default)]
    pub prefix: String,
    /// Create the table on first use (default false).
    #[serde(default)]
    pub create_table: bool,
    /// `[chances, out_of]`: the odds that a write also prunes expired rows (default
    /// `[2, 100]`; `[0, 1]` turns it off).
    pub prune_lottery: Option<[u64; 2]>,
    /// How long to wait for a connection (default 5 s; in a config file, seconds).
    #[serde(default, deserialize_with = "fields::seconds")]
    pub timeout: Option<Duration>,
    /// Connections in the pool (default 10, from 1 to 1000; always 1 for
    /// `sqlite::memory:`). A SQLite file also gets one connection for its checkpoints and
    /// one that holds a read lock while the store reads, beyond these. On a database server,
    /// each tokio runtime that uses the store (the blocking API's included) has a pool of
    /// its own of this size.
    #[serde(default, deserialize_with = "fields::count")]
    pub max_connections: Option<u64>,
    /// SQLite's `PRAGMA synchronous` in WAL mode (SQLite only).
    pub synchronous: Option<Synchronous>,
}

impl DatabaseConfig {
    /// The defaults, on the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseConfig {
            url: url.into(),
            table: default_table(),
            prefix: String::new(),
            create_table: false,
            prune_lottery: None,
            timeout: None,
            max_connections: None,
            synchronous: None,
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::config::redact::redact_url(&self.url))
            .field("table", &self.table)
            .field("prefix", &self.prefix)
            .field("create_table", &self.create_table)
            .field("prune_lottery", &self.prune_lottery)
            .field("timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .field("synchronous", &self.synchronous)
            .finish()
    }
}

/// SQL keywords reserved by SQLite, PostgreSQL or MySQL that a table name could plausibly
/// be: the statements name the table unquoted.
const RESERVED: &[&str] = &[
    "all",
    "alter",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "between",
    "both",
    "by",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "cross",
    "current_user",
    "default",
    "delete",
    "desc",
    "distinct",
    "do",
    "drop",
    "else",
    "end",
    "escape",
    "exists",
    "explain",
    "fetch",
    "for",
    "foreign",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "if",
    "in",
    "index",
    "inner",
    "insert",
    "into",
    "is",
    "join",
    "key",
    "leading",
    "left",
    "like",
    "limit",
    "lock",
    "match",
    "natural",
    "not",
    "null",
    "of",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "primary",
    "range",
    "read",
    "references",
    "release",
    "replace",
    "returning",
    "right",
    "rows",
    "select",
    "session_user",
    "set",
    "some",
    "table",
    "then",
    "to",
    "trailing",
    "trigger",
    "union",
    "unique",
    "update",
    "user",
    "using",
    "values",
    "view",
    "when",
    "where",
    "window",
    "with",
    "write",
];

fn default_table() -> String {
    "cache".to_owned()
}

/// How a SQLite commit waits for the disk (`PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Synchronous {
    /// A commit does not wait for the disk: an application crash loses nothing, a power
    /// loss or an OS crash may lose the last writes (the database stays consistent), which
    /// suits a cache. The default.
    #[default]
    Normal,
    /// Every commit waits for the disk: several times slower.
    Full,
    /// As `Full`, and the WAL's folder is synced too.
    Extra,
    /// Nothing waits for the disk: an OS crash may corrupt the database.
    Off,
}

impl DatabaseStore {
    /// A database store as `config` describes it (nothing connects until the first call);
    /// an error names the field that is wrong.
    pub fn with_config(options: DatabaseConfig) -> Result<Self> {
        let url = options.url.as_str();
        let table = options.table;
        if !table.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            || !table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(Error::config(
                "table",
                format!(
                    "table name {table:?} must be letters, digits and `_`, starting with a \
                     letter or `_`"
                ),
            ));
        }
        if RESERVED.contains(&table.to_ascii_lowercase().as_str()) {
            return Err(Error::config(
                "table",
                format!(
                    "table name {table:?} is an SQL keyword, which the statements would read as \
                     one: choose another name"
                ),
            ));
        }
        let shown = crate::config::redact::redact_url(url);
        let bad_url = |e: &dyn std::fmt::Display| {
            Error::config(
                "url",
                format!("{shown:?} is not a usable database URL: {e}"),
            )
        };
        if options.synchronous.is_some() && !url.starts_with("sqlite:") {
            return Err(Error::config(
                "synchronous",
                "`synchronous` is a SQLite setting; this store's `url` is not SQLite",
            ));
        }
        let connect = if url.starts_with("sqlite:") {
            #[cfg(feature = "database-sqlite")]
            {
                let synchronous = match options.synchronous.unwrap_or_default() {
                    Synchronous::Normal => "NORMAL",
                    Synchronous::Full => "FULL",
                    Synchronous::Extra => "EXTRA",
                    Synchronous::Off => "OFF",
                };
                ConnectOptions::Sqlite(
                    super::sqlite::Target::parse(url).map_err(|e| bad_url(&e))?,
                    synchronous,
                )
            }
            #[cfg(not(feature = "database-sqlite"))]
            return Err(Error::config(
                "url",
                "SQLite needs cachy's `database-sqlite` cargo feature",
            ));
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            #[cfg(feature = "database-postgres")]
            {
                ConnectOptions::Postgres(Box::new(url.parse().map_err(|e| bad_url(&e))?))
            }
            #[cfg(not(feature = "database-postgres"))]
            return Err(Error::config(
                "url",
                "PostgreSQL needs cachy's `database-postgres` cargo feature",
            ));
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            #[cfg(feature = "database-mysql")]
            {
                let url = url.replacen("mariadb:", "mysql:", 1);
                ConnectOptions::MySql(Box::new(url.parse().map_err(|e| bad_url(&e))?))
            }
            #[cfg(not(feature = "database-mysql"))]
            return Err(Error::config(
                "url",
                "MySQL/MariaDB needs cachy's `database-mysql` cargo feature",
            ));
        } else {
            return Err(Error::config(
                "url",
                format!("{shown:?} is not sqlite:, postgres: or mysql:"),
            ));
        };
        let dialect = match &connect {
            #[cfg(feature = "database-sqlite")]
            ConnectOptions::Sqlite(..) => Dialect::Sqlite,
            #[cfg(feature = "database-postgres")]
            ConnectOptions::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "database-mysql")]
            ConnectOptions::MySql(_) => Dialect::MySql,
        };
        let lottery = match options.prune_lottery {
            None => (2, 100),
            Some([chances, out_of]) if out_of > 0 => (chances, out_of),
            Some(_) => {
                return Err(Error::config(
                    "prune_lottery",
                    "`prune_lottery` must be [chances, out_of], out_of > 0",
                ));
            }
        };
        let max_connections = match options.max_connections {
            None => DEFAULT_MAX_CONNECTIONS,
            Some(n @ 1..=1000) => n as u32,
            Some(n) => {
                return Err(Error::config(
                    "max_connections",
                    format!("`max_connections` must be from 1 to 1000, not {n}"),
                ));
            }
        };
        Ok(DatabaseStore {
            statements: Statements::new(dialect, &table),
            pool: super::PoolSlot::for_options(&connect),
            options: connect,
            pruning: Arc::default(),
            prefix: options.prefix,
            table,
            create_table: options.create_table,
            lottery,
            max_connections,
            timeout: fields::checked("timeout", options.timeout)?.unwrap_or(Duration::from_secs(5)),
        })
    }
}
