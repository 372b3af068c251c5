#![no_main]
//! Fuzz target `torrent`: see fuzz/harness.rs and docs/SECURITY.md.

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run("torrent", data));
