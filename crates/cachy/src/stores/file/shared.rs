//! What the file store's modules share: the on-disk format's constants, the digest that
//! names files, how an I/O error is reported, and the progress of a walk of the folder.

use std::io;
use std::path::Path;
use std::time::Duration;

use sha2::Digest;

use crate::error::Error;

/// The expiry Python cachy writes for items stored forever.
pub(super) const FOREVER: u64 = 9_999_999_999;
/// Every file starts with the expiry as 10 ASCII digits.
pub(super) const HEADER: usize = 10;
/// Held while `add` and `increment` read and write, so they are atomic across threads and
/// processes sharing the folder. Python cachy never takes it (it has no atomic `add`).
pub(super) const LOCK_FILE: &str = ".cachy-lock";
/// `flush` renames each entry folder to a name starting with this before removing it. The
/// leading dot keeps it out of the two-hex-digit names the store reads and writes.
pub(super) const TRASH_PREFIX: &str = ".cachy-trash-";
/// Writes go to a temporary file named this and [`TEMP_RANDOM`] random letters and digits,
/// in the value's folder, then renamed into place. The leading dot keeps it out of the digest
/// names the store reads.
pub(super) const TEMP_PREFIX: &str = ".tmp";
/// How many random letters and digits follow [`TEMP_PREFIX`]: set, not left to `tempfile`'s
/// default, so that [`FileStore::prune`](super::FileStore::prune) takes exactly the names writes create for the
/// store's own.
pub(super) const TEMP_RANDOM: usize = 6;
/// How long a temporary file must have been left untouched before [`FileStore::prune`](super::FileStore::prune) takes
/// it for abandoned by a writer killed mid-write. A live write keeps its temporary file for
/// microseconds to milliseconds before renaming it into place, so a minute is far beyond any
/// write, while a younger file may belong to a write in progress in another process.
pub(super) const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// Modes of the files the store creates unless told otherwise: owner only.
pub(super) const DEFAULT_PERMISSIONS: u32 = 0o600;
/// How many times an operation starts over when its folders change under it: removed by
/// another program's flush, or a link or folder planted where the store writes.
pub(super) const ATTEMPTS: usize = 16;
/// Writes of a `put_many` under one hold of the shared lock: few enough that an `add` or
/// `increment` of another process does not wait long behind a large batch.
pub(super) const WRITES_PER_LOCK: usize = 256;

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
    pub(super) fn hex_digest(self, key: &str) -> String {
        match self {
            HashType::Md5 => hex::encode(md5::Md5::digest(key)),
            HashType::Sha1 => hex::encode(sha1::Sha1::digest(key)),
            HashType::Sha256 => hex::encode(sha2::Sha256::digest(key)),
        }
    }

    /// The length of a hex digest: the length of every value file's name.
    pub(super) fn digest_length(self) -> usize {
        match self {
            HashType::Md5 => 32,
            HashType::Sha1 => 40,
            HashType::Sha256 => 64,
        }
    }

    pub(super) fn folder_levels(self) -> usize {
        match self {
            HashType::Md5 => 2,
            HashType::Sha1 => 4,
            HashType::Sha256 => 8,
        }
    }
}

/// An I/O error on `path`, as the store reports it.
pub(super) fn io_error(path: &Path, e: io::Error) -> Error {
    Error::backend(format!("file store I/O failed on {}", path.display()), e)
}

/// How far [`FileStore::inventory`](super::FileStore::inventory) has got, as its progress callback sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InventoryProgress {
    /// Value files looked at so far.
    pub files: u64,
    /// Top-level digest folders done so far.
    pub folders_done: u64,
    /// Top-level digest folders in all (at most 256): the walk's length.
    pub folders: u64,
}

/// The progress callback [`FileStore::inventory`](super::FileStore::inventory) takes.
pub type OnInventoryProgress = Box<dyn FnMut(&InventoryProgress) + Send>;
