//! What a folder's content is when a manifest or a torrent is made of it: every regular file
//! under it but the manifests themselves, partial downloads (`NAME.part`, as
//! [`crate::download`] names them while fetching) and temporaries (`.NAME.tmp-XXXXXXXXXXXX`,
//! as `llama_formats::atomic` names an output before its rename); a symbolic link only when
//! it leads to a regular file inside the folder.

use std::path::{Path, PathBuf};

use crate::discover::{self, PlanError};

/// The suffix of a file being downloaded: `NAME.part` until it is verified and renamed.
pub(crate) const PARTIAL_SUFFIX: &str = ".part";

/// Whether `name` is a partial download (`NAME.part`).
pub(crate) fn is_partial_download(name: &str) -> bool {
    name.ends_with(PARTIAL_SUFFIX)
}

/// Whether `name` is an output still being written (`.NAME.tmp-XXXX`, renamed when done).
pub(crate) fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Whether `name` is work in progress (a partial download or a temporary), never content.
pub(crate) fn is_work_in_progress(name: &str) -> bool {
    is_partial_download(name) || is_temporary(name)
}

/// Why a file under the folder is left out of the listing (reported, not an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Skipped {
    /// A symbolic link leading out of the folder (`manifest DIR` never hashes `/etc/passwd`
    /// through a link).
    #[error("symbolic link leading outside the folder")]
    LinkOutside,
    /// A symbolic link to nothing.
    #[error("dangling symbolic link")]
    DanglingLink,
    /// Not a regular file (a link to `/dev/zero` would never end).
    #[error("not a regular file")]
    NotRegular,
}

/// Why a folder could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The folder (or one under it) could not be read.
    #[error(transparent)]
    Walk(#[from] PlanError),
    /// The folder's own path could not be resolved.
    #[error("{path}: cannot resolve: {error}")]
    Resolve {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A file name that is not UTF-8 cannot be written into a manifest.
    #[error("{path}: file name is not UTF-8; cannot list it")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
}

/// One file to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The path to read it at.
    pub path: PathBuf,
    /// Its name relative to the folder, as the manifest writes it.
    pub rel: String,
}

/// The content of a folder, sorted, and what was left out and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Files to list.
    pub files: Vec<Listed>,
    /// Files left out (links out of the folder, dangling links, non-regular files).
    pub skipped: Vec<(PathBuf, Skipped)>,
}

/// List the content of `dir`, leaving out `output` too (the manifest being written into the
/// folder must not list itself).
pub fn list_folder(dir: &Path, output: Option<&Path>) -> Result<Listing, ListError> {
    let out_canon = output.and_then(|o| {
        let parent = o
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::canonicalize(parent)
            .ok()
            .map(|p| p.join(o.file_name().unwrap_or_default()))
    });
    let dir_canon = std::fs::canonicalize(dir).map_err(|source| ListError::Resolve {
        path: dir.to_path_buf(),
        error: source,
    })?;
    let mut listing = Listing::default();
    for p in discover::walk_files(dir)? {
        if let Some(why) = not_listable(&p, &dir_canon) {
            listing.skipped.push((p, why));
            continue;
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if discover::manifest_kind(name).is_some() || is_work_in_progress(name) {
            continue;
        }
        if let (Some(oc), Some(parent)) = (&out_canon, p.parent()) {
            if std::fs::canonicalize(parent)
                .ok()
                .map(|c| c.join(p.file_name().unwrap_or_default()))
                .as_ref()
                == Some(oc)
            {
                continue;
            }
        }
        let rel = p.strip_prefix(dir).unwrap_or(&p);
        let Some(rel) = rel.to_str() else {
            return Err(ListError::NotUtf8 { path: p });
        };
        let rel = rel.to_string();
        listing.files.push(Listed { path: p, rel });
    }
    Ok(listing)
}

/// Why `p` (found under the folder whose canonical path is `root`) must not be listed.
fn not_listable(p: &Path, root: &Path) -> Option<Skipped> {
    let lm = std::fs::symlink_metadata(p).ok()?;
    if lm.file_type().is_symlink() {
        match std::fs::canonicalize(p) {
            Ok(c) if !c.starts_with(root) => return Some(Skipped::LinkOutside),
            Err(_) => return Some(Skipped::DanglingLink),
            Ok(_) => {}
        }
    }
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => None,
        _ => Some(Skipped::NotRegular),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_downloads_temporaries_and_manifests_are_not_content() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for name in [
            "consolidated.00.pth",
            "consolidated.01.pth.part",
            ".model.gguf.tmp-0123456789ab",
            "checklist.chk",
            "SHA256SUMS",
            "params.json",
        ] {
            std::fs::write(d.join(name), b"x").unwrap();
        }
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/tokenizer.model"), b"x").unwrap();
        let out = d.join("list.txt");
        std::fs::write(&out, b"old").unwrap();
        let l = list_folder(d, Some(&out)).unwrap();
        let rels: Vec<&str> = l.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            rels,
            ["consolidated.00.pth", "params.json", "sub/tokenizer.model"]
        );
        assert!(l.skipped.is_empty());
        assert!(is_work_in_progress("a.part") && is_work_in_progress(".a.tmp-x"));
        assert!(!is_work_in_progress("a.tmp-x") && !is_work_in_progress("part"));
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_folder_and_to_devices_are_skipped_with_the_reason() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("m");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(t.path().join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), d.join("out")).unwrap();
        std::os::unix::fs::symlink(d.join("nothing"), d.join("dangling")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("zero")).unwrap();
        std::fs::write(d.join("a"), b"x").unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("b")).unwrap();
        let l = list_folder(&d, None).unwrap();
        let rels: Vec<&str> = l.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["a", "b"]);
        let mut why: Vec<(String, Skipped)> = l
            .skipped
            .iter()
            .map(|(p, w)| (p.file_name().unwrap().to_string_lossy().into_owned(), *w))
            .collect();
        why.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            why,
            [
                ("dangling".to_string(), Skipped::DanglingLink),
                ("out".to_string(), Skipped::LinkOutside),
                ("zero".to_string(), Skipped::LinkOutside),
            ]
        );
    }
}
