//! The file store's layout on disk: where a key's file is, its header, reading and writing
//! it without following links, the lock file, and folders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::*;

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

    /// Whether the opened `file` is `path` itself, reached through no link in its digest
    /// folders: its real path (one `readlink` of `/proc/self/fd`, on Linux) is the real root
    /// followed by the digest path. One system call instead of a `lstat` per folder; when it
    /// cannot tell (another system, no `/proc`, a root replaced meanwhile), the folders are
    /// checked one by one.
    fn opened_in_place(&self, file: &File, path: &Path) -> bool {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            self.real_path(path).is_some_and(|expected| {
                fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
                    .is_ok_and(|real| real == expected)
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (file, path);
            false
        }
    }

    /// `path` (under the root) under the root's real path, once the root exists.
    #[cfg(target_os = "linux")]
    fn real_path(&self, path: &Path) -> Option<PathBuf> {
        let relative = path.strip_prefix(&self.root).ok()?;
        let real_root = match self.real_root.get() {
            Some(root) => root,
            None => {
                let root = fs::canonicalize(&self.root).ok()?;
                self.real_root.get_or_init(|| root)
            }
        };
        Some(real_root.join(relative))
    }

    /// Whether the digest folders of `path` all exist as real folders, told by one `openat2`
    /// of the innermost that follows no link (see
    /// [`open_following_no_link`](Self::open_following_no_link));
    /// false where that cannot tell, and the folders are then checked one by one.
    fn folders_in_place(&self, path: &Path) -> bool {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::OFlags;
            let Some(folder) = path.parent().filter(|folder| *folder != self.root) else {
                return false;
            };
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            matches!(self.open_following_no_link(folder, flags), Some(Ok(_)))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = path;
            false
        }
    }

    /// Open `path` for reading in one system call that follows no link at all, which checks
    /// before opening what [`opened_in_place`](Self::opened_in_place) checks after. `None`
    /// where that cannot tell (see [`open_following_no_link`](Self::open_following_no_link))
    /// or when the open failed for another reason than a missing file: a link on the way,
    /// say, which the slower path then tells from a missing file.
    fn open_in_place(&self, path: &Path) -> Option<io::Result<File>> {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::OFlags;
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            match self.open_following_no_link(path, flags)? {
                Ok(fd) => Some(Ok(File::from(fd))),
                Err(rustix::io::Errno::NOENT) => Some(Err(io::ErrorKind::NotFound.into())),
                Err(_) => None,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = path;
            None
        }
    }

    /// `openat2` of `path` (under the root) at its real path with `RESOLVE_NO_SYMLINKS`: a
    /// link anywhere on the way makes it fail. `None` where it cannot be used: a root not
    /// there yet, or no `openat2` (a kernel before 5.6, a sandbox refusing it; remembered
    /// for the process).
    #[cfg(target_os = "linux")]
    fn open_following_no_link(
        &self,
        path: &Path,
        flags: rustix::fs::OFlags,
    ) -> Option<rustix::io::Result<std::os::fd::OwnedFd>> {
        use rustix::fs::{CWD, Mode, ResolveFlags, openat2};
        use std::sync::atomic::AtomicBool;
        static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return None;
        }
        let real = self.real_path(path)?;
        match openat2(CWD, &real, flags, Mode::empty(), ResolveFlags::NO_SYMLINKS) {
            Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                UNSUPPORTED.store(true, Ordering::Relaxed);
                None
            }
            opened => Some(opened),
        }
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

    /// Read `path`, removing it if it has expired or is corrupted.
    pub(super) fn read_live(&self, path: &Path) -> io::Result<Option<(Deadline, Vec<u8>)>> {
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
    pub(super) fn remove_dead(&self, path: &Path) -> io::Result<()> {
        let _lock = self.lock()?;
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
        match file.persist(path) {
            Ok(_) => Ok(()),
            Err(e) if is_real_folder(path) => {
                remove_entry(path)?;
                e.file.persist(path).map(drop).map_err(|e| e.error)
            }
            Err(e) => Err(e.error),
        }
    }

    /// Remove the file `path` of a digest folder, reached through no link: unlinking never
    /// follows a link at the file's own name, but one planted where a digest folder belongs
    /// would lead out of the store. On Linux the folder is opened following no link and the
    /// file unlinked relative to it, so a folder swapped for a link after the check is never
    /// gone through; elsewhere the folders are checked, then the path unlinked. Whether the
    /// file was there to remove (not renamed or removed meanwhile, nor behind a link).
    pub(super) fn remove_in_place(&self, path: &Path) -> io::Result<bool> {
        #[cfg(target_os = "linux")]
        if let (Some(folder), Some(name)) = (path.parent(), path.file_name()) {
            use rustix::fs::{AtFlags, OFlags};
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            // A failed open (a link on the way, the folder gone) is told apart below.
            if let Some(Ok(folder)) = self.open_following_no_link(folder, flags) {
                return match rustix::fs::unlinkat(&folder, name, AtFlags::empty()) {
                    Ok(()) => Ok(true),
                    Err(rustix::io::Errno::NOENT) => Ok(false),
                    Err(e) => Err(e.into()),
                };
            }
        }
        if !self.folders_are_real(path)? {
            return Ok(false);
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
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

    /// The lock for changes that read before they write (`add`, `increment`, `forget`,
    /// removing a dead file, `flush`): exclusive.
    pub(super) fn lock(&self) -> io::Result<File> {
        let file = self.lock_file()?;
        file.lock()?;
        Ok(file)
    }

    /// The lock for a plain write: shared, so writers of different keys never wait for each
    /// other, yet a removal of a dead file cannot delete a value written meanwhile, nor a
    /// flush move a folder away between its making and the rename into it.
    pub(super) fn lock_shared(&self) -> io::Result<File> {
        let file = self.lock_file()?;
        file.lock_shared()?;
        Ok(file)
    }

    pub(super) fn lock_file(&self) -> io::Result<File> {
        self.make_root()?;
        let path = self.root.join(LOCK_FILE);
        for _ in 0..ATTEMPTS {
            // The lock file nearly always exists: open it first. Read-only is enough for
            // flock, and lets readers of a shared folder lock it.
            match open_no_follow(&path) {
                Ok(file) if file.metadata()?.is_file() => return Ok(file),
                // A folder or FIFO planted at the lock's name.
                Ok(_) => {
                    remove_entry(&path)?;
                }
                // Not made yet, or removed meanwhile: create it below.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // A link, refused by O_NOFOLLOW: remove it, never its target.
                Err(_) if !fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_file()) => {
                    remove_entry(&path)?;
                }
                Err(e) => return Err(e),
            }
            // O_EXCL never follows a link: a dangling one planted here does not create its
            // target.
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    set_mode(&file, self.file_mode)?;
                    return Ok(file);
                }
                // Made meanwhile by another writer: open that one.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "{} keeps being replaced by something that is not a file",
            path.display()
        )))
    }

    /// Remove every entry folder; `on_progress` is told how many of the folders taken out of
    /// the namespace have been removed, and of how many.
    pub(super) fn flush(&self, on_progress: &mut dyn FnMut(u64, u64)) -> io::Result<()> {
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
        let total = trash.len() as u64;
        on_progress(0, total);
        for (done, folder) in (1..).zip(&trash) {
            remove_entry(folder)?;
            on_progress(done, total);
        }
        Ok(())
    }
}

