//! Verification of planned files: size first (a wrong size fails without hashing), then one
//! streaming read per file that computes every digest it needs, files in parallel on a pool
//! of `jobs` threads; a file with chunk digests (JSON manifest) is verified chunk by chunk on
//! every thread at once. Progress goes to a [`Progress`] the caller implements.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use crate::digest::{self, Algo, Digests, MultiHasher, ReadOrDigest};
use crate::discover::{Chunks, Job};

/// Receives progress; every method has an empty default. Called from worker threads.
pub trait Progress: Sync {
    /// `n` more bytes were hashed.
    fn bytes(&self, _n: u64) {}
    /// A file finished.
    fn file_done(&self, _result: &FileResult) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// The outcome for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every claim holds.
    Ok,
    /// A digest differs.
    Mismatch {
        /// Which digest (`md5`, `blake3 of chunk 3 (bytes A..B)`).
        what: String,
        /// Expected hex.
        expected: String,
        /// Actual hex.
        actual: String,
        /// Where the claim came from.
        source: String,
    },
    /// The file is not there.
    Missing,
    /// The size differs (not hashed).
    Size {
        /// From the manifest.
        expected: u64,
        /// On disk.
        actual: u64,
    },
    /// Present, but no manifest lists it (`--strict`).
    Unlisted,
    /// Could not be read.
    Error(String),
}

impl Status {
    /// The report word: OK, MISMATCH, MISSING, SIZE, UNLISTED, ERROR.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Mismatch { .. } => "MISMATCH",
            Status::Missing => "MISSING",
            Status::Size { .. } => "SIZE",
            Status::Unlisted => "UNLISTED",
            Status::Error(_) => "ERROR",
        }
    }

    /// True for OK.
    pub fn is_ok(&self) -> bool {
        matches!(self, Status::Ok)
    }
}

/// The result for one file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileResult {
    /// Display name.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// Bytes hashed.
    pub bytes: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// Whole-file digests computed.
    pub digests: Digests,
}

/// Verify one planned file.
pub(crate) fn verify_job(job: &Job, progress: &dyn Progress) -> FileResult {
    let start = Instant::now();
    let (status, bytes, digests) = check(job, progress);
    let r = FileResult {
        name: job.name.clone(),
        status,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
        digests,
    };
    progress.file_done(&r);
    r
}

fn check(job: &Job, progress: &dyn Progress) -> (Status, u64, Digests) {
    let meta = match std::fs::metadata(&job.path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (Status::Missing, 0, Vec::new())
        }
        Err(e) => {
            return (
                Status::Error(format!("{}: {e}", job.path.display())),
                0,
                Vec::new(),
            )
        }
    };
    if !meta.is_file() {
        return (
            Status::Error(format!("{}: not a regular file", job.path.display())),
            0,
            Vec::new(),
        );
    }
    if let Some(expected) = job.size {
        if meta.len() != expected {
            return (
                Status::Size {
                    expected,
                    actual: meta.len(),
                },
                0,
                Vec::new(),
            );
        }
    }
    if job.expect.is_empty() {
        if let Some(chunks) = &job.chunks {
            return check_chunks(&job.path, meta.len(), chunks, progress);
        }
        return (Status::Ok, 0, Vec::new());
    }
    let mut algos: Vec<Algo> = job.expect.iter().map(|e| e.algo).collect();
    algos.sort();
    algos.dedup();
    let (bytes, digests) = match digest::hash_file(&job.path, &algos, &|n| progress.bytes(n)) {
        Ok(v) => v,
        Err(e) => return (Status::Error(e.to_string()), 0, Vec::new()),
    };
    for e in &job.expect {
        let actual = digests
            .iter()
            .find(|(a, _)| *a == e.algo)
            .map(|(_, h)| h.as_str())
            .unwrap_or("");
        if actual != e.hex {
            let status = Status::Mismatch {
                what: e.algo.name().to_string(),
                expected: e.hex.clone(),
                actual: actual.to_string(),
                source: e.source.clone(),
            };
            return (status, bytes, digests);
        }
    }
    // Whole digests matched; chunk claims (if any) are implied only when the same manifest
    // made both, so check them too when present.
    if let Some(chunks) = &job.chunks {
        let (st, _, _) = check_chunks(&job.path, bytes, chunks, &NoProgress);
        if !st.is_ok() {
            return (st, bytes, digests);
        }
    }
    (Status::Ok, bytes, digests)
}

