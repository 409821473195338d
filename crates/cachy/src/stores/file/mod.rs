use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::codec::incremented;
use crate::config::StoreConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Lifetime, Store, Ttl};
use crate::stores::inline::InlineWhileFast;

pub(super) mod config;
mod given_up;
mod inventory;
mod layout;
mod shared;

use crate::inspect::{Inventory, Tally};
use layout::*;
use shared::*;
pub use shared::{HashType, InventoryProgress, OnInventoryProgress};

/// A store of one file per key (driver `file`), in exactly Python cachy's layout, so both
/// can share a cache folder.
///
/// The file of a key is named by the hex digest of the key (`hash_type`: `md5`, `sha1` or
/// `sha256`, the default) and sits in folders named by the digest's first two-character
/// pairs (2, 4 or 8 levels). It holds the expiry as 10 ASCII digits of unix time
/// (`9999999999` for forever) followed by the serialized value.
///
/// Reads and writes run on the caller's thread: a small file in the page cache takes a few
/// microseconds to read and some tens to write, less than handing the call to tokio's
/// blocking pool and back. Once reads (or writes) take over a millisecond four times in a
/// row (a slow disk, a network file system), the store reads (or writes) on the blocking
/// pool, and so does a write of over 256 KiB or one that would wait for the lock file
/// (another process flushing). A read never waits for the lock: an expired file it cannot
/// remove at once is left for a later read or [`prune`](Self::prune). A call that has to
/// wait is an [`ErrorKind::Runtime`] error outside a tokio runtime.
/// Writes go to a temporary file renamed into place, so a reader never
/// sees half a value; a writer killed before the rename leaves its temporary file behind
/// (`.tmp` and 6 letters or digits), which [`prune`](Self::prune) removes. An
/// expired file is removed when read; a corrupted or truncated one is a miss and is removed.
/// A call on the blocking pool that its caller stops waiting for (a timeout, an aborted task)
/// changes nothing once the caller's future is dropped: it never lands after the caller's
/// next write of the key (a flush given up on stops where it is).
/// `add` and `increment` hold a lock file (`.cachy-lock` in the folder) and are atomic across
/// threads and processes using this crate. `flush` removes only the two-hex-digit folders the
/// store writes, never other files in the folder, and can run while other calls write.
///
/// The folder may be shared with other programs, so the store trusts nothing below it: it
/// never reads, writes or removes through a symbolic link there (a link, folder or FIFO
/// where a value file belongs is a miss; a link or file where a folder belongs makes the
/// path a miss; writes replace them, removing a link, never its target). Files are created
/// owner-only (`0600`, folders `0700`) unless [`with_permissions`](Self::with_permissions)
/// (option `permissions`) widens them.
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Layout>,
    /// Reads run on the caller's thread while they are fast.
    inline_reads: Arc<InlineWhileFast>,
    /// So do plain writes, apart: a write may wait for the disk where reads do not.
    inline_writes: Arc<InlineWhileFast>,
}

impl FileStore {
    /// A store in the folder `root` (created when first written), naming files by `hash`.
    pub fn new(root: impl Into<PathBuf>, hash: HashType) -> Self {
        FileStore {
            inner: Arc::new(Layout {
                root: root.into(),
                hash,
                file_mode: DEFAULT_PERMISSIONS,
                real_root: std::sync::OnceLock::new(),
            }),
            inline_reads: Arc::default(),
            inline_writes: Arc::default(),
        }
    }

    /// Create files with `mode` instead of owner-only `0o600`, for a cache shared between
    /// users: `0o660` lets the group read and write, `0o640` read. Folders get the same bits
    /// plus search (`x`) wherever files are readable (`0o770`, `0o750`). The modes are set
    /// as given, whatever the umask. They apply to what the store creates from now on, not to
    /// files already there, and have no effect on platforms other than unix.
    ///
    /// A [`ErrorKind::Config`] error if `mode` has bits other than `0o777` or does not let
    /// the owner read and write.
    pub fn with_permissions(self, mode: u32) -> Result<Self> {
        let file_mode = checked_mode(mode).map_err(|msg| Error::config("permissions", msg))?;
        let mut layout = Arc::unwrap_or_clone(self.inner);
        layout.file_mode = file_mode;
        Ok(FileStore {
            inner: Arc::new(layout),
            inline_reads: self.inline_reads,
            inline_writes: self.inline_writes,
        })
    }

