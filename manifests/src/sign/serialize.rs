//! A model folder as model_signing's file serialization sees it: every regular file under
//! the folder (recursively, hidden ones included, empty ones included), named by its POSIX
//! path relative to the folder, minus the ignored paths; a single file is one resource named
//! `.`. A path is ignored when an ignore entry is the path itself or one of its folders
//! (component-wise, relative to the model root). Symlinks are refused unless allowed; other
//! non-regular files (FIFOs, sockets, devices) always are.
//!
//! Files are hashed in parallel, largest first, with [`crate::digest::hash_file`] (memory
//! mapped, SHA-NI when the CPU has it), the engine `verify` uses.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Refusal, SignError, WalkProblem};
use crate::digest::{self, Algo};
use crate::verify::Progress;

/// model_signing's default ignores (its `ignore_git_paths=True`), relative to the model root.
pub(crate) const GIT_IGNORES: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// One file of a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ModelFile {
    /// Resource name: relative POSIX path (`.` for a model that is one file).
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
}

/// Something in the folder that cannot be a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Relative POSIX path.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Why.
    pub why: Refusal,
}

/// The folder's files and what was refused in it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Walk {
    /// Regular files (and followed symlinks), sorted by path components.
    pub files: Vec<ModelFile>,
    /// Symlinks (when not allowed) and special files.
    pub refused: Vec<Refused>,
}

/// Normalize an ignore entry to path components (`./a/b/` -> `[a, b]`); entries that are
/// empty, absolute or climb out of the model are dropped, as model_signing drops them.
pub(crate) fn ignore_components(entry: &str) -> Option<Vec<String>> {
    if entry.starts_with('/') {
        return None;
    }
    let mut out = Vec::new();
    for c in entry.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c.to_string()),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether the relative path `components` is ignored by `ignores`.
pub(crate) fn is_ignored(components: &[&str], ignores: &[Vec<String>]) -> bool {
    ignores
        .iter()
        .any(|ig| ig.len() <= components.len() && ig.iter().zip(components).all(|(a, b)| a == b))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SignError + '_ {
    move |source| SignError::Io {
        path: path.display().to_string(),
        error: source,
    }
}

/// Walk `root` (a folder, or one file) with model_signing's rules.
pub(crate) fn walk_model(
    root: &Path,
    ignore_paths: &[String],
    allow_symlinks: bool,
) -> Result<Walk, SignError> {
    let meta = std::fs::metadata(root).map_err(io_err(root))?;
    if meta.is_file() {
        return Ok(Walk {
            files: vec![ModelFile {
                name: ".".into(),
                path: root.to_path_buf(),
                size: meta.len(),
            }],
            refused: Vec::new(),
        });
    }
    if !meta.is_dir() {
        return Err(SignError::Walk {
            path: root.display().to_string(),
            problem: WalkProblem::NotFileOrFolder,
        });
    }
    let ignores: Vec<Vec<String>> = ignore_paths
        .iter()
        .filter_map(|p| ignore_components(p))
        .collect();
    let mut walk = Walk::default();
    // (folder on disk, its relative components)
    let mut stack: Vec<(PathBuf, Vec<String>)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(SignError::Walk {
                    path: path.display().to_string(),
                    problem: WalkProblem::NameNotUtf8,
                });
            };
            let mut comps = rel.clone();
            comps.push(name);
            let refs: Vec<&str> = comps.iter().map(String::as_str).collect();
            if is_ignored(&refs, &ignores) {
                continue;
            }
            let rel_name = comps.join("/");
            let ft = entry.file_type().map_err(io_err(&path))?;
            let refuse = |why: Refusal| Refused {
                name: rel_name.clone(),
                path: path.clone(),
                why,
            };
            if ft.is_dir() {
                stack.push((path, comps));
            } else if ft.is_file() {
                let size = entry.metadata().map_err(io_err(&path))?.len();
                walk.files.push(ModelFile {
                    name: rel_name,
                    path,
                    size,
                });
            } else if ft.is_symlink() {
                if !allow_symlinks {
                    walk.refused.push(refuse(Refusal::Symlink));
                    continue;
                }
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => walk.files.push(ModelFile {
                        name: rel_name,
                        path,
                        size: m.len(),
                    }),
                    Ok(m) if m.is_dir() => walk.refused.push(refuse(Refusal::SymlinkToFolder)),
                    Ok(_) => walk.refused.push(refuse(Refusal::SymlinkToSpecial)),
                    Err(_) => walk.refused.push(refuse(Refusal::DanglingSymlink)),
                }
            } else {
                walk.refused.push(refuse(Refusal::Special));
            }
        }
    }
    walk.files
        .sort_by(|a, b| super::statement::compare_names(&a.name, &b.name, false));
    walk.refused.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(walk)
}

