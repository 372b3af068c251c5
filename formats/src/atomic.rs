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
pub fn unregister(path: &Path) {
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
pub fn temp_prefix(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

/// The folder `dest` goes in ("." for a bare name).
pub fn parent_dir(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsync a folder, so a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Create a fresh, empty temporary folder beside `dest` (exclusive, random name, mode 0777
/// less umask), registered for cleanup on a signal. Returns its path.
pub fn create_temp_dir(dest: &Path) -> io::Result<PathBuf> {
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
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// The open file, for `set_len`, `metadata` and the like.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("AtomicFile used after commit")
    }

    /// Flush, fsync, rename to the final name and fsync the folder.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let f = self.file.take().expect("AtomicFile committed twice");
        let synced = f.sync_all();
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
}