    /// Build from a store's configuration: the fields of
    /// [`FileConfig`](config::FileConfig).
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        config.build(Self::with_config)
    }

    /// The folder the store writes to.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The file that holds `key`.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.inner.path_of(key)
    }

    /// Count the files of the cache folder: live values, expired ones and files that are not
    /// cache files, with their sizes. A read-only walk of the digest folders (links are not
    /// followed) that reads only each file's 10-byte header, on a blocking thread; files
    /// written or removed meanwhile may or may not be counted.
    ///
    /// `on_progress`, if given, is called as the walk goes: after each file and each
    /// top-level folder (of at most 256), for a progress bar.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// use cachy::Store;
    /// use cachy::stores::{FileStore, HashType};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = FileStore::new(dir.path(), HashType::Md5);
    /// store.put("a", b"1", Some(60)).await?;
    /// store.put("b", b"22", None).await?;
    /// let inventory = store.inventory(None).await?;
    /// assert_eq!(inventory.live.files, 2);
    /// assert_eq!(inventory.live.bytes, 10 + 1 + 10 + 2); // headers and values
    /// assert_eq!(inventory.expired.files, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn inventory(&self, on_progress: Option<OnInventoryProgress>) -> Result<Inventory> {
        let layout = Arc::clone(&self.inner);
        let mut on_progress = on_progress.unwrap_or_else(|| Box::new(|_| {}));
        on_pool(move || layout.inventory(&mut *on_progress)).await?
    }

    /// Remove what the store keeps but will never serve again, and say how many files, with
    /// their bytes: expired and corrupt values (which otherwise stay until a read of their
    /// key or a `flush`), and the temporary files that writes killed before they finished
    /// left behind (a write renames its temporary file into place; a process killed
    /// meanwhile leaves it, and nothing else ever removes it).
    ///
    /// An expired value is checked again under the store's lock before it goes, as a read
    /// does. Only temporary files untouched for over a minute are removed: a younger one may
    /// belong to a write in progress in another process. Only regular files named as the
    /// store names them, in the innermost digest folders, are taken, never links, folders
    /// or any other file; links are not followed. A walk of the digest folders on a blocking
    /// thread, a file at a time, like [`inventory`](Self::inventory); see
    /// [`prune_with_progress`](Self::prune_with_progress) to follow it. A folder or file it
    /// cannot read or remove (another user's) does not stop it: it removes all it can, then
    /// returns the first such error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// use cachy::Store;
    /// use cachy::stores::{FileStore, HashType};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = FileStore::new(dir.path(), HashType::Md5);
    /// store.put("a", b"1", None).await?;
    /// // Every write finished: no temporary file is left, and the value is kept.
    /// assert_eq!(store.prune().await?.files, 0);
    /// assert_eq!(store.get("a").await?, Some(b"1".to_vec()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn prune(&self) -> Result<Tally> {
        self.prune_with_progress(Box::new(|_| {})).await
    }

    /// [`prune`](Self::prune), telling `on_progress` how far the walk has got (top-level
    /// folders done of how many, value files read), as [`inventory`](Self::inventory) does.
    pub async fn prune_with_progress(&self, mut on_progress: OnInventoryProgress) -> Result<Tally> {
        let layout = Arc::clone(&self.inner);
        on_pool(move || layout.prune(&mut *on_progress)).await?
    }

    /// [`flush`](Store::flush), telling `on_progress` how many of the top-level folders (at
    /// most 256) are removed so far, and of how many: `(done, total)`.
    pub async fn flush_with_progress(
        &self,
        mut on_progress: Box<dyn FnMut(u64, u64) + Send>,
    ) -> Result<()> {
        let layout = Arc::clone(&self.inner);
        on_pool(move || layout.flush(&mut *on_progress))
            .await?
            .map_err(|e| {
                Error::new(
                    ErrorKind::Backend,
                    format!("cannot flush {}", self.inner.root.display()),
                )
                .with_source(e)
            })
    }

    /// Run the read `job` on the caller's thread, unless reads proved slow here (see
    /// [`InlineWhileFast`]); then on tokio's blocking pool.
    async fn read<T, F>(&self, key: &str, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Layout, &Path) -> io::Result<T> + Send + 'static,
    {
        if !self.inline_reads.allowed_cooperatively().await {
            return self.run(key, job).await;
        }
        let path = self.inner.path_of(key);
        self.timed(&self.inline_reads, "reads", || job(&self.inner, &path))
            .map_err(|e| io_error(&path, e))
    }

    /// Run `job` on the caller's thread, and tell `inline` how long it took; `what` (reads
    /// or writes) names the work if that moves it to the blocking pool.
    fn timed<T>(&self, inline: &InlineWhileFast, what: &str, job: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let done = job();
        if inline.record(started.elapsed()) {
            #[cfg(feature = "tracing")]
            tracing::info!(
                folder = %self.inner.root.display(),
                "file store: {what} take over 1 ms; moving them to tokio's blocking pool (trying the caller's thread now and then)"
            );
            #[cfg(not(feature = "tracing"))]
            let _ = what;
        }
        done
    }

    async fn run<T, F>(&self, key: &str, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Layout, &Path) -> io::Result<T> + Send + 'static,
    {
        let layout = Arc::clone(&self.inner);
        let path = layout.path_of(key);
        on_pool(move || job(&layout, &path))
            .await?
            .map_err(|e| io_error(&self.inner.path_of(key), e))
    }
}

/// The largest value written on the caller's thread: copying a larger one into the page
/// cache takes long enough to hold up the runtime's other tasks, however fast the disk.
const INLINE_WRITE_MAX: usize = 256 * 1024;

