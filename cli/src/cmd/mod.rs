//! One module per command: parse, call a library, present.
pub mod check;
pub mod convert;
pub mod demo;
pub mod download;
pub mod download_torrent;
pub mod inspect;
pub mod logits;
pub mod manifest;
pub mod manifest_torrent;
pub mod quantize;
pub mod seed;
pub mod synth;
pub mod verify;
pub mod verify_torrent;