/// A name no other flush uses, in this process or another.
pub(super) fn trash_name() -> String {
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
        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A new temporary file in `folder`, named [`TEMP_PREFIX`] and [`TEMP_RANDOM`] random letters
/// and digits: the names [`is_temporary_name`] recognises.
pub(super) fn temporary_file(folder: &Path) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .rand_bytes(TEMP_RANDOM)
        .tempfile_in(folder)
}

/// Whether `name` is one [`temporary_file`] gives: [`TEMP_PREFIX`] then [`TEMP_RANDOM`] ASCII
/// letters or digits, as `tempfile` draws them. Nothing else is taken for the store's own.
pub(super) fn is_temporary_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(|n| n.strip_prefix(TEMP_PREFIX))
        .is_some_and(|random| {
            random.len() == TEMP_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// The size of `entry`, found in a digest folder, if it is a temporary file of the store whose
/// write is over: a regular file (a link or folder by that name is not the store's) untouched
/// for longer than [`ABANDONED_AFTER`]. `None` for anything else, or if it is gone.
pub(super) fn abandoned_size(entry: &fs::DirEntry, now: SystemTime) -> io::Result<Option<u64>> {
    if !is_temporary_name(&entry.file_name()) {
        return Ok(None);
    }
    // Describes a link rather than following it (an `lstat`, not a `stat`).
    let meta = match entry.metadata() {
        Ok(meta) => meta,
        // Renamed into place or removed since the folder was listed.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let abandoned = meta.is_file()
        && earliest_time(&meta)
            .and_then(|time| now.duration_since(time).ok())
            .is_some_and(|age| age > ABANDONED_AFTER);
    Ok(abandoned.then_some(meta.len()))
}

/// The earliest of a file's modification, change and creation times, as far as the platform
/// keeps them. A write sets each of them to the time it runs, or later (it moves the
/// modification time to the value's expiry, in the future, just before the rename), so every
/// time of a temporary file whose write is still going is at least the write's start, and
/// any one older than a minute shows the write is over. The modification time alone would
/// keep a file whose writer died just after moving it to a far-off expiry until then; the
/// change time, which nothing can set back, covers that. The modification time still counts
/// so that a copy made with its times (a restored backup, a test) need not wait a minute more.
fn earliest_time(meta: &fs::Metadata) -> Option<SystemTime> {
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        u64::try_from(meta.ctime())
            .ok()
            .map(|seconds| UNIX_EPOCH + Duration::new(seconds, meta.ctime_nsec() as u32))
    };
    #[cfg(not(unix))]
    let changed = None;
    [meta.modified().ok(), meta.created().ok(), changed]
        .into_iter()
        .flatten()
        .min()
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
