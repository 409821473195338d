use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sha2::Digest;

use crate::codec::incremented;
use crate::config::StoreConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Store, Ttl};

/// The expiry Python cachy writes for items stored forever.
const FOREVER: u64 = 9_999_999_999;
/// Every file starts with the expiry as 10 ASCII digits.
const HEADER: usize = 10;
/// Held while `add` and `increment` read and write, so they are atomic across threads and
/// processes sharing the folder. Python cachy never takes it (it has no atomic `add`).
const LOCK_FILE: &str = ".cachy-lock";
/// `flush` renames each entry folder to a name starting with this before removing it. The
/// leading dot keeps it out of the two-hex-digit names the store reads and writes.
const TRASH_PREFIX: &str = ".cachy-trash-";
/// Modes of the files the store creates unless told otherwise: owner only.
const DEFAULT_PERMISSIONS: u32 = 0o600;
/// How many times an operation starts over when its folders change under it: removed by
/// another program's flush, or a link or folder planted where the store writes.
const ATTEMPTS: usize = 16;

/// The digest that names a key's file; it also decides how many folder levels there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashType {
    /// MD5: two folder levels.
    Md5,
    /// SHA-1: four folder levels.
    Sha1,
    /// SHA-256 (the default): eight folder levels.
    #[default]
    Sha256,
}

impl HashType {
    fn hex_digest(self, key: &str) -> String {
        match self {
            HashType::Md5 => hex::encode(md5::Md5::digest(key)),
            HashType::Sha1 => hex::encode(sha1::Sha1::digest(key)),
            HashType::Sha256 => hex::encode(sha2::Sha256::digest(key)),
        }
    }

    fn folder_levels(self) -> usize {
        match self {
            HashType::Md5 => 2,
            HashType::Sha1 => 4,
            HashType::Sha256 => 8,
        }
    }
}

/// A store of one file per key (driver `file`), in exactly Python cachy's layout, so both
/// can share a cache folder.
///
/// The file of a key is named by the hex digest of the key (`hash_type`: `md5`, `sha1` or
/// `sha256`, the default) and sits in folders named by the digest's first two-character
/// pairs (2, 4 or 8 levels). It holds the expiry as 10 ASCII digits of unix time
/// (`9999999999` for forever) followed by the serialized value.
///
/// Writes go to a temporary file renamed into place, so a reader never sees half a value. An
/// expired file is removed when read; a corrupted or truncated one is a miss and is removed.
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
}

#[derive(Debug, Clone)]
struct Layout {
    root: PathBuf,
    hash: HashType,
    /// Mode of the files the store creates; its folders get the matching search bits.
    file_mode: u32,
}

impl FileStore {
    /// A store in the folder `root` (created when first written), naming files by `hash`.
    pub fn new(root: impl Into<PathBuf>, hash: HashType) -> Self {
        FileStore {
            inner: Arc::new(Layout {
                root: root.into(),
                hash,
                file_mode: DEFAULT_PERMISSIONS,
            }),
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
        })
    }

    /// Build from configuration: `path` (required), `hash_type` (`md5`, `sha1`, `sha256`)
    /// and `permissions` (an octal string such as `"0640"`; see
    /// [`with_permissions`](Self::with_permissions)).
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        let options: FileOptions = config.parse()?;
        let root = PathBuf::from(options.path);
        if root.exists() && !root.is_dir() {
            return Err(config.error(
                "path",
                format!("{} exists and is not a folder", root.display()),
            ));
        }
        let hash = options.hash_type.unwrap_or(HashType::Sha256);
        let file_mode = match options.permissions {
            None => DEFAULT_PERMISSIONS,
            Some(text) => parse_mode(&text).map_err(|msg| config.error("permissions", msg))?,
        };
        Ok(FileStore {
            inner: Arc::new(Layout {
                root,
                hash,
                file_mode,
            }),
        })
    }

    /// The folder the store writes to.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The file that holds `key`.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.inner.path_of(key)
    }

    async fn run<T, F>(&self, key: &str, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Layout, &Path) -> io::Result<T> + Send + 'static,
    {
        let layout = Arc::clone(&self.inner);
        let path = layout.path_of(key);
        tokio::task::spawn_blocking(move || job(&layout, &path))
            .await
            .map_err(|e| Error::backend("the file store's worker thread failed", e))?
            .map_err(|e| io_error(&self.inner.path_of(key), e))
    }
}

/// The `file` driver's options.
#[derive(serde::Deserialize)]
struct FileOptions {
    path: String,
    hash_type: Option<HashType>,
    permissions: Option<String>,
}

