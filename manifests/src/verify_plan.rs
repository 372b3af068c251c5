//! What `llama-tool verify PATH...` checks: the jobs for the paths given (folders: every
//! manifest under them; manifests: what they list; other files: the manifest in their folder
//! or above that lists them), or one file against digests given on the command line
//! (`--sha256` / `--md5` / `--blake3`).

use std::path::{Path, PathBuf};

use crate::digest::Algo;
use crate::discover::{self, Expect, Job, Plan, PlanError};

/// Why the paths or the given digests make no plan.
#[derive(Debug, thiserror::Error)]
pub enum VerifyPlanError {
    /// A given digest is not hex of the algorithm's length.
    #[error("{flag}: expected {len} hex digits, got {hex:?}")]
    BadHex {
        /// The flag (`--sha256`).
        flag: String,
        /// Hex digits the algorithm has.
        len: usize,
        /// What was given (trimmed, lowercased).
        hex: String,
    },
    /// Digests given with other than one path.
    #[error("--sha256/--md5/--blake3 take exactly one file")]
    NotOneFile,
    /// Digests given for a folder.
    #[error("{0}: --sha256/--md5/--blake3 check one file, not a folder")]
    Folder(String),
    /// A manifest or path is unusable.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Digests given on the command line for one file, as hex.
#[derive(Debug, Clone, Copy, Default)]
pub struct GivenDigests<'a> {
    /// `--sha256`.
    pub sha256: Option<&'a str>,
    /// `--md5`.
    pub md5: Option<&'a str>,
    /// `--blake3`.
    pub blake3: Option<&'a str>,
}

impl GivenDigests<'_> {
    /// The expectations, each from its flag (`source` is `--sha256` and so on); hex is
    /// trimmed and lowercased, and must have the algorithm's length.
    pub fn expects(&self) -> Result<Vec<Expect>, VerifyPlanError> {
        let mut out = Vec::new();
        for (algo, v, flag) in [
            (Algo::Sha256, self.sha256, "--sha256"),
            (Algo::Md5, self.md5, "--md5"),
            (Algo::Blake3, self.blake3, "--blake3"),
        ] {
            if let Some(hex) = v {
                let hex = hex.trim().to_ascii_lowercase();
                if hex.len() != algo.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(VerifyPlanError::BadHex {
                        flag: flag.into(),
                        len: algo.hex_len(),
                        hex,
                    });
                }
                out.push(Expect {
                    algo,
                    hex,
                    source: flag.into(),
                });
            }
        }
        Ok(out)
    }
}

fn is_manifest_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| discover::manifest_kind(n).is_some())
}

