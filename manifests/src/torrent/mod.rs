//! BitTorrent metainfo as a manifest: read ([`metainfo`]), verify a folder against it
//! ([`check`]), make one ([`create`]), magnet links ([`magnet`]), all over a strict
//! [`bencode`] codec. Specs: [BEP 3](https://www.bittorrent.org/beps/bep_0003.html) (v1),
//! [BEP 47](https://www.bittorrent.org/beps/bep_0047.html) (padding files),
//! [BEP 52](https://www.bittorrent.org/beps/bep_0052.html) (v2 and hybrid),
//! [BEP 9](https://www.bittorrent.org/beps/bep_0009.html) (magnet links).

pub mod bencode;
pub mod check;
pub mod create;
pub mod engine;
pub mod magnet;
pub mod malformed;
pub mod metainfo;
pub mod models;

#[cfg(test)]
mod tests;

pub use check::{content_root, verify_content};
pub use create::{create, CreateOptions};
pub use magnet::Magnet;
pub use malformed::{BadMagnet, Malformed};
pub use metainfo::{Metainfo, TorrentFile, Version};

/// Errors of reading, checking or making torrents (all exit 2: bad input).
#[derive(Debug, thiserror::Error)]
pub enum TorrentError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A `.torrent` is malformed or hostile.
    #[error("{file}: {problem}")]
    Invalid {
        /// The torrent.
        file: String,
        /// What is wrong.
        problem: Malformed,
    },
    /// The `.torrent` path is not a regular file.
    #[error("{file}: not a regular file")]
    NotAFile {
        /// The path.
        file: String,
    },
    /// A `.torrent` over the size cap.
    #[error("{file}: {size} bytes is too large for a .torrent (limit {limit})")]
    TooLarge {
        /// The path.
        file: String,
        /// Its size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// `create`: something in the folder is not a regular file or folder.
    #[error("{file}: not a regular file (refused in a torrent)")]
    NotRegular {
        /// The path.
        file: String,
    },
    /// `create`: a file name that is not UTF-8.
    #[error("{file}: file name is not UTF-8")]
    NonUtf8Name {
        /// The path.
        file: String,
    },
    /// `create`: the source has no UTF-8 name to name the torrent after.
    #[error("{file}: has no UTF-8 file name to name the torrent")]
    NoTorrentName {
        /// The source.
        file: String,
    },
    /// `create`: the folder holds no file.
    #[error("{file}: holds no file to put in a torrent")]
    NothingToShare {
        /// The source.
        file: String,
    },
    /// `create`: the file sizes add up past 2^64.
    #[error("{file}: file sizes overflow")]
    SizesOverflow {
        /// The source.
        file: String,
    },
    /// A bad magnet link.
    #[error("magnet link {uri:?}: {problem}")]
    Magnet {
        /// The link.
        uri: String,
        /// What is wrong.
        problem: BadMagnet,
    },
    /// The torrent is not the one a magnet link names.
    #[error("{file}: info-hash {actual} is not the {expected} the magnet link names")]
    WrongInfoHash {
        /// The torrent.
        file: String,
        /// From the link.
        expected: String,
        /// Of the torrent.
        actual: String,
    },
    /// `--piece-size` is not a power of two in range.
    #[error("piece size {0} must be a power of two from 16 KiB to 256 MiB")]
    PieceLength(u64),
    /// `--models` names a size the torrent does not hold.
    #[error("{torrent}: no model {wanted} (this torrent has: {have})")]
    NoSuchModel {
        /// The torrent's name.
        torrent: String,
        /// The size asked for.
        wanted: String,
        /// The sizes present.
        have: String,
    },
    /// The thread pool could not start.
    #[error("cannot start the hashing threads: {error}")]
    Threads {
        /// rayon's error.
        error: rayon::ThreadPoolBuildError,
    },
}