/// Parse an octal mode such as `"0640"`, `"640"` or `"0o640"`.
fn parse_mode(text: &str) -> std::result::Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if !(3..=4).contains(&digits.len()) || !digits.bytes().all(|b| matches!(b, b'0'..=b'7')) {
        return Err(format!(
            "`permissions` must be an octal mode such as \"0640\", not \"{text}\""
        ));
    }
    checked_mode(
        digits
            .bytes()
            .fold(0, |mode, digit| mode * 8 + u32::from(digit - b'0')),
    )
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

fn io_error(path: &Path, e: io::Error) -> Error {
    Error::backend(format!("file store I/O failed on {}", path.display()), e)
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What a cache file holds, once its header is read.
enum Content {
    Missing,
    /// Not a cache file: a truncated or foreign header, or a link, folder or FIFO where a
    /// file belongs.
    Corrupt,
    Expired,
    Live {
        expiry: u64,
        value: Vec<u8>,
    },
}

impl Layout {
    fn path_of(&self, key: &str) -> PathBuf {
        let digest = self.hash.hex_digest(key);
        let mut path = self.root.clone();
        for level in 0..self.hash.folder_levels() {
            path.push(&digest[level * 2..level * 2 + 2]);
        }
        path.push(digest);
        path
    }

    /// Folders get search permission wherever files are readable, and the files' write bits
    /// (writing a value creates a file in its folder).
    fn folder_mode(&self) -> u32 {
        self.file_mode | (self.file_mode & 0o444) >> 2
    }

    /// The digest folders of the file `path`, outermost first.
    fn folders<'a>(&self, path: &'a Path) -> impl Iterator<Item = &'a Path> {
        let mut folders: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .take(self.hash.folder_levels())
            .collect();
        folders.reverse();
        folders.into_iter()
    }

    /// Whether every digest folder of `path` is a real folder: reads never go through a
    /// link planted in the cache folder, which could point anywhere.
    fn folders_are_real(&self, path: &Path) -> io::Result<bool> {
        for folder in self.folders(path) {
            match fs::symlink_metadata(folder) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn read(&self, path: &Path) -> io::Result<Content> {
        // The folders are checked after opening, so that a miss costs a single failed open;
        // a file reached through a planted folder link is still never read.
        let mut file = match open_no_follow(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Content::Missing),
            Err(_) if !self.folders_are_real(path)? => return Ok(Content::Missing),
            // A link (refused by O_NOFOLLOW) or a socket: not a cache file.
            Err(e) => {
                return match fs::symlink_metadata(path) {
                    Ok(meta) if !meta.is_file() => Ok(Content::Corrupt),
                    _ => Err(e),
                };
            }
        };
        if !self.folders_are_real(path)? {
            return Ok(Content::Missing);
        }
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(Content::Corrupt);
        }
        let mut header = Vec::with_capacity(HEADER);
        (&mut file).take(HEADER as u64).read_to_end(&mut header)?;
        let expiry = Some(&header[..])
            .filter(|header| header.len() == HEADER && header.iter().all(u8::is_ascii_digit))
            .and_then(|header| std::str::from_utf8(header).ok()?.parse::<u64>().ok());
        Ok(match expiry {
            None => Content::Corrupt,
            Some(expiry) if expiry as f64 <= now_seconds() => Content::Expired,
            Some(expiry) => {
                // Read no more than the size the file had when opened, so a file someone
                // keeps appending to cannot keep the reader going; a size no memory can hold
                // (a sparse file) is an error rather than an abort.
                let length = meta.len().saturating_sub(HEADER as u64);
                let mut value = Vec::new();
                value
                    .try_reserve_exact(usize::try_from(length).unwrap_or(usize::MAX))
                    .map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::OutOfMemory,
                            format!("a value of {length} bytes does not fit in memory"),
                        )
                    })?;
                file.take(length).read_to_end(&mut value)?;
                Content::Live { expiry, value }
            }
        })
    }

    /// Read `path`, removing it if it has expired or is corrupted.
    fn read_live(&self, path: &Path) -> io::Result<Option<(u64, Vec<u8>)>> {
        match self.read(path)? {
            Content::Live { expiry, value } => Ok(Some((expiry, value))),
            Content::Missing => Ok(None),
            Content::Expired | Content::Corrupt => match self.remove_dead(path) {
                // A reader that may not write a shared folder (`permissions = "0640"`) still
                // gets its miss; a writer removes the file later.
                Err(e) if e.kind() != io::ErrorKind::PermissionDenied => Err(e),
                _ => Ok(None),
            },
        }
    }

    /// Remove an expired or corrupted file, checking again under the lock so that a live
    /// value written meanwhile by `add` or `increment` is kept.
    fn remove_dead(&self, path: &Path) -> io::Result<()> {
        let _lock = self.lock()?;
        if matches!(self.read(path)?, Content::Expired | Content::Corrupt) {
            remove_entry(path)?;
        }
        Ok(())
    }

    fn write(&self, path: &Path, expiry: u64, value: &[u8]) -> io::Result<()> {
        let mut attempts = 1;
        loop {
            match self.try_write(path, expiry, value) {
                // Another program's flush removed a folder between making it and renaming the
                // file into place, or between finding it taken and checking what took it
                // (this crate's flush waits for the lock writes hold).
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists
                    ) && attempts < ATTEMPTS =>
                {
                    attempts += 1;
                }
                result => return result,
            }
        }
    }

    fn try_write(&self, path: &Path, expiry: u64, value: &[u8]) -> io::Result<()> {
        self.make_folders(path)?;
        let folder = path.parent().unwrap_or(&self.root);
        let mut file = tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(folder)?;
        set_mode(file.as_file(), self.file_mode)?;
        file.write_all(format!("{expiry:010}").as_bytes())?;
        file.write_all(value)?;
        // The rename replaces a file, a link (not its target) or a FIFO, but not a folder.
        match file.persist(path) {
            Ok(_) => Ok(()),
            Err(e) if is_real_folder(path) => {
                remove_entry(path)?;
                e.file.persist(path).map(drop).map_err(|e| e.error)
            }
            Err(e) => Err(e.error),
        }
    }

    /// Make the digest folders of `path`, replacing whatever else sits where one belongs:
    /// writing through a planted link could put the file anywhere.
    fn make_folders(&self, path: &Path) -> io::Result<()> {
        self.make_root()?;
        for folder in self.folders(path) {
            match fs::symlink_metadata(folder) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => {
                    remove_entry(folder)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            match make_folder(folder, self.folder_mode()) {
                // Made meanwhile by another write.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_real_folder(folder) => {}
                result => result?,
            }
        }
        Ok(())
    }

    /// Make the cache folder if it is missing. Unlike the folders below it, it may be a link:
    /// it is the user's choice.
    fn make_root(&self) -> io::Result<()> {
        if self.root.is_dir() {
            return Ok(());
        }
        if let Some(parent) = self.root.parent() {
            fs::create_dir_all(parent)?;
        }
        match make_folder(&self.root, self.folder_mode()) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && self.root.is_dir() => Ok(()),
            result => result,
        }
    }

    /// The lock for changes that read before they write (`add`, `increment`, `forget`,
    /// removing a dead file, `flush`): exclusive.
    fn lock(&self) -> io::Result<File> {
        let file = self.lock_file()?;
        file.lock()?;
        Ok(file)
    }

    /// The lock for a plain write: shared, so writers of different keys never wait for each
    /// other, yet a removal of a dead file cannot delete a value written meanwhile, nor a
    /// flush move a folder away between its making and the rename into it.
    fn lock_shared(&self) -> io::Result<File> {
        let file = self.lock_file()?;
        file.lock_shared()?;
        Ok(file)
    }

    fn lock_file(&self) -> io::Result<File> {
        self.make_root()?;
        let path = self.root.join(LOCK_FILE);
        for _ in 0..ATTEMPTS {
            // O_EXCL never follows a link: a dangling one planted here does not create its
            // target.
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    set_mode(&file, self.file_mode)?;
                    return Ok(file);
                }
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                Err(_) => {}
            }
            // Read-only is enough for flock, and lets readers of a shared folder lock it.
            match open_no_follow(&path) {
                Ok(file) if file.metadata()?.is_file() => return Ok(file),
                // A folder or FIFO planted at the lock's name.
                Ok(_) => {
                    remove_entry(&path)?;
                }
                // Removed meanwhile: create it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // A link, refused by O_NOFOLLOW: remove it, never its target.
                Err(_) if !fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_file()) => {
                    remove_entry(&path)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "{} keeps being replaced by something that is not a file",
            path.display()
        )))
    }

    fn flush(&self) -> io::Result<()> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut trash = Vec::new();
        {
            // Writes hold the lock shared from making their folders to renaming their file
            // into place, so none loses its folder halfway; writes after this block start
            // fresh folders, and a write issued after `flush` returns is kept.
            let _lock = self.lock()?;
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name();
                let kind = entry.file_type()?;
                if is_entry_folder(&name) && (kind.is_dir() || kind.is_symlink()) {
                    // One atomic rename takes the whole folder out of the namespace, so no
                    // write adds files to it while it is being removed.
                    let to = self.root.join(trash_name());
                    match fs::rename(entry.path(), &to) {
                        Ok(()) => trash.push(to),
                        // Taken by a concurrent flush.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                } else if name.to_str().is_some_and(|n| n.starts_with(TRASH_PREFIX)) {
                    // Left by an interrupted flush, or being removed by a concurrent one
                    // (removal tolerates that).
                    trash.push(entry.path());
                }
            }
        }
        for folder in trash {
            remove_entry(&folder)?;
        }
        Ok(())
    }
}

