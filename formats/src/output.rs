//! Output files that replace only what they may: the policy every command that writes a
//! file (`manifest -o`, `sign -o`, `logits -o`, `--junit`, `check --report`, `quantize`)
//! follows, over [`AtomicFile`].
//!
//! - No file at the name: written under a temporary name and renamed into place.
//! - A regular file, or a symbolic link (the link is replaced, never written through):
//!   refused with [`OutputError::Exists`] unless `replace`; then replaced atomically.
//! - A character device or a FIFO (`/dev/null`, `/dev/stdout` on a terminal or a pipe, a
//!   named pipe), directly or through a symbolic link, and any path inside `/dev` or `/proc`
//!   (`/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`, which name an open descriptor): written
//!   through, in place. Nothing is renamed over such a path or removed, so a device node can
//!   never be turned into a regular file or deleted.
//! - A folder, a symbolic link to one, a block device or a socket: refused.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::atomic::{create_file_output, AtomicFile, OutputError, Special};

/// What is at an output's name, and so how it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// Nothing: a new file appears atomically.
    New,
    /// A regular file or a symbolic link: replaced atomically (only when asked to).
    Replace,
    /// A character device, a FIFO or a descriptor alias: written through in place.
    WriteThrough,
}

/// Whether `path` lies in `/dev` or `/proc` (after resolving its folder), where names stand
/// for devices and open descriptors rather than files to replace.
fn in_device_tree(path: &Path) -> bool {
    let parent = crate::atomic::parent_dir(path);
    let Ok(dir) = std::fs::canonicalize(parent) else {
        return false;
    };
    dir.starts_with("/dev") || dir.starts_with("/proc")
}

/// Decide how `dest` is written, refusing what must not be (see the module's rules).
pub fn classify(dest: &Path, replace: bool) -> Result<OutputKind, OutputError> {
    let lstat = match std::fs::symlink_metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OutputKind::New),
        Err(e) => {
            return Err(OutputError::Io {
                path: dest.to_path_buf(),
                action: "inspect",
                error: e,
            })
        }
    };
    // The type after following links (a dangling link has none: it is replaced as a link).
    let target = std::fs::metadata(dest).ok();
    if target.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(if lstat.file_type().is_symlink() {
            OutputError::LinkToFolder {
                path: dest.to_path_buf(),
                target: std::fs::canonicalize(dest).unwrap_or_else(|_| "REAL_FOLDER".into()),
            }
        } else {
            OutputError::IsFolder {
                path: dest.to_path_buf(),
            }
        });
    }
    let kind = target
        .as_ref()
        .map(|m| m.file_type())
        .unwrap_or(lstat.file_type());
    match Special::of(kind) {
        Some(Special::CharDevice | Special::Fifo) => return Ok(OutputKind::WriteThrough),
        Some(special) => {
            return Err(OutputError::NotAFile {
                path: dest.to_path_buf(),
                kind: special.name(),
            })
        }
        None => {}
    }
    if in_device_tree(dest) {
        return Ok(OutputKind::WriteThrough);
    }
    if replace {
        Ok(OutputKind::Replace)
    } else {
        Err(OutputError::Exists {
            path: dest.to_path_buf(),
        })
    }
}

/// An output file being written: atomically under a temporary name, or in place into a
/// device, FIFO or descriptor alias.
#[derive(Debug)]
pub struct FileOutput {
    inner: Inner,
    dest: PathBuf,
}

#[derive(Debug)]
enum Inner {
    Atomic(AtomicFile),
    Through(File),
}

impl FileOutput {
    /// Open the output `dest` (creating its folder): see the module's rules; `replace`
    /// allows an existing file to be replaced.
    pub fn create(dest: &Path, replace: bool) -> Result<FileOutput, OutputError> {
        let inner = match classify(dest, replace)? {
            OutputKind::New | OutputKind::Replace => Inner::Atomic(create_file_output(dest)?),
            OutputKind::WriteThrough => {
                let regular = std::fs::metadata(dest).is_ok_and(|m| m.is_file());
                let file = OpenOptions::new()
                    .write(true)
                    .truncate(regular)
                    .open(dest)
                    .map_err(|e| OutputError::Io {
                        path: dest.to_path_buf(),
                        action: "open for writing",
                        error: e,
                    })?;
                Inner::Through(file)
            }
        };
        Ok(FileOutput {
            inner,
            dest: dest.to_path_buf(),
        })
    }

