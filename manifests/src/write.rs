//! Writing a checksum list over files a command produced (`checklist.chk` beside Meta shards,
//! `SHA256SUMS` in an exported folder, `OUT.sha256` beside a file), atomically, in the GNU
//! format `md5sum -c` / `sha256sum -c` read (see [`crate::checksums`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use llama_formats::atomic::AtomicFile;
use rayon::prelude::*;

use crate::checksums;
use crate::digest::{self, Algo, DigestError};

/// Why a list could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file could not be hashed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A file is not inside the list's folder, or its name is not UTF-8.
    #[error("{0}: not a UTF-8 path inside the list's folder")]
    Outside(String),
    /// Writing the list failed.
    #[error("{path}: {source}")]
    Io {
        /// The list.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Hash `files` (paths inside `out`'s folder; in parallel) with `algo` and write the list to
/// `out` with names relative to that folder. Returns `out`.
pub fn write_list(files: &[PathBuf], algo: Algo, out: &Path) -> Result<PathBuf, WriteError> {
    let base = out.parent().unwrap_or(Path::new(""));
    let rows: Vec<(String, String)> = files
        .par_iter()
        .map(|f| {
            let rel = f
                .strip_prefix(base)
                .ok()
                .and_then(|r| r.to_str())
                .filter(|r| !r.is_empty())
                .ok_or_else(|| WriteError::Outside(f.display().to_string()))?;
            let (_, d) = digest::hash_file(f, &[algo], &|_| {})?;
            let hex = d.into_iter().next().map(|(_, h)| h).unwrap_or_default();
            Ok((hex, rel.to_string()))
        })
        .collect::<Result<_, WriteError>>()?;
    let text = checksums::write_gnu(rows.iter().map(|(h, n)| (h.as_str(), n.as_str())));
    let io = |source| WriteError::Io {
        path: out.display().to_string(),
        source,
    };
    let mut f = AtomicFile::create(out).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.commit().map_err(io)?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_list_that_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("consolidated.00.pth");
        std::fs::write(&a, b"abc").unwrap();
        let out = write_list(&[a], Algo::Md5, &dir.path().join("checklist.chk")).unwrap();
        let text = std::fs::read_to_string(out).unwrap();
        assert_eq!(
            text,
            "900150983cd24fb0d6963f7d28e17f72  consolidated.00.pth\n"
        );
        let outside = write_list(
            &[PathBuf::from("/etc/hostname")],
            Algo::Md5,
            &dir.path().join("x.chk"),
        );
        assert!(matches!(outside, Err(WriteError::Outside(_))));
    }
}
