//! Making a `.torrent` of a folder (or one file): v1 (BEP 3), v2 (BEP 52) or hybrid (both,
//! with BEP 47 padding files so every file starts on a piece boundary). Deterministic: files
//! in byte order of their paths, no creation date unless one is given, a fixed `created by`.
//! Pieces are hashed in parallel on the current rayon pool.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha1::Digest as _;

use super::bencode::{self, Value};
use super::check::v2_hashes;
use super::metainfo::{Metainfo, Version, BLOCK, MAX_PIECE_LENGTH};
use super::TorrentError;

/// What to put in the torrent.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Piece length (a power of two, >= 16 KiB); None picks one for ~1000-2000 pieces.
    pub piece_length: Option<u64>,
    /// Tracker URLs (`announce`, and `announce-list` with one tier each when several).
    pub trackers: Vec<String>,
    /// Web seed URLs (BEP 19 `url-list`).
    pub web_seeds: Vec<String>,
    /// Set `private` = 1 (BEP 27).
    pub private: bool,
    /// v1, v2 or hybrid.
    pub version: Version,
    /// Unix time for `creation date`; None omits it (deterministic output).
    pub creation_date: Option<i64>,
    /// Optional `comment`.
    pub comment: Option<String>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            piece_length: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            version: Version::V1,
            creation_date: None,
            comment: None,
        }
    }
}

/// Piece length for `total` bytes: the smallest power of two from 16 KiB to 16 MiB giving at
/// most 2000 pieces.
pub(crate) fn default_piece_length(total: u64) -> u64 {
    let mut pl = BLOCK;
    while pl < (16 << 20) && total.div_ceil(pl) > 2000 {
        pl *= 2;
    }
    pl
}

struct Input {
    path: PathBuf,
    comps: Vec<String>,
    length: u64,
}

