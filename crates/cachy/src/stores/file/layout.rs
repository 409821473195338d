//! The file store's layout on disk: where a key's file is, its header, reading and writing
//! it without following links, the lock file, and folders.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::{Lifetime, Ttl};

use super::shared::*;

mod in_place;
mod lock;
mod temporary;

pub(super) use temporary::{abandoned_size, temporary_file};
// Outside this module only the store's tests need it, to check that every name
// `temporary_file` gives is one prune takes.
#[cfg(test)]
pub(super) use temporary::is_temporary_name;

#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) root: PathBuf,
    pub(super) hash: HashType,
    /// Mode of the files the store creates; its folders get the matching search bits.
    pub(super) file_mode: u32,
    /// `root` with every link resolved, once it exists: where an opened file's real path
    /// must lie (see [`Layout::opened_in_place`]).
    pub(super) real_root: std::sync::OnceLock<PathBuf>,
}

/// Files up to this size are read in one system call, header and value together.
const ONE_READ: u64 = 64 * 1024;

pub(super) fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// When an item expires, since the Unix epoch, to the nanosecond. The header keeps it in
/// whole seconds, rounded up (Python cachy's layout, which Python reads); the file's
/// modification time keeps it exactly (see [`deadline_of`]).
pub(super) type Deadline = Duration;

/// The deadline of an item kept forever.
pub(super) const NEVER: Deadline = Duration::from_secs(FOREVER);

/// What a cache file holds, once its header is read.
pub(super) enum Content {
    Missing,
    /// Not a cache file: a truncated or foreign header, or a link, folder or FIFO where a
    /// file belongs.
    Corrupt,
    Expired,
    Live {
        expiry: Deadline,
        value: Vec<u8>,
    },
}

