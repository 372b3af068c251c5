//! What `verify` checks tensor identity against: the tensor sets that JSON manifests claim
//! (each for the checkpoint it names, resolved beside the manifest), or a `--tensors REF`
//! reference (a manifest's first tensor set, or a checkpoint to hash); and the result line of
//! one comparison. Hashing a checkpoint is [`crate::tensors::hash_checkpoint`].

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::discover::{self, ManifestKind, PlanError};
use crate::json::TensorSet;
use crate::tensors;
use crate::verify::{FileResult, Status};

/// Why the claimed or reference tensor hashes could not be read.
#[derive(Debug, Error)]
pub enum ClaimError {
    /// A manifest could not be read or parsed (not a regular file, over the size cap, not
    /// UTF-8, not a valid JSON manifest), or a tensor set names a checkpoint outside the
    /// manifest's folder.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// `--tensors REF` names a manifest without tensor hashes.
    #[error("{}: holds no tensor hashes (write it with `llama-tool manifest DIR --format json --tensors`)", path.display())]
    NoTensorHashes {
        /// The manifest.
        path: PathBuf,
    },
}

/// The tensor sets claimed by the JSON manifests among `manifests` (other kinds are skipped),
/// each with the checkpoint path it names, resolved beside its manifest.
pub fn manifest_claims(manifests: &[PathBuf]) -> Result<Vec<(PathBuf, TensorSet)>, ClaimError> {
    let mut out = Vec::new();
    for m in manifests {
        let is_json = m
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| discover::manifest_kind(n) == Some(ManifestKind::Json));
        if !is_json {
            continue;
        }
        let manifest = discover::read_json_manifest(m)?;
        let base = m.parent().unwrap_or(Path::new("."));
        for set in manifest.tensor_sets {
            let ck = discover::resolve_or_base(base, &set.checkpoint, &m.display().to_string())?;
            out.push((ck, set));
        }
    }
    Ok(out)
}

/// What `--tensors REF` compares against.
#[derive(Debug)]
pub enum Reference {
    /// The first tensor set of a JSON manifest.
    Claimed(TensorSet),
    /// A checkpoint, to hash.
    Checkpoint(PathBuf),
}

/// Classify `--tensors REF`: a JSON manifest file gives its first tensor set, anything else is
/// a checkpoint.
pub fn reference(path: &Path) -> Result<Reference, ClaimError> {
    if !(path.is_file() && crate::json::is_manifest_name(path)) {
        return Ok(Reference::Checkpoint(path.to_path_buf()));
    }
    discover::read_json_manifest(path)?
        .tensor_sets
        .into_iter()
        .next()
        .map(Reference::Claimed)
        .ok_or_else(|| ClaimError::NoTensorHashes {
            path: path.to_path_buf(),
        })
}

/// The result line of comparing `actual` with `expected`: OK, or a mismatch naming how many
/// tensors differ and the first difference.
pub fn tensor_result(
    name: String,
    expected: &TensorSet,
    actual: &TensorSet,
    seconds: f64,
) -> FileResult {
    let diffs = tensors::compare(expected, actual);
    let status = match diffs.first() {
        None => Status::Ok,
        Some(first) => Status::Mismatch {
            what: format!(
                "{} of {} tensors differ; first: {first}",
                diffs.len(),
                expected.tensors.len()
            ),
            expected: format!("{} tensors", expected.tensors.len()),
            actual: format!("{} tensors", actual.tensors.len()),
            source: expected.scheme.clone(),
        },
    };
    FileResult {
        name,
        status,
        bytes: 0,
        seconds,
        digests: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_manifest_reference_is_a_checkpoint_and_a_manifest_without_sets_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let ck = d.path().join("model");
        std::fs::create_dir(&ck).unwrap();
        assert!(matches!(reference(&ck).unwrap(), Reference::Checkpoint(p) if p == ck));
        let bad = d.path().join("m.manifest.json");
        std::fs::write(&bad, "not json").unwrap();
        assert!(matches!(
            reference(&bad),
            Err(ClaimError::Plan(PlanError::Json(_)))
        ));
        let big = d.path().join("big.manifest.json");
        std::fs::write(
            &big,
            vec![b' '; crate::json::MAX_MANIFEST_BYTES as usize + 1],
        )
        .unwrap();
        let e = reference(&big).unwrap_err();
        assert!(
            matches!(e, ClaimError::Plan(PlanError::TooLarge { .. })),
            "{e}"
        );
        assert!(e.to_string().starts_with(&big.display().to_string()), "{e}");
    }

    #[test]
    fn only_json_manifests_claim_tensor_sets() {
        let d = tempfile::tempdir().unwrap();
        let chk = d.path().join("checklist.chk");
        std::fs::write(&chk, "garbage that is never read\n").unwrap();
        assert!(manifest_claims(&[chk]).unwrap().is_empty());
    }
}