/// A name no other flush uses, in this process or another.
fn trash_name() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{TRASH_PREFIX}{}-{}-{nanos}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

fn expiry_of(ttl: Ttl) -> u64 {
    match ttl {
        None => FOREVER,
        Some(seconds) => ((now_seconds() + seconds as f64).ceil() as u64).min(FOREVER),
    }
}

fn is_real_folder(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir())
}

/// Remove whatever is at `path` without following links: a file or a link is unlinked, a
/// folder removed with its contents (links inside are unlinked, never followed). Whether
/// something was there.
fn remove_entry(path: &Path) -> io::Result<bool> {
    let removed = if is_real_folder(path) {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn is_entry_folder(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Open an existing file to read, refusing a link at its name (a read could otherwise return
/// any file the process may read) and not waiting on a FIFO (opening one blocks until a
/// writer comes).
fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        // Flag bits fit in an `i32`, the type `custom_flags` takes.
        let flags = (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32;
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, flags);
    }
    options.open(path)
}

/// Make the folder `path` (its parent must exist) with `mode`.
fn make_folder(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, mode);
    builder.create(path)?;
    // The umask may have taken bits that `permissions` asked for; set them through a handle
    // so that a link swapped in meanwhile is refused, not followed.
    let folder = open_no_follow(path)?;
    if folder.metadata()?.is_dir() {
        set_mode(&folder, mode)?;
    }
    Ok(())
}

/// Give `file` exactly `mode`, whatever the umask took from it at creation.
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    #[cfg(not(unix))]
    let _ = (file, mode);
    Ok(())
}

