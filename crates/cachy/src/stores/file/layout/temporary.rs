//! The temporary files writes go through, and how an abandoned one (its writer killed
//! mid-write) is told from a write in progress.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::super::shared::*;

/// A new temporary file in `folder`, named [`TEMP_PREFIX`] and [`TEMP_RANDOM`] random letters
/// and digits: the names [`is_temporary_name`] recognises.
pub(in crate::stores::file) fn temporary_file(
    folder: &Path,
) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .rand_bytes(TEMP_RANDOM)
        .tempfile_in(folder)
}

/// Whether `name` is one [`temporary_file`] gives: [`TEMP_PREFIX`] then [`TEMP_RANDOM`] ASCII
/// letters or digits, as `tempfile` draws them. Nothing else is taken for the store's own.
pub(in crate::stores::file) fn is_temporary_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(|n| n.strip_prefix(TEMP_PREFIX))
        .is_some_and(|random| {
            random.len() == TEMP_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// The size of `entry`, found in a digest folder, if it is a temporary file of the store whose
/// write is over: a regular file (a link or folder by that name is not the store's) untouched
/// for longer than [`ABANDONED_AFTER`]. `None` for anything else, or if it is gone.
pub(in crate::stores::file) fn abandoned_size(
    entry: &fs::DirEntry,
    now: SystemTime,
) -> io::Result<Option<u64>> {
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
