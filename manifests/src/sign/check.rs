//! Comparing a model folder with a verified signature: the signed resources become
//! [`crate::verify`] jobs (a whole-file digest per file, or the shard digests as chunks for
//! `method: shards`), and the folder walked with the same rules as signing names every extra
//! file, symlink and special file. Verification then runs on the ordinary verify engine, so
//! reports, `--json` and exit codes are those of every verify mode.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::serialize::{self, GIT_IGNORES};
use super::statement::{Method, ModelManifest};
use super::{PayloadProblem, SignError, Unsupported};
use crate::discover::{Chunks, Expect, Job};
use crate::verify::{FileResult, Status};

/// How to compare.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Follow symlinks (also when the signature says it was made so).
    pub allow_symlinks: bool,
    /// Extra paths to leave out, relative to the model.
    pub ignore: Vec<String>,
    /// Check only the signed files; extra files are not failures.
    pub ignore_unsigned: bool,
    /// The signature file: ignored when it lies inside the model.
    pub signature: Option<PathBuf>,
}

/// The jobs to run and the failures known without hashing.
#[derive(Debug, Default)]
pub struct CheckPlan {
    /// One job per signed file.
    pub jobs: Vec<Job>,
    /// Extra files (UNLISTED), and symlinks or special files where a file belongs (ERROR).
    pub failures: Vec<FileResult>,
}

fn result(name: String, status: Status) -> FileResult {
    FileResult {
        name,
        status,
        bytes: 0,
        seconds: 0.0,
        digests: Vec::new(),
    }
}

/// Join a signed resource name under `root`: only plain relative components.
fn join_resource(root: &Path, name: &str, sig: &str) -> Result<PathBuf, SignError> {
    if name == "." {
        return Ok(root.to_path_buf());
    }
    let escape = || SignError::PathEscape {
        path: sig.into(),
        name: name.into(),
    };
    if name.is_empty() || name.contains('\0') || name.starts_with('/') {
        return Err(escape());
    }
    let mut out = root.to_path_buf();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return Err(escape()),
        }
    }
    if out == root {
        return Err(escape());
    }
    Ok(out)
}

/// Split a shard name `path:start:end`.
fn split_shard(name: &str) -> Option<(&str, u64, u64)> {
    let mut it = name.rsplitn(3, ':');
    let end = it.next()?.parse().ok()?;
    let start = it.next()?.parse().ok()?;
    let path = it.next()?;
    (start < end).then_some((path, start, end))
}

/// One signed file and what it must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SignedFile {
    /// Relative POSIX path (`.` for a single-file model).
    pub name: String,
    /// Size, when the signature implies it (shards).
    pub size: Option<u64>,
    /// Whole-file digest (`method: files`).
    pub expect: Vec<Expect>,
    /// Shard digests (`method: shards`).
    pub chunks: Option<Chunks>,
}

/// The files a verified manifest lists, in order, with their claims. Shards must tile each
/// file in `shard_size` pieces from 0 (the last one short).
pub(crate) fn signed_files(
    manifest: &ModelManifest,
    sig: &str,
) -> Result<Vec<SignedFile>, SignError> {
    let ser = &manifest.serialization;
    let mut out = Vec::new();
    match ser.method {
        Method::Files => {
            for r in &manifest.resources {
                out.push(SignedFile {
                    name: r.name.clone(),
                    size: None,
                    expect: vec![Expect {
                        algo: ser.algo,
                        hex: r.digest.clone(),
                        source: sig.to_string(),
                    }],
                    chunks: None,
                });
            }
        }
        Method::Shards { shard_size } => {
            let mut by_file: BTreeMap<&str, Vec<(u64, u64, &str)>> = BTreeMap::new();
            let mut order = Vec::new();
            for r in &manifest.resources {
                let Some((path, start, end)) = split_shard(&r.name) else {
                    return Err(SignError::Payload {
                        path: sig.into(),
                        problem: PayloadProblem::ShardName {
                            name: r.name.clone(),
                        },
                    });
                };
                let e = by_file.entry(path).or_default();
                if e.is_empty() {
                    order.push(path);
                }
                e.push((start, end, r.digest.as_str()));
            }
            for name in order {
                let mut shards = by_file.remove(name).unwrap_or_default();
                shards.sort();
                let n = shards.len();
                for (k, (start, end, _)) in shards.iter().enumerate() {
                    let want_start = (k as u64).checked_mul(shard_size);
                    let len = *end - *start;
                    if Some(*start) != want_start
                        || (k + 1 < n && len != shard_size)
                        || len > shard_size
                    {
                        return Err(SignError::Payload {
                            path: sig.into(),
                            problem: PayloadProblem::ShardTiling {
                                name: name.to_string(),
                                shard_size,
                                start: *start,
                                end: *end,
                            },
                        });
                    }
                }
                out.push(SignedFile {
                    name: name.to_string(),
                    size: Some(shards.last().map(|s| s.1).unwrap_or(0)),
                    expect: Vec::new(),
                    chunks: Some(Chunks {
                        algo: ser.algo,
                        size: shard_size,
                        digests: shards.iter().map(|s| s.2.to_string()).collect(),
                    }),
                });
            }
        }
    }
    Ok(out)
}