/// Run `work` on tokio's blocking pool, and wait for it. Once the caller stops waiting (the
/// future is dropped), the work changes no more of the cache's files: see [`given_up`].
async fn on_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (_caller, job) = given_up::caller_and_job();
    crate::runtime::blocking_pool("file store")?
        .spawn_blocking(move || job.run(work))
        .await
        .map_err(|e| Error::backend("the file store's worker thread failed", e))
}

fn checked_mode(mode: u32) -> std::result::Result<u32, String> {
    if mode & !0o777 != 0 {
        Err(format!(
            "`permissions` {mode:04o} has bits beyond 0777 (setuid, setgid or sticky)"
        ))
    } else if mode & 0o600 != 0o600 {
        Err(format!(
            "`permissions` {mode:04o} must let the owner read and write (0600)"
        ))
    } else {
        Ok(mode)
    }
}

#[async_trait]
impl Store for FileStore {
    fn inspector(&self) -> std::result::Result<&dyn crate::inspect::Inspect, &'static str> {
        Ok(self)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.read(key, |layout, path| {
            Ok(layout.read_live(path)?.map(|(_, value)| value))
        })
        .await
    }

    async fn get_with_lifetime(&self, key: &str) -> Result<Option<(Vec<u8>, Lifetime)>> {
        self.read(key, |layout, path| {
            Ok(layout
                .read_live(path)?
                .map(|(expiry, value)| (value, lifetime_of(expiry))))
        })
        .await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        if value.len() <= INLINE_WRITE_MAX && self.inline_writes.allowed_cooperatively().await {
            let path = self.inner.path_of(key);
            // A lock held exclusively (another process's flush, say) is waited for on the
            // blocking pool, never on the caller's thread.
            match self.inner.try_lock_shared() {
                Ok(Some(_lock)) => {
                    return self
                        .timed(&self.inline_writes, "writes", || {
                            self.inner.write(&path, expiry_of(ttl), value)
                        })
                        .map_err(|e| io_error(&path, e));
                }
                Ok(None) => {}
                Err(e) => return Err(io_error(&self.inner.root.join(LOCK_FILE), e)),
            }
        }
        let value = value.to_vec();
        self.run(key, move |layout, path| {
            let _lock = layout.lock_shared()?;
            layout.write(path, expiry_of(ttl), &value)
        })
        .await
    }

    async fn put_many(&self, items: &[(&str, Vec<u8>)], ttl: Ttl) -> Result<()> {
        // One blocking task for the batch: a task per item would cost more than its write.
        let items: Vec<(PathBuf, Vec<u8>)> = items
            .iter()
            .map(|(key, value)| (self.inner.path_of(key), value.clone()))
            .collect();
        let layout = Arc::clone(&self.inner);
        on_pool(move || {
            let expiry = expiry_of(ttl);
            for batch in items.chunks(WRITES_PER_LOCK) {
                let _lock = layout
                    .lock_shared()
                    .map_err(|e| io_error(&layout.root.join(LOCK_FILE), e))?;
                for (path, value) in batch {
                    layout
                        .write(path, expiry, value)
                        .map_err(|e| io_error(path, e))?;
                }
            }
            Ok(())
        })
        .await?
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        let value = value.to_vec();
        self.run(key, move |layout, path| {
            let _lock = layout.lock()?;
            if let Content::Live { .. } = layout.read(path)? {
                return Ok(false);
            }
            layout.write(path, expiry_of(ttl), &value)?;
            Ok(true)
        })
        .await
    }

    async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        self.run(key, move |layout, path| {
            let _lock = layout.lock()?;
            let (expiry, current) = match layout.read(path)? {
                Content::Live { expiry, value } => (expiry, Some(value)),
                _ => (NEVER, None),
            };
            let next = incremented(current.as_deref(), by);
            if let Ok(next) = &next {
                layout.write(path, expiry, next.to_string().as_bytes())?;
            }
            Ok(next)
        })
        .await?
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        let (current, new) = (current.map(<[u8]>::to_vec), new.to_vec());
        self.run(key, move |layout, path| {
            let _lock = layout.lock()?;
            let expiry = match (layout.read(path)?, current) {
                (Content::Live { expiry, value }, Some(current)) if value == current => expiry,
                (Content::Live { .. }, _) | (_, Some(_)) => return Ok(false),
                (_, None) => NEVER,
            };
            layout.write(path, expiry, &new)?;
            Ok(true)
        })
        .await
    }

    async fn compare_and_delete(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let expected = expected.to_vec();
        self.run(key, move |layout, path| {
            let _lock = layout.lock()?;
            match layout.read(path)? {
                Content::Live { value, .. } if value == expected => {
                    given_up::change(|| remove_entry(path))
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn forget(&self, key: &str) -> Result<bool> {
        self.run(key, |layout, path| {
            let _lock = layout.lock()?;
            Ok(match layout.read(path)? {
                // Nothing there, or reached only through a link: leave it.
                Content::Missing => false,
                Content::Live { .. } => given_up::change(|| remove_entry(path))?,
                Content::Expired | Content::Corrupt => {
                    given_up::change(|| remove_entry(path))?;
                    false
                }
            })
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        self.flush_with_progress(Box::new(|_, _| {})).await
    }
}

#[cfg(test)]
mod tests;
