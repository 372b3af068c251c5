//! `.torrent` metainfo: v1 ([BEP 3](https://www.bittorrent.org/beps/bep_0003.html)), padding
//! files ([BEP 47](https://www.bittorrent.org/beps/bep_0047.html), `attr` containing `p`), v2
//! and hybrid ([BEP 52](https://www.bittorrent.org/beps/bep_0052.html): `file tree`,
//! `pieces root`, `piece layers`). Every size goes through checked arithmetic, the number of
//! v1 pieces must match the total length, and a path component that is empty, `.`, `..`,
//! holds a `/`, `\` or NUL is refused: a torrent cannot name a file outside its folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha1::Digest as _;

use super::bencode::{self, Value};
use super::malformed::{BadComponent, BadFile, BadSize, BadTree, Malformed};
use super::TorrentError;

/// Largest `.torrent` file read (the LLaMA release's v1 torrent is ~0.3 MB).
pub(crate) const MAX_TORRENT_BYTES: u64 = 64 << 20;
/// Largest piece length accepted (clients use at most 16-64 MiB).
pub(crate) const MAX_PIECE_LENGTH: u64 = 256 << 20;
/// BEP 52 merkle leaf size.
pub(crate) const BLOCK: u64 = 16 << 10;

/// Which hashes a torrent carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// SHA-1 pieces only.
    V1,
    /// SHA-256 merkle trees only.
    V2,
    /// Both, over the same files.
    Hybrid,
}

/// One file of a torrent, in the torrent's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentFile {
    /// Path components under the torrent's root folder (for a single-file torrent: the name).
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// Offset of its first byte in the v1 piece space (0 for a v2-only torrent).
    pub offset: u64,
    /// A BEP 47 padding file (not on disk; zeros).
    pub padding: bool,
    /// BEP 52 merkle root of its 16 KiB blocks (none for an empty file or a v1 torrent).
    pub(crate) pieces_root: Option<[u8; 32]>,
}

impl TorrentFile {
    /// `a/b/c`.
    pub fn rel(&self) -> String {
        self.path.join("/")
    }
}

/// A parsed `.torrent`.
#[derive(Clone, Debug)]
pub struct Metainfo {
    /// `info.name`.
    pub name: String,
    /// True when the info holds `length` rather than `files` (v1) or a tree of one file named
    /// like the torrent (v2).
    pub(crate) single_file: bool,
    /// `info.piece length`.
    pub piece_length: u64,
    /// Files in torrent order; v1 order with padding files when v1 hashes exist.
    pub files: Vec<TorrentFile>,
    /// v1 SHA-1 piece hashes.
    pub pieces: Vec<[u8; 20]>,
    /// Which hashes it carries.
    pub version: Version,
    /// SHA-1 of the raw `info` bytes (v1 and hybrid).
    pub info_hash_v1: Option<[u8; 20]>,
    /// SHA-256 of the raw `info` bytes (v2 and hybrid).
    pub info_hash_v2: Option<[u8; 32]>,
    /// `piece layers`: pieces root -> piece-level hashes.
    pub(crate) piece_layers: BTreeMap<[u8; 32], Vec<[u8; 32]>>,
    /// `announce` then `announce-list`, deduplicated.
    pub trackers: Vec<String>,
    /// `url-list` (BEP 19).
    pub web_seeds: Vec<String>,
    /// `info.private` = 1.
    pub private: bool,
}

impl Metainfo {
    /// Read and parse a `.torrent` file.
    pub fn read(path: &Path) -> Result<Metainfo, TorrentError> {
        let shown = path.display().to_string();
        let io = |source| TorrentError::Io {
            path: shown.clone(),
            error: source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(TorrentError::NotAFile { file: shown });
        }
        if meta.len() > MAX_TORRENT_BYTES {
            return Err(TorrentError::TooLarge {
                file: shown,
                size: meta.len(),
                limit: MAX_TORRENT_BYTES,
            });
        }
        let data = std::fs::read(path).map_err(io)?;
        Metainfo::parse(&data, &shown)
    }

