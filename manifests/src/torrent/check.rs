//! Verifying a folder against a torrent: every v1 SHA-1 piece over the files in torrent order
//! (pieces run across file boundaries; padding files are zeros and never read), and for v2 and
//! hybrid torrents every file's SHA-256 merkle tree (BEP 52: 16 KiB leaves, the piece layer,
//! the `pieces root`). Pieces are hashed in parallel on a pool of `threads` threads; each
//! thread reads into one buffer of one piece. Results come per file, in torrent order, as
//! [`FileResult`]s: OK, a digest mismatch naming the bad pieces and their byte ranges in the
//! file, MISSING, or a wrong size (which is not hashed).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sha1::Digest as _;

use super::metainfo::{Metainfo, TorrentFile, Version, BLOCK};
use super::TorrentError;
use crate::verify::{FileResult, Progress, Status};

/// Where the torrent's content is for a folder `dir` given by the user: `dir/NAME` when that
/// exists (the folder a client downloads into), else `dir` itself (the content folder, or for
/// a single-file torrent the file).
pub fn content_root(meta: &Metainfo, dir: &Path) -> PathBuf {
    let inner = dir.join(&meta.name);
    if meta.single_file {
        if dir.is_file() {
            return dir.to_path_buf();
        }
        return inner;
    }
    if inner.is_dir() {
        inner
    } else {
        dir.to_path_buf()
    }
}

/// Bytes [`verify_content`] reads (for a progress total).
pub fn bytes_to_hash(meta: &Metainfo) -> u64 {
    let n = meta.content_length();
    match meta.version {
        Version::Hybrid => n.saturating_mul(2),
        _ => n,
    }
}

enum Disk {
    Padding,
    Open(File),
    Missing,
    Size(u64),
    Error(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Piece {
    Good,
    Bad,
    /// Shares bytes with a missing, wrong-size or unreadable file.
    Unknown,
}

/// Verify the content at `root` (see [`content_root`]); files are named `display/PATH`.
pub fn verify_content(
    meta: &Metainfo,
    root: &Path,
    display: &str,
    threads: usize,
    progress: &dyn Progress,
) -> Result<Vec<FileResult>, TorrentError> {
    let start = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|error| TorrentError::Threads { error })?;
    let disk: Vec<Disk> = meta.files.iter().map(|f| open(meta, root, f)).collect();
    let v1 = match meta.version {
        Version::V2 => None,
        _ => Some(pool.install(|| v1_pieces(meta, &disk, progress))),
    };
    let mut out = Vec::new();
    for (f, d) in meta.files.iter().zip(&disk) {
        let name = if meta.single_file {
            display.to_string()
        } else {
            format!("{display}/{}", f.rel())
        };
        let status = match d {
            Disk::Padding => continue,
            Disk::Missing => Status::Missing,
            Disk::Size(actual) => Status::Size {
                expected: f.length,
                actual: *actual,
            },
            Disk::Error(e) => Status::Error(e.clone()),
            Disk::Open(file) => {
                let mut st = v1
                    .as_ref()
                    .map(|p| v1_status(meta, f, p))
                    .unwrap_or(Status::Ok);
                if st.is_ok() && meta.version != Version::V1 {
                    st = pool.install(|| v2_status(meta, f, file, progress));
                }
                st
            }
        };
        let bytes = if matches!(d, Disk::Open(_)) {
            f.length
        } else {
            0
        };
        let r = FileResult {
            name,
            status,
            bytes,
            seconds: start.elapsed().as_secs_f64(),
            digests: Vec::new(),
        };
        progress.file_done(&r);
        out.push(r);
    }
    Ok(out)
}

fn open(meta: &Metainfo, root: &Path, f: &TorrentFile) -> Disk {
    if f.padding {
        return Disk::Padding;
    }
    let path = meta.file_path(root, f);
    // symlink_metadata: a symlink where a file belongs is read through only if it resolves
    // to a regular file; a FIFO or device is refused rather than read.
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Disk::Missing,
        Err(e) => Disk::Error(format!("{}: {e}", path.display())),
        Ok(m) if !m.is_file() => Disk::Error(format!("{}: not a regular file", path.display())),
        Ok(m) if m.len() != f.length => Disk::Size(m.len()),
        Ok(_) => match File::open(&path) {
            Ok(file) => Disk::Open(file),
            Err(e) => Disk::Error(format!("{}: {e}", path.display())),
        },
    }
}