impl Layout {
    pub(super) fn path_of(&self, key: &str) -> PathBuf {
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
    pub(super) fn folder_mode(&self) -> u32 {
        self.file_mode | (self.file_mode & 0o444) >> 2
    }

    /// The digest folders of the file `path`, outermost first.
    pub(super) fn folders<'a>(&self, path: &'a Path) -> impl Iterator<Item = &'a Path> {
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
    pub(super) fn folders_are_real(&self, path: &Path) -> io::Result<bool> {
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

    pub(super) fn read(&self, path: &Path) -> io::Result<Content> {
        let (mut file, in_place) = match self.open_in_place(path) {
            Some(Ok(file)) => (file, true),
            Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(Content::Missing),
            _ => match self.open_checked(path)? {
                Ok(file) => (file, false),
                Err(content) => return Ok(content),
            },
        };
        if !in_place && !self.opened_in_place(&file, path) && !self.folders_are_real(path)? {
            return Ok(Content::Missing);
        }
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(Content::Corrupt);
        }
        // Read no more than the size the file had when opened, so a file someone keeps
        // appending to cannot keep the reader going. A small file (nearly every value) is
        // read in one call; a large one's header first, so that an expired or foreign file
        // is not read (nor memory reserved for it) for nothing.
        let length = meta.len();
        let first = if length <= ONE_READ {
            length
        } else {
            HEADER as u64
        };
        let mut content = Vec::with_capacity(first as usize);
        (&mut file).take(first).read_to_end(&mut content)?;
        let Some(header) = content.get(..HEADER).and_then(parse_expiry) else {
            return Ok(Content::Corrupt);
        };
        let expiry = deadline_of(header, &meta);
        if expiry <= now() {
            return Ok(Content::Expired);
        }
        let rest = length - first;
        // A size no memory can hold (a sparse file) is an error rather than an abort.
        content
            .try_reserve_exact(usize::try_from(rest).unwrap_or(usize::MAX))
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!("a value of {rest} bytes does not fit in memory"),
                )
            })?;
        file.take(rest).read_to_end(&mut content)?;
        content.drain(..HEADER);
        Ok(Content::Live {
            expiry,
            value: content,
        })
    }

    /// Open `path` without following a link as its last part; the file, or what the
    /// path holds instead of one.
    fn open_checked(&self, path: &Path) -> io::Result<std::result::Result<File, Content>> {
        // The folders are checked after opening, so that a miss costs a single failed open;
        // a file reached through a planted folder link is still never read.
        Ok(Err(match open_no_follow(path) {
            Ok(file) => return Ok(Ok(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Content::Missing,
            Err(_) if !self.folders_are_real(path)? => Content::Missing,
            // A link (refused by O_NOFOLLOW) or a socket: not a cache file.
            Err(e) => match fs::symlink_metadata(path) {
                Ok(meta) if !meta.is_file() => Content::Corrupt,
                _ => return Err(e),
            },
        }))
    }

    /// Read `path`, removing it if it has expired or is corrupted and the lock is free: a
    /// read never waits for the lock (on a caller's thread, that would stall its runtime),
    /// and what it leaves is removed by a later read, a write or `prune`.
    pub(super) fn read_live(&self, path: &Path) -> io::Result<Option<(Deadline, Vec<u8>)>> {
        match self.read(path)? {
            Content::Live { expiry, value } => Ok(Some((expiry, value))),
            Content::Missing => Ok(None),
            Content::Expired | Content::Corrupt => match self.try_remove_dead(path) {
                // A reader that may not write a shared folder (`permissions = "0640"`) still
                // gets its miss; a writer removes the file later.
                Err(e) if e.kind() != io::ErrorKind::PermissionDenied => Err(e),
                _ => Ok(None),
            },
        }
    }

    /// Remove an expired or corrupted file, checking again under the lock so that a live
    /// value written meanwhile by `add` or `increment` is kept.
    pub(super) fn remove_dead(&self, path: &Path) -> io::Result<()> {
        let _lock = self.lock()?;
        self.remove_if_dead(path)
    }

    /// [`remove_dead`](Self::remove_dead) if the lock is free now, else nothing.
    fn try_remove_dead(&self, path: &Path) -> io::Result<()> {
        match self.try_lock()? {
            Some(_lock) => self.remove_if_dead(path),
            None => Ok(()),
        }
    }

    fn remove_if_dead(&self, path: &Path) -> io::Result<()> {
        if matches!(self.read(path)?, Content::Expired | Content::Corrupt) {
            remove_entry(path)?;
        }
        Ok(())
    }

    pub(super) fn write(&self, path: &Path, expiry: Deadline, value: &[u8]) -> io::Result<()> {
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

    pub(super) fn try_write(&self, path: &Path, expiry: Deadline, value: &[u8]) -> io::Result<()> {
        self.make_folders(path)?;
        let folder = path.parent().unwrap_or(&self.root);
        let mut file = temporary_file(folder)?;
        set_mode(file.as_file(), self.file_mode)?;
        let mut content = Vec::with_capacity(HEADER + value.len());
        content.extend_from_slice(format!("{:010}", header_of(expiry)).as_bytes());
        content.extend_from_slice(value);
        file.write_all(&content)?;
        if expiry < NEVER {
            file.as_file().set_modified(UNIX_EPOCH + expiry)?;
        }
        // The rename replaces a file, a link (not its target) or a FIFO, but not a folder.
        super::given_up::change(|| match file.persist(path) {
            Ok(_) => Ok(()),
            Err(e) if is_real_folder(path) => {
                remove_entry(path)?;
                e.file.persist(path).map(drop).map_err(|e| e.error)
            }
            Err(e) => Err(e.error),
        })
    }

    /// Make the digest folders of `path`, replacing whatever else sits where one belongs:
    /// writing through a planted link could put the file anywhere.
    pub(super) fn make_folders(&self, path: &Path) -> io::Result<()> {
        if self.folders_in_place(path) {
            return Ok(());
        }
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
    pub(super) fn make_root(&self) -> io::Result<()> {
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
}

/// The expiry in a file's first bytes: exactly [`HEADER`] ASCII digits, else `None` (not a
/// cache file).
pub(super) fn parse_expiry(header: &[u8]) -> Option<u64> {
    Some(header)
        .filter(|header| header.len() == HEADER && header.iter().all(u8::is_ascii_digit))
        .and_then(|header| std::str::from_utf8(header).ok()?.parse::<u64>().ok())
}

/// Now, since the Unix epoch.
fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The deadline of an item stored now for `ttl`.
pub(super) fn expiry_of(ttl: Ttl) -> Deadline {
    match ttl {
        None => NEVER,
        Some(seconds) => now()
            .saturating_add(Duration::from_secs(seconds))
            .min(NEVER),
    }
}

/// The header of an item expiring at `expiry`: whole seconds, rounded up, so that a reader
/// of the header alone (Python cachy) never drops an item early.
fn header_of(expiry: Deadline) -> u64 {
    (expiry.as_secs() + u64::from(expiry.subsec_nanos() > 0)).min(FOREVER)
}

/// The exact deadline of a file whose header says `header` seconds: its modification time
/// when that lies within the second before (where this store puts it), else the header.
/// A file another program wrote (Python cachy writes it at least a minute before its
/// expiry) keeps its header's deadline, and a modification time changed by someone else
/// moves the deadline by less than a second.
fn deadline_of(header: u64, meta: &fs::Metadata) -> Deadline {
    let whole = Duration::from_secs(header);
    if header >= FOREVER {
        return NEVER;
    }
    match meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
    {
        Some(modified) if modified <= whole && modified + Duration::from_secs(1) > whole => {
            modified
        }
        _ => whole,
    }
}

/// How long an item expiring at `expiry` has left.
pub(super) fn lifetime_of(expiry: Deadline) -> Lifetime {
    if expiry >= NEVER {
        Lifetime::Forever
    } else {
        Lifetime::Remaining(expiry.saturating_sub(now()))
    }
}

pub(super) fn is_real_folder(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir())
}

/// Remove whatever is at `path` without following links: a file or a link is unlinked, a
/// folder removed with its contents (links inside are unlinked, never followed). Whether
/// something was there.
pub(super) fn remove_entry(path: &Path) -> io::Result<bool> {
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

pub(super) fn is_entry_folder(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        // Digests are lower-case hex: `AB/` is not a folder the store (or Python cachy) writes.
        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Open an existing file to read, refusing a link at its name (a read could otherwise return
/// any file the process may read) and not waiting on a FIFO (opening one blocks until a
/// writer comes).
pub(super) fn open_no_follow(path: &Path) -> io::Result<File> {
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
pub(super) fn make_folder(path: &Path, mode: u32) -> io::Result<()> {
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
pub(super) fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    #[cfg(not(unix))]
    let _ = (file, mode);
    Ok(())
}
