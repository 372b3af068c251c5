//! Outputs that appear under their final name only when complete: write to a temporary
//! sibling `.NAME.tmp-XXXXXXXXXXXX` (random suffix, created exclusively with `O_EXCL`, so a
//! symlink or file planted there is never followed or reused), `commit()` fsyncs the file,
//! renames it over the final name (replacing a link there, never writing through it) and
//! fsyncs the folder. Dropping an uncommitted file removes the temporary.
//!
//! The release build aborts on panic and a signal ends the process without unwinding, so
//! `Drop` alone cannot promise cleanup: every live temporary is also kept in a process-wide
//! registry that [`remove_registered`] empties; the CLI calls it from its SIGINT/SIGTERM
//! handler thread.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporary files and folders alive in this process, removed by [`remove_registered`].
static REGISTRY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Remember `path` (a temporary file or folder) so a signal handler can remove it.
pub fn register(path: &Path) {
    if let Ok(mut r) = REGISTRY.lock() {
        r.push(path.to_path_buf());
    }
}

/// Forget `path` (it was renamed to its final name or removed).
pub(crate) fn unregister(path: &Path) {
    if let Ok(mut r) = REGISTRY.lock() {
        r.retain(|p| p != path);
    }
}

/// Remove every registered temporary (files, and folders with their contents). Called on
/// SIGINT/SIGTERM before the process ends; safe to call more than once.
pub fn remove_registered() {
    remove_where(|_| true)
}

fn remove_where(pred: impl Fn(&Path) -> bool) {
    let paths: Vec<PathBuf> = {
        let mut r = match REGISTRY.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let (take, keep) = std::mem::take(&mut *r).into_iter().partition(|p| pred(p));
        *r = keep;
        take
    };
    for p in paths.iter().rev() {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir_all(p);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(p);
            }
            Err(_) => {}
        }
    }
}

/// The prefix of temporaries made for `dest`: `.NAME.tmp-` (a random suffix follows).
pub(crate) fn temp_prefix(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

/// The folder `dest` goes in ("." for a bare name).
pub(crate) fn parent_dir(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsync a folder, so a rename inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Create a fresh, empty temporary folder beside `dest` (exclusive, random name, mode 0777
/// less umask), registered for cleanup on a signal. Returns its path.
pub(crate) fn create_temp_dir(dest: &Path) -> io::Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix(&temp_prefix(dest))
        .rand_bytes(12)
        .tempdir_in(parent_dir(dest))?
        .keep();
    register(&dir);
    Ok(dir)
}

/// A file being written under a temporary name.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Create the temporary file for `dest` (its folder must exist): a new file with a
    /// random name, created with `O_CREAT|O_EXCL` (never following a symlink), mode 0666
    /// less umask like any output.
    pub fn create(dest: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let dest = dest.as_ref().to_path_buf();
        let prefix = temp_prefix(&dest);
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).rand_bytes(12);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            b.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let (file, tmp) = b
            .tempfile_in(parent_dir(&dest))?
            .keep()
            .map_err(|e| e.error)?;
        register(&tmp);
        Ok(AtomicFile {
            file: Some(file),
            tmp,
            dest,
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary path being written.
    #[cfg(test)]
    pub(crate) fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// The open file, for `set_len`, `metadata` and the like.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("AtomicFile used after commit")
    }

    /// Flush, fsync, rename to the final name and fsync the folder.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let f = self.file.take().expect("AtomicFile committed twice");
        let synced = f.sync_all().and_then(|_| refuse_special(&self.dest));
        drop(f);
        if let Err(e) = synced.and_then(|_| std::fs::rename(&self.tmp, &self.dest)) {
            let _ = std::fs::remove_file(&self.tmp);
            unregister(&self.tmp);
            return Err(e);
        }
        unregister(&self.tmp);
        sync_dir(parent_dir(&self.dest))?;
        Ok(self.dest.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file().seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
            unregister(&self.tmp);
        }
    }
}

/// A file type that is neither a file, a folder nor a link: never renamed over or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    /// A character device (`/dev/null`, a terminal).
    CharDevice,
    /// A named pipe.
    Fifo,
    /// A block device.
    BlockDevice,
    /// A Unix socket.
    Socket,
}

impl Special {
    /// What `ft` is, when it is special.
    pub(crate) fn of(ft: std::fs::FileType) -> Option<Special> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_char_device() {
                return Some(Special::CharDevice);
            }
            if ft.is_fifo() {
                return Some(Special::Fifo);
            }
            if ft.is_block_device() {
                return Some(Special::BlockDevice);
            }
            if ft.is_socket() {
                return Some(Special::Socket);
            }
        }
        let _ = ft;
        None
    }

    /// Its name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Special::CharDevice => "character device",
            Special::Fifo => "FIFO",
            Special::BlockDevice => "block device",
            Special::Socket => "socket",
        }
    }
}

