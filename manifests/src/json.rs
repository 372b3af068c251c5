//! The llama-tool JSON manifest (format `llama-tool-manifest`, version 1), specified in
//! `docs/MANIFEST.md`: per file its size, whole-file sha256 and md5 (for comparison with
//! published lists), and digests of fixed-size chunks so one large file verifies on every
//! core at once and a resumed download is checked chunk by chunk; optionally per-tensor
//! content hashes of a checkpoint (see [`crate::tensors`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Algo;

/// The `format` value of every llama-tool manifest.
pub(crate) const FORMAT: &str = "llama-tool-manifest";
/// The version this code writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Default chunk size: 64 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 << 20;
/// Smallest chunk size accepted (caps the chunk list a manifest can make us hold).
pub const MIN_CHUNK_SIZE: u64 = 1 << 16;
/// Largest manifest read (bytes).
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// Whether `path` is named like a llama-tool JSON manifest rather than a checkpoint's own
/// JSON (`params.json`, `config.json`): a `.json` file of another name.
pub fn is_manifest_name(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.to_ascii_lowercase().ends_with(".json") && n != "params.json" && n != "config.json"
    })
}

/// A whole manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Chunk size in bytes of every file's `chunks`.
    pub chunk_size: u64,
    /// Digest of each chunk: `sha256` or `blake3`.
    pub(crate) chunk_algo: String,
    /// The files, paths relative to the manifest's folder, `/`-separated.
    pub files: Vec<FileEntry>,
    /// Per-tensor content hashes of checkpoints (absent when none were computed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tensor_sets: Vec<TensorSet>,
}

/// One file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Whole-file SHA-256 (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Whole-file MD5 (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// Whole-file BLAKE3 (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Digest of each `chunk_size` chunk, in order; the last may be short.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<String>,
}

/// Per-tensor content hashes of one checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TensorSet {
    /// The checkpoint (file or folder) relative to the manifest's folder; `.` for the folder.
    pub checkpoint: String,
    /// Identity scheme; [`crate::tensors::SCHEME`].
    pub scheme: String,
    /// Tensors by canonical (Meta) name, sorted.
    pub tensors: Vec<TensorHash>,
}

/// Identity of one tensor's values.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TensorHash {
    /// Canonical (Meta) name, e.g. `layers.0.attention.wq.weight`.
    pub name: String,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// Hex sha256 of the canonical encoding.
    pub sha256: String,
}

/// Errors of a JSON manifest.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not valid JSON or not of this shape.
    #[error("{file}: line {line}: malformed llama-tool manifest: {error}")]
    Malformed {
        /// The manifest.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// serde's error.
        error: serde_json::Error,
    },
    /// `format` is not [`FORMAT`].
    #[error("{file}: format is {found:?}, expected {FORMAT:?}")]
    Format {
        /// The manifest.
        file: String,
        /// The value found.
        found: String,
    },
    /// `version` is not [`VERSION`].
    #[error("{file}: manifest version {found} is not supported (this llama-tool reads {VERSION})")]
    Version {
        /// The manifest.
        file: String,
        /// The value found.
        found: u32,
    },
    /// `chunk_algo` is neither sha256 nor blake3.
    #[error("{file}: chunk_algo {found:?} must be sha256 or blake3")]
    ChunkAlgo {
        /// The manifest.
        file: String,
        /// The value found.
        found: String,
    },
    /// `chunk_size` below [`MIN_CHUNK_SIZE`].
    #[error("{file}: chunk_size {found} is below the minimum {MIN_CHUNK_SIZE}")]
    ChunkSize {
        /// The manifest.
        file: String,
        /// The value found.
        found: u64,
    },
    /// A digest that is not the algorithm's number of hex digits.
    #[error("{file}: {path}: {algo} must be {} hex digits", algo.hex_len())]
    BadHex {
        /// The manifest.
        file: String,
        /// The entry's path.
        path: String,
        /// The algorithm.
        algo: Algo,
    },
    /// An entry whose chunk digests do not cover its size.
    #[error("{file}: {path}: {count} chunk digests for {size} bytes, expected {expected}")]
    ChunkCount {
        /// The manifest.
        file: String,
        /// The entry's path.
        path: String,
        /// Chunk digests present.
        count: usize,
        /// The entry's size.
        size: u64,
        /// Chunk digests expected.
        expected: u64,
    },
    /// A non-empty entry without any digest.
    #[error("{file}: {path}: no digest")]
    NoDigest {
        /// The manifest.
        file: String,
        /// The entry's path.
        path: String,
    },
}