/// Verify every chunk of a file in parallel (on the current rayon pool).
fn check_chunks(
    path: &Path,
    size: u64,
    chunks: &Chunks,
    progress: &dyn Progress,
) -> (Status, u64, Digests) {
    let file = match llama_codecs::safe_read::open_regular(path) {
        Ok((f, _)) => f,
        Err(e) => {
            return (
                Status::Error(format!("{}: {e}", path.display())),
                0,
                Vec::new(),
            )
        }
    };
    let n = chunks.digests.len() as u64;
    if size.div_ceil(chunks.size.max(1)) != n {
        return (
            Status::Error(format!(
                "{}: {size} bytes do not make {n} chunks of {}",
                path.display(),
                chunks.size
            )),
            0,
            Vec::new(),
        );
    }
    // SAFETY: read-only map, dropped at the end of this function (see digest::stream_file on
    // SIGBUS); without a map, positioned reads.
    let map = (size > 0)
        .then(|| unsafe { memmap2::Mmap::map(&file) }.ok())
        .flatten();
    let results: Vec<Result<Option<Status>, String>> = (0..n)
        .into_par_iter()
        .map(|k| {
            let off = k * chunks.size;
            let len = chunks.size.min(size - off);
            let slice = map.as_ref().and_then(|m| {
                m.get(off as usize..(off + len) as usize)
                    .map(|data| (m, off as usize, data))
            });
            let (got, hex) = match slice {
                Some((m, start, data)) => {
                    hash_slice(m, start, data, chunks.algo, progress).map_err(|e| e.to_string())
                }
                None => hash_range_err(&file, off, len, chunks.algo, progress),
            }
            .map_err(|e| format!("{}: {e}", path.display()))?;
            let expected = &chunks.digests[k as usize];
            if got != len {
                return Ok(Some(Status::Error(format!(
                    "{}: file shrank while being read",
                    path.display()
                ))));
            }
            Ok((hex != *expected).then(|| Status::Mismatch {
                what: format!("{} of chunk {k} (bytes {off}..{})", chunks.algo, off + len),
                expected: expected.clone(),
                actual: hex,
                source: "chunk digests".into(),
            }))
        })
        .collect();
    for r in results {
        match r {
            Err(e) => return (Status::Error(e), size, Vec::new()),
            Ok(Some(st)) => return (st, size, Vec::new()),
            Ok(None) => {}
        }
    }
    (Status::Ok, size, Vec::new())
}

/// Hash `data` (bytes `start..` of `map`), giving each block's pages back once hashed so
/// the resident set stays a block per worker, not the file.
fn hash_slice(
    map: &memmap2::Mmap,
    start: usize,
    data: &[u8],
    algo: Algo,
    progress: &dyn Progress,
) -> Result<(u64, String), digest::DigestError> {
    let mut h = MultiHasher::new(&[algo]);
    for (k, block) in data.chunks(digest::READ_BUF).enumerate() {
        h.update(block)?;
        llama_codecs::mmap::release_range(map, start + k * digest::READ_BUF, block.len());
        progress.bytes(block.len() as u64);
    }
    let hex = h
        .finish()?
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or_default();
    Ok((data.len() as u64, hex))
}

fn hash_range_err(
    file: &File,
    off: u64,
    len: u64,
    algo: Algo,
    progress: &dyn Progress,
) -> Result<(u64, String), String> {
    digest::hash_range(file, off, len, algo, &|n| progress.bytes(n)).map_err(|e| match e {
        ReadOrDigest::Read(e) => e.to_string(),
        ReadOrDigest::Digest(e) => e.to_string(),
        ReadOrDigest::Thread => "reader thread failed".into(),
    })
}