/// Refuse to rename over or remove `dest` when it is [`Special`] itself (a link to one is
/// replaced as a link): such a name is never replaced (see [`crate::output`], which writes
/// through devices and FIFOs instead).
fn refuse_special(dest: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if Special::of(m.file_type()).is_some() => Err(io::Error::other(format!(
            "{} is not a regular file; it is never replaced",
            dest.display()
        ))),
        _ => Ok(()),
    }
}

/// Why an output could not be prepared or put in place.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output exists and replacing it was not asked for.
    #[error("{path}: output exists")]
    Exists {
        /// The output.
        path: PathBuf,
    },
    /// The output is a symbolic link to a folder: the result would replace the link, not
    /// fill the folder it names.
    #[error("{path}: is a symbolic link to a folder ({target}); give the folder itself or remove the link")]
    LinkToFolder {
        /// The link.
        path: PathBuf,
        /// Where it leads.
        target: PathBuf,
    },
    /// A file output was given the name of a folder.
    #[error("{path}: is a folder; the output is a file")]
    IsFolder {
        /// The folder.
        path: PathBuf,
    },
    /// The output is a device, FIFO or socket that cannot be written through: it is never
    /// replaced or removed.
    #[error("{path}: is a {kind}, not a regular file; it is never replaced")]
    NotAFile {
        /// The output.
        path: PathBuf,
        /// What it is (`block device`, `socket`, ...).
        kind: &'static str,
    },
    /// A file-system operation failed.
    #[error("{path}: cannot {action}: {error}")]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// What was being done (`create the folder`, `remove the old output`, ...).
        action: &'static str,
        /// The I/O error.
        error: io::Error,
    },
}

fn io_error<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        action,
        error: source,
    }
}

/// Check that `dest` may be written: a symbolic link to a folder is refused, and so is an
/// existing output (a file, or a folder that is not empty) unless `replace`. An empty folder
/// may be filled.
pub fn check_output(dest: &Path, replace: bool) -> Result<(), OutputError> {
    if let Ok(m) = std::fs::symlink_metadata(dest) {
        // A device, FIFO or socket, or a link to one, is never replaced by a finished output.
        let followed = std::fs::metadata(dest).map(|t| t.file_type());
        if let Some(special) = Special::of(followed.unwrap_or(m.file_type())) {
            return Err(OutputError::NotAFile {
                path: dest.to_path_buf(),
                kind: special.name(),
            });
        }
        if m.file_type().is_symlink() && dest.is_dir() {
            return Err(OutputError::LinkToFolder {
                path: dest.to_path_buf(),
                target: std::fs::canonicalize(dest).unwrap_or_else(|_| "REAL_FOLDER".into()),
            });
        }
    } else {
        return Ok(());
    }
    if replace {
        return Ok(());
    }
    let empty_dir = dest.is_dir()
        && std::fs::read_dir(dest)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    if empty_dir {
        Ok(())
    } else {
        Err(OutputError::Exists {
            path: dest.to_path_buf(),
        })
    }
}

/// Create the folder `dest` goes in ("." needs nothing).
pub(crate) fn create_parent(dest: &Path) -> Result<(), OutputError> {
    match dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => {
            std::fs::create_dir_all(parent).map_err(io_error(parent, "create the folder"))
        }
        None => Ok(()),
    }
}

/// [`AtomicFile::create`] for an output file: its folder is created, and a folder at `dest`
/// is refused (a file cannot be renamed over it).
pub fn create_file_output(dest: &Path) -> Result<AtomicFile, OutputError> {
    create_parent(dest)?;
    if dest.is_dir() {
        return Err(OutputError::IsFolder {
            path: dest.to_path_buf(),
        });
    }
    AtomicFile::create(dest).map_err(io_error(dest, "create a temporary file beside it"))
}

/// A folder being written under a temporary name (random, created exclusively beside the
/// final name, registered for removal on a signal). [`AtomicDir::commit`] renames it over
/// the final name, replacing an old output when asked to (or an empty folder), and fsyncs
/// the parent; dropping it uncommitted removes it with everything in it.
#[derive(Debug)]
pub struct AtomicDir {
    tmp: PathBuf,
    dest: PathBuf,
    replace: bool,
    committed: bool,
}

impl AtomicDir {
    /// Create the temporary folder for `dest` (and `dest`'s parent folders). `replace`: an
    /// existing output at `dest` is removed by [`AtomicDir::commit`].
    pub fn create(dest: impl AsRef<Path>, replace: bool) -> Result<AtomicDir, OutputError> {
        let dest = dest.as_ref().to_path_buf();
        create_parent(&dest)?;
        let tmp = create_temp_dir(&dest)
            .map_err(io_error(&dest, "create a temporary folder beside it"))?;
        Ok(AtomicDir {
            tmp,
            dest,
            replace,
            committed: false,
        })
    }

    /// The temporary folder to write into.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Where `p`, a path inside the temporary folder, will be once committed (other paths
    /// are returned unchanged).
    pub fn final_path(&self, p: &Path) -> PathBuf {
        match p.strip_prefix(&self.tmp) {
            Ok(rest) => self.dest.join(rest),
            Err(_) => p.to_path_buf(),
        }
    }