impl Manifest {
    /// An empty manifest with the given chunking.
    pub fn new(chunk_size: u64, chunk_algo: Algo) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            chunk_size,
            chunk_algo: chunk_algo.name().into(),
            files: Vec::new(),
            tensor_sets: Vec::new(),
        }
    }

    /// The chunk digest algorithm.
    pub(crate) fn chunk_algo(&self) -> Option<Algo> {
        self.chunk_algo.parse().ok()
    }

    /// Parse and validate.
    pub fn parse(text: &str, file: &Path) -> Result<Manifest, JsonError> {
        let fname = file.display().to_string();
        let m: Manifest = serde_json::from_str(text).map_err(|e| JsonError::Malformed {
            file: fname.clone(),
            line: e.line(),
            error: e,
        })?;
        let file = || fname.clone();
        if m.format != FORMAT {
            return Err(JsonError::Format {
                file: file(),
                found: m.format,
            });
        }
        if m.version != VERSION {
            return Err(JsonError::Version {
                file: file(),
                found: m.version,
            });
        }
        let chunk_algo = match m.chunk_algo() {
            Some(a @ (Algo::Sha256 | Algo::Blake3)) => a,
            _ => {
                return Err(JsonError::ChunkAlgo {
                    file: file(),
                    found: m.chunk_algo,
                })
            }
        };
        if m.chunk_size < MIN_CHUNK_SIZE {
            return Err(JsonError::ChunkSize {
                file: file(),
                found: m.chunk_size,
            });
        }
        for f in &m.files {
            let check = |algo: Algo, v: &Option<String>| -> Result<(), JsonError> {
                match v {
                    Some(h)
                        if h.len() != algo.hex_len()
                            || !h.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        Err(JsonError::BadHex {
                            file: file(),
                            path: f.path.clone(),
                            algo,
                        })
                    }
                    _ => Ok(()),
                }
            };
            check(Algo::Sha256, &f.sha256)?;
            check(Algo::Md5, &f.md5)?;
            check(Algo::Blake3, &f.blake3)?;
            if !f.chunks.is_empty() {
                let want = f.size.div_ceil(m.chunk_size);
                if f.chunks.len() as u64 != want {
                    return Err(JsonError::ChunkCount {
                        file: file(),
                        path: f.path.clone(),
                        count: f.chunks.len(),
                        size: f.size,
                        expected: want,
                    });
                }
                for c in &f.chunks {
                    check(chunk_algo, &Some(c.clone()))?;
                }
            }
            if f.sha256.is_none()
                && f.md5.is_none()
                && f.blake3.is_none()
                && f.chunks.is_empty()
                && f.size > 0
            {
                return Err(JsonError::NoDigest {
                    file: file(),
                    path: f.path.clone(),
                });
            }
        }
        Ok(m)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

impl FileEntry {
    /// Whole-file digests it carries.
    pub fn digests(&self) -> Vec<(Algo, String)> {
        let mut v = Vec::new();
        if let Some(h) = &self.md5 {
            v.push((Algo::Md5, h.to_ascii_lowercase()));
        }
        if let Some(h) = &self.sha256 {
            v.push((Algo::Sha256, h.to_ascii_lowercase()));
        }
        if let Some(h) = &self.blake3 {
            v.push((Algo::Blake3, h.to_ascii_lowercase()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoints_own_json_is_not_a_manifest() {
        assert!(is_manifest_name(Path::new("d/m.JSON")));
        assert!(!is_manifest_name(Path::new("d/params.json")));
        assert!(!is_manifest_name(Path::new("config.json")));
        assert!(!is_manifest_name(Path::new("SHA256SUMS")));
    }

    #[test]
    fn round_trips_and_rejects_wrong_chunk_count() {
        let mut m = Manifest::new(MIN_CHUNK_SIZE, Algo::Blake3);
        m.files.push(FileEntry {
            path: "a/b.pth".into(),
            size: MIN_CHUNK_SIZE + 1,
            sha256: Some("0".repeat(64)),
            md5: Some("1".repeat(32)),
            blake3: None,
            chunks: vec!["2".repeat(64), "3".repeat(64)],
        });
        let text = m.to_json();
        assert_eq!(Manifest::parse(&text, Path::new("m.json")).unwrap(), m);
        m.files[0].chunks.pop();
        let err = Manifest::parse(&m.to_json(), Path::new("m.json")).unwrap_err();
        assert!(err.to_string().contains("expected 2"), "{err}");
    }

    #[test]
    fn malformed_json_names_the_line() {
        let err = Manifest::parse(
            "{\n\"format\": \"llama-tool-manifest\",\n oops\n}",
            Path::new("m.json"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }
}
