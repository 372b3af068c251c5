//! Opening small input files (manifests, `params.json`, `config.json`, `tokenizer.model`)
//! without being fooled by what sits at the path: the file is opened first (non-blocking,
//! so a FIFO cannot hang the open) and the *opened handle* is `fstat`ed, so only a regular
//! file is read, and only up to a size cap (a link to `/dev/zero` reports size 0 and never
//! ends; a FIFO has no size at all).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Largest `params.json` / `config.json` read (real ones are under 2 KB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Open `path` for reading and check, on the opened handle, that it is a regular file.
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK);
    }
    let f = o.open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        let what = if m.is_dir() {
            "a folder"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {what}"),
        ));
    }
    Ok((f, m.len()))
}

/// Read a whole regular file of at most `cap` bytes (checked before and while reading).
pub(crate) fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let (f, len) = open_regular(path)?;
    let too_big = |n: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("is {n} bytes, more than the {cap} bytes allowed for this file"),
        )
    };
    if len > cap {
        return Err(too_big(len));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(too_big(buf.len() as u64));
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_string(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_capped(path, cap)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn fifos_devices_and_oversized_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read_capped(&fifo, 10).is_err());
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(read_capped(&zero, 10).is_err());
        let big = dir.path().join("big");
        std::fs::write(&big, [0u8; 11]).unwrap();
        assert!(read_capped(&big, 10).is_err());
        assert_eq!(read_capped(&big, 11).unwrap().len(), 11);
        assert!(read_capped(dir.path(), 10).is_err());
    }
}