    /// Put the finished folder in place: remove an old output (when created with `replace`)
    /// or an empty folder at the final name, rename, fsync the parent folder.
    pub fn commit(mut self) -> Result<PathBuf, OutputError> {
        let dest = self.dest.clone();
        if let Ok(m) = std::fs::symlink_metadata(&dest) {
            if m.is_dir() && self.replace {
                std::fs::remove_dir_all(&dest).map_err(io_error(&dest, "remove the old output"))?;
            } else if m.is_dir() {
                std::fs::remove_dir(&dest).map_err(|e| match e.kind() {
                    io::ErrorKind::DirectoryNotEmpty => OutputError::Exists { path: dest.clone() },
                    _ => OutputError::Io {
                        path: dest.clone(),
                        action: "replace the empty folder",
                        error: e,
                    },
                })?;
            } else if self.replace {
                refuse_special(&dest).map_err(io_error(&dest, "replace"))?;
                std::fs::remove_file(&dest).map_err(io_error(&dest, "remove the old output"))?;
            } else {
                return Err(OutputError::Exists { path: dest });
            }
        }
        std::fs::rename(&self.tmp, &dest)
            .map_err(io_error(&dest, "rename the finished folder to"))?;
        self.committed = true;
        unregister(&self.tmp);
        sync_dir(parent_dir(&dest)).map_err(io_error(parent_dir(&dest), "sync"))?;
        Ok(dest)
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
            unregister(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commit_creates_the_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"partial").unwrap();
            assert!(!dest.exists());
        }
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp removed on drop"
        );
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"whole").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
    }

    /// Finding 5 of issue 10: the temporary used to be `.NAME.tmp-PID`, created with a plain
    /// create, so a symlink planted there made the output overwrite the link's target.
    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let dest = dir.path().join("out.bin");
        let old_name = dir
            .path()
            .join(format!(".out.bin.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_name).unwrap();
        // The final name is a link too: the rename replaces the link, not its target.
        std::os::unix::fs::symlink(&victim, &dest).unwrap();
        let mut f = AtomicFile::create(&dest).unwrap();
        assert_ne!(f.temp_path(), old_name);
        let suffix = f.temp_path().file_name().unwrap().to_string_lossy();
        assert!(suffix.starts_with(".out.bin.tmp-") && suffix.len() >= ".out.bin.tmp-".len() + 12);
        f.write_all(b"output").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&dest).unwrap().is_file());
        assert_eq!(std::fs::read(&dest).unwrap(), b"output");
    }

    #[test]
    fn registered_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let f = AtomicFile::create(dir.path().join("a")).unwrap();
        let d = create_temp_dir(&dir.path().join("folder")).unwrap();
        std::fs::write(d.join("inner"), b"x").unwrap();
        let tmp = f.temp_path().to_path_buf();
        std::mem::forget(f); // as after an abort: no Drop
                             // remove_registered() with a filter: other tests run in this process.
        remove_where(|p| p.starts_with(dir.path()));
        assert!(!tmp.exists() && !d.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_atomic_dir_appears_only_on_commit_and_replaces_only_when_asked() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("sub/out");
        {
            let d = AtomicDir::create(&dest, false).unwrap();
            std::fs::write(d.path().join("a"), b"1").unwrap();
            assert_eq!(d.final_path(&d.path().join("a")), dest.join("a"));
            assert!(!dest.exists());
        }
        assert_eq!(
            std::fs::read_dir(t.path().join("sub")).unwrap().count(),
            0,
            "dropped uncommitted: removed"
        );
        let d = AtomicDir::create(&dest, false).unwrap();
        std::fs::write(d.path().join("a"), b"1").unwrap();
        d.commit().unwrap();
        assert_eq!(std::fs::read(dest.join("a")).unwrap(), b"1");
        // An existing output: refused, then replaced when asked.
        assert!(matches!(
            check_output(&dest, false),
            Err(OutputError::Exists { .. })
        ));
        check_output(&dest, true).unwrap();
        let d = AtomicDir::create(&dest, false).unwrap();
        assert!(matches!(d.commit(), Err(OutputError::Exists { .. })));
        let d = AtomicDir::create(&dest, true).unwrap();
        std::fs::write(d.path().join("b"), b"2").unwrap();
        d.commit().unwrap();
        assert!(!dest.join("a").exists() && dest.join("b").exists());
        assert_eq!(std::fs::read_dir(t.path().join("sub")).unwrap().count(), 1);
        // An empty folder is filled; a file output refuses a folder.
        let empty = t.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        check_output(&empty, false).unwrap();
        assert!(matches!(
            create_file_output(&empty),
            Err(OutputError::IsFolder { .. })
        ));
        AtomicDir::create(&empty, false).unwrap().commit().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_folder_is_refused_as_an_output() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(t.path().join("real"), &link).unwrap();
        let e = check_output(&link, true).unwrap_err();
        assert!(matches!(e, OutputError::LinkToFolder { .. }), "{e}");
        assert!(e.to_string().contains("real"), "{e}");
    }
}
