//! Building the manifest of a folder (`llama-tool manifest DIR`): its content as
//! [`crate::listing`] decides it, every file hashed once (in parallel, several digests over
//! one read), written as a GNU checksum list ([`crate::checksums::write_gnu`]: `md5sum -c`,
//! `sha256sum -c`, `b3sum --check`) or the llama-tool JSON manifest ([`crate::json`],
//! docs/MANIFEST.md), optionally with the checkpoint's tensor hashes ([`crate::tensors`]).
//! Names are relative to the folder.

use std::path::Path;

use rayon::prelude::*;

use crate::checksums;
use crate::digest::{Algo, DigestError};
use crate::json::{FileEntry, Manifest, MIN_CHUNK_SIZE};
use crate::listing::Listing;
use crate::tensors::TensorHashError;
use crate::verify::digest_for_manifest;

/// A manifest's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    /// GNU list of one digest (default MD5), like Meta's `checklist.chk`.
    Chk,
    /// GNU list of one digest (default SHA-256): `SHA256SUMS`.
    Sha256Sums,
    /// The llama-tool JSON manifest: size, SHA-256, MD5 and chunk digests (default BLAKE3).
    Json,
}

/// How to build a manifest.
#[derive(Clone, Debug)]
pub struct ManifestOptions {
    /// The format.
    pub format: ManifestFormat,
    /// The list's digest, or for JSON the chunk digest; `None`: the format's default.
    pub algo: Option<Algo>,
    /// JSON chunk size in bytes (at least [`MIN_CHUNK_SIZE`]).
    pub chunk_size: u64,
    /// Also hash every tensor of the checkpoint in the folder (JSON only).
    pub tensors: bool,
    /// Files hashed at once (at least 1).
    pub jobs: usize,
}