/// Download targets for the files a verified manifest lists: each fetched from
/// `base_url` + its name into `dir`, checked against the signed digests while it streams.
pub fn download_targets(
    manifest: &ModelManifest,
    sig: &str,
    base_url: &str,
    dir: &Path,
) -> Result<Vec<crate::download::Target>, SignError> {
    let mut out = Vec::new();
    for f in signed_files(manifest, sig)? {
        if f.name == "." {
            return Err(SignError::Unsupported {
                path: sig.into(),
                what: Unsupported::SingleFileDownload,
            });
        }
        join_resource(dir, &f.name, sig)?;
        let url =
            crate::download::join_url(base_url, &f.name).map_err(|error| SignError::BaseUrl {
                path: base_url.into(),
                error,
            })?;
        out.push(crate::download::Target {
            rel: f.name,
            url,
            size: f.size,
            expect: f.expect,
            chunks: f.chunks,
        });
    }
    Ok(out)
}

/// Plan the check of the model at `root` (shown as `display_root`) against `manifest`, the
/// verified content of the signature `sig` (its display name).
pub fn plan_check(
    root: &Path,
    display_root: &str,
    manifest: &ModelManifest,
    sig: &str,
    opts: &CheckOptions,
) -> Result<CheckPlan, SignError> {
    let ser = &manifest.serialization;
    let shown = |name: &str| -> String {
        if name == "." || display_root.is_empty() {
            if name == "." {
                return display_root.to_string();
            }
            return name.to_string();
        }
        format!("{}/{name}", display_root.trim_end_matches('/'))
    };
    let is_dir = root.is_dir();
    let mut ignores: Vec<String> = GIT_IGNORES.iter().map(|s| s.to_string()).collect();
    ignores.extend(ser.ignore_paths.iter().cloned());
    ignores.extend(opts.ignore.iter().cloned());
    if let Some(s) = &opts.signature {
        if is_dir {
            ignores.extend(super::signature_ignore(root, s));
        }
    }

    // Signed files: name -> expectations.
    let mut listed: BTreeMap<String, Job> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for f in signed_files(manifest, sig)? {
        let path = join_resource(root, &f.name, sig)?;
        order.push(f.name.clone());
        listed.insert(
            f.name.clone(),
            Job {
                path,
                name: shown(&f.name),
                size: f.size,
                expect: f.expect,
                chunks: f.chunks,
            },
        );
    }

    let walk = serialize::walk_model(root, &ignores, opts.allow_symlinks || ser.allow_symlinks)?;
    let mut plan = CheckPlan::default();
    let refused_for = |name: &str| {
        walk.refused
            .iter()
            .find(|r| name == r.name || name.starts_with(&format!("{}/", r.name)))
    };
    for name in &order {
        let Some(job) = listed.get(name) else {
            continue;
        };
        match refused_for(name) {
            Some(r) => plan.failures.push(result(
                job.name.clone(),
                Status::Error(format!("{}: {}", r.path.display(), r.why)),
            )),
            None => plan.jobs.push(job.clone()),
        }
    }
    if opts.ignore_unsigned {
        return Ok(plan);
    }
    let listed_names: BTreeSet<&str> = listed.keys().map(String::as_str).collect();
    for f in &walk.files {
        let sharded_empty = matches!(ser.method, Method::Shards { .. }) && f.size == 0;
        if !listed_names.contains(f.name.as_str()) && !sharded_empty {
            plan.failures.push(result(shown(&f.name), Status::Unlisted));
        }
    }
    for r in &walk.refused {
        let is_listed = listed_names
            .iter()
            .any(|n| *n == r.name || n.starts_with(&format!("{}/", r.name)));
        if !is_listed {
            plan.failures.push(result(
                shown(&r.name),
                Status::Error(format!("{}: {}", r.path.display(), r.why)),
            ));
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algo;
    use crate::sign::statement::{Resource, Serialization};

    fn manifest(method: Method, names: &[&str]) -> ModelManifest {
        ModelManifest {
            model_name: "m".into(),
            root_digest: String::new(),
            serialization: Serialization {
                method,
                algo: Algo::Sha256,
                allow_symlinks: false,
                ignore_paths: Vec::new(),
            },
            resources: names
                .iter()
                .map(|n| Resource {
                    name: n.to_string(),
                    digest: "0".repeat(64),
                })
                .collect(),
            tensors: None,
        }
    }

    #[test]
    fn signed_names_may_not_leave_the_model() {
        let root = Path::new("/m");
        assert_eq!(
            join_resource(root, "a/b", "s").unwrap(),
            PathBuf::from("/m/a/b")
        );
        assert_eq!(join_resource(root, ".", "s").unwrap(), PathBuf::from("/m"));
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../x", "", "./"] {
            assert!(
                matches!(
                    join_resource(root, bad, "s"),
                    Err(SignError::PathEscape { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn shards_must_tile_each_file() {
        let ok = manifest(
            Method::Shards { shard_size: 10 },
            &["f:0:10", "f:10:20", "f:20:25", "g:0:3"],
        );
        let files = signed_files(&ok, "s").unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].size, Some(25));
        assert_eq!(files[0].chunks.as_ref().unwrap().digests.len(), 3);
        for bad in [
            &["f:0:10", "f:20:25"][..],
            &["f:0:5", "f:5:10"][..],
            &["f:0:11"][..],
            &["f:0"][..],
            &["f:3:2"][..],
        ] {
            let m = manifest(Method::Shards { shard_size: 10 }, bad);
            assert!(
                matches!(signed_files(&m, "s"), Err(SignError::Payload { .. })),
                "{bad:?}"
            );
        }
    }
}
