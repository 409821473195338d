//! Reaching a key's file through no link in one system call where Linux allows it (`openat2`
//! with `RESOLVE_NO_SYMLINKS`, `/proc/self/fd`): opening it, checking its folders, removing it.

#[cfg(target_os = "linux")]
use std::sync::atomic::Ordering;

use super::*;

impl Layout {
    /// Whether the opened `file` is `path` itself, reached through no link in its digest
    /// folders: its real path (one `readlink` of `/proc/self/fd`, on Linux) is the real root
    /// followed by the digest path. One system call instead of a `lstat` per folder; when it
    /// cannot tell (another system, no `/proc`, a root replaced meanwhile), the folders are
    /// checked one by one.
    pub(super) fn opened_in_place(&self, file: &File, path: &Path) -> bool {
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
    pub(super) fn folders_in_place(&self, path: &Path) -> bool {
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
    pub(super) fn open_in_place(&self, path: &Path) -> Option<io::Result<File>> {
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

    /// Remove the file `path` of a digest folder, reached through no link: unlinking never
    /// follows a link at the file's own name, but one planted where a digest folder belongs
    /// would lead out of the store. On Linux the folder is opened following no link and the
    /// file unlinked relative to it, so a folder swapped for a link after the check is never
    /// gone through; elsewhere the folders are checked, then the path unlinked. Whether the
    /// file was there to remove (not renamed or removed meanwhile, nor behind a link).
    pub(in crate::stores::file) fn remove_in_place(&self, path: &Path) -> io::Result<bool> {
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
}