/// Why a manifest could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// JSON chunk digests are SHA-256 or BLAKE3.
    #[error("the JSON manifest's chunk digest is sha256 or blake3, not {0}")]
    ChunkAlgo(&'static str),
    /// The JSON chunk size is below the minimum.
    #[error("the chunk size {size} is below the minimum of {MIN_CHUNK_SIZE} bytes")]
    ChunkSize {
        /// The size asked for.
        size: u64,
    },
    /// Tensor hashes exist only in the JSON manifest.
    #[error("tensor hashes need the JSON manifest format")]
    TensorsNeedJson,
    /// A file could not be hashed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The folder is not a checkpoint whose tensors can be hashed.
    #[error("{path}: tensor hashes need a checkpoint folder: {error}")]
    NotCheckpoint {
        /// The folder.
        path: std::path::PathBuf,
        /// Why it could not be opened.
        error: Box<llama_formats::checkpoint::CheckpointError>,
    },
    /// A tensor could not be hashed.
    #[error(transparent)]
    Tensors(#[from] TensorHashError),
    /// The worker threads could not be started.
    #[error("cannot start {jobs} hashing threads: {error}")]
    Threads {
        /// Threads asked for.
        jobs: usize,
        /// rayon's error.
        error: rayon::ThreadPoolBuildError,
    },
}

/// The whole-file digests of a manifest and its chunk digest (algorithm, chunk size).
type Digesting = (Vec<Algo>, Option<(Algo, u64)>);

impl ManifestOptions {
    /// The whole-file digests and the chunk digest (algorithm, size) this manifest records,
    /// after checking the options.
    fn digests(&self) -> Result<Digesting, BuildError> {
        if self.tensors && self.format != ManifestFormat::Json {
            return Err(BuildError::TensorsNeedJson);
        }
        Ok(match self.format {
            ManifestFormat::Chk => (vec![self.algo.unwrap_or(Algo::Md5)], None),
            ManifestFormat::Sha256Sums => (vec![self.algo.unwrap_or(Algo::Sha256)], None),
            ManifestFormat::Json => {
                let chunk = self.algo.unwrap_or(Algo::Blake3);
                if chunk == Algo::Md5 {
                    return Err(BuildError::ChunkAlgo(chunk.name()));
                }
                if self.chunk_size < MIN_CHUNK_SIZE {
                    return Err(BuildError::ChunkSize {
                        size: self.chunk_size,
                    });
                }
                (
                    vec![Algo::Md5, Algo::Sha256],
                    Some((chunk, self.chunk_size)),
                )
            }
        })
    }

    /// Check the options before any file is read.
    pub fn check(&self) -> Result<(), BuildError> {
        self.digests().map(drop)
    }
}

/// One hashed file: size, whole-file digests, chunk digests.
type Hashed = (u64, Vec<(Algo, String)>, Vec<String>);

/// The total size of the files of `listing` (for a progress bar; unreadable files count 0).
pub fn listed_bytes(listing: &Listing) -> u64 {
    listing
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum()
}

/// Hash the files of `listing` (the content of `dir`) and return the manifest's text;
/// `on_bytes` is called with every block of bytes read.
pub fn build_manifest(
    dir: &Path,
    listing: &Listing,
    opts: &ManifestOptions,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<String, BuildError> {
    let (algos, chunk) = opts.digests()?;
    let jobs = opts.jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|error| BuildError::Threads { jobs, error })?;
    let hashed: Vec<Hashed> = pool.install(|| {
        listing
            .files
            .par_iter()
            .map(|f| digest_for_manifest(&f.path, &algos, chunk, on_bytes))
            .collect::<Result<_, _>>()
    })?;
    let rows = listing.files.iter().map(|f| f.rel.as_str()).zip(hashed);
    let Some((chunk_algo, chunk_size)) = chunk else {
        let rows: Vec<(String, &str)> = rows
            .map(|(rel, (_, d, _))| (d.into_iter().next().map(|x| x.1).unwrap_or_default(), rel))
            .collect();
        return Ok(checksums::write_gnu(
            rows.iter().map(|(hex, rel)| (hex.as_str(), *rel)),
        ));
    };
    let mut m = Manifest::new(chunk_size, chunk_algo);
    for (rel, (size, d, chunks)) in rows {
        let get = |a: Algo| d.iter().find(|(x, _)| *x == a).map(|(_, h)| h.clone());
        m.files.push(FileEntry {
            path: rel.to_string(),
            size,
            sha256: get(Algo::Sha256),
            md5: get(Algo::Md5),
            blake3: None,
            chunks,
        });
    }
    if opts.tensors {
        let ck = llama_formats::checkpoint::Checkpoint::open(dir).map_err(|error| {
            BuildError::NotCheckpoint {
                path: dir.to_path_buf(),
                error: Box::new(error),
            }
        })?;
        let set = pool.install(|| crate::tensors::hash_checkpoint(&ck, ".", &|_, _| {}))?;
        m.tensor_sets.push(set);
    }
    Ok(m.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::list_folder;

    fn opts(format: ManifestFormat, algo: Option<Algo>) -> ManifestOptions {
        ManifestOptions {
            format,
            algo,
            chunk_size: MIN_CHUNK_SIZE,
            tensors: false,
            jobs: 2,
        }
    }

    #[test]
    fn lists_every_file_with_the_formats_default_digest() {
        let t = tempfile::tempdir().unwrap();
        for (name, body) in [("b.bin", &b"abc"[..]), ("sub/a.bin", b""), ("x.part", b"p")] {
            let p = t.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let listing = list_folder(t.path(), None).unwrap();
        assert_eq!(listed_bytes(&listing), 3);
        let build = |format| build_manifest(t.path(), &listing, &opts(format, None), &|_| {});
        assert_eq!(
            build(ManifestFormat::Chk).unwrap(),
            "900150983cd24fb0d6963f7d28e17f72  b.bin\nd41d8cd98f00b204e9800998ecf8427e  sub/a.bin\n"
        );
        let sums = build(ManifestFormat::Sha256Sums).unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(sums.starts_with(&format!("{abc}  b.bin\n")), "{sums}");
        let json = build(ManifestFormat::Json).unwrap();
        let m = Manifest::parse(&json, Path::new("m.json")).unwrap();
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.chunk_algo(), Some(Algo::Blake3));
    }

    #[test]
    fn bad_options_are_refused_before_reading() {
        let md5 = opts(ManifestFormat::Json, Some(Algo::Md5)).check();
        assert!(matches!(md5, Err(BuildError::ChunkAlgo("md5"))));
        let mut o = opts(ManifestFormat::Json, None);
        o.chunk_size = 1;
        assert!(matches!(o.check(), Err(BuildError::ChunkSize { size: 1 })));
        let mut o = opts(ManifestFormat::Chk, None);
        o.tensors = true;
        assert!(matches!(o.check(), Err(BuildError::TensorsNeedJson)));
    }
}