/// Verify `jobs` on a pool of `threads` threads (largest files first, for balance). Results
/// come back in the jobs' order.
pub fn verify_all(
    jobs: &[Job],
    threads: usize,
    progress: &dyn Progress,
) -> Result<Vec<FileResult>, rayon::ThreadPoolBuildError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()?;
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    let size_of = |j: &Job| {
        j.size
            .or_else(|| std::fs::metadata(&j.path).ok().map(|m| m.len()))
            .unwrap_or(0)
    };
    order.sort_by_key(|&i| std::cmp::Reverse(size_of(&jobs[i])));
    let mut results: Vec<(usize, FileResult)> = pool.install(|| {
        order
            .par_iter()
            .map(|&i| (i, verify_job(&jobs[i], progress)))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// Bytes `verify_all` will hash for `jobs` (for a progress total).
pub fn total_bytes(jobs: &[Job]) -> u64 {
    jobs.iter()
        .map(|j| std::fs::metadata(&j.path).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Hash a whole file for a manifest: whole-file digests for `algos` and, when `chunk` is given,
/// chunk digests; one read of the file.
pub fn digest_for_manifest(
    path: &Path,
    algos: &[Algo],
    chunk: Option<(Algo, u64)>,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(u64, Digests, Vec<String>), digest::DigestError> {
    let mut whole = MultiHasher::new(algos);
    let mut chunker = chunk.map(|(a, size)| ChunkHasher::new(a, size));
    let mut sink = |buf: &[u8]| -> Result<(), digest::DigestError> {
        whole.update(buf)?;
        if let Some(c) = &mut chunker {
            c.update(buf)?;
        }
        Ok(())
    };
    let mut feeder = FnHasher(&mut sink);
    digest::stream_file(path, &mut feeder, on_bytes)?;
    let n = whole.bytes();
    let chunks = match chunker {
        Some(c) => c.finish()?,
        None => Vec::new(),
    };
    Ok((n, whole.finish()?, chunks))
}

struct FnHasher<'a>(&'a mut dyn FnMut(&[u8]) -> Result<(), digest::DigestError>);
impl digest::Sink for FnHasher<'_> {
    fn feed(&mut self, data: &[u8]) -> Result<(), digest::DigestError> {
        (self.0)(data)
    }
}

/// Digests of consecutive fixed-size chunks of a stream.
pub(crate) struct ChunkHasher {
    algo: Algo,
    size: u64,
    cur: MultiHasher,
    in_cur: u64,
    done: Vec<String>,
}

impl ChunkHasher {
    /// Chunks of `size` bytes hashed with `algo`.
    pub fn new(algo: Algo, size: u64) -> ChunkHasher {
        ChunkHasher {
            algo,
            size: size.max(1),
            cur: MultiHasher::new(&[algo]),
            in_cur: 0,
            done: Vec::new(),
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), digest::DigestError> {
        while !data.is_empty() {
            let room = usize::try_from(self.size - self.in_cur).unwrap_or(usize::MAX);
            let take = room.min(data.len());
            self.cur.update(&data[..take])?;
            self.in_cur += take as u64;
            data = &data[take..];
            if self.in_cur == self.size {
                let h = std::mem::replace(&mut self.cur, MultiHasher::new(&[self.algo]));
                self.done.push(h.finish()?.remove(0).1);
                self.in_cur = 0;
            }
        }
        Ok(())
    }

    /// Completed chunk digests so far.
    pub(crate) fn completed(&self) -> &[String] {
        &self.done
    }

    /// All chunk digests (the last one short when the stream was).
    pub fn finish(mut self) -> Result<Vec<String>, digest::DigestError> {
        if self.in_cur > 0 {
            self.done.push(self.cur.finish()?.remove(0).1);
        }
        Ok(self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::Expect;

    fn job(path: &Path, expect: Vec<Expect>, size: Option<u64>, chunks: Option<Chunks>) -> Job {
        Job {
            path: path.into(),
            name: "f".into(),
            size,
            expect,
            chunks,
        }
    }

    #[test]
    fn statuses_ok_mismatch_missing_size_and_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let md5 = digest::hash_bytes(Algo::Md5, &data).unwrap();
        let e = |hex: &str| {
            vec![Expect {
                algo: Algo::Md5,
                hex: hex.into(),
                source: "t:1".into(),
            }]
        };
        assert_eq!(
            verify_job(&job(&p, e(&md5), None, None), &NoProgress).status,
            Status::Ok
        );
        let bad = verify_job(&job(&p, e(&"0".repeat(32)), None, None), &NoProgress);
        assert!(matches!(bad.status, Status::Mismatch { .. }), "{bad:?}");
        assert_eq!(
            verify_job(
                &job(&dir.path().join("nope"), e(&md5), None, None),
                &NoProgress
            )
            .status,
            Status::Missing
        );
        let sz = verify_job(&job(&p, e(&md5), Some(5), None), &NoProgress);
        assert_eq!(
            sz.status,
            Status::Size {
                expected: 5,
                actual: 300_000
            }
        );
        assert_eq!(sz.bytes, 0, "a wrong size is not hashed");

        let (_, _, chunks) =
            digest_for_manifest(&p, &[], Some((Algo::Blake3, 1 << 16)), &|_| {}).unwrap();
        assert_eq!(chunks.len(), 5);
        let mut c = Chunks {
            algo: Algo::Blake3,
            size: 1 << 16,
            digests: chunks,
        };
        assert_eq!(
            verify_job(
                &job(&p, vec![], Some(300_000), Some(c.clone())),
                &NoProgress
            )
            .status,
            Status::Ok
        );
        c.digests[3] = "0".repeat(64);
        let r = verify_job(&job(&p, vec![], Some(300_000), Some(c)), &NoProgress);
        match r.status {
            Status::Mismatch { what, .. } => assert!(what.contains("chunk 3"), "{what}"),
            s => panic!("{s:?}"),
        }
    }
}
