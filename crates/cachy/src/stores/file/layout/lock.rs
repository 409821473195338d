//! The store's lock file, taken shared or exclusive, and the flush that holds it while it takes
//! the entry folders out of the namespace.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

impl Layout {
    /// The lock for changes that read before they write (`add`, `increment`, `forget`,
    /// removing a dead file, `flush`): exclusive.
    pub(in crate::stores::file) fn lock(&self) -> io::Result<File> {
        let file = self.lock_file()?;
        file.lock()?;
        Ok(file)
    }

    /// The lock for a plain write: shared, so writers of different keys never wait for each
    /// other, yet a removal of a dead file cannot delete a value written meanwhile, nor a
    /// flush move a folder away between its making and the rename into it.
    pub(in crate::stores::file) fn lock_shared(&self) -> io::Result<File> {
        let file = self.lock_file()?;
        file.lock_shared()?;
        Ok(file)
    }

    /// [`lock`](Self::lock) if it is free now; `None` if another holder has it.
    pub(in crate::stores::file) fn try_lock(&self) -> io::Result<Option<File>> {
        let file = self.lock_file()?;
        taken(file.try_lock(), file)
    }

    /// [`lock_shared`](Self::lock_shared) if it is free now; `None` if another holder has
    /// it exclusively.
    pub(in crate::stores::file) fn try_lock_shared(&self) -> io::Result<Option<File>> {
        let file = self.lock_file()?;
        taken(file.try_lock_shared(), file)
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
    pub(in crate::stores::file) fn flush(
        &self,
        on_progress: &mut dyn FnMut(u64, u64),
    ) -> io::Result<()> {
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
                    let moved = || fs::rename(entry.path(), &to);
                    match crate::stores::file::given_up::change(moved) {
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

/// The lock `file` if trying it took it, `None` if it is held elsewhere.
fn taken(tried: Result<(), std::fs::TryLockError>, file: File) -> io::Result<Option<File>> {
    match tried {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
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
