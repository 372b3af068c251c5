//! Digests: MD5 ([RFC 1321](https://www.rfc-editor.org/rfc/rfc1321)), SHA-256
//! ([FIPS 180-4](https://csrc.nist.gov/pubs/fips/180-4/upd1/final)) and
//! [BLAKE3](https://github.com/BLAKE3-team/BLAKE3-specs), several at once over one stream.
//!
//! [`MultiHasher`] feeds every wanted digest from the same buffers, so a file is read once
//! whatever its manifests ask for. [`hash_file`] streams a file through large buffers with a
//! reader thread, so reading overlaps hashing. SHA-256 comes from `sha2` (SHA-NI picked at run
//! time); MD5 from OpenSSL's assembly when the `openssl-md5` feature is on (measured faster than
//! `md-5` and than coreutils `md5sum`, see docs/PERFORMANCE.md), else from `md-5`.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;
use std::sync::mpsc;

use sha2::Digest as _;

/// Size of one read buffer.
pub(crate) const READ_BUF: usize = 8 << 20;
/// Buffers in flight between the reader thread and the hasher.
const BUFS_IN_FLIGHT: usize = 3;

/// A digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algo {
    /// MD5 (Meta's `checklist.chk`).
    Md5,
    /// SHA-256.
    Sha256,
    /// BLAKE3 (256-bit output, as `b3sum` prints).
    Blake3,
}

impl Algo {
    /// Every algorithm.
    pub const ALL: [Algo; 3] = [Algo::Md5, Algo::Sha256, Algo::Blake3];

    /// Lowercase name (`md5`, `sha256`, `blake3`).
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "md5",
            Algo::Sha256 => "sha256",
            Algo::Blake3 => "blake3",
        }
    }

    /// Length of the digest in hex characters.
    pub fn hex_len(self) -> usize {
        match self {
            Algo::Md5 => 32,
            Algo::Sha256 | Algo::Blake3 => 64,
        }
    }
}

impl fmt::Display for Algo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algo {
    type Err = String;
    fn from_str(s: &str) -> Result<Algo, String> {
        match s.to_ascii_lowercase().as_str() {
            "md5" => Ok(Algo::Md5),
            "sha256" | "sha-256" => Ok(Algo::Sha256),
            "blake3" | "b3" => Ok(Algo::Blake3),
            other => Err(format!(
                "unknown digest algorithm `{other}` (md5, sha256, blake3)"
            )),
        }
    }
}

/// Errors of digest computation.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// Reading the file failed.
    #[error("{path}: read failed: {error}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        error: io::Error,
    },
    /// Opening the file failed.
    #[error("{path}: cannot open: {error}")]
    Open {
        /// The file.
        path: String,
        /// The I/O error.
        error: io::Error,
    },
    /// The MD5 backend reported an error.
    #[error("md5 backend failed: {error}")]
    Backend {
        /// OpenSSL's error stack.
        error: openssl::error::ErrorStack,
    },
    /// The reader thread died.
    #[error("{path}: reader thread failed")]
    ReaderThread {
        /// The file.
        path: String,
    },
}

enum Md5State {
    #[cfg(feature = "openssl-md5")]
    Ossl(openssl::hash::Hasher),
    Soft(md5::Md5),
}

impl Md5State {
    fn new() -> Md5State {
        #[cfg(feature = "openssl-md5")]
        if let Ok(h) = openssl::hash::Hasher::new(openssl::hash::MessageDigest::md5()) {
            return Md5State::Ossl(h);
        }
        Md5State::Soft(md5::Md5::new())
    }
    fn update(&mut self, data: &[u8]) -> Result<(), DigestError> {
        match self {
            #[cfg(feature = "openssl-md5")]
            Md5State::Ossl(h) => h
                .update(data)
                .map_err(|error| DigestError::Backend { error }),
            Md5State::Soft(h) => {
                h.update(data);
                Ok(())
            }
        }
    }
    fn finish(self) -> Result<String, DigestError> {
        match self {
            #[cfg(feature = "openssl-md5")]
            Md5State::Ossl(mut h) => h
                .finish()
                .map(|d| hex::encode(&*d))
                .map_err(|error| DigestError::Backend { error }),
            Md5State::Soft(h) => Ok(hex::encode(h.finalize().as_slice())),
        }
    }
}

/// Hex digests computed over one stream, keyed by algorithm (sorted).
pub type Digests = Vec<(Algo, String)>;

/// Computes any set of digests over one stream of bytes.
pub(crate) struct MultiHasher {
    md5: Option<Md5State>,
    sha256: Option<sha2::Sha256>,
    blake3: Option<Box<blake3::Hasher>>,
    bytes: u64,
}

