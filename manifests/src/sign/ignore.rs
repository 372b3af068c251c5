//! `sign --ignore PATH`: a path to leave out of a signature, as the entry relative to the
//! model folder that the signed manifest's `ignore_paths` holds.

use std::path::Path;

/// Why an `--ignore` path cannot be made an entry of the model folder.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// An absolute path that is not inside the model folder.
    #[error("--ignore {path}: not inside {root}")]
    Outside {
        /// The path as given.
        path: String,
        /// The model folder.
        root: String,
    },
    /// A path that is not UTF-8 (entries are JSON strings).
    #[error("--ignore {0}: not UTF-8")]
    NotUtf8(String),
}

/// An `--ignore` path as an entry relative to the model folder `root`: a path that exists
/// inside the folder (as given, from the current directory) is made relative to it; anything
/// else is taken as relative to the folder already.
pub fn ignore_entry(root: &Path, p: &Path) -> Result<String, IgnoreError> {
    if let (Ok(root_c), Ok(pc)) = (std::fs::canonicalize(root), std::fs::canonicalize(p)) {
        if let Ok(rel) = pc.strip_prefix(&root_c) {
            if let Some(s) = rel.to_str().filter(|s| !s.is_empty()) {
                return Ok(s.to_string());
            }
        }
    }
    if p.is_absolute() {
        return Err(IgnoreError::Outside {
            path: p.display().to_string(),
            root: root.display().to_string(),
        });
    }
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| IgnoreError::NotUtf8(p.display().to_string()))
}

/// [`ignore_entry`] of each path, in order.
pub fn ignore_entries(root: &Path, paths: &[impl AsRef<Path>]) -> Result<Vec<String>, IgnoreError> {
    paths
        .iter()
        .map(|p| ignore_entry(root, p.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("llama-ignore-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a.bin"), b"x").unwrap();
        d
    }

    #[test]
    fn existing_path_inside_is_made_relative() {
        let d = tmp("inside");
        assert_eq!(ignore_entry(&d, &d.join("sub/a.bin")).unwrap(), "sub/a.bin");
        assert_eq!(ignore_entry(&d, &d.join("sub")).unwrap(), "sub");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn relative_path_is_taken_as_is() {
        let d = tmp("relative");
        assert_eq!(
            ignore_entry(&d, Path::new("notes/x.txt")).unwrap(),
            "notes/x.txt"
        );
        assert_eq!(
            ignore_entries(&d, &["a", "b/c"]).unwrap(),
            vec!["a".to_string(), "b/c".to_string()]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn absolute_path_outside_is_refused() {
        let d = tmp("outside");
        let e = ignore_entry(&d.join("sub"), &d).unwrap_err();
        assert!(matches!(e, IgnoreError::Outside { .. }));
        assert!(e.to_string().starts_with("--ignore "), "{e}");
        assert!(e.to_string().contains(": not inside "), "{e}");
        // The folder itself is no entry either.
        assert!(ignore_entry(&d, &d).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_is_refused() {
        use std::os::unix::ffi::OsStrExt;
        let d = tmp("utf8");
        let p = Path::new(std::ffi::OsStr::from_bytes(b"bad\xff"));
        assert!(matches!(ignore_entry(&d, p), Err(IgnoreError::NotUtf8(_))));
        let _ = std::fs::remove_dir_all(&d);
    }
}