#[async_trait]
impl Store for FileStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.run(key, |layout, path| {
            Ok(layout.read_live(path)?.map(|(_, value)| value))
        })
        .await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        let value = value.to_vec();
        self.run(key, move |layout, path| {
            let _lock = layout.lock_shared()?;
            layout.write(path, expiry_of(ttl), &value)
        })
        .await
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
                _ => (FOREVER, None),
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
                (_, None) => FOREVER,
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
                Content::Live { value, .. } if value == expected => remove_entry(path),
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
                Content::Live { .. } => remove_entry(path)?,
                Content::Expired | Content::Corrupt => {
                    remove_entry(path)?;
                    false
                }
            })
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        let layout = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || layout.flush())
            .await
            .map_err(|e| Error::backend("the file store's worker thread failed", e))?
            .map_err(|e| {
                Error::new(
                    ErrorKind::Backend,
                    format!("cannot flush {}", self.inner.root.display()),
                )
                .with_source(e)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_python_cachy_layout() {
        let store = FileStore::new("/cache", HashType::Md5);
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8
        assert_eq!(
            store.path_of("foo"),
            PathBuf::from("/cache/ac/bd/acbd18db4cc2f85cedef654fccc4a4d8")
        );
        let sha256 = FileStore::new("/cache", HashType::Sha256).path_of("foo");
        // sha256("foo") = 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
        assert_eq!(
            sha256,
            PathBuf::from(
                "/cache/2c/26/b4/6b/68/ff/c6/8f/\
                 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
            )
        );
    }

    #[test]
    fn modes_parse_as_octal_and_folders_get_search_bits() {
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        for bad in [
            "",
            "64",
            "06400",
            "0x640",
            "rw-r-----",
            "0400",
            "0800",
            "4755",
        ] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        let folder_mode = |mode| {
            let store = FileStore::new("/cache", HashType::Md5)
                .with_permissions(mode)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(store.inner.folder_mode())
        };
        assert_eq!(folder_mode(0o600), Ok(0o700));
        assert_eq!(folder_mode(0o640), Ok(0o750));
        assert_eq!(folder_mode(0o660), Ok(0o770));
        assert_eq!(folder_mode(0o644), Ok(0o755));
    }
}