impl MultiHasher {
    /// A hasher for `algos` (duplicates ignored).
    pub fn new(algos: &[Algo]) -> MultiHasher {
        MultiHasher {
            md5: algos.contains(&Algo::Md5).then(Md5State::new),
            sha256: algos.contains(&Algo::Sha256).then(sha2::Sha256::new),
            blake3: algos
                .contains(&Algo::Blake3)
                .then(|| Box::new(blake3::Hasher::new())),
            bytes: 0,
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) -> Result<(), DigestError> {
        if let Some(h) = &mut self.md5 {
            h.update(data)?;
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.blake3 {
            h.update(data);
        }
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hex digests, sorted by algorithm.
    pub fn finish(self) -> Result<Digests, DigestError> {
        let mut out = Vec::new();
        if let Some(h) = self.md5 {
            out.push((Algo::Md5, h.finish()?));
        }
        if let Some(h) = self.sha256 {
            out.push((Algo::Sha256, hex::encode(h.finalize().as_slice())));
        }
        if let Some(h) = self.blake3 {
            out.push((Algo::Blake3, h.finalize().to_hex().to_string()));
        }
        Ok(out)
    }
}

/// Digest of one byte slice.
#[cfg(test)]
pub(crate) fn hash_bytes(algo: Algo, data: &[u8]) -> Result<String, DigestError> {
    let mut h = MultiHasher::new(&[algo]);
    h.update(data)?;
    let d = h.finish()?;
    Ok(d.into_iter().next().map(|(_, v)| v).unwrap_or_default())
}

/// Stream `path` once through a hasher for `algos`; `on_bytes` is called after each block
/// with its length. Returns the byte count and the digests.
pub(crate) fn hash_file(
    path: &Path,
    algos: &[Algo],
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(u64, Digests), DigestError> {
    let mut hasher = MultiHasher::new(algos);
    stream_file(path, &mut hasher, on_bytes)?;
    let n = hasher.bytes();
    Ok((n, hasher.finish()?))
}

/// Feed every byte of `path` to `sink`, in blocks of [`READ_BUF`]. A regular file is memory
/// mapped (no copy: measured ~6% less CPU than `read` into a buffer for md5, see
/// docs/PERFORMANCE.md) with sequential read-ahead plus an explicit `WILLNEED` two blocks
/// ahead, so the disk works while the hash runs, and each block's pages are released
/// (`MADV_DONTNEED`) once hashed, so the resident set stays a few blocks whatever the file
/// size; anything else (or a failed map) is read by a helper thread into a pool of large
/// buffers.
///
/// A file truncated by another process while it is mapped ends this process with SIGBUS,
/// as for every mmap reader; verification of files being rewritten is not meaningful anyway.
pub(crate) fn stream_file<S: Sink + ?Sized>(
    path: &Path,
    sink: &mut S,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(), DigestError> {
    let shown = || path.display().to_string();
    // Opened without blocking and checked on the handle: a FIFO, socket or device where a
    // file belongs is refused instead of hanging or streaming forever.
    let (file, len) =
        llama_codecs::safe_read::open_regular(path).map_err(|source| DigestError::Open {
            path: shown(),
            error: source,
        })?;
    if len > 0 {
        // SAFETY: the map is read-only and private to this function; see the SIGBUS note above.
        if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
            let _ = map.advise(memmap2::Advice::Sequential);
            let len = map.len();
            let mut off = 0usize;
            while off < len {
                let end = (off + READ_BUF).min(len);
                let ahead = end + READ_BUF;
                if ahead < len {
                    let _ = map.advise_range(
                        memmap2::Advice::WillNeed,
                        ahead,
                        READ_BUF.min(len - ahead),
                    );
                }
                sink.feed(&map[off..end])?;
                // Give the hashed pages back: the resident set stays one block, not the file.
                llama_codecs::mmap::release_range(&map, off, end - off);
                on_bytes((end - off) as u64);
                off = end;
            }
            return Ok(());
        }
    }
    hash_reader_with(file, sink, on_bytes).map_err(|e| match e {
        ReadOrDigest::Read(source) => DigestError::Read {
            path: shown(),
            error: source,
        },
        ReadOrDigest::Digest(d) => d,
        ReadOrDigest::Thread => DigestError::ReaderThread { path: shown() },
    })
}

/// Error of [`hash_reader`].
#[derive(Debug)]
pub(crate) enum ReadOrDigest {
    /// The reader failed.
    Read(io::Error),
    /// The hasher failed.
    Digest(DigestError),
    /// The reader thread panicked.
    Thread,
}

/// Something fed bytes in order.
pub(crate) trait Sink {
    /// Take the next bytes.
    fn feed(&mut self, data: &[u8]) -> Result<(), DigestError>;
}

impl Sink for MultiHasher {
    fn feed(&mut self, data: &[u8]) -> Result<(), DigestError> {
        self.update(data)
    }
}

/// Feed everything `reader` yields into `hasher`, reading in a helper thread through a small
/// pool of large buffers.
#[cfg(test)]
pub(crate) fn hash_reader<R: Read + Send>(
    reader: R,
    hasher: &mut MultiHasher,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(), ReadOrDigest> {
    hash_reader_with(reader, hasher, on_bytes)
}

/// [`hash_reader`] into any [`Sink`].
pub(crate) fn hash_reader_with<R: Read + Send, S: Sink + ?Sized>(
    mut reader: R,
    hasher: &mut S,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(), ReadOrDigest> {
    let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(BUFS_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(BUFS_IN_FLIGHT);
    for _ in 0..BUFS_IN_FLIGHT {
        // The channel has room for exactly these.
        let _ = empty_tx.send(Vec::new());
    }
    std::thread::scope(|s| {
        let reader_thread = s.spawn(move || {
            while let Ok(mut buf) = empty_rx.recv() {
                buf.resize(READ_BUF, 0);
                let mut filled = 0;
                let res = loop {
                    if filled == buf.len() {
                        break Ok(());
                    }
                    match reader.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                match res {
                    Ok(()) => {
                        buf.truncate(filled);
                        let last = filled == 0;
                        if full_tx.send(Ok(buf)).is_err() || last {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        let mut result = Ok(());
        while let Ok(msg) = full_rx.recv() {
            match msg {
                Ok(buf) if buf.is_empty() => break,
                Ok(buf) => {
                    if let Err(e) = hasher.feed(&buf) {
                        result = Err(ReadOrDigest::Digest(e));
                        break;
                    }
                    on_bytes(buf.len() as u64);
                    let _ = empty_tx.send(buf);
                }
                Err(e) => {
                    result = Err(ReadOrDigest::Read(e));
                    break;
                }
            }
        }
        drop(empty_tx);
        drop(full_rx);
        if reader_thread.join().is_err() && result.is_ok() {
            result = Err(ReadOrDigest::Thread);
        }
        result
    })
}

/// Digest of bytes `[offset, offset+len)` of `file` (positioned reads; no shared cursor, so
/// chunks of one file can be hashed on several threads at once). Returns the digest and the
/// byte count actually read (short when the file is shorter).
pub(crate) fn hash_range(
    file: &File,
    offset: u64,
    len: u64,
    algo: Algo,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(u64, String), ReadOrDigest> {
    use std::os::unix::fs::FileExt;
    let mut hasher = MultiHasher::new(&[algo]);
    let cap = usize::try_from(len.min(READ_BUF as u64)).unwrap_or(READ_BUF);
    let mut buf = vec![0u8; cap];
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from((len - done).min(cap as u64)).unwrap_or(cap);
        let n = match file.read_at(&mut buf[..want], offset + done) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadOrDigest::Read(e)),
        };
        hasher.update(&buf[..n]).map_err(ReadOrDigest::Digest)?;
        on_bytes(n as u64);
        done += n as u64;
    }
    let d = hasher.finish().map_err(ReadOrDigest::Digest)?;
    Ok((
        done,
        d.into_iter().next().map(|(_, v)| v).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn known_answers_for_abc() {
        assert_eq!(
            hash_bytes(Algo::Md5, b"abc").unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hash_bytes(Algo::Sha256, b"abc").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hash_bytes(Algo::Blake3, b"abc").unwrap(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
    }

    #[test]
    fn hash_file_matches_one_shot_across_buffer_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..(READ_BUF * 2 + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::File::create(&p).unwrap().write_all(&data).unwrap();
        let seen = std::sync::atomic::AtomicU64::new(0);
        let (n, d) = hash_file(&p, &Algo::ALL, &|b| {
            seen.fetch_add(b, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(seen.into_inner(), n);
        for (algo, hex) in d {
            assert_eq!(hex, hash_bytes(algo, &data).unwrap(), "{algo}");
        }
        let f = File::open(&p).unwrap();
        let (n, h) = hash_range(&f, 100, 5000, Algo::Sha256, &|_| {}).unwrap();
        assert_eq!(n, 5000);
        assert_eq!(h, hash_bytes(Algo::Sha256, &data[100..5100]).unwrap());
    }

    #[test]
    fn reader_thread_path_matches_one_shot() {
        let data: Vec<u8> = (0..(READ_BUF + 777)).map(|i| (i % 249) as u8).collect();
        let mut h = MultiHasher::new(&[Algo::Sha256]);
        hash_reader(std::io::Cursor::new(data.clone()), &mut h, &|_| {}).unwrap();
        assert_eq!(
            h.finish().unwrap()[0].1,
            hash_bytes(Algo::Sha256, &data).unwrap()
        );
    }

    #[test]
    fn empty_file_hashes_to_the_empty_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e");
        std::fs::File::create(&p).unwrap();
        let (n, d) = hash_file(&p, &[Algo::Md5], &|_| {}).unwrap();
        assert_eq!(n, 0);
        assert_eq!(d[0].1, "d41d8cd98f00b204e9800998ecf8427e");
    }
}