/// Hash every v1 piece.
fn v1_pieces(meta: &Metainfo, disk: &[Disk], progress: &dyn Progress) -> Vec<Piece> {
    let pl = meta.piece_length;
    let total = meta.total_length();
    let files = &meta.files;
    (0..meta.pieces.len())
        .into_par_iter()
        .map_init(
            || vec![0u8; pl as usize],
            |buf, i| {
                let start = i as u64 * pl;
                let end = (start + pl).min(total);
                let data = &mut buf[..(end - start) as usize];
                let first = files.partition_point(|f| f.offset + f.length <= start);
                let mut read = 0u64;
                for (f, d) in files[first..].iter().zip(&disk[first..]) {
                    if f.offset >= end {
                        break;
                    }
                    if f.length == 0 {
                        continue;
                    }
                    let lo = f.offset.max(start);
                    let hi = (f.offset + f.length).min(end);
                    let dst = &mut data[(lo - start) as usize..(hi - start) as usize];
                    match d {
                        Disk::Padding => dst.fill(0),
                        Disk::Open(file) => {
                            if file.read_exact_at(dst, lo - f.offset).is_err() {
                                return Piece::Unknown;
                            }
                            read += hi - lo;
                        }
                        _ => return Piece::Unknown,
                    }
                }
                progress.bytes(read);
                if sha1::Sha1::digest(&*data).as_slice() == meta.pieces[i] {
                    Piece::Good
                } else {
                    Piece::Bad
                }
            },
        )
        .collect()
}

/// Pieces `first..=last` a file of the v1 space overlaps (none when empty).
fn piece_span(f: &TorrentFile, pl: u64) -> Option<(u64, u64)> {
    (f.length > 0).then(|| (f.offset / pl, (f.offset + f.length - 1) / pl))
}

fn v1_status(meta: &Metainfo, f: &TorrentFile, pieces: &[Piece]) -> Status {
    let pl = meta.piece_length;
    let Some((a, b)) = piece_span(f, pl) else {
        return Status::Ok;
    };
    let range = |p: u64| {
        let lo = (p * pl).max(f.offset) - f.offset;
        let hi = ((p + 1) * pl).min(f.offset + f.length) - f.offset;
        (lo, hi)
    };
    let bad: Vec<u64> = (a..=b)
        .filter(|&p| pieces[p as usize] == Piece::Bad)
        .collect();
    let unknown: Vec<u64> = (a..=b)
        .filter(|&p| pieces[p as usize] == Piece::Unknown)
        .collect();
    if !bad.is_empty() {
        return Status::Mismatch {
            what: format!("sha1 of {}", describe(&bad, range)),
            expected: hex::encode(meta.pieces[bad[0] as usize]),
            actual: "different bytes".into(),
            source: "torrent pieces".into(),
        };
    }
    if !unknown.is_empty() {
        return Status::Mismatch {
            what: format!(
                "sha1 of {} (shared with a missing, wrong-size or unreadable file; cannot be checked)",
                describe(&unknown, range)
            ),
            expected: hex::encode(meta.pieces[unknown[0] as usize]),
            actual: "unknown".into(),
            source: "torrent pieces".into(),
        };
    }
    Status::Ok
}

/// `piece 3 (bytes 0..16384)` / `pieces 3, 5 (bytes ..., ...)`, at most 16 listed.
pub fn describe(pieces: &[u64], range: impl Fn(u64) -> (u64, u64)) -> String {
    const SHOWN: usize = 16;
    let idx: Vec<String> = pieces.iter().take(SHOWN).map(|p| p.to_string()).collect();
    let ranges: Vec<String> = pieces
        .iter()
        .take(SHOWN)
        .map(|&p| {
            let (lo, hi) = range(p);
            format!("{lo}..{hi}")
        })
        .collect();
    let more = if pieces.len() > SHOWN {
        format!(" and {} more", pieces.len() - SHOWN)
    } else {
        String::new()
    };
    format!(
        "piece{} {}{more} (file bytes {})",
        if pieces.len() == 1 { "" } else { "s" },
        idx.join(", "),
        ranges.join(", ")
    )
}