    /// Parse the bytes of a `.torrent`; `file` names it in errors.
    pub fn parse(data: &[u8], file: &str) -> Result<Metainfo, TorrentError> {
        let bad = |problem: Malformed| TorrentError::Invalid {
            file: file.to_string(),
            problem,
        };
        let doc = bencode::decode(data).map_err(|error| bad(Malformed::NotBencode { error }))?;
        let root = doc
            .value
            .as_dict()
            .ok_or_else(|| bad(Malformed::TopNotDict))?;
        let info = root
            .get(b"info".as_slice())
            .and_then(Value::as_dict)
            .ok_or_else(|| bad(Malformed::NoInfo))?;
        let span = doc
            .spans
            .get(b"info".as_slice())
            .cloned()
            .ok_or_else(|| bad(Malformed::NoInfo))?;
        let raw_info = &data[span];

        let name = info
            .get(b"name.utf-8".as_slice())
            .or_else(|| info.get(b"name".as_slice()))
            .and_then(Value::as_bytes)
            .ok_or_else(|| bad(Malformed::NoName))?;
        let name = component(name).map_err(|problem| bad(Malformed::Name { problem }))?;
        let piece_length = info
            .get(b"piece length".as_slice())
            .and_then(Value::as_int)
            .ok_or_else(|| bad(Malformed::NoPieceLength))?;
        if piece_length <= 0 || piece_length as u64 > MAX_PIECE_LENGTH {
            return Err(bad(Malformed::PieceLength {
                value: piece_length,
            }));
        }
        let piece_length = piece_length as u64;
        let meta_version = info.get(b"meta version".as_slice()).and_then(Value::as_int);
        let has_v2 = meta_version == Some(2);
        if meta_version.is_some_and(|v| v != 2) {
            return Err(bad(Malformed::MetaVersion {
                version: meta_version.unwrap_or(0),
            }));
        }
        let has_v1 = info.contains_key(b"pieces".as_slice());
        if !has_v1 && !has_v2 {
            return Err(bad(Malformed::NoVersion));
        }
        if has_v2 && (!piece_length.is_power_of_two() || piece_length < BLOCK) {
            return Err(bad(Malformed::V2PieceLength {
                value: piece_length,
            }));
        }

        let mut files = Vec::new();
        let mut single_file = false;
        if has_v1 {
            if let Some(len) = info.get(b"length".as_slice()) {
                let length = size(len).map_err(|problem| bad(Malformed::Length { problem }))?;
                single_file = true;
                files.push(TorrentFile {
                    path: vec![name.clone()],
                    length,
                    offset: 0,
                    padding: false,
                    pieces_root: None,
                });
            } else {
                let list = info
                    .get(b"files".as_slice())
                    .and_then(Value::as_list)
                    .ok_or_else(|| bad(Malformed::NoFiles))?;
                let mut offset = 0u64;
                for (i, f) in list.iter().enumerate() {
                    let at = |problem: BadFile| bad(Malformed::File { index: i, problem });
                    let f = f.as_dict().ok_or_else(|| at(BadFile::NotDict))?;
                    let length = f
                        .get(b"length".as_slice())
                        .ok_or_else(|| at(BadFile::NoLength))
                        .and_then(|v| size(v).map_err(|problem| at(BadFile::Length { problem })))?;
                    let comps = f
                        .get(b"path.utf-8".as_slice())
                        .or_else(|| f.get(b"path".as_slice()))
                        .and_then(Value::as_list)
                        .ok_or_else(|| at(BadFile::NoPath))?;
                    if comps.is_empty() {
                        return Err(at(BadFile::EmptyPath));
                    }
                    let path = comps
                        .iter()
                        .map(|c| {
                            c.as_bytes()
                                .ok_or(BadFile::ComponentNotString)
                                .and_then(|c| {
                                    component(c).map_err(|problem| BadFile::Component { problem })
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(at)?;
                    let padding = f
                        .get(b"attr".as_slice())
                        .and_then(Value::as_bytes)
                        .is_some_and(|a| a.contains(&b'p'));
                    files.push(TorrentFile {
                        path,
                        length,
                        offset,
                        padding,
                        pieces_root: None,
                    });
                    offset = offset
                        .checked_add(length)
                        .ok_or_else(|| bad(Malformed::LengthsOverflow))?;
                }
                if files.is_empty() {
                    return Err(bad(Malformed::EmptyFiles));
                }
            }
        }
        let mut pieces = Vec::new();
        if has_v1 {
            let raw = info
                .get(b"pieces".as_slice())
                .and_then(Value::as_bytes)
                .ok_or_else(|| bad(Malformed::PiecesNotString))?;
            if raw.len() % 20 != 0 {
                return Err(bad(Malformed::PiecesLength { bytes: raw.len() }));
            }
            pieces = raw
                .chunks_exact(20)
                .map(|c| {
                    let mut h = [0u8; 20];
                    h.copy_from_slice(c);
                    h
                })
                .collect();
            let total = files
                .iter()
                .try_fold(0u64, |a, f| a.checked_add(f.length))
                .ok_or_else(|| bad(Malformed::LengthsOverflow))?;
            let want = total.div_ceil(piece_length);
            if want != pieces.len() as u64 {
                return Err(bad(Malformed::PieceCount {
                    count: pieces.len(),
                    total,
                    piece_length,
                    expected: want,
                }));
            }
        }
        let mut piece_layers = BTreeMap::new();
        if has_v2 {
            let tree = info
                .get(b"file tree".as_slice())
                .and_then(Value::as_dict)
                .ok_or_else(|| bad(Malformed::NoFileTree))?;
            let mut v2 = Vec::new();
            walk_tree(tree, &mut Vec::new(), &mut v2)
                .map_err(|problem| bad(Malformed::FileTree { problem }))?;
            if v2.is_empty() {
                return Err(bad(Malformed::EmptyFileTree));
            }
            if let Some(layers) = root.get(b"piece layers".as_slice()) {
                let layers = layers
                    .as_dict()
                    .ok_or_else(|| bad(Malformed::LayersNotDict))?;
                for (k, v) in layers {
                    let key: [u8; 32] = k
                        .as_slice()
                        .try_into()
                        .map_err(|_| bad(Malformed::LayerKey))?;
                    let raw = v
                        .as_bytes()
                        .filter(|r| r.len() % 32 == 0)
                        .ok_or_else(|| bad(Malformed::LayerValue))?;
                    let hashes: Vec<[u8; 32]> = raw
                        .chunks_exact(32)
                        .map(|c| {
                            let mut h = [0u8; 32];
                            h.copy_from_slice(c);
                            h
                        })
                        .collect();
                    piece_layers.insert(key, hashes);
                }
            }
            if v2.len() == 1 && v2[0].path == [name.clone()] {
                single_file = true;
            }
            if has_v1 {
                // Hybrid: the v1 list (without padding) must be the same files as the tree.
                let real: Vec<&mut TorrentFile> = files.iter_mut().filter(|f| !f.padding).collect();
                if real.len() != v2.len() {
                    return Err(bad(Malformed::HybridCount {
                        v1: real.len(),
                        v2: v2.len(),
                    }));
                }
                let by_path: BTreeMap<&Vec<String>, &TorrentFile> =
                    v2.iter().map(|f| (&f.path, f)).collect();
                for f in real {
                    match by_path.get(&f.path) {
                        Some(t) if t.length == f.length => f.pieces_root = t.pieces_root,
                        _ => return Err(bad(Malformed::HybridFile { path: f.rel() })),
                    }
                }
            } else {
                files = v2;
            }
            for f in files.iter().filter(|f| f.length > piece_length) {
                let Some(root) = f.pieces_root else { continue };
                let want = f.length.div_ceil(piece_length);
                match piece_layers.get(&root) {
                    Some(l) if l.len() as u64 == want => {}
                    Some(l) => {
                        return Err(bad(Malformed::LayerLength {
                            path: f.rel(),
                            count: l.len(),
                            expected: want,
                        }))
                    }
                    None => {} // a torrent from a magnet link may lack them; roots still check
                }
            }
        }
        let version = match (has_v1, has_v2) {
            (true, true) => Version::Hybrid,
            (false, true) => Version::V2,
            _ => Version::V1,
        };
        let mut trackers = Vec::new();
        if let Some(a) = root.get(b"announce".as_slice()).and_then(Value::as_bytes) {
            trackers.push(String::from_utf8_lossy(a).into_owned());
        }
        for tier in root
            .get(b"announce-list".as_slice())
            .and_then(Value::as_list)
            .unwrap_or_default()
        {
            for t in tier.as_list().unwrap_or_default() {
                if let Some(t) = t.as_bytes() {
                    let t = String::from_utf8_lossy(t).into_owned();
                    if !trackers.contains(&t) {
                        trackers.push(t);
                    }
                }
            }
        }
        let web_seeds = match root.get(b"url-list".as_slice()) {
            Some(Value::Bytes(b)) => vec![String::from_utf8_lossy(b).into_owned()],
            Some(Value::List(l)) => l
                .iter()
                .filter_map(Value::as_bytes)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect(),
            _ => Vec::new(),
        };
        let private = info.get(b"private".as_slice()).and_then(Value::as_int) == Some(1);
        Ok(Metainfo {
            name,
            single_file,
            piece_length,
            files,
            pieces,
            version,
            info_hash_v1: has_v1.then(|| sha1::Sha1::digest(raw_info).into()),
            info_hash_v2: has_v2.then(|| sha2::Sha256::digest(raw_info).into()),
            piece_layers,
            trackers,
            web_seeds,
            private,
        })
    }

    /// Total bytes of the v1 piece space (padding included).
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }

    /// Bytes of real (non-padding) files.
    pub fn content_length(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| !f.padding)
            .map(|f| f.length)
            .sum()
    }

    /// Where file `f` lives when the content's root folder is `root`.
    pub fn file_path(&self, root: &Path, f: &TorrentFile) -> PathBuf {
        if self.single_file {
            return root.to_path_buf();
        }
        let mut p = root.to_path_buf();
        for c in &f.path {
            p.push(c);
        }
        p
    }

    /// A magnet link naming this torrent (`xt=urn:btih:` and/or `urn:btmh:`, `dn`, trackers).
    pub fn magnet(&self) -> String {
        let mut parts = Vec::new();
        if let Some(h) = self.info_hash_v1 {
            parts.push(format!("xt=urn:btih:{}", hex::encode(h)));
        }
        if let Some(h) = self.info_hash_v2 {
            parts.push(format!("xt=urn:btmh:1220{}", hex::encode(h)));
        }
        parts.push(format!("dn={}", super::magnet::percent_encode(&self.name)));
        for t in &self.trackers {
            parts.push(format!("tr={}", super::magnet::percent_encode(t)));
        }
        format!("magnet:?{}", parts.join("&"))
    }
}

/// A non-negative integer length.
fn size(v: &Value) -> Result<u64, BadSize> {
    match v.as_int() {
        Some(n) if n >= 0 => Ok(n as u64),
        Some(n) => Err(BadSize::Negative(n)),
        None => Err(BadSize::NotInt),
    }
}

/// One path component, safe to join under a folder.
fn component(raw: &[u8]) -> Result<String, BadComponent> {
    let s = std::str::from_utf8(raw).map_err(|_| BadComponent::NotUtf8 {
        lossy: String::from_utf8_lossy(raw).into_owned(),
    })?;
    if s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']) {
        return Err(BadComponent::Unsafe {
            name: s.to_string(),
        });
    }
    Ok(s.to_string())
}

fn walk_tree(
    tree: &BTreeMap<Vec<u8>, Value>,
    prefix: &mut Vec<String>,
    out: &mut Vec<TorrentFile>,
) -> Result<(), BadTree> {
    for (k, v) in tree {
        let d = v.as_dict().ok_or_else(|| BadTree::NotDict {
            path: prefix.join("/"),
        })?;
        if k.is_empty() {
            // A file: `"": {length, pieces root}`.
            if prefix.is_empty() {
                return Err(BadTree::RootFile);
            }
            let length = d
                .get(b"length".as_slice())
                .ok_or_else(|| BadTree::NoLength {
                    path: prefix.join("/"),
                })
                .and_then(|l| {
                    size(l).map_err(|problem| BadTree::Length {
                        path: prefix.join("/"),
                        problem,
                    })
                })?;
            let pieces_root = match d.get(b"pieces root".as_slice()).and_then(Value::as_bytes) {
                Some(r) => Some(<[u8; 32]>::try_from(r).map_err(|_| BadTree::RootSize {
                    path: prefix.join("/"),
                })?),
                None if length > 0 => {
                    return Err(BadTree::NoRoot {
                        path: prefix.join("/"),
                    })
                }
                None => None,
            };
            let padding = d
                .get(b"attr".as_slice())
                .and_then(Value::as_bytes)
                .is_some_and(|a| a.contains(&b'p'));
            if !padding {
                out.push(TorrentFile {
                    path: prefix.clone(),
                    length,
                    offset: 0,
                    padding: false,
                    pieces_root,
                });
            }
            continue;
        }
        prefix.push(component(k).map_err(|problem| BadTree::Component { problem })?);
        walk_tree(d, prefix, out)?;
        prefix.pop();
    }
    Ok(())
}
