//! The `file` driver's config.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use super::{DEFAULT_PERMISSIONS, FileStore, HashType, checked_mode};
use crate::error::{Error, Result};

/// How a [`FileStore`] is built: the options of the `file` driver, as read from a config
/// file or written in code.
///
/// ```
/// use cachy::stores::{FileConfig, FileStore, HashType};
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut config = FileConfig::new(dir.path());
/// config.hash_type = HashType::Md5;
/// config.permissions = Some(0o640);
/// let store = FileStore::with_config(config)?;
/// # Ok::<(), cachy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct FileConfig {
    /// The folder the store writes to, created when first written (required).
    pub path: PathBuf,
    /// How files are named: `md5`, `sha1` or `sha256` (the default) of the key.
    #[serde(default = "default_hash")]
    pub hash_type: HashType,
    /// The mode of the files the store creates, instead of owner-only `0o600` (in a config
    /// file, an octal string such as `"0640"`); see
    /// [`FileStore::with_permissions`].
    #[serde(default, deserialize_with = "octal_mode")]
    pub permissions: Option<u32>,
}

impl FileConfig {
    /// The defaults, in the folder `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileConfig {
            path: path.into(),
            hash_type: default_hash(),
            permissions: None,
        }
    }
}

fn default_hash() -> HashType {
    HashType::Sha256
}

impl FileStore {
    /// A file store as `config` describes it; an error names the field that is wrong.
    pub fn with_config(config: FileConfig) -> Result<Self> {
        let root = config.path;
        if root.as_os_str().is_empty() {
            return Err(Error::config(
                "path",
                "`path` must name a folder, not be empty",
            ));
        }
        if root.exists() && !root.is_dir() {
            return Err(Error::config(
                "path",
                format!("{} exists and is not a folder", root.display()),
            ));
        }
        let file_mode = match config.permissions {
            None => DEFAULT_PERMISSIONS,
            Some(mode) => checked_mode(mode).map_err(|msg| Error::config("permissions", msg))?,
        };
        let store = FileStore::new(root, config.hash_type);
        let mut layout = Arc::unwrap_or_clone(store.inner);
        layout.file_mode = file_mode;
        Ok(FileStore {
            inner: Arc::new(layout),
            inline_reads: store.inline_reads,
            inline_writes: store.inline_writes,
        })
    }
}

/// An octal mode such as `"0640"`, `"640"` or `"0o640"`.
fn octal_mode<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<u32>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let digits = text.strip_prefix("0o").unwrap_or(&text);
    if !(3..=4).contains(&digits.len()) || !digits.bytes().all(|b| matches!(b, b'0'..=b'7')) {
        return Err(serde::de::Error::custom(format!(
            "must be an octal mode such as \"0640\", not \"{text}\""
        )));
    }
    let mode = digits
        .bytes()
        .fold(0, |mode, digit| mode * 8 + u32::from(digit - b'0'));
    Ok(Some(mode))
}
