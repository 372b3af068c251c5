//! What is wrong with a malformed `.torrent` ([`super::TorrentError::Invalid`]) or magnet
//! link ([`super::TorrentError::Magnet`]): one variant per check the parsers make, with the
//! values they found.

use super::bencode::BencodeError;
use super::metainfo::MAX_PIECE_LENGTH;

/// Why a `.torrent`'s bytes are not a usable metainfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not strict bencode.
    #[error("not bencode: {error}")]
    NotBencode {
        /// The codec's error.
        error: BencodeError,
    },
    /// The document is not a dictionary.
    #[error("top level is not a dictionary")]
    TopNotDict,
    /// No `info` dictionary.
    #[error("no `info` dictionary")]
    NoInfo,
    /// `info` has no `name`.
    #[error("info has no `name`")]
    NoName,
    /// `info.name` is not a safe path component.
    #[error("name: {problem}")]
    Name {
        /// What is wrong with it.
        problem: BadComponent,
    },
    /// `info` has no integer `piece length`.
    #[error("info has no integer `piece length`")]
    NoPieceLength,
    /// `piece length` out of range.
    #[error("piece length {value} is absurd (expected 1..={MAX_PIECE_LENGTH})")]
    PieceLength {
        /// The value found.
        value: i64,
    },
    /// A `meta version` other than 2.
    #[error("meta version {version} is not supported (1 or 2)")]
    MetaVersion {
        /// The value found.
        version: i64,
    },
    /// Neither v1 `pieces` nor v2.
    #[error("info has neither `pieces` (v1) nor `meta version` 2")]
    NoVersion,
    /// A v2 piece length that is not a power of two of at least 16 KiB.
    #[error("piece length {value}: v2 needs a power of two of at least 16384")]
    V2PieceLength {
        /// The value found.
        value: u64,
    },
    /// A single-file torrent's `length` is bad.
    #[error("length: {problem}")]
    Length {
        /// What is wrong with it.
        problem: BadSize,
    },
    /// A v1 info with neither `length` nor `files`.
    #[error("info has neither `length` nor a `files` list")]
    NoFiles,
    /// Entry `index` of the v1 `files` list is bad.
    #[error("files[{index}]: {problem}")]
    File {
        /// Its index.
        index: usize,
        /// What is wrong with it.
        problem: BadFile,
    },
    /// The file lengths add up past 2^64.
    #[error("the file lengths overflow")]
    LengthsOverflow,
    /// An empty v1 `files` list.
    #[error("`files` is empty")]
    EmptyFiles,
    /// `pieces` is not a byte string.
    #[error("`pieces` is not a string")]
    PiecesNotString,
    /// `pieces` is not whole SHA-1 hashes.
    #[error("`pieces` is {bytes} bytes, not a multiple of 20")]
    PiecesLength {
        /// Its length.
        bytes: usize,
    },
    /// The number of v1 piece hashes disagrees with the content's size.
    #[error(
        "{count} piece hashes for {total} bytes in pieces of {piece_length} (expected {expected})"
    )]
    PieceCount {
        /// Hashes present.
        count: usize,
        /// Content bytes.
        total: u64,
        /// Piece length.
        piece_length: u64,
        /// Hashes expected.
        expected: u64,
    },
    /// A v2 info without `file tree`.
    #[error("v2 info has no `file tree`")]
    NoFileTree,
    /// The v2 `file tree` is bad.
    #[error("file tree: {problem}")]
    FileTree {
        /// What is wrong with it.
        problem: BadTree,
    },
    /// The v2 `file tree` holds no file.
    #[error("`file tree` holds no file")]
    EmptyFileTree,
    /// `piece layers` is not a dictionary.
    #[error("`piece layers` is not a dictionary")]
    LayersNotDict,
    /// A `piece layers` key that is not a 32-byte root.
    #[error("a `piece layers` key is not 32 bytes")]
    LayerKey,
    /// A `piece layers` value that is not whole SHA-256 hashes.
    #[error("a `piece layers` value is not a multiple of 32 bytes")]
    LayerValue,
    /// A hybrid torrent whose v1 list and v2 tree count different files.
    #[error("hybrid torrent: v1 lists {v1} files, the v2 tree {v2}")]
    HybridCount {
        /// Files in the v1 list (without padding).
        v1: usize,
        /// Files in the v2 tree.
        v2: usize,
    },
    /// A hybrid torrent's v1 file missing from the v2 tree or of another length there.
    #[error("hybrid torrent: v1 file {path} is not in the v2 tree with the same length")]
    HybridFile {
        /// The file's path.
        path: String,
    },
    /// A file's piece layer has the wrong number of hashes.
    #[error("piece layer of {path} has {count} hashes, expected {expected}")]
    LayerLength {
        /// The file's path.
        path: String,
        /// Hashes present.
        count: usize,
        /// Hashes expected.
        expected: u64,
    },
}

