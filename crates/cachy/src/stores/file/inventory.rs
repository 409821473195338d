//! Counting what a cache folder holds, for [`FileStore::inventory`]: a read-only walk of the
//! digest folders that never follows a link and reads only each file's header; and the same
//! walk removing the temporary files killed writers left, for [`FileStore::prune`]; what
//! [`Inspect`] offers of a file store.

use super::*;
use crate::inspect::{
    Census, Inspect, Inventory, Location, OnProgress as OnInspectProgress, Progress, Pruned, Tally,
    unsupported,
};

/// Count one more file of `bytes` in `tally`.
fn count(tally: &mut Tally, bytes: u64) {
    tally.files += 1;
    tally.bytes += bytes;
}

/// A callback told how far a walk of the cache folder has got.
type OnProgress<'a> = &'a mut dyn FnMut(&InventoryProgress);

/// What a walk of the cache folder finds in one file it looks at.
enum Found {
    /// A temporary file a killed writer left over a minute ago, of this many bytes.
    Abandoned(u64),
    /// A value file: the expiry its header says (`None`: a corrupt header), and its bytes.
    Value { expiry: Option<u64>, bytes: u64 },
}

impl Layout {
    /// Walk the digest folders below the root, showing `visit` every abandoned temporary
    /// file and every value file (read only as far as its header), and telling
    /// `on_progress` how far the walk has got. Temporary files of writes in progress, and
    /// anything else the store never reads, are not shown. A folder or file that cannot be
    /// read (another user's), or that `visit` fails on, does not end the walk: the rest is
    /// still walked (a prune still removes what it can), and the first such error is the
    /// result.
    fn survey(
        &self,
        on_progress: OnProgress<'_>,
        visit: &mut dyn FnMut(&Path, Found) -> Result<()>,
    ) -> Result<()> {
        let now = SystemTime::now();
        let digest_length = self.hash.digest_length();
        let mut progress = InventoryProgress::default();
        let folders = self.entry_folders(&self.root)?;
        progress.folders = folders.len() as u64;
        on_progress(&progress);
        let mut first_failure = None;
        for folder in folders {
            let failed = &mut |e| {
                first_failure.get_or_insert(e);
            };
            self.walk_below(&folder, 1, failed, &mut |entry| {
                let path = entry.path();
                if let Some(bytes) = abandoned_size(entry, now).map_err(|e| io_error(&path, e))? {
                    return visit(&path, Found::Abandoned(bytes));
                }
                let is_value_name = entry.file_name().to_str().is_some_and(|n| {
                    n.len() == digest_length
                        && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                });
                if !is_value_name {
                    return Ok(());
                }
                let Some((expiry, bytes)) = read_header(&path).map_err(|e| io_error(&path, e))?
                else {
                    return Ok(());
                };
                progress.files += 1;
                on_progress(&progress);
                visit(&path, Found::Value { expiry, bytes })
            });
            progress.folders_done += 1;
            on_progress(&progress);
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// Count the value files below the root, by what reading them would find, and the
    /// abandoned temporary files.
    pub(super) fn inventory(&self, on_progress: OnProgress<'_>) -> Result<Inventory> {
        let now = now_seconds();
        let mut inventory = Inventory::default();
        self.survey(on_progress, &mut |_, found| {
            match found {
                Found::Abandoned(bytes) => count(&mut inventory.abandoned, bytes),
                Found::Value {
                    expiry: None,
                    bytes,
                } => count(&mut inventory.corrupt, bytes),
                Found::Value {
                    expiry: Some(expiry),
                    bytes,
                } if expiry as f64 <= now => count(&mut inventory.expired, bytes),
                Found::Value { bytes, .. } => count(&mut inventory.live, bytes),
            }
            Ok(())
        })?;
        Ok(inventory)
    }

    /// Remove the abandoned temporary files, and the expired and corrupt values, below the
    /// root (see [`FileStore::prune`]), telling `on_progress` how far it has got; what was
    /// removed.
    pub(super) fn prune(&self, on_progress: OnProgress<'_>) -> Result<Tally> {
        let now = now_seconds();
        let mut removed = Tally::default();
        self.survey(on_progress, &mut |path, found| {
            match found {
                Found::Abandoned(bytes) => {
                    if self.remove_in_place(path).map_err(|e| io_error(path, e))? {
                        count(&mut removed, bytes);
                    }
                }
                Found::Value { expiry, bytes } if expiry.is_none_or(|at| at as f64 <= now) => {
                    // Checked again under the store's lock, as a read does: a value written
                    // meanwhile by `add` or `increment` is kept.
                    self.remove_dead(path).map_err(|e| io_error(path, e))?;
                    if !path.exists() {
                        count(&mut removed, bytes);
                    }
                }
                Found::Value { .. } => {}
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// The two-hex-digit folders in `folder`, sorted; none if it is gone. Links are left out:
    /// reads never go through them, so what they point to is not the store's.
    fn entry_folders(&self, folder: &Path) -> Result<Vec<PathBuf>> {
        let entries = match fs::read_dir(folder) {
            Ok(entries) => entries,
            // Removed meanwhile by a flush, or never written.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(folder, e)),
        };
        let mut folders = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(folder, e))?;
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            if is_dir && is_entry_folder(&entry.file_name()) {
                folders.push(entry.path());
            }
        }
        folders.sort();
        Ok(folders)
    }

    /// Call `visit` with every entry of the innermost digest folders below `folder`, which is
    /// `depth` levels below the root: where the store writes values and their temporary files.
    /// What cannot be read, and what `visit` fails on, is told to `failed`, and the walk goes
    /// on.
    fn walk_below(
        &self,
        folder: &Path,
        depth: usize,
        failed: &mut dyn FnMut(Error),
        visit: &mut dyn FnMut(&fs::DirEntry) -> Result<()>,
    ) {
        if depth < self.hash.folder_levels() {
            match self.entry_folders(folder) {
                Ok(children) => {
                    for child in children {
                        self.walk_below(&child, depth + 1, failed, visit);
                    }
                }
                Err(e) => failed(e),
            }
            return;
        }
        let entries = match fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => return failed(io_error(folder, e)),
        };
        for entry in entries {
            if let Err(e) = entry
                .map_err(|e| io_error(folder, e))
                .and_then(|e| visit(&e))
            {
                failed(e);
            }
        }
    }
}

/// The expiry in the header of the file `path` (`None` if it is not a cache file: a bad
/// header, or a link, folder or FIFO where a value belongs, as reads see it) and the file's
/// size; `None` if it is gone.
fn read_header(path: &Path) -> io::Result<Option<(Option<u64>, u64)>> {
    let file = match open_no_follow(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // A link, refused by O_NOFOLLOW.
        Err(_) if !fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file()) => {
            return Ok(Some((None, 0)));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Some((None, 0)));
    }
    let mut header = Vec::with_capacity(HEADER);
    file.take(HEADER as u64).read_to_end(&mut header)?;
    Ok(Some((parse_expiry(&header), meta.len())))
}

#[async_trait]
impl Inspect for FileStore {
    fn driver(&self) -> &'static str {
        "file"
    }

    fn location(&self) -> Location {
        Location::Path(self.root().to_owned())
    }

    async fn census(&self, progress: OnInspectProgress) -> Result<Census> {
        let on_progress = Box::new(move |walked: &InventoryProgress| {
            progress(Progress::new(
                walked.folders_done,
                Some(walked.folders),
                walked.files,
            ));
        });
        Ok(Census::Files(self.inventory(Some(on_progress)).await?))
    }

    async fn list_keys(&self, _: &str, _: OnInspectProgress) -> Result<Vec<String>> {
        Err(unsupported(
            "list keys",
            "a file store names each file by a hash of its key, so the keys themselves are \
             stored nowhere",
        ))
    }

    async fn prune(&self, progress: OnInspectProgress) -> Result<Pruned> {
        let on_progress = Box::new(move |done: &InventoryProgress| {
            progress(Progress::new(
                done.folders_done,
                Some(done.folders),
                done.files,
            ));
        });
        let removed = FileStore::prune_with_progress(self, on_progress).await?;
        Ok(Pruned {
            items: removed.files,
            bytes: Some(removed.bytes),
        })
    }

    async fn flush_with_progress(&self, progress: OnInspectProgress) -> Result<()> {
        let on_progress = Box::new(move |done, total| {
            progress(Progress::new(done, Some(total), done));
        });
        FileStore::flush_with_progress(self, on_progress).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file the walk fails on (one it cannot read or remove) does not end it: every other
    /// file is still shown, and the first failure is the result.
    #[tokio::test]
    async fn a_walk_goes_on_past_a_failure_and_returns_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path(), HashType::Md5);
        for key in ["a", "b", "c", "d"] {
            store.put(key, b"1", None).await.unwrap();
        }
        let mut shown = 0;
        let walked = store.inner.survey(&mut |_| {}, &mut |path, _| {
            shown += 1;
            if shown == 1 {
                return Err(io_error(
                    path,
                    io::Error::from(io::ErrorKind::PermissionDenied),
                ));
            }
            Ok(())
        });
        assert_eq!(shown, 4, "every value shown");
        let err = walked.unwrap_err();
        assert!(err.to_string().contains("denied"), "{err}");
    }
}