fn node(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(a);
    h.update(b);
    h.finalize().into()
}

/// Root of `leaves` padded with `pad` (the hash of an all-zero subtree of the same height)
/// to a power of two; at least one leaf.
pub(crate) fn merkle_root(mut level: Vec<[u8; 32]>, mut pad: [u8; 32]) -> [u8; 32] {
    if level.is_empty() {
        return pad;
    }
    let width = level.len().next_power_of_two();
    level.resize(width, pad);
    while level.len() > 1 {
        level = level.chunks_exact(2).map(|p| node(&p[0], &p[1])).collect();
        pad = node(&pad, &pad);
    }
    level[0]
}

/// Root of a subtree of `leaves` zero leaves (a power of two).
pub(crate) fn zero_subtree(leaves: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    let mut n = 1;
    while n < leaves {
        h = node(&h, &h);
        n *= 2;
    }
    h
}

/// SHA-256 leaf hashes of the 16 KiB blocks of `data`.
pub fn leaves(data: &[u8]) -> Vec<[u8; 32]> {
    data.chunks(BLOCK as usize)
        .map(|b| sha2::Sha256::digest(b).into())
        .collect()
}

/// The v2 piece-layer hash of one piece's bytes (leaves padded to `pl / 16 KiB`).
pub(crate) fn piece_hash(data: &[u8], pl: u64) -> [u8; 32] {
    let mut l = leaves(data);
    l.resize((pl / BLOCK) as usize, [0; 32]);
    merkle_root(l, [0; 32])
}

/// A file's BEP 52 piece layer and `pieces root`, from its bytes read piece by piece in
/// parallel (on the current pool). `read(i, buf)` fills `buf` with piece `i`.
pub(crate) fn v2_hashes(
    length: u64,
    pl: u64,
    read: &(dyn Fn(u64, &mut [u8]) -> std::io::Result<()> + Sync),
) -> std::io::Result<(Vec<[u8; 32]>, [u8; 32])> {
    let n = length.div_ceil(pl);
    if length <= pl {
        let mut buf = vec![0u8; length as usize];
        read(0, &mut buf)?;
        let root = merkle_root(leaves(&buf), [0; 32]);
        return Ok((Vec::new(), root));
    }
    let layer: Vec<[u8; 32]> = (0..n)
        .into_par_iter()
        .map_init(
            || vec![0u8; pl as usize],
            |buf, i| {
                let len = pl.min(length - i * pl) as usize;
                read(i, &mut buf[..len])?;
                Ok(piece_hash(&buf[..len], pl))
            },
        )
        .collect::<std::io::Result<_>>()?;
    let root = merkle_root(layer.clone(), zero_subtree(pl / BLOCK));
    Ok((layer, root))
}

fn v2_status(meta: &Metainfo, f: &TorrentFile, file: &File, progress: &dyn Progress) -> Status {
    let Some(want_root) = f.pieces_root else {
        return Status::Ok; // empty file
    };
    let pl = meta.piece_length;
    let read = |i: u64, buf: &mut [u8]| -> std::io::Result<()> {
        file.read_exact_at(buf, i * pl)?;
        progress.bytes(buf.len() as u64);
        Ok(())
    };
    let (layer, root) = match v2_hashes(f.length, pl, &read) {
        Ok(v) => v,
        Err(e) => return Status::Error(format!("{}: {e}", f.rel())),
    };
    let range = |p: u64| (p * pl, ((p + 1) * pl).min(f.length));
    if let Some(want) = meta.piece_layers.get(&want_root) {
        let bad: Vec<u64> = (0..layer.len() as u64)
            .filter(|&i| want.get(i as usize) != Some(&layer[i as usize]))
            .collect();
        if !bad.is_empty() {
            return Status::Mismatch {
                what: format!("sha256 merkle hash of {}", describe(&bad, range)),
                expected: hex::encode(want[bad[0] as usize]),
                actual: hex::encode(layer[bad[0] as usize]),
                source: "torrent piece layers".into(),
            };
        }
    }
    if root != want_root {
        return Status::Mismatch {
            what: "sha256 pieces root".into(),
            expected: hex::encode(want_root),
            actual: hex::encode(root),
            source: "torrent file tree".into(),
        };
    }
    Status::Ok
}