    /// The output's name.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Finish: rename a temporary into place (fsynced), or flush a written-through file.
    pub fn commit(self) -> Result<PathBuf, OutputError> {
        let io_err = |action, error| OutputError::Io {
            path: self.dest.clone(),
            action,
            error,
        };
        match self.inner {
            Inner::Atomic(f) => f.commit().map_err(|e| io_err("put the output in place", e)),
            Inner::Through(mut f) => {
                f.flush().map_err(|e| io_err("write", e))?;
                Ok(self.dest)
            }
        }
    }
}

impl Write for FileOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Atomic(f) => f.write(buf),
            Inner::Through(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Atomic(f) => f.flush(),
            Inner::Through(f) => f.flush(),
        }
    }
}

/// Write `bytes` as the output `dest` ([`FileOutput`]'s rules); returns the path written.
pub fn write_output(dest: &Path, replace: bool, bytes: &[u8]) -> Result<PathBuf, OutputError> {
    let mut out = FileOutput::create(dest, replace)?;
    out.write_all(bytes).map_err(|e| OutputError::Io {
        path: dest.to_path_buf(),
        action: "write",
        error: e,
    })?;
    out.commit()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    /// The type of `p` itself (links not followed).
    fn kind(p: &Path) -> std::fs::FileType {
        std::fs::symlink_metadata(p).unwrap().file_type()
    }

    /// Names in `dir` (a temporary left behind shows up here).
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A temporary folder holding one FIFO, `pipe`.
    fn temp_fifo() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        (t, fifo)
    }

    #[test]
    fn a_new_file_appears_and_an_existing_one_needs_replace() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("sub/out.txt");
        write_output(&dest, false, b"one").unwrap();
        let refused = write_output(&dest, false, b"two");
        assert!(matches!(refused, Err(OutputError::Exists { .. })));
        assert_eq!(std::fs::read(&dest).unwrap(), b"one", "untouched");
        write_output(&dest, true, b"two").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        assert_eq!(names(&t.path().join("sub")), ["out.txt"], "no temp left");
    }

    #[test]
    fn a_link_is_replaced_not_written_through() {
        let t = tempfile::tempdir().unwrap();
        let (target, link) = (t.path().join("target"), t.path().join("link"));
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let refused = classify(&link, false);
        assert!(matches!(refused, Err(OutputError::Exists { .. })));
        write_output(&link, true, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(kind(&link).is_file());
        assert_eq!(std::fs::read(&link).unwrap(), b"new");
    }

    #[test]
    fn a_link_to_a_character_device_is_written_through_and_kept() {
        let t = tempfile::tempdir().unwrap();
        let link = t.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        for replace in [false, true] {
            assert_eq!(classify(&link, replace).unwrap(), OutputKind::WriteThrough);
            write_output(&link, replace, b"discarded").unwrap();
            assert!(kind(&link).is_symlink());
        }
        assert!(kind(Path::new("/dev/null")).is_char_device());
        assert_eq!(names(t.path()), ["null"]);
    }

    #[test]
    fn a_fifo_is_written_through_and_stays_a_fifo() {
        let (t, fifo) = temp_fifo();
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || std::fs::read(fifo).unwrap()
        });
        write_output(&fifo, true, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(kind(&fifo).is_fifo());
        assert_eq!(names(t.path()), ["pipe"]);
    }

    /// The atomic writers underneath refuse to rename over, or remove, a FIFO even when a
    /// caller asks to replace the output.
    #[test]
    fn atomic_commits_never_replace_a_fifo() {
        let (t, fifo) = temp_fifo();
        let mut f = AtomicFile::create(&fifo).unwrap();
        f.write_all(b"x").unwrap();
        assert!(f.commit().is_err());
        let d = crate::atomic::AtomicDir::create(&fifo, true).unwrap();
        assert!(d.commit().is_err());
        let early = crate::atomic::check_output(&fifo, true);
        assert!(matches!(early, Err(OutputError::NotAFile { .. })));
        assert!(kind(&fifo).is_fifo());
        assert_eq!(names(t.path()), ["pipe"], "no temp left");
    }

    #[test]
    fn folders_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let folder = classify(t.path(), true);
        assert!(matches!(folder, Err(OutputError::IsFolder { .. })));
        let link = t.path().join("link");
        std::os::unix::fs::symlink(t.path(), &link).unwrap();
        let linked = classify(&link, true);
        assert!(matches!(linked, Err(OutputError::LinkToFolder { .. })));
    }
}
