//! Looking into a store from outside the application: what it holds, which keys, removing
//! what it will never serve again. This is what the `cachy` command's `stats`, `keys`,
//! `prune`, `flush` and `create-table` run, on any store that offers it through
//! [`Store::inspector`](crate::Store::inspector), without naming the store's type.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cachy::Result<()> {
//! use cachy::inspect::{Census, no_progress};
//! use cachy::{CacheManager, Store};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let manager = CacheManager::from_value(serde_json::json!({
//!     "stores": { "files": { "driver": "file", "path": dir.path() } }
//! }))?;
//! let files = manager.store("files")?;
//! files.put("greeting", "hello", 10).await?;
//!
//! let inspector = files.store().inspector().expect("a file store can be inspected");
//! assert_eq!(inspector.driver(), "file");
//! match inspector.census(no_progress()).await? {
//!     Census::Files(inventory) => assert_eq!(inventory.live.files, 1),
//!     other => panic!("a file store counts files, not {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};

/// How far a long inspection has got, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Steps done so far (top-level folders of a file store, for example).
    pub done: u64,
    /// Steps in all, when the walk knows its length ahead.
    pub total: Option<u64>,
    /// Items seen so far (keys scanned, files looked at).
    pub items: u64,
}

impl Progress {
    /// `done` steps of `total` (if known), with `items` seen so far.
    pub fn new(done: u64, total: Option<u64>, items: u64) -> Self {
        Progress { done, total, items }
    }
}

/// The callback an inspection tells how far it has got. It is called on the task, or the
/// blocking thread, doing the work: it must be quick.
pub type OnProgress = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;

/// A progress callback that ignores the progress.
pub fn no_progress() -> OnProgress {
    std::sync::Arc::new(|_| {})
}

/// Where a store keeps its items, as an operator names them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// Keys under a prefix on a server (Redis) or in a table (database).
    Prefix(String),
    /// A folder (file store).
    Path(std::path::PathBuf),
    /// Servers, as configured (memcached).
    Servers(Vec<String>),
}

/// What a store holds, counted the way its backend can count it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Census {
    /// Keys under the store's prefix and the bytes of their values (Redis).
    Keys {
        /// How many keys.
        keys: u64,
        /// The bytes of their values.
        bytes: u64,
    },
    /// Rows live and expired (database).
    Rows(RowCounts),
    /// Files by what a read would find in them (file store).
    Files(Inventory),
    /// Each server's own counters, which cover everything on it, whichever program or prefix
    /// wrote it (memcached).
    Servers(Vec<ServerStats>),
}

/// The rows of a database store's table under its prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// Rows that have not expired: what reads can return.
    pub live: u64,
    /// The bytes of the live rows' values.
    pub live_bytes: u64,
    /// Rows past their expiration, which reads ignore and a prune (or the prune lottery on
    /// writes) deletes.
    pub expired: u64,
    /// The bytes of the expired rows' values.
    pub expired_bytes: u64,
}

/// A number of files and their size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// How many files.
    pub files: u64,
    /// Their sizes added up, in bytes, headers included (what they take on disk, before the
    /// file system's rounding up to blocks).
    pub bytes: u64,
}

/// What a file store's folder holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Values that reads would return.
    pub live: Tally,
    /// Values past their expiry: a read or `forget` of their key removes them, `flush` too.
    pub expired: Tally,
    /// Entries named as values that are not cache files (a truncated or foreign header, a
    /// link or a folder): reads take them for misses and remove them.
    pub corrupt: Tally,
    /// Temporary files of writes that never finished (a writer killed before renaming its
    /// file into place), untouched for over a minute: nothing reads them, and a prune
    /// removes them. Younger ones, which may be writes in progress, are not counted.
    pub abandoned: Tally,
}

/// One memcached server's counters, from its `stats` command. They cover everything on the
/// server, whichever program or prefix wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStats {
    /// The server, as configured (`host:port` or `unix:/path`).
    pub address: String,
    /// Items stored now (`curr_items`).
    pub curr_items: u64,
    /// Bytes those items take (`bytes`).
    pub bytes: u64,
    /// The most bytes the server keeps (`limit_maxbytes`, its `-m`).
    pub limit_maxbytes: u64,
    /// Reads that found their key, since the server started (`get_hits`).
    pub get_hits: u64,
    /// Reads that did not (`get_misses`).
    pub get_misses: u64,
    /// Live items removed to make room for others (`evictions`).
    pub evictions: u64,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// How many items (rows, files).
    pub items: u64,
    /// Their bytes, when the store counts them.
    pub bytes: Option<u64>,
}

/// A store that can be looked into from outside the application, as
/// [`Store::inspector`](crate::Store::inspector) offers it.
///
/// [`list_keys`](Self::list_keys), [`prune`](Self::prune) and
/// [`create_schema`](Self::create_schema) default to an [`ErrorKind::InvalidInput`] error
/// saying the store cannot do them (see [`unsupported`]).
#[async_trait]
pub trait Inspect: Send + Sync {
    /// The driver's name, as a config names it (`"redis"`, `"file"`, …).
    fn driver(&self) -> &'static str;

    /// Where the store keeps its items.
    fn location(&self) -> Location;

    /// Count what the store holds. May read every item: on a large store, a long walk.
    async fn census(&self, progress: OnProgress) -> Result<Census>;

    /// The live keys matching the glob `pattern` (Redis's: `*`, `?`, `[abc]`, `[^a-z]`, `\`
    /// to escape), without the store's prefix, sorted. A malformed pattern is an
    /// [`ErrorKind::InvalidInput`] error.
    async fn list_keys(&self, pattern: &str, progress: OnProgress) -> Result<Vec<String>> {
        let _ = (pattern, progress);
        Err(unsupported("list keys", "this store cannot list its keys"))
    }

    /// Give each live key matching `pattern` to `each` as it is found, without keeping
    /// them: in constant memory where the store can walk its keys (Redis: in `SCAN`'s
    /// order, a key possibly twice while Redis resizes its table), else the
    /// [`list_keys`](Self::list_keys) list, sorted. A failure midway comes after the keys
    /// found before it.
    async fn for_each_key(
        &self,
        pattern: &str,
        progress: OnProgress,
        each: &mut (dyn for<'k> FnMut(&'k str) + Send),
    ) -> Result<()> {
        for key in self.list_keys(pattern, progress).await? {
            each(&key);
        }
        Ok(())
    }

    /// Remove what the store keeps but will never serve again (expired rows, abandoned
    /// temporary files), and say how much. Stores whose server expires items itself have
    /// nothing to prune.
    async fn prune(&self, progress: OnProgress) -> Result<Pruned> {
        let _ = progress;
        Err(unsupported("prune", "this store keeps nothing to prune"))
    }

    /// [`Store::flush`](crate::Store::flush), telling `progress` how far it has got where
    /// the store can tell.
    async fn flush_with_progress(&self, progress: OnProgress) -> Result<()>;

    /// Create what the store needs on its server before first use (a database store's
    /// table), if it does not exist.
    async fn create_schema(&self) -> Result<()> {
        Err(unsupported(
            "create a schema",
            "this store needs nothing created",
        ))
    }
}

/// The error of an operation a store cannot do: `cannot {operation}: {why}`, of kind
/// [`ErrorKind::InvalidInput`] (asking again will not help).
pub fn unsupported(operation: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("cannot {operation}: {why}"),
    )
}
