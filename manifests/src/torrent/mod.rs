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
pub mod metainfo;
pub mod models;

#[cfg(test)]
mod tests;

pub use check::{content_root, verify_content};
pub use create::{create, CreateOptions};
pub use magnet::Magnet;
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
    #[error("{file}: {what}")]
    Invalid {
        /// The torrent (or input file).
        file: String,
        /// What is wrong.
        what: String,
    },
    /// A bad magnet link.
    #[error("magnet link {uri:?}: {what}")]
    Magnet {
        /// The link.
        uri: String,
        /// What is wrong.
        what: String,
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
    #[error("cannot start the hashing threads: {0}")]
    Threads(String),
}
