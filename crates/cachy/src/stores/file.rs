use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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

/// The digest that names a key's file; it also decides how many folder levels there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
/// store writes, never other files in the folder.
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Layout>,
}

#[derive(Debug)]
struct Layout {
    root: PathBuf,
    hash: HashType,
}

impl FileStore {
    /// A store in the folder `root` (created when first written), naming files by `hash`.
    pub fn new(root: impl Into<PathBuf>, hash: HashType) -> Self {
        FileStore {
            inner: Arc::new(Layout {
                root: root.into(),
                hash,
            }),
        }
    }

    /// Build from configuration: `path` (required) and `hash_type` (`md5`, `sha1`, `sha256`).
    pub fn from_config(config: &StoreConfig) -> Result<Self> {
        let root = PathBuf::from(config.required_str("path")?);
        if root.exists() && !root.is_dir() {
            return Err(config.error(
                "path",
                format!("{} exists and is not a folder", root.display()),
            ));
        }
        let hash = match config.str("hash_type")? {
            None | Some("sha256") => HashType::Sha256,
            Some("sha1") => HashType::Sha1,
            Some("md5") => HashType::Md5,
            Some(other) => {
                return Err(config.error(
                    "hash_type",
                    format!("hash_type `{other}` is not md5, sha1 or sha256"),
                ));
            }
        };
        Ok(Self::new(root, hash))
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
    /// Unreadable header: truncated or not written by a cache.
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

    fn read(&self, path: &Path) -> io::Result<Content> {
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut file) => file.read_to_end(&mut bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Content::Missing),
            Err(e) => return Err(e),
        };
        let expiry = bytes
            .get(..HEADER)
            .filter(|header| header.iter().all(u8::is_ascii_digit))
            .and_then(|header| std::str::from_utf8(header).ok()?.parse::<u64>().ok());
        Ok(match expiry {
            None => Content::Corrupt,
            Some(expiry) if expiry as f64 <= now_seconds() => Content::Expired,
            Some(expiry) => {
                bytes.drain(..HEADER);
                Content::Live {
                    expiry,
                    value: bytes,
                }
            }
        })
    }

    /// Read `path`, removing it if it has expired or is corrupted.
    fn read_live(&self, path: &Path) -> io::Result<Option<(u64, Vec<u8>)>> {
        match self.read(path)? {
            Content::Live { expiry, value } => Ok(Some((expiry, value))),
            Content::Missing => Ok(None),
            Content::Expired | Content::Corrupt => {
                self.remove_dead(path)?;
                Ok(None)
            }
        }
    }

    /// Remove an expired or corrupted file, checking again under the lock so that a live
    /// value written meanwhile by `add` or `increment` is kept.
    fn remove_dead(&self, path: &Path) -> io::Result<()> {
        let _lock = self.lock()?;
        if matches!(self.read(path)?, Content::Expired | Content::Corrupt) {
            remove_if_present(path)?;
        }
        Ok(())
    }

    fn write(&self, path: &Path, expiry: u64, value: &[u8]) -> io::Result<()> {
        let folder = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(folder)?;
        let mut file = tempfile::Builder::new()
            .prefix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(folder)?;
        file.write_all(format!("{expiry:010}").as_bytes())?;
        file.write_all(value)?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The lock for changes that read before they write (`add`, `increment`, `forget`,
    /// removing a dead file): exclusive.
    fn lock(&self) -> io::Result<File> {
        let file = self.lock_file()?;
        file.lock()?;
        Ok(file)
    }

    /// The lock for a plain write: shared, so writers of different keys never wait for each
    /// other, yet a removal of a dead file cannot delete a value written meanwhile.
    fn lock_shared(&self) -> io::Result<File> {
        let file = self.lock_file()?;
        file.lock_shared()?;
        Ok(file)
    }

    fn lock_file(&self) -> io::Result<File> {
        fs::create_dir_all(&self.root)?;
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(LOCK_FILE))
    }
}

fn expiry_of(ttl: Ttl) -> u64 {
    match ttl {
        None => FOREVER,
        Some(seconds) => ((now_seconds() + seconds as f64).ceil() as u64).min(FOREVER),
    }
}

fn remove_if_present(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn is_entry_folder(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
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

    async fn forget(&self, key: &str) -> Result<bool> {
        self.run(key, |layout, path| {
            let _lock = layout.lock()?;
            let was_live = matches!(layout.read(path)?, Content::Live { .. });
            Ok(remove_if_present(path)? && was_live)
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        let root = self.inner.root.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let entries = match fs::read_dir(&root) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_dir() && is_entry_folder(&entry.file_name()) {
                    match fs::remove_dir_all(entry.path()) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
            }
            Ok(())
        })
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
}
