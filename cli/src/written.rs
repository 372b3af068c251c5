//! Manifests of what a command wrote: `checklist.chk` (md5, as Meta's release has it) and
//! a sha256 manifest beside a converted artifact, so `llama-tool verify` can check it later.
//! Digests computed while the files were written ([`Known`], from the export's taps) are
//! used as they are; only files without one (small JSON and tokenizer files) are read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use llama_manifests::digest::Algo;
use llama_manifests::write::{write_list, write_list_known};

/// Digests by file path, (algorithm name, hex), as `ExportSummary::digests` holds them.
pub type Known = BTreeMap<PathBuf, Vec<(String, String)>>;

fn lookup<'a>(known: &'a Known, algo: Algo) -> impl Fn(&Path) -> Option<String> + Sync + 'a {
    move |f: &Path| {
        known
            .get(f)?
            .iter()
            .find(|(a, _)| a == algo.name())
            .map(|(_, h)| h.clone())
    }
}

/// Write `dir/checklist.chk` (md5sum format) over `files` (paths inside `dir`).
pub fn write_checklist(dir: &Path, files: &[PathBuf]) -> anyhow::Result<PathBuf> {
    Ok(write_list(files, Algo::Md5, &dir.join("checklist.chk"))?)
}

/// [`write_checklist`] taking md5s already computed from `known`.
pub fn write_checklist_known(
    dir: &Path,
    files: &[PathBuf],
    known: &Known,
) -> anyhow::Result<PathBuf> {
    let out = dir.join("checklist.chk");
    Ok(write_list_known(
        files,
        Algo::Md5,
        &out,
        &lookup(known, Algo::Md5),
    )?)
}

/// Write a sha256 manifest for an output: `OUT.sha256` beside a file, `SHA256SUMS` inside a
/// folder (over every file written into it), taking sha256s already computed from `known`.
pub fn write_output_manifest(
    out: &Path,
    files: &[PathBuf],
    known: &Known,
) -> anyhow::Result<PathBuf> {
    let list = if out.is_dir() {
        out.join("SHA256SUMS")
    } else {
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(".sha256");
        out.with_file_name(name)
    };
    Ok(write_list_known(
        files,
        Algo::Sha256,
        &list,
        &lookup(known, Algo::Sha256),
    )?)
}