/// Hash `files` with `algo` on `threads` threads, largest first; digests come back in the
/// files' order.
pub(crate) fn hash_files(
    files: &[ModelFile],
    algo: Algo,
    threads: usize,
    progress: &dyn Progress,
) -> Result<Vec<String>, SignError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|error| SignError::Threads { error })?;
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files[i].size));
    let hashed: Vec<(usize, Result<String, SignError>)> = pool.install(|| {
        order
            .par_iter()
            .map(|&i| {
                let f = &files[i];
                let r = digest::hash_file(&f.path, &[algo], &|n| progress.bytes(n))
                    .map_err(SignError::from)
                    .and_then(|(n, d)| {
                        if n != f.size {
                            return Err(SignError::Walk {
                                path: f.path.display().to_string(),
                                problem: WalkProblem::ChangedSize {
                                    before: f.size,
                                    after: n,
                                },
                            });
                        }
                        Ok(d.into_iter().next().map(|(_, h)| h).unwrap_or_default())
                    });
                (i, r)
            })
            .collect()
    });
    let mut out = vec![String::new(); files.len()];
    for (i, r) in hashed {
        out[i] = r?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_match_whole_components_from_the_root() {
        let ig: Vec<Vec<String>> = [".git/", "./model.sig", "sub/x", "../up", "/abs"]
            .iter()
            .filter_map(|p| ignore_components(p))
            .collect();
        assert_eq!(ig.len(), 3);
        assert!(is_ignored(&[".git", "HEAD"], &ig));
        assert!(is_ignored(&["model.sig"], &ig));
        assert!(is_ignored(&["sub", "x", "y"], &ig));
        assert!(!is_ignored(&[".gitx"], &ig));
        assert!(!is_ignored(&["a", ".git"], &ig));
        assert!(!is_ignored(&["sub", "xy"], &ig));
    }

    #[test]
    fn walk_sorts_by_components_and_refuses_symlinks_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        std::fs::create_dir_all(m.join("tokenizer")).unwrap();
        std::fs::create_dir_all(m.join(".git")).unwrap();
        std::fs::write(m.join("tokenizer/x"), b"a").unwrap();
        std::fs::write(m.join("tokenizer.model"), b"b").unwrap();
        std::fs::write(m.join("empty"), b"").unwrap();
        std::fs::write(m.join(".git/HEAD"), b"g").unwrap();
        let w = walk_model(m, &[".git".into()], false).unwrap();
        let names: Vec<&str> = w.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["empty", "tokenizer/x", "tokenizer.model"]);
        std::os::unix::fs::symlink("/etc/hostname", m.join("link")).unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(m.join("fifo"))
            .status()
            .unwrap();
        assert!(st.success());
        let w = walk_model(m, &[".git".into()], false).unwrap();
        let refused: Vec<&str> = w.refused.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(refused, ["fifo", "link"]);
        let w = walk_model(m, &[".git".into()], true).unwrap();
        assert!(w.files.iter().any(|f| f.name == "link"));
        assert_eq!(w.refused.len(), 1);
    }
}
