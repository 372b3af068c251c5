//! llama-manifests: checksum manifests, verification, download.
//!
//! - [`digest`]: MD5 / SHA-256 / BLAKE3, several at once over one streaming read.
//! - [`checksums`]: md5sum / sha256sum / b3sum lists (GNU and BSD lines), read and write.
//! - [`json`]: the llama-tool JSON manifest (sizes, whole-file and chunk digests, tensor hashes).
//! - [`tensors`]: format-independent per-tensor content hashes.
//! - [`discover`]: manifests in a folder -> a plan of files and claims; path-escape refusal.
//! - [`verify`]: parallel verification with progress through a trait.
//! - [`verify_plan`]: what `verify PATH...` checks (paths, manifests, digests given).
//! - [`write`]: checksum lists over files a command wrote.
//! - [`build`]: a folder's manifest: list, hash in parallel, write a list or JSON.
//! - [`listing`]: what a folder's content is (no manifests, partial downloads, temporaries).
//! - [`tally`]: verification and download results counted by kind.
//! - [`torrent`]: BitTorrent metainfo (v1, v2, hybrid): parse, verify a folder, create; magnets.
//! - [`download`]: resumable, verified HTTP download of a release or a manifest's files.
//! - [`side_files`]: `checklist.chk` and the sha256 manifest written beside an output.
//! - [`sign`]: OpenSSF model signing (model_signing 1.1.1 key-based bundles): sign and verify.
//!
//! Libraries never print: progress goes through [`verify::Progress`] and
//! [`download::DownloadProgress`].

#![deny(missing_docs)]

pub mod build;
pub mod checksums;
pub mod diff;
pub mod digest;
pub mod discover;
pub mod download;
pub mod json;
pub mod listing;
pub mod side_files;
pub mod sign;
pub mod tally;
pub mod tensor_claims;
pub mod tensors;
pub mod torrent;
pub mod verify;
pub mod verify_plan;
pub mod write;

pub use build::{build_manifest, BuildError};
pub use digest::Algo;
pub use download::{download_all, DownloadError};
pub use json::Manifest;
pub use sign::{sign_model, verify_bundle, SignError};
pub use torrent::TorrentError;
pub use verify::verify_all;
