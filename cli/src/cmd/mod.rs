//! One module per command: parse, call a library, present.
pub mod check;
pub mod completions;
pub mod convert;
pub mod demo;
pub mod diff;
pub mod download;
pub mod download_signature;
pub mod inspect;
pub mod inspect_signature;
pub mod logits;
pub mod manifest;
pub mod quantize;
pub mod sign;
pub mod synth;
pub mod tokenize;
pub mod verify;
pub mod verify_signature;
