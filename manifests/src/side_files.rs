//! The files written beside an output so that `llama-tool verify` can check it later: a Meta
//! folder's `checklist.chk` (md5 of the shards and `params.json`, as Meta's release has it;
//! `tokenizer.model` is not in it) and the sha256 manifest of a converted artifact
//! (`OUT.sha256` beside a file, `SHA256SUMS` inside a folder). Digests computed while the
//! files were written ([`Known`], from the export's taps) are used as they are; only files
//! without one (small JSON and tokenizer files) are read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use llama_formats::checkpoint::Checkpoint;
use llama_formats::export::ExportSummary;

use crate::digest::Algo;
use crate::write::{write_list_known, WriteError};

/// Digests by file path, (algorithm name, hex), as `ExportSummary::digests` holds them.
pub type Known = BTreeMap<PathBuf, Vec<(String, String)>>;

/// The name of Meta's md5 list.
pub const CHECKLIST: &str = "checklist.chk";

/// The name of the tokenizer Meta's release keeps out of its checklist.
const TOKENIZER: &str = "tokenizer.model";

fn lookup<'a>(known: &'a Known, algo: Algo) -> impl Fn(&Path) -> Option<String> + Sync + 'a {
    move |f: &Path| {
        known
            .get(f)?
            .iter()
            .find(|(a, _)| a == algo.name())
            .map(|(_, h)| h.clone())
    }
}

/// The digests an export computes while writing (its taps): sha256 for the output's
/// manifest (unless none is wanted), md5 for a Meta folder's `checklist.chk`.
pub fn export_digests(manifest: bool, meta_folder: bool) -> Vec<Algo> {
    let mut algos = Vec::new();
    if manifest {
        algos.push(Algo::Sha256);
    }
    if meta_folder {
        algos.push(Algo::Md5);
    }
    algos
}

/// Write `dir/checklist.chk` (md5sum format) over `files` (paths inside `dir`) except the
/// tokenizer, taking md5s already computed from `known`.
pub fn write_checklist(
    dir: &Path,
    files: &[PathBuf],
    known: &Known,
) -> Result<PathBuf, WriteError> {
    let listed: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != TOKENIZER))
        .cloned()
        .collect();
    write_list_known(
        &listed,
        Algo::Md5,
        &dir.join(CHECKLIST),
        &lookup(known, Algo::Md5),
    )
}

/// Where the sha256 manifest of the output `out` goes: `SHA256SUMS` inside a folder,
/// `OUT.sha256` beside a file.
pub fn output_manifest_path(out: &Path) -> PathBuf {
    if out.is_dir() {
        out.join("SHA256SUMS")
    } else {
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(".sha256");
        out.with_file_name(name)
    }
}

/// Write the sha256 manifest of the output `out` ([`output_manifest_path`]) over `files`
/// (everything written), taking sha256s already computed from `known`.
pub fn write_output_manifest(
    out: &Path,
    files: &[PathBuf],
    known: &Known,
) -> Result<PathBuf, WriteError> {
    write_list_known(
        files,
        Algo::Sha256,
        &output_manifest_path(out),
        &lookup(known, Algo::Sha256),
    )
}

/// Complete an exported Meta folder `dir` as the release has it: `tokenizer.model` beside
/// the shards (when the source has one) and `checklist.chk`; both are added to the summary's
/// files.
pub fn finish_meta_folder(
    ck: &Checkpoint,
    dir: &Path,
    summary: &mut ExportSummary,
) -> Result<(), WriteError> {
    let dest = dir.join(TOKENIZER);
    if ck.write_tokenizer(&dest).map_err(Box::new)? {
        summary.files.push(dest);
    }
    let list = write_checklist(dir, &summary.files, &summary.digests)?;
    summary.files.push(list);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checklist_leaves_out_the_tokenizer_and_uses_known_digests() {
        let t = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = ["consolidated.00.pth", TOKENIZER]
            .iter()
            .map(|n| t.path().join(n))
            .collect();
        files
            .iter()
            .for_each(|f| std::fs::write(f, b"abc").unwrap());
        let known: Known = [(files[0].clone(), vec![("md5".into(), "f".repeat(32))])].into();
        let list = write_checklist(t.path(), &files, &known).unwrap();
        let text = std::fs::read_to_string(list).unwrap();
        assert_eq!(text, format!("{}  consolidated.00.pth\n", "f".repeat(32)));
    }

    #[test]
    fn the_output_manifest_sits_beside_a_file_and_inside_a_folder() {
        let t = tempfile::tempdir().unwrap();
        let gguf = t.path().join("m.gguf");
        assert_eq!(output_manifest_path(&gguf), t.path().join("m.gguf.sha256"));
        assert_eq!(output_manifest_path(t.path()), t.path().join("SHA256SUMS"));
        std::fs::write(&gguf, b"abc").unwrap();
        let m = write_output_manifest(&gguf, std::slice::from_ref(&gguf), &Known::new()).unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            std::fs::read_to_string(m).unwrap(),
            format!("{abc}  m.gguf\n")
        );
        assert_eq!(export_digests(true, true), vec![Algo::Sha256, Algo::Md5]);
        assert!(export_digests(false, false).is_empty());
    }
}