/// The plan for `paths`: with `given` digests, the one file against them; otherwise the
/// merged jobs of every path, the unlisted files of the folders (for `--strict`), and the
/// manifests found in them plus the `.torrent` files given (checked by their own means).
pub fn plan_paths(paths: &[PathBuf], given: &GivenDigests) -> Result<Plan, VerifyPlanError> {
    let flags = given.expects()?;
    if !flags.is_empty() {
        let [one] = paths else {
            return Err(VerifyPlanError::NotOneFile);
        };
        if one.is_dir() {
            return Err(VerifyPlanError::Folder(one.display().to_string()));
        }
        let job = Job {
            path: one.clone(),
            name: one.display().to_string(),
            size: None,
            expect: flags,
            chunks: None,
        };
        return Ok(Plan {
            manifests: Vec::new(),
            jobs: vec![job],
            unlisted: Vec::new(),
        });
    }
    let mut jobs = Vec::new();
    let mut unlisted = Vec::new();
    let mut manifests = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|error| PlanError::Io {
            path: p.display().to_string(),
            error,
        })?;
        if meta.is_dir() {
            let plan = discover::plan_folder(p, &p.display().to_string())?;
            jobs.extend(plan.jobs);
            unlisted.extend(plan.unlisted);
            manifests.extend(plan.manifests);
        } else if discover::is_torrent(p) {
            manifests.push(p.clone());
        } else if is_manifest_file(p) {
            let base = p.parent().unwrap_or(Path::new(""));
            let shown = base.display().to_string();
            let base = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base
            };
            jobs.extend(discover::load_manifest(
                &base.join(p.file_name().unwrap_or_default()),
                base,
                &shown,
            )?);
        } else {
            jobs.push(discover::plan_file(p)?);
        }
    }
    Ok(Plan {
        manifests,
        jobs: discover::merge_jobs(jobs),
        unlisted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5_ABC: &str = "900150983cd24fb0d6963f7d28e17f72";

    #[test]
    fn given_digests_are_checked_and_normalized() {
        let g = GivenDigests {
            md5: Some(" 900150983CD24FB0D6963F7D28E17F72\n"),
            ..Default::default()
        };
        let e = g.expects().unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].algo, e[0].hex.as_str(), e[0].source.as_str()),
            (Algo::Md5, MD5_ABC, "--md5")
        );
        let bad = GivenDigests {
            sha256: Some("abc"),
            ..Default::default()
        };
        let err = bad.expects().unwrap_err();
        assert_eq!(
            err.to_string(),
            "--sha256: expected 64 hex digits, got \"abc\""
        );
        let not_hex = GivenDigests {
            md5: Some(&"g".repeat(32)),
            ..Default::default()
        };
        assert!(matches!(
            not_hex.expects(),
            Err(VerifyPlanError::BadHex { len: 32, .. })
        ));
        assert!(GivenDigests::default().expects().unwrap().is_empty());
    }

    #[test]
    fn given_digests_take_one_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a");
        std::fs::write(&f, "abc").unwrap();
        let g = GivenDigests {
            md5: Some(MD5_ABC),
            ..Default::default()
        };
        let plan = plan_paths(std::slice::from_ref(&f), &g).unwrap();
        assert_eq!(plan.jobs.len(), 1);
        assert_eq!(plan.jobs[0].path, f);
        assert_eq!(plan.jobs[0].expect[0].hex, MD5_ABC);
        assert!(matches!(
            plan_paths(&[f.clone(), f.clone()], &g),
            Err(VerifyPlanError::NotOneFile)
        ));
        assert!(matches!(
            plan_paths(&[d.path().to_path_buf()], &g),
            Err(VerifyPlanError::Folder(_))
        ));
    }

    #[test]
    fn folders_manifests_and_files_make_merged_jobs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "abc").unwrap();
        std::fs::write(d.path().join("extra"), "x").unwrap();
        let chk = d.path().join("checklist.chk");
        std::fs::write(&chk, format!("{MD5_ABC}  a\n")).unwrap();
        let none = GivenDigests::default();
        let folder = plan_paths(&[d.path().to_path_buf()], &none).unwrap();
        assert_eq!(folder.jobs.len(), 1);
        assert_eq!(folder.manifests, vec![chk.clone()]);
        assert_eq!(folder.unlisted.len(), 1);
        assert!(
            folder.unlisted[0].ends_with("extra"),
            "{:?}",
            folder.unlisted
        );
        // The manifest and the file it lists: one job, not two.
        let both = plan_paths(&[chk.clone(), d.path().join("a")], &none).unwrap();
        assert_eq!(both.jobs.len(), 1);
        assert!(both.manifests.is_empty());
        let t = d.path().join("x.torrent");
        let torrent = plan_paths(std::slice::from_ref(&t), &none);
        assert!(torrent.is_err(), "a missing path is an error");
        std::fs::write(&t, "d").unwrap();
        let listed = plan_paths(std::slice::from_ref(&t), &none).unwrap();
        assert_eq!(listed.manifests, vec![t]);
        let missing = plan_paths(&[d.path().join("nope")], &none).unwrap_err();
        assert!(matches!(
            missing,
            VerifyPlanError::Plan(PlanError::Io { .. })
        ));
    }
}