fn inputs(root: &Path, exclude: &[PathBuf]) -> Result<Vec<Input>, TorrentError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| TorrentError::Io {
            path: p,
            error: source,
        }
    };
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let p = entry.path();
            let fname = entry.file_name();
            let fname = fname.to_string_lossy();
            // Partial downloads, temporaries and our own staging folder are not content.
            if crate::listing::is_work_in_progress(&fname) || fname == super::engine::STAGING {
                continue;
            }
            let meta = std::fs::metadata(&p).map_err(io(&p))?;
            if meta.is_dir() {
                if !entry.file_type().map_err(io(&p))?.is_symlink() {
                    stack.push(p);
                }
                continue;
            }
            if !meta.is_file() {
                return Err(TorrentError::NotRegular {
                    file: p.display().to_string(),
                });
            }
            if exclude.iter().any(|e| same_file(e, &p)) {
                continue;
            }
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let comps = rel
                .components()
                .map(|c| {
                    c.as_os_str().to_str().map(str::to_string).ok_or_else(|| {
                        TorrentError::NonUtf8Name {
                            file: p.display().to_string(),
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Input {
                path: p,
                comps,
                length: meta.len(),
            });
        }
    }
    out.sort_by(|a, b| a.comps.cmp(&b.comps));
    Ok(out)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Make the torrent of `src` (a folder, or one file for a single-file torrent), leaving out
/// `exclude` (e.g. the output file itself). `on_bytes` is called as bytes are hashed.
/// Returns the `.torrent` bytes and their parse.
pub fn create(
    src: &Path,
    exclude: &[PathBuf],
    opts: &CreateOptions,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(Vec<u8>, Metainfo), TorrentError> {
    let shown = src.display().to_string();
    let meta = std::fs::metadata(src).map_err(|source| TorrentError::Io {
        path: shown.clone(),
        error: source,
    })?;
    let name = std::fs::canonicalize(src)
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .ok_or_else(|| TorrentError::NoTorrentName {
            file: shown.clone(),
        })?;
    let single = meta.is_file();
    let files = if single {
        vec![Input {
            path: src.to_path_buf(),
            comps: vec![name.clone()],
            length: meta.len(),
        }]
    } else {
        inputs(src, exclude)?
    };
    if files.is_empty() {
        return Err(TorrentError::NothingToShare { file: shown });
    }
    let total = files
        .iter()
        .try_fold(0u64, |a, f| a.checked_add(f.length))
        .ok_or_else(|| TorrentError::SizesOverflow {
            file: shown.clone(),
        })?;
    let pl = opts
        .piece_length
        .unwrap_or_else(|| default_piece_length(total));
    if !pl.is_power_of_two() || !(BLOCK..=MAX_PIECE_LENGTH).contains(&pl) {
        return Err(TorrentError::PieceLength(pl));
    }
    let handles = files
        .iter()
        .map(|f| {
            File::open(&f.path).map_err(|source| TorrentError::Io {
                path: f.path.display().to_string(),
                error: source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut info = BTreeMap::new();
    let mut root = BTreeMap::new();
    info.insert(b"name".to_vec(), Value::str(&name));
    info.insert(b"piece length".to_vec(), Value::Int(pl as i64));
    if opts.private {
        info.insert(b"private".to_vec(), Value::Int(1));
    }
    let v1 = opts.version != Version::V2;
    let v2 = opts.version != Version::V1;
    if v1 {
        // Segments of the v1 piece space: a file index, or padding.
        let mut segs: Vec<(Option<usize>, u64)> = Vec::new();
        let mut list = Vec::new();
        let mut offset = 0u64;
        for (i, f) in files.iter().enumerate() {
            segs.push((Some(i), f.length));
            offset += f.length;
            list.push(file_entry(&f.comps, f.length, false));
            let last = i + 1 == files.len();
            if v2 && !last && !offset.is_multiple_of(pl) {
                let pad = pl - offset % pl;
                segs.push((None, pad));
                offset += pad;
                list.push(file_entry(&[".pad".into(), pad.to_string()], pad, true));
            }
        }
        let paths: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
        let pieces = v1_pieces(&segs, &handles, &paths, pl, offset, on_bytes)?;
        if single {
            info.insert(b"length".to_vec(), Value::Int(total as i64));
        } else {
            info.insert(b"files".to_vec(), Value::List(list));
        }
        info.insert(b"pieces".to_vec(), Value::Bytes(pieces.concat()));
    }
    if v2 {
        let mut tree = BTreeMap::new();
        let mut layers = BTreeMap::new();
        for (f, h) in files.iter().zip(&handles) {
            let mut leaf = BTreeMap::new();
            leaf.insert(b"length".to_vec(), Value::Int(f.length as i64));
            if f.length > 0 {
                let read = |i: u64, buf: &mut [u8]| -> std::io::Result<()> {
                    h.read_exact_at(buf, i * pl)?;
                    on_bytes(buf.len() as u64);
                    Ok(())
                };
                let (layer, r) =
                    v2_hashes(f.length, pl, &read).map_err(|source| TorrentError::Io {
                        path: f.path.display().to_string(),
                        error: source,
                    })?;
                leaf.insert(b"pieces root".to_vec(), Value::Bytes(r.to_vec()));
                if !layer.is_empty() {
                    layers.insert(r.to_vec(), Value::Bytes(layer.concat()));
                }
            }
            insert_tree(&mut tree, &f.comps, leaf);
        }
        info.insert(b"file tree".to_vec(), Value::Dict(tree));
        info.insert(b"meta version".to_vec(), Value::Int(2));
        root.insert(b"piece layers".to_vec(), Value::Dict(layers));
    }
    if let Some(first) = opts.trackers.first() {
        root.insert(b"announce".to_vec(), Value::str(first));
        if opts.trackers.len() > 1 {
            let tiers = opts
                .trackers
                .iter()
                .map(|t| Value::List(vec![Value::str(t)]))
                .collect();
            root.insert(b"announce-list".to_vec(), Value::List(tiers));
        }
    }
    if !opts.web_seeds.is_empty() {
        let seeds = opts.web_seeds.iter().map(|s| Value::str(s)).collect();
        root.insert(b"url-list".to_vec(), Value::List(seeds));
    }
    if let Some(c) = &opts.comment {
        root.insert(b"comment".to_vec(), Value::str(c));
    }
    if let Some(t) = opts.creation_date {
        root.insert(b"creation date".to_vec(), Value::Int(t));
    }
    root.insert(b"created by".to_vec(), Value::str("llama-tool"));
    root.insert(b"info".to_vec(), Value::Dict(info));
    let bytes = bencode::encode(&Value::Dict(root));
    let meta = Metainfo::parse(&bytes, &shown)?;
    Ok((bytes, meta))
}

fn file_entry(comps: &[String], length: u64, padding: bool) -> Value {
    let mut d = BTreeMap::new();
    if padding {
        d.insert(b"attr".to_vec(), Value::str("p"));
    }
    d.insert(b"length".to_vec(), Value::Int(length as i64));
    d.insert(
        b"path".to_vec(),
        Value::List(comps.iter().map(|c| Value::str(c)).collect()),
    );
    Value::Dict(d)
}

fn insert_tree(
    tree: &mut BTreeMap<Vec<u8>, Value>,
    comps: &[String],
    leaf: BTreeMap<Vec<u8>, Value>,
) {
    let Some((first, rest)) = comps.split_first() else {
        return;
    };
    let entry = tree
        .entry(first.as_bytes().to_vec())
        .or_insert_with(|| Value::Dict(BTreeMap::new()));
    if let Value::Dict(d) = entry {
        if rest.is_empty() {
            d.insert(Vec::new(), Value::Dict(leaf));
        } else {
            insert_tree(d, rest, leaf);
        }
    }
}

fn v1_pieces(
    segs: &[(Option<usize>, u64)],
    handles: &[File],
    paths: &[&Path],
    pl: u64,
    total: u64,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Vec<[u8; 20]>, TorrentError> {
    let mut starts = Vec::with_capacity(segs.len());
    let mut off = 0u64;
    for (_, len) in segs {
        starts.push(off);
        off += len;
    }
    (0..total.div_ceil(pl))
        .into_par_iter()
        .map_init(
            || vec![0u8; pl as usize],
            |buf, i| {
                let start = i * pl;
                let end = (start + pl).min(total);
                let data = &mut buf[..(end - start) as usize];
                let first = starts.partition_point(|&s| s <= start).saturating_sub(1);
                for (k, (seg, len)) in segs.iter().enumerate().skip(first) {
                    let s = starts[k];
                    if s >= end {
                        break;
                    }
                    if *len == 0 || s + len <= start {
                        continue;
                    }
                    let lo = s.max(start);
                    let hi = (s + len).min(end);
                    let dst = &mut data[(lo - start) as usize..(hi - start) as usize];
                    match seg {
                        None => dst.fill(0),
                        Some(fi) => {
                            handles[*fi].read_exact_at(dst, lo - s).map_err(|source| {
                                TorrentError::Io {
                                    path: paths[*fi].display().to_string(),
                                    error: source,
                                }
                            })?;
                            on_bytes(hi - lo);
                        }
                    }
                }
                Ok(sha1::Sha1::digest(&*data).into())
            },
        )
        .collect()
}