/// Why a length is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSize {
    /// A negative integer.
    #[error("{0} is negative")]
    Negative(i64),
    /// Not an integer.
    #[error("not an integer")]
    NotInt,
}

/// Why a name is not a path component safe to join under a folder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadComponent {
    /// Not UTF-8 (shown lossily).
    #[error("{lossy:?} is not UTF-8")]
    NotUtf8 {
        /// The name, invalid bytes replaced.
        lossy: String,
    },
    /// Empty, `.`, `..` or holding a separator or NUL.
    #[error("component {name:?} is empty, `.`, `..` or holds a separator (refused: it could leave the folder)")]
    Unsafe {
        /// The name.
        name: String,
    },
}

/// Why an entry of the v1 `files` list is bad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadFile {
    /// Not a dictionary.
    #[error("not a dictionary")]
    NotDict,
    /// No `length`.
    #[error("no length")]
    NoLength,
    /// A bad `length`.
    #[error("length: {problem}")]
    Length {
        /// What is wrong with it.
        problem: BadSize,
    },
    /// No `path` list.
    #[error("no path list")]
    NoPath,
    /// An empty `path` list.
    #[error("empty path")]
    EmptyPath,
    /// A path component that is not a byte string.
    #[error("path: path component is not a string")]
    ComponentNotString,
    /// A path component that is not safe.
    #[error("path: {problem}")]
    Component {
        /// What is wrong with it.
        problem: BadComponent,
    },
}

/// Why a v2 `file tree` is bad (`path` is where in the tree, `/`-joined).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadTree {
    /// A node that is not a dictionary.
    #[error("{path}: not a dictionary")]
    NotDict {
        /// Where.
        path: String,
    },
    /// A file node directly at the root (no name).
    #[error("a file with an empty name at the root")]
    RootFile,
    /// A file without `length`.
    #[error("{path}: no length")]
    NoLength {
        /// The file.
        path: String,
    },
    /// A file with a bad `length`.
    #[error("{path}: {problem}")]
    Length {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: BadSize,
    },
    /// A `pieces root` that is not 32 bytes.
    #[error("{path}: pieces root is not 32 bytes")]
    RootSize {
        /// The file.
        path: String,
    },
    /// A non-empty file without `pieces root`.
    #[error("{path}: no pieces root")]
    NoRoot {
        /// The file.
        path: String,
    },
    /// A name in the tree that is not a safe path component.
    #[error("{problem}")]
    Component {
        /// What is wrong with it.
        problem: BadComponent,
    },
}

/// Why a magnet link is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadMagnet {
    /// No `magnet:?` prefix.
    #[error("does not start with `magnet:?`")]
    NoPrefix,
    /// A value with broken `%XX` escapes.
    #[error("bad percent-encoding")]
    PercentEncoding,
    /// A `urn:btih:` that is neither 40 hex nor 32 base32 characters.
    #[error("btih is not 40 hex or 32 base32 characters")]
    Btih,
    /// A `urn:btmh:` that is not a SHA-256 multihash.
    #[error("btmh is not a SHA-256 multihash (1220 + 64 hex)")]
    Btmh,
    /// No info-hash at all.
    #[error("names no info-hash (xt=urn:btih:... or xt=urn:btmh:...)")]
    NoInfoHash,
}
