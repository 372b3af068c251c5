//! Manifests of what a command wrote: `checklist.chk` (md5, as Meta's release has it) and
//! a sha256 manifest beside a converted artifact, so `llama-tool verify` can check it later.

use std::path::{Path, PathBuf};

use llama_manifests::digest::Algo;
use llama_manifests::write::write_list;

/// Write `dir/checklist.chk` (md5sum format) over `files` (paths inside `dir`).
pub fn write_checklist(dir: &Path, files: &[PathBuf]) -> anyhow::Result<PathBuf> {
    Ok(write_list(files, Algo::Md5, &dir.join("checklist.chk"))?)
}

/// Write a sha256 manifest for an output: `OUT.sha256` beside a file, `SHA256SUMS` inside a
/// folder (over every file written into it).
pub fn write_output_manifest(out: &Path, files: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let list = if out.is_dir() {
        out.join("SHA256SUMS")
    } else {
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(".sha256");
        out.with_file_name(name)
    };
    Ok(write_list(files, Algo::Sha256, &list)?)
}
