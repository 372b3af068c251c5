//! Writing a checksum list over files a command produced (`checklist.chk` beside Meta shards,
//! `SHA256SUMS` in an exported folder, `OUT.sha256` beside a file), atomically, in the GNU
//! format `md5sum -c` / `sha256sum -c` read (see [`crate::checksums`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use llama_formats::atomic::AtomicFile;
use llama_formats::export::piped::{OutputTap, TapFactory};
use rayon::prelude::*;

use crate::checksums;
use crate::digest::{self, Algo, DigestError, MultiHasher};

/// Why a list could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file could not be hashed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A checkpoint's tokenizer could not be copied beside the list (a Meta folder's side
    /// files, see [`crate::side_files`]).
    #[error(transparent)]
    Tokenizer(#[from] Box<llama_formats::checkpoint::CheckpointError>),
    /// A file is not inside the list's folder, or its name is not UTF-8.
    #[error("{0}: not a UTF-8 path inside the list's folder")]
    Outside(String),
    /// Writing the list failed.
    #[error("{path}: {error}")]
    Io {
        /// The list.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// Hash `files` (paths inside `out`'s folder; in parallel) with `algo` and write the list to
/// `out` with names relative to that folder. Returns `out`.
pub fn write_list(files: &[PathBuf], algo: Algo, out: &Path) -> Result<PathBuf, WriteError> {
    write_list_known(files, algo, out, &|_| None)
}

/// [`write_list`], taking a file's digest from `known` (e.g. computed while the file was
/// written, see [`DigestTaps`]) instead of reading the file again when it has one.
pub fn write_list_known(
    files: &[PathBuf],
    algo: Algo,
    out: &Path,
    known: &(dyn Fn(&Path) -> Option<String> + Sync),
) -> Result<PathBuf, WriteError> {
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
            let hex = match known(f) {
                Some(hex) => hex,
                None => {
                    let (_, d) = digest::hash_file(f, &[algo], &|_| {})?;
                    d.into_iter().next().map(|(_, h)| h).unwrap_or_default()
                }
            };
            Ok((hex, rel.to_string()))
        })
        .collect::<Result<_, WriteError>>()?;
    let text = checksums::write_gnu(rows.iter().map(|(h, n)| (h.as_str(), n.as_str())));
    let io = |source| WriteError::Io {
        path: out.display().to_string(),
        error: source,
    };
    let mut f = AtomicFile::create(out).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.commit().map_err(io)?;
    Ok(out.to_path_buf())
}

/// Makes a [`DigestTap`] over `algos` for every output file a writer creates.
pub struct DigestTaps {
    algos: Vec<Algo>,
}

impl DigestTaps {
    /// Taps computing `algos` (e.g. sha256 for `SHA256SUMS`, plus md5 for `checklist.chk`).
    pub fn new(algos: &[Algo]) -> DigestTaps {
        DigestTaps {
            algos: algos.to_vec(),
        }
    }
}

impl TapFactory for DigestTaps {
    fn tap(&self, _path: &Path) -> Option<Box<dyn OutputTap>> {
        Some(Box::new(DigestTap::new(&self.algos)))
    }
}

/// Digests of an output file computed from its bytes as they are written. With several
/// algorithms each runs on its own rayon worker over the same buffer.
pub(crate) struct DigestTap {
    hashers: Vec<(Algo, MultiHasher)>,
    failed: Vec<Algo>,
}

impl DigestTap {
    /// A tap computing `algos`.
    pub fn new(algos: &[Algo]) -> DigestTap {
        let mut algos = algos.to_vec();
        algos.sort();
        algos.dedup();
        DigestTap {
            hashers: algos.iter().map(|&a| (a, MultiHasher::new(&[a]))).collect(),
            failed: Vec::new(),
        }
    }
}

impl OutputTap for DigestTap {
    fn update(&mut self, bytes: &[u8]) {
        let failed: Vec<Algo> = if self.hashers.len() > 1 && bytes.len() >= 1 << 16 {
            self.hashers
                .par_iter_mut()
                .filter_map(|(a, h)| h.update(bytes).err().map(|_| *a))
                .collect()
        } else {
            self.hashers
                .iter_mut()
                .filter_map(|(a, h)| h.update(bytes).err().map(|_| *a))
                .collect()
        };
        self.failed.extend(failed);
    }

    /// Digests of the algorithms that did not fail (a failed one is left out, so the list
    /// writer hashes that file by reading it instead).
    fn finish(self: Box<Self>) -> Vec<(String, String)> {
        let failed = self.failed;
        self.hashers
            .into_iter()
            .filter(|(a, _)| !failed.contains(a))
            .filter_map(|(a, h)| {
                let hex = h.finish().ok()?.into_iter().next()?.1;
                Some((a.name().to_string(), hex))
            })
            .collect()
    }
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

    #[test]
    fn a_tap_digests_the_stream_like_the_file_and_the_list_uses_it() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let mut tap: Box<dyn OutputTap> = Box::new(DigestTap::new(&[Algo::Sha256, Algo::Md5]));
        for piece in data.chunks(70_001) {
            tap.update(piece);
        }
        let got = tap.finish();
        assert_eq!(
            got,
            vec![
                (
                    "md5".to_string(),
                    digest::hash_bytes(Algo::Md5, &data).unwrap()
                ),
                (
                    "sha256".to_string(),
                    digest::hash_bytes(Algo::Sha256, &data).unwrap()
                ),
            ]
        );
        // A known digest is written as given, without reading the file.
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.bin");
        std::fs::write(&a, b"abc").unwrap();
        let list = dir.path().join("SHA256SUMS");
        write_list_known(&[a], Algo::Sha256, &list, &|_| Some("00".repeat(32))).unwrap();
        assert_eq!(
            std::fs::read_to_string(&list).unwrap(),
            format!("{}  a.bin\n", "00".repeat(32))
        );
    }
}
